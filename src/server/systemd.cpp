#include "server/systemd.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <charconv>
#include <cstdlib>
#include <cstring>
#include <string>

#include <fmt/format.h>

#include "net/socket.h"
#include "util/log.h"

namespace eco::server::systemd {
namespace {

constexpr int kListenFdsStart = 3;  // SD_LISTEN_FDS_START

bool parse_uint(const char* s, uint64_t& out) {
  if (!s || !*s) return false;
  auto [end, ec] = std::from_chars(s, s + std::strlen(s), out);
  return ec == std::errc() && *end == '\0';
}

}  // namespace

Result<std::vector<InheritedSocket>> inherited_sockets() {
  std::vector<InheritedSocket> out;
  uint64_t pid = 0, count = 0;
  if (!parse_uint(std::getenv("LISTEN_PID"), pid) || pid != uint64_t(getpid())) return out;
  if (!parse_uint(std::getenv("LISTEN_FDS"), count) || count == 0) return out;
  unsetenv("LISTEN_PID");
  unsetenv("LISTEN_FDS");
  unsetenv("LISTEN_FDNAMES");
  for (int fd = kListenFdsStart; fd < kListenFdsStart + int(count); ++fd) {
    int type = 0;
    socklen_t len = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0)
      return sys_error(fmt::format("socket activation: fd {} is not a socket", fd));
    if (type != SOCK_STREAM && type != SOCK_DGRAM)
      return Error{fmt::format("socket activation: fd {} is neither a TCP nor a UDP socket", fd)};
    auto addr = net::local_address(fd);
    if (!addr) return addr.error();
    if (addr->family() != AF_INET && addr->family() != AF_INET6)
      return Error{fmt::format("socket activation: fd {} is not an IPv4 or IPv6 socket", fd)};
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) return sys_error("fcntl(FD_CLOEXEC)");
    if (auto s = net::set_nonblocking(fd); !s) return s.error();
    out.push_back({Fd(fd), *addr, type == SOCK_STREAM ? net::Proto::tcp : net::Proto::udp});
  }
  return out;
}

void notify(std::string_view state) {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (!path || !*path) return;
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  size_t n = std::strlen(path);
  if (n >= sizeof sun.sun_path) return;
  std::memcpy(sun.sun_path, path, n);
  if (sun.sun_path[0] == '@') sun.sun_path[0] = '\0';  // abstract namespace
  Fd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return;
  socklen_t len = socklen_t(offsetof(sockaddr_un, sun_path) + n);
  if (::sendto(fd.get(), state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&sun), len) < 0)
    log::warn("sd_notify({}): {}", state, std::strerror(errno));
}

uint64_t watchdog_ping_interval_ns() {
  uint64_t usec = 0, pid = 0;
  if (!parse_uint(std::getenv("WATCHDOG_USEC"), usec) || usec == 0) return 0;
  // WATCHDOG_PID, when set, names the process meant to ping.
  if (parse_uint(std::getenv("WATCHDOG_PID"), pid) && pid != uint64_t(getpid())) return 0;
  return usec * 1000 / 2;
}

}  // namespace eco::server::systemd
