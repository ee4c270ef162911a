#include "net/cidr.h"

#include <gtest/gtest.h>

using namespace eco::net;

static Address addr(const char* s) { return resolve(*parse_host_port(s), Proto::tcp, false)->front(); }

TEST(Cidr, ParsesAndMatchesIpv4) {
  auto c = parse_cidr("10.0.0.0/8");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_TRUE(c->contains(addr("10.1.2.3:1")));
  EXPECT_FALSE(c->contains(addr("11.0.0.1:1")));
  EXPECT_FALSE(c->contains(addr("[::1]:1")));
  EXPECT_EQ(c->to_string(), "10.0.0.0/8");
}

TEST(Cidr, OddPrefixLengths) {
  auto c = parse_cidr("192.168.1.128/25");
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->contains(addr("192.168.1.200:1")));
  EXPECT_FALSE(c->contains(addr("192.168.1.127:1")));
  auto all = parse_cidr("0.0.0.0/0");
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->contains(addr("8.8.8.8:1")));
}

TEST(Cidr, BareAddressIsAHostRoute) {
  auto c = parse_cidr("127.0.0.1");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->prefix, 32);
  EXPECT_TRUE(c->contains(addr("127.0.0.1:9")));
  EXPECT_FALSE(c->contains(addr("127.0.0.2:9")));
}

TEST(Cidr, Ipv6AndMappedIpv4) {
  auto c = parse_cidr("2001:db8::/32");
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->contains(addr("[2001:db8:1::5]:1")));
  EXPECT_FALSE(c->contains(addr("[2001:db9::5]:1")));
  // A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d; IPv4 prefixes must match them.
  auto v4 = parse_cidr("127.0.0.0/8");
  ASSERT_TRUE(v4.ok());
  EXPECT_TRUE(v4->contains(addr("[::ffff:127.0.0.5]:1")));
}

TEST(Cidr, MappedIpv6EntryMeansTheIpv4Network) {
  // `--deny ::ffff:10.1.2.3` must deny that IPv4 client, seen as IPv4 or as mapped IPv6.
  auto host = parse_cidr("::ffff:10.1.2.3");
  ASSERT_TRUE(host.ok());
  EXPECT_TRUE(host->contains(addr("10.1.2.3:1")));
  EXPECT_TRUE(host->contains(addr("[::ffff:10.1.2.3]:1")));
  EXPECT_FALSE(host->contains(addr("10.1.2.4:1")));
  auto net = parse_cidr("::ffff:10.0.0.0/104");
  ASSERT_TRUE(net.ok());
  EXPECT_EQ(net->to_string(), "10.0.0.0/8");
  EXPECT_TRUE(net->contains(addr("10.200.0.1:1")));
  AccessList deny;
  ASSERT_TRUE(deny.add_deny("::ffff:127.0.0.9").ok());
  EXPECT_FALSE(deny.admits(addr("127.0.0.9:1")));
  EXPECT_TRUE(deny.admits(addr("127.0.0.8:1")));
}

TEST(Cidr, RejectsBadInputWithReasons) {
  auto host_bits = parse_cidr("10.0.0.1/8");
  ASSERT_FALSE(host_bits.ok());
  EXPECT_NE(host_bits.error().message.find("did you mean 10.0.0.0/8"), std::string::npos);
  for (const char* s : {"", "10.0.0.0/", "10.0.0.0/33", "::/129", "10.0.0.0/-1", "10.0.0/8", "abc", "10.0.0.0/8x",
                        "1.2.3.4/ 8"})
    EXPECT_FALSE(parse_cidr(s).ok()) << s;
}

TEST(AccessList, DenyWinsAndAllowRestricts) {
  AccessList open;
  EXPECT_TRUE(open.admits(addr("1.2.3.4:1")));
  AccessList acl;
  ASSERT_TRUE(acl.add_allow("127.0.0.0/8").ok());
  ASSERT_TRUE(acl.add_deny("127.0.0.66").ok());
  EXPECT_TRUE(acl.admits(addr("127.0.0.1:1")));
  EXPECT_FALSE(acl.admits(addr("127.0.0.66:1")));
  EXPECT_FALSE(acl.admits(addr("[::1]:1")));
  EXPECT_FALSE(acl.add_allow("nonsense").ok());
}
