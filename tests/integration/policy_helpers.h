#pragma once
// Helpers for the limits/access/PROXY/UDP-guard tests: clients from a chosen
// loopback source address or port, "was this connection closed by the server", and
// the server's final summary line (where refusals are counted by reason).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <cstring>
#include <string>
#include <thread>

#include "harness.h"

namespace eco::itest {

// A TCP connection to dst:port from src (any address of 127/8 is local, so 127.0.0.2
// is a second client host). Non-blocking, like the harness's own sockets.
inline Fd connect_from(const std::string& src, const std::string& dst, uint16_t port, int timeout_ms = 5000) {
  bool v6 = dst.find(':') != std::string::npos;
  Fd fd(::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return Fd();
  sockaddr_storage s{}, d{};
  socklen_t len;
  if (v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&s);
    auto* b = reinterpret_cast<sockaddr_in6*>(&d);
    a->sin6_family = b->sin6_family = AF_INET6;
    if (inet_pton(AF_INET6, src.c_str(), &a->sin6_addr) != 1 || inet_pton(AF_INET6, dst.c_str(), &b->sin6_addr) != 1)
      return Fd();
    b->sin6_port = htons(port);
    len = sizeof(sockaddr_in6);
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&s);
    auto* b = reinterpret_cast<sockaddr_in*>(&d);
    a->sin_family = b->sin_family = AF_INET;
    if (inet_pton(AF_INET, src.c_str(), &a->sin_addr) != 1 || inet_pton(AF_INET, dst.c_str(), &b->sin_addr) != 1)
      return Fd();
    b->sin_port = htons(port);
    len = sizeof(sockaddr_in);
  }
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&s), len) != 0) return Fd();
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&d), len) != 0 && errno != EINPROGRESS) return Fd();
  pollfd p{fd.get(), POLLOUT, 0};
  if (::poll(&p, 1, timeout_ms) != 1) return Fd();
  int err = 0;
  socklen_t el = sizeof err;
  if (getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err != 0) return Fd();
  int one = 1;
  setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

// True when the server ends the connection (EOF or reset) within timeout_ms; `got`
// collects any bytes that came first.
inline bool closed_by_server(int fd, int timeout_ms, std::string* got = nullptr) {
  double deadline = now_ms() + timeout_ms;
  char buf[4096];
  for (;;) {
    int left = int(deadline - now_ms());
    if (left <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, left) <= 0) continue;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n == 0) return true;
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return errno == ECONNRESET || errno == EPIPE;
    }
    if (got) got->append(buf, size_t(n));
  }
}

// True when nothing at all arrives within ms (the connection stays open and silent).
inline bool silent_for(int fd, int ms) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, ms) == 0;
}

// Stops the server (SIGTERM, expecting exit 0) and returns its final summary line.
inline std::string summary_after_stop(Server& srv) {
  EXPECT_TRUE(srv.stop());
  std::string log = srv.log();
  size_t at = log.rfind("Served ");
  if (at == std::string::npos) return "";
  return log.substr(at, log.find('\n', at) - at);
}

// How many the summary says were refused for `reason` ("max_conns=4" -> 4); 0 if absent.
inline uint64_t refused_count(const std::string& summary, const std::string& reason) {
  std::string key = " " + reason + "=";
  size_t at = summary.find(key);
  if (at == std::string::npos) {
    key = ": " + reason + "=";
    at = summary.find(key);
    if (at == std::string::npos) return 0;
  }
  return std::stoull(summary.substr(at + key.size()));
}

}  // namespace eco::itest
