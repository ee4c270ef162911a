// Accepting connections: what accept4()'s error means to an engine's loop, and the
// out-of-fds rule all engines follow: the connection stays in the kernel's queue,
// accepting resumes after a pause or when one of our fds comes free (never a busy
// loop), and the operator gets one warning per episode, not one per retry. Also the
// readiness engines' listener state, and how they stop accepting at drain.
#pragma once

#include <sys/socket.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <vector>

#include "engine/engine.h"
#include "session/counters.h"
#include "util/log.h"

namespace eco::engine {

enum class AcceptError {
  empty,       // nothing queued (EAGAIN)
  transient,   // this one connection failed (aborted by its peer, interrupted): go on
  out_of_fds,  // EMFILE and friends: pause
  other,       // anything else: logged, pause
};

inline AcceptError classify_accept_error(int err) {
  if (err == EAGAIN || err == EWOULDBLOCK) return AcceptError::empty;
  if (err == EINTR || err == ECONNABORTED || err == EPROTO) return AcceptError::transient;
  if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) return AcceptError::out_of_fds;
  return AcceptError::other;
}

// One out-of-fds episode at a time: counted and logged when it starts, over at the next
// accept that succeeds.
class AcceptPause {
 public:
  void out_of_fds(session::Counters& counters, const Listener& l, int err) {
    if (paused_) return;
    paused_ = true;
    counters.add(counters.accept_paused, 1);
    log::warn("accept on {}: {}; pausing accepts until a connection closes", l.addr.to_string(),
              std::strerror(err));
  }
  void accepted() { paused_ = false; }

 private:
  bool paused_ = false;
};

// One batch of accept4() on a non-blocking listener, for the readiness engines: up to
// `budget` connections, each handed to on_conn(fd, peer, peer_len).
enum class AcceptBatch {
  drained,  // the queue is empty
  more,     // budget used: more may be waiting
  paused,   // out of fds (or a listener error): retry after a pause
};

template <class OnConn>
AcceptBatch accept_batch(const Listener& l, int budget, AcceptPause& pause, session::Counters& counters,
                         OnConn&& on_conn) {
  for (int k = 0; k < budget; ++k) {
    sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int fd = ::accept4(l.fd.get(), reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      int err = errno;
      switch (classify_accept_error(err)) {
        case AcceptError::empty:
          return AcceptBatch::drained;
        case AcceptError::transient:
          continue;
        case AcceptError::out_of_fds:
          pause.out_of_fds(counters, l, err);
          return AcceptBatch::paused;
        case AcceptError::other:
          log::error("accept on {}: {}", l.addr.to_string(), std::strerror(err));
          return AcceptBatch::paused;
      }
    }
    pause.accepted();
    on_conn(fd, ss, len);
  }
  return AcceptBatch::more;
}

// A readiness engine's listener: `maybe_more` is set while its queue may hold more
// (accepting stopped on the budget or a pause, not on EAGAIN).
struct ReadyListener {
  Listener* l;
  bool maybe_more = false;
};

// Drain: the listening sockets close, so the kernel refuses new connections from now
// on (UDP has no connections to finish); no accept retry is pending any more.
inline void stop_accepting(std::vector<ReadyListener>& listeners, uint64_t& retry_at) {
  retry_at = 0;
  for (ReadyListener& ls : listeners) {
    ls.l->fd.reset();
    ls.maybe_more = false;
  }
}

// The readiness engines' accept step for one listener state `ls` (with `l`, the
// Listener*, and `maybe_more`, set while the queue may hold more): one batch, then
// either the queue is known empty, or the loop comes back, or accepting pauses until
// retry_at (the loop's clock, now + pause_ns).
template <class ListenState, class OnConn>
void accept_ready(ListenState& ls, int budget, AcceptPause& pause, session::Counters& counters,
                  uint64_t& retry_at, uint64_t now, uint64_t pause_ns, OnConn&& on_conn) {
  if (!ls.l->fd.valid()) {
    ls.maybe_more = false;
    return;
  }
  switch (accept_batch(*ls.l, budget, pause, counters, on_conn)) {
    case AcceptBatch::drained:
      ls.maybe_more = false;
      break;
    case AcceptBatch::more:  // budget used: the loop comes back (maybe_more stays set)
      break;
    case AcceptBatch::paused:  // the rest stay queued in the kernel
      retry_at = now + pause_ns;
      break;
  }
}

}  // namespace eco::engine
