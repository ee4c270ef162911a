// eco bench against the real `eco serve`: every mode and protocol verifies every
// byte with zero errors, many connections fit, and the outputs (--json, --hist,
// merge) are what other tools read.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "bench_run.h"

namespace eco::itest {
namespace {

using BenchModes = EcoServeTest;

TEST_F(BenchModes, RequestEchoWithDepth) {
  auto b = run_bench({addr_, "--conns", "4", "--depth", "8", "--size", "100", "--duration", "1s", "--warmup", "0.2s"});
  EXPECT_CLEAN(b);
  EXPECT_EQ(b.result.mode, "rr");
  EXPECT_EQ(b.result.bytes, b.result.round_trips * 100) << "bytes are whole verified echoes";
}

TEST_F(BenchModes, ConnectRequestReceive) {
  auto b = run_bench({addr_, "--mode", "crr", "--conns", "4", "--duration", "1s", "--warmup", "0.2s"});
  EXPECT_CLEAN(b);
  EXPECT_EQ(b.result.mode, "crr");
}

TEST_F(BenchModes, StreamOfLargeMessages) {
  auto b = run_bench({addr_, "--mode", "stream", "--conns", "2", "--size", "64K", "--duration", "1s", "--warmup", "0.2s"});
  EXPECT_CLEAN(b);
  // Bytes count as they arrive, messages when complete: at most a window apart.
  EXPECT_NEAR(double(b.result.bytes), double(b.result.round_trips * (64u << 10)), double(2 * (4u << 20)));
}

TEST_F(BenchModes, UdpDatagrams) {
  auto b = run_bench({"udp://" + addr_, "--conns", "4", "--depth", "4", "--duration", "1s", "--warmup", "0.2s"});
  EXPECT_CLEAN(b);
  EXPECT_EQ(b.result.proto, "udp");
}

TEST_F(BenchModes, OpenLoopUdpKeepsTheRate) {
  auto b = run_bench({addr_, "--udp", "--rate", "500", "--conns", "2", "--duration", "1s", "--warmup", "0.2s"});
  EXPECT_CLEAN(b);
  EXPECT_NEAR(double(b.result.round_trips), 500, 50);
}

TEST_F(BenchModes, TwoThousandConnections) {
  auto b = run_bench({addr_, "--conns", "2000", "--threads", "2", "--duration", "1s", "--warmup", "1s"});
  EXPECT_CLEAN(b);
  EXPECT_GE(b.result.round_trips, 2000u) << "every connection echoed at least once";
}

TEST_F(BenchModes, GeneratorShortfallIsReported) {
  // No single thread sends 5 million messages a second: bench must say so, and still
  // measure from the intended send times (so latency grows through the run).
  auto b = run_bench({addr_, "--conns", "2", "--rate", "5000000", "--duration", "1s", "--warmup", "0"});
  EXPECT_CLEAN(b);
  ASSERT_TRUE(b.result.rate_shortfall.has_value()) << b.run.out;
  EXPECT_EQ(b.result.rate_shortfall->asked, 5'000'000);
  EXPECT_LT(b.result.rate_shortfall->achieved, 5'000'000);
  EXPECT_NE(b.run.err.find("generator could not keep up"), std::string::npos) << b.run.err;
  EXPECT_GT(b.result.latency_us.max, 100'000) << "late sends count from when they were due";
}

TEST_F(BenchModes, HistLogAndMerge) {
  TempDir dir;
  std::string hist = dir.file("lat.hlog");
  auto a = run_bench({addr_, "--duration", "1s", "--warmup", "0", "--hist", hist});
  EXPECT_CLEAN(a);
  std::string log = read_file(hist);
  EXPECT_NE(log.find("#[Histogram log format version"), std::string::npos) << log;
  EXPECT_NE(log.find("\"StartTimestamp\",\"Interval_Length\""), std::string::npos) << log;
  auto b = run_bench({addr_, "--conns", "2", "--duration", "0.5s", "--warmup", "0"});
  EXPECT_CLEAN(b);
  ASSERT_TRUE(write_file(dir.file("a.json"), a.run.out));
  ASSERT_TRUE(write_file(dir.file("b.json"), b.run.out));
  auto m = run_eco({"bench", "merge", dir.file("a.json"), dir.file("b.json"), "--json"});
  ASSERT_EQ(m.exit_code, 0) << m.err;
  auto merged = bench::from_json(m.out);
  ASSERT_TRUE(merged) << merged.error().message;
  EXPECT_EQ(merged->hosts, 2u);
  EXPECT_EQ(merged->round_trips, a.result.round_trips + b.result.round_trips);
}

TEST_F(BenchModes, ServerPidReportsCpuPerRoundTrip) {
  auto b = run_bench({addr_, "--duration", "1s", "--warmup", "0.2s", "--server-pid", std::to_string(server_->pid())});
  EXPECT_CLEAN(b);
  ASSERT_TRUE(b.result.server.has_value()) << b.run.out;
  EXPECT_EQ(b.result.server->pid, server_->pid());
  EXPECT_GT(b.result.server->rss_bytes, 0u);
  EXPECT_GE(b.result.server->cpu_us_per_rt, 0);
}

TEST_F(BenchModes, CtrlCEndsEarlyWithAReport) {
  TempDir dir;
  std::string out = dir.file("out.json");
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, STDOUT_FILENO);
    execl(eco_binary(), "eco", "bench", addr_.c_str(), "--duration", "30s", "--warmup", "0", "--json", "--quiet",
          static_cast<char*>(nullptr));
    _exit(127);
  }
  usleep(1'500'000);
  ::kill(pid, SIGINT);
  int status = 0;
  pid_t done = 0;
  double t0 = now_ms();
  while ((done = waitpid(pid, &status, WNOHANG)) == 0 && now_ms() - t0 < 5000) usleep(20'000);
  if (done == 0) {
    ::kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    FAIL() << "eco bench did not end within 5 s of SIGINT";
  }
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  auto r = bench::from_json(read_file(out));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_GT(r->round_trips, 0u);
  EXPECT_LT(r->elapsed_s, 5.0) << "the report covers the part that ran, not the asked 30 s";
  EXPECT_EQ(r->errors.total(), 0u);
}

TEST_F(BenchModes, BadOptionsAreUsageErrors) {
  // Each is refused before any load starts: one line naming the problem, exit 2.
  struct Case {
    std::vector<std::string> args;
    const char* says;
  };
  for (const Case& c : std::vector<Case>{
           {{"--udp", "--size", "4"}, "at least 12 bytes"},
           {{"--find-rate", "p99<1ms", "--rate", "100"}, "cannot be combined with --rate"},
           {{"--find-rate", "p99<1ms", "--reps", "3"}, "--find-rate and --reps"},
           {{"--reps", "0"}, "--reps must be at least 1"},
           {{"--find-rate", "p101<1ms"}, "unknown percentile 'p101'"},
           {{"--find-rate", "q99<1ms"}, "unknown percentile 'q99'"},
           {{"--find-rate", "p99<1"}, "needs a unit"},
           {{"--find-rate", "p99=1ms"}, "no '<'"},
           {{"--cooldown", "1s"}, "--cooldown is the pause"},
           {{"--rate", "100", "--depth", "4"}, "--depth is for the closed loop"},
           {{"--mode", "crr", "--rate", "100", "--connect-rate", "10"}, "--connect-rate ramps"},
           {{"--mode", "stream", "--size", "64K", "--rate", "10"}, "less than one message"},
           {{"--rate", "fast"}, "invalid rate 'fast'"},
           {{"--percentiles", "50,0"}, "invalid percentile '0'"},
           {{"--percentiles", "50,,99"}, "invalid percentile ''"},
           {{"--confidence", "100"}, "--confidence must be between"},
           {{"--source-ip", "127.0.0.2", "--conns-per-source", "10"}, "--conns-per-source spreads"},
           {{"--source-ip", "not-an-ip"}, "invalid source address 'not-an-ip'"},
           {{"--source-ip", "::1"}, "is IPv6 but the target is IPv4"},
           {{"--source-ip", "192.0.2.1"}, "no interface on this host has it"},
       }) {
    std::vector<std::string> args{"bench", addr_, "--duration", "0.2s", "--warmup", "0", "--quiet"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    auto r = run_eco(args, {}, 10000);
    std::string shown;
    for (const auto& a : c.args) shown += " " + a;
    EXPECT_EQ(r.exit_code, 2) << shown << ": " << r.err;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << shown << ": " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << shown << ": " << r.err;
    EXPECT_EQ(r.out, "") << shown;
  }
}

}  // namespace
}  // namespace eco::itest
