#pragma once
// `eco bench merge`: one exact report from runs on several load machines. Histograms
// are added bucket by bucket (so percentiles are those of all samples, not an average
// of percentiles), counts, bytes and errors summed, rates summed, elapsed the longest.
#include <string>
#include <vector>

#include "bench/result.h"
#include "util/result.h"

namespace eco::bench {

// Refuses runs that measured different things (proto, mode, message size, open vs
// closed loop) with a message naming the field and both values.
Result<BenchResult> merge(const std::vector<BenchResult>& runs);

// The CLI: reads each file (JSON as written by `eco bench --json`), merges, prints
// the summary (or JSON with `json`). Errors print one `eco: ...` line; returns an
// exit code from util/exit_codes.h (2 for unreadable/incompatible input).
int run_merge(const std::vector<std::string>& files, bool json);

}  // namespace eco::bench
