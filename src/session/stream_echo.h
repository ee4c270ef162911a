// The user-space TCP echo step, shared by the epoll engine and by the sockmap engine for
// the connections its kernel path hands over: recv into one scratch buffer and send it
// straight back; what the peer does not take waits in a pooled per-connection buffer,
// and reading stops while that is full (the kernel's receive window then stops the peer).
//
// The engines differ only in what happens around a read or a send (the epoll engine's
// per-connection policing, the sockmap engine's end-of-stream rule), so those are hooks
// on the engine, resolved at compile time: the hot path stays plain and inlined.
//
// A connection type C has: fd, readable, peer_hup, writable, s (TcpSession), out
// (EchoBuffer). The hooks H provide:
//   void on_sent(C&)                     after a send from the per-connection buffer
//   bool on_received(C&, uint64_t n)     after n bytes were read; false: close it
//   bool real_eof(C&)                    recv() returned 0: is it the peer's FIN?
//   static constexpr bool kShortReadDrains
//     a short read means the socket is empty (skip the recv that would say EAGAIN)
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <cerrno>
#include <cstdint>
#include <memory>

#include "session/buffer_pool.h"
#include "session/counters.h"

namespace eco::session {

class StreamEcho {
 public:
  StreamEcho(BufferPool& pool, uint32_t buffer_size, Counters& counters)
      : pool_(pool), scratch_(new char[buffer_size]), buffer_size_(buffer_size), counters_(counters) {}

  // Sends pending bytes; false if the connection died (errno says why).
  template <class C, class H>
  bool flush(C& c, H& h) {
    while (c.out.pending() > 0 && c.writable) {
      ssize_t n = ::send(c.fd, c.out.pending_data(), c.out.pending(), MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          c.writable = false;
          break;
        }
        return false;
      }
      c.out.consumed(uint32_t(n));
      c.s.sent(uint64_t(n));
      Counters::add(counters_.tcp_bytes, uint64_t(n));
      h.on_sent(c);
    }
    if (c.out.attached() && c.out.pending() == 0) pool_.release(c.out.detach());
    return true;
  }

  // recv() under the engine's rules: the bytes read (> 0); 0 when nothing is to be had
  // now (EAGAIN, or the peer's FIN, which is recorded); -1 when the connection died.
  template <class C, class H>
  [[gnu::always_inline]] inline ssize_t recv_some(C& c, char* dst, size_t len, H& h) {
    ssize_t n;
    do n = ::recv(c.fd, dst, len, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK) return -1;
      c.readable = false;
      return 0;
    }
    if (n == 0) {
      if (h.real_eof(c)) c.s.eof();
      c.readable = false;
      return 0;
    }
    // A short read drained the socket: skip the recv that would only say EAGAIN. Safe
    // with edge triggering because every later arrival raises a new edge; not once the
    // peer's FIN is reported, whose edge is already spent (nginx's rule too).
    if (H::kShortReadDrains && size_t(n) < len && !c.peer_hup) c.readable = false;
    c.s.received(uint64_t(n));
    if (!h.on_received(c, uint64_t(n))) return -1;
    return n;
  }

  // One read (and the send-back it allows); false if the connection died.
  template <class C, class H>
  bool read_some(C& c, H& h) {
    if (c.out.pending() == 0) {
      // Fast path: read into scratch and send straight back; no per-connection memory.
      ssize_t n = recv_some(c, scratch_.get(), buffer_size_, h);
      if (n <= 0) return n == 0;
      ssize_t m = 0;
      if (c.writable) {
        do m = ::send(c.fd, scratch_.get(), size_t(n), MSG_NOSIGNAL);
        while (m < 0 && errno == EINTR);
        if (m < 0) {
          if (errno != EAGAIN && errno != EWOULDBLOCK) return false;
          m = 0;
        }
        c.s.sent(uint64_t(m));
        Counters::add(counters_.tcp_bytes, uint64_t(m));
      }
      if (m < n) {
        // The peer is not keeping up: keep the rest and stop reading until it drains.
        c.writable = false;
        char* b = pool_.acquire();
        if (!b) return false;
        c.out.attach(b, pool_.buffer_size());
        c.out.append(scratch_.get() + m, uint32_t(n - m));
      }
      return true;
    }
    uint32_t room;
    char* dst = c.out.free_space(room);
    if (room == 0) return true;  // full: the caller stops reading
    ssize_t n = recv_some(c, dst, room, h);
    if (n <= 0) return n == 0;
    c.out.appended(uint32_t(n));
    return flush(c, h);
  }

 private:
  BufferPool& pool_;
  std::unique_ptr<char[]> scratch_;
  uint32_t buffer_size_;
  Counters& counters_;
};

}  // namespace eco::session
