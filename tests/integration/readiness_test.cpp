// READY=1 (sd_notify, and what the harness waits for) means serving: by then every
// loop, UDP ones included, has made its fds (epoll instance, ring, BPF maps and
// programs) and armed its listeners. Before this held, a slow BPF load (TSan build)
// finished after the harness took its fd baseline, and a leak check saw 8 fds too many.
#include "harness.h"

namespace eco::itest {
namespace {

using Readiness = EngineTest;

TEST_P(Readiness, EveryLoopHasMadeItsFdsWhenReadyIsSent) {
  Server* srv = start_server({.extra = {"--threads", "2", "--udp", "--quiet"}});
  ASSERT_TRUE(srv);
  ASSERT_TRUE(srv->wait_ready(15000)) << srv->log();
  const int at_ready = fd_count(srv->pid());
  const int settled = srv->settled_fd_count();
  // At READY=1 the notify socket itself may still be open (one more), never one fewer.
  EXPECT_GE(at_ready, settled) << "fds were still being made after READY=1";
  EXPECT_LE(at_ready, settled + 1);
  // And it serves, both protocols.
  Fd tcp = tcp_connect("127.0.0.1", srv->port());
  ASSERT_TRUE(tcp.valid());
  EXPECT_TRUE(echo_once(tcp.get(), "ready?"));
  Fd udp = udp_socket("127.0.0.1", srv->port());
  ASSERT_TRUE(udp.valid());
  EXPECT_TRUE(echo_once(udp.get(), "ready?"));
}

}  // namespace

ECO_ENGINE_SUITE(Readiness);

}  // namespace eco::itest
