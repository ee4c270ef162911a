#include "net/proxy_protocol.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>
#include <string_view>
#include <vector>

namespace eco::net {
namespace {

constexpr uint8_t kV2Signature[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
constexpr char kV1Prefix[] = "PROXY ";

ProxyResult invalid(std::string why) { return {ProxyParse::invalid, std::move(why)}; }

bool parse_v1_port(std::string_view s, uint16_t& port) {
  // Ports are 1-5 digits without leading zeros (the spec forbids them), 0-65535.
  if (s.empty() || s.size() > 5 || (s.size() > 1 && s[0] == '0')) return false;
  unsigned v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || v > 65535) return false;
  port = uint16_t(v);
  return true;
}

bool parse_v1_addr(std::string_view s, int family, uint16_t port, Address& out) {
  std::string ip(s);
  out = Address{};
  if (family == AF_INET) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    if (inet_pton(AF_INET, ip.c_str(), &a.sin_addr) != 1) return false;
    out = Address::from(reinterpret_cast<sockaddr*>(&a), sizeof a);
  } else {
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(port);
    if (inet_pton(AF_INET6, ip.c_str(), &a.sin6_addr) != 1) return false;
    out = Address::from(reinterpret_cast<sockaddr*>(&a), sizeof a);
  }
  return true;
}

ProxyResult parse_v1(const uint8_t* data, size_t len, ProxyHeader& out) {
  const char* p = reinterpret_cast<const char*>(data);
  size_t scan = std::min(len, kProxyV1MaxLine);
  const void* lf = std::memchr(p, '\n', scan);
  if (!lf) {
    if (len >= kProxyV1MaxLine) return invalid("PROXY v1 line longer than 107 bytes");
    return {};
  }
  size_t line_len = size_t(static_cast<const char*>(lf) - p) + 1;
  if (line_len < 2 || p[line_len - 2] != '\r') return invalid("PROXY v1 line does not end in CRLF");
  std::string_view line(p, line_len - 2);
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (start <= line.size()) {
    size_t sp = line.find(' ', start);
    if (sp == std::string_view::npos) sp = line.size();
    parts.push_back(line.substr(start, sp - start));
    start = sp + 1;
  }
  for (auto part : parts)
    if (part.empty()) return invalid("PROXY v1 line has an empty field");
  out = ProxyHeader{};
  out.length = line_len;
  if (parts.size() >= 2 && parts[1] == "UNKNOWN") {
    out.local = true;  // the spec: ignore whatever follows UNKNOWN
    return {ProxyParse::done, {}};
  }
  if (parts.size() != 6) return invalid("PROXY v1 line must have 6 fields");
  int family;
  if (parts[1] == "TCP4") family = AF_INET;
  else if (parts[1] == "TCP6") family = AF_INET6;
  else return invalid("PROXY v1 protocol must be TCP4, TCP6 or UNKNOWN");
  uint16_t sport, dport;
  if (!parse_v1_port(parts[4], sport) || !parse_v1_port(parts[5], dport)) return invalid("PROXY v1 bad port");
  if (!parse_v1_addr(parts[2], family, sport, out.source) || !parse_v1_addr(parts[3], family, dport, out.destination))
    return invalid("PROXY v1 bad address");
  return {ProxyParse::done, {}};
}

ProxyResult parse_v2(const uint8_t* data, size_t len, ProxyHeader& out) {
  if (len < 16) return {};
  uint8_t ver_cmd = data[12], fam = data[13];
  size_t body = (size_t(data[14]) << 8) | data[15];
  if ((ver_cmd >> 4) != 2) return invalid("PROXY v2 bad version");
  uint8_t cmd = ver_cmd & 0x0f;
  if (cmd > 1) return invalid("PROXY v2 bad command");
  if (16 + body > kProxyMaxHeader) return invalid("PROXY v2 header too long");
  if (len < 16 + body) return {};
  out = ProxyHeader{};
  out.length = 16 + body;
  if (cmd == 0) {  // LOCAL: the balancer's own connection, e.g. a health check
    out.local = true;
    return {ProxyParse::done, {}};
  }
  const uint8_t* a = data + 16;
  uint8_t family = fam >> 4, transport = fam & 0x0f;
  if (transport != 1 && transport != 2 && !(family == 0 && transport == 0))
    return invalid("PROXY v2 bad transport");
  if (family == 1) {  // AF_INET: src 4, dst 4, sport 2, dport 2
    if (body < 12) return invalid("PROXY v2 address block too short");
    sockaddr_in s{}, d{};
    s.sin_family = d.sin_family = AF_INET;
    std::memcpy(&s.sin_addr, a, 4);
    std::memcpy(&d.sin_addr, a + 4, 4);
    std::memcpy(&s.sin_port, a + 8, 2);
    std::memcpy(&d.sin_port, a + 10, 2);
    out.source = Address::from(reinterpret_cast<sockaddr*>(&s), sizeof s);
    out.destination = Address::from(reinterpret_cast<sockaddr*>(&d), sizeof d);
  } else if (family == 2) {  // AF_INET6: src 16, dst 16, sport 2, dport 2
    if (body < 36) return invalid("PROXY v2 address block too short");
    sockaddr_in6 s{}, d{};
    s.sin6_family = d.sin6_family = AF_INET6;
    std::memcpy(&s.sin6_addr, a, 16);
    std::memcpy(&d.sin6_addr, a + 16, 16);
    std::memcpy(&s.sin6_port, a + 32, 2);
    std::memcpy(&d.sin6_port, a + 34, 2);
    out.source = Address::from(reinterpret_cast<sockaddr*>(&s), sizeof s);
    out.destination = Address::from(reinterpret_cast<sockaddr*>(&d), sizeof d);
  } else if (family == 0) {
    out.local = true;  // UNSPEC: no address to use; treat like LOCAL
  } else {
    return invalid("PROXY v2 address family not supported (only IPv4 and IPv6)");
  }
  return {ProxyParse::done, {}};
}

}  // namespace

ProxyResult parse_proxy_header(const uint8_t* data, size_t len, ProxyHeader& out) {
  // Decide the version from the first bytes, as soon as they can tell.
  size_t n = std::min(len, sizeof kV2Signature);
  if (std::memcmp(data, kV2Signature, n) == 0) {
    if (len < sizeof kV2Signature) return {};
    return parse_v2(data, len, out);
  }
  n = std::min(len, sizeof kV1Prefix - 1);
  if (std::memcmp(data, kV1Prefix, n) == 0) {
    if (len < sizeof kV1Prefix - 1) return {};
    return parse_v1(data, len, out);
  }
  return invalid("no PROXY protocol header");
}

}  // namespace eco::net
