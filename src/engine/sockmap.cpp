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
// receive queue instead, for good. This loop then echoes it in user space exactly as
// the epoll engine does (the readiness skeleton's echo step: read, send, bounded
// queue, stop reading while full), which is where the kernel's receive window closes
// and the peer is stopped.
//
// Half-close in the kernel path: after the peer's FIN the socket is closed once every
// received byte has been queued for sending (TCP_INFO: bytes received == bytes acked +
// send queue); close() then sends what is queued, then our FIN.
//
// The engine serves TCP only; the server runs UDP listeners on epoll loops beside it.
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <cstring>
#include <memory>
#include <vector>

#include "engine/readiness_loop.h"
#include "engine/sockmap_loader.h"
#include "net/socket.h"

namespace eco::engine {
namespace {

constexpr uint64_t kFoldNs = 100'000'000;     // BPF counters into session::Counters
constexpr uint64_t kFlushPollNs = 1'000'000;  // re-check connections closing after FIN
// Safety net for handed-over connections: received but not yet acknowledged by the
// peer. Legitimately bounded by the send and receive buffers (a few MiB each, see
// tcp_wmem/tcp_rmem) plus --buffer; far beyond that the kernel is queueing without
// bound and the connection is cut rather than let it eat the machine's memory.
constexpr uint64_t kHeldCap = 64ull << 20;

struct SockConn : ReadyConn {
  uint64_t cookie = 0;
  bool in_kernel = false;  // the verdict echoes it; we watch only for EOF and errors
  bool fin_seen = false;   // in the kernel, peer's FIN seen: close once all is queued
  // The rules count user-mode bytes; kernel bytes come from the BPF state at close.
};

class SockmapLoop : public ReadinessLoop<SockmapLoop, SockConn> {
 public:
  explicit SockmapLoop(LoopContext& ctx) : ReadinessLoop(ctx) {}

  Status load() {
    auto k = SockmapKernel::load(&SockmapLoop::on_handoff, this);
    if (!k) return k.error();
    kernel_ = std::move(*k);
    return {};
  }
  Status run() {
    next_fold_ = now_ns() + kFoldNs;
    Status s = ReadinessLoop::run();
    fold_counters(false);
    return s;
  }

  // Hooks of the readiness skeleton.
  Status setup_extra() {
    // The kernel path moves bytes, not records: TLS needs the record layer in user space
    // (kTLS, which would change that, is not in every kernel: docs/engines.md).
    if (ctx_.index == 0)
      for (const Listener& l : ctx_.listeners)
        if (l.service != session::Service::echo)
          log::info("sockmap: tls://{} is served on the user-space path (TLS records are decrypted there)",
                    l.addr.to_string());
    return watch(kernel_->handoff_fd(), EPOLLIN, kOwnTag);
  }
  void on_own(uint64_t) { kernel_->drain_handoffs(); }
  uint32_t start(uint32_t slot);
  void on_conn(uint32_t slot, uint32_t events) {
    if (conns_[slot].in_kernel) return kernel_event(slot, events);
    ReadinessLoop::on_conn(slot, events);
  }
  void before_close(uint32_t slot);
  void after_close(uint32_t slot);
  void after_turn();
  uint64_t next_wake() const;
  static constexpr bool kAlwaysClocked = true;  // the fold tick
  static constexpr bool kShortReadDrains = false;  // passed bytes arrive on the psock's schedule
  bool real_eof(SockConn& c);

 private:
  static void on_handoff(void* self, uint64_t cookie, uint64_t tag);
  void kernel_event(uint32_t slot, uint32_t events);
  void look_at(uint32_t slot);
  void to_user_mode(uint32_t slot);
  void break_conn(uint32_t slot);
  void check_closing();
  void fold_counters(bool check_held);
  void find_lost_records(const SockmapKernel::Totals& totals);
  void cut_overfull();

  std::unique_ptr<SockmapKernel> kernel_;
  std::vector<uint32_t> closing_;  // kernel-mode connections waiting to be flushed
  uint64_t user_mode_ = 0;         // connections handed to user space
  uint64_t kernel_folded_ = 0;     // BPF byte counter already added to tcp_bytes
  uint64_t lost_seen_ = 0;         // ring records known lost, already looked for
  bool ring_short_ = false;        // the last tick saw fewer records than announced
  uint64_t next_fold_ = 0;
  bool insert_warned_ = false;
};

void SockmapLoop::on_handoff(void* self, uint64_t, uint64_t tag) {
  auto* loop = static_cast<SockmapLoop*>(self);
  if (loop->conns_.find(tag)) loop->look_at(uint32_t(tag));
}

// The connection was admitted, counted and logged (the rules did that before this, so
// a client that got its echo finds itself counted); now the kernel may echo it.
uint32_t SockmapLoop::start(uint32_t slot) {
  SockConn& c = conns_[slot];
  c.cookie = 0;
  c.in_kernel = false;
  c.fin_seen = false;
  if (c.stage) {  // TLS: user space only (setup_extra's line)
    ++user_mode_;
    return ReadinessLoop::start(slot);
  }
  auto cookie = kernel_->insert(c.fd, c.tag(slot));
  if (cookie) {
    c.cookie = *cookie;
    c.in_kernel = true;
    // In the kernel path only the FIN and errors matter: EPOLLIN is left out so the
    // psock's per-segment data_ready wake-ups are filtered out by epoll itself.
    return EPOLLRDHUP | EPOLLET;
  }
  // Insertion failure costs speed, not service: this connection is echoed in user
  // space. EOPNOTSUPP is the ordinary case of a peer that already sent its FIN (only
  // ESTABLISHED sockets may join); anything else (a full map) is worth a line.
  if (cookie.error().code != EOPNOTSUPP && !insert_warned_) {
    log::warn("sockmap: {}; echoing such connections in user space", cookie.error().message);
    insert_warned_ = true;
  }
  ++user_mode_;
  return ReadinessLoop::start(slot);
}

// Acts on what the verdict decided for a connection: reset it if it is broken, serve
// it in user mode if it was handed over.
void SockmapLoop::look_at(uint32_t slot) {
  SockConn& c = conns_[slot];
  SockmapConnStats ks = kernel_->conn_stats(c.cookie);
  if (ks.broken) break_conn(slot);
  else if (ks.handed_off && c.in_kernel) to_user_mode(slot);
}

// The verdict met a retransmission whose old bytes it could not cut off, and dropped
// it: the echo can no longer be exact. A reset tells the peer; echoing on would
// repeat or lose bytes silently.
void SockmapLoop::break_conn(uint32_t slot) {
  SockConn& c = conns_[slot];
  log::warn("sockmap: {}: a retransmitted segment could not be trimmed in the kernel; resetting the connection "
            "rather than echo bytes twice",
            c.address().to_string());
  (void)net::set_linger_reset(c.fd);
  close_conn(slot, "retransmission not trimmed");
}

// A kernel-path connection's FIN or error.
void SockmapLoop::kernel_event(uint32_t slot, uint32_t e) {
  SockConn& c = conns_[slot];
  if (e & EPOLLERR) {
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    return close_conn(slot, std::strerror(err ? err : ECONNRESET));
  }
  if ((e & (EPOLLRDHUP | EPOLLHUP)) && !c.fin_seen) {
    c.fin_seen = true;
    rules_.eof(c, slot, now_ns());
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
    SockConn& c = conns_[slot];
    bool keep = false;
    if (c.fd >= 0 && c.in_kernel && c.fin_seen) {
      auto st = tcp_flush_state(c.fd);
      if (!st) close_conn(slot, st.error().message.c_str());
      else if (st->held_after_fin() == 0) close_conn(slot, "");
      else if (kernel_->conn_stats(c.cookie).handed_off) to_user_mode(slot);
      else keep = true;
    }
    if (keep) {
      ++i;
    } else {
      closing_[i] = closing_.back();
      closing_.pop_back();
    }
  }
}

void SockmapLoop::to_user_mode(uint32_t slot) {
  SockConn& c = conns_[slot];
  c.in_kernel = false;
  c.fin_seen = false;
  c.s.peer_eof = false;  // the FIN, if seen, is behind passed bytes: recv() reports it in order
  c.readable = true;
  c.peer_hup = true;     // the RDHUP edge may be spent: read until EAGAIN or EOF
  c.writable = true;
  ++user_mode_;
  if (auto s = watch(c.fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, c.tag(slot), EPOLL_CTL_MOD); !s)
    return close_conn(slot, s.error().message.c_str());
  log::debug("sockmap: connection {} handed to user space (peer not reading)", c.address().to_string());
  service(slot);
}

void SockmapLoop::after_turn() {
  if (!closing_.empty()) check_closing();
  if (now_ >= next_fold_) {
    fold_counters(true);
    next_fold_ = now_ + kFoldNs;
  }
}

uint64_t SockmapLoop::next_wake() const {
  uint64_t wake = conns_.live() ? next_fold_ : UINT64_MAX;  // counters move only while connections are open
  if (!closing_.empty()) wake = std::min(wake, now_ns() + kFlushPollNs);
  return wake;
}

// The kernel's byte counter into the server's tcp_bytes; with check_held, also the
// safety nets: lost hand-over records, and handed-over connections holding too much.
void SockmapLoop::fold_counters(bool check_held) {
  SockmapKernel::Totals totals = kernel_ ? kernel_->totals() : SockmapKernel::Totals{};
  if (totals.bytes > kernel_folded_) {
    counters_.add(counters_.tcp_bytes, totals.bytes - kernel_folded_);
    kernel_folded_ = totals.bytes;
  }
  if (!check_held || !kernel_) return;
  find_lost_records(totals);
  if (user_mode_) cut_overfull();
}

// Hand-overs and broken connections are announced on the ring. If it was full, some
// records were lost: the verdict's loop-wide counts say so, and then every kernel-path
// connection's state is read once (in-kernel connections do not ask epoll for EPOLLIN,
// so nothing else would tell). A count runs ahead of the records only while a record is
// being written (nanoseconds), so a shortfall seen on two ticks in a row is a loss;
// only then does the scan run.
void SockmapLoop::find_lost_records(const SockmapKernel::Totals& totals) {
  kernel_->drain_handoffs();
  uint64_t announced = totals.handoffs + totals.broken;
  bool short_now = announced > kernel_->records() + lost_seen_;
  bool lost = short_now && ring_short_;
  ring_short_ = short_now && !lost;
  if (!lost) return;
  lost_seen_ = announced - kernel_->records();
  log::warn("sockmap: the hand-over ring overflowed; checking every connection's kernel state");
  for (uint32_t slot = 0; slot < conns_.size(); ++slot)
    if (conns_[slot].fd >= 0 && conns_[slot].cookie) look_at(slot);
}

void SockmapLoop::cut_overfull() {
  for (uint32_t slot = 0; slot < conns_.size(); ++slot) {
    SockConn& c = conns_[slot];
    if (c.fd < 0 || c.in_kernel || !c.cookie) continue;
    auto st = tcp_flush_state(c.fd);
    if (st && st->held() > kHeldCap + cfg_.buffer_size) {
      log::warn("sockmap: {} holds {} bytes not yet taken by the peer; closing it", c.address().to_string(),
                st->held());
      (void)net::set_linger_reset(c.fd);  // an RST: the peer learns why
      close_conn(slot, "kernel queue over its bound");
    }
  }
}

// recv() returned 0 on a handed-over connection. The socket reports EOF as soon as its
// message queue is empty and the FIN is in, even while passed bytes still wait on the
// psock's backlog (6.18's tcp_bpf_recvmsg_parser checks SOCK_DONE first). It is the
// real end only once we have read every byte the verdict passed; until then it is
// "nothing yet", and the backlog's delivery raises EPOLLIN again. (After a reset the
// backlog is dropped instead: then it is the end.)
bool SockmapLoop::real_eof(SockConn& c) {
  if (!c.cookie || c.s.bytes_in >= kernel_->conn_stats(c.cookie).passed) return true;
  auto st = tcp_flush_state(c.fd);
  return !st || st->closed;
}

// The kernel's share of the connection's bytes, for its close line.
void SockmapLoop::before_close(uint32_t slot) {
  SockConn& c = conns_[slot];
  if (!c.cookie) return;
  SockmapConnStats ks = kernel_->conn_stats(c.cookie);
  if (log::enabled(log::Level::debug)) {
    // The whole account, to tell where a byte count went wrong: the peer's bytes as TCP
    // counted them, as the verdict judged them, as user space read and wrote them.
    auto st = tcp_flush_state(c.fd);
    log::debug("sockmap: {} closing: tcp received {} queued {}; verdict redirected {} passed {}, {} retransmissions "
               "trimmed, {} segments unchecked; user read {} sent {}",
               c.address().to_string(), st ? st->received : 0, st ? st->queued : 0, ks.redirected, ks.passed,
               ks.repeats, ks.unchecked, c.s.bytes_in, c.s.bytes_out);
  }
  rules_.kernel_echoed(c, ks.redirected);
  kernel_->forget(c.cookie);
}

void SockmapLoop::after_close(uint32_t slot) {
  SockConn& c = conns_[slot];
  if (!c.in_kernel) --user_mode_;
  c.in_kernel = false;
  c.fin_seen = false;
  c.cookie = 0;
  fold_counters(false);  // so the final summary and /metrics include this connection
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
