#pragma once
// CIDR prefixes and allow/deny lists (IPv4 and IPv6), checked before a connection's
// first byte is echoed. IPv4-mapped IPv6 peers (from a dual-stack [::] listener)
// match IPv4 prefixes.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "net/address.h"
#include "util/result.h"

namespace eco::net {

struct Cidr {
  int family = 0;                    // AF_INET or AF_INET6
  std::array<uint8_t, 16> bytes{};   // network address, host bits zero
  int prefix = 0;                    // 0-32 or 0-128

  bool contains(const Address& a) const;
  std::string to_string() const;
};

// "10.0.0.0/8", "192.168.1.7" (a /32), "::1/128", "2001:db8::/32". Host bits that are
// set are an error (a common typo for a different network than meant).
Result<Cidr> parse_cidr(std::string_view text);

// --allow / --deny: a peer is admitted when it matches no deny entry and, if any allow
// entries exist, at least one of them.
class AccessList {
 public:
  Status add_allow(std::string_view text);
  Status add_deny(std::string_view text);
  bool empty() const { return allow_.empty() && deny_.empty(); }
  bool admits(const Address& peer) const;

 private:
  std::vector<Cidr> allow_, deny_;
};

}  // namespace eco::net
