#pragma once
// --reps: what the repetitions of one load add up to. The aggregate is every run's
// samples together, as if one run had lasted as long as all of them; the statistics
// are each figure's median over the runs and its confidence interval.
#include <vector>

#include "bench/result.h"

namespace eco::bench {

// The runs (of the same load, one after another) as one result: counts, bytes,
// elapsed time and errors summed, histograms added; finalized. The runs themselves
// go into `runs`.
BenchResult combine_runs(const std::vector<BenchResult>& runs);

// rt/s, MB/s and each percentile of `percentiles` (latency, µs) over the runs: median,
// interval at `confidence` percent, and whether it is too wide (±10%) to trust.
Repetitions repetition_stats(const std::vector<BenchResult>& runs, const std::vector<double>& percentiles,
                             double confidence, double cooldown_s);

}  // namespace eco::bench
