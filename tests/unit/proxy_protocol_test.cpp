#include "net/proxy_protocol.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using namespace eco::net;

static ProxyResult parse(const std::string& s, ProxyHeader& h) {
  return parse_proxy_header(reinterpret_cast<const uint8_t*>(s.data()), s.size(), h);
}

TEST(ProxyV1, Tcp4) {
  ProxyHeader h;
  std::string hdr = "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n";
  auto r = parse(hdr + "payload", h);
  ASSERT_EQ(r.state, ProxyParse::done) << r.error;
  EXPECT_FALSE(h.local);
  EXPECT_EQ(h.source.to_string(), "192.0.2.1:56324");
  EXPECT_EQ(h.destination.to_string(), "198.51.100.2:443");
  EXPECT_EQ(h.length, hdr.size());
}

TEST(ProxyV1, Tcp6AndUnknown) {
  ProxyHeader h;
  ASSERT_EQ(parse("PROXY TCP6 2001:db8::1 ::1 1 2\r\n", h).state, ProxyParse::done);
  EXPECT_EQ(h.source.to_string(), "[2001:db8::1]:1");
  ASSERT_EQ(parse("PROXY UNKNOWN\r\n", h).state, ProxyParse::done);
  EXPECT_TRUE(h.local);
}

TEST(ProxyV1, IncompleteNeedsMore) {
  ProxyHeader h;
  std::string full = "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n";
  for (size_t i = 0; i < full.size(); ++i)
    EXPECT_EQ(parse(full.substr(0, i), h).state, ProxyParse::need_more) << i;
}

TEST(ProxyV1, StrictAboutTheSpec) {
  ProxyHeader h;
  for (const char* s : {"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", "PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",
                        "PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n", "PROXY TCP4 ::1 5.6.7.8 1 2\r\n",
                        "PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", "PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n",
                        "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", "GET / HTTP/1.0\r\n", "hello"})
    EXPECT_EQ(parse(s, h).state, ProxyParse::invalid) << s;
  EXPECT_EQ(parse("PROXY " + std::string(200, 'x'), h).state, ProxyParse::invalid);
}

static std::string v2(uint8_t ver_cmd, uint8_t fam, const std::vector<uint8_t>& body) {
  std::string s("\x0D\x0A\x0D\x0A\x00\x0D\x0A\x51\x55\x49\x54\x0A", 12);
  s += char(ver_cmd);
  s += char(fam);
  s += char(body.size() >> 8);
  s += char(body.size() & 0xff);
  s.append(body.begin(), body.end());
  return s;
}

TEST(ProxyV2, Ipv4WithTlvs) {
  std::vector<uint8_t> body{10, 0, 0, 1, 10, 0, 0, 2, 0x1f, 0x90, 0x00, 0x50};
  body.insert(body.end(), {0x04, 0x00, 0x02, 'h', 'i'});  // a TLV, skipped
  ProxyHeader h;
  std::string hdr = v2(0x21, 0x11, body);
  auto r = parse(hdr + "data", h);
  ASSERT_EQ(r.state, ProxyParse::done) << r.error;
  EXPECT_EQ(h.source.to_string(), "10.0.0.1:8080");
  EXPECT_EQ(h.destination.to_string(), "10.0.0.2:80");
  EXPECT_EQ(h.length, hdr.size());
  for (size_t i = 0; i < hdr.size(); ++i) EXPECT_EQ(parse(hdr.substr(0, i), h).state, ProxyParse::need_more) << i;
}

TEST(ProxyV2, Ipv6AndLocal) {
  std::vector<uint8_t> body(36, 0);
  body[15] = 1;                 // src ::1
  body[32] = 0x12, body[33] = 0x34;
  ProxyHeader h;
  ASSERT_EQ(parse(v2(0x21, 0x21, body), h).state, ProxyParse::done);
  EXPECT_EQ(h.source.to_string(), "[::1]:4660");
  ASSERT_EQ(parse(v2(0x20, 0x00, {}), h).state, ProxyParse::done);
  EXPECT_TRUE(h.local);
}

TEST(ProxyV2, RejectsMalformed) {
  ProxyHeader h;
  EXPECT_EQ(parse(v2(0x11, 0x11, std::vector<uint8_t>(12)), h).state, ProxyParse::invalid);  // version 1
  EXPECT_EQ(parse(v2(0x23, 0x11, std::vector<uint8_t>(12)), h).state, ProxyParse::invalid);  // command 3
  EXPECT_EQ(parse(v2(0x21, 0x11, std::vector<uint8_t>(8)), h).state, ProxyParse::invalid);   // short block
  EXPECT_EQ(parse(v2(0x21, 0x21, std::vector<uint8_t>(20)), h).state, ProxyParse::invalid);
  EXPECT_EQ(parse(v2(0x21, 0x31, std::vector<uint8_t>(216)), h).state, ProxyParse::invalid);  // AF_UNIX
  EXPECT_EQ(parse(v2(0x21, 0x11, std::vector<uint8_t>(4000)), h).state, ProxyParse::invalid);  // too long
}
