// What every user-space TCP connection of the epoll and sockmap engines holds: the
// fields the shared echo step (stream_echo.h) works on, the peer's address for logs
// and limits, and a generation that makes stale event tags harmless. Each engine's
// connection type adds its own state on top of this.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "net/address.h"
#include "session/echo_buffer.h"
#include "session/tcp_session.h"

namespace eco::session {

struct StreamConn {
  int fd = -1;
  uint32_t gen = 0;        // bumped for each connection the slot holds; event tags carry it
  bool readable = false;   // edge seen, not yet read to EAGAIN
  bool peer_hup = false;   // RDHUP/HUP/ERR reported: read on until EOF or the error
  bool writable = true;
  bool queued = false;     // on the engine's ready list
  TcpSession s;
  EchoBuffer out;
  sockaddr_in6 peer{};     // large enough for both families
  socklen_t peer_len = 0;

  // A newly accepted socket takes the slot: the shared state starts over.
  void open(int new_fd, const sockaddr_storage& ss, socklen_t len, uint64_t now_ns) {
    fd = new_fd;
    ++gen;
    readable = false;
    peer_hup = false;
    writable = true;
    queued = false;
    s = TcpSession{};
    s.started_ns = now_ns;
    set_peer(&ss, len);
  }

  // Also for the client address a PROXY header names.
  void set_peer(const void* addr, socklen_t len) {
    peer_len = std::min<socklen_t>(len, sizeof peer);
    std::memcpy(&peer, addr, peer_len);
  }

  net::Address address() const { return net::Address::from(reinterpret_cast<const sockaddr*>(&peer), peer_len); }
};

}  // namespace eco::session
