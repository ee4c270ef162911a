#include "net/address.h"

#include <arpa/inet.h>
#include <netdb.h>

#include <algorithm>
#include <charconv>
#include <cstring>

#include <fmt/format.h>

namespace eco::net {

const char* proto_name(Proto p) { return p == Proto::tcp ? "tcp" : "udp"; }

uint16_t Address::port() const {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage)->sin_port);
  if (family() == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_port);
  return 0;
}

void Address::set_port(uint16_t port) {
  if (family() == AF_INET) reinterpret_cast<sockaddr_in*>(&storage)->sin_port = htons(port);
  if (family() == AF_INET6) reinterpret_cast<sockaddr_in6*>(&storage)->sin6_port = htons(port);
}

bool Address::is_wildcard() const {
  if (family() == AF_INET)
    return reinterpret_cast<const sockaddr_in*>(&storage)->sin_addr.s_addr == htonl(INADDR_ANY);
  if (family() == AF_INET6)
    return IN6_IS_ADDR_UNSPECIFIED(&reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_addr);
  return false;
}

std::string Address::to_string() const {
  char buf[INET6_ADDRSTRLEN] = "?";
  if (family() == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage)->sin_addr, buf, sizeof buf);
    return fmt::format("{}:{}", buf, port());
  }
  if (family() == AF_INET6) {
    const auto* a6 = reinterpret_cast<const sockaddr_in6*>(&storage);
    if (IN6_IS_ADDR_V4MAPPED(&a6->sin6_addr)) {
      inet_ntop(AF_INET, &a6->sin6_addr.s6_addr[12], buf, sizeof buf);
      return fmt::format("{}:{}", buf, port());
    }
    inet_ntop(AF_INET6, &a6->sin6_addr, buf, sizeof buf);
    return fmt::format("[{}]:{}", buf, port());
  }
  return "(unknown address family)";
}

Address Address::from(const sockaddr* sa, socklen_t len) {
  Address a;
  a.len = std::min<socklen_t>(len, sizeof a.storage);
  std::memcpy(&a.storage, sa, a.len);
  return a;
}

Result<uint16_t> parse_port(std::string_view text) {
  unsigned long v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || v > 65535)
    return Error{fmt::format("invalid port '{}' (must be 0-65535)", text)};
  return uint16_t(v);
}

Result<HostPort> parse_host_port(std::string_view text, bool allow_tls) {
  HostPort hp;
  const std::string_view original = text;
  for (Proto p : {Proto::tcp, Proto::udp}) {
    std::string prefix = std::string(proto_name(p)) + "://";
    if (text.substr(0, prefix.size()) == prefix) {
      hp.has_scheme = true;
      hp.proto = p;
      text.remove_prefix(prefix.size());
    }
  }
  if (!hp.has_scheme && text.substr(0, 6) == "tls://") {
    if (!allow_tls)
      return Error{fmt::format("invalid address '{}': TLS is not available here (use tcp:// or udp://)", original)};
    hp.has_scheme = true;
    hp.tls = true;
    text.remove_prefix(6);
  }
  if (text.find("://") != std::string_view::npos)
    return Error{fmt::format("invalid address '{}': scheme must be tcp://{}", original,
                             allow_tls ? ", udp:// or tls://" : " or udp://")};

  std::string_view host, port;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos)
      return Error{fmt::format("invalid address '{}': missing ']' after IPv6 address", original)};
    host = text.substr(1, close - 1);
    std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':')
        return Error{fmt::format("invalid address '{}': expected ':port' after ']'", original)};
      port = rest.substr(1);
      if (port.empty()) return Error{fmt::format("invalid address '{}': empty port", original)};
    }
    if (host.empty()) return Error{fmt::format("invalid address '{}': empty IPv6 address", original)};
  } else if (std::count(text.begin(), text.end(), ':') > 1) {
    host = text;  // a bare IPv6 address such as ::1, with no port
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      host = text;
    } else {
      host = text.substr(0, colon);
      port = text.substr(colon + 1);
      if (port.empty()) return Error{fmt::format("invalid address '{}': empty port", original)};
    }
  }
  hp.host = host.empty() ? std::string(kDefaultHost) : std::string(host);
  if (!port.empty()) {
    auto p = parse_port(port);
    if (!p) return p.error();
    hp.port = *p;
  }
  return hp;
}

std::string format_host_port(const HostPort& hp) {
  bool v6 = hp.host.find(':') != std::string::npos;
  return fmt::format("{}{}{}:{}", v6 ? "[" : "", hp.host, v6 ? "]" : "", hp.port);
}

Result<std::vector<Address>> resolve(const HostPort& hp, Proto proto, bool passive) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = proto == Proto::tcp ? SOCK_STREAM : SOCK_DGRAM;
  hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
  addrinfo* res = nullptr;
  std::string port = std::to_string(hp.port);
  int rc = getaddrinfo(hp.host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0) {
    return Error{fmt::format("cannot resolve '{}': {}", hp.host,
                             rc == EAI_SYSTEM ? std::strerror(errno) : gai_strerror(rc))};
  }
  std::vector<Address> out;
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
    Address a = Address::from(ai->ai_addr, ai->ai_addrlen);
    bool dup = std::any_of(out.begin(), out.end(), [&](const Address& b) {
      return b.len == a.len && std::memcmp(&b.storage, &a.storage, a.len) == 0;
    });
    if (!dup) out.push_back(a);
  }
  freeaddrinfo(res);
  if (out.empty()) return Error{fmt::format("cannot resolve '{}': no IPv4 or IPv6 address", hp.host)};
  return out;
}

}  // namespace eco::net
