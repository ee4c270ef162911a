#include "bench/runner.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "bench/connector.h"
#include "bench/hdr_log.h"
#include "bench/payload.h"
#include "bench/proc_stats.h"
#include "bench/progress.h"
#include "bench/result.h"
#include "bench/worker.h"
#include "net/address.h"
#include "util/clock.h"
#include "util/exit_codes.h"

namespace eco::bench {
namespace {

std::atomic<bool> g_interrupted{false};
void on_sigint(int) { g_interrupted.store(true, std::memory_order_relaxed); }

int fail(int code, const std::string& msg) {
  fmt::print(stderr, "eco: {}\n", msg);
  return code;
}

struct ServerWindow {
  ProcSample proc_start, proc_end;
  MachineSample machine_start, machine_end;
  bool ok = false;
};

std::optional<std::string> validate(const BenchOptions& o, bool udp) {
  if (o.size < 1) return "--size must be at least 1 byte";
  if (o.conns < 1) return "--conns must be at least 1";
  if (o.duration_s <= 0) return "--duration must be more than 0";
  if (udp) {
    if (o.mode != Mode::rr) return fmt::format("--mode {} is TCP only (UDP has no connections or stream)", mode_name(o.mode));
    if (o.size < kHeaderBytes) return fmt::format("UDP --size must be at least {} bytes (each datagram carries "
                                                        "its connection and sequence number)", kHeaderBytes);
    if (o.size > 65507) return "UDP --size must be at most 65507 bytes (one datagram)";
  }
  if (o.mode == Mode::crr && o.rate > 0) return "--rate is not supported with --mode crr";
  if (o.mode == Mode::stream && o.rate > 0) return "--rate is not supported with --mode stream (it sends as fast as it can)";
  if (o.rate < 0 || o.connect_rate < 0) return "rates must be positive";
  return std::nullopt;
}

}  // namespace

const char* mode_name(Mode m) {
  switch (m) {
    case Mode::rr: return "rr";
    case Mode::crr: return "crr";
    case Mode::stream: return "stream";
  }
  return "?";
}

int run_bench(const BenchOptions& opts) {
  BenchOptions o = opts;
  auto hp = net::parse_host_port(o.target);
  if (!hp) return fail(kExitUsage, hp.error().message);
  bool udp = o.udp || (hp->has_scheme && hp->proto == net::Proto::udp);
  if (auto bad = validate(o, udp)) return fail(kExitUsage, *bad);
  auto addrs = net::resolve(*hp, udp ? net::Proto::udp : net::Proto::tcp, false);
  if (!addrs) return fail(kExitUsage, addrs.error().message);
  const net::Address target = addrs->front();
  o.threads = std::clamp<uint32_t>(o.threads, 1, o.conns);
  if (auto st = raise_fd_limit(uint64_t(o.conns) + 64 + 4 * o.threads); !st) return fail(kExitUsage, st.error().message);

  ServerWindow srv;
  if (o.server_pid > 0) {
    auto p = read_process(o.server_pid);
    if (!p) return fail(kExitUsage, p.error().message);
  }

  std::optional<HdrLogWriter> hist_log;
  if (!o.hist_file.empty()) {
    auto w = HdrLogWriter::create(o.hist_file, wall_clock_ms());
    if (!w) return fail(kExitUsage, w.error().message);
    hist_log.emplace(std::move(*w));
  }

  struct sigaction sa{}, old_sa{};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &old_sa);
  g_interrupted.store(false);

  Timeline tl;
  tl.start = now_ns();
  tl.measure_from = tl.start + uint64_t(o.warmup_s * 1e9);
  tl.end = tl.measure_from + uint64_t(o.duration_s * 1e9);
  tl.hard_stop = tl.end + uint64_t(o.grace_s * 1e9);

  const uint32_t nt = o.threads;
  std::vector<WorkerPlan> plans(nt);
  std::vector<std::unique_ptr<WorkerLive>> lives;
  std::vector<WorkerResult> results(nt);
  uint32_t first = 0;
  for (uint32_t t = 0; t < nt; ++t) {
    WorkerPlan& p = plans[t];
    p.opts = &o;
    p.target = target;
    p.transport = udp ? &kUdpTransport : &kTcpTransport;
    p.sources = SourcePlan(target, {}, o.conns_per_source);
    p.index = t;
    p.first_conn = first;
    p.conns = o.conns / nt + (t < o.conns % nt ? 1 : 0);
    first += p.conns;
    // Every connection gets the same share of the rate, wherever its thread is.
    p.rate = o.rate * double(p.conns) / double(o.conns);
    p.connect_rate = o.connect_rate / double(nt);
    p.time = tl;
    p.interrupted = &g_interrupted;
    lives.push_back(std::make_unique<WorkerLive>());
  }
  std::vector<std::thread> threads;
  for (uint32_t t = 0; t < nt; ++t)
    threads.emplace_back([&, t] {
      if (udp) run_udp_worker(plans[t], *lives[t], results[t]);
      else run_tcp_worker(plans[t], *lives[t], results[t]);
    });

  // The main thread watches: progress once a second, /proc samples at the window edges.
  const bool show = o.progress && progress_wanted(o.quiet);
  const double total_s = o.warmup_s + o.duration_s;
  uint64_t last_rt = 0, last_bytes = 0, last_t = tl.start;
  bool sampled_start = false, sampled_end = false;
  uint64_t stopped_at = tl.end;
  Histogram interval;
  for (;;) {
    bool all_done = std::all_of(lives.begin(), lives.end(), [](auto& l) { return l->done.load(std::memory_order_acquire); });
    uint64_t now = now_ns();
    if (g_interrupted.load() && stopped_at == tl.end) stopped_at = std::clamp(now, tl.measure_from, tl.end);
    if (o.server_pid > 0 && !sampled_start && now >= tl.measure_from) {
      auto p = read_process(o.server_pid);
      auto m = read_machine();
      if (p && m) {
        srv.proc_start = *p;
        srv.machine_start = *m;
        sampled_start = true;
      }
    }
    if (o.server_pid > 0 && sampled_start && !sampled_end && (now >= tl.end || g_interrupted.load())) {
      auto p = read_process(o.server_pid);
      auto m = read_machine();
      if (p && m) {
        srv.proc_end = *p;
        srv.machine_end = *m;
        srv.ok = true;
      }
      sampled_end = true;
    }
    uint64_t rt = 0, bytes = 0, errors = 0;
    interval.reset();
    for (auto& l : lives) {
      rt += l->round_trips.load(std::memory_order_relaxed);
      bytes += l->bytes.load(std::memory_order_relaxed);
      for (auto& e : l->errors) errors += e.load(std::memory_order_relaxed);
      std::lock_guard lock(l->mu);
      interval.merge(l->interval);
      l->interval.reset();
    }
    if (hist_log && now > last_t) {
      if (auto st = hist_log->append(double(last_t - tl.start) / 1e9, double(now - last_t) / 1e9, interval); !st) {
        fmt::print(stderr, "eco: {}\n", st.error().message);
        hist_log.reset();
      }
    }
    if (show && now >= last_t + 500'000'000 && !all_done) {  // not at t=0: nothing to say yet
      double dt = double(now - last_t) / 1e9;
      ProgressSample s;
      s.elapsed_s = std::min(double(now - tl.start) / 1e9, total_s);
      s.total_s = total_s;
      s.rt_per_s = double(rt - last_rt) / dt;
      s.mb_per_s = double(bytes - last_bytes) / dt / 1e6;
      s.p99_ns = interval.count() ? interval.value_at_percentile(99) : 0;
      s.errors = errors;
      s.warming_up = now < tl.measure_from;
      print_progress(s);
    }
    last_rt = rt;
    last_bytes = bytes;
    last_t = now;
    if (all_done) break;
    // Wake at the next whole second of the run, or sooner for the window edges.
    uint64_t next = tl.start + ((now - tl.start) / 1'000'000'000 + 1) * 1'000'000'000;
    if (o.server_pid > 0 && !sampled_start) next = std::min(next, tl.measure_from);
    if (o.server_pid > 0 && !sampled_end) next = std::min(next, tl.end);
    for (uint64_t t = now_ns(); t < next; t = now_ns()) {
      if (std::all_of(lives.begin(), lives.end(), [](auto& l) { return l->done.load(std::memory_order_acquire); })) break;
      usleep(useconds_t(std::min<uint64_t>(next - t, 20'000'000) / 1000));
    }
  }
  for (auto& th : threads) th.join();
  if (show) clear_progress();
  sigaction(SIGINT, &old_sa, nullptr);

  WorkerResult total;
  std::string first_error, fatal;
  for (auto& r : results) {
    total.hist.merge(r.hist);
    total.round_trips += r.round_trips;
    total.bytes += r.bytes;
    total.scheduled += r.scheduled;
    total.connected += r.connected;
    total.errors.add(r.errors);
    if (first_error.empty()) first_error = r.first_error;
    if (fatal.empty()) fatal = r.fatal;
  }
  if (!fatal.empty()) return fail(kExitMismatch, fatal);
  if (hist_log) {
    if (auto st = hist_log->close(); !st) return fail(kExitMismatch, st.error().message);
  }

  BenchResult res;
  res.target = udp ? "udp://" + target.to_string() : target.to_string();
  res.proto = udp ? "udp" : "tcp";
  res.mode = mode_name(o.mode);
  res.conns = o.conns;
  res.depth = o.depth;
  res.size = o.size;
  res.threads = o.threads;
  res.duration_s = o.duration_s;
  res.warmup_s = o.warmup_s;
  if (o.rate > 0) res.rate = o.rate;
  res.hosts = 1;
  res.round_trips = total.round_trips;
  res.bytes = total.bytes;
  res.elapsed_s = std::max(1e-9, double(stopped_at > tl.measure_from ? stopped_at - tl.measure_from : 0) / 1e9);
  res.rt_per_s = double(total.round_trips) / res.elapsed_s;
  res.mb_per_s = double(total.bytes) / res.elapsed_s / 1e6;
  res.errors = total.errors;
  // The generator is behind when it completed clearly fewer round trips than were
  // due (5% slack for the ramp and the window edges).
  if (o.rate > 0 && res.rt_per_s < 0.95 * o.rate) res.rate_shortfall = RateShortfall{o.rate, res.rt_per_s};
  double machine_us_per_rt = -1;
  if (srv.ok && total.round_trips > 0) {
    ServerStats s;
    s.pid = o.server_pid;
    uint64_t user = srv.proc_end.user_us - srv.proc_start.user_us;
    uint64_t sys = srv.proc_end.system_us - srv.proc_start.system_us;
    s.cpu_us_per_rt = double(user + sys) / double(total.round_trips);
    s.rss_bytes = srv.proc_end.rss_bytes;
    s.user_share = user + sys > 0 ? double(user) / double(user + sys) : 0;
    res.server = s;
    machine_us_per_rt = double(srv.machine_end.busy_us - srv.machine_start.busy_us) / double(total.round_trips);
  }
  res.histogram = std::move(total.hist);
  finalize(res);

  if (o.json) {
    fmt::print("{}", to_json(res));
  } else {
    fmt::print("{}", format_summary(res));
    if (machine_us_per_rt >= 0)
      fmt::print("machine-wide CPU: {:.2f} µs per round trip (all processes, client included)\n", machine_us_per_rt);
  }
  std::fflush(stdout);
  if (res.rate_shortfall && o.json)  // the summary already says it; JSON readers get it on stderr too
    fmt::print(stderr, "eco: generator could not keep up: asked {:.0f} rt/s, achieved {:.0f} rt/s\n", o.rate,
               res.rt_per_s);

  if (total.connected == 0 && total.errors.total() > 0)
    return fail(kExitConnection, first_error.empty() ? "nothing could connect" : first_error);
  if (total.errors.total() > 0) {
    fmt::print(stderr, "eco: {} errors (first: {})\n", total.errors.total(), first_error);
    return kExitMismatch;
  }
  return kExitOk;
}

}  // namespace eco::bench
