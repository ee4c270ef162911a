// UDP echo: each datagram goes back whole, as one datagram, to its sender; sizes
// from empty to the largest IPv4 payload (65507), over IPv4 and IPv6.
#include <poll.h>
#include <sys/socket.h>

#include "harness.h"

namespace eco::itest {
namespace {

using Udp = EngineTest;

// Sends each size once and expects exactly that datagram back (MSG_TRUNC reports
// the real length, so a truncated or merged echo cannot pass).
void check_sizes(const std::string& host, uint16_t port) {
  Fd fd = udp_socket(host, port);
  ASSERT_TRUE(fd.valid()) << "udp socket to " << host;
  int big = 1 << 20;
  setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  const size_t sizes[] = {0, 1, 2, 100, 512, 1024, 1472, 1473, 1500, 8192, 9000, 32768, 65535 - 28 - 1, 65507};
  std::vector<char> in(70000);
  uint32_t seed = 100;
  for (size_t n : sizes) {
    SCOPED_TRACE("datagram of " + std::to_string(n) + " bytes to " + host);
    std::string data = random_bytes(n, seed++);
    ASSERT_EQ(::send(fd.get(), data.data(), data.size(), 0), ssize_t(n)) << strerror(errno);
    pollfd p{fd.get(), POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 5000), 1) << "no echo within 5 s";
    ssize_t r = ::recv(fd.get(), in.data(), in.size(), MSG_TRUNC);
    ASSERT_EQ(r, ssize_t(n));
    EXPECT_TRUE(std::string(in.data(), size_t(r)) == data);
  }
}

TEST_P(Udp, DatagramsOfEverySizeOverIPv4) {
  Server* srv = start_server({.listen = {"udp://127.0.0.1:0"}});
  ASSERT_TRUE(srv);
  check_sizes("127.0.0.1", srv->port());
}

TEST_P(Udp, DatagramsOfEverySizeOverIPv6) {
  Server* srv = start_server({.listen = {"udp://[::1]:0"}});
  ASSERT_TRUE(srv);
  check_sizes("::1", srv->port());
}

TEST_P(Udp, DualStackWildcardAnswersBothFamilies) {
  // On [::], IPv4 senders arrive as v4-mapped addresses; the echo must still reach them.
  Server* srv = start_server({.listen = {"udp://[::]:0"}});
  ASSERT_TRUE(srv);
  check_sizes("127.0.0.1", srv->port());
  check_sizes("::1", srv->port());
}

TEST_P(Udp, UdpFlagServesBothProtocolsOnOnePort) {
  Server* srv = start_server({.listen = {"127.0.0.1:0"}, .extra = {"--udp"}});
  ASSERT_TRUE(srv);
  check_sizes("127.0.0.1", srv->port());
  Fd tcp = tcp_connect("127.0.0.1", srv->port());
  ASSERT_TRUE(tcp.valid());
  EXPECT_TRUE(echo_once(tcp.get(), "tcp too"));
}

TEST_P(Udp, EachSenderGetsItsOwnDatagrams) {
  // Several sockets interleave datagrams; each must only ever see its own echoes.
  Server* srv = start_server({.listen = {"udp://127.0.0.1:0"}});
  ASSERT_TRUE(srv);
  std::vector<Fd> socks;
  for (int i = 0; i < 8; ++i) {
    socks.push_back(udp_socket("127.0.0.1", srv->port()));
    ASSERT_TRUE(socks.back().valid());
  }
  for (int round = 0; round < 20; ++round)
    for (size_t i = 0; i < socks.size(); ++i) {
      std::string msg = "sock " + std::to_string(i) + " round " + std::to_string(round);
      ASSERT_EQ(::send(socks[i].get(), msg.data(), msg.size(), 0), ssize_t(msg.size()));
    }
  char buf[256];
  for (size_t i = 0; i < socks.size(); ++i)
    for (int round = 0; round < 20; ++round) {
      pollfd p{socks[i].get(), POLLIN, 0};
      ASSERT_EQ(::poll(&p, 1, 5000), 1);
      ssize_t r = ::recv(socks[i].get(), buf, sizeof buf, 0);
      ASSERT_GT(r, 0);
      EXPECT_EQ(std::string(buf, size_t(r)), "sock " + std::to_string(i) + " round " + std::to_string(round));
    }
}

TEST_P(Udp, EcoSendOverUdp) {
  Server* srv = start_server({.listen = {"udp://127.0.0.1:0", "udp://[::1]:0"}});
  ASSERT_TRUE(srv);
  RunResult r = run_eco({"send", "--udp", hostport("127.0.0.1", srv->port())});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "Received: b'Hello world! This is an echo server made with python.'\n");
  r = run_eco({"send", "udp://" + hostport("::1", srv->port()), "over v6"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "Received: b'over v6'\n");
}

ECO_ENGINE_SUITE(Udp);

}  // namespace
}  // namespace eco::itest
