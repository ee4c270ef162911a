#include "bench/load_loop.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "util/clock.h"

namespace eco::bench {
namespace {

constexpr uint64_t kTickNs = 100'000'000;  // timeouts, live counters, interval histogram
constexpr int kMaxEvents = 512;
constexpr int kSchedulePerPass = 4096;     // interleave a late schedule with I/O
constexpr uint64_t kInterruptGraceNs = 200'000'000;

}  // namespace

LoadLoop::LoadLoop(const WorkerPlan& plan, WorkerLive& live, WorkerResult& out)
    : plan_(plan), o_(*plan.opts), live_(live), out_(out), size_(o_.size) {}

void LoadLoop::count(ErrorKind kind, const std::string& why) {
  ++out_.errors[kind];
  if (out_.first_error.empty()) out_.first_error = why;
}

bool LoadLoop::watch(int fd, uint32_t k, uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u32 = k;
  return epoll_ctl(ep_.get(), EPOLL_CTL_ADD, fd, &ev) == 0;
}

void LoadLoop::want_out(int fd, uint32_t k, bool on, bool& armed) {
  if (armed == on) return;
  epoll_event ev{};
  ev.events = EPOLLIN | (on ? EPOLLOUT : 0u);
  ev.data.u32 = k;
  if (epoll_ctl(ep_.get(), EPOLL_CTL_MOD, fd, &ev) == 0) armed = on;
}

void LoadLoop::publish_counts() {
  live_.round_trips.store(out_.round_trips, std::memory_order_relaxed);
  live_.bytes.store(out_.bytes, std::memory_order_relaxed);
  for (size_t i = 0; i < kErrorKinds; ++i)
    live_.errors[i].store(out_.errors[ErrorKind(i)], std::memory_order_relaxed);
}

void LoadLoop::publish() {
  publish_counts();
  if (local_interval_.count() > 0) {
    std::lock_guard lock(live_.mu);
    live_.interval.merge(local_interval_);
    local_interval_.reset();
  }
}

void LoadLoop::run_schedule(uint64_t now) {
  for (int i = 0; i < kSchedulePerPass; ++i) {
    uint64_t due = sched_.due(next_m_);
    if (due > now || due > end_) return;
    if (in_window(due)) ++out_.scheduled;
    on_due(next_m_++, now);
  }
}

void LoadLoop::run() {
  tighten_timer_slack();
  end_ = plan_.time.end;
  if (open_loop()) sched_ = Schedule(plan_.time.start, plan_.rate, plan_.conns);
  ep_.reset(epoll_create1(EPOLL_CLOEXEC));
  if (!ep_.valid()) out_.fatal = fmt::format("epoll_create1: {}", std::strerror(errno));
  else if (setup(now_ns())) loop();
  publish();
  live_.done.store(true, std::memory_order_release);
}

void LoadLoop::loop() {
  std::vector<epoll_event> events(kMaxEvents);
  uint64_t next_tick = plan_.time.start + kTickNs;
  for (;;) {
    uint64_t now = now_ns();
    bool interrupted = plan_.interrupted && plan_.interrupted->load(std::memory_order_relaxed);
    if (!stopping_ && (now >= end_ || interrupted)) {
      stopping_ = true;
      end_ = std::min(end_, now);
      on_stop(now);
    }
    if (stopping_ && (drained(now) || now >= plan_.time.hard_stop || (interrupted && now >= end_ + kInterruptGraceNs)))
      break;
    if (!stopping_) {
      start_due(now);
      if (open_loop()) run_schedule(now);
    }
    if (now >= next_tick) {
      publish();
      on_tick(now);
      next_tick = now + kTickNs;
    }
    uint64_t wake = std::min(next_tick, stopping_ ? plan_.time.hard_stop : end_);
    if (!stopping_) {
      wake = std::min(wake, next_start());
      if (open_loop()) wake = std::min(wake, sched_.due(next_m_));
    }
    now = now_ns();
    int got = wait_events(ep_.get(), events.data(), kMaxEvents, wake > now ? wake - now : 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      out_.fatal = fmt::format("epoll_wait: {}", std::strerror(errno));
      break;
    }
    now = now_ns();
    for (int i = 0; i < got; ++i) on_event(events[size_t(i)].data.u32, events[size_t(i)].events, now);
    // Plain stores, so the interval lines count exactly; the histogram goes per tick.
    publish_counts();
  }
  finish();
}

}  // namespace eco::bench
