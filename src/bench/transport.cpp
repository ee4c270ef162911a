#include "bench/transport.h"

#include <sys/socket.h>

#include <cerrno>

#include "net/socket.h"

namespace eco::bench {
namespace {

IoResult from_syscall(ssize_t n) {
  if (n >= 0) return {Io::ok, size_t(n)};
  if (errno == EAGAIN || errno == EINTR) return {Io::retry};
  return {Io::error, 0, errno};
}

Status open_socket(Link& link, const net::Address& target, const net::Address* source, net::Proto proto) {
  // Bench measures the server, not Nagle: small messages leave at once.
  auto fd = net::start_connect(target, proto, {.source = source, .nodelay = true});
  if (!fd) return fd.error();
  link.fd = std::move(*fd);
  return {};
}

Status tcp_open(Link& link, const net::Address& target, const net::Address* source) {
  return open_socket(link, target, source, net::Proto::tcp);
}

IoResult tcp_establish(Link& link) {
  int err = net::connect_error(link.fd.get());
  return err == 0 ? IoResult{Io::ok} : IoResult{Io::error, 0, err};
}

IoResult tcp_read(Link& link, uint8_t* buf, size_t len) {
  ssize_t n = ::recv(link.fd.get(), buf, len, MSG_DONTWAIT);
  if (n == 0) return {Io::closed};
  return from_syscall(n);
}

IoResult tcp_write(Link& link, const uint8_t* buf, size_t len) {
  return from_syscall(::send(link.fd.get(), buf, len, MSG_NOSIGNAL | MSG_DONTWAIT));
}

void close_socket(Link& link) { link.fd.reset(); }  // close() also leaves the epoll set

Status udp_open(Link& link, const net::Address& target, const net::Address* source) {
  return open_socket(link, target, source, net::Proto::udp);
}

IoResult udp_establish(Link&) { return {Io::ok}; }  // a UDP connect completes at once

IoResult udp_read(Link& link, uint8_t* buf, size_t len) {
  // MSG_TRUNC: the datagram's real length, so one too long for `buf` is seen as such.
  return from_syscall(::recv(link.fd.get(), buf, len, MSG_DONTWAIT | MSG_TRUNC));
}

IoResult udp_write(Link& link, const uint8_t* buf, size_t len) {
  IoResult r = from_syscall(::send(link.fd.get(), buf, len, MSG_DONTWAIT));
  if (r.status == Io::error && r.err == ENOBUFS) return {Io::retry};  // the device queue is full
  return r;
}

}  // namespace

const Transport kTcpTransport{"tcp", tcp_open, tcp_establish, tcp_read, tcp_write, close_socket, nullptr};
const Transport kUdpTransport{"udp", udp_open, udp_establish, udp_read, udp_write, close_socket, nullptr};

}  // namespace eco::bench
