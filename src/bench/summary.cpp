// The human summary of a result (what `eco bench` prints without --json).
#include <functional>

#include <fmt/format.h>

#include "bench/options.h"
#include "bench/result.h"

namespace eco::bench {
namespace {

std::string percentile_list(const Histogram& h, const std::vector<double>& percentiles) {
  std::string out;
  for (double p : percentiles)
    out += fmt::format("p{} {}  ", percentile_label(p), format_latency_us(double(h.value_at_percentile(p)) / 1000.0));
  return out + "max " + format_latency_us(double(h.max()) / 1000.0);
}

std::string error_list(const ErrorCounts& e) {
  if (e.total() == 0) return "none";
  std::string list;
  for (size_t i = 0; i < kErrorKinds; ++i) {
    uint64_t n = e[ErrorKind(i)];
    if (n == 0) continue;
    if (!list.empty()) list += ", ";
    std::string name = error_kind_name(ErrorKind(i));
    if (name == "short_read") name = "short read";
    list += fmt::format("{} {}", n, name);
  }
  return list;
}

// "rt/s", "p99": how a --reps figure is named for people.
std::string figure_label(const std::string& name) {
  if (name == "rt_per_s") return "rt/s";
  if (name == "mb_per_s") return "MB/s";
  if (name.size() > 3 && name.compare(name.size() - 3, 3, "_us") == 0) return name.substr(0, name.size() - 3);
  return name;
}

std::string figure_value(const std::string& name, double v) {
  if (name == "rt_per_s") return fmt::format("{:.0f}", v);
  if (name == "mb_per_s") return fmt::format("{:.2f}", v);
  return format_latency_us(v);
}

void repetitions_lines(const BenchResult& r, const std::function<void(std::string)>& line) {
  const Repetitions& rep = *r.repetitions;
  line(fmt::format("  repetitions {} runs{}; median and {:.3g}% confidence interval{}", rep.count,
                   rep.cooldown_s > 0 ? fmt::format(" {:g} s apart", rep.cooldown_s) : "", rep.level,
                   rep.level + 1e-9 < rep.confidence
                       ? fmt::format(" ({} runs cannot give {:g}%; more runs narrow it)", rep.count, rep.confidence)
                       : ""));
  for (const FigureStats& f : rep.figures) {
    double half = f.median != 0 ? (f.high - f.low) / 2 / f.median * 100 : 0;
    line(fmt::format("    {:<8} {:>10}  [{} .. {}]  ±{:.1f}%{}", figure_label(f.name), figure_value(f.name, f.median),
                     figure_value(f.name, f.low), figure_value(f.name, f.high), half, f.wide ? "  too wide" : ""));
  }
  for (size_t i = 0; i < r.runs.size(); ++i) {
    const BenchResult& run = r.runs[i];
    line(fmt::format("    run {:<3} {:.0f} rt/s  {:.2f} MB/s  p50 {}  p99 {}  errors {}", i + 1, run.rt_per_s,
                     run.mb_per_s, format_latency_us(run.latency_us.p50), format_latency_us(run.latency_us.p99),
                     error_list(run.errors)));
  }
  if (rep.spread_too_wide)
    line("  warning     the runs disagree too much to trust (an interval wider than ±10% of its median): "
         "quieten the machine, run longer or run more repetitions");
}

void search_lines(const BenchResult& r, const std::function<void(std::string)>& line) {
  const RateSearch& s = *r.find_rate;
  if (s.found)
    line(fmt::format("  find-rate   {} holds up to {} (the highest rate tried that kept it)", s.slo,
                     format_rate(*s.found, r.rate_unit)));
  else
    line(fmt::format("  find-rate   no rate tried holds {}", s.slo));
  for (size_t i = 0; i < s.steps.size(); ++i) {
    const SearchStep& st = s.steps[i];
    std::string asked = st.rate ? format_rate(*st.rate, r.rate_unit) : std::string("closed-loop probe");
    line(fmt::format("    step {:<2} {:>16}  achieved {:>14}  {}  {}", i + 1, asked, format_rate(st.achieved, r.rate_unit),
                     st.rate ? (st.pass ? "pass" : "FAIL") : "    ", st.reason));
  }
}

}  // namespace

std::string format_summary(const BenchResult& r) {
  std::string out;
  auto line = [&](std::string s) {
    out += s;
    out += '\n';
  };
  std::string loop = r.rate ? "open loop at " + format_rate(*r.rate, r.rate_unit) : "closed loop";
  line(fmt::format("{} {} {}: {} conns x depth {}, {} B messages, {} thread{}, {:.1f} s measured ({}){}", r.target,
                   r.proto, r.mode, r.conns, r.depth, r.size, r.threads, r.threads == 1 ? "" : "s", r.elapsed_s, loop,
                   r.hosts > 1 ? fmt::format(", {} hosts merged", r.hosts) : ""));
  line(fmt::format("  throughput  {:.0f} rt/s  {:.2f} MB/s  ({} round trips, {} bytes verified)", r.rt_per_s,
                   r.mb_per_s, r.round_trips, r.bytes));
  const LatencySummary& l = r.latency_us;
  if (r.histogram.count() == 0) {
    line("  latency     no round trips completed");
  } else {
    line("  latency     " + percentile_list(r.histogram, r.percentiles));
    line(fmt::format("              min {}  mean {}  stddev {}", format_latency_us(l.min), format_latency_us(l.mean),
                     format_latency_us(l.stddev)));
  }
  if (r.connect && r.connect->histogram.count() > 0)
    line(fmt::format("  connect     {}  ({} connection{})", percentile_list(r.connect->histogram, r.percentiles),
                     r.connect->histogram.count(), r.connect->histogram.count() == 1 ? "" : "s"));
  if (r.handshake && r.handshake->histogram.count() > 0) {
    std::string what;
    if (r.tls)
      what = fmt::format("  ({} handshake{}, {} resumed; {} {})", r.tls->handshakes, r.tls->handshakes == 1 ? "" : "s",
                         r.tls->resumed, r.tls->version, r.tls->cipher);
    line("  handshake   " + percentile_list(r.handshake->histogram, r.percentiles) + what);
  }
  if (r.first_echo && r.first_echo->histogram.count() > 0)
    line("  first echo  " + percentile_list(r.first_echo->histogram, r.percentiles));
  line("  errors      " + error_list(r.errors));
  if (r.rate_shortfall) {
    line(fmt::format("  rate        asked {}, achieved {}: the generator could not keep up",
                     format_rate(r.rate_shortfall->asked, r.rate_unit),
                     format_rate(r.rate_shortfall->achieved, r.rate_unit)));
  }
  if (r.slot_waits > 0) {
    line(fmt::format("  note        {} connections were due while all {} --conns slots were busy; their latency "
                     "includes that wait (more --conns lets the schedule open them on time)",
                     r.slot_waits, r.conns));
  }
  if (r.server) {
    const ServerStats& s = *r.server;
    line(fmt::format("  server      pid {}: {:.2f} µs CPU per round trip ({:.0f}% user), RSS {:.1f} MiB", s.pid,
                     s.cpu_us_per_rt, s.user_share * 100.0, double(s.rss_bytes) / (1024.0 * 1024.0)));
  }
  if (r.histogram.clamped() > 0) {
    line(fmt::format("  note        {} samples above {:.0f} s were counted at {:.0f} s", r.histogram.clamped(),
                     double(r.histogram.highest_trackable()) / 1e9, double(r.histogram.highest_trackable()) / 1e9));
  }
  if (r.repetitions) repetitions_lines(r, line);
  if (r.find_rate) search_lines(r, line);
  return out;
}

}  // namespace eco::bench
