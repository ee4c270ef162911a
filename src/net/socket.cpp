#include "net/socket.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <poll.h>

#include <cstring>

#include <fmt/format.h>

namespace eco::net {
namespace {

Status setopt(int fd, int level, int name, int value, const char* what) {
  if (setsockopt(fd, level, name, &value, sizeof value) != 0) return sys_error(what);
  return {};
}

int sock_type(Proto proto) { return proto == Proto::tcp ? SOCK_STREAM : SOCK_DGRAM; }

}  // namespace

Error bind_error(const Address& addr, Proto proto, int err) {
  std::string where = fmt::format("cannot listen on {}{}", proto == Proto::udp ? "udp://" : "",
                                  addr.to_string());
  switch (err) {
    case EACCES:
      if (addr.port() < 1024)
        return Error{where + ": permission denied (ports below 1024 need CAP_NET_BIND_SERVICE)", err};
      return Error{where + ": permission denied", err};
    case EADDRINUSE:
      return Error{fmt::format("{}: address already in use (another socket holds {} port {}; "
                               "`ss -l{}np 'sport = :{}'` shows it)",
                               where, proto_name(proto), addr.port(),
                               proto == Proto::tcp ? 't' : 'u', addr.port()),
                   err};
    case EADDRNOTAVAIL:
      return Error{where + ": address not available (no interface on this host has it)", err};
    default:
      return sys_error(where, err);
  }
}

Result<Fd> listen_socket(const Address& addr, Proto proto, const ListenOptions& opts) {
  Fd fd(::socket(addr.family(), sock_type(proto) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return sys_error(fmt::format("socket({})", addr.to_string()));
  if (proto == Proto::tcp) {
    // Lets a restarted server bind while old connections sit in TIME_WAIT.
    if (auto s = setopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, 1, "setsockopt(SO_REUSEADDR)"); !s)
      return s.error();
  }
  if (opts.reuseport) {
    if (auto s = setopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, 1, "setsockopt(SO_REUSEPORT)"); !s)
      return s.error();
  }
  if (addr.family() == AF_INET6) {
    // "[::]" means both families (dual-stack) whatever net.ipv6.bindv6only says.
    if (auto s = setopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, addr.is_wildcard() ? 0 : 1,
                        "setsockopt(IPV6_V6ONLY)");
        !s)
      return s.error();
  }
  if (::bind(fd.get(), addr.sa(), addr.len) != 0) return bind_error(addr, proto, errno);
  if (proto == Proto::tcp && ::listen(fd.get(), opts.backlog) != 0)
    return sys_error(fmt::format("listen({})", addr.to_string()));
  return fd;
}

Status check_address_free(const Address& addr, Proto proto) {
  if (addr.port() == 0) return {};
  Fd fd(::socket(addr.family(), sock_type(proto) | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return sys_error("socket");
  if (proto == Proto::tcp) (void)setopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, 1, "");
  if (addr.family() == AF_INET6)
    (void)setopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, addr.is_wildcard() ? 0 : 1, "");
  if (::bind(fd.get(), addr.sa(), addr.len) != 0) return bind_error(addr, proto, errno);
  return {};
}

Result<Fd> start_connect(const Address& target, Proto proto, const ConnectOptions& opts) {
  Fd fd(::socket(target.family(), sock_type(proto) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return sys_error("socket");
  if (opts.nodelay && proto == Proto::tcp) {
    if (auto s = set_nodelay(fd.get()); !s) return s.error();
  }
  if (opts.source != nullptr) {
    // Without this, bind() would reserve a port for the source address alone and
    // its ports would run out at ~28,000 whatever the targets.
    if (opts.source->family() == AF_INET && proto == Proto::tcp) {
      if (auto s = setopt(fd.get(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1, "setsockopt(IP_BIND_ADDRESS_NO_PORT)"); !s)
        return s.error();
    }
    if (::bind(fd.get(), opts.source->sa(), opts.source->len) != 0)
      return sys_error(fmt::format("bind to source {}", opts.source->to_string()));
  }
  if (::connect(fd.get(), target.sa(), target.len) != 0 && errno != EINPROGRESS)
    return sys_error(fmt::format("cannot connect to {}{}", proto == Proto::udp ? "udp://" : "", target.to_string()));
  return fd;
}

int connect_error(int fd) {
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
  return err;
}

Result<Address> source_address(std::string_view ip, Proto proto, int family) {
  std::string text(ip);
  Address a;
  sockaddr_in v4{};
  sockaddr_in6 v6{};
  if (inet_pton(AF_INET, text.c_str(), &v4.sin_addr) == 1) {
    v4.sin_family = AF_INET;
    a = Address::from(reinterpret_cast<const sockaddr*>(&v4), sizeof v4);
  } else if (inet_pton(AF_INET6, text.c_str(), &v6.sin6_addr) == 1) {
    v6.sin6_family = AF_INET6;
    a = Address::from(reinterpret_cast<const sockaddr*>(&v6), sizeof v6);
  } else {
    return Error{fmt::format("invalid source address '{}' (an IPv4 or IPv6 address, e.g. 10.0.0.2 or fd00::2)", ip)};
  }
  auto v = [](int f) { return f == AF_INET ? 4 : 6; };
  if (a.family() != family)
    return Error{fmt::format("source address {} is IPv{} but the target is IPv{}", ip, v(a.family()), v(family))};
  Fd fd(::socket(a.family(), sock_type(proto) | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return sys_error("socket");
  if (::bind(fd.get(), a.sa(), a.len) == 0) return a;
  int err = errno;
  std::string where = fmt::format("cannot send from source address {}", ip);
  if (err == EADDRNOTAVAIL) return Error{where + ": no interface on this host has it", err};
  return sys_error(where, err);
}

Result<Fd> connect_tcp(const Address& addr, int timeout_ms, bool blocking) {
  auto started = start_connect(addr, Proto::tcp);
  if (!started) return started.error();
  Fd fd = std::move(*started);
  pollfd p{fd.get(), POLLOUT, 0};
  int n;
  do n = ::poll(&p, 1, timeout_ms);
  while (n < 0 && errno == EINTR);
  if (n < 0) return sys_error("poll");
  std::string where = fmt::format("cannot connect to {}", addr.to_string());
  if (n == 0) return Error{where + ": timed out", ETIMEDOUT};
  if (int err = connect_error(fd.get()); err != 0) return sys_error(where, err);
  if (blocking) {
    if (auto s = set_nonblocking(fd.get(), false); !s) return s.error();
  }
  return fd;
}

Result<Connected> connect_tcp_any(const std::vector<Address>& addrs, int timeout_ms) {
  Error last{"no address to connect to"};
  for (const Address& a : addrs) {
    auto fd = connect_tcp(a, timeout_ms);
    if (fd) return Connected{std::move(*fd), a};
    last = fd.error();
  }
  return last;
}

Result<Fd> connect_udp(const Address& addr) {
  Fd fd(::socket(addr.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return sys_error("socket");
  if (::connect(fd.get(), addr.sa(), addr.len) != 0)
    return sys_error(fmt::format("cannot connect to udp://{}", addr.to_string()));
  return fd;
}

Result<Address> local_address(int fd) {
  Address a;
  a.len = sizeof a.storage;
  if (getsockname(fd, a.sa(), &a.len) != 0) return sys_error("getsockname");
  return a;
}

Result<Address> peer_address(int fd) {
  Address a;
  a.len = sizeof a.storage;
  if (getpeername(fd, a.sa(), &a.len) != 0) return sys_error("getpeername");
  return a;
}

Status set_nonblocking(int fd, bool on) {
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0) return sys_error("fcntl(F_GETFL)");
  flags = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
  if (fcntl(fd, F_SETFL, flags) != 0) return sys_error("fcntl(F_SETFL)");
  return {};
}

Status set_nodelay(int fd) { return setopt(fd, IPPROTO_TCP, TCP_NODELAY, 1, "setsockopt(TCP_NODELAY)"); }

Status set_buffer_sizes(int fd, int sndbuf, int rcvbuf) {
  if (sndbuf > 0) {
    if (auto s = setopt(fd, SOL_SOCKET, SO_SNDBUF, sndbuf, "setsockopt(SO_SNDBUF)"); !s) return s;
  }
  if (rcvbuf > 0) return setopt(fd, SOL_SOCKET, SO_RCVBUF, rcvbuf, "setsockopt(SO_RCVBUF)");
  return {};
}

Status set_linger_reset(int fd) {
  linger l{1, 0};
  if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l) != 0) return sys_error("setsockopt(SO_LINGER)");
  return {};
}

}  // namespace eco::net
