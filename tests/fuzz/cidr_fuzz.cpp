// libFuzzer target: --allow / --deny lists (net/cidr.h) as an operator or a config file
// writes them, and the admission check run on every accepted peer. Input: lines of CIDR
// text; the last 16 bytes (when present) are a peer address to check against the list.
#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "net/cidr.h"

namespace {

eco::net::Address v4(const uint8_t* b) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  std::memcpy(&a.sin_addr, b, 4);
  return eco::net::Address::from(reinterpret_cast<const sockaddr*>(&a), sizeof a);
}

eco::net::Address v6(const uint8_t* b) {
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  std::memcpy(&a.sin6_addr, b, 16);
  return eco::net::Address::from(reinterpret_cast<const sockaddr*>(&a), sizeof a);
}

// The same IPv4 address as an IPv4-mapped IPv6 peer (what a dual-stack [::] listener sees).
eco::net::Address mapped(const uint8_t* b) {
  uint8_t m[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, b[0], b[1], b[2], b[3]};
  return v6(m);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  uint8_t peer[16] = {};
  size_t text_size = size;
  if (size >= 16) {
    text_size = size - 16;
    std::memcpy(peer, data + text_size, 16);
  }
  std::string_view text(reinterpret_cast<const char*>(data), text_size);
  eco::net::AccessList list;
  bool any_deny = false;
  bool mapped_entry = false;  // an IPv6 /80-/95 entry overlapping ::ffff:0:0/96 (see below)
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    bool deny = !line.empty() && line[0] == '!';
    if (deny) line.remove_prefix(1);
    auto c = eco::net::parse_cidr(line);
    auto s = deny ? list.add_deny(line) : list.add_allow(line);
    // The list accepts exactly what parse_cidr accepts, and every refusal says why.
    if (c.ok() != s.ok()) std::abort();
    if (!s.ok() && s.error().message.empty()) std::abort();
    if (c.ok()) {
      if (deny) any_deny = true;
      // Entries inside ::ffff:0:0/96 become the IPv4 network (peers in that range are
      // judged as IPv4, so an IPv6 entry there would match nobody).
      // An IPv6 entry of /80 to /95 only overlaps that range: its own (mapped) address is
      // judged as IPv4 and so is not "contained"; that one case is left unchecked.
      static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
      if (c->family == AF_INET6 && c->prefix >= 96 && std::memcmp(c->bytes.data(), kMapped, 12) == 0)
        std::abort();  // must have been turned into IPv4
      bool is_mapped = c->family == AF_INET6 && c->prefix >= 80 && c->prefix < 96 &&
                       std::memcmp(c->bytes.data(), kMapped, 10) == 0;
      mapped_entry = mapped_entry || is_mapped;
      // A network contains its own address, and its text form parses back to itself.
      auto again = eco::net::parse_cidr(c->to_string());
      if (!again.ok() || again->bytes != c->bytes || again->prefix != c->prefix || again->family != c->family)
        std::abort();
      auto self = c->family == AF_INET ? v4(c->bytes.data()) : v6(c->bytes.data());
      if (!is_mapped && !c->contains(self)) std::abort();
    }
  }
  // An empty list admits everyone; an IPv4 peer is judged the same whether it arrives
  // as IPv4 or IPv4-mapped IPv6 (from a dual-stack listener).
  if (list.empty() && !list.admits(v4(peer))) std::abort();
  if (!mapped_entry && list.admits(v4(peer)) != list.admits(mapped(peer))) std::abort();
  (void)any_deny;
  (void)list.admits(v6(peer));
  return 0;
}
