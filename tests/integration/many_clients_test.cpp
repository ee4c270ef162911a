// Many clients at once and many clients one after another.
#include <sys/socket.h>

#include <fmt/format.h>

#include "harness.h"

namespace eco::itest {
namespace {

using ManyClients = EngineTest;

TEST_P(ManyClients, ThousandConcurrentClientsEachGetTheirOwnEcho) {
  Server* srv = start_server({.extra = {"--quiet"}});
  ASSERT_TRUE(srv);
  const int baseline = srv->settled_fd_count();
  constexpr int kClients = 1000;
  std::vector<Fd> fds;
  for (int i = 0; i < kClients; ++i) {
    Fd fd = tcp_connect("127.0.0.1", srv->port());
    ASSERT_TRUE(fd.valid()) << "connect #" << i << " failed";
    fds.push_back(std::move(fd));
  }
  // All are open at the same time: every one must hold a server fd now.
  EXPECT_EQ(wait_fd_count(srv->pid(), baseline + kClients, 5000), baseline + kClients);
  // Every client sends first, then every client reads: all 1,000 in flight together.
  for (int i = 0; i < kClients; ++i)
    ASSERT_TRUE(send_all(fds[i].get(), fmt::format("client {};", i))) << "client " << i;
  int ok = 0;
  for (int i = 0; i < kClients; ++i) {
    std::string want = fmt::format("client {};", i);
    if (read_exact(fds[i].get(), want.size(), 5000) == want) ++ok;
  }
  EXPECT_EQ(ok, kClients);
  for (auto& fd : fds) ::shutdown(fd.get(), SHUT_WR);
  int eofs = 0;
  for (auto& fd : fds) eofs += expect_eof(fd.get(), 5000);
  EXPECT_EQ(eofs, kClients);
  fds.clear();
  EXPECT_EQ(wait_fd_count(srv->pid(), baseline, 5000), baseline);
}

TEST_P(ManyClients, TwentyThousandSequentialShortConnections) {
  Server* srv = start_server({.extra = {"--quiet"}});
  ASSERT_TRUE(srv);
  const int baseline = srv->settled_fd_count();
  constexpr int kConnections = 20000;
  int ok = 0;
  for (int i = 0; i < kConnections; ++i) {
    Fd fd = tcp_connect("127.0.0.1", srv->port());
    if (!fd.valid()) {
      ADD_FAILURE() << "connect #" << i << " failed";
      break;
    }
    if (echo_once(fd.get(), fmt::format("#{}", i))) ++ok;
  }
  EXPECT_EQ(ok, kConnections);
  EXPECT_EQ(wait_fd_count(srv->pid(), baseline, 5000), baseline) << "fds leaked";
}

ECO_ENGINE_SUITE(ManyClients);

}  // namespace
}  // namespace eco::itest
