// The epoll engine: edge-triggered readiness, one loop per thread.
//
// Each connection is registered once for IN|OUT|RDHUP, edge-triggered, so the
// loop never calls epoll_ctl on the hot path. Bytes are read into a per-thread
// scratch buffer and sent straight back; only what the kernel would not take right
// away is copied into a pooled per-connection buffer (bounded by --buffer), and
// while that buffer is full the connection is simply not read (backpressure).
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "engine/accept_pause.h"
#include "engine/engine.h"
#include "net/proxy_read.h"
#include "session/admission.h"
#include "session/buffer_pool.h"
#include "session/close_books.h"
#include "session/conn_log.h"
#include "session/deadline_list.h"
#include "session/udp_guard.h"
#include "session/slots.h"
#include "session/stream_conn.h"
#include "session/stream_echo.h"
#include "util/clock.h"
#include "util/log.h"

namespace eco::engine {
namespace {

using session::Counters;
using session::Reject;

// How far a connection got through admission (what close must give back).
using session::Admitted;

// epoll_event.data tags: connections carry (generation << 32 | slot) so an event for
// a slot that was closed and reused in the same batch is recognised as stale.
constexpr uint64_t kListenerTag = 1ull << 63;
constexpr uint64_t kControlTag = 1ull << 62;
constexpr int kMaxEvents = 256;
constexpr int kReadBudget = 16;     // reads per connection per turn, for fairness
constexpr int kAcceptBudget = 64;   // accepts per listener per turn
constexpr int kUdpBatch = 16;       // datagrams per recvmmsg
constexpr uint64_t kAcceptRetryNs = 100'000'000;  // after EMFILE, retry accept at this pace

struct Conn : session::StreamConn {
  bool awaiting_proxy = false;  // --proxy-protocol: header not read yet
  Admitted admitted = Admitted::none;
  uint8_t reject = session::kNoReject;  // a policy reason to close for (Reject)
  uint32_t source = session::Admission::kNoSource;
  uint64_t paused_until = 0;  // --rate-limit-per-ip: not read before this (0: not paused)
  char* proxy_buf = nullptr;  // the PROXY header so far (from proxy_pool_)
  size_t proxy_have = 0;
};

class EpollLoop {
 public:
  EpollLoop(LoopContext& ctx)
      : ctx_(ctx),
        cfg_(*ctx.config),
        counters_(*ctx.counters),
        adm_(*ctx.admission),
        lim_(cfg_.limits),
        pool_(cfg_.buffer_size, 256),
        proxy_pool_(uint32_t(net::kProxyMaxHeader), 64),
        echo_(pool_, cfg_.buffer_size, counters_),
        timers_(lim_.idle_timeout_ns, lim_.max_duration_ns, lim_.proxy_protocol ? lim_.proxy_timeout_ns : 0),
        udp_guard_(lim_, adm_) {
    // One flag for everything per-connection beyond plain echo: with no limits the hot
    // path pays a single predictable branch.
    policed_ = lim_.max_bytes || lim_.rate_per_ip || timers_.idle_enabled();
    clocked_ = timers_.enabled() || lim_.rate_per_ip;
  }

  Status run();

 private:
  Status setup();
  void handle_listener(size_t i);
  void accept_some(size_t i);
  void add_conn(int fd, const sockaddr_storage& ss, socklen_t len);
  void handle_udp(Listener& l);
  void service(uint32_t slot);
  void close_conn(uint32_t slot, const char* why);
  bool admit_new(Conn& c, uint32_t slot, int fd);
  // Out of line: the plain echo path stays as small (and as inlined) as without limits.
  [[gnu::noinline]] bool read_proxy(uint32_t slot);
  [[gnu::noinline]] bool after_read(Conn& c, uint64_t n);
  void run_timers();
  void reject_now(Reject r, const net::Address& peer);
  void enter_drain();
  void close_all();
  int next_timeout() const;
  int io_timeout() const;

  // Hooks of the shared echo step (session/stream_echo.h).
  friend class session::StreamEcho;
  static constexpr bool kShortReadDrains = true;
  void on_sent(Conn& c) {
    if (policed_) timers_.activity(slot_of(c), now_);
  }
  bool on_received(Conn& c, uint64_t n) { return !policed_ || after_read(c, n); }
  bool real_eof(Conn&) { return true; }

  Conn& conn(uint32_t slot) { return conns_[slot]; }
  uint32_t slot_of(const Conn& c) const { return uint32_t(&c - conns_.data()); }
  net::Address peer_of(const Conn& c) const {
    return c.address();
  }

  LoopContext& ctx_;
  const EngineConfig& cfg_;
  Counters& counters_;
  session::Admission& adm_;
  const session::Limits& lim_;
  session::BufferPool pool_;
  session::BufferPool proxy_pool_;
  session::StreamEcho echo_;  // the echo step itself, on pool_
  session::ConnTimers timers_;
  session::UdpGuard udp_guard_;
  bool policed_ = false;
  bool clocked_ = false;  // some deadline or rate needs the clock each turn
  uint64_t now_ = 0;  // this turn's clock, kept only when timers or rates need it
  std::vector<uint64_t> paused_;  // (gen << 32 | slot) of connections paused by the rate
  std::vector<uint64_t> paused_scan_;
  std::unique_ptr<char[]> udp_bufs_;
  Fd ep_;
  std::vector<ReadyListener> listeners_;
  std::vector<Conn> conns_;
  std::vector<uint32_t> free_slots_;
  std::vector<uint32_t> ready_;
  uint64_t active_ = 0;
  bool draining_ = false;
  uint64_t accept_retry_at_ = 0;  // nonzero: accepting is paused for lack of fds
  AcceptPause accept_pause_;
};

Status EpollLoop::setup() {
  ep_.reset(epoll_create1(EPOLL_CLOEXEC));
  if (!ep_.valid()) return sys_error("epoll_create1");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kControlTag;
  if (epoll_ctl(ep_.get(), EPOLL_CTL_ADD, ctx_.control->wake.get(), &ev) != 0)
    return sys_error("epoll_ctl(control)");
  bool any_udp = false;
  for (size_t i = 0; i < ctx_.listeners.size(); ++i) {
    Listener& l = ctx_.listeners[i];
    listeners_.push_back({&l, false});
    ev.events = EPOLLIN | EPOLLET;
    ev.data.u64 = kListenerTag | i;
    if (epoll_ctl(ep_.get(), EPOLL_CTL_ADD, l.fd.get(), &ev) != 0) return sys_error("epoll_ctl(listener)");
    any_udp |= l.proto == net::Proto::udp;
  }
  if (any_udp) udp_bufs_.reset(new char[size_t(kUdpBatch) * 65536]);
  return {};
}

Status EpollLoop::run() {
  if (auto s = setup(); !s) return s;
  ctx_.control->set_up_done();
  epoll_event events[kMaxEvents];
  for (;;) {
    Phase phase = ctx_.control->get();
    if (phase == Phase::stop) break;
    if (phase == Phase::drain && !draining_) enter_drain();
    if (draining_ && active_ == 0) break;

    int n = epoll_wait(ep_.get(), events, kMaxEvents, next_timeout());
    if (n < 0) {
      if (errno == EINTR) continue;
      return sys_error("epoll_wait");
    }
    if (clocked_) now_ = now_ns();
    for (int i = 0; i < n; ++i) {
      uint64_t tag = events[i].data.u64;
      if (tag == kControlTag) {
        uint64_t v;
        [[maybe_unused]] ssize_t r = ::read(ctx_.control->wake.get(), &v, sizeof v);
        continue;
      }
      if (tag & kListenerTag) {
        handle_listener(size_t(tag & ~kListenerTag));
        continue;
      }
      uint32_t slot = uint32_t(tag);
      if (slot >= conns_.size()) continue;
      Conn& c = conn(slot);
      if (c.fd < 0 || c.gen != uint32_t(tag >> 32)) continue;  // stale: closed in this batch
      uint32_t e = events[i].events;
      // HUP/ERR: let the next read or write report what happened.
      if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) c.readable = true;
      if (e & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) c.peer_hup = true;
      if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR)) c.writable = true;
      service(slot);
    }
    // Connections that used up their read budget get another turn now.
    std::vector<uint32_t> again;
    again.swap(ready_);
    for (uint32_t slot : again) {
      if (slot < conns_.size() && conn(slot).fd >= 0) {
        conn(slot).queued = false;
        service(slot);
      }
    }
    again.clear();
    if (ready_.empty()) ready_.swap(again);  // keep the capacity: no allocation next turn
    // Listeners with connections still queued (budget used, or paused for lack of fds).
    if (accept_retry_at_ && now_ns() >= accept_retry_at_) accept_retry_at_ = 0;
    for (size_t i = 0; i < listeners_.size() && !accept_retry_at_; ++i)
      if (listeners_[i].maybe_more) accept_some(i);
    if (clocked_) run_timers();
  }
  close_all();
  return {};
}

int EpollLoop::next_timeout() const {
  int t = io_timeout();
  if (!clocked_ || t == 0) return t;
  // Connection deadlines (idle, age, PROXY wait) and the end of rate pauses.
  uint64_t d = timers_.next_deadline();
  for (uint64_t v : paused_) {
    const Conn& c = conns_[uint32_t(v)];
    if (c.fd >= 0 && c.gen == uint32_t(v >> 32) && c.paused_until) d = std::min(d, c.paused_until);
  }
  if (d == UINT64_MAX) return t;
  uint64_t now = now_ns();
  int td = d > now ? int(std::min<uint64_t>((d - now) / 1'000'000 + 1, 1000)) : 0;
  return t < 0 ? td : std::min(t, td);
}

int EpollLoop::io_timeout() const {
  if (!ready_.empty()) return 0;
  for (const auto& ls : listeners_)
    if (ls.maybe_more && !accept_retry_at_) return 0;
  if (accept_retry_at_) {
    uint64_t now = now_ns();
    return accept_retry_at_ > now ? int((accept_retry_at_ - now) / 1'000'000 + 1) : 0;
  }
  return -1;
}

void EpollLoop::handle_listener(size_t i) {
  if (i >= listeners_.size() || !listeners_[i].l->fd.valid()) return;
  if (listeners_[i].l->proto == net::Proto::udp) {
    handle_udp(*listeners_[i].l);
    return;
  }
  listeners_[i].maybe_more = true;
  if (!accept_retry_at_) accept_some(i);
}

void EpollLoop::accept_some(size_t i) {
  // Admission and set-up of each connection: add_conn().
  accept_ready(listeners_[i], kAcceptBudget, accept_pause_, counters_, accept_retry_at_, now_ns(), kAcceptRetryNs,
               [this](int fd, const sockaddr_storage& ss, socklen_t len) { add_conn(fd, ss, len); });
}

void EpollLoop::add_conn(int fd, const sockaddr_storage& ss, socklen_t len) {
  // Admission, before the connection costs anything (no slot, no epoll entry).
  Admitted admitted = Admitted::none;
  uint32_t source = session::Admission::kNoSource;
  if (lim_.proxy_protocol) {
    // The socket peer is the balancer: only the global cap applies until the header
    // names the client.
    if (auto r = adm_.admit_pending()) {
      reject_now(*r, net::Address::from(reinterpret_cast<const sockaddr*>(&ss), len));
      ::close(fd);
      return;
    }
    admitted = Admitted::pending;
  } else if (adm_.enabled()) {
    net::Address peer = net::Address::from(reinterpret_cast<const sockaddr*>(&ss), len);
    if (auto r = adm_.admit(peer, source)) {
      reject_now(*r, peer);
      ::close(fd);
      return;
    }
    admitted = Admitted::full;
  }
  uint32_t slot = session::take_slot(conns_, free_slots_);
  Conn& c = conn(slot);
  c.open(fd, ss, len, now_ns());
  c.admitted = admitted;
  c.source = source;
  c.reject = session::kNoReject;
  c.paused_until = 0;
  c.awaiting_proxy = lim_.proxy_protocol;
  c.proxy_have = 0;
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.u64 = (uint64_t(c.gen) << 32) | slot;
  if (epoll_ctl(ep_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
    log::error("epoll_ctl(add connection): {}", std::strerror(errno));
    ::close(fd);
    c.fd = -1;
    if (admitted == Admitted::full) adm_.release(peer_of(c));
    else if (admitted == Admitted::pending) adm_.release_pending();
    c.admitted = Admitted::none;
    free_slots_.push_back(slot);
    return;
  }
  ++active_;
  counters_.connection_opened();
  if (timers_.enabled()) {
    uint64_t now = now_ns();
    timers_.opened(slot, now);
    if (c.awaiting_proxy) timers_.await_proxy(slot, now);
  }
  // With PROXY the client is known (and logged) only once the header is read.
  if (!c.awaiting_proxy) session::log_connected(peer_of(c));
  // The first bytes may already be queued; the ET registration reports them.
}

void EpollLoop::handle_udp(Listener& l) {
  mmsghdr msgs[kUdpBatch];
  iovec iov[kUdpBatch];
  sockaddr_storage from[kUdpBatch];
  for (int round = 0; round < kReadBudget; ++round) {
    for (int i = 0; i < kUdpBatch; ++i) {
      iov[i] = {udp_bufs_.get() + size_t(i) * 65536, 65536};
      msgs[i].msg_hdr = msghdr{};
      msgs[i].msg_hdr.msg_name = &from[i];
      msgs[i].msg_hdr.msg_namelen = sizeof from[i];
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    int n = recvmmsg(l.fd.get(), msgs, kUdpBatch, MSG_DONTWAIT, nullptr);
    if (n <= 0) {
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        log::warn("recvmmsg on udp://{}: {}", l.addr.to_string(), std::strerror(errno));
      return;
    }
    const int got = n;
    if (udp_guard_.active()) {
      // Policy drops (reflector ports, access list, rate) leave the batch before the echo.
      uint64_t now = udp_guard_.needs_time() ? now_ns() : 0;
      int kept = 0;
      for (int i = 0; i < n; ++i) {
        auto* sa = reinterpret_cast<sockaddr*>(&from[i]);
        if (auto r = udp_guard_.check(sa, msgs[i].msg_hdr.msg_namelen, now)) {
          counters_.reject(*r);
          adm_.log_reject(*r, net::Address::from(sa, msgs[i].msg_hdr.msg_namelen));
          continue;
        }
        if (kept != i) msgs[kept] = msgs[i];  // still points at its own iov and address
        ++kept;
      }
      n = kept;
    }
    // Each datagram goes back whole to its sender: same buffer, length and address.
    uint64_t bytes = 0;
    for (int i = 0; i < n; ++i) {
      msgs[i].msg_hdr.msg_iov->iov_len = msgs[i].msg_len;
      msgs[i].msg_hdr.msg_flags = 0;
      bytes += msgs[i].msg_len;
    }
    int sent = 0, dropped = 0;
    while (sent < n) {
      int m = sendmmsg(l.fd.get(), msgs + sent, unsigned(n - sent), MSG_DONTWAIT);
      if (m < 0) {
        if (errno == EINTR) continue;
        // sendmmsg fails only for the first message of the call: that one datagram is
        // dropped (send buffer full, sender unreachable) and counted; the rest still go.
        Counters::add(counters_.udp_dropped, 1);
        bytes -= msgs[sent].msg_len;
        ++dropped;
        ++sent;
        continue;
      }
      sent += m;
    }
    Counters::add(counters_.udp_datagrams, uint64_t(n - dropped));
    Counters::add(counters_.udp_bytes, bytes);
    if (got < kUdpBatch) return;
  }
}

void EpollLoop::service(uint32_t slot) {
  Conn& c = conn(slot);
  if (c.awaiting_proxy && !read_proxy(slot)) return;
  if (!echo_.flush(c, *this)) return close_conn(slot, strerror(errno));
  int reads = 0;
  while (c.readable && c.s.may_read(cfg_.buffer_size) && reads < kReadBudget && !c.paused_until) {
    if (!echo_.read_some(c, *this)) return close_conn(slot, strerror(errno));
    ++reads;
  }
  if (c.s.finished()) return close_conn(slot, "");
  if (c.readable && c.s.may_read(cfg_.buffer_size) && !c.queued && !c.paused_until) {
    c.queued = true;
    ready_.push_back(slot);
  }
}

void EpollLoop::close_conn(uint32_t slot, const char* why) {
  Conn& c = conn(slot);
  session::close_books(adm_, counters_, peer_of(c), c.s, now_ns(), c.reject, c.admitted, why);
  if (timers_.enabled()) timers_.closed(slot);
  if (c.proxy_buf) {
    proxy_pool_.release(c.proxy_buf);
    c.proxy_buf = nullptr;
  }
  c.awaiting_proxy = false;
  c.paused_until = 0;
  ::close(c.fd);  // also removes it from the epoll set
  c.fd = -1;
  if (c.out.attached()) {
    c.out.consumed(c.out.pending());
    pool_.release(c.out.detach());
  }
  free_slots_.push_back(slot);
  --active_;
  counters_.connection_closed();
  // An fd came free: if accepting was paused for lack of them, try again now.
  if (accept_retry_at_) accept_retry_at_ = 1;
}

void EpollLoop::reject_now(Reject r, const net::Address& peer) {
  counters_.reject(r);
  adm_.log_reject(r, peer);
}

// --proxy-protocol: reads the header (never echoed). True once it is done and the
// connection may echo; false while it is incomplete or when the connection was closed.
bool EpollLoop::read_proxy(uint32_t slot) {
  Conn& c = conn(slot);
  if (!c.readable) return false;
  if (!c.proxy_buf && !(c.proxy_buf = proxy_pool_.acquire())) {
    close_conn(slot, "out of memory");
    return false;
  }
  net::ProxyHeader h;
  std::string why;
  net::ProxyStep step;
  for (;;) {
    size_t had = c.proxy_have;
    step = net::read_proxy_header(c.fd, reinterpret_cast<uint8_t*>(c.proxy_buf), c.proxy_have, h, why);
    // Bytes taken after the peer's FIN was reported: its edge is spent, so look again
    // now (the next peek sees the FIN) instead of waiting for an edge that never comes.
    if (step != net::ProxyStep::wait || !c.peer_hup || c.proxy_have == had) break;
  }
  switch (step) {
    case net::ProxyStep::wait:
      c.readable = false;  // everything there was taken; the next bytes raise a new edge
      return false;
    case net::ProxyStep::failed:
      close_conn(slot, why.c_str());
      return false;
    case net::ProxyStep::invalid:
      log::debug("PROXY header from {}: {}", peer_of(c).to_string(), why);
      c.reject = uint8_t(Reject::proxy_invalid);
      close_conn(slot, "");
      return false;
    case net::ProxyStep::done:
      break;
  }
  proxy_pool_.release(c.proxy_buf);
  c.proxy_buf = nullptr;
  c.awaiting_proxy = false;
  timers_.proxy_done(slot);
  if (!h.local) {  // the client the balancer saw is the peer from now on
    c.set_peer(&h.source.storage, h.source.len);
  }
  net::Address client = peer_of(c);
  if (auto r = adm_.admit_source(client, c.source)) {
    c.reject = uint8_t(*r);
    close_conn(slot, "");  // gives back the pending slot
    return false;
  }
  c.admitted = Admitted::full;
  session::log_connected(client);
  return true;  // still readable: echo bytes may have come right behind the header
}

// After every read when some per-connection limit is on.
bool EpollLoop::after_read(Conn& c, uint64_t n) {
  if (lim_.max_bytes && c.s.bytes_in > lim_.max_bytes) {
    c.reject = uint8_t(Reject::max_bytes);
    return false;
  }
  uint32_t slot = slot_of(c);
  timers_.activity(slot, now_);
  if (lim_.rate_per_ip) {
    // Over the source's budget: stop reading this connection until the debt is paid;
    // the kernel's receive window then slows the sender, and no byte is lost.
    if (uint64_t wait = adm_.charge(c.source, n, now_)) {
      if (!c.paused_until) paused_.push_back(uint64_t(c.gen) << 32 | slot);
      c.paused_until = std::max(c.paused_until, now_ + wait);
    }
  }
  return true;
}

void EpollLoop::run_timers() {
  if (timers_.enabled()) {
    timers_.expire(now_, [this](uint32_t slot, Reject why) {
      Conn& c = conn(slot);
      if (c.fd < 0) return;
      c.reject = uint8_t(why);
      close_conn(slot, "");
    });
  }
  if (paused_.empty()) return;
  paused_scan_.clear();
  paused_scan_.swap(paused_);  // service() may pause again: it appends to paused_
  for (uint64_t v : paused_scan_) {
    auto slot = uint32_t(v);
    Conn& c = conn(slot);
    if (c.fd < 0 || c.gen != uint32_t(v >> 32) || !c.paused_until) continue;
    if (c.paused_until > now_) {
      paused_.push_back(v);
      continue;
    }
    c.paused_until = 0;
    service(slot);
  }
}

void EpollLoop::enter_drain() {
  draining_ = true;
  stop_accepting(listeners_, accept_retry_at_);
}

void EpollLoop::close_all() {
  session::cut_remaining(conns_, counters_, draining_, [this](uint32_t slot, const char* why) { close_conn(slot, why); });
}

}  // namespace

Status run_epoll(LoopContext& ctx) {
  EpollLoop loop(ctx);
  return loop.run();
}

}  // namespace eco::engine
