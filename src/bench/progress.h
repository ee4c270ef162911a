#pragma once
// The live line bench prints once a second on a terminal (stderr), rewritten in
// place: elapsed/total, rt/s, MB/s, p99 of the last second, errors.
#include <cstdint>
#include <string>

namespace eco::bench {

struct ProgressSample {
  double elapsed_s = 0, total_s = 0;
  double rt_per_s = 0, mb_per_s = 0;
  uint64_t p99_ns = 0;  // 0: no sample this second
  uint64_t errors = 0;
  bool warming_up = false;
};

// Whether to show it: stderr is a terminal and --quiet was not given.
bool progress_wanted(bool quiet);
std::string format_progress(const ProgressSample& s);
// Latency with a unit a person reads at a glance: "812 ns", "41.2 µs", "20.1 ms", "1.20 s".
std::string format_latency(uint64_t ns);
void print_progress(const ProgressSample& s);
void clear_progress();

}  // namespace eco::bench
