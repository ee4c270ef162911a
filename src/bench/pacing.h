#pragma once
// Open-loop pacing (as wrk2 does it): a thread's messages are due at fixed times,
// t0 + m / rate, dealt round-robin over its connections, so message `seq` of
// connection k is global number m = seq * conns + k. Latency is measured from that
// intended time, not from when the message actually left: a stalled server (or a
// late generator) shows up in the percentiles instead of silently delaying the load.
#include <sys/epoll.h>

#include <cstdint>

namespace eco::bench {

class Schedule {
 public:
  Schedule() = default;
  Schedule(uint64_t t0, double rate, uint32_t conns) : t0_(t0), interval_ns_(1e9 / rate), conns_(conns) {}

  uint64_t due(uint64_t m) const { return t0_ + uint64_t(double(m) * interval_ns_); }
  uint64_t intended(uint64_t seq, uint32_t k) const { return due(seq * conns_ + k); }
  // The first message number >= m that belongs to connection k, as its seq.
  uint64_t next_seq_for(uint64_t m, uint32_t k) const { return m <= k ? 0 : (m - k + conns_ - 1) / conns_; }
  uint32_t conns() const { return conns_; }

 private:
  uint64_t t0_ = 0;
  double interval_ns_ = 0;
  uint32_t conns_ = 1;
};

// epoll_wait with a nanosecond timeout (epoll_pwait2), so pacing is not rounded to
// whole milliseconds; falls back to epoll_wait on kernels before 5.11.
int wait_events(int epfd, epoll_event* events, int max, uint64_t timeout_ns);

// Asks the kernel for 1 µs timer slack on this thread (default 50 µs would add to
// every paced send).
void tighten_timer_slack();

}  // namespace eco::bench
