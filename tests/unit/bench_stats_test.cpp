// The statistics behind --reps and the search behind --find-rate, with no network.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "bench/repeat.h"
#include "bench/search.h"
#include "bench/stats.h"

using namespace eco::bench;

TEST(BenchStats, MedianIntervalUsesOrderStatistics) {
  // 10 values: [x(2), x(9)] covers the median with 1 - 2 * 11/1024 = 97.85% >= 95%.
  std::vector<double> v{10, 1, 9, 2, 8, 3, 7, 4, 6, 5};
  MedianInterval m = median_interval(v, 95);
  EXPECT_DOUBLE_EQ(m.median, 5.5);
  EXPECT_DOUBLE_EQ(m.low, 2);
  EXPECT_DOUBLE_EQ(m.high, 9);
  EXPECT_NEAR(m.level, 100 * (1 - 2 * 11.0 / 1024), 1e-9);
  // At 99% the same ten give [min, max], 99.8%.
  m = median_interval(v, 99);
  EXPECT_DOUBLE_EQ(m.low, 1);
  EXPECT_DOUBLE_EQ(m.high, 10);
  EXPECT_NEAR(m.level, 100 * (1 - 2.0 / 1024), 1e-9);
  // Too few for 95%: [min, max] and the 93.75% it has.
  m = median_interval({3, 1, 2, 5, 4}, 95);
  EXPECT_DOUBLE_EQ(m.median, 3);
  EXPECT_DOUBLE_EQ(m.low, 1);
  EXPECT_DOUBLE_EQ(m.high, 5);
  EXPECT_NEAR(m.level, 93.75, 1e-9);
  EXPECT_EQ(median_interval({}, 95).median, 0);
}

TEST(BenchStats, IntervalCoversTheMedianAsOftenAsItSays) {
  // Ten runs of a skewed figure (exponential, median ln 2): the 95% interval must
  // contain the true median in about 97.85% of 4,000 trials (its exact coverage).
  std::mt19937_64 rng(7);
  std::exponential_distribution<double> exp1(1.0);
  int covered = 0;
  const int trials = 4000;
  for (int t = 0; t < trials; ++t) {
    std::vector<double> v;
    for (int i = 0; i < 10; ++i) v.push_back(exp1(rng));
    MedianInterval m = median_interval(v, 95);
    if (m.low <= std::log(2.0) && std::log(2.0) <= m.high) ++covered;
  }
  EXPECT_NEAR(double(covered) / trials, 0.9785, 0.01);
}

TEST(BenchStats, TooWideIsHalfTheIntervalOverTenPercent) {
  EXPECT_FALSE(too_wide({100, 91, 109, 95}));
  EXPECT_TRUE(too_wide({100, 85, 106, 95}));
  EXPECT_FALSE(too_wide({0, 0, 0, 95}));
}

namespace {

BenchResult run_with(double rt_per_s, uint64_t latency_ns) {
  BenchResult r;
  r.elapsed_s = 1;
  r.round_trips = uint64_t(rt_per_s);
  r.bytes = r.round_trips * 64;
  r.size = 64;
  for (uint64_t i = 0; i < r.round_trips; ++i) r.histogram.record(latency_ns);
  finalize(r);
  return r;
}

}  // namespace

TEST(BenchStats, RepetitionsCombineAndFlagASpread) {
  std::vector<BenchResult> steady{run_with(1000, 50'000), run_with(1010, 51'000), run_with(990, 49'000),
                                  run_with(1005, 50'500), run_with(995, 50'200), run_with(1000, 49'800)};
  BenchResult all = combine_runs(steady);
  EXPECT_EQ(all.round_trips, 6000u);
  EXPECT_DOUBLE_EQ(all.elapsed_s, 6);
  EXPECT_DOUBLE_EQ(all.rt_per_s, 1000);
  EXPECT_EQ(all.histogram.count(), 6000u);
  EXPECT_EQ(all.runs.size(), 6u);
  Repetitions rep = repetition_stats(steady, {50, 99}, 95, 2);
  EXPECT_EQ(rep.count, 6u);
  EXPECT_DOUBLE_EQ(rep.cooldown_s, 2);
  EXPECT_NEAR(rep.level, 96.875, 1e-9);
  EXPECT_FALSE(rep.spread_too_wide);
  ASSERT_EQ(rep.figures.size(), 4u);
  EXPECT_EQ(rep.figures[0].name, "rt_per_s");
  EXPECT_DOUBLE_EQ(rep.figures[0].median, 1000);
  EXPECT_DOUBLE_EQ(rep.figures[0].low, 990);
  EXPECT_DOUBLE_EQ(rep.figures[0].high, 1010);
  EXPECT_EQ(rep.figures[2].name, "p50_us");
  EXPECT_EQ(rep.figures[3].name, "p99_us");
  steady.push_back(run_with(400, 50'000));  // one run far off: the rt/s interval widens
  rep = repetition_stats(steady, {50}, 95, 0);
  EXPECT_TRUE(rep.spread_too_wide);
  EXPECT_TRUE(rep.figures[0].wide);
  EXPECT_FALSE(rep.figures[2].wide);
}

TEST(BenchSearch, ObjectivesParse) {
  auto s = parse_slo("p99<1ms");
  ASSERT_TRUE(s.ok()) << s.error().message;
  ASSERT_EQ(s->terms.size(), 1u);
  EXPECT_DOUBLE_EQ(s->terms[0].percentile, 99);
  EXPECT_DOUBLE_EQ(s->terms[0].bound_ns, 1e6);
  EXPECT_FALSE(s->terms[0].inclusive);
  s = parse_slo("p50<200us, p99.9<=5ms,max<1s");
  ASSERT_TRUE(s.ok()) << s.error().message;
  ASSERT_EQ(s->terms.size(), 3u);
  EXPECT_DOUBLE_EQ(s->terms[0].bound_ns, 200e3);
  EXPECT_DOUBLE_EQ(s->terms[1].percentile, 99.9);
  EXPECT_TRUE(s->terms[1].inclusive);
  EXPECT_DOUBLE_EQ(s->terms[2].percentile, 100);
  EXPECT_DOUBLE_EQ(s->terms[2].bound_ns, 1e9);
  EXPECT_DOUBLE_EQ(parse_slo("p99<800ns")->terms[0].bound_ns, 800);
  EXPECT_DOUBLE_EQ(parse_slo("p99<2µs")->terms[0].bound_ns, 2000);
  struct Bad {
    const char* text;
    const char* says;
  };
  for (Bad b : {Bad{"p101<1ms", "unknown percentile 'p101'"}, Bad{"q99<1ms", "unknown percentile 'q99'"},
                Bad{"p0<1ms", "unknown percentile 'p0'"}, Bad{"p<1ms", "unknown percentile 'p'"},
                Bad{"p99<1", "needs a unit"}, Bad{"p99<1h", "needs a unit"}, Bad{"p99<-1ms", "not a positive"},
                Bad{"p99>1ms", "no '<'"}, Bad{"p99<1ms,", "no '<'"}, Bad{"", "no '<'"}}) {
    auto r = parse_slo(b.text);
    ASSERT_FALSE(r.ok()) << b.text;
    EXPECT_NE(r.error().message.find(b.says), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find("invalid --find-rate"), std::string::npos);
  }
}

TEST(BenchSearch, ObjectiveHoldsOnTheHistogram) {
  Histogram h;
  for (int i = 0; i < 990; ++i) h.record(500'000);     // 0.5 ms
  for (int i = 0; i < 10; ++i) h.record(3'000'000);     // 1% at 3 ms
  std::string why;
  EXPECT_TRUE(slo_holds(*parse_slo("p99<1ms"), h, why)) << why;
  EXPECT_NE(why.find("p99 "), std::string::npos) << why;
  EXPECT_FALSE(slo_holds(*parse_slo("p99.5<1ms"), h, why));
  EXPECT_NE(why.find("over 1.00 ms"), std::string::npos) << why;
  EXPECT_FALSE(slo_holds(*parse_slo("p50<1ms,max<2ms"), h, why));
  EXPECT_FALSE(slo_holds(*parse_slo("p99<1ms"), Histogram(), why));
  EXPECT_NE(why.find("no round trips"), std::string::npos);
}

TEST(BenchSearch, FindsTheCapacityOfAModelServer) {
  // A step passes when its rate is at most 1,234/s: whatever the start, the search
  // ends within its precision below that, in few steps.
  for (double start : {1.0, 100.0, 1200.0, 1234.0, 5000.0, 1e6}) {
    std::vector<double> tried;
    auto step = [&](double rate, bool&) {
      tried.push_back(rate);
      return rate <= 1234;
    };
    auto found = search_rate(start, step);
    ASSERT_TRUE(found.has_value()) << start;
    EXPECT_LE(*found, 1234) << start;
    EXPECT_GE(*found, 1234 / 1.03) << start;
    EXPECT_LE(tried.size(), 16u) << start;
  }
}

TEST(BenchSearch, StopsWhenNothingHoldsOrWhenTold) {
  int steps = 0;
  auto never = [&](double, bool&) {
    ++steps;
    return false;
  };
  EXPECT_FALSE(search_rate(1000, never).has_value());
  EXPECT_LE(steps, 11) << "1000 halves to below 1/s in ten steps";
  steps = 0;
  auto interrupted = [&](double, bool& stop) {
    if (++steps == 3) stop = true;
    return true;
  };
  auto found = search_rate(1000, interrupted);
  ASSERT_TRUE(found.has_value());
  EXPECT_DOUBLE_EQ(*found, 2000) << "the steps before the stop still count";
  EXPECT_EQ(steps, 3);
}
