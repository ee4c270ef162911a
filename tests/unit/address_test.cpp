#include "net/address.h"

#include <gtest/gtest.h>

using namespace eco::net;

TEST(ParseHostPort, TutorialDefaults) {
  auto hp = parse_host_port("");
  ASSERT_TRUE(hp.ok());
  EXPECT_EQ(hp->host, "127.0.0.1");
  EXPECT_EQ(hp->port, 5346);
  EXPECT_FALSE(hp->has_scheme);
}

TEST(ParseHostPort, Ipv4WithPort) {
  auto hp = parse_host_port("0.0.0.0:7");
  ASSERT_TRUE(hp.ok());
  EXPECT_EQ(hp->host, "0.0.0.0");
  EXPECT_EQ(hp->port, 7);
}

TEST(ParseHostPort, BracketedIpv6) {
  auto hp = parse_host_port("[::1]:5346");
  ASSERT_TRUE(hp.ok());
  EXPECT_EQ(hp->host, "::1");
  EXPECT_EQ(hp->port, 5346);
  auto any = parse_host_port("[::]:0");
  ASSERT_TRUE(any.ok());
  EXPECT_EQ(any->host, "::");
  EXPECT_EQ(any->port, 0);
}

TEST(ParseHostPort, BareIpv6MeansDefaultPort) {
  auto hp = parse_host_port("::1");
  ASSERT_TRUE(hp.ok());
  EXPECT_EQ(hp->host, "::1");
  EXPECT_EQ(hp->port, 5346);
}

TEST(ParseHostPort, HostOnlyAndPortOnly) {
  auto h = parse_host_port("localhost");
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->host, "localhost");
  EXPECT_EQ(h->port, 5346);
  auto p = parse_host_port(":9000");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->host, "127.0.0.1");
  EXPECT_EQ(p->port, 9000);
}

TEST(ParseHostPort, Schemes) {
  auto u = parse_host_port("udp://[::1]:7");
  ASSERT_TRUE(u.ok());
  EXPECT_TRUE(u->has_scheme);
  EXPECT_EQ(u->proto, Proto::udp);
  EXPECT_EQ(u->host, "::1");
  auto t = parse_host_port("tcp://127.0.0.1:1");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->proto, Proto::tcp);
  auto bad = parse_host_port("http://x:1");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("scheme"), std::string::npos);
}

TEST(ParseHostPort, TlsSchemeIsTcpWithTlsWhereTheCallerSpeaksIt) {
  auto t = parse_host_port("tls://[::1]:8443", true);
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE(t->has_scheme);
  EXPECT_TRUE(t->tls);
  EXPECT_EQ(t->proto, Proto::tcp);
  EXPECT_EQ(t->host, "::1");
  EXPECT_EQ(t->port, 8443);
  auto d = parse_host_port("tls://", true);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->host, "127.0.0.1");
  EXPECT_EQ(d->port, 5346);
  EXPECT_FALSE(parse_host_port("tcp://127.0.0.1:1", true)->tls);
  auto refused = parse_host_port("tls://127.0.0.1:1");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().message, "invalid address 'tls://127.0.0.1:1': TLS is not available here (use tcp:// or udp://)");
  auto bad = parse_host_port("https://x:1", true);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("tls://"), std::string::npos);
  EXPECT_FALSE(parse_host_port("udp://tls://x", true).ok());
}

TEST(ParseHostPort, PortOutOfRangeNamesTheValue) {
  auto hp = parse_host_port("127.0.0.1:70000");
  ASSERT_FALSE(hp.ok());
  EXPECT_EQ(hp.error().message, "invalid port '70000' (must be 0-65535)");
}

TEST(ParseHostPort, Malformed) {
  for (const char* s : {"127.0.0.1:", "127.0.0.1:abc", "127.0.0.1:-1", "[::1", "[::1]x", "[]:80", "[::1]:",
                        "1.2.3.4:65536", "host:12ab"}) {
    EXPECT_FALSE(parse_host_port(s).ok()) << s;
  }
}

TEST(Resolve, NumericAddressesAndFormatting) {
  auto a = resolve(*parse_host_port("127.0.0.1:5346"), Proto::tcp, false);
  ASSERT_TRUE(a.ok());
  ASSERT_EQ(a->size(), 1u);
  EXPECT_EQ(a->front().family(), AF_INET);
  EXPECT_EQ(a->front().to_string(), "127.0.0.1:5346");
  auto b = resolve(*parse_host_port("[::1]:80"), Proto::udp, false);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->front().family(), AF_INET6);
  EXPECT_EQ(b->front().to_string(), "[::1]:80");
  EXPECT_FALSE(b->front().is_wildcard());
  auto w = resolve(*parse_host_port("[::]:0"), Proto::tcp, true);
  ASSERT_TRUE(w.ok());
  EXPECT_TRUE(w->front().is_wildcard());
}

TEST(Resolve, LocalhostResolves) {
  auto a = resolve(*parse_host_port("localhost:1"), Proto::tcp, false);
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_GE(a->size(), 1u);
}

TEST(Resolve, UnknownHostIsAClearError) {
  auto a = resolve(*parse_host_port("no-such-host.invalid:1"), Proto::tcp, false);
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.error().message.find("cannot resolve 'no-such-host.invalid'"), std::string::npos);
}

TEST(Address, MappedIpv4PrintsAsIpv4) {
  sockaddr_in6 a6{};
  a6.sin6_family = AF_INET6;
  a6.sin6_port = htons(42);
  a6.sin6_addr.s6_addr[10] = 0xff;
  a6.sin6_addr.s6_addr[11] = 0xff;
  a6.sin6_addr.s6_addr[12] = 127;
  a6.sin6_addr.s6_addr[15] = 1;
  auto a = Address::from(reinterpret_cast<sockaddr*>(&a6), sizeof a6);
  EXPECT_EQ(a.to_string(), "127.0.0.1:42");
  a.set_port(43);
  EXPECT_EQ(a.port(), 43);
}
