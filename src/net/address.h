#pragma once
// Addresses: parsing "host:port", "[v6]:port", "tcp://..." / "udp://..." / "tls://...", resolving
// names, and formatting peers. Nothing else in eco parses an address.
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.h"

namespace eco::net {

inline constexpr uint16_t kDefaultPort = 5346;  // the tutorial's port
inline constexpr std::string_view kDefaultHost = "127.0.0.1";

enum class Proto { tcp, udp };
const char* proto_name(Proto p);

// A resolved socket address (IPv4 or IPv6).
struct Address {
  sockaddr_storage storage{};
  socklen_t len = 0;

  int family() const { return storage.ss_family; }
  uint16_t port() const;
  void set_port(uint16_t port);
  const sockaddr* sa() const { return reinterpret_cast<const sockaddr*>(&storage); }
  sockaddr* sa() { return reinterpret_cast<sockaddr*>(&storage); }
  // "127.0.0.1:5346" or "[::1]:5346"; IPv4-mapped IPv6 peers print as IPv4.
  std::string to_string() const;
  bool is_wildcard() const;

  static Address from(const sockaddr* sa, socklen_t len);
};

// What the user wrote, split but not yet resolved.
struct HostPort {
  std::string host;  // without brackets
  uint16_t port = kDefaultPort;
  bool has_scheme = false;
  Proto proto = Proto::tcp;  // from a "tcp://" or "udp://" prefix ("tls://" is tcp too)
  bool tls = false;          // "tls://": a TCP address whose connections speak TLS
};

// Parses "[tcp://|udp://|tls://]host[:port]"; a missing host means 127.0.0.1 and a missing
// port means 5346, like the tutorial. Errors read e.g. "invalid port '70000' (must be 0-65535)".
// "tls://" is accepted only where the caller speaks TLS (`allow_tls`); elsewhere it is an
// error rather than a TLS address silently served or dialled in plaintext.
Result<HostPort> parse_host_port(std::string_view text, bool allow_tls = false);

// "host:port", "[v6]:port": the address without its scheme, as a user would type it.
std::string format_host_port(const HostPort& hp);

// Parses a port number 0-65535 with the same message as above.
Result<uint16_t> parse_port(std::string_view text);

// Resolves to every address the host has (numeric hosts never touch DNS).
// `passive` is for listening sockets.
Result<std::vector<Address>> resolve(const HostPort& hp, Proto proto, bool passive);

}  // namespace eco::net
