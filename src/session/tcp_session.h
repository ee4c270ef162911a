#pragma once
// Engine-independent rules of one TCP echo connection (RFC 862): what may be read,
// when the connection is finished. Pure state, no syscalls; each engine drives it.
#include <cstdint>

namespace eco::session {

struct TcpSession {
  uint64_t started_ns = 0;
  uint64_t bytes_in = 0;   // received from the peer
  uint64_t bytes_out = 0;  // sent back
  bool peer_eof = false;   // the peer shut down its write side (or closed)

  uint64_t pending() const { return bytes_in - bytes_out; }
  // Backpressure: stop reading once `limit` bytes wait to be sent back; the kernel's
  // receive window then pushes back on the peer.
  bool may_read(uint64_t limit) const { return !peer_eof && pending() < limit; }
  void received(uint64_t n) { bytes_in += n; }
  void sent(uint64_t n) { bytes_out += n; }
  void eof() { peer_eof = true; }
  // Half-close: after the peer's FIN, everything still pending is sent, then we close.
  bool finished() const { return peer_eof && pending() == 0; }
};

}  // namespace eco::session
