#pragma once
// Operator limits for `eco serve`: connection caps, timeouts, per-source
// rates, access lists, PROXY protocol and the UDP reflector guard. Plain settings;
// Admission (shared) and each engine (per connection) enforce them. 0 means off.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.h"

namespace eco::session {

// Source ports of classic reflection/amplification services (and 0, never a real
// sender): an echo reply to them feeds a reflection attack or an echo<->chargen loop.
inline const std::vector<uint16_t> kDefaultReflectorPorts = {0,   7,   13,  17,  19,   37,
                                                             53,  123, 161, 389, 1900, 11211};

struct Limits {
  uint64_t max_conns = 0;          // open TCP connections, all threads together
  uint32_t max_conns_per_ip = 0;   // open TCP connections per source address
  uint64_t idle_timeout_ns = 0;    // no byte received or sent for this long: close
  uint64_t max_duration_ns = 0;    // connection age: close
  uint64_t max_bytes = 0;          // bytes received on one connection: close beyond it
  uint64_t rate_per_ip = 0;        // bytes/s per source (TCP), enforced by pausing reads
  std::vector<std::string> allow;  // CIDRs; empty: everyone not denied
  std::vector<std::string> deny;
  bool proxy_protocol = false;     // TCP listeners expect a PROXY v1/v2 header first
  uint64_t proxy_timeout_ns = 5'000'000'000;
  std::vector<uint16_t> udp_drop_ports = kDefaultReflectorPorts;
  uint32_t udp_rate_per_ip = 0;    // datagrams/s per source

  // Anything that needs per-connection deadlines (a timer in the loop).
  bool any_timer() const { return idle_timeout_ns || max_duration_ns || proxy_protocol; }
};

// "none" (empty list), or ports separated by commas: "0,7,19,53".
Result<std::vector<uint16_t>> parse_port_list(std::string_view text);
// "100", "100/s": datagrams per second (at least 1).
Result<uint32_t> parse_per_second(std::string_view text);

}  // namespace eco::session
