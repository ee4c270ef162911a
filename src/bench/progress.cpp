#include "bench/progress.h"

#include <unistd.h>

#include <cstdio>

#include <fmt/format.h>

namespace eco::bench {

bool progress_wanted(bool quiet) { return !quiet && isatty(STDERR_FILENO) == 1; }

std::string format_latency(uint64_t ns) {
  if (ns < 1000) return fmt::format("{} ns", ns);
  if (ns < 1'000'000) return fmt::format("{:.1f} µs", double(ns) / 1e3);
  if (ns < 1'000'000'000) return fmt::format("{:.2f} ms", double(ns) / 1e6);
  return fmt::format("{:.2f} s", double(ns) / 1e9);
}

std::string format_progress(const ProgressSample& s) {
  return fmt::format("[{:5.1f}/{:.1f} s{}] {:>12.0f} rt/s {:>9.2f} MB/s  p99 {:>9}  errors {}", s.elapsed_s,
                     s.total_s, s.warming_up ? " warm-up" : "", s.rt_per_s, s.mb_per_s,
                     s.p99_ns ? format_latency(s.p99_ns) : std::string("-"), s.errors);
}

void print_progress(const ProgressSample& s) {
  // \r and erase-line: one line rewritten in place, nothing scrolls.
  std::string line = "\r\x1b[K" + format_progress(s);
  (void)!write(STDERR_FILENO, line.data(), line.size());
}

void clear_progress() { (void)!write(STDERR_FILENO, "\r\x1b[K", 4); }

}  // namespace eco::bench
