// The sockmap engine: the kernel echoes, user space keeps the books.
//
// After accept (epoll, edge-triggered) a connection's socket is put into a sockhash
// whose sk_skb verdict program (src/bpf/echo.bpf.c) redirects every received segment
// to the same socket's egress: the echo runs in softirq/kworker context and this
// thread is not woken for data at all. It is woken only for what it owns: new
// connections, the peer's FIN (EPOLLRDHUP), errors, the drain/stop phases, and
// connections the verdict hands over (a ring-buffer record).
//
// Hand-over: when a connection's peer stops reading, the verdict stops redirecting
// (the kernel would queue without bound) and passes that connection's bytes to its
// receive queue instead, for good. This loop then echoes it with the epoll engine's
// echo step (session/stream_echo.h: read, send, bounded buffer, stop reading while
// full), which is where the kernel's receive window closes and the peer is stopped.
//
// Half-close in the kernel path: after the peer's FIN the socket is closed once every
// received byte has been queued for sending (TCP_INFO: bytes received == bytes acked +
// send queue); close() then sends what is queued, then our FIN.
//
// UDP stays in user space: UDP listeners are served by the epoll engine itself, on a
// second thread this loop starts, stops and forwards its phase to.
#include "engine/sockmap.h"

#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "engine/accept_pause.h"
#include "engine/sockmap_loader.h"
#include "net/socket.h"
#include "session/admission.h"
#include "session/buffer_pool.h"
#include "session/close_books.h"
#include "session/conn_log.h"
#include "session/slots.h"
#include "session/stream_conn.h"
#include "session/stream_echo.h"
#include "util/clock.h"
#include "util/log.h"

namespace eco::engine {
namespace {

using session::Counters;
using session::Reject;

constexpr uint64_t kListenerTag = 1ull << 63;
constexpr uint64_t kControlTag = 1ull << 62;
constexpr uint64_t kHandoffTag = 1ull << 61;
constexpr int kMaxEvents = 256;
constexpr int kReadBudget = 16;
constexpr int kAcceptBudget = 64;
constexpr uint64_t kAcceptRetryNs = 100'000'000;
constexpr uint64_t kFoldNs = 100'000'000;      // BPF counters into session::Counters
constexpr uint64_t kFoldNsWithDeadlines = 20'000'000;  // with --max-conn-duration
constexpr uint64_t kFlushPollNs = 1'000'000;   // re-check connections closing after FIN
// Safety net for handed-over connections: received but not yet acknowledged by the
// peer. Legitimately bounded by the send and receive buffers (a few MiB each, see
// tcp_wmem/tcp_rmem) plus --buffer; far beyond that the kernel is queueing without
// bound and the connection is cut rather than let it eat the machine's memory.
constexpr uint64_t kHeldCap = 64ull << 20;

struct Conn : session::StreamConn {
  uint64_t cookie = 0;
  bool in_kernel = false;  // the verdict echoes it; we watch only for EOF and errors
  bool admitted = false;   // holds an Admission slot: release() at close
  bool closing = false;    // in the kernel, peer's FIN seen: close once all is queued
  // The shared fields: s counts user-mode bytes; kernel bytes come from the BPF state.
};

class SockmapLoop {
 public:
  SockmapLoop(LoopContext& ctx)
      : ctx_(ctx),
        cfg_(*ctx.config),
        counters_(*ctx.counters),
        adm_(*ctx.admission),
        max_duration_ns_(cfg_.limits.max_duration_ns),
        pool_(cfg_.buffer_size, 256),
        echo_(pool_, cfg_.buffer_size, counters_) {}
  ~SockmapLoop() { stop_udp(); }

  Status load() {
    auto k = SockmapKernel::load(&SockmapLoop::on_handoff, this);
    if (!k) return k.error();
    kernel_ = std::move(*k);
    return {};
  }
  Status run();

 private:
  static void on_handoff(void* self, uint64_t cookie, uint64_t tag);
  Status setup();
  void stop_udp();
  void accept_some(size_t i);
  void add_conn(int fd, const sockaddr_storage& ss, socklen_t len);
  void kernel_event(uint32_t slot, uint32_t events);
  void look_at(uint32_t slot);
  void to_user_mode(uint32_t slot);
  void break_conn(uint32_t slot);
  void check_closing();
  void fold_counters(bool check_held);
  void service(uint32_t slot);
  // Hooks of the shared echo step (session/stream_echo.h), for handed-over connections.
  friend class session::StreamEcho;
  static constexpr bool kShortReadDrains = false;  // passed bytes arrive on the psock's schedule
  void on_sent(Conn&) {}
  bool on_received(Conn&, uint64_t) { return true; }
  bool real_eof(Conn& c);
  void close_conn(uint32_t slot, const char* why);
  void reject_conn(uint32_t slot, Reject r);
  net::Address peer_of(const Conn& c) const {
    return c.address();
  }
  void enter_drain();
  void close_all();
  int next_timeout() const;
  uint64_t tag_of(uint32_t slot) const { return (uint64_t(conns_[slot].gen) << 32) | slot; }
  Conn* by_tag(uint64_t tag) {
    uint32_t slot = uint32_t(tag);
    if (slot >= conns_.size()) return nullptr;
    Conn& c = conns_[slot];
    return c.fd >= 0 && c.gen == uint32_t(tag >> 32) ? &c : nullptr;
  }

  LoopContext& ctx_;
  const EngineConfig& cfg_;
  Counters& counters_;
  session::Admission& adm_;
  uint64_t max_duration_ns_;  // --max-conn-duration, checked on the fold tick
  session::BufferPool pool_;
  session::StreamEcho echo_;  // the echo step for handed-over connections, on pool_
  std::unique_ptr<SockmapKernel> kernel_;
  Fd ep_;
  std::vector<ReadyListener> listeners_;
  std::vector<Conn> conns_;
  std::vector<uint32_t> free_slots_;
  std::vector<uint32_t> ready_;
  std::vector<uint32_t> closing_;  // kernel-mode connections waiting to be flushed
  uint64_t active_ = 0;
  uint64_t user_mode_ = 0;         // connections handed to user space
  uint64_t kernel_folded_ = 0;     // BPF byte counter already added to tcp_bytes
  uint64_t lost_seen_ = 0;         // ring records known lost, already looked for
  bool ring_short_ = false;        // the last tick saw fewer records than announced
  uint64_t next_fold_ = 0;
  bool draining_ = false;
  bool insert_warned_ = false;
  uint64_t accept_retry_at_ = 0;
  AcceptPause accept_pause_;
  // UDP: the epoll engine on a thread of its own.
  LoopControl udp_control_;
  std::unique_ptr<LoopContext> udp_ctx_;
  std::thread udp_thread_;
  Status udp_status_;
};

void SockmapLoop::on_handoff(void* self, uint64_t, uint64_t tag) {
  auto* loop = static_cast<SockmapLoop*>(self);
  if (loop->by_tag(tag)) loop->look_at(uint32_t(tag));
}

// Acts on what the verdict decided for a connection: reset it if it is broken, serve
// it in user mode if it was handed over.
void SockmapLoop::look_at(uint32_t slot) {
  Conn& c = conns_[slot];
  SockmapConnStats ks = kernel_->conn_stats(c.cookie);
  if (ks.broken) break_conn(slot);
  else if (ks.handed_off && c.in_kernel) to_user_mode(slot);
}

// The verdict met a retransmission whose old bytes it could not cut off, and dropped
// it: the echo can no longer be exact. A reset tells the peer; echoing on would
// repeat or lose bytes silently.
void SockmapLoop::break_conn(uint32_t slot) {
  Conn& c = conns_[slot];
  log::warn("sockmap: {}: a retransmitted segment could not be trimmed in the kernel; resetting the connection "
            "rather than echo bytes twice",
            peer_of(c).to_string());
  (void)net::set_linger_reset(c.fd);
  close_conn(slot, "retransmission not trimmed");
}

Status SockmapLoop::setup() {
  ep_.reset(epoll_create1(EPOLL_CLOEXEC));
  if (!ep_.valid()) return sys_error("epoll_create1");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kControlTag;
  if (epoll_ctl(ep_.get(), EPOLL_CTL_ADD, ctx_.control->wake.get(), &ev) != 0)
    return sys_error("epoll_ctl(control)");
  ev.data.u64 = kHandoffTag;
  if (epoll_ctl(ep_.get(), EPOLL_CTL_ADD, kernel_->handoff_fd(), &ev) != 0) return sys_error("epoll_ctl(ring)");
  // TCP listeners are ours; UDP ones go to the epoll engine, on a thread of its own,
  // with the same context (config, counters, admission, ...) but its own control.
  // Counters stay single-writer per field: that thread writes only the UDP ones.
  std::vector<Listener> tcp, udp;
  for (Listener& l : ctx_.listeners) (l.proto == net::Proto::udp ? udp : tcp).push_back(std::move(l));
  ctx_.listeners.clear();
  if (!udp.empty()) {
    udp_control_.wake.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!udp_control_.wake.valid()) return sys_error("eventfd");
    udp_ctx_ = std::make_unique<LoopContext>(std::move(ctx_));
    udp_ctx_->listeners = std::move(udp);
    udp_ctx_->control = &udp_control_;
  }
  ctx_.listeners = std::move(tcp);
  listeners_.reserve(ctx_.listeners.size());
  for (size_t i = 0; i < ctx_.listeners.size(); ++i) {
    listeners_.push_back({&ctx_.listeners[i], false});
    ev.events = EPOLLIN | EPOLLET;
    ev.data.u64 = kListenerTag | i;
    if (epoll_ctl(ep_.get(), EPOLL_CTL_ADD, ctx_.listeners[i].fd.get(), &ev) != 0)
      return sys_error("epoll_ctl(listener)");
  }
  if (udp_ctx_) {
    LoopContext* uctx = udp_ctx_.get();
    // The UDP loop is one more loop the server waits for before it says ready.
    udp_control_.gate = ctx_.control->gate;
    if (udp_control_.gate) udp_control_.gate->add();
    udp_thread_ = std::thread([this, uctx] {
      udp_status_ = run_epoll(*uctx);
      udp_control_.set_up_done();
    });
  }
  return {};
}

void SockmapLoop::stop_udp() {
  if (!udp_thread_.joinable()) return;
  (void)udp_control_.set(Phase::stop);
  udp_thread_.join();
  if (!udp_status_) log::error("UDP loop: {}", udp_status_.error().message);
}

Status SockmapLoop::run() {
  if (auto s = setup(); !s) return s;
  ctx_.control->set_up_done();
  epoll_event events[kMaxEvents];
  next_fold_ = now_ns() + kFoldNs;
  for (;;) {
    Phase phase = ctx_.control->get();
    if (udp_thread_.joinable() && udp_control_.get() != phase) (void)udp_control_.set(phase);
    if (phase == Phase::stop) break;
    if (phase == Phase::drain && !draining_) enter_drain();
    if (draining_ && active_ == 0) break;

    int n = epoll_wait(ep_.get(), events, kMaxEvents, next_timeout());
    if (n < 0) {
      if (errno == EINTR) continue;
      return sys_error("epoll_wait");
    }
    for (int i = 0; i < n; ++i) {
      uint64_t tag = events[i].data.u64;
      if (tag == kControlTag) {
        uint64_t v;
        [[maybe_unused]] ssize_t r = ::read(ctx_.control->wake.get(), &v, sizeof v);
        continue;
      }
      if (tag == kHandoffTag) {
        kernel_->drain_handoffs();
        continue;
      }
      if (tag & kListenerTag) {
        size_t li = size_t(tag & ~kListenerTag);
        if (li < listeners_.size()) {
          listeners_[li].maybe_more = true;
          if (!accept_retry_at_) accept_some(li);
        }
        continue;
      }
      Conn* c = by_tag(tag);
      if (!c) continue;  // stale: closed earlier in this batch
      uint32_t slot = uint32_t(tag);
      uint32_t e = events[i].events;
      if (c->in_kernel) {
        kernel_event(slot, e);
        continue;
      }
      if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) c->readable = true;
      if (e & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) c->peer_hup = true;
      if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR)) c->writable = true;
      service(slot);
    }
    std::vector<uint32_t> again;
    again.swap(ready_);
    for (uint32_t slot : again) {
      if (slot < conns_.size() && conns_[slot].fd >= 0 && !conns_[slot].in_kernel) {
        conns_[slot].queued = false;
        service(slot);
      }
    }
    again.clear();
    if (ready_.empty()) ready_.swap(again);
    if (!closing_.empty()) check_closing();
    uint64_t now = now_ns();
    if (now >= next_fold_) {
      fold_counters(true);
      next_fold_ = now + (max_duration_ns_ ? kFoldNsWithDeadlines : kFoldNs);
    }
    if (accept_retry_at_ && now >= accept_retry_at_) accept_retry_at_ = 0;
    for (size_t i = 0; i < listeners_.size() && !accept_retry_at_; ++i)
      if (listeners_[i].maybe_more) accept_some(i);
  }
  close_all();
  fold_counters(false);
  stop_udp();
  return {};
}

int SockmapLoop::next_timeout() const {
  if (!ready_.empty()) return 0;
  for (const auto& ls : listeners_)
    if (ls.maybe_more && !accept_retry_at_) return 0;
  uint64_t now = now_ns();
  uint64_t wake = active_ ? next_fold_ : 0;  // counters move only while connections are open
  if (!closing_.empty()) wake = wake ? std::min(wake, now + kFlushPollNs) : now + kFlushPollNs;
  if (accept_retry_at_) wake = wake ? std::min(wake, accept_retry_at_) : accept_retry_at_;
  if (!wake) return -1;
  return wake > now ? int((wake - now + 999'999) / 1'000'000) : 0;
}

void SockmapLoop::accept_some(size_t i) {
  // Admission and set-up of each connection: add_conn().
  accept_ready(listeners_[i], kAcceptBudget, accept_pause_, counters_, accept_retry_at_, now_ns(), kAcceptRetryNs,
               [this](int fd, const sockaddr_storage& ss, socklen_t len) { add_conn(fd, ss, len); });
}

void SockmapLoop::add_conn(int fd, const sockaddr_storage& ss, socklen_t len) {
  // Admission (allow/deny, --max-conns, --max-conns-per-ip) before the socket joins
  // the sockhash: a refused client never has a byte echoed.
  bool admitted = false;
  if (adm_.enabled()) {
    net::Address peer = net::Address::from(reinterpret_cast<const sockaddr*>(&ss), len);
    if (auto r = adm_.admit(peer)) {
      counters_.reject(*r);
      adm_.log_reject(*r, peer);
      ::close(fd);
      return;
    }
    admitted = true;
  }
  uint32_t slot = session::take_slot(conns_, free_slots_);
  Conn& c = conns_[slot];
  c.open(fd, ss, len, now_ns());
  c.cookie = 0;
  c.in_kernel = false;
  c.admitted = admitted;
  c.closing = false;
  // Counted and logged before insertion: from then on the kernel may echo at once,
  // and a client that got its echo must find itself counted (drain, /metrics).
  ++active_;
  counters_.connection_opened();
  session::log_connected(peer_of(c));
  auto cookie = kernel_->insert(fd, tag_of(slot));
  if (cookie) {
    c.cookie = *cookie;
    c.in_kernel = true;
  } else {
    // Insertion failure costs speed, not service: this connection is echoed in user
    // space. EOPNOTSUPP is the ordinary case of a peer that already sent its FIN
    // (only ESTABLISHED sockets may join); anything else (a full map) is worth a line.
    if (cookie.error().code != EOPNOTSUPP && !insert_warned_) {
      log::warn("sockmap: {}; echoing such connections in user space", cookie.error().message);
      insert_warned_ = true;
    }
    ++user_mode_;
  }
  epoll_event ev{};
  // In the kernel path only the FIN and errors matter: EPOLLIN is left out so the
  // psock's per-segment data_ready wake-ups are filtered out by epoll itself.
  ev.events = c.in_kernel ? (EPOLLRDHUP | EPOLLET) : (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET);
  ev.data.u64 = tag_of(slot);
  if (epoll_ctl(ep_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
    int err = errno;
    log::error("epoll_ctl(add connection): {}", std::strerror(err));
    close_conn(slot, std::strerror(err));
  }
}

// A kernel-path connection's FIN or error.
void SockmapLoop::kernel_event(uint32_t slot, uint32_t e) {
  Conn& c = conns_[slot];
  if (e & EPOLLERR) {
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    return close_conn(slot, std::strerror(err ? err : ECONNRESET));
  }
  if ((e & (EPOLLRDHUP | EPOLLHUP)) && !c.closing) {
    c.closing = true;
    c.s.eof();
    closing_.push_back(slot);
    check_closing();
  }
}

// Kernel-path connections after the peer's FIN: closed once every byte received is
// queued for sending; handed-over ones move to user mode (in case the ring record
// was lost, the BPF state says so too).
void SockmapLoop::check_closing() {
  for (size_t i = 0; i < closing_.size();) {
    uint32_t slot = closing_[i];
    Conn& c = conns_[slot];
    if (c.fd < 0 || !c.in_kernel || !c.closing) {
      closing_[i] = closing_.back();
      closing_.pop_back();
      continue;
    }
    auto st = tcp_flush_state(c.fd);
    if (!st) {
      closing_[i] = closing_.back();
      closing_.pop_back();
      close_conn(slot, st.error().message.c_str());
      continue;
    }
    if (st->held_after_fin() == 0) {
      closing_[i] = closing_.back();
      closing_.pop_back();
      close_conn(slot, "");
      continue;
    }
    if (kernel_->conn_stats(c.cookie).handed_off) {
      closing_[i] = closing_.back();
      closing_.pop_back();
      to_user_mode(slot);
      continue;
    }
    ++i;
  }
}

void SockmapLoop::to_user_mode(uint32_t slot) {
  Conn& c = conns_[slot];
  c.in_kernel = false;
  c.closing = false;
  c.s.peer_eof = false;  // the FIN, if seen, is behind passed bytes: recv() reports it in order
  c.readable = true;
  c.peer_hup = true;     // the RDHUP edge may be spent: read until EAGAIN or EOF
  c.writable = true;
  ++user_mode_;
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.u64 = tag_of(slot);
  if (epoll_ctl(ep_.get(), EPOLL_CTL_MOD, c.fd, &ev) != 0) return close_conn(slot, std::strerror(errno));
  log::debug("sockmap: connection {} handed to user space (peer not reading)",
             peer_of(c).to_string());
  service(slot);
}

// The kernel's byte counter into the server's tcp_bytes; with check_held, also the
// safety net over handed-over connections.
void SockmapLoop::fold_counters(bool check_held) {
  SockmapKernel::Totals totals = kernel_ ? kernel_->totals() : SockmapKernel::Totals{};
  if (totals.bytes > kernel_folded_) {
    Counters::add(counters_.tcp_bytes, totals.bytes - kernel_folded_);
    kernel_folded_ = totals.bytes;
  }
  if (!check_held) return;
  // Hand-overs and broken connections are announced on the ring. If it was full, some
  // records were lost: the verdict's loop-wide counts say so, and then every kernel-path
  // connection's state is read once (in-kernel connections do not ask epoll for
  // EPOLLIN, so nothing else would tell). A count runs ahead of the records only while
  // a record is being written (nanoseconds), so a shortfall seen on two ticks in a row
  // is a loss; only then does the scan run.
  if (kernel_) {
    kernel_->drain_handoffs();
    uint64_t announced = totals.handoffs + totals.broken;
    bool short_now = announced > kernel_->records() + lost_seen_;
    bool lost = short_now && ring_short_;
    ring_short_ = short_now && !lost;
    if (lost) {
      lost_seen_ = announced - kernel_->records();
      log::warn("sockmap: the hand-over ring overflowed; checking every connection's kernel state");
      for (uint32_t slot = 0; slot < conns_.size(); ++slot)
        if (conns_[slot].fd >= 0 && conns_[slot].cookie) look_at(slot);
    }
  }
  if (max_duration_ns_) {
    uint64_t now = now_ns();
    for (uint32_t slot = 0; slot < conns_.size(); ++slot) {
      Conn& c = conns_[slot];
      if (c.fd >= 0 && now - c.s.started_ns >= max_duration_ns_) reject_conn(slot, Reject::max_duration);
    }
  }
  if (user_mode_ == 0) return;
  for (uint32_t slot = 0; slot < conns_.size(); ++slot) {
    Conn& c = conns_[slot];
    if (c.fd < 0 || c.in_kernel || !c.cookie) continue;
    auto st = tcp_flush_state(c.fd);
    if (st && st->held() > kHeldCap + cfg_.buffer_size) {
      log::warn("sockmap: {} holds {} bytes not yet taken by the peer; closing it",
                peer_of(c).to_string(), st->held());
      (void)net::set_linger_reset(c.fd);  // an RST: the peer learns why
      close_conn(slot, "kernel queue over its bound");
    }
  }
}

// ---- user mode: the epoll engine's rules, for connections handed over ----

// recv() returned 0 on a handed-over connection. The socket reports EOF as soon as its
// message queue is empty and the FIN is in, even while passed bytes still wait on the
// psock's backlog (6.18's tcp_bpf_recvmsg_parser checks SOCK_DONE first). It is the
// real end only once we have read every byte the verdict passed; until then it is
// "nothing yet", and the backlog's delivery raises EPOLLIN again. (After a reset the
// backlog is dropped instead: then it is the end.)
bool SockmapLoop::real_eof(Conn& c) {
  if (!c.cookie || c.s.bytes_in >= kernel_->conn_stats(c.cookie).passed) return true;
  auto st = tcp_flush_state(c.fd);
  return !st || st->closed;
}

void SockmapLoop::service(uint32_t slot) {
  Conn& c = conns_[slot];
  if (!echo_.flush(c, *this)) return close_conn(slot, std::strerror(errno));
  int reads = 0;
  while (c.readable && c.s.may_read(cfg_.buffer_size) && reads < kReadBudget) {
    if (!echo_.read_some(c, *this)) return close_conn(slot, std::strerror(errno));
    ++reads;
  }
  if (c.s.finished()) return close_conn(slot, "");
  if (c.readable && c.s.may_read(cfg_.buffer_size) && !c.queued) {
    c.queued = true;
    ready_.push_back(slot);
  }
}

void SockmapLoop::close_conn(uint32_t slot, const char* why) {
  Conn& c = conns_[slot];
  if (c.cookie) {
    // The kernel's share of this connection's bytes, for its close line.
    SockmapConnStats ks = kernel_->conn_stats(c.cookie);
    if (log::enabled(log::Level::debug)) {
      // The whole account, to tell where a byte count went wrong: the peer's bytes as
      // TCP counted them, as the verdict judged them, as user space read and wrote them.
      auto st = tcp_flush_state(c.fd);
      log::debug("sockmap: {} closing: tcp received {} queued {}; verdict redirected {} passed {}, {} retransmissions trimmed, {} segments unchecked; user read {} sent {}",
                 peer_of(c).to_string(), st ? st->received : 0, st ? st->queued : 0, ks.redirected, ks.passed, ks.repeats,
                 ks.unchecked,
                 c.s.bytes_in, c.s.bytes_out);
    }
    c.s.received(ks.redirected);
    c.s.sent(ks.redirected);
    kernel_->forget(c.cookie);
  }
  session::log_closed(peer_of(c), c.s, now_ns(), why);
  if (c.admitted) adm_.release(peer_of(c));
  c.admitted = false;
  ::close(c.fd);  // also leaves the epoll set and the sockhash
  c.fd = -1;
  if (!c.in_kernel) --user_mode_;
  c.in_kernel = false;
  c.closing = false;
  c.cookie = 0;
  if (c.out.attached()) {
    c.out.consumed(c.out.pending());
    pool_.release(c.out.detach());
  }
  free_slots_.push_back(slot);
  --active_;
  counters_.connection_closed();
  fold_counters(false);  // so the final summary and /metrics include this connection
  if (accept_retry_at_) accept_retry_at_ = 1;
}

// Closed by policy: counted by reason and logged at most once a second (Admission).
void SockmapLoop::reject_conn(uint32_t slot, Reject r) {
  counters_.reject(r);
  adm_.log_reject(r, peer_of(conns_[slot]));
  close_conn(slot, session::to_string(r));
}

void SockmapLoop::enter_drain() {
  draining_ = true;
  stop_accepting(listeners_, accept_retry_at_);
}

void SockmapLoop::close_all() {
  session::cut_remaining(conns_, counters_, draining_, [this](uint32_t slot, const char* why) { close_conn(slot, why); });
}

}  // namespace

Status run_sockmap(LoopContext& ctx) {
  SockmapLoop loop(ctx);
  if (auto s = loop.load(); !s) {
    // The probe ran before the server gave up its privileges (--user); a loop thread
    // started after that cannot load BPF. Serving beats failing: such a loop runs the
    // epoll engine, and says so.
    log::warn("sockmap engine: loop {} cannot load its BPF program ({}); serving it with the epoll engine",
              ctx.index, s.error().message);
    return run_epoll(ctx);
  }
  return loop.run();
}

}  // namespace eco::engine
