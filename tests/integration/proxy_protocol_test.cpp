// PROXY protocol v1/v2 on TCP listeners (--proxy-protocol): the header is
// never echoed, the bytes after it are (in order, even when they share its segment),
// and the client it names is what logs, allow/deny and per-source limits see.
// Malformed, missing or slow headers close the connection and are counted.
#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>
#include <thread>

#include "harness.h"
#include "policy_helpers.h"

namespace eco::itest {
namespace {

using Proxy = EngineTest;

std::string v1(const std::string& fam, const std::string& src, const std::string& dst, int sport, int dport) {
  return "PROXY " + fam + " " + src + " " + dst + " " + std::to_string(sport) + " " + std::to_string(dport) + "\r\n";
}

// v2: signature, version 2 + command (1 PROXY, 0 LOCAL), family/transport, length, addresses.
std::string v2(uint8_t cmd, uint8_t fam, const std::string& addrs) {
  static const char sig[] = "\r\n\r\n\0\r\nQUIT\n";
  std::string h(sig, 12);
  h += char(0x20 | cmd);
  h += char(fam);
  h += char(addrs.size() >> 8);
  h += char(addrs.size() & 0xff);
  return h + addrs;
}

std::string v2_tcp4(const char* src, const char* dst, uint16_t sport, uint16_t dport) {
  std::string a(12, '\0');
  inet_pton(AF_INET, src, &a[0]);
  inet_pton(AF_INET, dst, &a[4]);
  uint16_t s = htons(sport), d = htons(dport);
  std::memcpy(&a[8], &s, 2);
  std::memcpy(&a[10], &d, 2);
  return v2(1, 0x11, a);
}

std::string v2_tcp6(const char* src, const char* dst, uint16_t sport, uint16_t dport) {
  std::string a(36, '\0');
  inet_pton(AF_INET6, src, &a[0]);
  inet_pton(AF_INET6, dst, &a[16]);
  uint16_t s = htons(sport), d = htons(dport);
  std::memcpy(&a[32], &s, 2);
  std::memcpy(&a[34], &d, 2);
  return v2(1, 0x21, a);
}

// Sends header + payload in one write; expects exactly the payload back.
void expect_echo_after(uint16_t port, const std::string& header, const std::string& payload) {
  Fd fd = tcp_connect("127.0.0.1", port);
  ASSERT_TRUE(fd.valid());
  ASSERT_TRUE(send_all(fd.get(), header + payload));
  EXPECT_EQ(read_exact(fd.get(), payload.size(), 5000), payload);
  EXPECT_TRUE(silent_for(fd.get(), 100)) << "more than the payload came back (the header?)";
}

void expect_closed_unechoed(uint16_t port, const std::string& bytes) {
  Fd fd = tcp_connect("127.0.0.1", port);
  ASSERT_TRUE(fd.valid());
  (void)send_all(fd.get(), bytes, 2000);
  std::string got;
  EXPECT_TRUE(closed_by_server(fd.get(), 3000, &got));
  EXPECT_EQ(got, "") << "bytes were echoed without a valid PROXY header";
}

TEST_P(Proxy, V1HeaderAndPayloadInOneWrite) {
  ECO_IF_ENGINE_REFUSES_EXPECT_REFUSAL("--proxy-protocol");
  Server* srv = start_server({.extra = {"--proxy-protocol"}});
  ASSERT_TRUE(srv);
  expect_echo_after(srv->port(), v1("TCP4", "203.0.113.7", "192.0.2.1", 40000, 7), "hello after v1");
  EXPECT_TRUE(srv->wait_log("Connected by 203.0.113.7:40000", 2000)) << srv->log();
  expect_echo_after(srv->port(), v1("TCP6", "2001:db8::7", "2001:db8::1", 40001, 7), "over v1 TCP6");
  EXPECT_TRUE(srv->wait_log("Connected by [2001:db8::7]:40001", 2000)) << srv->log();
  EXPECT_TRUE(srv->wait_log("Closed 203.0.113.7:40000", 2000)) << srv->log();
}

TEST_P(Proxy, V2Ipv4Ipv6AndLocal) {
  ECO_IF_ENGINE_REFUSES_EXPECT_REFUSAL("--proxy-protocol");
  Server* srv = start_server({.extra = {"--proxy-protocol"}});
  ASSERT_TRUE(srv);
  expect_echo_after(srv->port(), v2_tcp4("198.51.100.9", "192.0.2.1", 50000, 7), "v2 over IPv4");
  EXPECT_TRUE(srv->wait_log("Connected by 198.51.100.9:50000", 2000)) << srv->log();
  expect_echo_after(srv->port(), v2_tcp6("2001:db8::99", "2001:db8::1", 50001, 7), "v2 over IPv6");
  EXPECT_TRUE(srv->wait_log("Connected by [2001:db8::99]:50001", 2000)) << srv->log();
  // LOCAL: the balancer's own health check, echoed as itself.
  expect_echo_after(srv->port(), v2(0, 0x00, ""), "health check");
  EXPECT_TRUE(srv->wait_log("Connected by 127.0.0.1:", 2000)) << srv->log();
}

TEST_P(Proxy, HeaderSplitByteByByteThenALargePayloadInOrder) {
  ECO_IF_ENGINE_REFUSES_EXPECT_REFUSAL("--proxy-protocol");
  Server* srv = start_server({.extra = {"--proxy-protocol"}});
  ASSERT_TRUE(srv);
  for (const std::string& header :
       {v1("TCP4", "203.0.113.8", "192.0.2.1", 1234, 7), v2_tcp6("2001:db8::8", "2001:db8::1", 1235, 7)}) {
    Fd fd = tcp_connect("127.0.0.1", srv->port());
    ASSERT_TRUE(fd.valid());
    for (char ch : header) {
      ASSERT_TRUE(send_all(fd.get(), std::string(1, ch)));
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    std::string data = random_bytes(300 * 1000, 81);
    bool eof;
    std::string back = echo_roundtrip(fd.get(), data, 10000, eof);
    EXPECT_TRUE(eof);
    EXPECT_TRUE(back == data) << "got " << back.size() << " of " << data.size();
  }
  EXPECT_TRUE(srv->wait_log("Connected by 203.0.113.8:1234", 2000)) << srv->log();
  EXPECT_TRUE(srv->wait_log("Connected by [2001:db8::8]:1235", 2000)) << srv->log();
}

TEST_P(Proxy, GarbageMissingAndTooLongHeadersAreClosedAndCounted) {
  ECO_IF_ENGINE_REFUSES_EXPECT_REFUSAL("--proxy-protocol");
  Server* srv = start_server({.extra = {"--proxy-protocol"}});
  ASSERT_TRUE(srv);
  expect_closed_unechoed(srv->port(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  expect_closed_unechoed(srv->port(), "PROXY TCP4 " + std::string(200, '1') + "\r\n");
  expect_closed_unechoed(srv->port(), "PROXY TCP4 1.2.3.4 5.6.7.8 99999 7\r\npayload");
  std::string bad_v2 = v2(1, 0x11, std::string(12, '\0'));
  bad_v2[12] = 0x31;  // version 3
  expect_closed_unechoed(srv->port(), bad_v2);
  {
    // A client that closes before finishing its header.
    Fd fd = tcp_connect("127.0.0.1", srv->port());
    ASSERT_TRUE(send_all(fd.get(), "PROXY TCP4 1.2.3.4"));
  }
  EXPECT_TRUE(srv->wait_log("(proxy_invalid)", 2000)) << srv->log();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(refused_count(summary_after_stop(*srv), "proxy_invalid"), 5u) << srv->log();
}

TEST_P(Proxy, SlowHeaderTimesOut) {
  ECO_IF_ENGINE_REFUSES_EXPECT_REFUSAL("--proxy-protocol");
  Server* srv = start_server({.extra = {"--proxy-protocol", "--proxy-timeout", "300ms"}});
  ASSERT_TRUE(srv);
  Fd fd = tcp_connect("127.0.0.1", srv->port());
  ASSERT_TRUE(send_all(fd.get(), "PROXY TCP4 203.0.113."));
  double start = now_ms();
  EXPECT_TRUE(closed_by_server(fd.get(), 3000));
  EXPECT_GE(now_ms() - start, 200);
  Fd silent = tcp_connect("127.0.0.1", srv->port());  // says nothing at all
  EXPECT_TRUE(closed_by_server(silent.get(), 3000));
  EXPECT_EQ(refused_count(summary_after_stop(*srv), "proxy_timeout"), 2u) << srv->log();
}

TEST_P(Proxy, DenyAndPerSourceLimitsApplyToTheProxySource) {
  ECO_IF_ENGINE_REFUSES_EXPECT_REFUSAL("--proxy-protocol");
  Server* srv = start_server(
      {.extra = {"--proxy-protocol", "--deny", "203.0.113.0/24", "--max-conns-per-ip", "1"}});
  ASSERT_TRUE(srv);
  expect_closed_unechoed(srv->port(), v1("TCP4", "203.0.113.9", "192.0.2.1", 1000, 7) + "denied");
  // All of these come from 127.0.0.1 (the "balancer"); the limit counts the clients.
  Fd a = tcp_connect("127.0.0.1", srv->port());
  ASSERT_TRUE(send_all(a.get(), v2_tcp4("198.51.100.1", "192.0.2.1", 1001, 7)));
  EXPECT_TRUE(echo_once(a.get(), "first of 198.51.100.1"));
  expect_closed_unechoed(srv->port(), v2_tcp4("198.51.100.1", "192.0.2.1", 1002, 7) + "second");
  Fd b = tcp_connect("127.0.0.1", srv->port());
  ASSERT_TRUE(send_all(b.get(), v1("TCP4", "198.51.100.2", "192.0.2.1", 1003, 7)));
  EXPECT_TRUE(echo_once(b.get(), "another client"));
  a.reset();
  b.reset();
  std::string sum = summary_after_stop(*srv);
  EXPECT_EQ(refused_count(sum, "denied"), 1u) << srv->log();
  EXPECT_EQ(refused_count(sum, "max_conns_per_ip"), 1u) << srv->log();
  EXPECT_NE(srv->log().find("203.0.113.9"), std::string::npos) << "the refusal names the PROXY source";
}

ECO_ENGINE_SUITE(Proxy);

}  // namespace
}  // namespace eco::itest
