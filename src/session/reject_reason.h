#pragma once
// Why the server ended a connection (or dropped a datagram) itself. One list for
// every engine, the counters, the logs and /metrics, so a reason has one name.
#include <cstddef>
#include <cstdint>

namespace eco::session {

enum class Reject : uint8_t {
  denied,            // --allow/--deny
  max_conns,         // --max-conns
  max_conns_per_ip,  // --max-conns-per-ip
  proxy_invalid,     // PROXY header malformed or missing
  proxy_timeout,     // PROXY header not complete in time
  idle_timeout,      // --idle-timeout
  max_duration,      // --max-conn-duration
  max_bytes,         // --max-bytes
  rate_limited,      // per-source byte or datagram rate
  reflector_port,    // UDP from a well-known reflector source port
  handshake_timeout,  // --tls-handshake-timeout
  handshake_limit,    // --tls-max-handshakes in progress on the thread
  count
};

inline constexpr size_t kRejectReasons = size_t(Reject::count);

// Stable snake_case names: log fields and the Prometheus `reason` label.
inline const char* to_string(Reject r) {
  switch (r) {
    case Reject::denied: return "denied";
    case Reject::max_conns: return "max_conns";
    case Reject::max_conns_per_ip: return "max_conns_per_ip";
    case Reject::proxy_invalid: return "proxy_invalid";
    case Reject::proxy_timeout: return "proxy_timeout";
    case Reject::idle_timeout: return "idle_timeout";
    case Reject::max_duration: return "max_duration";
    case Reject::max_bytes: return "max_bytes";
    case Reject::rate_limited: return "rate_limited";
    case Reject::reflector_port: return "reflector_port";
    case Reject::handshake_timeout: return "handshake_timeout";
    case Reject::handshake_limit: return "handshake_limit";
    case Reject::count: break;
  }
  return "unknown";
}

}  // namespace eco::session
