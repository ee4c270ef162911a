#pragma once
// The loop of both readiness engines (epoll, and sockmap for what its kernel path does
// not echo): one epoll set, edge-triggered; the control eventfd; the listeners; events
// routed to connections by tag; a ready list for connections that used their read
// budget; accept retries after running out of fds; drain and stop.
//
// The user-space echo of one connection is here too: read into a per-thread scratch
// buffer and send straight back; only what the socket would not take is queued (in a
// pooled buffer, at most --buffer bytes), and while bytes wait the connection reads
// only into the queue's free space, so when it is full reading stops and TCP's receive
// window pushes back on the client. What the bytes mean (PROXY header, limits, close
// reasons) is session::ConnRules'; this file only moves them.
//
// An engine derives from ReadinessLoop<Engine, Conn> (Conn derives from ReadyConn) and
// may define, in place of the defaults below:
//   Status setup_extra()                 its own fds and buffers
//   void on_listener(size_t i)           a listener is readable (default: accept)
//   void on_own(uint64_t tag)            an fd it watched with kOwnTag
//   uint32_t start(uint32_t slot)        a connection was opened: the events to watch
//   void on_conn(uint32_t slot, uint32_t events)
//   void before_close(uint32_t slot), after_close(uint32_t slot)
//   void after_turn()                    once per loop turn
//   uint64_t next_wake()                 its own next deadline (UINT64_MAX: none)
//   static constexpr bool kShortReadDrains   a short read means the socket is empty
//   bool real_eof(Conn&)                 recv() returned 0: is it the peer's FIN?
//   static constexpr bool kAlwaysClocked     keep `now_` fresh every turn
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include "engine/accept_pause.h"
#include "engine/engine.h"
#include "engine/stages.h"
#include "session/conn_rules.h"
#include "util/clock.h"
#include "util/log.h"

namespace eco::engine {

struct ReadyConn : session::Conn {
  bool readable = false;  // edge seen, not yet read to EAGAIN
  bool peer_hup = false;  // RDHUP/HUP/ERR reported: read on until EOF or the error
  bool writable = true;
  bool queued = false;  // on the ready list

  void reset_readiness() {
    readable = peer_hup = queued = false;
    writable = true;
  }
  // HUP/ERR: the next read or write reports what happened.
  void note(uint32_t e) {
    if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) readable = true;
    if (e & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) peer_hup = true;
    if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR)) writable = true;
  }
};

template <class Derived, class C>
class ReadinessLoop {
 public:
  explicit ReadinessLoop(LoopContext& ctx)
      : ctx_(ctx),
        cfg_(*ctx.config),
        counters_(*ctx.counters),
        rules_(cfg_.limits, *ctx.admission, *ctx.counters, cfg_.buffer_size),
        stages_(ctx, rules_),
        scratch_(new char[cfg_.buffer_size]) {}

  Status run();

  // Defaults of the engine's hooks (see the top of this file).
  Status setup_extra() { return {}; }
  void on_listener(size_t i) {
    listeners_[i].maybe_more = true;
    if (!accept_retry_at_) accept_some(i);
  }
  void on_own(uint64_t) {}
  uint32_t start(uint32_t) { return EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET; }
  void on_conn(uint32_t slot, uint32_t events) {
    conns_[slot].note(events);
    service(slot);
  }
  void before_close(uint32_t) {}
  void after_close(uint32_t) {}
  void after_turn() {}
  uint64_t next_wake() const { return UINT64_MAX; }
  static constexpr bool kAlwaysClocked = false;

 protected:
  static constexpr uint64_t kListenerTag = 1ull << 63;
  static constexpr uint64_t kControlTag = 1ull << 62;
  static constexpr uint64_t kOwnTag = 1ull << 61;  // connection tags stay below (Conn::tag)
  static constexpr int kMaxEvents = 256;
  static constexpr int kReadBudget = 16;    // reads per connection per turn, for fairness
  static constexpr int kAcceptBudget = 64;  // accepts per listener per turn
  static constexpr uint64_t kAcceptRetryNs = 100'000'000;  // after EMFILE, retry at this pace

  Status watch(int fd, uint32_t events, uint64_t tag, int op = EPOLL_CTL_ADD) {
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = tag;
    if (epoll_ctl(ep_.get(), op, fd, &ev) != 0) return sys_error(op == EPOLL_CTL_ADD ? "epoll_ctl(add)" : "epoll_ctl(modify)");
    return {};
  }

  void accept_some(size_t i) {
    session::Service service = listeners_[i].l->service;
    accept_ready(listeners_[i], kAcceptBudget, accept_pause_, counters_, accept_retry_at_, now_ns(), kAcceptRetryNs,
                 [this, service](int fd, const sockaddr_storage& ss, socklen_t len) { add_conn(fd, ss, len, service); });
  }

  // Admission before the connection costs anything (no slot, no epoll entry).
  void add_conn(int fd, const sockaddr_storage& ss, socklen_t len, session::Service service) {
    auto slot = rules_.accept(conns_, fd, reinterpret_cast<const sockaddr*>(&ss), len, now_ns(), service);
    if (!slot) {
      ::close(fd);
      return;
    }
    C& c = conns_[*slot];
    c.reset_readiness();
    uint32_t events = self().start(*slot);
    if (c.fd < 0) return;  // start() closed it
    // The first bytes may already be queued; the edge-triggered registration reports them.
    if (auto s = watch(fd, events, c.tag(*slot)); !s) {
      log::error("{}", s.error().message);
      close_conn(*slot, "epoll_ctl failed");
    }
  }

  // Flush, read (within the budget), and close once the echo is finished.
  void service(uint32_t slot) {
    C& c = conns_[slot];
    if (c.out.attached() && !flush(c, slot)) return close_conn(slot, nullptr);
    int reads = 0;
    while (c.readable && reads < kReadBudget && rules_.room(c)) {
      if (!read_some(c, slot)) return close_conn(slot, nullptr);
      ++reads;
    }
    if (rules_.finished(c)) return close_conn(slot, "");
    if (c.readable && rules_.room(c) && !c.queued) {
      c.queued = true;
      ready_.push_back(slot);
    }
  }

  // The one close path of both readiness engines.
  void close_conn(uint32_t slot, const char* why) {
    C& c = conns_[slot];
    self().before_close(slot);
    char* queue = rules_.close(c, slot, why, now_ns());
    ::close(c.fd);  // also leaves the epoll set
    conns_.release(slot);
    rules_.give_back(queue);
    self().after_close(slot);
    // An fd came free: if accepting was paused for lack of them, try again now.
    if (accept_retry_at_) accept_retry_at_ = 1;
  }

  LoopContext& ctx_;
  const EngineConfig& cfg_;
  session::Counters& counters_;
  session::ConnRules rules_;
  LoopStages stages_;
  session::ConnSlots<C> conns_;
  Fd ep_;
  std::vector<ReadyListener> listeners_;
  bool draining_ = false;
  bool clocked_ = false;   // deadlines, rates or the engine need the clock each turn
  uint64_t now_ = 0;       // this turn's clock, kept only when clocked_
  uint64_t accept_retry_at_ = 0;  // nonzero: accepting is paused for lack of fds

 private:
  Derived& self() { return static_cast<Derived&>(*this); }
  const Derived& self() const { return static_cast<const Derived&>(*this); }

  Status setup() {
    ep_.reset(epoll_create1(EPOLL_CLOEXEC));
    if (!ep_.valid()) return sys_error("epoll_create1");
    if (auto s = watch(ctx_.control->wake.get(), EPOLLIN, kControlTag); !s) return s;
    listeners_.reserve(ctx_.listeners.size());
    for (size_t i = 0; i < ctx_.listeners.size(); ++i) {
      listeners_.push_back({&ctx_.listeners[i], false});
      if (auto s = watch(ctx_.listeners[i].fd.get(), EPOLLIN | EPOLLET, kListenerTag | i); !s) return s;
    }
    return self().setup_extra();
  }

  void dispatch(const epoll_event& ev) {
    uint64_t tag = ev.data.u64;
    if (tag == kControlTag) {
      uint64_t v;
      [[maybe_unused]] ssize_t r = ::read(ctx_.control->wake.get(), &v, sizeof v);
      return;
    }
    if (tag & kListenerTag) {
      size_t i = size_t(tag & ~kListenerTag);
      if (i < listeners_.size() && listeners_[i].l->fd.valid()) self().on_listener(i);
      return;
    }
    if (tag & kOwnTag) return self().on_own(tag);
    if (!conns_.find(tag)) return;  // stale: closed earlier in this batch
    self().on_conn(uint32_t(tag), ev.events);
  }

  // Connections that used up their read budget get another turn.
  void serve_ready() {
    ready_scan_.clear();
    ready_scan_.swap(ready_);
    for (uint32_t slot : ready_scan_) {
      C& c = conns_[slot];
      if (c.fd < 0 || !c.queued) continue;
      c.queued = false;
      service(slot);
    }
  }

  // Listeners with connections still queued (budget used, or paused for lack of fds).
  void accept_waiting() {
    if (accept_retry_at_ && now_ns() >= accept_retry_at_) accept_retry_at_ = 0;
    for (size_t i = 0; i < listeners_.size() && !accept_retry_at_; ++i)
      if (listeners_[i].maybe_more) accept_some(i);
  }

  int next_timeout() const {
    if (!ready_.empty()) return 0;
    for (const auto& ls : listeners_)
      if (ls.maybe_more && !accept_retry_at_) return 0;
    uint64_t wake = std::min(self().next_wake(), accept_retry_at_ ? accept_retry_at_ : UINT64_MAX);
    if (clocked_) wake = std::min(wake, rules_.next_deadline());
    if (wake == UINT64_MAX) return -1;
    uint64_t now = now_ns();
    return wake > now ? int(std::min<uint64_t>((wake - now + 999'999) / 1'000'000, 1000)) : 0;
  }

  // Sends what is queued (and gives back the emptied queue); false if the connection
  // died (close_why says why). Out of line: the plain echo path queues nothing.
  // A stage goes on once sends made room (it may queue more, which is sent in turn).
  [[gnu::noinline]] bool flush(C& c, uint32_t slot) {
    for (;;) {
      while (c.out.pending() > 0 && c.writable) {
        ssize_t n = ::send(c.fd, c.out.front(), c.out.front_len(), MSG_NOSIGNAL);
        if (n < 0) {
          if (errno == EINTR) continue;
          if (errno == EAGAIN || errno == EWOULDBLOCK) {
            c.writable = false;
            break;
          }
          c.close_why = std::strerror(errno);
          return false;
        }
        c.out.consumed(uint32_t(n));
        rules_.sent(c, slot, uint32_t(n), now_);
      }
      if (!c.stage || c.out.pending() > 0) break;
      if (!rules_.drained(c, slot, now_)) return false;
      if (c.out.pending() == 0) break;  // the stage had nothing more to say
    }
    rules_.drop_empty_queue(c);
    return true;
  }

  // recv() under the engine's rules: the bytes read (> 0); 0 when nothing is to be had
  // now (EAGAIN, or the peer's FIN, which the rules record); -1 when it died.
  ssize_t recv_some(C& c, uint32_t slot, char* buf, size_t len) {
    ssize_t n;
    do n = ::recv(c.fd, buf, len, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        c.readable = false;
        return 0;
      }
      c.close_why = std::strerror(errno);
      return -1;
    }
    if (n == 0) {
      if (self().real_eof(c)) rules_.eof(c, slot, now_);
      c.readable = false;
      return 0;
    }
    // A short read drained the socket: skip the recv that would only say EAGAIN. Safe
    // with edge triggering because every later arrival raises a new edge; not once the
    // peer's FIN is reported, whose edge is already spent (nginx's rule too).
    if (Derived::kShortReadDrains && size_t(n) < len && !c.peer_hup) c.readable = false;
    return n;
  }

  // One read and the send-back it allows; false if the connection is to close.
  bool read_some(C& c, uint32_t slot) {
    if (c.stage) [[unlikely]]
      return read_staged(c, slot);
    if (c.out.pending() == 0) {
      // Fast path: read into scratch and send straight back; no per-connection memory.
      ssize_t n = recv_some(c, slot, scratch_.get(), cfg_.buffer_size);
      if (n <= 0) return n == 0;
      session::Input in = rules_.input(c, slot, scratch_.get(), uint32_t(n), now_);
      if (in.flags) [[unlikely]] {
        if (in.close()) return false;
        if (in.queued()) return flush(c, slot);
        if (in.len == 0) return true;
      }
      return send_back(c, slot, in.data, in.len);
    }
    // Bytes wait already: read straight into the queue behind them.
    uint32_t room;
    char* dst = c.out.free_space(room);
    room = std::min(room, rules_.room(c));
    if (room == 0) return true;  // full: the caller stops reading
    ssize_t n = recv_some(c, slot, dst, room);
    if (n <= 0) return n == 0;
    session::Input in = rules_.input(c, slot, dst, uint32_t(n), now_);
    if (in.close()) return false;
    c.out.appended(in.len);  // in place: once bytes are queued no header is left to strip
    return flush(c, slot);
  }

  // A stage's bytes go to the stage, never into the out queue where its output waits;
  // room() (the stage's) bounds the read.
  [[gnu::noinline]] bool read_staged(C& c, uint32_t slot) {
    ssize_t n = recv_some(c, slot, scratch_.get(), std::min(cfg_.buffer_size, rules_.room(c)));
    if (n < 0) return false;
    if (n == 0) return flush(c, slot);  // the peer's FIN may have made the stage write (an alert, close_notify)
    session::Input in = rules_.input(c, slot, scratch_.get(), uint32_t(n), now_);
    if (in.close()) return false;
    return flush(c, slot);
  }

  bool send_back(C& c, uint32_t slot, const char* data, uint32_t len) {
    ssize_t m = 0;
    if (c.writable) {
      do m = ::send(c.fd, data, len, MSG_NOSIGNAL);
      while (m < 0 && errno == EINTR);
      if (m < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
          c.close_why = std::strerror(errno);
          return false;
        }
        m = 0;
      }
      rules_.sent(c, slot, uint32_t(m), now_);
    }
    if (uint32_t(m) < len) {
      // The peer is not keeping up: keep the rest and stop reading until it drains.
      c.writable = false;
      if (!rules_.keep(c, data + m, len - uint32_t(m))) {
        c.close_why = "out of memory";
        return false;
      }
    }
    return true;
  }

  void enter_drain() {
    draining_ = true;
    stop_accepting(listeners_, accept_retry_at_);
  }

  std::unique_ptr<char[]> scratch_;
  std::vector<uint32_t> ready_;
  std::vector<uint32_t> ready_scan_;
  AcceptPause accept_pause_;
};

template <class Derived, class C>
Status ReadinessLoop<Derived, C>::run() {
  if (auto s = setup(); !s) return s;
  ctx_.control->set_up_done();
  clocked_ = rules_.clocked() || Derived::kAlwaysClocked;
  if (clocked_) now_ = now_ns();
  epoll_event events[kMaxEvents];
  for (;;) {
    Phase phase = ctx_.control->get();
    if (phase == Phase::stop) break;
    if (phase == Phase::drain && !draining_) enter_drain();
    if (draining_ && conns_.live() == 0) break;
    int n = epoll_wait(ep_.get(), events, kMaxEvents, next_timeout());
    if (n < 0) {
      if (errno == EINTR) continue;
      return sys_error("epoll_wait");
    }
    if (clocked_) now_ = now_ns();
    for (int i = 0; i < n; ++i) dispatch(events[i]);
    serve_ready();
    accept_waiting();
    if (clocked_) {
      rules_.expire(conns_, now_, [this](uint32_t slot) { close_conn(slot, ""); });
      rules_.resume_paused(conns_, now_, [this](uint32_t slot) { service(slot); });
    }
    self().after_turn();
  }
  rules_.cut_remaining(conns_, draining_, [this](uint32_t slot, const char* why) { close_conn(slot, why); });
  return {};
}

}  // namespace eco::engine
