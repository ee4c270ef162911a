// The UDP load loop: one per thread, a connected UDP socket per "connection", each
// datagram one message whose header (connection id, sequence) says which request it
// answers. Closed loop keeps `depth` datagrams in flight per socket and gives up on
// one after a timeout (UDP may drop it); open loop sends on the schedule.
#include <sys/epoll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "bench/pacing.h"
#include "bench/payload.h"
#include "bench/worker.h"
#include "net/socket.h"
#include "util/clock.h"
#include "util/fd.h"

namespace eco::bench {
namespace {

constexpr uint64_t kTickNs = 100'000'000;
constexpr uint32_t kMaxDepth = 1024;
constexpr int kMaxEvents = 512;
constexpr int kRecvPerEvent = 64;
constexpr int kSchedulePerPass = 4096;

struct Slot {
  uint64_t seq = 0;
  uint64_t sent_at = 0;
  bool used = false;
};

struct Sock {
  Fd fd;
  uint32_t id = 0;
  bool out_armed = false;
  bool replied = false;
  uint64_t next_seq = 0;  // next message to send
  uint64_t due_seq = 0;   // messages below this may be sent now
  uint64_t sent = 0, received = 0;
};

class UdpLoop {
 public:
  UdpLoop(const WorkerPlan& plan, WorkerLive& live, WorkerResult& out)
      : plan_(plan), o_(*plan.opts), live_(live), out_(out), size_(o_.size) {}
  void run();

 private:
  bool open_loop() const { return plan_.rate > 0; }
  bool in_window(uint64_t t) const { return t >= plan_.time.measure_from && t <= end_; }
  void error(uint64_t& counter, const std::string& why) {
    ++counter;
    if (out_.first_error.empty()) out_.first_error = why;
  }
  Slot* free_slot(uint32_t k);
  Slot* find_slot(uint32_t k, uint64_t seq);
  void flush(uint32_t k, uint64_t now);
  void on_readable(uint32_t k, uint64_t now);
  void set_out(uint32_t k, bool on);
  void tick(uint64_t now);
  uint64_t in_flight() const;

  const WorkerPlan& plan_;
  const BenchOptions& o_;
  WorkerLive& live_;
  WorkerResult& out_;
  const uint32_t size_;
  uint32_t depth_ = 1;
  uint64_t timeout_ns_ = 1'000'000'000;
  Fd ep_;
  std::vector<Sock> socks_;
  std::vector<Slot> slots_;
  std::vector<uint8_t> tx_, rx_;
  Schedule sched_;
  uint64_t next_m_ = 0, end_ = 0;
  bool stopping_ = false;
  Histogram local_interval_;
};

Slot* UdpLoop::free_slot(uint32_t k) {
  Slot* s = &slots_[size_t(k) * depth_];
  for (uint32_t i = 0; i < depth_; ++i)
    if (!s[i].used) return &s[i];
  return nullptr;
}

Slot* UdpLoop::find_slot(uint32_t k, uint64_t seq) {
  Slot* s = &slots_[size_t(k) * depth_];
  for (uint32_t i = 0; i < depth_; ++i)
    if (s[i].used && s[i].seq == seq) return &s[i];
  return nullptr;
}

void UdpLoop::set_out(uint32_t k, bool on) {
  Sock& s = socks_[k];
  if (s.out_armed == on) return;
  epoll_event ev{};
  ev.events = EPOLLIN | (on ? EPOLLOUT : 0u);
  ev.data.u32 = k;
  if (epoll_ctl(ep_.get(), EPOLL_CTL_MOD, s.fd.get(), &ev) == 0) s.out_armed = on;
}

void UdpLoop::flush(uint32_t k, uint64_t now) {
  Sock& s = socks_[k];
  while (s.next_seq < s.due_seq) {
    Slot* slot = nullptr;
    if (!open_loop() && (slot = free_slot(k)) == nullptr) break;
    fill_stream(s.id, size_, s.next_seq * size_, size_, tx_.data());
    ssize_t n = ::send(s.fd.get(), tx_.data(), size_, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == ENOBUFS) {
        set_out(k, true);
        return;
      }
      if (errno == ECONNREFUSED) {
        // An ICMP port unreachable for an earlier datagram: nobody listens.
        error(out_.errors.refused, fmt::format("udp://{}: connection refused (no server on that port)",
                                               plan_.target.to_string()));
        continue;
      }
      error(out_.errors.other, fmt::format("sending to udp://{}: {}", plan_.target.to_string(), std::strerror(errno)));
      ++s.next_seq;  // skip this message rather than spin on it
      continue;
    }
    if (slot != nullptr) *slot = Slot{s.next_seq, now, true};
    ++s.next_seq;
    ++s.sent;
  }
  set_out(k, false);
}

void UdpLoop::on_readable(uint32_t k, uint64_t now) {
  Sock& s = socks_[k];
  for (int i = 0; i < kRecvPerEvent; ++i) {
    ssize_t n = ::recv(s.fd.get(), rx_.data(), rx_.size(), MSG_DONTWAIT | MSG_TRUNC);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) break;
      if (errno == ECONNREFUSED) {
        error(out_.errors.refused, fmt::format("udp://{}: connection refused (no server on that port)",
                                               plan_.target.to_string()));
        continue;
      }
      error(out_.errors.other, fmt::format("receiving from udp://{}: {}", plan_.target.to_string(), std::strerror(errno)));
      break;
    }
    if (size_t(n) != size_) {
      error(out_.errors.mismatch,
            fmt::format("udp://{} echoed a datagram of {} bytes, sent {}", plan_.target.to_string(), n, size_));
      continue;
    }
    uint32_t conn;
    uint64_t seq;
    read_header(rx_.data(), conn, seq);
    if (conn != s.id || seq >= s.next_seq) {
      error(out_.errors.mismatch, fmt::format("udp://{} echoed a datagram that was never sent (connection {}, "
                                              "message {})", plan_.target.to_string(), conn, seq));
      continue;
    }
    Slot* slot = nullptr;
    if (!open_loop()) {
      slot = find_slot(k, seq);
      if (slot == nullptr) continue;  // late (already counted as a timeout) or duplicate
    }
    if (o_.verify) {
      size_t bad = verify_stream(s.id, size_, seq * size_, rx_.data(), size_);
      if (bad < size_) {
        error(out_.errors.mismatch,
              fmt::format("echo differs on connection {} message {} byte {}", s.id, seq, bad));
        if (slot != nullptr) {
          slot->used = false;
          if (!stopping_) ++s.due_seq;
        }
        continue;
      }
    }
    uint64_t from = open_loop() ? sched_.intended(seq, k) : slot->sent_at;
    if (in_window(now)) {
      uint64_t lat = now > from ? now - from : 1;
      out_.hist.record(lat);
      local_interval_.record(lat);
      ++out_.round_trips;
      out_.bytes += size_;
    }
    s.replied = true;
    ++s.received;
    if (slot != nullptr) {
      slot->used = false;
      if (!stopping_) ++s.due_seq;
    }
  }
  flush(k, now);
}

void UdpLoop::tick(uint64_t now) {
  live_.round_trips.store(out_.round_trips, std::memory_order_relaxed);
  live_.bytes.store(out_.bytes, std::memory_order_relaxed);
  live_.errors.store(out_.errors.total(), std::memory_order_relaxed);
  if (local_interval_.count() > 0) {
    std::lock_guard lock(live_.mu);
    live_.interval.merge(local_interval_);
    local_interval_.reset();
  }
  if (open_loop()) return;
  // A datagram (or its echo) may be lost: give up on it and send the next one.
  for (uint32_t k = 0; k < socks_.size(); ++k) {
    bool freed = false;
    Slot* sl = &slots_[size_t(k) * depth_];
    for (uint32_t i = 0; i < depth_; ++i) {
      if (sl[i].used && now - sl[i].sent_at > timeout_ns_) {
        sl[i].used = false;
        error(out_.errors.timeout, fmt::format("no echo from udp://{} within {:g} s", plan_.target.to_string(),
                                               double(timeout_ns_) / 1e9));
        if (!stopping_) ++socks_[k].due_seq;
        freed = true;
      }
    }
    if (freed) flush(k, now);
  }
}

uint64_t UdpLoop::in_flight() const {
  uint64_t n = 0;
  if (open_loop()) {
    for (const Sock& s : socks_) n += s.sent > s.received ? s.sent - s.received : 0;
  } else {
    for (const Slot& sl : slots_) n += sl.used ? 1 : 0;
  }
  return n;
}

void UdpLoop::run() {
  tighten_timer_slack();
  ep_.reset(epoll_create1(EPOLL_CLOEXEC));
  if (!ep_.valid()) {
    out_.fatal = fmt::format("epoll_create1: {}", std::strerror(errno));
    return;
  }
  const uint32_t n = plan_.conns;
  depth_ = open_loop() ? 1 : std::clamp<uint32_t>(o_.depth, 1, kMaxDepth);
  timeout_ns_ = uint64_t(std::min(o_.timeout_s, 1.0) * 1e9);
  socks_.resize(n);
  slots_.assign(size_t(n) * depth_, Slot{});
  tx_.assign(size_, 0);
  rx_.assign(65536, 0);
  end_ = plan_.time.end;
  if (open_loop()) sched_ = Schedule(plan_.time.start, plan_.rate, n);
  uint64_t now = now_ns();
  for (uint32_t k = 0; k < n; ++k) {
    Sock& s = socks_[k];
    s.id = plan_.first_conn + k;
    auto fd = net::connect_udp(plan_.target);
    if (fd) {
      if (auto st = net::set_nonblocking(fd->get()); !st) fd = st.error();
    }
    if (!fd) {
      out_.fatal = fd.error().message;
      return;
    }
    s.fd = std::move(*fd);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = k;
    if (epoll_ctl(ep_.get(), EPOLL_CTL_ADD, s.fd.get(), &ev) != 0) {
      out_.fatal = fmt::format("epoll_ctl: {}", std::strerror(errno));
      return;
    }
    if (!open_loop()) {
      s.due_seq = depth_;
      flush(k, now);
    }
  }

  std::vector<epoll_event> events(kMaxEvents);
  uint64_t next_tick = plan_.time.start + kTickNs;
  for (;;) {
    now = now_ns();
    bool interrupted = plan_.interrupted && plan_.interrupted->load(std::memory_order_relaxed);
    if (!stopping_ && (now >= end_ || interrupted)) {
      stopping_ = true;
      end_ = std::min(end_, now);
    }
    if (stopping_ && (in_flight() == 0 || now >= plan_.time.hard_stop || (interrupted && now >= end_ + 200'000'000)))
      break;
    if (open_loop() && !stopping_) {
      for (int i = 0; i < kSchedulePerPass; ++i) {
        uint64_t due = sched_.due(next_m_);
        if (due > now || due > end_) break;
        uint32_t k = uint32_t(next_m_ % n);
        if (in_window(due)) ++out_.scheduled;
        socks_[k].due_seq = next_m_ / n + 1;
        flush(k, now);
        ++next_m_;
      }
    }
    if (now >= next_tick) {
      tick(now);
      next_tick = now + kTickNs;
    }
    uint64_t wake = std::min(next_tick, stopping_ ? plan_.time.hard_stop : end_);
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
      if (ev & (EPOLLIN | EPOLLERR)) on_readable(k, now);
      if (ev & EPOLLOUT) flush(k, now);
    }
  }
  uint64_t missing = in_flight();
  if (missing > 0) {
    out_.errors.timeout += missing;
    if (out_.first_error.empty())
      out_.first_error = fmt::format("{} echoes from udp://{} never came back", missing, plan_.target.to_string());
  }
  slots_.assign(slots_.size(), Slot{});
  for (Sock& s : socks_) {
    if (s.replied) ++out_.connected;
    s.fd.reset();
  }
  tick(now_ns());
  live_.done.store(true, std::memory_order_release);
}

}  // namespace

void run_udp_worker(const WorkerPlan& plan, WorkerLive& live, WorkerResult& out) {
  UdpLoop loop(plan, live, out);
  loop.run();
}

}  // namespace eco::bench
