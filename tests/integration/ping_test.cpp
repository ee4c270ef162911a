// eco ping: one line per probe, the ping(8)-style statistics, and loss reported
// when nothing answers.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "bench_run.h"

namespace eco::itest {
namespace {

size_t count_lines_with(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

std::string free_port_address() {
  // A port just bound and released: nothing listens there.
  Fd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(s.get(), reinterpret_cast<sockaddr*>(&a), len) != 0) return "";
  getsockname(s.get(), reinterpret_cast<sockaddr*>(&a), &len);
  return "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
}

using Ping = EcoServeTest;

TEST_F(Ping, TcpProbesAndStatistics) {
  auto r = run_eco({"ping", addr_, "-c", "4", "-i", "0.05", "-s", "100"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(count_lines_with(r.out, "100 bytes from " + addr_ + ": seq="), 4u) << r.out;
  EXPECT_NE(r.out.find("seq=3 time="), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--- " + addr_ + " echo ping statistics ---"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("4 sent, 4 received, 0% loss"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("rtt min/avg/max/mdev = "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("connect time "), std::string::npos) << r.out;
}

TEST_F(Ping, UdpProbesAndStatistics) {
  auto r = run_eco({"ping", addr_, "--udp", "-c", "3", "-i", "0.05"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(count_lines_with(r.out, "64 bytes from udp://" + addr_ + ": seq="), 3u) << r.out;
  EXPECT_NE(r.out.find("3 sent, 3 received, 0% loss"), std::string::npos) << r.out;
}

TEST(PingNoServer, ClosedUdpPortIsLoss) {
  std::string addr = free_port_address();
  ASSERT_FALSE(addr.empty());
  auto r = run_eco({"ping", "udp://" + addr, "-c", "2", "-i", "0.05", "-W", "0.3"});
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_NE(r.out.find("2 sent, 0 received, 100% loss"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("rtt min"), std::string::npos) << "no round trip to summarize";
}

TEST(PingNoServer, ClosedTcpPortCannotConnect) {
  std::string addr = free_port_address();
  ASSERT_FALSE(addr.empty());
  auto r = run_eco({"ping", addr, "-c", "2"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("cannot connect"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace eco::itest
