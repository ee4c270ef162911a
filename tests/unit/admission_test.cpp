// session::Admission: access lists, the global and per-source caps (slots come back on
// release), the bounded source table, and the per-source byte budget.
#include "session/admission.h"

#include <gtest/gtest.h>

namespace eco::session {
namespace {

net::Address addr(const char* host, uint16_t port = 1000) {
  net::HostPort hp;
  hp.host = host;
  hp.port = port;
  auto r = net::resolve(hp, net::Proto::tcp, false);
  EXPECT_TRUE(r && !r->empty());
  return r->front();
}

std::unique_ptr<Admission> make(const Limits& l) {
  auto a = Admission::create(l);
  EXPECT_TRUE(a) << a.error().message;
  return std::move(*a);
}

TEST(Admission, NothingConfiguredAdmitsEveryoneAndNeedsNoAddress) {
  auto a = make(Limits{});
  EXPECT_FALSE(a->enabled());
  EXPECT_FALSE(a->needs_peer_address());
  for (int i = 0; i < 1000; ++i) EXPECT_FALSE(a->admit(addr("127.0.0.1")));
}

TEST(Admission, GlobalCapAndRelease) {
  Limits l;
  l.max_conns = 2;
  auto a = make(l);
  EXPECT_FALSE(a->admit(addr("127.0.0.1")));
  EXPECT_FALSE(a->admit(addr("127.0.0.2")));
  EXPECT_EQ(a->admit(addr("127.0.0.3")), Reject::max_conns);
  a->release(addr("127.0.0.1"));
  EXPECT_FALSE(a->admit(addr("127.0.0.3")));
  EXPECT_EQ(a->open_connections(), 2u);
}

TEST(Admission, PerSourceCapIgnoresPortsAndMapsIPv4InIPv6) {
  Limits l;
  l.max_conns_per_ip = 2;
  auto a = make(l);
  EXPECT_TRUE(a->needs_peer_address());
  EXPECT_FALSE(a->admit(addr("10.0.0.1", 1)));
  EXPECT_FALSE(a->admit(addr("::ffff:10.0.0.1", 2)));  // the same client via a dual-stack socket
  EXPECT_EQ(a->admit(addr("10.0.0.1", 3)), Reject::max_conns_per_ip);
  EXPECT_FALSE(a->admit(addr("10.0.0.2", 3)));
  a->release(addr("10.0.0.1", 1));
  EXPECT_FALSE(a->admit(addr("10.0.0.1", 4)));
}

TEST(Admission, RefusedByPerSourceCapGivesTheGlobalSlotBack) {
  Limits l;
  l.max_conns = 2;
  l.max_conns_per_ip = 1;
  auto a = make(l);
  EXPECT_FALSE(a->admit(addr("10.0.0.1")));
  for (int i = 0; i < 10; ++i) EXPECT_EQ(a->admit(addr("10.0.0.1")), Reject::max_conns_per_ip);
  EXPECT_FALSE(a->admit(addr("10.0.0.2")));
}

TEST(Admission, ManySourcesDoNotGrowTheTable) {
  Limits l;
  l.max_conns_per_ip = 1;
  l.max_conns = 512;  // table: 1024 entries
  auto a = make(l);
  int admitted = 0;
  for (int i = 0; i < 4096; ++i) {
    std::string ip = "10.1." + std::to_string(i / 256) + "." + std::to_string(i % 256);
    if (!a->admit(addr(ip.c_str()))) ++admitted;
  }
  EXPECT_EQ(admitted, 512);  // the global cap, not the table, is what stops them
}

TEST(Admission, AccessListsAndProxyTwoStep) {
  Limits l;
  l.deny = {"192.0.2.0/24"};
  l.max_conns = 1;
  auto a = make(l);
  EXPECT_EQ(a->admit(addr("192.0.2.5")), Reject::denied);
  EXPECT_FALSE(a->admit_pending());
  EXPECT_EQ(a->admit_pending(), Reject::max_conns);
  uint32_t src;
  EXPECT_EQ(a->admit_source(addr("192.0.2.9"), src), Reject::denied);
  a->release_pending();
  EXPECT_FALSE(a->admit_pending());
  EXPECT_FALSE(a->admit_source(addr("198.51.100.1"), src));
  a->release(addr("198.51.100.1"));
  EXPECT_FALSE(a->admit(addr("198.51.100.1")));
}

TEST(Admission, BadNetworkIsAnError) {
  Limits l;
  l.allow = {"10.0.0.1/8"};
  auto a = Admission::create(l);
  ASSERT_FALSE(a);
  EXPECT_NE(a.error().message.find("--allow"), std::string::npos);
}

TEST(Admission, ByteBudgetPausesForTheDebt) {
  Limits l;
  l.rate_per_ip = 1000;  // bytes/s, a one-second burst
  auto a = make(l);
  uint32_t src;
  ASSERT_FALSE(a->admit(addr("10.0.0.1"), src));
  ASSERT_NE(src, Admission::kNoSource);
  uint64_t t = 1'000'000'000'000;
  // The first second's worth passes (the bucket starts full, as of admission time).
  EXPECT_EQ(a->charge(src, 1000, t), 0u);
  uint64_t wait = a->charge(src, 500, t);  // 500 bytes of debt: half a second
  EXPECT_GE(wait, 490'000'000u);
  EXPECT_LE(wait, 510'000'000u);
  EXPECT_EQ(a->charge(src, 0, t + 600'000'000), 0u);  // paid off
  // A second connection of the same source shares the budget.
  uint32_t src2;
  ASSERT_FALSE(a->admit(addr("10.0.0.1", 2), src2));
  EXPECT_EQ(src2, src);
}

TEST(Limits, PortListAndRateParsing) {
  auto p = parse_port_list("53,123,0");
  ASSERT_TRUE(p);
  EXPECT_EQ(*p, (std::vector<uint16_t>{53, 123, 0}));
  auto none = parse_port_list("none");
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
  EXPECT_FALSE(parse_port_list("53,,1"));
  EXPECT_FALSE(parse_port_list("70000"));
  EXPECT_FALSE(parse_port_list(""));
  EXPECT_EQ(*parse_per_second("100/s"), 100u);
  EXPECT_EQ(*parse_per_second("7"), 7u);
  EXPECT_FALSE(parse_per_second("0"));
  EXPECT_FALSE(parse_per_second("fast"));
}

}  // namespace
}  // namespace eco::session
