// --allow / --deny: CIDR lists, IPv4 and IPv6, checked before any byte is
// echoed; a refused connection is closed at once and counted as "denied". They apply
// to UDP datagrams too.
#include <poll.h>
#include <sys/socket.h>

#include <chrono>
#include <thread>

#include "harness.h"
#include "policy_helpers.h"

namespace eco::itest {
namespace {

using Access = EngineTest;

void expect_refused(const std::string& src, const std::string& dst, uint16_t port) {
  Fd fd = connect_from(src, dst, port);
  ASSERT_TRUE(fd.valid()) << "connect from " << src;
  (void)send_all(fd.get(), "secret", 1000);
  std::string got;
  EXPECT_TRUE(closed_by_server(fd.get(), 3000, &got)) << src << " was not closed";
  EXPECT_EQ(got, "") << src << " got bytes echoed before the access check";
}

TEST_P(Access, DenyClosesBeforeAnyByteAndOthersStillEcho) {
  Server* srv = start_server({.extra = {"--deny", "127.0.0.2/32", "--deny", "127.0.9.0/24"}});
  ASSERT_TRUE(srv);
  expect_refused("127.0.0.2", "127.0.0.1", srv->port());
  expect_refused("127.0.9.77", "127.0.0.1", srv->port());
  Fd ok = connect_from("127.0.0.3", "127.0.0.1", srv->port());
  EXPECT_TRUE(echo_once(ok.get(), "let in"));
  EXPECT_TRUE(srv->wait_log("127.0.0.2", 2000)) << "the refusal is not logged:\n" << srv->log();
  ok.reset();
  EXPECT_EQ(refused_count(summary_after_stop(*srv), "denied"), 2u) << srv->log();
}

TEST_P(Access, AllowAdmitsOnlyListedNetworksAndDenyWins) {
  Server* srv = start_server({.extra = {"--allow", "127.0.0.0/30", "--deny", "127.0.0.2"}});
  ASSERT_TRUE(srv);
  Fd ok = connect_from("127.0.0.3", "127.0.0.1", srv->port());
  EXPECT_TRUE(echo_once(ok.get(), "listed"));
  expect_refused("127.0.0.2", "127.0.0.1", srv->port());  // in the allowed range, but denied
  expect_refused("127.0.0.5", "127.0.0.1", srv->port());  // outside the allowed range
  ok.reset();
  EXPECT_EQ(refused_count(summary_after_stop(*srv), "denied"), 2u) << srv->log();
}

TEST_P(Access, IPv6DenyAndAllow) {
  Server* denied = start_server({.listen = {"[::1]:0"}, .extra = {"--deny", "::1/128"}});
  ASSERT_TRUE(denied);
  expect_refused("::1", "::1", denied->port());
  EXPECT_EQ(refused_count(summary_after_stop(*denied), "denied"), 1u) << denied->log();

  Server* allowed = start_server({.listen = {"[::1]:0"}, .extra = {"--allow", "::1", "--allow", "10.0.0.0/8"}});
  ASSERT_TRUE(allowed);
  Fd ok = connect_from("::1", "::1", allowed->port());
  EXPECT_TRUE(echo_once(ok.get(), "over IPv6"));
}

TEST_P(Access, DeniedUdpSourcesGetNoEcho) {
  Server* srv = start_server({.listen = {"udp://127.0.0.1:0"}, .extra = {"--deny", "127.0.0.1"}});
  ASSERT_TRUE(srv);
  Fd fd = udp_socket("127.0.0.1", srv->port());
  ASSERT_TRUE(fd.valid());
  for (int i = 0; i < 3; ++i) ASSERT_EQ(::send(fd.get(), "ping", 4, 0), 4);
  EXPECT_TRUE(silent_for(fd.get(), 500)) << "a denied source got an echo";
  EXPECT_EQ(refused_count(summary_after_stop(*srv), "denied"), 3u) << srv->log();
}

// Refusals on TCP and UDP of one server are counted by the loops that made them, each
// counter with one writer (debug and sanitizer builds abort on a second one), so the
// counts add up exactly: with the sockmap engine the UDP listeners run on epoll loops of
// their own beside its TCP loops.
TEST_P(Access, DeniedUdpAndTcpOnOneServerAddUp) {
  Server* srv = start_server({.extra = {"--udp", "--deny", "127.0.0.1"}});
  ASSERT_TRUE(srv);
  constexpr int kDatagrams = 200, kConns = 50;
  std::jthread udp([&] {  // joined on every way out of the test
    Fd fd = udp_socket("127.0.0.1", srv->port());
    for (int i = 0; i < kDatagrams; ++i) {
      EXPECT_EQ(::send(fd.get(), "ping", 4, 0), 4);
      if (i % 20 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));  // no receive-buffer overflow
    }
  });
  for (int i = 0; i < kConns; ++i) {
    Fd c = tcp_connect("127.0.0.1", srv->port());
    ASSERT_TRUE(c.valid());
    EXPECT_TRUE(closed_by_server(c.get(), 5000));
  }
  udp.join();
  // The last datagrams may still be in the server's socket: they take microseconds each.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(refused_count(summary_after_stop(*srv), "denied"), uint64_t(kDatagrams + kConns)) << srv->log();
}

TEST(AccessFlags, BadNetworksAreUsageErrors) {
  RunResult r = run_eco({"serve", "--deny", "10.0.0.1/8", "--listen", "127.0.0.1:0"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("host bits set"), std::string::npos) << r.err;
  r = run_eco({"serve", "--allow", "not-an-ip", "--listen", "127.0.0.1:0"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--allow"), std::string::npos) << r.err;
  r = run_eco({"serve", "--udp-drop-ports", "53,x", "--listen", "127.0.0.1:0"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--udp-drop-ports"), std::string::npos) << r.err;
}

ECO_ENGINE_SUITE(Access);

}  // namespace
}  // namespace eco::itest
