// Out of file descriptors (EMFILE): the server keeps serving the connections it
// has, does not spin on the listener, and accepts the waiting ones once fds free up.
#include <cstdio>
#include <thread>

#include "harness.h"

namespace eco::itest {
namespace {

using FdExhaustion = EngineTest;

constexpr rlim_t kLimit = 64;

TEST_P(FdExhaustion, ExistingConnectionsServedNoBusyLoopAndQueuedOnesServedLater) {
  Server* srv = start_server({.extra = {"--threads", "1"}, .nofile = kLimit});
  ASSERT_TRUE(srv);
  const int baseline = srv->settled_fd_count();
  ASSERT_GT(baseline, 0);
  ASSERT_LT(baseline, int(kLimit) - 10) << "the server needs too many fds to start";

  // More connections than the server has fds; the kernel completes every handshake
  // and parks the rest in the listen backlog.
  constexpr int kConns = 100;
  std::vector<Fd> fds;
  for (int i = 0; i < kConns; ++i) {
    Fd fd = tcp_connect("127.0.0.1", srv->port());
    ASSERT_TRUE(fd.valid()) << "connect #" << i;
    fds.push_back(std::move(fd));
  }
  // The server takes fds up to its limit, and no further.
  double deadline = now_ms() + 5000;
  while (fd_count(srv->pid()) < int(kLimit) && now_ms() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(fd_count(srv->pid()), int(kLimit));
  EXPECT_TRUE(srv->wait_log("pausing accepts", 2000)) << srv->log();

  // The first connections were accepted and still echo.
  EXPECT_TRUE(echo_once(fds[0].get(), "first"));
  EXPECT_TRUE(echo_once(fds[1].get(), "second"));
  // The last one waits in the backlog: no echo yet.
  ASSERT_TRUE(send_all(fds[kConns - 1].get(), "queued"));
  EXPECT_EQ(read_exact(fds[kConns - 1].get(), 6, 300), "") << "a connection beyond the fd limit was served";

  // No busy loop while accepting is impossible: CPU over one second stays low.
  double cpu0 = cpu_seconds(srv->pid());
  double t0 = now_ms();
  std::this_thread::sleep_for(std::chrono::seconds(1));
  double cpu = cpu_seconds(srv->pid()) - cpu0;
  double wall = (now_ms() - t0) / 1000.0;
  std::printf("[   info   ] out of fds: server CPU %.3f s over %.3f s\n", cpu, wall);
  EXPECT_LT(cpu / wall, 0.30) << "server used " << cpu << " s CPU in " << wall << " s while out of fds";
  EXPECT_TRUE(echo_once(fds[0].get(), "still"));
  // One warning for the episode, not one per retry (the retries run every 100 ms).
  EXPECT_EQ(srv->count_in_log("pausing accepts"), 1u) << srv->log();

  // Free half of them: the queued connections are accepted and served.
  for (int i = 0; i < kConns / 2; ++i) fds[i].reset();
  EXPECT_EQ(read_exact(fds[kConns - 1].get(), 6, 5000), "queued");
  int ok = 0;
  for (int i = kConns / 2; i < kConns - 1; ++i) ok += echo_once(fds[i].get(), "later " + std::to_string(i));
  EXPECT_EQ(ok, kConns / 2 - 1);
  fds.clear();
  EXPECT_EQ(wait_fd_count(srv->pid(), baseline, 5000), baseline);
}

TEST_P(FdExhaustion, RepeatedExhaustionRecoversEachTime) {
  Server* srv = start_server({.extra = {"--threads", "1", "--quiet"}, .nofile = kLimit});
  ASSERT_TRUE(srv);
  const int baseline = srv->settled_fd_count();
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    std::vector<Fd> fds;
    for (int i = 0; i < 80; ++i) {
      fds.push_back(tcp_connect("127.0.0.1", srv->port()));
      ASSERT_TRUE(fds.back().valid());
    }
    // Close all but the last; the last must then be served.
    Fd last = std::move(fds.back());
    fds.clear();
    EXPECT_TRUE(echo_once(last.get(), "round done", 5000));
  }
  EXPECT_EQ(wait_fd_count(srv->pid(), baseline, 5000), baseline);
}

ECO_ENGINE_SUITE(FdExhaustion);

}  // namespace
}  // namespace eco::itest
