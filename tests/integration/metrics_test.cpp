// --metrics: Prometheus text at /metrics, /healthz, /readyz (503 while draining),
// counters summed over the loop threads, and a clear error when the port is taken.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>
#include <sstream>

#include "harness.h"
#include "util/build_version.h"
#include "http_get.h"
#include "session/reject_reason.h"

namespace eco::itest {
namespace {

// "name{labels} value" lines, comments skipped; also checks each sample has HELP and TYPE.
std::map<std::string, double> parse_metrics(const std::string& body) {
  std::map<std::string, double> out;
  std::istringstream in(body);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    size_t sp = line.rfind(' ');
    if (sp == std::string::npos) continue;
    out[line.substr(0, sp)] = std::stod(line.substr(sp + 1));
    std::string name = line.substr(0, line.find_first_of("{ "));
    EXPECT_NE(body.find("# TYPE " + name + " "), std::string::npos) << name;
    EXPECT_NE(body.find("# HELP " + name + " "), std::string::npos) << name;
  }
  return out;
}

// Scrapes until `pred` holds (the loops publish counters as they go), bounded.
std::map<std::string, double> scrape_until(uint16_t port, const std::function<bool(std::map<std::string, double>&)>& pred) {
  std::map<std::string, double> m;
  double end = now_ms() + 5000;
  while (now_ms() < end) {
    HttpReply r = http_get(port, "/metrics");
    if (r.status == 200) {
      m = parse_metrics(r.body);
      if (pred(m)) break;
    }
    usleep(20000);
  }
  return m;
}

class MetricsTest : public EngineTest {};

TEST_P(MetricsTest, CountsTrafficOfEveryThread) {
  Server* s = start_server({.extra = {"--udp", "--threads", "2", "--metrics", "127.0.0.1:0"}});
  ASSERT_TRUE(s);
  uint16_t mport = metrics_port(*s);
  ASSERT_NE(mport, 0) << s->log();
  // 6 connections (spread over both threads by SO_REUSEPORT), 5 closed, 1 left open.
  size_t tcp_bytes = 0;
  std::vector<Fd> open;
  for (int i = 0; i < 6; ++i) {
    Fd fd = tcp_connect("127.0.0.1", s->port());
    ASSERT_TRUE(fd.valid());
    std::string msg = "message " + std::to_string(i);
    ASSERT_TRUE(echo_once(fd.get(), msg));
    tcp_bytes += msg.size();
    if (i == 5) open.push_back(std::move(fd));
  }
  Fd u = udp_socket("127.0.0.1", s->port());
  for (int i = 0; i < 4; ++i) {
    ASSERT_EQ(::send(u.get(), "dgram", 5, 0), 5);
    EXPECT_EQ(read_exact(u.get(), 5, 3000), "dgram");
  }
  // An engine may count an echo when its send completes, just after the client has it.
  bool bytes_seen_all = GetParam() != "sockmap";
  auto m = scrape_until(mport, [&](auto& got) {
    return got["eco_connections_closed_total"] == 5 && got["eco_datagrams_echoed_total"] == 4 &&
           got["eco_bytes_echoed_total{proto=\"udp\"}"] == 20 &&
           (!bytes_seen_all || got["eco_bytes_echoed_total{proto=\"tcp\"}"] == double(tcp_bytes));
  });
  EXPECT_EQ(m["eco_connections_accepted_total"], 6);
  EXPECT_EQ(m["eco_connections_closed_total"], 5);
  EXPECT_EQ(m["eco_connections_active"], 1);
  // sockmap echoes in the kernel and does not see every byte.
  if (bytes_seen_all) {
    EXPECT_EQ(m["eco_bytes_echoed_total{proto=\"tcp\"}"], double(tcp_bytes));
  }
  EXPECT_EQ(m["eco_bytes_echoed_total{proto=\"udp\"}"], 20);
  EXPECT_EQ(m["eco_datagrams_echoed_total"], 4);
  EXPECT_EQ(m.count("eco_udp_dropped_total{reason=\"send_failed\"}"), 1u);
  EXPECT_EQ(m.count("eco_accept_paused_total"), 1u);
  for (size_t r = 0; r < session::kRejectReasons; ++r) {
    std::string series = std::string("eco_connections_rejected_total{reason=\"") +
                         session::to_string(session::Reject(r)) + "\"}";
    EXPECT_EQ(m.count(series), 1u) << series;
  }
  EXPECT_EQ(m[std::string("eco_build_info{version=\"") + build_version() + "\",engine=\"" + GetParam() + "\"}"], 1);
  EXPECT_GT(m["process_resident_memory_bytes"], 1e6);
  EXPECT_GT(m["process_start_time_seconds"], 1.6e9);
  EXPECT_EQ(m.count("process_cpu_seconds_total"), 1u);

  HttpReply r = http_get(mport, "/metrics");
  EXPECT_NE(r.headers.find("Content-Type: text/plain; version=0.0.4"), std::string::npos) << r.headers;
  EXPECT_EQ(http_get(mport, "/healthz").status, 200);
  EXPECT_EQ(http_get(mport, "/readyz").status, 200);
  EXPECT_EQ(http_get(mport, "/nothing-here").status, 404);
}

TEST_P(MetricsTest, ReadyzIsUnavailableWhileDraining) {
  Server* s = start_server({.extra = {"--metrics", "127.0.0.1:0", "--threads", "1"}, .drain_timeout = "10s"});
  ASSERT_TRUE(s);
  uint16_t mport = metrics_port(*s);
  ASSERT_NE(mport, 0) << s->log();
  Fd held = tcp_connect("127.0.0.1", s->port());
  ASSERT_TRUE(echo_once(held.get(), "hold"));
  EXPECT_EQ(http_get(mport, "/readyz").status, 200);
  s->signal(SIGTERM);
  ASSERT_TRUE(s->wait_log("draining", 5000)) << s->log();
  HttpReply r = http_get(mport, "/readyz");
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(http_get(mport, "/healthz").status, 200);
  // Still echoing the held connection while draining, and still counting it.
  EXPECT_TRUE(echo_once(held.get(), "still"));
  auto m = parse_metrics(http_get(mport, "/metrics").body);
  EXPECT_EQ(m["eco_connections_active"], 1);
  held.reset();
  auto code = s->wait_exit(10000);
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << s->log();
  EXPECT_EQ(s->log().find("Sanitizer"), std::string::npos) << s->log();
}

ECO_ENGINE_SUITE(MetricsTest);

TEST(MetricsErrors, TakenPortIsOneClearLineAndExit2) {
  Fd taken(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(taken.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(taken.get(), 1), 0);
  socklen_t len = sizeof a;
  ASSERT_EQ(::getsockname(taken.get(), reinterpret_cast<sockaddr*>(&a), &len), 0);
  std::string port = std::to_string(ntohs(a.sin_port));
  auto r = run_eco({"serve", "--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:" + port}, {}, 10000);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("eco: metrics: cannot listen on 127.0.0.1:" + port), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("address already in use"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST(MetricsErrors, BadAddressIsAUsageError) {
  auto r = run_eco({"serve", "--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:99999"}, {}, 10000);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("eco: invalid --metrics address: invalid port '99999'"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace eco::itest
