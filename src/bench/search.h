#pragma once
// --find-rate: a latency objective ("p99<1ms", "p50<200us,p99.9<=5ms") and the
// search for the highest open-loop rate that holds it. The search itself is pure
// (it calls back for each step), so it can be tested without a network.
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bench/histogram.h"
#include "util/result.h"

namespace eco::bench {

struct SloTerm {
  double percentile = 99;  // 100 for "max"
  double bound_ns = 0;
  bool inclusive = false;  // "<=" rather than "<"
};

struct Slo {
  std::string text;
  std::vector<SloTerm> terms;  // all must hold
};

// "p99<1ms", "p99.9<=500us", "max<10ms", several joined by commas. Units ns, us
// (or µs), ms, s. Errors name the part that is wrong.
Result<Slo> parse_slo(std::string_view text);

// Whether `h` holds every term; `reason` says why in a few words
// ("p99 812 µs < 1.00 ms", "p99 4.20 ms, over 1.00 ms").
bool slo_holds(const Slo& slo, const Histogram& h, std::string& reason);

struct SearchLimits {
  double precision = 0.03;  // stop when the bracket is within 3%
  int max_steps = 16;       // open-loop steps, the probe not counted
  double floor = 1;         // below this rate no step is tried
};

// One open-loop step at `rate`: true if it held the objective (and was not
// interrupted); `stop` set by the step ends the search (SIGINT, a fatal error).
using StepFn = std::function<bool(double rate, bool& stop)>;

// Starts at `start` (the closed-loop probe's rate), doubles until a step fails or
// halves until one passes, then bisects between the highest rate that passed and
// the lowest that failed. Returns the highest rate that passed, if any.
std::optional<double> search_rate(double start, const StepFn& step, const SearchLimits& limits = {});

}  // namespace eco::bench
