#include "bench/repeat.h"

#include <algorithm>
#include <functional>

#include <fmt/format.h>

#include "bench/options.h"
#include "bench/stats.h"

namespace eco::bench {

BenchResult combine_runs(const std::vector<BenchResult>& runs) {
  if (runs.empty()) return BenchResult();
  BenchResult all = same_load(runs.front());
  double server_cpu_us = 0;
  uint64_t server_rt = 0;
  for (const BenchResult& r : runs) {
    add_counts(all, r);
    all.elapsed_s += r.elapsed_s;
    if (r.server) {
      if (!all.server) all.server = ServerStats{r.server->pid, 0, 0, 0};
      server_cpu_us += r.server->cpu_us_per_rt * double(r.round_trips);
      server_rt += r.round_trips;
      all.server->rss_bytes = std::max(all.server->rss_bytes, r.server->rss_bytes);
      all.server->user_share = r.server->user_share;  // the last run's; shares barely move
    }
  }
  if (all.server && server_rt > 0) all.server->cpu_us_per_rt = server_cpu_us / double(server_rt);
  finalize(all);
  note_shortfall(all);
  all.runs = runs;
  return all;
}

Repetitions repetition_stats(const std::vector<BenchResult>& runs, const std::vector<double>& percentiles,
                             double confidence, double cooldown_s) {
  Repetitions rep;
  rep.count = runs.size();
  rep.cooldown_s = cooldown_s;
  rep.confidence = confidence;
  auto figure = [&](std::string name, const std::function<double(const BenchResult&)>& get) {
    std::vector<double> values;
    for (const BenchResult& r : runs) values.push_back(get(r));
    MedianInterval m = median_interval(values, confidence);
    rep.level = m.level;
    FigureStats f{std::move(name), m.median, m.low, m.high, too_wide(m)};
    rep.spread_too_wide = rep.spread_too_wide || f.wide;
    rep.figures.push_back(std::move(f));
  };
  figure("rt_per_s", [](const BenchResult& r) { return r.rt_per_s; });
  figure("mb_per_s", [](const BenchResult& r) { return r.mb_per_s; });
  for (double p : percentiles)
    figure(fmt::format("p{}_us", percentile_label(p)),
           [p](const BenchResult& r) { return double(r.histogram.value_at_percentile(p)) / 1000.0; });
  return rep;
}

}  // namespace eco::bench
