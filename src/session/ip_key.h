#pragma once
// A source address without its port, as a fixed 16-byte key for the per-source tables
// (IPv4 and IPv4-mapped IPv6 give the same key, so a dual-stack listener counts one
// client once), and a seeded hash so a remote sender cannot aim at one bucket.
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <cstring>

namespace eco::session {

struct IpKey {
  uint64_t hi = 0, lo = 0;
  bool operator==(const IpKey&) const = default;
};

// False for a non-IP address (then no per-source rule applies).
inline bool ip_key(const sockaddr* sa, IpKey& k) {
  uint8_t b[16] = {};
  if (sa->sa_family == AF_INET) {
    b[10] = b[11] = 0xff;  // ::ffff:a.b.c.d, the mapped form
    std::memcpy(b + 12, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, 4);
  } else if (sa->sa_family == AF_INET6) {
    std::memcpy(b, &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, 16);
  } else {
    return false;
  }
  std::memcpy(&k.hi, b, 8);
  std::memcpy(&k.lo, b + 8, 8);
  return true;
}

inline uint64_t ip_hash(const IpKey& k, uint64_t seed) {
  // Two rounds of a 64-bit mixer (splitmix64 finaliser) over seed-keyed halves.
  auto mix = [](uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
  };
  return mix(mix(k.hi ^ seed) ^ k.lo);
}

// Source port of an IPv4/IPv6 sockaddr (host order); 0 for anything else.
inline uint16_t port_of(const sockaddr* sa) {
  if (sa->sa_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(sa)->sin_port);
  if (sa->sa_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(sa)->sin6_port);
  return 0;
}

}  // namespace eco::session
