// HdrHistogram's own Java HistogramLogProcessor (Debian's libhdrhistogram-java) reads
// eco's interval logs, and the percentiles it computes agree with eco's own summary:
// the proof that `--hist` files are real HdrHistogram logs, not look-alikes.
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "bench/hdr_log.h"
#include "bench/result.h"
#include "harness.h"

using namespace eco::bench;
using eco::itest::TempDir;

namespace {

const char* kJar = "/usr/share/java/hdrhistogram.jar";

// What the processor prints, in µs (-outputValueUnitRatio 1000: values are ns in the
// log, and 3 decimals of µs is every ns, so the comparison can be exact).
struct JavaTotals {
  uint64_t count = 0;
  double p50 = 0, p90 = 0, p99 = 0, p999 = 0, p9999 = 0, max = 0;
  double mean = 0, stddev = 0;
  std::vector<uint64_t> interval_counts;
  std::vector<double> interval_max;
};

::testing::AssertionResult run_processor(const TempDir& dir, const std::string& log, JavaTotals& out) {
  struct stat st{};
  if (stat(kJar, &st) != 0) {
    return ::testing::AssertionFailure() << kJar << " missing: install libhdrhistogram-java and "
                                         << "default-jre-headless (scripts/install-deps.sh)";
  }
  std::string prefix = dir.file("java");
  // `timeout` bounds a stuck JVM; stdout/stderr go to a file for the failure message.
  std::string cmd = "timeout 60 java -cp " + std::string(kJar) +
                    " org.HdrHistogram.HistogramLogProcessor -i '" + log + "' -o '" + prefix +
                    "' -outputValueUnitRatio 1000 > '" + prefix + ".err' 2>&1";
  int rc = std::system(cmd.c_str());
  if (rc != 0) {
    return ::testing::AssertionFailure() << "java HistogramLogProcessor failed (" << rc
                                         << "): " << eco::itest::read_file(prefix + ".err");
  }
  // Interval file: "T: I:<n> ( p50 p90 max ) T:<total> ( p50 p90 p99 p99.9 p99.99 max )" per line;
  // the last line's totals cover the whole log.
  std::istringstream intervals(eco::itest::read_file(prefix));
  std::string line;
  bool saw_total = false;
  while (std::getline(intervals, line)) {
    if (line.empty() || line[0] == '#' || line.rfind("Time:", 0) == 0) continue;
    double t, ip50, ip90, imax;
    unsigned long long icount, tcount;
    if (std::sscanf(line.c_str(), "%lf: I:%llu ( %lf %lf %lf ) T:%llu ( %lf %lf %lf %lf %lf %lf )", &t, &icount,
                    &ip50, &ip90, &imax, &tcount, &out.p50, &out.p90, &out.p99, &out.p999, &out.p9999,
                    &out.max) != 12) {
      return ::testing::AssertionFailure() << "unexpected processor line: " << line;
    }
    out.interval_counts.push_back(icount);
    out.interval_max.push_back(imax);
    out.count = tcount;
    saw_total = true;
  }
  if (!saw_total) return ::testing::AssertionFailure() << "processor printed no intervals";
  std::string hgrm = eco::itest::read_file(prefix + ".hgrm");
  auto mean_at = hgrm.find("#[Mean");
  if (mean_at == std::string::npos ||
      std::sscanf(hgrm.c_str() + mean_at, "#[Mean = %lf, StdDeviation = %lf]", &out.mean, &out.stddev) != 2) {
    return ::testing::AssertionFailure() << "no Mean/StdDeviation in " << hgrm;
  }
  return ::testing::AssertionSuccess();
}

// Java prints 3 decimals of µs: equal to eco's value to the printed precision.
void expect_same_us(double java_us, double eco_us, const char* what) {
  EXPECT_NEAR(java_us, eco_us, 0.0005 + 1e-9 * std::fabs(eco_us)) << what;
}

void expect_agree(const JavaTotals& j, const BenchResult& r) {
  EXPECT_EQ(j.count, r.histogram.count());
  const LatencySummary& l = r.latency_us;
  expect_same_us(j.p50, l.p50, "p50");
  expect_same_us(j.p90, l.p90, "p90");
  expect_same_us(j.p99, l.p99, "p99");
  expect_same_us(j.p999, l.p999, "p99.9");
  expect_same_us(j.p9999, l.p9999, "p99.99");
  expect_same_us(j.max, l.max, "max");
  expect_same_us(j.mean, l.mean, "mean");
  expect_same_us(j.stddev, l.stddev, "stddev");
}

}  // namespace

TEST(HdrJava, ProcessorReadsEcoLogAndAgreesWithEcoSummary) {
  TempDir dir;
  std::string log = dir.file("run.hlog");
  auto w = HdrLogWriter::create(log, wall_clock_ms());
  ASSERT_TRUE(w.ok()) << w.error().message;

  // Three one-second intervals with different shapes, as a run with a hiccup would
  // produce: exponential around 50 µs, uniform 1-2 ms, and constant 20 ms plus a 1.5 s stall.
  BenchResult whole;
  std::mt19937_64 rng(2024);
  std::vector<Histogram> parts(3);
  std::exponential_distribution<double> expo(1.0 / 50'000.0);
  std::uniform_int_distribution<uint64_t> uni(1'000'000, 2'000'000);
  for (int i = 0; i < 40'000; ++i) parts[0].record(2'000 + uint64_t(expo(rng)));
  for (int i = 0; i < 20'000; ++i) parts[1].record(uni(rng));
  parts[2].record(20'000'000, 5'000);
  parts[2].record(1'500'000'000);
  for (size_t i = 0; i < parts.size(); ++i) {
    ASSERT_TRUE(w->append(double(i), 1.0, parts[i]).ok());
    whole.histogram.merge(parts[i]);
  }
  ASSERT_TRUE(w->close().ok());
  whole.round_trips = whole.histogram.count();
  whole.elapsed_s = 3;
  finalize(whole);
  // eco's summary as a reader of --json sees it.
  auto reread = from_json(to_json(whole));
  ASSERT_TRUE(reread.ok()) << reread.error().message;

  JavaTotals j;
  ASSERT_TRUE(run_processor(dir, log, j));
  ASSERT_EQ(j.interval_counts.size(), 3u);
  for (size_t i = 0; i < parts.size(); ++i) {
    EXPECT_EQ(j.interval_counts[i], parts[i].count()) << i;
    expect_same_us(j.interval_max[i], double(parts[i].max()) / 1000.0, "interval max");
  }
  expect_agree(j, *reread);
  // And the stall is visible to both: p99.99 and max land on the 1.5 s sample.
  EXPECT_NEAR(j.max, 1.5e6, 1.5e6 * 0.001);
}

TEST(HdrJava, EcoBenchHistFileAgreesWithItsJson) {
  eco::itest::ServerOptions so;
  eco::itest::Server server(so);
  ASSERT_TRUE(server.start());
  TempDir dir;
  std::string log = dir.file("bench.hlog");
  auto run = eco::itest::run_eco({"bench", eco::itest::hostport("127.0.0.1", server.port()), "--conns", "4",
                                  "--duration", "1s", "--warmup", "500ms", "--threads", "2", "--quiet", "--json",
                                  "--hist", log},
                                 {}, 30'000);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  auto result = from_json(run.out);
  ASSERT_TRUE(result.ok()) << result.error().message << "\n" << run.out;
  ASSERT_GT(result->round_trips, 0u);

  JavaTotals j;
  ASSERT_TRUE(run_processor(dir, log, j));
  // The log's intervals together hold exactly the run's samples, so HdrHistogram's
  // tools report what eco reported.
  expect_agree(j, *result);
  EXPECT_EQ(j.count, result->round_trips);
  EXPECT_TRUE(server.stop());
}
