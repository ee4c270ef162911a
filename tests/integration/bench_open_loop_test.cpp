// Open loop in every mode, the connection phases, and the per-interval and
// percentile outputs: against the real `eco serve` where only correctness is
// asked, against in-process servers of known behaviour where a figure is.
#include <gtest/gtest.h>

#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "bench_run.h"
#include "bench_test_servers.h"

namespace eco::itest {
namespace {

using BenchOpenLoop = EcoServeTest;

std::vector<std::vector<std::string>> read_csv(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> cells;
    std::istringstream ls(line);
    for (std::string cell; std::getline(ls, cell, ',');) cells.push_back(cell);
    if (!line.empty() && line.back() == ',') cells.emplace_back();
    rows.push_back(cells);
  }
  return rows;
}

TEST_F(BenchOpenLoop, CrrOpensConnectionsAtTheRate) {
  auto b = run_bench({addr_, "--mode", "crr", "--rate", "300", "--conns", "8", "--duration", "1s", "--warmup", "0.2s"});
  EXPECT_CLEAN(b);
  EXPECT_EQ(b.result.rate_unit, "conn/s");
  ASSERT_TRUE(b.result.rate.has_value());
  EXPECT_EQ(*b.result.rate, 300);
  EXPECT_NEAR(double(b.result.round_trips), 300, 30) << "one round trip per connection, 300 a second";
  EXPECT_FALSE(b.result.rate_shortfall.has_value()) << b.run.out;
  ASSERT_TRUE(b.result.connect.has_value());
  EXPECT_NEAR(double(b.result.connect->histogram.count()), 300, 30) << "each measured connection's connect time";
}

TEST_F(BenchOpenLoop, StreamPacesBytesPerSecond) {
  auto b = run_bench({addr_, "--mode", "stream", "--rate", "2M", "--size", "4K", "--conns", "2", "--duration", "1s",
                      "--warmup", "0.2s"});
  EXPECT_CLEAN(b);
  EXPECT_EQ(b.result.rate_unit, "B/s");
  EXPECT_NEAR(b.result.mb_per_s, 2.0, 0.2) << b.run.out;
  EXPECT_EQ(b.result.bytes, b.result.round_trips * 4096) << "whole messages at this pace";
}

TEST(BenchOpenLoopAccuracy, CrrSeesAStallThatClosedLoopHides) {
  // 1 s stall, 1.5 s into the run: at 100 connections/s with 4 slots, ~100 connections
  // are due during the stall; they wait for a slot, and count from when they were due.
  TestEchoServer srv(Misbehavior::stall_once);
  ASSERT_TRUE(srv.ok());
  auto open = run_bench({srv.address(), "--mode", "crr", "--rate", "100", "--conns", "4", "--duration", "4s",
                         "--warmup", "0"});
  EXPECT_PARSED(open);
  EXPECT_EQ(open.run.exit_code, 0) << open.run.err;
  EXPECT_GE(open.result.latency_us.p99, 500'000) << open.run.out;
  EXPECT_GT(open.result.latency_us.p90, 100'000) << "about a fifth of the connections were due in the stall";
  EXPECT_GT(open.result.slot_waits, 50u) << open.run.out;
}

TEST(BenchPhases, ConnectAndFirstEchoApartFromTheRoundTrip) {
  // A 20 ms echo delay: connecting stays fast, the first echo comes 20 ms after it.
  TestEchoServer srv(Misbehavior::delay, 20);
  ASSERT_TRUE(srv.ok());
  auto rr = run_bench({srv.address(), "--conns", "3", "--duration", "0.5s", "--warmup", "0.1s"});
  EXPECT_CLEAN(rr);
  ASSERT_TRUE(rr.result.connect && rr.result.first_echo) << rr.run.out;
  EXPECT_EQ(rr.result.connect->histogram.count(), 3u) << "rr: one connect per connection, warm-up included";
  EXPECT_EQ(rr.result.first_echo->histogram.count(), 3u);
  EXPECT_LT(rr.result.connect->latency_us.max, 10'000);
  EXPECT_GE(rr.result.first_echo->latency_us.min, 19'900);
  EXPECT_LT(rr.result.first_echo->latency_us.max, 40'000);

  auto crr = run_bench({srv.address(), "--mode", "crr", "--conns", "3", "--duration", "0.5s", "--warmup", "0.1s"});
  EXPECT_CLEAN(crr);
  ASSERT_TRUE(crr.result.connect && crr.result.first_echo);
  // crr counts the connections of the measured window, about one per round trip.
  EXPECT_NEAR(double(crr.result.connect->histogram.count()), double(crr.result.round_trips), 4);
  EXPECT_GE(crr.result.first_echo->latency_us.p50, 19'900);
  EXPECT_LT(crr.result.connect->latency_us.p50, 10'000);
  EXPECT_NE(crr.run.out.find("\"first_echo\": {"), std::string::npos);
}

TEST_F(BenchOpenLoop, UdpHasNoConnectionPhases) {
  auto b = run_bench({"udp://" + addr_, "--duration", "0.3s", "--warmup", "0"});
  EXPECT_CLEAN(b);
  EXPECT_FALSE(b.result.connect.has_value());
  EXPECT_NE(b.run.out.find("\"connect\": null"), std::string::npos);
}

TEST_F(BenchOpenLoop, CsvHasALinePerIntervalThatAddsUpToTheRun) {
  TempDir dir;
  std::string csv = dir.file("run.csv");
  auto b = run_bench({addr_, "--conns", "4", "--rate", "2000", "--duration", "2s", "--warmup", "0.5s", "--csv", csv});
  EXPECT_CLEAN(b);
  auto rows = read_csv(read_file(csv));
  ASSERT_GE(rows.size(), 4u) << read_file(csv);
  EXPECT_EQ(rows[0], (std::vector<std::string>{"run", "start_s", "length_s", "phase", "rate", "rt_per_s", "mb_per_s",
                                               "p50_us", "p99_us", "max_us", "mismatch", "short_read", "reset",
                                               "refused", "timeout", "other"}));
  double round_trips = 0;
  size_t measured = 0;
  for (size_t i = 1; i < rows.size(); ++i) {
    ASSERT_EQ(rows[i].size(), rows[0].size()) << i;
    EXPECT_EQ(rows[i][0], "1");
    EXPECT_EQ(rows[i][4], "2000");
    round_trips += std::stod(rows[i][5]) * std::stod(rows[i][2]);
    if (rows[i][3] == "measure") {
      ++measured;
      if (std::stod(rows[i][2]) > 0.5) {
        EXPECT_GT(std::stod(rows[i][7]), 0) << "p50 of a measured interval";
      }
    }
    for (size_t k = 10; k < rows[i].size(); ++k) EXPECT_EQ(rows[i][k], "0");
  }
  EXPECT_GE(measured, 2u);
  EXPECT_NEAR(round_trips, double(b.result.round_trips), 0.01 * double(b.result.round_trips) + 2);
}

TEST_F(BenchOpenLoop, PercentilesAreTheOnesAsked) {
  auto b = run_bench({addr_, "--duration", "0.5s", "--warmup", "0", "--percentiles", "50,99.5,99.95"});
  EXPECT_CLEAN(b);
  EXPECT_EQ(b.result.percentiles, (std::vector<double>{50, 99.5, 99.95}));
  for (const char* key : {"\"p99.5\": ", "\"p99.95\": ", "\"p99.9\": "})  // the fixed keys stay for readers
    EXPECT_NE(b.run.out.find(key), std::string::npos) << key;
  auto text = run_eco({"bench", addr_, "--duration", "0.3s", "--warmup", "0", "--quiet", "--percentiles", "75,99.5"});
  EXPECT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("p75 "), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("p99.5 "), std::string::npos) << text.out;
  EXPECT_EQ(text.out.find("p90 "), std::string::npos) << "only the percentiles asked: " << text.out;
}

TEST(BenchSources, SourceIpsAreUsedInTurn) {
  TestEchoServer srv(Misbehavior::none);
  ASSERT_TRUE(srv.ok());
  auto b = run_bench({srv.address(), "--conns", "6", "--source-ip", "127.0.0.5,127.0.0.6,127.0.0.7", "--duration",
                      "0.3s", "--warmup", "0.1s"});
  EXPECT_CLEAN(b);
  EXPECT_EQ(srv.sources(), (std::set<std::string>{"127.0.0.5", "127.0.0.6", "127.0.0.7"}));
}

}  // namespace
}  // namespace eco::itest
