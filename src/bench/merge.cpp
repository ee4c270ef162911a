#include "bench/merge.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "util/exit_codes.h"

namespace eco::bench {

namespace {

Status check_compatible(const BenchResult& first, const BenchResult& r, size_t index) {
  auto refuse = [&](const char* what, const std::string& a, const std::string& b) {
    return Error{fmt::format("cannot merge run {} with run 1: {} differs (run 1: {}, run {}: {}); merged runs must "
                             "measure the same thing",
                             index + 1, what, a, index + 1, b)};
  };
  if (r.proto != first.proto) return refuse("proto", first.proto, r.proto);
  if (r.mode != first.mode) return refuse("mode", first.mode, r.mode);
  if (r.size != first.size) return refuse("message size", std::to_string(first.size), std::to_string(r.size));
  // Open-loop latency counts from the intended send time, closed-loop from the actual
  // one: adding their histograms would mix two different quantities.
  if (r.rate.has_value() != first.rate.has_value()) {
    return refuse("loop", first.rate ? "open (--rate)" : "closed", r.rate ? "open (--rate)" : "closed");
  }
  if (r.histogram.significant_digits() != first.histogram.significant_digits()) {
    return refuse("histogram precision", std::to_string(first.histogram.significant_digits()),
                  std::to_string(r.histogram.significant_digits()));
  }
  return {};
}

}  // namespace

Result<BenchResult> merge(const std::vector<BenchResult>& runs) {
  if (runs.empty()) return Error{"nothing to merge"};
  for (size_t i = 1; i < runs.size(); ++i) {
    if (Status s = check_compatible(runs[0], runs[i], i); !s) return s.error();
  }
  BenchResult m = same_load(runs[0]);
  m.hosts = 0;
  m.conns = m.threads = 0;
  m.duration_s = m.warmup_s = 0;
  if (m.rate) *m.rate = 0;

  double shortfall_asked = 0, shortfall_achieved = 0;
  bool any_shortfall = false;
  // Server cost: each reporting run measured the same server's CPU over (about) the
  // same window, so the CPU time is averaged across them and divided by all runs'
  // round trips, which that CPU time served.
  double server_cpu_us = 0;
  size_t server_reports = 0;
  double user_share = 0;
  std::vector<std::string> targets;
  for (const BenchResult& r : runs) {
    if (std::find(targets.begin(), targets.end(), r.target) == targets.end()) targets.push_back(r.target);
    m.hosts += r.hosts;
    m.conns += r.conns;
    m.threads += r.threads;
    m.depth = std::max(m.depth, r.depth);
    add_counts(m, r);
    m.rt_per_s += r.rt_per_s;
    m.mb_per_s += r.mb_per_s;
    m.elapsed_s = std::max(m.elapsed_s, r.elapsed_s);
    m.duration_s = std::max(m.duration_s, r.duration_s);
    m.warmup_s = std::max(m.warmup_s, r.warmup_s);
    if (m.rate && r.rate) *m.rate += *r.rate;
    // A run without a shortfall achieved what it asked.
    if (r.rate) {
      shortfall_asked += r.rate_shortfall ? r.rate_shortfall->asked : *r.rate;
      shortfall_achieved += r.rate_shortfall ? r.rate_shortfall->achieved : *r.rate;
      any_shortfall = any_shortfall || r.rate_shortfall.has_value();
    }
    if (r.server) {
      if (!m.server) m.server = ServerStats{r.server->pid, 0, 0, 0};
      server_cpu_us += r.server->cpu_us_per_rt * double(r.round_trips);
      user_share += r.server->user_share;
      m.server->rss_bytes = std::max(m.server->rss_bytes, r.server->rss_bytes);
      ++server_reports;
    }
  }
  m.target = fmt::format("{}", fmt::join(targets, ","));
  if (any_shortfall) m.rate_shortfall = RateShortfall{shortfall_asked, shortfall_achieved};
  if (m.server) {
    double cpu = server_cpu_us / double(server_reports);
    m.server->cpu_us_per_rt = m.round_trips > 0 ? cpu / double(m.round_trips) : 0;
    m.server->user_share = user_share / double(server_reports);
  }
  // Rates stay the sums of each run's own rates (the runs ran side by side); only the
  // latency figures are recomputed, from the summed histograms.
  double rt_per_s = m.rt_per_s, mb_per_s = m.mb_per_s;
  finalize(m);
  m.rt_per_s = rt_per_s;
  m.mb_per_s = mb_per_s;
  return m;
}

int run_merge(const std::vector<std::string>& files, bool json) {
  if (files.empty()) {
    std::fprintf(stderr, "eco: bench merge needs at least one result file (from eco bench --json)\n");
    return kExitUsage;
  }
  std::vector<BenchResult> runs;
  runs.reserve(files.size());
  for (const std::string& path : files) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "eco: cannot read %s: %s\n", path.c_str(), std::strerror(errno));
      return kExitUsage;
    }
    std::ostringstream text;
    text << in.rdbuf();
    auto r = from_json(text.str());
    if (!r) {
      std::fprintf(stderr, "eco: %s: %s\n", path.c_str(), r.error().message.c_str());
      return kExitUsage;
    }
    runs.push_back(std::move(*r));
  }
  auto merged = merge(runs);
  if (!merged) {
    std::fprintf(stderr, "eco: %s\n", merged.error().message.c_str());
    return kExitUsage;
  }
  std::string out = json ? to_json(*merged) : format_summary(*merged);
  std::fwrite(out.data(), 1, out.size(), stdout);
  // Errors in any run make the merged report fail too, as they do a single run.
  return merged->errors.total() > 0 ? kExitMismatch : kExitOk;
}

}  // namespace eco::bench
