#include "bench/stats.h"

#include <algorithm>
#include <cmath>

namespace eco::bench {

MedianInterval median_interval(std::vector<double> values, double confidence) {
  MedianInterval m;
  const size_t n = values.size();
  if (n == 0) return m;
  std::sort(values.begin(), values.end());
  m.median = n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
  // P(B <= i) for B ~ Binomial(n, 1/2), summed from i = 0 (exact in doubles for
  // any repetition count a person would run).
  std::vector<double> cdf(n + 1);
  double term = std::pow(0.5, double(n)), sum = 0;
  for (size_t i = 0; i <= n; ++i) {
    sum += term;
    cdf[i] = sum;
    term = term * double(n - i) / double(i + 1);
  }
  size_t j = 1;  // 1-based: the interval is [x(j), x(n+1-j)]
  while (j + 1 <= (n + 1) / 2 && 1 - 2 * cdf[j] >= confidence / 100) ++j;
  m.low = values[j - 1];
  m.high = values[n - j];
  m.level = 100 * (1 - 2 * cdf[j - 1]);
  return m;
}

bool too_wide(const MedianInterval& m, double limit) {
  if (m.median == 0) return m.high != m.low;
  return (m.high - m.low) / 2 > limit * std::fabs(m.median);
}

}  // namespace eco::bench
