#pragma once
// --reps: the median of a figure over repeated runs and a distribution-free
// confidence interval for it, from order statistics (no assumption that the runs'
// figures are normal: latency percentiles are not).
#include <vector>

namespace eco::bench {

struct MedianInterval {
  double median = 0;
  double low = 0, high = 0;  // the interval [x(j), x(n+1-j)] of the sorted values
  double level = 0;          // its coverage, percent (>= the asked one when n allows)
};

// The narrowest symmetric interval of order statistics whose coverage of the true
// median, 1 - 2 P(B <= j-1) for B ~ Binomial(n, 1/2), is at least `confidence`
// percent. With too few values for that (5 or fewer at 95%), [min, max] and the
// coverage it does have. Empty input: all zero.
MedianInterval median_interval(std::vector<double> values, double confidence);

// Whether the interval is too wide to trust: half its width above `limit` (0.10 =
// ±10%) of the median.
bool too_wide(const MedianInterval& m, double limit = 0.10);

}  // namespace eco::bench
