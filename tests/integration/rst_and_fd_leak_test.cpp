// Connections that end abruptly (RST via SO_LINGER 0, close with unread echo, close
// mid-stream) end only themselves: no fd is leaked, no error is logged, and the
// server keeps serving.
#include <sys/socket.h>

#include <thread>

#include "harness.h"

namespace eco::itest {
namespace {

using RstAndFdLeak = EngineTest;

TEST_P(RstAndFdLeak, TwoThousandResetConnectionsLeaveNoFdBehind) {
  Server* srv = start_server();
  ASSERT_TRUE(srv);
  const int baseline = srv->settled_fd_count();
  ASSERT_GT(baseline, 0);
  const std::string payload = random_bytes(4096, 5);
  int made = 0;
  // 20 waves of 100 open connections, each sent data and reset in a different state:
  // before its echo, after it, or with echo still unread in the client.
  for (int wave = 0; wave < 20; ++wave) {
    std::vector<Fd> fds;
    for (int i = 0; i < 100; ++i) {
      Fd fd = tcp_connect("127.0.0.1", srv->port());
      ASSERT_TRUE(fd.valid()) << "connect failed in wave " << wave;
      fds.push_back(std::move(fd));
    }
    for (size_t i = 0; i < fds.size(); ++i) {
      int fd = fds[i].get();
      switch (i % 4) {
        case 0: break;  // reset without sending anything
        case 1: send_all(fd, payload); break;  // reset with the echo unread
        case 2: echo_once(fd, "x"); break;  // reset after a complete echo
        case 3: send_all(fd, payload); ::shutdown(fd, SHUT_WR); break;  // reset while half-closed
      }
      set_linger_rst(fd);
    }
    made += int(fds.size());
    fds.clear();  // close(): RST for every one
  }
  EXPECT_EQ(made, 2000);
  EXPECT_EQ(wait_fd_count(srv->pid(), baseline, 10000), baseline) << "server fds not back to baseline";
  // Still serving.
  Fd fd = tcp_connect("127.0.0.1", srv->port());
  ASSERT_TRUE(fd.valid());
  EXPECT_TRUE(echo_once(fd.get(), "after the resets"));
  // Resets end quietly: info-level close lines, nothing at warn or error.
  std::string log = srv->log();
  EXPECT_EQ(log.find(" warn "), std::string::npos) << log.substr(0, 4000);
  EXPECT_EQ(log.find(" error "), std::string::npos) << log.substr(0, 4000);
}

TEST_P(RstAndFdLeak, ClientClosingWhileServerSendsDoesNotHurtOthers) {
  // The client vanishes while the server has a large echo in flight to it (EPIPE /
  // ECONNRESET on the server's send): only that connection ends.
  Server* srv = start_server({.extra = {"--threads", "1"}});
  ASSERT_TRUE(srv);
  const int baseline = srv->settled_fd_count();
  Fd keep = tcp_connect("127.0.0.1", srv->port());
  ASSERT_TRUE(keep.valid());
  ASSERT_TRUE(echo_once(keep.get(), "before"));
  const std::string big = random_bytes(2u << 20, 6);
  for (int i = 0; i < 20; ++i) {
    Fd fd = tcp_connect("127.0.0.1", srv->port());
    ASSERT_TRUE(fd.valid());
    // Send what fits without reading, then close (FIN, and RST once the echo hits it).
    ::send(fd.get(), big.data(), big.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  }
  EXPECT_EQ(wait_fd_count(srv->pid(), baseline + 1, 10000), baseline + 1);
  EXPECT_TRUE(echo_once(keep.get(), "after"));
  EXPECT_TRUE(srv->running());
}

ECO_ENGINE_SUITE(RstAndFdLeak);

}  // namespace
}  // namespace eco::itest
