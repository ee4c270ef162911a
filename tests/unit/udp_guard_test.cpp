// session::UdpGuard: reflector ports, access list, and the fixed per-source rate table.
#include "session/udp_guard.h"

#include "sockaddr_v4.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>

namespace eco::session {
namespace {

std::optional<Reject> check(UdpGuard& g, const char* ip, uint16_t port, uint64_t now) {
  sockaddr_storage ss{};  // what the engines pass: room for either family
  sockaddr_in a = v4(ip, port);
  std::memcpy(&ss, &a, sizeof a);
  return g.check(reinterpret_cast<sockaddr*>(&ss), sizeof a, now);
}

TEST(UdpGuard, DefaultDropsReflectorPorts) {
  Limits l;
  auto adm = Admission::create(l);
  ASSERT_TRUE(adm);
  Counters counters;
  UdpGuard g(l, **adm, counters);
  for (uint16_t p : kDefaultReflectorPorts) EXPECT_EQ(check(g, "10.0.0.1", p, 0), Reject::reflector_port) << p;
  EXPECT_FALSE(check(g, "10.0.0.1", 40000, 0));
  Limits none;
  none.udp_drop_ports.clear();
  UdpGuard off(none, **adm, counters);
  EXPECT_FALSE(off.active());
  EXPECT_FALSE(check(off, "10.0.0.1", 53, 0));
}

// pass() is check() plus the books: a drop is counted under its reason.
TEST(UdpGuard, PassCountsEachDropByReason) {
  Limits l;
  auto adm = Admission::create(l);
  ASSERT_TRUE(adm);
  Counters counters;
  UdpGuard g(l, **adm, counters);
  auto pass = [&](uint16_t port) {
    sockaddr_storage ss{};
    sockaddr_in a = v4("10.0.0.1", port);
    std::memcpy(&ss, &a, sizeof a);
    return g.pass(reinterpret_cast<sockaddr*>(&ss), sizeof a, 0);
  };
  EXPECT_FALSE(pass(19));  // chargen: a reflector port
  EXPECT_TRUE(pass(40000));
  EXPECT_EQ(counters.rejected[size_t(Reject::reflector_port)].load(), 1u);
}

TEST(UdpGuard, RateAllowsABurstThenOnePerInterval) {
  Limits l;
  l.udp_rate_per_ip = 10;
  auto adm = Admission::create(l);
  ASSERT_TRUE(adm);
  Counters counters;
  UdpGuard g(l, **adm, counters);
  uint64_t t = 5'000'000'000;
  int passed = 0;
  for (int i = 0; i < 50; ++i) passed += !check(g, "10.0.0.1", 40000, t);
  EXPECT_EQ(passed, 10);
  EXPECT_EQ(check(g, "10.0.0.1", 40000, t), Reject::rate_limited);
  EXPECT_FALSE(check(g, "10.0.0.2", 40000, t));             // another source
  EXPECT_FALSE(check(g, "10.0.0.1", 40000, t + 100'000'000));  // one interval later
}

TEST(UdpGuard, SpoofedFloodOnlyEvicts) {
  Limits l;
  l.udp_rate_per_ip = 1;
  auto adm = Admission::create(l);
  ASSERT_TRUE(adm);
  Counters counters;
  UdpGuard g(l, **adm, counters);
  // Far more sources than entries: each new one takes an entry over, nothing grows,
  // and every first datagram of a source passes.
  for (uint32_t i = 0; i < 100000; ++i) {
    in_addr ip{htonl(0x0a000000u + i)};
    char s[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &ip, s, sizeof s);
    EXPECT_FALSE(check(g, s, 40000, 1'000'000'000));
  }
}

}  // namespace
}  // namespace eco::session
