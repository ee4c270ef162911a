#include "net/proxy_read.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace eco::net {

ProxyStep read_proxy_header(int fd, uint8_t* buf, size_t& have, ProxyHeader& out, std::string& why) {
  ssize_t n;
  do n = ::recv(fd, buf + have, kProxyMaxHeader - have, MSG_PEEK | MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return ProxyStep::wait;
    why = std::strerror(errno);
    return ProxyStep::failed;
  }
  if (n == 0) {
    why = have ? "closed inside the PROXY header" : "closed before a PROXY header";
    return ProxyStep::invalid;
  }
  ProxyResult r = parse_proxy_header(buf, have + size_t(n), out);
  if (r.state == ProxyParse::invalid) {
    why = r.error;
    return ProxyStep::invalid;
  }
  // Take exactly the bytes that belong to the header (done), or all peeked (need_more:
  // they are header bytes so far, and the next peek must start after them).
  size_t take = r.state == ProxyParse::done ? out.length - have : size_t(n);
  ssize_t m;
  do m = ::recv(fd, buf + have, take, MSG_DONTWAIT);
  while (m < 0 && errno == EINTR);
  if (m != ssize_t(take)) {
    why = m < 0 ? std::strerror(errno) : "short read of a peeked PROXY header";
    return ProxyStep::failed;
  }
  have += take;
  return r.state == ProxyParse::done ? ProxyStep::done : ProxyStep::wait;
}

}  // namespace eco::net
