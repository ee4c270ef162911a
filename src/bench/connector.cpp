#include "bench/connector.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <fmt/format.h>

namespace eco::bench {

Result<Fd> start_connect(const net::Address& target, const net::Address* source) {
  Fd fd(::socket(target.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return sys_error("socket");
  int one = 1;
  // Delay-free small messages: bench measures the server, not Nagle.
  if (setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0)
    return sys_error("setsockopt(TCP_NODELAY)");
  if (source != nullptr) {
    // Without this, bind() would reserve a port for the source address alone and
    // the ports would run out at ~28,000 again.
    if (setsockopt(fd.get(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one) != 0)
      return sys_error("setsockopt(IP_BIND_ADDRESS_NO_PORT)");
    if (::bind(fd.get(), source->sa(), source->len) != 0)
      return sys_error(fmt::format("bind to source {}", source->to_string()));
  }
  if (::connect(fd.get(), target.sa(), target.len) != 0 && errno != EINPROGRESS)
    return sys_error(fmt::format("cannot connect to {}", target.to_string()));
  return fd;
}

int connect_result(int fd) {
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
  return err;
}

bool loopback_source(const net::Address& target, uint32_t index, net::Address& out) {
  if (target.family() != AF_INET) return false;
  const auto* sin = reinterpret_cast<const sockaddr_in*>(&target.storage);
  if ((ntohl(sin->sin_addr.s_addr) >> 24) != 127) return false;
  sockaddr_in src{};
  src.sin_family = AF_INET;
  // 127.0.0.1 + index, skipping .0 and .255 in the last octet.
  uint32_t host = 0x7F000001u + index + 2 * (index / 253);
  src.sin_addr.s_addr = htonl(host);
  out = net::Address::from(reinterpret_cast<const sockaddr*>(&src), sizeof src);
  return true;
}

Status raise_fd_limit(uint64_t needed) {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return sys_error("getrlimit(RLIMIT_NOFILE)");
  if (rl.rlim_cur >= needed) return {};
  if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < needed) {
    // Above the hard limit only with CAP_SYS_RESOURCE (e.g. root); otherwise explain.
    rlimit up{needed, needed};
    if (setrlimit(RLIMIT_NOFILE, &up) == 0) return {};
    return Error{fmt::format("this run needs {} file descriptors but the hard limit is {} "
                             "(raise it with `ulimit -Hn` / LimitNOFILE=, or use fewer --conns)",
                             needed, uint64_t(rl.rlim_max))};
  }
  rlimit nl{needed, rl.rlim_max};
  if (setrlimit(RLIMIT_NOFILE, &nl) != 0) return sys_error("setrlimit(RLIMIT_NOFILE)");
  return {};
}

}  // namespace eco::bench
