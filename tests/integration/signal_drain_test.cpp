// SIGTERM/SIGINT: stop accepting, let open connections finish (up to
// --drain-timeout), exit 0. A second signal exits at once.
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>

#include <atomic>
#include <thread>

#include <fmt/format.h>

#include "harness.h"

namespace eco::itest {
namespace {

using SignalDrain = EngineTest;

// True once connecting to port is refused (the listener is closed), within timeout.
bool refuses_connections(uint16_t port, int timeout_ms) {
  double deadline = now_ms() + timeout_ms;
  while (now_ms() < deadline) {
    int err = 0;
    Fd fd = tcp_connect_err("127.0.0.1", port, 500, err);
    if (!fd.valid() && err == ECONNREFUSED) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

TEST_P(SignalDrain, SigtermLetsAConnectionMidEchoFinishThenExitsZero) {
  Server* srv = start_server({.drain_timeout = "20s"});
  ASSERT_TRUE(srv);
  Fd fd = tcp_connect("127.0.0.1", srv->port());
  ASSERT_TRUE(fd.valid());
  const std::string data = random_bytes(32u << 20, 77);
  // Send the first part and take its echo, so the transfer is provably under way.
  const size_t first = 1u << 20;
  ASSERT_TRUE(send_all(fd.get(), std::string_view(data).substr(0, first)));
  std::string back = read_exact(fd.get(), first, 10000);
  ASSERT_EQ(back.size(), first);

  srv->signal(SIGTERM);
  ASSERT_TRUE(srv->wait_log("draining 1 connection", 5000)) << srv->log();
  // The rest of the 32 MiB still goes through, while the server is draining.
  bool eof;
  back += echo_roundtrip(fd.get(), std::string_view(data).substr(first), 30000, eof);
  EXPECT_TRUE(eof) << "no clean EOF after the drained echo";
  EXPECT_EQ(back.size(), data.size());
  EXPECT_TRUE(back == data);
  auto code = srv->wait_exit(10000);
  ASSERT_TRUE(code.has_value()) << "server still running after its last connection ended";
  EXPECT_EQ(*code, 0) << srv->log();
  EXPECT_EQ(srv->log().find("cut at shutdown"), std::string::npos) << srv->log();
}

TEST_P(SignalDrain, DrainStopsAcceptingNewConnections) {
  Server* srv = start_server({.drain_timeout = "20s"});
  ASSERT_TRUE(srv);
  Fd held = tcp_connect("127.0.0.1", srv->port());
  ASSERT_TRUE(held.valid());
  ASSERT_TRUE(echo_once(held.get(), "hold"));
  srv->signal(SIGTERM);
  EXPECT_TRUE(refuses_connections(srv->port(), 3000)) << "still accepting while draining";
  // The connection that was open keeps its echo service during the drain.
  EXPECT_TRUE(echo_once(held.get(), "still echoing"));
  ASSERT_EQ(::shutdown(held.get(), SHUT_WR), 0);
  EXPECT_TRUE(expect_eof(held.get(), 5000));
  auto code = srv->wait_exit(5000);
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << srv->log();
}

TEST_P(SignalDrain, SigintWithNoConnectionsExitsZeroPromptly) {
  Server* srv = start_server();
  ASSERT_TRUE(srv);
  srv->signal(SIGINT);
  auto code = srv->wait_exit(3000);
  ASSERT_TRUE(code.has_value()) << "no exit within 3 s of SIGINT";
  EXPECT_EQ(*code, 0) << srv->log();
  EXPECT_TRUE(srv->wait_log("SIGINT", 100)) << srv->log();
}

TEST_P(SignalDrain, SecondSignalExitsAtOnce) {
  Server* srv = start_server({.drain_timeout = "60s"});
  ASSERT_TRUE(srv);
  Fd idle = tcp_connect("127.0.0.1", srv->port());
  ASSERT_TRUE(idle.valid());
  ASSERT_TRUE(echo_once(idle.get(), "idle now"));
  srv->signal(SIGTERM);
  ASSERT_TRUE(srv->wait_log("draining 1 connection", 5000)) << srv->log();
  EXPECT_TRUE(srv->running()) << "exited before the drain timeout with a connection open";
  double t0 = now_ms();
  srv->signal(SIGTERM);
  auto code = srv->wait_exit(3000);
  ASSERT_TRUE(code.has_value()) << "second SIGTERM did not end the server within 3 s (drain timeout is 60 s)";
  EXPECT_LT(now_ms() - t0, 3000.0);
  // Exits by its own hand (no crash), with the conventional 128 + signal code.
  EXPECT_EQ(*code, 128 + SIGTERM) << srv->log();
  // The idle client is cut off.
  EXPECT_TRUE(expect_eof(idle.get(), 2000) || !echo_once(idle.get(), "x", 500));
}

TEST_P(SignalDrain, DrainTimeoutCutsAnIdleConnectionAndExitsZero) {
  Server* srv = start_server({.drain_timeout = "700ms"});
  ASSERT_TRUE(srv);
  Fd idle = tcp_connect("127.0.0.1", srv->port());
  ASSERT_TRUE(idle.valid());
  ASSERT_TRUE(echo_once(idle.get(), "then silence"));
  double t0 = now_ms();
  srv->signal(SIGTERM);
  auto code = srv->wait_exit(5000);
  double took = now_ms() - t0;
  ASSERT_TRUE(code.has_value()) << "no exit within 5 s; drain timeout is 0.7 s";
  EXPECT_EQ(*code, 0) << srv->log();
  EXPECT_GE(took, 600.0) << "exited before the drain timeout although a connection was open";
  // The server closed the idle connection: the client sees EOF (or a reset).
  bool eof;
  std::string rest = read_to_eof(idle.get(), 2000, eof);
  EXPECT_TRUE(rest.empty());
  EXPECT_TRUE(srv->wait_log("drain timeout", 100)) << srv->log();
  EXPECT_TRUE(srv->wait_log("1 connection(s) cut at shutdown", 100)) << srv->log();
}

TEST_P(SignalDrain, SignalRightAfterThePortFileAppearsStillDrainsAndExitsZero) {
  // The port file says "ready": a SIGTERM sent the moment it appears must already be
  // handled as a graceful stop (exit 0), not kill the process by default action.
  // The harness waits for the file with inotify, so it signals within microseconds
  // of the rename and a gap before the signal handling is installed shows up.
  int killed = 0;
  std::string codes;
  for (int i = 0; i < 15; ++i) {
    Server srv({.engine = GetParam(), .extra = {"--threads", "1", "--log-level", "warn"}});
    ASSERT_TRUE(srv.start());
    srv.signal(SIGTERM);
    auto code = srv.wait_exit(5000);
    ASSERT_TRUE(code.has_value());
    if (*code != 0) {
      ++killed;
      codes += fmt::format(" {}", *code);
    }
  }
  EXPECT_EQ(killed, 0) << killed << " of 15 servers did not exit 0 on a SIGTERM right after start; codes:" << codes;
}

ECO_ENGINE_SUITE(SignalDrain);

}  // namespace
}  // namespace eco::itest
