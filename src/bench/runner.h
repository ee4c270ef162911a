#pragma once
// `eco bench`: starts one loop per thread, shows progress, merges the per-thread
// histograms and counters once at the end and reports.
#include "bench/options.h"

namespace eco::bench {


// Runs the benchmark and prints the report; returns the exit code (util/exit_codes.h):
// 0 clean, 1 any echo error, 2 bad options, 3 nothing could connect.
int run_bench(const BenchOptions& opts);

}  // namespace eco::bench
