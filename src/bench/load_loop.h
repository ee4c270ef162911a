#pragma once
// The skeleton every bench load loop runs (TCP and UDP alike): one epoll set on one
// thread, the run's timeline (warm-up, measured window, grace), the open-loop
// schedule, a 100 ms tick that publishes live counters, and the recording of each
// latency sample and error. A loop supplies what differs as the hooks below, the way
// redis' ae backends fill in a handful of functions.
#include <sys/epoll.h>

#include <cstdint>
#include <string>

#include "bench/pacing.h"
#include "bench/worker.h"
#include "util/fd.h"

namespace eco::bench {

class LoadLoop {
 public:
  LoadLoop(const WorkerPlan& plan, WorkerLive& live, WorkerResult& out);
  virtual ~LoadLoop() = default;
  LoadLoop(const LoadLoop&) = delete;
  LoadLoop& operator=(const LoadLoop&) = delete;

  // Runs the load until the timeline ends (or SIGINT), then leaves its figures in
  // `out` and marks `live.done`, also when setup fails.
  void run();

 protected:
  // Makes the loop's sockets and buffers; false when the run is void (out_.fatal set).
  virtual bool setup(uint64_t now) = 0;
  // Once per turn before the schedule, while not stopping (e.g. a connect queue), and
  // the earliest time it next wants to run.
  virtual void start_due(uint64_t) {}
  virtual uint64_t next_start() const { return UINT64_MAX; }
  // Open loop: event m of this thread's schedule is due now.
  virtual void on_due(uint64_t m, uint64_t now) = 0;
  virtual void on_event(uint32_t k, uint32_t events, uint64_t now) = 0;
  // Every tick (100 ms), after the live counters are published: timeouts.
  virtual void on_tick(uint64_t now) = 0;
  // No new message is started from now on.
  virtual void on_stop(uint64_t now) = 0;
  // Nothing is in flight any more (or what is will not come back now).
  virtual bool drained(uint64_t now) const = 0;
  // After the loop: whatever is still missing timed out; close every socket.
  virtual void finish() = 0;

  bool open_loop() const { return plan_.rate > 0; }
  bool in_window(uint64_t t) const { return t >= plan_.time.measure_from && t <= end_; }
  // One verified echo: its latency from `from` (the send, or the intended send).
  void record(uint64_t from, uint64_t now) {
    if (!in_window(now)) return;
    uint64_t lat = now > from ? now - from : 1;
    out_.hist.record(lat);
    local_interval_.record(lat);
    ++out_.round_trips;
  }
  void count(ErrorKind kind, const std::string& why);
  // Adds fd to the epoll set as connection k; false (errno set) on failure.
  bool watch(int fd, uint32_t k, uint32_t events);
  // Switches EPOLLOUT on or off for connection k (EPOLLIN stays on).
  void want_out(int fd, uint32_t k, bool on, bool& armed);

  const WorkerPlan& plan_;
  const BenchOptions& o_;
  WorkerLive& live_;
  WorkerResult& out_;
  const uint32_t size_;
  Schedule sched_;
  uint64_t next_m_ = 0;  // the next schedule event not yet due
  uint64_t end_ = 0;     // no new message after this (moved up by SIGINT)
  bool stopping_ = false;

 private:
  void loop();
  void run_schedule(uint64_t now);
  void publish_counts();
  void publish();

  Fd ep_;
  Histogram local_interval_;
};

}  // namespace eco::bench
