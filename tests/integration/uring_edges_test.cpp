// Edges only the io_uring engine has: running out of provided receive buffers, and
// falling back to epoll when io_uring cannot be used.
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdlib>
#include <thread>
#include <vector>

#include "engine/uring_probe.h"
#include "harness.h"

namespace eco::itest {
namespace {

// Sets an environment variable for the servers and clients this test spawns.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) { ::setenv(name, value, 1); }
  ~ScopedEnv() { ::unsetenv(name_); }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
};

// 32 clients send at once through a ring of four 512-byte buffers: the ring runs dry
// again and again (receives end with ENOBUFS), and every byte must still come back,
// in order, to the right client, with no connection left stalled.
// `features`: what the server's debug line must say about the io_uring paths it took.
void burst_through_tiny_ring(const char* features, std::vector<std::string> more = {}) {
  raise_fd_limit();
  std::vector<std::string> extra{"--threads", "1", "--log-level", "debug", "--uring-buf-ring-entries", "4",
                                 "--uring-buf-size", "512"};
  extra.insert(extra.end(), more.begin(), more.end());
  Server srv({.engine = "uring", .extra = extra});
  ASSERT_TRUE(srv.start());

  constexpr int kClients = 32;
  constexpr size_t kBytes = 256 * 1024;
  std::vector<Fd> fds;
  for (int i = 0; i < kClients; ++i) {
    fds.push_back(tcp_connect("127.0.0.1", srv.port()));
    ASSERT_TRUE(fds.back().valid()) << "client " << i;
  }
  std::vector<std::string> sent(kClients), got(kClients);
  std::vector<int> clean(kClients, 0);
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    sent[i] = random_bytes(kBytes, uint32_t(1000 + i));
    threads.emplace_back([&, i] {
      bool eof = false;
      got[i] = echo_roundtrip(fds[i].get(), sent[i], 30000, eof);
      clean[i] = eof;
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kClients; ++i) {
    EXPECT_TRUE(clean[i]) << "client " << i << ": no clean close after " << got[i].size() << " bytes";
    ASSERT_EQ(got[i].size(), sent[i].size()) << "client " << i;
    EXPECT_TRUE(got[i] == sent[i]) << "client " << i << ": echo differs";
  }
  // The test must really have run the ring dry, or it proves nothing.
  EXPECT_TRUE(srv.wait_log("receive buffers exhausted", 2000)) << srv.log();
  EXPECT_EQ(srv.count_in_log(features), 1u) << srv.log();
  EXPECT_TRUE(srv.stop());
}

TEST(UringEdges, BurstExhaustingATinyBufferRingLosesNoByte) {
  if (!engine::uring_features().available)
    GTEST_SKIP() << "io_uring unavailable: " << engine::uring_features().reason;
  burst_through_tiny_ring(engine::uring_features().summary().c_str());
}

// The same through a one-entry SQ and a four-entry CQ: every turn completes more than
// four requests, so the CQ overflows (the kernel keeps the rest, NODROP) and the SQ fills
// in mid-turn; neither may lose a completion or a byte.
TEST(UringEdges, BurstThroughAOneEntryRingOverflowsTheCqAndLosesNoByte) {
  if (!engine::uring_features().available)
    GTEST_SKIP() << "io_uring unavailable: " << engine::uring_features().reason;
  burst_through_tiny_ring(engine::uring_features().summary().c_str(), {"--uring-ring-entries", "1"});
}

// The same on the paths older kernels take: COOP_TASKRUN instead of DEFER_TASKRUN, and
// single-shot receives where the multishot byte cap (6.17) is missing.
TEST(UringEdges, BurstOnTheOlderKernelPathsLosesNoByte) {
  if (!engine::uring_features().available)
    GTEST_SKIP() << "io_uring unavailable: " << engine::uring_features().reason;
  ScopedEnv env("ECO_URING_OFF", "defer_taskrun,recv_cap");
  burst_through_tiny_ring("io_uring (coop_taskrun, single-shot recv (no multishot byte cap)");
}

// More datagrams in flight than the UDP buffer ring has buffers (16): the multishot
// recvmsg runs dry (ENOBUFS) while echoes are still being sent, and must be re-armed
// once they give their buffers back, or UDP goes silent for good. 64 sockets each keep
// one datagram in flight and send the next as soon as the echo is back.
TEST(UringEdges, UdpBeyondTheBufferRingKeepsEchoing) {
  if (!engine::uring_features().available)
    GTEST_SKIP() << "io_uring unavailable: " << engine::uring_features().reason;
  Server srv({.engine = "uring", .listen = {"udp://127.0.0.1:0"}, .extra = {"--threads", "1", "--quiet"}});
  ASSERT_TRUE(srv.start());
  constexpr int kSockets = 64;
  constexpr int kRounds = 200;
  std::vector<Fd> socks;
  std::vector<pollfd> pfds;
  std::vector<int> done(kSockets, 0);
  auto message = [](int sock, int round) { return "socket " + std::to_string(sock) + " round " + std::to_string(round); };
  for (int i = 0; i < kSockets; ++i) {
    socks.push_back(udp_socket("127.0.0.1", srv.port()));
    ASSERT_TRUE(socks.back().valid());
    pfds.push_back({socks.back().get(), POLLIN, 0});
    std::string m = message(i, 0);
    ASSERT_EQ(::send(socks[i].get(), m.data(), m.size(), 0), ssize_t(m.size()));
  }
  int finished = 0;
  while (finished < kSockets) {
    int n = ::poll(pfds.data(), pfds.size(), 3000);
    ASSERT_GT(n, 0) << "UDP went silent with " << finished << " of " << kSockets << " sockets done";
    for (int i = 0; i < kSockets; ++i) {
      if (!(pfds[i].revents & POLLIN)) continue;
      char buf[128];
      ssize_t r = ::recv(socks[i].get(), buf, sizeof buf, 0);
      ASSERT_EQ(std::string(buf, size_t(std::max<ssize_t>(r, 0))), message(i, done[i]));
      if (++done[i] == kRounds) {
        pfds[i].events = 0;
        ++finished;
        continue;
      }
      std::string m = message(i, done[i]);
      ASSERT_EQ(::send(socks[i].get(), m.data(), m.size(), 0), ssize_t(m.size()));
    }
  }
  EXPECT_TRUE(srv.stop());
}

// With io_uring unavailable (simulated), auto falls back to epoll with one line that
// says why, and still echoes.
TEST(UringEdges, AutoFallsBackToEpollWithOneLineSayingWhy) {
  ScopedEnv env("ECO_DISABLE_URING", "1");
  ScopedEnv no_sockmap("ECO_DISABLE_SOCKMAP", "1");  // auto would take sockmap first
  Server srv({.engine = "auto"});
  ASSERT_TRUE(srv.start());
  Fd fd = tcp_connect("127.0.0.1", srv.port());
  ASSERT_TRUE(fd.valid());
  EXPECT_TRUE(echo_once(fd.get(), "fallback"));
  EXPECT_EQ(srv.count_in_log("not io_uring (disabled by ECO_DISABLE_URING); using epoll"), 1u) << srv.log();
  EXPECT_EQ(srv.count_in_log("auto: "), 1u) << srv.log();
  EXPECT_TRUE(srv.wait_log("serving with engine epoll", 1000)) << srv.log();
  fd.reset();
  EXPECT_TRUE(srv.stop());
}

// Forcing the engine where it cannot work is a usage error: exit 2, one clear line.
TEST(UringEdges, ForcedUringWhereUnavailableExitsTwo) {
  ScopedEnv env("ECO_DISABLE_URING", "1");
  RunResult r = run_eco({"serve", "--engine", "uring", "--listen", "127.0.0.1:0"}, {}, 10000);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("eco: cannot use --engine uring: disabled by ECO_DISABLE_URING"), std::string::npos)
      << r.err;
}

// Where io_uring works, auto picks it.
TEST(UringEdges, AutoPicksUringWhenAvailable) {
  if (!engine::uring_features().available)
    GTEST_SKIP() << "io_uring unavailable: " << engine::uring_features().reason;
  ScopedEnv no_sockmap("ECO_DISABLE_SOCKMAP", "1");  // auto would take sockmap first
  Server srv({.engine = "auto"});
  ASSERT_TRUE(srv.start());
  EXPECT_TRUE(srv.wait_log("serving with engine uring", 1000)) << srv.log();
  EXPECT_TRUE(srv.stop());
}

}  // namespace
}  // namespace eco::itest
