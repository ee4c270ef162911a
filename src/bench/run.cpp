#include "bench/run.h"

#include <unistd.h>

#include <algorithm>
#include <memory>
#include <thread>

#include "bench/proc_stats.h"
#include "bench/worker.h"
#include "util/clock.h"

namespace eco::bench {
namespace {

// --server-pid: the server's and the machine's CPU time at the window's edges.
class ServerWatch {
 public:
  explicit ServerWatch(int pid) : pid_(pid) {}
  bool wants(uint64_t now, const Timeline& tl, bool interrupted) const {
    if (pid_ <= 0 || done_) return false;
    return started_ ? (now >= tl.end || interrupted) : now >= tl.measure_from;
  }
  void sample() {
    auto p = read_process(pid_);
    auto m = read_machine();
    if (!started_) {
      if (p && m) {
        proc_start_ = *p;
        machine_start_ = *m;
        started_ = true;
      }
      return;
    }
    if (p && m) {
      proc_end_ = *p;
      machine_end_ = *m;
      ok_ = true;
    }
    done_ = true;
  }
  uint64_t next_edge(const Timeline& tl) const {
    if (pid_ <= 0 || done_) return UINT64_MAX;
    return started_ ? tl.end : tl.measure_from;
  }
  // The server's cost per round trip, and the whole machine's (client included).
  void report(BenchResult& res, double& machine_us_per_rt) const {
    if (!ok_ || res.round_trips == 0) return;
    ServerStats s;
    s.pid = pid_;
    uint64_t user = proc_end_.user_us - proc_start_.user_us;
    uint64_t sys = proc_end_.system_us - proc_start_.system_us;
    s.cpu_us_per_rt = double(user + sys) / double(res.round_trips);
    s.rss_bytes = proc_end_.rss_bytes;
    s.user_share = user + sys > 0 ? double(user) / double(user + sys) : 0;
    res.server = s;
    machine_us_per_rt = double(machine_end_.busy_us - machine_start_.busy_us) / double(res.round_trips);
  }

 private:
  int pid_;
  bool started_ = false, done_ = false, ok_ = false;
  ProcSample proc_start_, proc_end_;
  MachineSample machine_start_, machine_end_;
};

bool all_done(const std::vector<std::unique_ptr<WorkerLive>>& lives) {
  return std::all_of(lives.begin(), lives.end(), [](auto& l) { return l->done.load(std::memory_order_acquire); });
}

// What the watcher reads from the loops each interval.
struct LiveTotals {
  uint64_t round_trips = 0, bytes = 0;
  ErrorCounts errors;
};

LiveTotals take_live(const std::vector<std::unique_ptr<WorkerLive>>& lives, Histogram& interval) {
  LiveTotals t;
  interval.reset();
  for (auto& l : lives) {
    t.round_trips += l->round_trips.load(std::memory_order_relaxed);
    t.bytes += l->bytes.load(std::memory_order_relaxed);
    for (size_t i = 0; i < kErrorKinds; ++i) t.errors[ErrorKind(i)] += l->errors[i].load(std::memory_order_relaxed);
    std::lock_guard lock(l->mu);
    interval.merge(l->interval);
    l->interval.reset();
  }
  return t;
}

BenchResult describe(const BenchOptions& o, const RunSetup& setup, double rate) {
  BenchResult res;
  res.target = setup.udp ? "udp://" + setup.target.to_string()
               : setup.tls ? "tls://" + setup.target.to_string()
                           : setup.target.to_string();
  res.proto = setup.udp ? "udp" : setup.tls ? "tls" : "tcp";
  res.mode = mode_name(o.mode);
  res.conns = o.conns;
  res.depth = o.depth;
  res.size = o.size;
  res.threads = o.threads;
  res.duration_s = o.duration_s;
  res.warmup_s = o.warmup_s;
  if (rate > 0) res.rate = rate;
  res.rate_unit = rate_unit(o.mode);
  res.percentiles = o.percentiles;
  res.hosts = 1;
  return res;
}

}  // namespace

RunOutcome run_once(const RunSetup& setup, double rate, uint32_t number, const std::string& label) {
  const BenchOptions& o = *setup.opts;
  Timeline tl;
  tl.start = now_ns();
  tl.measure_from = tl.start + uint64_t(o.warmup_s * 1e9);
  tl.end = tl.measure_from + uint64_t(o.duration_s * 1e9);
  tl.hard_stop = tl.end + uint64_t(o.grace_s * 1e9);

  const uint32_t nt = o.threads;
  const double events = schedule_rate(o, rate);
  std::vector<WorkerPlan> plans(nt);
  std::vector<std::unique_ptr<WorkerLive>> lives;
  std::vector<WorkerResult> results(nt);
  uint32_t first = 0;
  for (uint32_t t = 0; t < nt; ++t) {
    WorkerPlan& p = plans[t];
    p.opts = &o;
    p.target = setup.target;
    p.transport = setup.udp ? &kUdpTransport : setup.tls ? &kTlsTransport : &kTcpTransport;
    p.tls = setup.tls;
    p.sources = SourcePlan(setup.target, setup.sources, o.conns_per_source);
    p.index = t;
    p.first_conn = first;
    p.conns = o.conns / nt + (t < o.conns % nt ? 1 : 0);
    first += p.conns;
    // Every connection gets the same share of the rate, wherever its thread is.
    p.rate = events * double(p.conns) / double(o.conns);
    p.connect_rate = o.connect_rate / double(nt);
    p.time = tl;
    p.interrupted = setup.interrupted;
    lives.push_back(std::make_unique<WorkerLive>());
  }
  std::vector<std::thread> threads;
  for (uint32_t t = 0; t < nt; ++t)
    threads.emplace_back([&, t] {
      if (setup.udp) run_udp_worker(plans[t], *lives[t], results[t]);
      else run_tcp_worker(plans[t], *lives[t], results[t]);
    });

  // The watcher: an interval line at each whole second of the run, /proc samples at
  // the window's edges.
  ServerWatch server(o.server_pid);
  const double total_s = o.warmup_s + o.duration_s;
  LiveTotals last;
  uint64_t last_t = tl.start;
  uint64_t stopped_at = tl.end;
  bool interrupted = false;
  Histogram interval;
  // Wake at the next whole second of the run, or sooner for the window's edges (so an
  // interval never straddles the start of the measured window) or the end of a loop.
  auto sleep_until_next = [&](uint64_t now) {
    uint64_t next = tl.start + ((now - tl.start) / 1'000'000'000 + 1) * 1'000'000'000;
    if (now < tl.measure_from) next = std::min(next, tl.measure_from);
    next = std::min(next, server.next_edge(tl));
    for (uint64_t t = now_ns(); t < next && !all_done(lives); t = now_ns())
      usleep(useconds_t(std::min<uint64_t>(next - t, 20'000'000) / 1000));
  };
  for (;;) {
    bool done = all_done(lives);
    uint64_t now = now_ns();
    if (!interrupted && setup.interrupted->load()) {
      interrupted = true;
      stopped_at = std::clamp(now, tl.measure_from, tl.end);
    }
    if (server.wants(now, tl, interrupted)) server.sample();
    // An interval line for at least 100 ms of run (what the loops publish at), one
    // ending where the measured window starts, and the last however short: nothing
    // counted goes unwritten.
    bool window_starts = last_t < tl.measure_from && now >= tl.measure_from;
    if (!done && !window_starts && now < last_t + 100'000'000) {
      sleep_until_next(now);
      continue;
    }
    LiveTotals cur = take_live(lives, interval);
    if (setup.outputs) {
      IntervalSample s;
      s.run = number;
      s.run_label = label;
      s.start_s = double(last_t - setup.first_start) / 1e9;
      s.length_s = double(now - last_t) / 1e9;
      s.run_elapsed_s = std::min(double(now - tl.start) / 1e9, total_s);
      s.run_total_s = total_s;
      s.warming_up = last_t < tl.measure_from;  // intervals end at the window's start
      if (rate > 0) s.rate = rate;
      s.round_trips = cur.round_trips - last.round_trips;
      s.bytes = cur.bytes - last.bytes;
      for (size_t i = 0; i < kErrorKinds; ++i)
        s.errors[ErrorKind(i)] = cur.errors[ErrorKind(i)] - last.errors[ErrorKind(i)];
      s.latency = &interval;
      s.last = done;
      setup.outputs->add(s);
    }
    last = cur;
    last_t = now;
    if (done) break;
    sleep_until_next(now);
  }
  for (auto& th : threads) th.join();
  if (setup.outputs) setup.outputs->end_run();

  RunOutcome out;
  out.interrupted = interrupted;
  BenchResult& res = out.result = describe(o, setup, rate);
  if (!setup.udp) {
    res.connect.emplace();
    res.first_echo.emplace();
  }
  if (setup.tls) {
    res.handshake.emplace();
    res.tls.emplace();
  }
  for (auto& r : results) {
    res.histogram.merge(r.hist);
    res.round_trips += r.round_trips;
    res.bytes += r.bytes;
    res.errors.add(r.errors);
    res.slot_waits += r.slot_waits;
    out.connected += r.connected;
    if (res.connect) res.connect->histogram.merge(r.connect);
    if (res.first_echo) res.first_echo->histogram.merge(r.first_echo);
    if (res.tls) {
      res.handshake->histogram.merge(r.handshake);
      res.tls->handshakes += r.handshakes;
      res.tls->resumed += r.resumed;
      if (*r.tls_version) {
        res.tls->version = r.tls_version;
        res.tls->cipher = r.tls_cipher;
      }
    }
    if (out.first_error.empty()) out.first_error = r.first_error;
    if (out.fatal.empty()) out.fatal = r.fatal;
  }
  res.elapsed_s = std::max(1e-9, double(stopped_at > tl.measure_from ? stopped_at - tl.measure_from : 0) / 1e9);
  finalize(res);
  note_shortfall(res);
  server.report(res, out.machine_us_per_rt);
  return out;
}

}  // namespace eco::bench
