// The TCP load loop: one per thread, epoll, non-blocking sockets, level-triggered.
// A connection's state is a handful of stream offsets (sent, due, echoed); the bytes
// themselves are regenerated from the payload pattern, so nothing is allocated or
// copied per message.
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "bench/connector.h"
#include "bench/pacing.h"
#include "bench/payload.h"
#include "bench/worker.h"
#include "util/clock.h"
#include "util/fd.h"

namespace eco::bench {
namespace {

constexpr size_t kIoChunk = 256 << 10;
constexpr uint64_t kTickNs = 100'000'000;      // timeouts, live counters, interval histogram
constexpr uint64_t kRetryNs = 100'000'000;     // after a refused or failed connect
constexpr uint64_t kReconnectNs = 10'000'000;  // after an established connection failed
constexpr uint32_t kStreamWindow = 256 << 10;  // stream mode keeps this many bytes in flight
constexpr uint32_t kMaxDepth = 4096;
constexpr int kMaxEvents = 512;
constexpr int kConnectsPerPass = 256;          // interleave big ramps with I/O
constexpr int kSchedulePerPass = 4096;

enum class State : uint8_t { waiting, connecting, open, finished };
enum class Kind { mismatch, short_read, reset, refused, timeout, other };

struct Conn {
  Fd fd;
  State state = State::waiting;
  bool out_armed = false;
  bool queued = false;       // in the connect queue
  uint32_t id = 0;           // global connection id carried in the payload
  uint64_t send_off = 0;     // stream offsets: message seq occupies [seq*S, (seq+1)*S)
  uint64_t target_off = 0;   // bytes due to be sent
  uint64_t recv_off = 0;     // bytes echoed and verified
  uint64_t started = 0;      // connect start (crr latency, connect timeout)
  uint64_t last_progress = 0;
};

class TcpLoop {
 public:
  TcpLoop(const WorkerPlan& plan, WorkerLive& live, WorkerResult& out)
      : plan_(plan), o_(*plan.opts), live_(live), out_(out), size_(o_.size), local_interval_() {}

  void run();

 private:
  bool open_loop() const { return plan_.rate > 0; }
  bool crr() const { return o_.mode == Mode::crr; }
  bool in_window(uint64_t t) const { return t >= plan_.time.measure_from && t <= end_; }

  void enqueue_connect(uint32_t k, uint64_t at);
  void start_connect(uint32_t k, uint64_t now);
  void on_connected(uint32_t k, uint64_t now);
  void queue_message(Conn& c, uint32_t k, uint64_t now);
  void flush(uint32_t k, uint64_t now);
  void on_readable(uint32_t k, uint64_t now);
  void complete(uint32_t k, uint64_t seq, uint64_t now);
  void fail(uint32_t k, Kind kind, const std::string& why, uint64_t now);
  void count(Kind kind, const std::string& why);
  void close_conn(Conn& c);
  void set_out(uint32_t k, bool on);
  void run_schedule(uint64_t now);
  void tick(uint64_t now);
  void begin_stop(uint64_t now);
  bool drained() const;

  const WorkerPlan& plan_;
  const BenchOptions& o_;
  WorkerLive& live_;
  WorkerResult& out_;
  const uint32_t size_;
  uint32_t depth_ = 1;
  Fd ep_;
  std::vector<Conn> conns_;
  std::vector<uint64_t> sent_at_;  // closed loop: when message seq was queued, [k*depth + seq%depth]
  std::vector<uint32_t> connect_q_;  // ring of connection indices waiting to connect
  std::vector<uint64_t> connect_at_;
  size_t q_head_ = 0, q_len_ = 0;
  std::vector<uint8_t> tx_, rx_;
  Schedule sched_;
  uint64_t next_m_ = 0;
  uint64_t end_ = 0;
  bool stopping_ = false;
  uint32_t source_shift_ = 0;  // bumped when a source address runs out of ports
  Histogram local_interval_;
};

void TcpLoop::count(Kind kind, const std::string& why) {
  ErrorCounts& e = out_.errors;
  switch (kind) {
    case Kind::mismatch: ++e.mismatch; break;
    case Kind::short_read: ++e.short_read; break;
    case Kind::reset: ++e.reset; break;
    case Kind::refused: ++e.refused; break;
    case Kind::timeout: ++e.timeout; break;
    case Kind::other: ++e.other; break;
  }
  if (out_.first_error.empty()) out_.first_error = why;
}

void TcpLoop::close_conn(Conn& c) {
  c.fd.reset();  // close() also removes it from the epoll set
  c.out_armed = false;
  c.state = State::waiting;
}

void TcpLoop::enqueue_connect(uint32_t k, uint64_t at) {
  Conn& c = conns_[k];
  if (c.queued) return;
  c.queued = true;
  size_t slot = (q_head_ + q_len_) % connect_q_.size();
  connect_q_[slot] = k;
  connect_at_[slot] = at;
  ++q_len_;
}

void TcpLoop::fail(uint32_t k, Kind kind, const std::string& why, uint64_t now) {
  Conn& c = conns_[k];
  count(kind, why);
  close_conn(c);
  // Keep the offered load going: the connection comes back with the next sequence.
  if (!stopping_) enqueue_connect(k, now + (kind == Kind::refused ? kRetryNs : kReconnectNs));
  else c.state = State::finished;
}

void TcpLoop::start_connect(uint32_t k, uint64_t now) {
  Conn& c = conns_[k];
  for (int attempt = 0; attempt < 8; ++attempt) {
    net::Address src;
    uint32_t index = c.id / o_.conns_per_source + source_shift_;
    bool bind_source = index > 0 && loopback_source(plan_.target, index, src);
    auto fd = bench::start_connect(plan_.target, bind_source ? &src : nullptr);
    if (!fd) {
      int err = fd.error().code;
      // This source address has no free port left towards the server: use the next.
      if (err == EADDRNOTAVAIL && loopback_source(plan_.target, 1, src)) {
        ++source_shift_;
        continue;
      }
      fail(k, err == ECONNREFUSED ? Kind::refused : Kind::other, fd.error().message, now);
      return;
    }
    c.fd = std::move(*fd);
    c.state = State::connecting;
    c.started = now;
    c.last_progress = now;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT;
    ev.data.u32 = k;
    if (epoll_ctl(ep_.get(), EPOLL_CTL_ADD, c.fd.get(), &ev) != 0) {
      fail(k, Kind::other, fmt::format("epoll_ctl: {}", std::strerror(errno)), now);
      return;
    }
    c.out_armed = true;
    return;
  }
  fail(k, Kind::other, "no loopback source address with a free port left", now);
}

void TcpLoop::on_connected(uint32_t k, uint64_t now) {
  Conn& c = conns_[k];
  int err = connect_result(c.fd.get());
  if (err != 0) {
    Kind kind = err == ECONNREFUSED ? Kind::refused : err == ETIMEDOUT ? Kind::timeout : Kind::other;
    fail(k, kind, fmt::format("cannot connect to {}: {}", plan_.target.to_string(), std::strerror(err)), now);
    return;
  }
  c.state = State::open;
  ++out_.connected;
  c.last_progress = now;
  // Continue the connection's stream where it left off (after a reconnect), so a
  // stale byte from an old connection can never match.
  uint64_t seq = (c.target_off + size_ - 1) / size_;
  if (open_loop()) seq = std::max(seq, sched_.next_seq_for(next_m_, k));
  c.send_off = c.recv_off = c.target_off = seq * size_;
  if (stopping_) return;
  if (!open_loop()) {
    uint32_t n = crr() ? 1 : depth_;
    for (uint32_t i = 0; i < n; ++i) queue_message(c, k, now);
  }
  flush(k, now);
}

void TcpLoop::queue_message(Conn& c, uint32_t k, uint64_t now) {
  uint64_t seq = c.target_off / size_;
  sent_at_[size_t(k) * depth_ + seq % depth_] = now;
  c.target_off += size_;
}

void TcpLoop::set_out(uint32_t k, bool on) {
  Conn& c = conns_[k];
  if (c.out_armed == on) return;
  epoll_event ev{};
  ev.events = EPOLLIN | (on ? EPOLLOUT : 0u);
  ev.data.u32 = k;
  if (epoll_ctl(ep_.get(), EPOLL_CTL_MOD, c.fd.get(), &ev) == 0) c.out_armed = on;
}

void TcpLoop::flush(uint32_t k, uint64_t now) {
  Conn& c = conns_[k];
  if (c.state != State::open) return;
  if (c.send_off == c.recv_off && c.send_off < c.target_off) c.last_progress = now;  // the clock starts now
  while (c.send_off < c.target_off) {
    size_t n = size_t(std::min<uint64_t>(c.target_off - c.send_off, kIoChunk));
    fill_stream(c.id, size_, c.send_off, n, tx_.data());
    ssize_t s = ::send(c.fd.get(), tx_.data(), n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (s < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        set_out(k, true);
        return;
      }
      Kind kind = (errno == EPIPE || errno == ECONNRESET) ? Kind::reset : Kind::other;
      fail(k, kind, fmt::format("sending to {}: {}", plan_.target.to_string(), std::strerror(errno)), now);
      return;
    }
    c.send_off += uint64_t(s);
  }
  set_out(k, false);
}

void TcpLoop::complete(uint32_t k, uint64_t seq, uint64_t now) {
  Conn& c = conns_[k];
  uint64_t from;
  if (crr()) from = c.started;
  else if (open_loop()) from = sched_.intended(seq, k);
  else from = sent_at_[size_t(k) * depth_ + seq % depth_];
  if (in_window(now)) {
    uint64_t lat = now > from ? now - from : 1;
    out_.hist.record(lat);
    local_interval_.record(lat);
    ++out_.round_trips;
  }
  if (stopping_) return;
  if (crr()) {
    // One request per connection: close (FIN from our side) and open the next.
    close_conn(c);
    start_connect(k, now);
    return;
  }
  if (!open_loop()) queue_message(c, k, now);
}

void TcpLoop::on_readable(uint32_t k, uint64_t now) {
  Conn& c = conns_[k];
  ssize_t r = ::recv(c.fd.get(), rx_.data(), rx_.size(), MSG_DONTWAIT);
  if (r < 0) {
    if (errno == EAGAIN || errno == EINTR) return;
    Kind kind = errno == ECONNRESET ? Kind::reset : errno == ETIMEDOUT ? Kind::timeout : Kind::other;
    fail(k, kind, fmt::format("receiving from {}: {}", plan_.target.to_string(), std::strerror(errno)), now);
    return;
  }
  if (r == 0) {
    if (c.send_off > c.recv_off)
      fail(k, Kind::short_read,
           fmt::format("{} closed the connection with {} bytes not echoed (message {} byte {})",
                       plan_.target.to_string(), c.send_off - c.recv_off, c.recv_off / size_, c.recv_off % size_),
           now);
    else
      fail(k, Kind::other, fmt::format("{} closed the connection", plan_.target.to_string()), now);
    return;
  }
  size_t got = size_t(r);
  if (c.recv_off + got > c.send_off) {
    fail(k, Kind::mismatch,
         fmt::format("{} echoed {} bytes more than it was sent", plan_.target.to_string(),
                     c.recv_off + got - c.send_off),
         now);
    return;
  }
  if (o_.verify) {
    size_t bad = verify_stream(c.id, size_, c.recv_off, rx_.data(), got);
    if (bad < got) {
      uint64_t at = c.recv_off + bad;
      uint8_t want;
      fill_stream(c.id, size_, at, 1, &want);
      fail(k, Kind::mismatch,
           fmt::format("echo differs on connection {} message {} byte {}: sent 0x{:02x}, received 0x{:02x}", c.id,
                       at / size_, at % size_, want, rx_[bad]),
           now);
      return;
    }
  }
  uint64_t old = c.recv_off;
  c.recv_off += got;
  c.last_progress = now;
  if (in_window(now)) out_.bytes += got;
  for (uint64_t seq = old / size_; (seq + 1) * size_ <= c.recv_off; ++seq) {
    complete(k, seq, now);
    if (c.state != State::open) return;  // crr: the connection was replaced
  }
  flush(k, now);
}

void TcpLoop::run_schedule(uint64_t now) {
  const uint32_t n = plan_.conns;
  for (int i = 0; i < kSchedulePerPass; ++i) {
    uint64_t due = sched_.due(next_m_);
    if (due > now || due > end_) return;
    uint32_t k = uint32_t(next_m_ % n);
    Conn& c = conns_[k];
    if (in_window(due)) ++out_.scheduled;
    // A message due while its connection is down is never sent (the error that took
    // the connection down is already counted).
    if (c.state == State::open && c.target_off / size_ == next_m_ / n) {
      c.target_off += size_;
      flush(k, now);
    }
    ++next_m_;
  }
}

void TcpLoop::tick(uint64_t now) {
  live_.round_trips.store(out_.round_trips, std::memory_order_relaxed);
  live_.bytes.store(out_.bytes, std::memory_order_relaxed);
  live_.errors.store(out_.errors.total(), std::memory_order_relaxed);
  if (local_interval_.count() > 0) {
    std::lock_guard lock(live_.mu);
    live_.interval.merge(local_interval_);
    local_interval_.reset();
  }
  const uint64_t limit = uint64_t(o_.timeout_s * 1e9);
  for (uint32_t k = 0; k < conns_.size(); ++k) {
    Conn& c = conns_[k];
    bool waiting = c.state == State::connecting || (c.state == State::open && c.send_off > c.recv_off);
    if (waiting && now - c.last_progress > limit)
      fail(k, Kind::timeout,
           fmt::format("no {} from {} for {:g} s", c.state == State::connecting ? "connection" : "echo",
                       plan_.target.to_string(), o_.timeout_s),
           now);
  }
}

void TcpLoop::begin_stop(uint64_t now) {
  stopping_ = true;
  end_ = std::min(end_, now);
  for (uint32_t k = 0; k < conns_.size(); ++k) {
    Conn& c = conns_[k];
    if (c.state == State::open) {
      // Finish the message being written; nothing new is started.
      c.target_off = std::min(c.target_off, (c.send_off + size_ - 1) / size_ * size_);
      flush(k, now);
    } else if (c.state == State::connecting || c.state == State::waiting) {
      close_conn(c);
      c.state = State::finished;
    }
  }
}

bool TcpLoop::drained() const {
  for (const Conn& c : conns_)
    if (c.state == State::open && c.recv_off < c.target_off) return false;
  return true;
}

void TcpLoop::run() {
  tighten_timer_slack();
  ep_.reset(epoll_create1(EPOLL_CLOEXEC));
  if (!ep_.valid()) {
    out_.fatal = fmt::format("epoll_create1: {}", std::strerror(errno));
    return;
  }
  const uint32_t n = plan_.conns;
  depth_ = 1;
  if (o_.mode == Mode::rr) depth_ = std::clamp<uint32_t>(o_.depth, 1, kMaxDepth);
  if (o_.mode == Mode::stream)
    depth_ = std::clamp<uint32_t>(std::max(o_.depth, (kStreamWindow + size_ - 1) / size_), 1, kMaxDepth);
  if (open_loop()) depth_ = 1;  // latency comes from the schedule, not from stored send times
  conns_.resize(n);
  sent_at_.assign(size_t(n) * depth_, 0);
  connect_q_.assign(n, 0);
  connect_at_.assign(n, 0);
  tx_.assign(std::min<size_t>(kIoChunk, std::max<size_t>(size_t(size_) * depth_, 4096)), 0);
  rx_.assign(kIoChunk, 0);
  end_ = plan_.time.end;
  const uint64_t start = plan_.time.start;
  if (open_loop()) sched_ = Schedule(start, plan_.rate, n);
  for (uint32_t k = 0; k < n; ++k) {
    conns_[k].id = plan_.first_conn + k;
    uint64_t at = plan_.connect_rate > 0 ? start + uint64_t(double(k) * 1e9 / plan_.connect_rate) : start;
    enqueue_connect(k, at);
  }

  std::vector<epoll_event> events(kMaxEvents);
  uint64_t next_tick = start + kTickNs;
  for (;;) {
    uint64_t now = now_ns();
    bool interrupted = plan_.interrupted && plan_.interrupted->load(std::memory_order_relaxed);
    if (!stopping_ && (now >= end_ || interrupted)) begin_stop(now);
    if (stopping_ && (drained() || now >= plan_.time.hard_stop || (interrupted && now >= end_ + 200'000'000)))
      break;
    for (int i = 0; i < kConnectsPerPass && q_len_ > 0 && !stopping_; ++i) {
      if (connect_at_[q_head_] > now) break;
      uint32_t k = connect_q_[q_head_];
      q_head_ = (q_head_ + 1) % connect_q_.size();
      --q_len_;
      conns_[k].queued = false;
      start_connect(k, now);
    }
    if (open_loop() && !stopping_) run_schedule(now);
    if (now >= next_tick) {
      tick(now);
      next_tick = now + kTickNs;
    }

    uint64_t wake = std::min(next_tick, stopping_ ? plan_.time.hard_stop : end_);
    if (q_len_ > 0 && !stopping_) wake = std::min(wake, connect_at_[q_head_]);
    if (open_loop() && !stopping_) wake = std::min(wake, sched_.due(next_m_));
    now = now_ns();
    int got = wait_events(ep_.get(), events.data(), kMaxEvents, wake > now ? wake - now : 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      out_.fatal = fmt::format("epoll_wait: {}", std::strerror(errno));
      break;
    }
    now = now_ns();
    for (int i = 0; i < got; ++i) {
      uint32_t k = events[size_t(i)].data.u32;
      uint32_t ev = events[size_t(i)].events;
      Conn& c = conns_[k];
      if (c.state == State::connecting) {
        on_connected(k, now);
        continue;
      }
      if (c.state != State::open) continue;
      if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) on_readable(k, now);
      if (c.state == State::open && (ev & EPOLLOUT)) flush(k, now);
    }
  }
  // Whatever was sent and never came back within the grace period timed out.
  for (Conn& c : conns_) {
    if (c.state == State::open && c.send_off > c.recv_off) {
      uint64_t missing = (c.send_off - c.recv_off + size_ - 1) / size_;
      out_.errors.timeout += missing;
      if (out_.first_error.empty())
        out_.first_error = fmt::format("{} echoes from {} still missing {:g} s after the run", missing,
                                       plan_.target.to_string(), o_.grace_s);
    }
    c.fd.reset();
    c.state = State::finished;
  }
  tick(now_ns());
  live_.done.store(true, std::memory_order_release);
}

}  // namespace

void run_tcp_worker(const WorkerPlan& plan, WorkerLive& live, WorkerResult& out) {
  TcpLoop loop(plan, live, out);
  loop.run();
}

}  // namespace eco::bench
