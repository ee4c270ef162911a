#include "net/cidr.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

#include <fmt/format.h>

namespace eco::net {
namespace {

// The peer as (family, 16 bytes), with IPv4-mapped IPv6 unmapped to IPv4.
bool peer_bytes(const Address& a, int& family, std::array<uint8_t, 16>& out) {
  out.fill(0);
  if (a.family() == AF_INET) {
    family = AF_INET;
    std::memcpy(out.data(), &reinterpret_cast<const sockaddr_in*>(&a.storage)->sin_addr, 4);
    return true;
  }
  if (a.family() == AF_INET6) {
    const auto& in6 = reinterpret_cast<const sockaddr_in6*>(&a.storage)->sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(&in6)) {
      family = AF_INET;
      std::memcpy(out.data(), &in6.s6_addr[12], 4);
    } else {
      family = AF_INET6;
      std::memcpy(out.data(), &in6, 16);
    }
    return true;
  }
  return false;
}

bool prefix_matches(const std::array<uint8_t, 16>& net, const std::array<uint8_t, 16>& addr, int prefix) {
  int full = prefix / 8, rest = prefix % 8;
  if (std::memcmp(net.data(), addr.data(), size_t(full)) != 0) return false;
  if (rest == 0) return true;
  uint8_t mask = uint8_t(0xff << (8 - rest));
  return (net[size_t(full)] & mask) == (addr[size_t(full)] & mask);
}

}  // namespace

bool Cidr::contains(const Address& a) const {
  int fam;
  std::array<uint8_t, 16> b;
  if (!peer_bytes(a, fam, b) || fam != family) return false;
  return prefix_matches(bytes, b, prefix);
}

std::string Cidr::to_string() const {
  char buf[INET6_ADDRSTRLEN] = "?";
  inet_ntop(family, bytes.data(), buf, sizeof buf);
  return fmt::format("{}/{}", buf, prefix);
}

Result<Cidr> parse_cidr(std::string_view text) {
  std::string_view addr = text, len;
  if (size_t slash = text.find('/'); slash != std::string_view::npos) {
    addr = text.substr(0, slash);
    len = text.substr(slash + 1);
  }
  Cidr c;
  std::string a(addr);
  if (inet_pton(AF_INET, a.c_str(), c.bytes.data()) == 1) {
    c.family = AF_INET;
  } else if (inet_pton(AF_INET6, a.c_str(), c.bytes.data()) == 1) {
    c.family = AF_INET6;
  } else {
    return Error{fmt::format("invalid network '{}': not an IPv4 or IPv6 address", text)};
  }
  int max = c.family == AF_INET ? 32 : 128;
  c.prefix = max;
  if (!len.empty() || text.find('/') != std::string_view::npos) {
    int p = -1;
    auto [end, ec] = std::from_chars(len.data(), len.data() + len.size(), p);
    if (len.empty() || ec != std::errc() || end != len.data() + len.size() || p < 0 || p > max)
      return Error{fmt::format("invalid network '{}': prefix length must be 0-{}", text, max)};
    c.prefix = p;
  }
  std::array<uint8_t, 16> masked{};
  for (int i = 0; i < c.prefix / 8; ++i) masked[size_t(i)] = c.bytes[size_t(i)];
  if (c.prefix % 8) masked[size_t(c.prefix / 8)] = uint8_t(c.bytes[size_t(c.prefix / 8)] & (0xff << (8 - c.prefix % 8)));
  if (masked != c.bytes) {
    Cidr fixed = c;
    fixed.bytes = masked;
    return Error{fmt::format("invalid network '{}': host bits set (did you mean {}?)", text, fixed.to_string())};
  }
  // An IPv4-mapped entry (::ffff:10.1.2.3, ::ffff:10.0.0.0/104) means the IPv4 network:
  // peers in that range are compared as IPv4 (see peer_bytes), so kept as IPv6 it would
  // match no one and `--deny ::ffff:10.1.2.3` would silently deny nothing.
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (c.family == AF_INET6 && c.prefix >= 96 && std::memcmp(c.bytes.data(), kMapped, 12) == 0) {
    std::array<uint8_t, 16> v4{};
    std::memcpy(v4.data(), &c.bytes[12], 4);
    c.family = AF_INET;
    c.bytes = v4;
    c.prefix -= 96;
  }
  return c;
}

Status AccessList::add_allow(std::string_view text) {
  auto c = parse_cidr(text);
  if (!c) return c.error();
  allow_.push_back(*c);
  return {};
}

Status AccessList::add_deny(std::string_view text) {
  auto c = parse_cidr(text);
  if (!c) return c.error();
  deny_.push_back(*c);
  return {};
}

bool AccessList::admits(const Address& peer) const {
  for (const Cidr& c : deny_)
    if (c.contains(peer)) return false;
  if (allow_.empty()) return true;
  for (const Cidr& c : allow_)
    if (c.contains(peer)) return true;
  return false;
}

}  // namespace eco::net
