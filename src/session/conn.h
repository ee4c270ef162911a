#pragma once
// One TCP connection as the connection rules see it (conn_rules.h): what it echoed,
// what waits to be sent back, how far it got through admission, a pending close
// reason, the rate pause, the PROXY header so far, the peer and the protocol stage.
// No I/O state: each engine's connection type derives from this and adds its own
// (readiness flags, the requests it has in flight), and only the rules change these
// fields.
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>

#include "net/address.h"
#include "session/out_queue.h"
#include "session/stage.h"
#include "session/tcp_session.h"

namespace eco::session {

// How much of Admission a connection holds (what its close gives back).
enum class Admitted : uint8_t { none, pending, full };

constexpr uint8_t kNoReject = 0xff;  // Conn::reject when no policy reason is pending
constexpr uint32_t kNoSource = ~0u;  // Conn::source when no per-source entry is held

struct Conn {
  int fd = -1;           // the engine's socket; -1: the slot is free
  uint32_t gen = 0;      // bumped for each connection the slot holds: stale event tags are harmless
  bool closing = false;  // the close is decided; the engine is ending its requests
  bool awaiting_proxy = false;  // --proxy-protocol: the header is not complete yet
  Admitted admitted = Admitted::none;
  uint8_t reject = kNoReject;  // a policy reason to close for (Reject)
  uint16_t proxy_have = 0;     // bytes of the PROXY header so far, in proxy_buf
  Service service = Service::echo;  // what its listener serves
  uint32_t source = kNoSource;  // the per-source entry, for the byte rate
  char* proxy_buf = nullptr;
  const char* close_why = nullptr;  // why the rules closed it, when not a policy reason
  uint64_t paused_until = 0;  // --rate-limit-per-ip: not read before this (0: not paused)
  TcpSession s;  // with a stage: payload bytes (plaintext), not what crossed the socket
  std::unique_ptr<Stage> stage;  // null for the plain echo
  OutQueue out;
  sockaddr_in6 peer{};  // large enough for both families
  socklen_t peer_len = 0;

  // Also for the client address a PROXY header names.
  void set_peer(const void* addr, socklen_t len) {
    peer_len = std::min<socklen_t>(len, sizeof peer);
    std::memcpy(&peer, addr, peer_len);
  }
  net::Address address() const { return net::Address::from(reinterpret_cast<const sockaddr*>(&peer), peer_len); }
  // Names the connection in events: generation (29 bits, so engines keep the top three
  // bits of a tag for their own fds) and slot.
  static constexpr uint32_t kGenMask = 0x1fff'ffff;
  uint64_t tag(uint32_t slot) const { return uint64_t(gen & kGenMask) << 32 | slot; }
};

}  // namespace eco::session
