#include "bench/runner.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <optional>

#include <fmt/format.h>

#include "bench/connector.h"
#include "bench/hdr_log.h"
#include "bench/proc_stats.h"
#include "bench/repeat.h"
#include "bench/run.h"
#include "bench/search.h"
#include "bench/tls_transport.h"
#include "client/stream.h"
#include "net/socket.h"
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

// SIGINT ends the current run early (its report covers the part measured) and
// any repetition or search step still to come.
class SigintGuard {
 public:
  SigintGuard() {
    struct sigaction sa{};
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_);
    g_interrupted.store(false);
  }
  ~SigintGuard() { sigaction(SIGINT, &old_, nullptr); }
  SigintGuard(const SigintGuard&) = delete;
  SigintGuard& operator=(const SigintGuard&) = delete;

 private:
  struct sigaction old_{};
};

// --cooldown between runs; SIGINT cuts it short.
void cool_down(const BenchOptions& o) {
  if (!o.cooldown_s) return;
  uint64_t until = now_ns() + uint64_t(*o.cooldown_s * 1e9);
  for (uint64_t t = now_ns(); t < until && !g_interrupted.load(); t = now_ns())
    usleep(useconds_t(std::min<uint64_t>(until - t, 20'000'000) / 1000));
}

Result<std::vector<net::Address>> source_addresses(const BenchOptions& o, const net::Address& target, bool udp) {
  std::vector<net::Address> out;
  for (const std::string& ip : o.source_ips) {
    auto a = net::source_address(ip, udp ? net::Proto::udp : net::Proto::tcp, target.family());
    if (!a) return Error{fmt::format("--source-ip: {}", a.error().message)};
    out.push_back(*a);
  }
  return out;
}

// Prints the result (JSON or summary) and picks the exit code: 0 clean, 1 any echo
// error, 3 when nothing could connect.
int report(const BenchOptions& o, const BenchResult& res, uint64_t connected, const std::string& first_error,
           double machine_us_per_rt) {
  if (o.json) {
    fmt::print("{}", to_json(res));
  } else {
    fmt::print("{}", format_summary(res));
    if (machine_us_per_rt >= 0)
      fmt::print("machine-wide CPU: {:.2f} µs per round trip (all processes, client included)\n", machine_us_per_rt);
  }
  std::fflush(stdout);
  if (res.rate_shortfall && o.json)  // the summary already says it; JSON readers get it on stderr too
    fmt::print(stderr, "eco: generator could not keep up: asked {}, achieved {}\n",
               format_rate(res.rate_shortfall->asked, res.rate_unit),
               format_rate(res.rate_shortfall->achieved, res.rate_unit));
  if (connected == 0 && res.errors.total() > 0)
    return fail(kExitConnection, first_error.empty() ? "nothing could connect" : first_error);
  if (res.errors.total() > 0) {
    fmt::print(stderr, "eco: {} errors (first: {})\n", res.errors.total(), first_error);
    return kExitMismatch;
  }
  return kExitOk;
}

int run_repetitions(const RunSetup& setup) {
  const BenchOptions& o = *setup.opts;
  std::vector<BenchResult> runs;
  uint64_t connected = 0;
  std::string first_error;
  for (uint32_t i = 1; i <= o.reps && !g_interrupted.load(); ++i) {
    if (i > 1) cool_down(o);
    RunOutcome out = run_once(setup, o.rate, i, fmt::format("rep {}/{}", i, o.reps));
    if (!out.fatal.empty()) return fail(kExitMismatch, out.fatal);
    connected += out.connected;
    if (first_error.empty()) first_error = out.first_error;
    runs.push_back(std::move(out.result));
  }
  BenchResult all = combine_runs(runs);
  all.repetitions = repetition_stats(runs, o.percentiles, o.confidence, o.cooldown_s.value_or(0));
  return report(o, all, connected, first_error, -1);
}

// One step of the search: why it failed, or the objective's figures when it held.
bool judge_step(const BenchResult& r, const Slo& slo, std::string& reason) {
  if (r.errors.total() > 0) {
    reason = fmt::format("{} errors ({} timeout, {} reset, {} refused)", r.errors.total(), r.errors.timeout,
                         r.errors.reset, r.errors.refused);
    return false;
  }
  if (r.rate_shortfall) {
    reason = fmt::format("achieved only {} of {}", format_rate(r.rate_shortfall->achieved, r.rate_unit),
                         format_rate(r.rate_shortfall->asked, r.rate_unit));
    return false;
  }
  return slo_holds(slo, r.histogram, reason);
}

int run_search(const RunSetup& setup, const Slo& slo) {
  const BenchOptions& o = *setup.opts;
  RateSearch search;
  search.slo = slo.text;
  std::vector<BenchResult> runs;
  // The probe: the same load closed loop, whose throughput is where the search starts.
  RunOutcome probe = run_once(setup, 0, 1, "probe");
  if (!probe.fatal.empty()) return fail(kExitMismatch, probe.fatal);
  if (probe.connected == 0)
    return fail(kExitConnection, probe.first_error.empty() ? "nothing could connect" : probe.first_error);
  double start = achieved_rate(probe.result);
  search.steps.push_back({std::nullopt, start, true, fmt::format("closed loop: the search starts at {}",
                                                                 format_rate(start, probe.result.rate_unit))});
  runs.push_back(probe.result);
  uint64_t mismatches = probe.result.errors.mismatch;
  std::string first_mismatch = probe.result.errors.mismatch ? probe.first_error : "";
  std::optional<size_t> best;  // index in runs of the step at the rate found
  auto step = [&](double rate, bool& stop) {
    cool_down(o);
    if (g_interrupted.load()) {
      stop = true;
      return false;
    }
    uint32_t n = uint32_t(runs.size());
    RunOutcome out = run_once(setup, rate, n + 1, fmt::format("step {} at {}", n, format_rate(rate, rate_unit(o.mode))));
    if (!out.fatal.empty() || out.interrupted) stop = true;
    SearchStep st{rate, achieved_rate(out.result), false, ""};
    st.pass = out.fatal.empty() && !out.interrupted && judge_step(out.result, slo, st.reason);
    if (!out.fatal.empty()) st.reason = out.fatal;
    if (out.result.errors.mismatch > 0 && first_mismatch.empty()) first_mismatch = out.first_error;
    mismatches += out.result.errors.mismatch;
    if (st.pass && (!best || rate > *runs[*best].rate)) best = runs.size();
    search.steps.push_back(std::move(st));
    runs.push_back(std::move(out.result));
    return search.steps.back().pass;
  };
  SearchLimits limits;
  limits.floor = o.mode == Mode::stream ? double(o.size) : 1.0;
  search.found = search_rate(start, step, limits);
  BenchResult top = best ? runs[*best] : runs.front();
  top.find_rate = std::move(search);
  top.runs = std::move(runs);
  if (o.json) fmt::print("{}", to_json(top));
  else fmt::print("{}", format_summary(top));
  std::fflush(stdout);
  if (mismatches > 0) return fail(kExitMismatch, fmt::format("{} echoes differed (first: {})", mismatches, first_mismatch));
  if (top.find_rate->found) return kExitOk;
  std::optional<double> lowest;
  for (const SearchStep& st : top.find_rate->steps)
    if (st.rate && (!lowest || *st.rate < *lowest)) lowest = st.rate;
  if (!lowest) return fail(kExitMismatch, "the search was stopped before its first open-loop step");
  return fail(kExitMismatch, fmt::format("no rate tried holds {} (the lowest tried: {})", slo.text,
                                         format_rate(*lowest, top.rate_unit)));
}

}  // namespace

int run_bench(const BenchOptions& opts) {
  BenchOptions o = opts;
  auto hp = net::parse_host_port(o.target, /*allow_tls=*/true);
  if (!hp) return fail(kExitUsage, hp.error().message);
  bool udp = o.udp || (hp->has_scheme && hp->proto == net::Proto::udp);
  if (auto bad = validate(o, udp)) return fail(kExitUsage, *bad);
  auto tls_ctx = client::tls_for_target(*hp, udp, o.tls, o.tls_flags);
  if (!tls_ctx) return fail(kExitUsage, tls_ctx.error().message);
  TlsTarget tls{tls_ctx->get(), hp->host};
  std::optional<Slo> slo;
  if (!o.find_rate.empty()) {
    auto s = parse_slo(o.find_rate);
    if (!s) return fail(kExitUsage, s.error().message);
    slo = std::move(*s);
  }
  auto addrs = net::resolve(*hp, udp ? net::Proto::udp : net::Proto::tcp, false);
  if (!addrs) return fail(kExitUsage, addrs.error().message);
  RunSetup setup;
  setup.opts = &o;
  setup.target = addrs->front();
  setup.udp = udp;
  if (tls.ctx) {
    setup.tls = &tls;
    if (auto st = probe_tls(setup.target, tls, o.timeout_s); !st) return fail(kExitConnection, st.error().message);
  }
  auto sources = source_addresses(o, setup.target, udp);
  if (!sources) return fail(kExitUsage, sources.error().message);
  setup.sources = std::move(*sources);
  o.threads = std::clamp<uint32_t>(o.threads, 1, o.conns);
  if (auto st = raise_fd_limit(uint64_t(o.conns) + 64 + 4 * o.threads); !st) return fail(kExitUsage, st.error().message);
  if (o.server_pid > 0) {
    auto p = read_process(o.server_pid);
    if (!p) return fail(kExitUsage, p.error().message);
  }
  auto outputs = IntervalOutputs::open(o, wall_clock_ms());
  if (!outputs) return fail(kExitUsage, outputs.error().message);
  setup.outputs = &*outputs;
  setup.interrupted = &g_interrupted;
  SigintGuard sigint;
  setup.first_start = now_ns();

  int code;
  if (slo) {
    code = run_search(setup, *slo);
  } else if (o.reps > 1) {
    code = run_repetitions(setup);
  } else {
    RunOutcome out = run_once(setup, o.rate, 1, "");
    if (!out.fatal.empty()) return fail(kExitMismatch, out.fatal);
    code = report(o, out.result, out.connected, out.first_error, out.machine_us_per_rt);
  }
  if (auto st = outputs->close(); !st) return fail(kExitMismatch, st.error().message);
  return code;
}

}  // namespace eco::bench
