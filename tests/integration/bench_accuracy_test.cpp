// eco bench measures what happened: against in-process echo servers with a known
// misbehaviour (fixed delay, one stall, flipped bytes, resets, silence) its
// percentiles, error counts, exit codes and run time must reflect that behaviour.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "bench_run.h"
#include "bench_test_servers.h"

namespace eco::itest {
namespace {

TEST(BenchAccuracy, FixedDelayShowsAsMedian) {
  TestEchoServer srv(Misbehavior::delay, 20);
  ASSERT_TRUE(srv.ok());
  auto b = run_bench({srv.address(), "--conns", "4", "--duration", "2s", "--warmup", "0.3s"});
  EXPECT_PARSED(b);
  EXPECT_EQ(b.run.exit_code, 0) << b.run.err;
  EXPECT_EQ(b.result.errors.total(), 0u);
  EXPECT_GT(b.result.round_trips, 100u);  // 4 connections x ~50 round trips/s x 2 s
  EXPECT_NEAR(b.result.latency_us.p50, 20'000, 2'000) << b.run.out;
  EXPECT_GE(b.result.latency_us.min, 19'900);  // nothing can come back sooner than the delay
}

TEST(BenchAccuracy, OpenLoopSeesAStallThatClosedLoopHides) {
  // 1 s stall, 1.5 s into a 5 s run at 200 messages/s: ~200 of ~1000 messages are
  // due during the stall and wait up to 1 s each, measured from when they were due.
  {
    TestEchoServer srv(Misbehavior::stall_once);
    ASSERT_TRUE(srv.ok());
    auto open = run_bench({srv.address(), "--conns", "2", "--rate", "200", "--duration", "5s", "--warmup", "0"});
    EXPECT_PARSED(open);
    EXPECT_EQ(open.run.exit_code, 0) << open.run.err;
    EXPECT_GE(open.result.latency_us.p99, 500'000) << open.run.out;
    EXPECT_GE(open.result.latency_us.max, 900'000);
    EXPECT_GT(open.result.latency_us.p90, 100'000) << "about a fifth of the messages were due in the stall";
  }
  {
    // Closed loop: the one message in flight waits out the stall, nothing else is
    // sent meanwhile, so the stall is a single sample among thousands.
    TestEchoServer srv(Misbehavior::stall_once);
    ASSERT_TRUE(srv.ok());
    auto closed = run_bench({srv.address(), "--conns", "1", "--duration", "3s", "--warmup", "0"});
    EXPECT_PARSED(closed);
    EXPECT_EQ(closed.run.exit_code, 0) << closed.run.err;
    EXPECT_GE(closed.result.latency_us.max, 900'000) << closed.run.out;
    EXPECT_LT(closed.result.latency_us.p99, 100'000) << closed.run.out;
  }
}

TEST(BenchAccuracy, FlippedByteIsAMismatchAndFails) {
  TestEchoServer srv(Misbehavior::flip);
  ASSERT_TRUE(srv.ok());
  auto b = run_bench({srv.address(), "--conns", "2", "--duration", "1s", "--warmup", "0"});
  EXPECT_PARSED(b);
  EXPECT_EQ(b.run.exit_code, 1);
  EXPECT_GT(b.result.errors.mismatch, 0u);
  EXPECT_NE(b.run.err.find("echo differs"), std::string::npos) << b.run.err;
}

TEST(BenchAccuracy, NoVerifyDoesNotCheckBytes) {
  TestEchoServer srv(Misbehavior::flip);
  ASSERT_TRUE(srv.ok());
  auto b = run_bench({srv.address(), "--duration", "0.5s", "--warmup", "0", "--no-verify"});
  EXPECT_PARSED(b);
  EXPECT_EQ(b.run.exit_code, 0) << b.run.err;
  EXPECT_EQ(b.result.errors.mismatch, 0u);
}

TEST(BenchAccuracy, ResetsAreCountedAndTheRunEndsOnTime) {
  TestEchoServer srv(Misbehavior::reset);
  ASSERT_TRUE(srv.ok());
  auto b = run_bench({srv.address(), "--conns", "4", "--duration", "2s", "--warmup", "0"});
  EXPECT_PARSED(b);
  EXPECT_EQ(b.run.exit_code, 1);
  EXPECT_GT(b.result.errors.reset + b.result.errors.short_read, 0u) << b.run.out;
  EXPECT_GT(srv.accepted(), 4u) << "bench reconnects after a reset";
  EXPECT_LT(b.wall_s, 2 + 2 + 1.5);  // duration + grace + start-up slack
}

TEST(BenchAccuracy, SilentServerTimesOutWithinGrace) {
  TestEchoServer srv(Misbehavior::blackhole);
  ASSERT_TRUE(srv.ok());
  auto b = run_bench({srv.address(), "--conns", "3", "--duration", "1s", "--warmup", "0"});
  EXPECT_PARSED(b);
  EXPECT_EQ(b.run.exit_code, 1);
  EXPECT_EQ(b.result.round_trips, 0u);
  EXPECT_EQ(b.result.errors.timeout, 3u) << b.run.out;  // one message in flight per connection
  EXPECT_LT(b.wall_s, 1 + 2 + 1.5);
}

TEST(BenchAccuracy, ConnectionsSpreadOverLoopbackSources) {
  // What lets one machine open more connections than one source address has ports.
  TestEchoServer srv(Misbehavior::none);
  ASSERT_TRUE(srv.ok());
  auto b = run_bench({srv.address(), "--conns", "30", "--conns-per-source", "10", "--duration", "0.5s", "--warmup", "0.2s"});
  EXPECT_PARSED(b);
  EXPECT_EQ(b.run.exit_code, 0) << b.run.err;
  EXPECT_EQ(srv.sources(), (std::set<std::string>{"127.0.0.1", "127.0.0.2", "127.0.0.3"}));
}

TEST(BenchAccuracy, NothingListeningExitsThree) {
  std::string addr;
  {
    TestEchoServer gone(Misbehavior::blackhole);  // a port that was just free, closed again
    ASSERT_TRUE(gone.ok());
    addr = gone.address();
  }
  auto b = run_bench({addr, "--duration", "0.5s", "--warmup", "0"});
  EXPECT_EQ(b.run.exit_code, 3) << b.run.out << b.run.err;
  EXPECT_NE(b.run.err.find("refused"), std::string::npos) << b.run.err;
}

}  // namespace
}  // namespace eco::itest
