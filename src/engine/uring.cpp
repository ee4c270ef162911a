// The io_uring engine: completion-based, one ring per thread.
//
// Per listener one multishot accept (or, for UDP, one multishot recvmsg); per
// connection one multishot recv that takes its buffer from a shared provided-buffer
// ring only when bytes arrive, so an idle connection holds no user-space buffer.
// Received bytes go straight back with a non-blocking send from that same ring buffer
// (no copy); only what the kernel would not take at once is copied into a pooled
// per-connection queue (bounded by --buffer), and the ring buffer returns to the
// kernel. So a ring buffer is never held across a wait on a slow peer, and a few slow
// readers cannot starve everyone else of buffers.
//
// Backpressure is exact: each recv is armed with a byte cap (per completion and in
// total) equal to the room left under --buffer, so bytes held per connection never
// exceed it; when the cap is reached the kernel ends the recv (no F_MORE) and it is
// re-armed once sends have made room. At most one send is in flight per connection,
// so bytes leave in the order they came.
//
// One io_uring_submit_and_wait per loop turn submits everything the turn prepared
// and waits for the next completions (with DEFER_TASKRUN that is also where the kernel
// runs the completion work, in this thread, batched).
#include <liburing.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "engine/accept_pause.h"
#include "engine/engine.h"
#include "engine/uring_out_queue.h"
#include "engine/uring_probe.h"
#include "net/proxy_read.h"
#include "session/admission.h"
#include "session/buffer_pool.h"
#include "session/close_books.h"
#include "session/conn_log.h"
#include "session/deadline_list.h"
#include "session/udp_guard.h"
#include "session/slots.h"
#include "session/tcp_session.h"
#include "util/clock.h"
#include "util/log.h"

namespace eco::engine {
namespace {

using session::Counters;
using session::Reject;

// How far a connection got through admission (what close must give back).
using session::Admitted;

// user_data: kind (8 bits) | generation (24) | index (32). The index is a connection
// slot, a listener number, or a UDP buffer id.
enum Kind : uint8_t { kAccept = 1, kRecv, kSend, kUdpRecv, kUdpSend, kWake, kTimer, kCancel, kProxyPoll, kTick };

constexpr uint64_t tag(Kind k, uint32_t gen, uint32_t idx) {
  return uint64_t(k) << 56 | uint64_t(gen & 0xffffff) << 32 | idx;
}
constexpr Kind kind_of(uint64_t t) { return Kind(t >> 56); }
constexpr uint32_t index_of(uint64_t t) { return uint32_t(t); }
constexpr uint32_t gen_of(uint64_t t) { return uint32_t(t >> 32) & 0xffffff; }

constexpr uint16_t kTcpGroup = 0;
constexpr uint16_t kUdpGroup = 1;
constexpr uint32_t kDefaultRingEntries = 1024;  // SQ size; the CQ gets 4x
constexpr uint32_t kDefaultBufEntries = 256;
constexpr uint32_t kDefaultBufSize = 16 * 1024;
constexpr uint32_t kUdpBufEntries = 16;
// A whole datagram (up to 65535 bytes) plus the recvmsg header and the sender's address.
constexpr uint32_t kUdpBufSize = 68 * 1024;
constexpr long long kAcceptRetryNs = 100'000'000;  // after EMFILE, retry accept at this pace
constexpr uint64_t kTeardownWaitNs = 1'000'000'000;
constexpr uint64_t kTickNs = 100'000'000;  // the coarsest step of idle/age/PROXY/rate deadlines

uint32_t round_pow2(uint32_t v) {
  uint32_t p = 1;
  while (p < v && p < 32768) p <<= 1;
  return p;
}

// A provided-buffer ring: the kernel picks a buffer for each receive and names it in
// the completion; the loop hands it back with recycle() once its bytes are dealt with.
class BufRing {
 public:
  BufRing() = default;
  BufRing(const BufRing&) = delete;
  BufRing& operator=(const BufRing&) = delete;
  ~BufRing() {
    if (keep_mapped_) return;
    if (ring_mem_) munmap(ring_mem_, ring_bytes_);
    if (base_) munmap(base_, size_t(entries_) * size_);
  }

  Status init(io_uring& ring, uint16_t group, uint32_t entries, uint32_t size) {
    entries_ = entries;
    size_ = size;
    mask_ = io_uring_buf_ring_mask(entries);
    ring_bytes_ = (size_t(entries) * sizeof(io_uring_buf) + 4095) & ~size_t(4095);
    // Anonymous mappings: pages become resident only when the kernel first fills them.
    void* r = mmap(nullptr, ring_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (r == MAP_FAILED) return sys_error("mmap(buffer ring)");
    ring_mem_ = r;
    void* b = mmap(nullptr, size_t(entries) * size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (b == MAP_FAILED) return sys_error("mmap(buffers)");
    base_ = static_cast<char*>(b);
    br_ = static_cast<io_uring_buf_ring*>(ring_mem_);
    io_uring_buf_ring_init(br_);
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<uintptr_t>(ring_mem_);
    reg.ring_entries = entries;
    reg.bgid = group;
    if (int e = io_uring_register_buf_ring(&ring, &reg, 0); e < 0) return sys_error("io_uring_register_buf_ring", -e);
    for (uint32_t i = 0; i < entries; ++i) io_uring_buf_ring_add(br_, addr(uint16_t(i)), size_, uint16_t(i), mask_, int(i));
    io_uring_buf_ring_advance(br_, int(entries));
    return {};
  }

  char* addr(uint16_t bid) const { return base_ + size_t(bid) * size_; }
  uint32_t size() const { return size_; }
  uint32_t entries() const { return entries_; }
  void taken() { ++out_; }
  void recycle(uint16_t bid) {
    io_uring_buf_ring_add(br_, addr(bid), size_, bid, mask_, 0);
    io_uring_buf_ring_advance(br_, 1);
    --out_;
  }
  uint32_t free_count() const { return entries_ - out_; }
  // After a teardown that could not confirm every request ended: never unmap memory the
  // kernel might still write to.
  void keep_mapped() { keep_mapped_ = true; }

 private:
  io_uring_buf_ring* br_ = nullptr;
  void* ring_mem_ = nullptr;
  size_t ring_bytes_ = 0;
  char* base_ = nullptr;
  uint32_t entries_ = 0, size_ = 0, out_ = 0;
  int mask_ = 0;
  bool keep_mapped_ = false;
};

struct Conn {
  int fd = -1;
  uint32_t gen = 0;
  bool recv_armed = false;
  bool send_busy = false;
  bool send_from_ring = false;  // the send in flight reads ring buffer ring_bid
  bool closing = false;         // waiting for its requests to end before close()
  bool starved = false;         // recv ended with ENOBUFS; re-armed when buffers return
  uint16_t ring_bid = 0;
  int close_err = 0;
  const char* close_why = nullptr;
  uint32_t ring_len = 0;
  bool awaiting_proxy = false;  // --proxy-protocol: header not read yet
  bool poll_armed = false;      // a POLLIN for the PROXY header is in flight
  Admitted admitted = Admitted::none;
  uint8_t reject = session::kNoReject;  // a policy reason to close for (Reject)
  uint32_t source = session::Admission::kNoSource;
  uint64_t paused_until = 0;    // --rate-limit-per-ip: no recv before this (0: not paused)
  char* proxy_buf = nullptr;    // the PROXY header so far (from proxy_pool_)
  size_t proxy_have = 0;
  session::TcpSession s;
  OutQueue out;
  sockaddr_in6 peer{};  // large enough for both families; kept for the log lines
  socklen_t peer_len = 0;
};

struct ListenState {
  Listener* l;
  bool armed = false;
  bool starved = false;  // UDP recvmsg ended with ENOBUFS
};

// One echoed datagram in flight: its sendmsg header points into its ring buffer.
struct UdpSend {
  msghdr msg{};
  iovec iov{};
};

class UringLoop {
 public:
  explicit UringLoop(LoopContext& ctx)
      : ctx_(ctx),
        cfg_(*ctx.config),
        counters_(*ctx.counters),
        adm_(*ctx.admission),
        lim_(cfg_.limits),
        pool_(cfg_.buffer_size, 256),
        proxy_pool_(uint32_t(net::kProxyMaxHeader), 64),
        timers_(lim_.idle_timeout_ns, lim_.max_duration_ns, lim_.proxy_protocol ? lim_.proxy_timeout_ns : 0),
        udp_guard_(lim_, adm_) {
    // One flag for everything per-connection beyond plain echo: with no limits the hot
    // path pays a single predictable branch.
    policed_ = lim_.max_bytes || lim_.rate_per_ip || timers_.idle_enabled();
    clocked_ = timers_.enabled() || lim_.rate_per_ip || lim_.udp_rate_per_ip;
  }
  UringLoop(const UringLoop&) = delete;
  UringLoop& operator=(const UringLoop&) = delete;
  ~UringLoop();

  Status run();

 private:
  Status setup();
  io_uring_sqe* sqe();
  void reap();
  void handle(const io_uring_cqe& cqe);

  void arm_accept(size_t i);
  void on_accept(size_t i, int res, unsigned flags);
  void resume_accepts();
  void arm_timer();
  void add_conn(int fd);

  void arm_recv(uint32_t slot, bool one_completion);
  void on_recv(uint32_t slot, int res, unsigned flags);
  void take_bytes(uint32_t slot, uint16_t bid, uint32_t n);
  void send_ring(Conn& c, uint32_t slot, uint16_t bid, uint32_t n);
  void send_queued(Conn& c, uint32_t slot);
  void on_send(uint32_t slot, int res);
  bool attach_queue(Conn& c);
  void settle(uint32_t slot);
  void rearm_starved();
  void begin_close(uint32_t slot, int err);
  void finalize(uint32_t slot);
  void cancel(uint64_t user_data);

  void arm_udp(size_t i);
  void on_udp_recv(size_t i, int res, unsigned flags);
  void on_udp_send(uint16_t bid, int res);
  void rearm_starved_udp();

  void reject_now(Reject r, const net::Address& peer);
  void arm_proxy_poll(uint32_t slot);
  void on_proxy_poll(uint32_t slot, int res);
  // Out of line: the plain echo path stays as small as without limits.
  [[gnu::noinline]] bool after_recv(Conn& c, uint32_t slot, uint32_t n);
  void arm_tick();
  void on_tick();
  net::Address peer_of(const Conn& c) const {
    return net::Address::from(reinterpret_cast<const sockaddr*>(&c.peer), c.peer_len);
  }

  void arm_wake();
  void enter_drain();
  void teardown();

  LoopContext& ctx_;
  const EngineConfig& cfg_;
  Counters& counters_;
  session::Admission& adm_;
  const session::Limits& lim_;
  session::BufferPool pool_;
  session::BufferPool proxy_pool_;
  session::ConnTimers timers_;
  session::UdpGuard udp_guard_;
  bool policed_ = false;
  bool clocked_ = false;  // some deadline or rate needs the clock each turn
  bool tick_armed_ = false;
  uint64_t now_ = 0;      // this turn's clock, kept only when clocked_
  __kernel_timespec tick_ts_{};
  std::vector<uint64_t> rate_paused_;  // (gen << 32 | slot) of connections paused by the rate
  std::vector<uint64_t> rate_paused_scan_;
  io_uring ring_{};
  bool ring_up_ = false;
  BufRing tcp_bufs_;
  BufRing udp_bufs_;
  std::vector<UdpSend> udp_sends_;
  msghdr udp_msg_{};  // recvmsg template: room for the sender's address, no control data
  std::vector<ListenState> listeners_;
  std::vector<Conn> conns_;
  std::vector<uint32_t> free_slots_;
  // Connections waiting for a receive buffer, oldest first: (gen << 32 | slot) from
  // starved_head_ on. While it is not empty the ring is short of buffers, and each
  // connection gets one buffer per turn in this order, so none is starved for long.
  std::vector<uint64_t> starved_;
  size_t starved_head_ = 0;
  __kernel_timespec timer_ts_{};
  uint64_t inflight_ = 0;  // requests whose last completion has not been seen
  uint64_t active_ = 0;
  bool draining_ = false;
  bool paused_ = false;  // accepting paused for lack of fds
  AcceptPause accept_pause_;  // its warning and counter, once per episode
  bool timer_armed_ = false;
  bool wake_armed_ = false;
};

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
    if (draining_ && active_ == 0) break;
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
    case kProxyPoll:
      return on_proxy_poll(i, cqe.res);
    case kTick:
      --inflight_;
      tick_armed_ = false;
      return on_tick();
  }
}

// ---- accepting -------------------------------------------------------------------

void UringLoop::arm_accept(size_t i) {
  ListenState& ls = listeners_[i];
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
  ListenState& ls = listeners_[i];
  if (!(flags & IORING_CQE_F_MORE)) {
    ls.armed = false;
    --inflight_;
  }
  if (res >= 0) {
    paused_ = false;
    accept_pause_.accepted();
    add_conn(res);
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

void UringLoop::arm_timer() {
  if (timer_armed_) return;
  timer_ts_ = {0, kAcceptRetryNs};
  io_uring_sqe* s = sqe();
  io_uring_prep_timeout(s, &timer_ts_, 0, 0);
  io_uring_sqe_set_data64(s, tag(kTimer, 0, 0));
  timer_armed_ = true;
  ++inflight_;
}

void UringLoop::add_conn(int fd) {
  // Multishot accept cannot hand out one address per connection; ask only when the
  // address will be printed or a rule needs it.
  sockaddr_in6 peer{};
  socklen_t peer_len = 0;
  if (log::enabled(log::Level::info) || adm_.needs_peer_address()) {
    peer_len = sizeof peer;
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_len) != 0) peer_len = 0;
  }
  // Admission, before the connection costs anything (no slot, no request).
  Admitted admitted = Admitted::none;
  uint32_t source = session::Admission::kNoSource;
  if (lim_.proxy_protocol || adm_.enabled()) {
    net::Address addr = net::Address::from(reinterpret_cast<sockaddr*>(&peer), peer_len);
    // With PROXY the socket peer is the balancer: only the global cap applies until the
    // header names the client.
    auto r = lim_.proxy_protocol ? adm_.admit_pending() : adm_.admit(addr, source);
    if (r) {
      reject_now(*r, addr);
      ::close(fd);
      return;
    }
    admitted = lim_.proxy_protocol ? Admitted::pending : Admitted::full;
  }
  uint32_t slot = session::take_slot(conns_, free_slots_);
  Conn& c = conns_[slot];
  uint32_t gen = c.gen + 1;
  c = Conn{};
  c.gen = gen;
  c.fd = fd;
  c.s.started_ns = now_ns();
  c.peer = peer;
  c.peer_len = peer_len;
  c.admitted = admitted;
  c.source = source;
  c.awaiting_proxy = lim_.proxy_protocol;
  ++active_;
  counters_.connection_opened();
  if (timers_.enabled()) {
    timers_.opened(slot, c.s.started_ns);
    if (c.awaiting_proxy) timers_.await_proxy(slot, c.s.started_ns);
  }
  if (clocked_) arm_tick();
  if (c.awaiting_proxy) return arm_proxy_poll(slot);  // logged once the client is known
  session::log_connected(peer_of(c));
  arm_recv(slot, starved_head_ < starved_.size());
}

// ---- one TCP connection ----------------------------------------------------------

void UringLoop::arm_recv(uint32_t slot, bool one_completion) {
  Conn& c = conns_[slot];
  // Room left under --buffer. Each completion is capped at `len`, and the request ends
  // once it has taken `room - len + 1` bytes, so it can never take more than `room`.
  uint64_t room = cfg_.buffer_size - c.s.pending();
  uint32_t len = uint32_t(std::min<uint64_t>(tcp_bufs_.size(), room));
  io_uring_sqe* s = sqe();
  if (uring_features().recv_limit) {
    io_uring_prep_recv_multishot(s, c.fd, nullptr, len, 0);
    // sqe->optlen in newer headers (it shares file_index): the total cap.
    s->file_index = one_completion ? 1 : uint32_t(room - len + 1);
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
  Conn& c = conns_[slot];
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
    if (!c.closing) c.s.eof();
  } else if (res == -ENOBUFS) {
    // Every ring buffer is in use: the bytes wait in the socket; retry once some return.
    if (!c.closing && !c.starved) {
      if (starved_head_ == starved_.size())
        log::debug("loop {}: receive buffers exhausted; connections take turns until they return", ctx_.index);
      c.starved = true;
      starved_.push_back(uint64_t(c.gen) << 32 | slot);
    }
  } else if (res < 0 && res != -ECANCELED && !c.closing) {
    begin_close(slot, -res);
    return;
  }
  settle(slot);
}

// Bytes arrived in ring buffer `bid`: send them straight back, or queue a copy.
void UringLoop::take_bytes(uint32_t slot, uint16_t bid, uint32_t n) {
  Conn& c = conns_[slot];
  c.s.received(n);
  if (policed_ && !after_recv(c, slot, n)) {
    tcp_bufs_.recycle(bid);
    return begin_close(slot, 0);
  }
  if (!c.send_busy && !c.out.attached()) return send_ring(c, slot, bid, n);
  if (!c.out.attached() && !attach_queue(c)) {
    tcp_bufs_.recycle(bid);
    return begin_close(slot, ENOMEM);
  }
  c.out.append(tcp_bufs_.addr(bid), n);  // fits: pending bytes never exceed --buffer
  tcp_bufs_.recycle(bid);
}

// A queue always holds every pending byte, so one attached while a ring send is in
// flight starts with a copy of that send's bytes.
bool UringLoop::attach_queue(Conn& c) {
  char* b = pool_.acquire();
  if (!b) return false;
  c.out.attach(b, pool_.buffer_size());
  if (c.send_busy && c.send_from_ring) c.out.append(tcp_bufs_.addr(c.ring_bid), c.ring_len);
  return true;
}

void UringLoop::send_ring(Conn& c, uint32_t slot, uint16_t bid, uint32_t n) {
  io_uring_sqe* s = sqe();
  // MSG_DONTWAIT: never park a ring buffer on a peer that is not reading; what the
  // socket does not take now is copied out when the completion says so.
  io_uring_prep_send(s, c.fd, tcp_bufs_.addr(bid), n, MSG_NOSIGNAL | MSG_DONTWAIT);
  io_uring_sqe_set_data64(s, tag(kSend, c.gen, slot));
  c.send_busy = true;
  c.send_from_ring = true;
  c.ring_bid = bid;
  c.ring_len = n;
  ++inflight_;
}

void UringLoop::send_queued(Conn& c, uint32_t slot) {
  io_uring_sqe* s = sqe();
  // May wait in the kernel for the peer to read; the queue is ours, not the ring's.
  io_uring_prep_send(s, c.fd, c.out.front(), c.out.front_len(), MSG_NOSIGNAL);
  io_uring_sqe_set_data64(s, tag(kSend, c.gen, slot));
  c.send_busy = true;
  c.send_from_ring = false;
  ++inflight_;
}

void UringLoop::on_send(uint32_t slot, int res) {
  Conn& c = conns_[slot];
  c.send_busy = false;
  --inflight_;
  uint32_t sent = res > 0 ? uint32_t(res) : 0;
  if (sent) {
    c.s.sent(sent);
    Counters::add(counters_.tcp_bytes, sent);
    if (policed_) timers_.activity(slot, now_);
  }
  bool failed = res < 0 && res != -EAGAIN;
  if (c.send_from_ring) {
    c.send_from_ring = false;
    if (c.out.attached()) {
      c.out.consumed(sent);
    } else if (sent < c.ring_len && !failed && !c.closing) {
      if (!attach_queue(c)) {
        tcp_bufs_.recycle(c.ring_bid);
        return begin_close(slot, ENOMEM);
      }
      c.out.append(tcp_bufs_.addr(c.ring_bid) + sent, c.ring_len - sent);
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
  Conn& c = conns_[slot];
  if (c.fd < 0) return;  // already finalized by the handler that called us
  if (c.closing) {
    if (!c.recv_armed && !c.send_busy && !c.poll_armed) finalize(slot);
    return;
  }
  if (c.awaiting_proxy) return;
  if (!c.send_busy && c.out.pending() > 0) send_queued(c, slot);
  if (!c.send_busy && c.out.attached() && c.out.pending() == 0) pool_.release(c.out.detach());
  // Half-close: after the peer's FIN, everything pending has gone back; now close.
  if (c.s.finished() && !c.send_busy) return begin_close(slot, 0);
  if (c.recv_armed || c.starved || !c.s.may_read(cfg_.buffer_size) || c.paused_until) return;
  if (starved_head_ < starved_.size()) {
    // Buffers are short and others wait for one: queue up behind them.
    c.starved = true;
    starved_.push_back(uint64_t(c.gen) << 32 | slot);
    return;
  }
  arm_recv(slot, false);
}

// Gives each waiting connection, oldest first, one receive (one buffer) while the
// ring has buffers free; the rest keep their place in the queue.
void UringLoop::rearm_starved() {
  uint32_t free = tcp_bufs_.free_count();
  while (starved_head_ < starved_.size() && free > 0) {
    uint64_t v = starved_[starved_head_++];
    auto slot = uint32_t(v);
    Conn& c = conns_[slot];
    if (c.gen != uint32_t(v >> 32) || c.fd < 0 || !c.starved) continue;
    c.starved = false;
    if (c.closing || c.recv_armed || !c.s.may_read(cfg_.buffer_size) || c.paused_until) continue;
    arm_recv(slot, true);
    --free;
  }
  if (starved_head_ == starved_.size()) {
    starved_.clear();  // keeps its capacity: no allocation next time
    starved_head_ = 0;
  }
}

void UringLoop::cancel(uint64_t user_data) {
  io_uring_sqe* s = sqe();
  io_uring_prep_cancel64(s, user_data, 0);
  io_uring_sqe_set_data64(s, tag(kCancel, 0, 0));
  ++inflight_;
}

// Ends a connection: its requests are cancelled, and the fd is closed only when the
// last of them has completed (so no queued request can meet a reused fd number).
void UringLoop::begin_close(uint32_t slot, int err) {
  Conn& c = conns_[slot];
  c.closing = true;
  c.close_err = err;
  if (c.recv_armed) cancel(tag(kRecv, c.gen, slot));
  if (c.send_busy) cancel(tag(kSend, c.gen, slot));
  if (c.poll_armed) cancel(tag(kProxyPoll, c.gen, slot));
  if (!c.recv_armed && !c.send_busy && !c.poll_armed) finalize(slot);
}

void UringLoop::finalize(uint32_t slot) {
  Conn& c = conns_[slot];
  const char* why = c.close_why ? c.close_why : c.close_err ? std::strerror(c.close_err) : "";
  session::close_books(adm_, counters_, peer_of(c), c.s, now_ns(), c.reject, c.admitted, why);
  if (timers_.enabled()) timers_.closed(slot);
  if (c.proxy_buf) {
    proxy_pool_.release(c.proxy_buf);
    c.proxy_buf = nullptr;
  }
  c.paused_until = 0;
  ::close(c.fd);
  c.fd = -1;
  c.closing = false;
  if (c.out.attached()) {
    c.out.consumed(c.out.pending());
    pool_.release(c.out.detach());
  }
  free_slots_.push_back(slot);
  --active_;
  counters_.connection_closed();
  // An fd came free: if accepting was paused for lack of them, try again now.
  if (paused_) resume_accepts();
}

// ---- limits and PROXY (issue 7) ---------------------------------------------------

void UringLoop::reject_now(Reject r, const net::Address& peer) {
  counters_.reject(r);
  adm_.log_reject(r, peer);
}

// The PROXY header is read with plain non-blocking recv calls once a one-shot poll
// says bytes are there (net::read_proxy_header peeks, so nothing past the header is
// taken); the echo's multishot recv starts only after it.
void UringLoop::arm_proxy_poll(uint32_t slot) {
  Conn& c = conns_[slot];
  io_uring_sqe* s = sqe();
  io_uring_prep_poll_add(s, c.fd, POLLIN);
  io_uring_sqe_set_data64(s, tag(kProxyPoll, c.gen, slot));
  c.poll_armed = true;
  ++inflight_;
}

void UringLoop::on_proxy_poll(uint32_t slot, int res) {
  Conn& c = conns_[slot];
  --inflight_;
  c.poll_armed = false;
  if (c.closing) return settle(slot);
  if (res < 0) {
    if (res == -ECANCELED) return settle(slot);
    return begin_close(slot, -res);
  }
  if (!c.proxy_buf && !(c.proxy_buf = proxy_pool_.acquire())) return begin_close(slot, ENOMEM);
  net::ProxyHeader h;
  std::string why;
  switch (net::read_proxy_header(c.fd, reinterpret_cast<uint8_t*>(c.proxy_buf), c.proxy_have, h, why)) {
    case net::ProxyStep::wait:
      return arm_proxy_poll(slot);
    case net::ProxyStep::failed:
      return begin_close(slot, errno ? errno : EIO);
    case net::ProxyStep::invalid:
      log::debug("PROXY header from {}: {}", peer_of(c).to_string(), why);
      c.reject = uint8_t(Reject::proxy_invalid);
      return begin_close(slot, 0);
    case net::ProxyStep::done:
      break;
  }
  proxy_pool_.release(c.proxy_buf);
  c.proxy_buf = nullptr;
  c.awaiting_proxy = false;
  timers_.proxy_done(slot);
  if (!h.local) {  // the client the balancer saw is the peer from now on
    c.peer_len = std::min<socklen_t>(h.source.len, sizeof c.peer);
    std::memcpy(&c.peer, &h.source.storage, c.peer_len);
  }
  net::Address client = peer_of(c);
  if (auto r = adm_.admit_source(client, c.source)) {
    c.reject = uint8_t(*r);
    return begin_close(slot, 0);  // gives back the pending slot
  }
  c.admitted = Admitted::full;
  session::log_connected(client);
  settle(slot);  // arms the echo's recv; bytes behind the header are still in the socket
}

// After every receive when some per-connection limit is on; false: close (c.reject set).
bool UringLoop::after_recv(Conn& c, uint32_t slot, uint32_t n) {
  if (lim_.max_bytes && c.s.bytes_in > lim_.max_bytes) {
    c.reject = uint8_t(Reject::max_bytes);
    return false;
  }
  timers_.activity(slot, now_);
  if (lim_.rate_per_ip) {
    // Over the source's budget: stop receiving on this connection until the debt is
    // paid; the kernel's receive window then slows the sender, and no byte is lost.
    if (uint64_t wait = adm_.charge(c.source, n, now_)) {
      if (!c.paused_until) {
        rate_paused_.push_back(uint64_t(c.gen) << 32 | slot);
        if (c.recv_armed) cancel(tag(kRecv, c.gen, slot));  // its end is not re-armed while paused
      }
      c.paused_until = std::max(c.paused_until, now_ + wait);
    }
  }
  return true;
}

// One timeout request at a time, at most kTickNs ahead, while connections are open.
void UringLoop::arm_tick() {
  if (tick_armed_ || (draining_ && active_ == 0)) return;
  uint64_t now = now_ns();
  uint64_t d = timers_.next_deadline();
  for (uint64_t v : rate_paused_) {
    const Conn& c = conns_[uint32_t(v)];
    if (c.fd >= 0 && c.gen == uint32_t(v >> 32) && c.paused_until) d = std::min(d, c.paused_until);
  }
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
  if (timers_.enabled()) {
    timers_.expire(now_, [this](uint32_t slot, Reject why) {
      Conn& c = conns_[slot];
      if (c.fd < 0 || c.closing) return;
      c.reject = uint8_t(why);
      begin_close(slot, 0);
    });
  }
  if (!rate_paused_.empty()) {
    rate_paused_scan_.clear();
    rate_paused_scan_.swap(rate_paused_);  // settle() may pause again: it appends to rate_paused_
    for (uint64_t v : rate_paused_scan_) {
      auto slot = uint32_t(v);
      Conn& c = conns_[slot];
      if (c.fd < 0 || c.gen != uint32_t(v >> 32) || !c.paused_until) continue;
      if (c.paused_until > now_) {
        rate_paused_.push_back(v);
        continue;
      }
      c.paused_until = 0;
      settle(slot);
    }
  }
  if (active_ > 0 || !rate_paused_.empty()) arm_tick();
}

// ---- UDP -------------------------------------------------------------------------

void UringLoop::arm_udp(size_t i) {
  ListenState& ls = listeners_[i];
  if (ls.armed || !ls.l->fd.valid() || draining_) return;
  io_uring_sqe* s = sqe();
  io_uring_prep_recvmsg_multishot(s, ls.l->fd.get(), &udp_msg_, 0);
  s->flags |= IOSQE_BUFFER_SELECT;
  s->buf_group = kUdpGroup;
  io_uring_sqe_set_data64(s, tag(kUdpRecv, 0, uint32_t(i)));
  ls.armed = true;
  ls.starved = false;
  ++inflight_;
}

void UringLoop::on_udp_recv(size_t i, int res, unsigned flags) {
  ListenState& ls = listeners_[i];
  if (!(flags & IORING_CQE_F_MORE)) {
    ls.armed = false;
    --inflight_;
  }
  if (flags & IORING_CQE_F_BUFFER) {
    auto bid = uint16_t(flags >> IORING_CQE_BUFFER_SHIFT);
    udp_bufs_.taken();
    char* buf = udp_bufs_.addr(bid);
    io_uring_recvmsg_out* o =
        res >= 0 && ls.l->fd.valid() ? io_uring_recvmsg_validate(buf, res, &udp_msg_) : nullptr;
    if (o && udp_guard_.active()) {
      // Policy drops (reflector ports, access list, rate) are never echoed.
      auto* from = static_cast<sockaddr*>(io_uring_recvmsg_name(o));
      socklen_t from_len = std::min(o->namelen, udp_msg_.msg_namelen);
      if (auto r = udp_guard_.check(from, from_len, now_)) {
        counters_.reject(*r);
        adm_.log_reject(*r, net::Address::from(from, from_len));
        o = nullptr;  // recycled below, like a truncated one; not an error
      }
    }
    if (!o || (o->flags & MSG_TRUNC)) {
      if (o) Counters::add(counters_.udp_dropped, 1);
      udp_bufs_.recycle(bid);
    } else {
      // Each datagram goes back whole to its sender, straight from the ring buffer.
      UdpSend& u = udp_sends_[bid];
      u.iov.iov_base = io_uring_recvmsg_payload(o, &udp_msg_);
      u.iov.iov_len = io_uring_recvmsg_payload_length(o, res, &udp_msg_);
      u.msg = msghdr{};
      u.msg.msg_name = io_uring_recvmsg_name(o);
      u.msg.msg_namelen = std::min(o->namelen, udp_msg_.msg_namelen);
      u.msg.msg_iov = &u.iov;
      u.msg.msg_iovlen = 1;
      io_uring_sqe* s = sqe();
      // MSG_DONTWAIT: a full send buffer drops the datagram (counted), as UDP does.
      io_uring_prep_sendmsg(s, ls.l->fd.get(), &u.msg, MSG_DONTWAIT | MSG_NOSIGNAL);
      io_uring_sqe_set_data64(s, tag(kUdpSend, 0, bid));
      ++inflight_;
    }
  }
  if (ls.armed || draining_ || res == -ECANCELED) return;
  if (res == -ENOBUFS) {
    ls.starved = true;  // re-armed by rearm_starved_udp() once buffers are back
    return;
  }
  if (res < 0) log::warn("recvmsg on udp://{}: {}", ls.l->addr.to_string(), std::strerror(-res));
  arm_udp(i);
}

void UringLoop::on_udp_send(uint16_t bid, int res) {
  --inflight_;
  if (res >= 0) {  // counted when echoed, as the epoll engine does: a dropped one is not
    Counters::add(counters_.udp_datagrams, 1);
    Counters::add(counters_.udp_bytes, uint64_t(res));
  } else {
    Counters::add(counters_.udp_dropped, 1);
  }
  udp_bufs_.recycle(bid);
}

// A UDP receive that ran out of buffers is re-armed at the top of the next turn once
// buffers are back. (Not from the send completion that returns a buffer: the ENOBUFS
// completion may come after the last send completion of the batch, and then no later
// event would re-arm it.)
void UringLoop::rearm_starved_udp() {
  if (udp_bufs_.free_count() == 0) return;
  for (size_t i = 0; i < listeners_.size(); ++i)
    if (listeners_[i].starved) arm_udp(i);
}

// ---- control, drain, stop --------------------------------------------------------

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
    ListenState& ls = listeners_[i];
    if (ls.armed) cancel(tag(ls.l->proto == net::Proto::udp ? kUdpRecv : kAccept, 0, uint32_t(i)));
    ls.l->fd.reset();  // stop accepting; UDP has no connections to finish
  }
}

// Closes every connection still open, then cancels every request and waits (bounded)
// until the kernel confirms each has ended, before the buffers they use are freed.
void UringLoop::teardown() {
  if (!ring_up_) return;
  for (uint32_t slot = 0; slot < conns_.size(); ++slot) {
    Conn& c = conns_[slot];
    if (c.fd < 0) continue;
    if (!c.closing) {
      Counters::add(counters_.cut_at_stop, 1);
      c.close_why = draining_ ? "drain timeout" : "server stopping";
    }
    const char* why = c.close_why ? c.close_why : c.close_err ? std::strerror(c.close_err) : "";
    session::log_closed(net::Address::from(reinterpret_cast<sockaddr*>(&c.peer), c.peer_len), c.s, now_ns(),
                        why);
    ::close(c.fd);  // the socket itself goes when the requests holding it are cancelled
    c.fd = -1;
    if (c.admitted == Admitted::full) adm_.release(peer_of(c));
    else if (c.admitted == Admitted::pending) adm_.release_pending();
    c.admitted = Admitted::none;
    if (c.proxy_buf) {
      proxy_pool_.release(c.proxy_buf);  // the poll that reads into it was only a poll
      c.proxy_buf = nullptr;
    }
    --active_;
    counters_.connection_closed();
  }
  for (ListenState& ls : listeners_) ls.l->fd.reset();
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
  }
  for (Conn& c : conns_) {
    if (!c.out.attached()) continue;
    c.out.consumed(c.out.pending());
    if (inflight_ == 0) pool_.release(c.out.detach());
  }
}

}  // namespace

Status run_uring(LoopContext& ctx) {
  UringLoop loop(ctx);
  return loop.run();
}

}  // namespace eco::engine
