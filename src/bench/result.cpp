#include "bench/result.h"

#include <fmt/format.h>

namespace eco::bench {

const char* error_kind_name(ErrorKind k) {
  switch (k) {
    case ErrorKind::mismatch: return "mismatch";
    case ErrorKind::short_read: return "short_read";
    case ErrorKind::reset: return "reset";
    case ErrorKind::refused: return "refused";
    case ErrorKind::timeout: return "timeout";
    case ErrorKind::other: break;
  }
  return "other";
}

LatencySummary summarize_latency(const Histogram& h) {
  LatencySummary s;
  auto us = [](uint64_t ns) { return double(ns) / 1000.0; };
  s.min = us(h.min());
  s.mean = h.mean() / 1000.0;
  s.p50 = us(h.value_at_percentile(50));
  s.p90 = us(h.value_at_percentile(90));
  s.p99 = us(h.value_at_percentile(99));
  s.p999 = us(h.value_at_percentile(99.9));
  s.p9999 = us(h.value_at_percentile(99.99));
  s.max = us(h.max());
  s.stddev = h.stddev() / 1000.0;
  return s;
}

void finalize(BenchResult& r) {
  r.rt_per_s = r.elapsed_s > 0 ? double(r.round_trips) / r.elapsed_s : 0.0;
  r.mb_per_s = r.elapsed_s > 0 ? double(r.bytes) / r.elapsed_s / 1e6 : 0.0;
  r.latency_us = summarize_latency(r.histogram);
  for (auto* phase : {&r.connect, &r.first_echo, &r.handshake})
    if (*phase) (*phase)->latency_us = summarize_latency((*phase)->histogram);
}

BenchResult same_load(const BenchResult& r) {
  BenchResult s;
  s.target = r.target;
  s.proto = r.proto;
  s.mode = r.mode;
  s.conns = r.conns;
  s.depth = r.depth;
  s.size = r.size;
  s.threads = r.threads;
  s.duration_s = r.duration_s;
  s.warmup_s = r.warmup_s;
  s.rate = r.rate;
  s.rate_unit = r.rate_unit;
  s.hosts = r.hosts;
  s.percentiles = r.percentiles;
  return s;
}

double achieved_rate(const BenchResult& r) {
  return r.rt_per_s * (r.rate_unit == "B/s" ? double(r.size) : 1.0);
}

void note_shortfall(BenchResult& r) {
  r.rate_shortfall.reset();
  if (r.rate && achieved_rate(r) < 0.95 * *r.rate) r.rate_shortfall = RateShortfall{*r.rate, achieved_rate(r)};
}

void add_counts(BenchResult& into, const BenchResult& r) {
  into.round_trips += r.round_trips;
  into.bytes += r.bytes;
  into.errors.add(r.errors);
  into.slot_waits += r.slot_waits;
  into.histogram.merge(r.histogram);
  for (auto [to, from] : {std::pair{&into.connect, &r.connect}, std::pair{&into.first_echo, &r.first_echo},
                          std::pair{&into.handshake, &r.handshake}}) {
    if (!*from) continue;
    if (!*to) to->emplace();
    (*to)->histogram.merge((*from)->histogram);
  }
  if (r.tls) {
    if (!into.tls) into.tls = TlsStats{r.tls->version, r.tls->cipher};
    into.tls->handshakes += r.tls->handshakes;
    into.tls->resumed += r.tls->resumed;
  }
}

std::string format_latency_us(double us) {
  // Three significant digits in the largest unit that keeps the number >= 1.
  auto three = [](double v, const char* unit) {
    int decimals = v >= 100 ? 0 : v >= 10 ? 1 : 2;
    return fmt::format("{:.{}f} {}", v, decimals, unit);
  };
  if (us < 1.0) return fmt::format("{:.0f} ns", us * 1000.0);
  if (us < 1000.0) return three(us, "µs");
  if (us < 1'000'000.0) return three(us / 1000.0, "ms");
  return three(us / 1'000'000.0, "s");
}

std::string format_rate(double rate, const std::string& unit) {
  if (unit == "B/s") return fmt::format("{:.2f} MB/s", rate / 1e6);
  if (rate < 100) return fmt::format("{:.3g} {}", rate, unit);
  return fmt::format("{:.0f} {}", rate, unit);
}

std::string BenchResult::to_json() const { return bench::to_json(*this); }
std::string BenchResult::format_summary() const { return bench::format_summary(*this); }

}  // namespace eco::bench
