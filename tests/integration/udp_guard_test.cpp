// UDP abuse guard: no echo to reflector source ports (default list, or
// --udp-drop-ports), and a per-source datagram rate; every drop counted by reason.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include "harness.h"
#include "policy_helpers.h"

namespace eco::itest {
namespace {

using UdpGuard = EngineTest;

// A UDP socket on 127.0.0.1:src_port (0: any) connected to the server; invalid if the
// port cannot be bound (in use, or below 1024 without the capability).
Fd udp_from(uint16_t src_port, uint16_t server_port) {
  Fd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(src_port);
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return Fd();
  if (server_port) {
    a.sin_port = htons(server_port);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return Fd();
  }
  return fd;
}

uint16_t local_port(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

bool echoed(int fd, const std::string& msg, int timeout_ms) {
  if (::send(fd, msg.data(), msg.size(), 0) != ssize_t(msg.size())) return false;
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) != 1) return false;
  char buf[2048];
  ssize_t n = ::recv(fd, buf, sizeof buf, 0);
  return n == ssize_t(msg.size()) && std::string(buf, size_t(n)) == msg;
}

void connect_to(int fd, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
}

TEST_P(UdpGuard, ConfiguredDropPortGetsNoEchoOthersDo) {
  Fd dropped = udp_from(0, 0);  // any free port; the server is told to drop it
  ASSERT_TRUE(dropped.valid());
  uint16_t p = local_port(dropped.get());
  Server* srv = start_server({.listen = {"udp://127.0.0.1:0"},
                              .extra = {"--udp-drop-ports", "53," + std::to_string(p)}});
  ASSERT_TRUE(srv);
  connect_to(dropped.get(), srv->port());
  EXPECT_FALSE(echoed(dropped.get(), "reflect me", 400));
  EXPECT_FALSE(echoed(dropped.get(), "reflect me", 200));
  Fd normal = udp_socket("127.0.0.1", srv->port());
  EXPECT_TRUE(echoed(normal.get(), "fine", 2000));
  EXPECT_EQ(refused_count(summary_after_stop(*srv), "reflector_port"), 2u) << srv->log();
}

TEST_P(UdpGuard, DefaultReflectorPortsAreDropped) {
  Server* srv = start_server({.listen = {"udp://127.0.0.1:0"}});
  ASSERT_TRUE(srv);
  int tried = 0;
  for (uint16_t port : {uint16_t(53), uint16_t(123), uint16_t(19)}) {
    Fd fd = udp_from(port, srv->port());
    if (!fd.valid()) continue;  // needs CAP_NET_BIND_SERVICE, and the port free
    ++tried;
    EXPECT_FALSE(echoed(fd.get(), "amplify", 300)) << "echoed to source port " << port;
  }
  if (tried == 0) GTEST_SKIP() << "cannot bind a source port below 1024 here";
  Fd normal = udp_socket("127.0.0.1", srv->port());
  EXPECT_TRUE(echoed(normal.get(), "fine", 2000));
  EXPECT_EQ(refused_count(summary_after_stop(*srv), "reflector_port"), uint64_t(tried)) << srv->log();
}

TEST_P(UdpGuard, NoneTurnsTheDropListOff) {
  Fd fd = udp_from(0, 0);
  ASSERT_TRUE(fd.valid());
  Server* srv = start_server({.listen = {"udp://127.0.0.1:0"}, .extra = {"--udp-drop-ports", "none"}});
  ASSERT_TRUE(srv);
  connect_to(fd.get(), srv->port());
  EXPECT_TRUE(echoed(fd.get(), "no list", 2000));
  Fd low = udp_from(19, srv->port());  // chargen's port, when it can be bound
  if (low.valid()) {
    EXPECT_TRUE(echoed(low.get(), "from 19", 2000));
  }
}

TEST_P(UdpGuard, PerSourceRateDropsAboveTheRate) {
  // 20/s with a one-second burst: of 100 datagrams sent at once about 20 come back.
  Server* srv = start_server({.listen = {"udp://127.0.0.1:0"}, .extra = {"--udp-rate-per-ip", "20/s"}});
  ASSERT_TRUE(srv);
  Fd fd = udp_socket("127.0.0.1", srv->port());
  ASSERT_TRUE(fd.valid());
  int big = 1 << 20;
  setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  for (int i = 0; i < 100; ++i) ASSERT_EQ(::send(fd.get(), "flood", 5, 0), 5);
  int back = 0;
  char buf[64];
  for (;;) {
    pollfd p{fd.get(), POLLIN, 0};
    if (::poll(&p, 1, 500) != 1) break;
    if (::recv(fd.get(), buf, sizeof buf, 0) > 0) ++back;
  }
  EXPECT_GE(back, 10);
  EXPECT_LE(back, 40);
  uint64_t limited = refused_count(summary_after_stop(*srv), "rate_limited");
  EXPECT_EQ(limited + uint64_t(back), 100u) << srv->log();
}

ECO_ENGINE_SUITE(UdpGuard);

}  // namespace
}  // namespace eco::itest
