// The io_uring engine's TCP side: accepting, and one connection's receives, sends and
// close (see uring_loop.h).
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "engine/uring_loop.h"
#include "engine/uring_probe.h"
#include "util/clock.h"
#include "util/log.h"

namespace eco::engine {

// ---- accepting -------------------------------------------------------------------

void UringLoop::arm_accept(size_t i) {
  UringListener& ls = listeners_[i];
  if (ls.armed || !ls.l->fd.valid() || draining_) return;
  io_uring_sqe* s = sqe();
  // Accepted sockets stay blocking: io_uring polls them itself, and a blocking socket
  // lets a send wait in the kernel instead of failing with EAGAIN.
  io_uring_prep_multishot_accept(s, ls.l->fd.get(), nullptr, nullptr, SOCK_CLOEXEC);
  io_uring_sqe_set_data64(s, tag(kAccept, 0, uint32_t(i)));
  ls.armed = true;
  ++inflight_;
}

void UringLoop::on_accept(size_t i, int res, unsigned flags) {
  UringListener& ls = listeners_[i];
  if (!(flags & IORING_CQE_F_MORE)) {
    ls.armed = false;
    --inflight_;
  }
  if (res >= 0) {
    paused_ = false;
    accept_pause_.accepted();
    add_conn(res, ls.l->service);
    arm_accept(i);  // a no-op while the multishot request goes on
    return;
  }
  int err = -res;
  if (err == ECANCELED) return;  // drain
  switch (classify_accept_error(err)) {
    case AcceptError::empty:
    case AcceptError::transient:
      arm_accept(i);
      return;
    case AcceptError::out_of_fds:
      // The connection stays in the kernel's queue; accepting resumes when one of ours
      // closes or after a pause, never in a busy loop.
      accept_pause_.out_of_fds(counters_, *ls.l, err);
      paused_ = true;
      break;
    case AcceptError::other:
      log::error("accept on {}: {}", ls.l->addr.to_string(), std::strerror(err));
      break;
  }
  arm_timer();
}

void UringLoop::resume_accepts() {
  for (size_t i = 0; i < listeners_.size(); ++i)
    if (listeners_[i].l->proto == net::Proto::tcp) arm_accept(i);
}

void UringLoop::add_conn(int fd, session::Service service) {
  // Multishot accept cannot hand out one address per connection; ask only when the
  // address will be printed or a rule needs it.
  sockaddr_in6 peer{};
  socklen_t peer_len = 0;
  if (rules_.needs_peer_address()) {
    peer_len = sizeof peer;
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_len) != 0) peer_len = 0;
  }
  // Admission before the connection costs anything (no slot, no request).
  auto slot = rules_.accept(conns_, fd, reinterpret_cast<const sockaddr*>(&peer), peer_len, now_ns(), service);
  if (!slot) {
    ::close(fd);
    return;
  }
  conns_[*slot].reset_requests();
  if (rules_.clocked()) arm_tick();
  // A PROXY header, if one is expected, arrives through the same receives as the echo.
  arm_recv(*slot, starved_head_ < starved_.size());
}

// ---- one TCP connection ----------------------------------------------------------

void UringLoop::arm_recv(uint32_t slot, bool one_completion) {
  UringConn& c = conns_[slot];
  // Room left under --buffer. Each completion is capped at `len`, and the request ends
  // once it has taken `room - len + 1` bytes, so it can never take more than `room`.
  uint32_t room = rules_.room(c);
  uint32_t len = std::min(tcp_bufs_.size(), room);
  io_uring_sqe* s = sqe();
  if (uring_features().recv_limit) {
    io_uring_prep_recv_multishot(s, c.fd, nullptr, len, 0);
    // sqe->optlen in newer headers (it shares file_index): the total cap.
    s->file_index = one_completion ? 1 : room - len + 1;
  } else {
    io_uring_prep_recv(s, c.fd, nullptr, len, 0);  // exact without the cap: one at a time
  }
  s->flags |= IOSQE_BUFFER_SELECT;
  s->buf_group = kTcpGroup;
  io_uring_sqe_set_data64(s, tag(kRecv, c.gen, slot));
  c.recv_armed = true;
  ++inflight_;
}

void UringLoop::on_recv(uint32_t slot, int res, unsigned flags) {
  UringConn& c = conns_[slot];
  if (!(flags & IORING_CQE_F_MORE)) {
    c.recv_armed = false;
    --inflight_;
  }
  if (flags & IORING_CQE_F_BUFFER) {
    auto bid = uint16_t(flags >> IORING_CQE_BUFFER_SHIFT);
    tcp_bufs_.taken();
    if (res > 0 && !c.closing) take_bytes(slot, bid, uint32_t(res));
    else tcp_bufs_.recycle(bid);
  }
  if (res == 0) {
    if (!c.closing) rules_.eof(c, slot, now_);
  } else if (res == -ENOBUFS) {
    // Every ring buffer is in use: the bytes wait in the socket; retry once some return.
    if (!c.closing && !c.starved) {
      if (starved_head_ == starved_.size())
        log::debug("loop {}: receive buffers exhausted; connections take turns until they return", ctx_.index);
      c.starved = true;
      starved_.push_back(c.tag(slot));
    }
  } else if (res < 0 && res != -ECANCELED && !c.closing) {
    begin_close(slot, -res);
    return;
  }
  settle(slot);
}

// Bytes arrived in ring buffer `bid`: send them straight back, or queue a copy.
void UringLoop::take_bytes(uint32_t slot, uint16_t bid, uint32_t n) {
  UringConn& c = conns_[slot];
  session::Input in = rules_.input(c, slot, tcp_bufs_.addr(bid), n, now_);
  if (in.flags) [[unlikely]] {
    if (in.close()) {
      tcp_bufs_.recycle(bid);
      return begin_close(slot, 0);
    }
    // Paused by the rate: the receive in flight ends, and is not re-armed while paused.
    if (in.paused() && c.recv_armed) cancel(tag(kRecv, c.gen, slot));
    // With a stage, what it wrote waits in the queue; settle() sends it.
    if (in.len == 0) return tcp_bufs_.recycle(bid);
  }
  if (!c.send_busy && !c.out.attached()) return send_ring(c, slot, bid, in.data, in.len);
  if (!attach_queue(c)) {
    tcp_bufs_.recycle(bid);
    return begin_close(slot, ENOMEM);
  }
  c.out.append(in.data, in.len);  // fits: pending bytes never exceed --buffer
  tcp_bufs_.recycle(bid);
}

// A queue always holds every pending byte, so one attached while a ring send is in
// flight starts with a copy of that send's bytes.
bool UringLoop::attach_queue(UringConn& c) {
  if (c.out.attached()) return true;
  if (!rules_.hold_queue(c)) return false;
  if (c.send_busy && c.send_from_ring) c.out.append(ring_bytes(c), c.ring_len);
  return true;
}

void UringLoop::send_ring(UringConn& c, uint32_t slot, uint16_t bid, const char* data, uint32_t n) {
  io_uring_sqe* s = sqe();
  // MSG_DONTWAIT: never park a ring buffer on a peer that is not reading; what the
  // socket does not take now is copied out when the completion says so.
  io_uring_prep_send(s, c.fd, data, n, MSG_NOSIGNAL | MSG_DONTWAIT);
  io_uring_sqe_set_data64(s, tag(kSend, c.gen, slot));
  c.send_busy = true;
  c.send_from_ring = true;
  c.ring_bid = bid;
  c.ring_data = data;
  c.ring_len = n;
  ++inflight_;
}

void UringLoop::send_queued(UringConn& c, uint32_t slot) {
  io_uring_sqe* s = sqe();
  // May wait in the kernel for the peer to read; the queue is ours, not the ring's.
  io_uring_prep_send(s, c.fd, c.out.front(), c.out.front_len(), MSG_NOSIGNAL);
  io_uring_sqe_set_data64(s, tag(kSend, c.gen, slot));
  c.send_busy = true;
  c.send_from_ring = false;
  ++inflight_;
}

void UringLoop::on_send(uint32_t slot, int res) {
  UringConn& c = conns_[slot];
  c.send_busy = false;
  --inflight_;
  uint32_t sent = res > 0 ? uint32_t(res) : 0;
  if (sent) rules_.sent(c, slot, sent, now_);
  bool failed = res < 0 && res != -EAGAIN;
  if (c.send_from_ring) {
    c.send_from_ring = false;
    if (c.out.attached()) {
      c.out.consumed(sent);
    } else if (sent < c.ring_len && !failed && !c.closing && !rules_.keep(c, ring_bytes(c) + sent, c.ring_len - sent)) {
      tcp_bufs_.recycle(c.ring_bid);
      return begin_close(slot, ENOMEM);
    }
    tcp_bufs_.recycle(c.ring_bid);
  } else if (c.out.attached()) {
    c.out.consumed(sent);
  }
  if (failed && res != -ECANCELED && !c.closing) return begin_close(slot, -res);  // EPIPE, ECONNRESET
  settle(slot);
}

// After any completion of a connection: start what can start, or finish it.
void UringLoop::settle(uint32_t slot) {
  UringConn& c = conns_[slot];
  if (c.fd < 0) return;  // already finalized by the handler that called us
  if (c.closing) {
    if (!c.recv_armed && !c.send_busy) finalize(slot);
    return;
  }
  // A stage goes on once its queued bytes went out (and may queue more).
  if (c.stage && !c.send_busy && c.out.pending() == 0 && !rules_.drained(c, slot, now_)) [[unlikely]]
    return begin_close(slot, 0);
  if (!c.send_busy && c.out.pending() > 0) send_queued(c, slot);
  if (!c.send_busy) rules_.drop_empty_queue(c);
  // Half-close: after the peer's FIN, everything pending has gone back; now close.
  if (rules_.finished(c) && !c.send_busy) return begin_close(slot, 0);
  if (c.recv_armed || c.starved || !rules_.room(c)) return;
  if (starved_head_ < starved_.size()) {
    // Buffers are short and others wait for one: queue up behind them.
    c.starved = true;
    starved_.push_back(c.tag(slot));
    return;
  }
  arm_recv(slot, false);
}

// Gives each waiting connection, oldest first, one receive (one buffer) while the
// ring has buffers free; the rest keep their place in the queue.
void UringLoop::rearm_starved() {
  uint32_t free = tcp_bufs_.free_count();
  while (starved_head_ < starved_.size() && free > 0) {
    uint64_t t = starved_[starved_head_++];
    UringConn* c = conns_.find(t);
    if (!c || !c->starved) continue;
    c->starved = false;
    if (c->closing || c->recv_armed || !rules_.room(*c)) continue;
    arm_recv(uint32_t(t), true);
    --free;
  }
  if (starved_head_ == starved_.size()) {
    starved_.clear();  // keeps its capacity: no allocation next time
    starved_head_ = 0;
  }
}

// Ends a connection: its requests are cancelled, and the fd is closed only when the
// last of them has completed (so no queued request can meet a reused fd number).
void UringLoop::begin_close(uint32_t slot, int err) {
  UringConn& c = conns_[slot];
  c.closing = true;
  if (err && !c.close_why) c.close_why = std::strerror(err);
  if (c.recv_armed) cancel(tag(kRecv, c.gen, slot));
  if (c.send_busy) cancel(tag(kSend, c.gen, slot));
  if (!c.recv_armed && !c.send_busy) finalize(slot);
}

void UringLoop::finalize(uint32_t slot) {
  UringConn& c = conns_[slot];
  char* queue = rules_.close(c, slot, "", now_ns());
  ::close(c.fd);
  conns_.release(slot);
  rules_.give_back(queue);
  // An fd came free: if accepting was paused for lack of them, try again now.
  if (paused_) resume_accepts();
}

}  // namespace eco::engine
