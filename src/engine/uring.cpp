// The io_uring engine's loop (see uring_loop.h for the whole engine).
//
// One io_uring_submit_and_wait per loop turn submits everything the turn prepared and
// waits for the next completions (with DEFER_TASKRUN that is also where the kernel runs
// the completion work, in this thread, batched).
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "engine/uring_loop.h"
#include "engine/uring_probe.h"
#include "util/clock.h"
#include "util/log.h"

namespace eco::engine {
namespace {

constexpr uint32_t kDefaultRingEntries = 1024;  // SQ size; the CQ gets 4x
constexpr uint32_t kDefaultBufEntries = 256;
constexpr uint32_t kDefaultBufSize = 16 * 1024;
constexpr uint32_t kUdpBufEntries = 16;
// A whole datagram (up to 65535 bytes) plus the recvmsg header and the sender's address.
constexpr uint32_t kUdpBufSize = 68 * 1024;
constexpr uint64_t kTeardownWaitNs = 1'000'000'000;
constexpr uint64_t kTickNs = 100'000'000;  // the coarsest step of idle/age/PROXY/rate deadlines
constexpr long long kAcceptRetryNs = 100'000'000;  // after EMFILE, retry accept at this pace

uint32_t round_pow2(uint32_t v) {
  uint32_t p = 1;
  while (p < v && p < 32768) p <<= 1;
  return p;
}

}  // namespace

UringLoop::UringLoop(LoopContext& ctx)
    : ctx_(ctx),
      cfg_(*ctx.config),
      counters_(*ctx.counters),
      rules_(cfg_.limits, *ctx.admission, *ctx.counters, cfg_.buffer_size),
      stages_(ctx, rules_),
      udp_guard_(cfg_.limits, *ctx.admission, *ctx.counters) {
  clocked_ = rules_.clocked() || cfg_.limits.udp_rate_per_ip;
}

UringLoop::~UringLoop() {
  if (ring_up_) io_uring_queue_exit(&ring_);
  // BufRing members unmap after this body, i.e. after the ring is gone.
}

Status UringLoop::setup() {
  const UringFeatures& f = uring_features();
  if (!f.available) return Error{"io_uring unavailable: " + f.reason};
  uint32_t entries = cfg_.ring_entries ? cfg_.ring_entries : kDefaultRingEntries;
  io_uring_params p{};
  p.flags = uring_setup_flags(f) | IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP;
  p.cq_entries = entries * 4;
  if (int r = io_uring_queue_init_params(entries, &ring_, &p); r < 0) return sys_error("io_uring_setup", -r);
  ring_up_ = true;
  // Saves a file-table lookup on every io_uring_enter.
  if (f.ring_fd) (void)io_uring_register_ring_fd(&ring_);

  uint32_t buf_entries = round_pow2(cfg_.buf_ring_entries ? cfg_.buf_ring_entries : kDefaultBufEntries);
  uint32_t buf_size = cfg_.buf_ring_size ? cfg_.buf_ring_size : kDefaultBufSize;
  if (auto s = tcp_bufs_.init(ring_, kTcpGroup, buf_entries, buf_size); !s) return s;

  bool any_udp = false;
  for (Listener& l : ctx_.listeners) {
    listeners_.push_back({&l, false, false});
    any_udp |= l.proto == net::Proto::udp;
  }
  if (any_udp) {
    if (auto s = udp_bufs_.init(ring_, kUdpGroup, kUdpBufEntries, kUdpBufSize); !s) return s;
    udp_sends_.resize(kUdpBufEntries);
    udp_msg_.msg_namelen = sizeof(sockaddr_storage);
  }
  conns_.reserve(64);
  arm_wake();
  for (size_t i = 0; i < listeners_.size(); ++i) {
    if (listeners_[i].l->proto == net::Proto::udp) arm_udp(i);
    else arm_accept(i);
  }
  log::debug("loop {}: io_uring ({}), {} recv buffers of {} bytes", ctx_.index, f.summary(), buf_entries, buf_size);
  return {};
}

// The next free SQE; when the SQ is full, what is queued is submitted first.
io_uring_sqe* UringLoop::sqe() {
  io_uring_sqe* s = io_uring_get_sqe(&ring_);
  while (!s) {
    (void)io_uring_submit(&ring_);
    s = io_uring_get_sqe(&ring_);
  }
  return s;
}

Status UringLoop::run() {
  if (auto s = setup(); !s) return s;
  ctx_.control->set_up_done();
  Status result;
  for (;;) {
    Phase phase = ctx_.control->get();
    if (phase == Phase::stop) break;
    if (phase == Phase::drain && !draining_) enter_drain();
    if (draining_ && conns_.live() == 0) break;
    rearm_starved();
    rearm_starved_udp();
    int r = io_uring_submit_and_wait(&ring_, 1);
    // EINTR: a signal; EBUSY/EAGAIN: the CQ overflowed and the kernel could not flush it
    // yet; both are cured by reaping what is there. Anything else (e.g. EBADR: completions
    // were lost) means the loop can no longer vouch for its connections.
    if (r < 0 && r != -EINTR && r != -EBUSY && r != -EAGAIN && r != -ETIME) {
      result = sys_error("io_uring_enter", -r);
      break;
    }
    if (clocked_) now_ = now_ns();
    reap();
  }
  teardown();
  return result;
}

void UringLoop::reap() {
  unsigned head;
  unsigned n = 0;
  io_uring_cqe* cqe;
  io_uring_for_each_cqe(&ring_, head, cqe) {
    ++n;
    handle(*cqe);
  }
  io_uring_cq_advance(&ring_, n);
}

void UringLoop::handle(const io_uring_cqe& cqe) {
  uint64_t t = cqe.user_data;
  uint32_t i = index_of(t);
  switch (kind_of(t)) {
    case kAccept: return on_accept(i, cqe.res, cqe.flags);
    case kRecv: return on_recv(i, cqe.res, cqe.flags);
    case kSend: return on_send(i, cqe.res);
    case kUdpRecv: return on_udp_recv(i, cqe.res, cqe.flags);
    case kUdpSend: return on_udp_send(uint16_t(i), cqe.res);
    case kWake: {
      uint64_t v;
      [[maybe_unused]] ssize_t r = ::read(ctx_.control->wake.get(), &v, sizeof v);
      if (!(cqe.flags & IORING_CQE_F_MORE)) {
        --inflight_;
        wake_armed_ = false;
        arm_wake();
      }
      return;
    }
    case kTimer:
      --inflight_;
      timer_armed_ = false;
      resume_accepts();
      return;
    case kCancel:
      --inflight_;
      return;
    case kTick:
      --inflight_;
      tick_armed_ = false;
      return on_tick();
  }
}

void UringLoop::cancel(uint64_t user_data) {
  io_uring_sqe* s = sqe();
  io_uring_prep_cancel64(s, user_data, 0);
  io_uring_sqe_set_data64(s, tag(kCancel, 0, 0));
  ++inflight_;
}

// After EMFILE: accepting resumes when this fires (or when a connection closes).
void UringLoop::arm_timer() {
  if (timer_armed_) return;
  timer_ts_ = {0, kAcceptRetryNs};
  io_uring_sqe* s = sqe();
  io_uring_prep_timeout(s, &timer_ts_, 0, 0);
  io_uring_sqe_set_data64(s, tag(kTimer, 0, 0));
  timer_armed_ = true;
  ++inflight_;
}

// Deadlines and rate pauses: one timeout request at a time, at most kTickNs ahead,
// while connections are open.
void UringLoop::arm_tick() {
  if (tick_armed_ || (draining_ && conns_.live() == 0)) return;
  uint64_t now = now_ns();
  uint64_t d = rules_.next_deadline();
  uint64_t step = d > now ? std::min<uint64_t>(d - now, kTickNs) : 0;
  step = std::max<uint64_t>(step, 1'000'000);
  tick_ts_ = {0, (long long)step};
  io_uring_sqe* s = sqe();
  io_uring_prep_timeout(s, &tick_ts_, 0, 0);
  io_uring_sqe_set_data64(s, tag(kTick, 0, 0));
  tick_armed_ = true;
  ++inflight_;
}

void UringLoop::on_tick() {
  now_ = now_ns();
  rules_.expire(conns_, now_, [this](uint32_t slot) { begin_close(slot, 0); });
  rules_.resume_paused(conns_, now_, [this](uint32_t slot) { settle(slot); });
  if (conns_.live() > 0) arm_tick();
}

void UringLoop::arm_wake() {
  if (wake_armed_) return;
  io_uring_sqe* s = sqe();
  io_uring_prep_poll_multishot(s, ctx_.control->wake.get(), POLLIN);
  io_uring_sqe_set_data64(s, tag(kWake, 0, 0));
  wake_armed_ = true;
  ++inflight_;
}

void UringLoop::enter_drain() {
  draining_ = true;
  paused_ = false;
  // Submit what is queued first: no prepared request may meet a listener's fd number
  // after it is closed.
  (void)io_uring_submit(&ring_);
  for (size_t i = 0; i < listeners_.size(); ++i) {
    UringListener& ls = listeners_[i];
    if (ls.armed) cancel(tag(ls.l->proto == net::Proto::udp ? kUdpRecv : kAccept, 0, uint32_t(i)));
    ls.l->fd.reset();  // stop accepting; UDP has no connections to finish
  }
}

// Closes every connection still open, then cancels every request and waits (bounded)
// until the kernel confirms each has ended, before the buffers they use are freed.
void UringLoop::teardown() {
  if (!ring_up_) return;
  std::vector<char*> queues;  // given back once no request can be reading them
  rules_.cut_remaining(conns_, draining_, [&](uint32_t slot, const char* why) {
    UringConn& c = conns_[slot];
    if (char* q = rules_.close(c, slot, why, now_ns())) queues.push_back(q);
    ::close(c.fd);  // the socket itself goes when the requests holding it are cancelled
    conns_.release(slot);
  });
  for (UringListener& ls : listeners_) ls.l->fd.reset();
  io_uring_sqe* s = sqe();
  io_uring_prep_cancel64(s, 0, IORING_ASYNC_CANCEL_ANY | IORING_ASYNC_CANCEL_ALL);
  io_uring_sqe_set_data64(s, tag(kCancel, 0, 0));
  ++inflight_;
  uint64_t deadline = now_ns() + kTeardownWaitNs;
  while (inflight_ > 0 && now_ns() < deadline) {
    io_uring_cqe* cqe;
    __kernel_timespec ts{0, 100'000'000};
    (void)io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
    unsigned head;
    unsigned n = 0;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      ++n;
      Kind k = kind_of(cqe->user_data);
      bool multishot = k == kAccept || k == kRecv || k == kUdpRecv || k == kWake;
      if (!(multishot && (cqe->flags & IORING_CQE_F_MORE))) --inflight_;
    }
    io_uring_cq_advance(&ring_, n);
  }
  if (inflight_ > 0) {
    log::warn("loop {}: {} io_uring request(s) did not end at shutdown", ctx_.index, inflight_);
    tcp_bufs_.keep_mapped();
    udp_bufs_.keep_mapped();
    return;  // the queues stay allocated: the kernel may still read them
  }
  for (char* q : queues) rules_.give_back(q);
}

Status run_uring(LoopContext& ctx) {
  UringLoop loop(ctx);
  return loop.run();
}

}  // namespace eco::engine
