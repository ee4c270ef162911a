#pragma once
// Running `eco bench ... --json --quiet` from a test and reading its result, and the
// fixture of the client tests (bench, ping) that need a real `eco serve`.
#include <memory>
#include <string>
#include <vector>

#include "bench/result.h"
#include "harness.h"

namespace eco::itest {

struct BenchRun {
  RunResult run;
  bench::BenchResult result;
  bool parsed = false;
  double wall_s = 0;
};

inline BenchRun run_bench(std::vector<std::string> args, int timeout_ms = 60000) {
  args.insert(args.begin(), "bench");
  args.push_back("--json");
  args.push_back("--quiet");
  BenchRun b;
  double t0 = now_ms();
  b.run = run_eco(args, {}, timeout_ms);
  b.wall_s = (now_ms() - t0) / 1000;
  auto r = bench::from_json(b.run.out);
  if (r) {
    b.result = std::move(*r);
    b.parsed = true;
  }
  return b;
}

#define EXPECT_PARSED(b) ASSERT_TRUE((b).parsed) << "stdout: " << (b).run.out << "\nstderr: " << (b).run.err

// A run that verified every byte with no error and completed at least one round trip.
#define EXPECT_CLEAN(b)                                                                              \
  do {                                                                                               \
    EXPECT_PARSED(b);                                                                                \
    EXPECT_EQ((b).run.exit_code, 0) << (b).run.err;                                                 \
    EXPECT_EQ((b).result.errors.total(), 0u) << (b).run.out;                                        \
    EXPECT_GT((b).result.round_trips, 0u);                                                          \
  } while (0)

// A real `eco serve` (TCP and UDP, two threads), started for each test.
class EcoServeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { raise_fd_limit(); }
  void SetUp() override {
    ServerOptions o;
    o.listen = {"127.0.0.1:0"};
    o.extra = {"--udp", "--threads", "2", "--quiet"};
    server_ = std::make_unique<Server>(o);
    ASSERT_TRUE(server_->start());
    addr_ = "127.0.0.1:" + std::to_string(server_->port());
  }
  void TearDown() override {
    if (server_) {
      EXPECT_TRUE(server_->stop());
    }
  }
  std::unique_ptr<Server> server_;
  std::string addr_;
};

}  // namespace eco::itest
