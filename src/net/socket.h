#pragma once
// Socket chores in one place (the anet.c of eco): creating listening and connected
// sockets, their options, and turning errno into a message a person can act on.
// Nobody else calls socket() or setsockopt().
#include <string_view>
#include <vector>

#include "net/address.h"
#include "util/fd.h"
#include "util/result.h"

namespace eco::net {

struct ListenOptions {
  bool reuseport = false;  // shard one address over several sockets (one per thread)
  int backlog = 4096;
};

// A non-blocking TCP listening socket, or a non-blocking bound UDP socket.
Result<Fd> listen_socket(const Address& addr, Proto proto, const ListenOptions& opts);

// Fails with "address already in use" when another socket already holds the
// address, even one with SO_REUSEPORT (a second eco would otherwise silently share
// the port with the first).
Status check_address_free(const Address& addr, Proto proto);

// A non-blocking connect, started: EINPROGRESS counts as started (the caller waits
// for writability, then reads the outcome with connect_error). UDP connects at once.
struct ConnectOptions {
  const Address* source = nullptr;  // bind to this address first (port 0)
  bool nodelay = false;             // TCP_NODELAY: small messages leave without Nagle's wait
};
// On failure the Error's code is the errno (EADDRNOTAVAIL: the source has no port left).
Result<Fd> start_connect(const Address& target, Proto proto, const ConnectOptions& opts = {});
// The outcome of a started connect on fd: 0, or the errno it failed with.
int connect_error(int fd);
// A source address to send from towards a target of `family`: an IPv4 or IPv6
// literal ("10.0.0.2", "fd00::2") of that family, checked by binding a throw-away
// socket to it, so a mistyped address or one this host does not have is one clear
// error before any load starts.
Result<Address> source_address(std::string_view ip, Proto proto, int family);

// Connects a TCP socket, waiting at most timeout_ms (< 0: forever). The socket is
// returned non-blocking unless `blocking` is set.
Result<Fd> connect_tcp(const Address& addr, int timeout_ms, bool blocking = false);
// Tries each address in turn (e.g. "localhost": ::1 then 127.0.0.1); the error of
// the last one is returned when none connects.
struct Connected {
  Fd fd;
  Address addr;
};
Result<Connected> connect_tcp_any(const std::vector<Address>& addrs, int timeout_ms);
// A UDP socket connected to addr (so recv only sees that peer's datagrams).
Result<Fd> connect_udp(const Address& addr);

Result<Address> local_address(int fd);
Result<Address> peer_address(int fd);

Status set_nonblocking(int fd, bool on = true);
Status set_nodelay(int fd);
Status set_buffer_sizes(int fd, int sndbuf, int rcvbuf);
// SO_LINGER 0: close() sends RST instead of FIN (used by tests and bench).
Status set_linger_reset(int fd);

// "cannot listen on 127.0.0.1:80: permission denied (ports below 1024 need ...)".
Error bind_error(const Address& addr, Proto proto, int err);

}  // namespace eco::net
