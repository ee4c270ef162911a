#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <unistd.h>

#include "bench/hdr_log.h"
#include "bench/merge.h"
#include "bench/result.h"

using namespace eco::bench;

namespace {

BenchResult sample_run(uint64_t seed, uint64_t n, uint64_t base_ns) {
  BenchResult r;
  r.target = "127.0.0.1:5346";
  r.proto = "tcp";
  r.mode = "rr";
  r.conns = 10;
  r.depth = 2;
  r.size = 64;
  r.threads = 2;
  r.duration_s = 5;
  r.warmup_s = 1;
  std::mt19937_64 rng(seed);
  std::exponential_distribution<double> dist(1.0 / double(base_ns));
  for (uint64_t i = 0; i < n; ++i) r.histogram.record(base_ns / 2 + uint64_t(dist(rng)));
  r.round_trips = n;
  r.bytes = n * r.size;
  r.elapsed_s = 5.01;
  r.errors.timeout = seed % 3;
  finalize(r);
  return r;
}

}  // namespace

TEST(BenchResult, FinalizeComputesRatesAndLatencyFromTheHistogram) {
  BenchResult r;
  r.round_trips = 1000;
  r.bytes = 64'000;
  r.elapsed_s = 2.0;
  for (int i = 0; i < 1000; ++i) r.histogram.record(20'000'000);  // 20 ms
  finalize(r);
  EXPECT_DOUBLE_EQ(r.rt_per_s, 500.0);
  EXPECT_DOUBLE_EQ(r.mb_per_s, 0.032);
  EXPECT_NEAR(r.latency_us.p50, 20'000.0, 20.0);
  EXPECT_NEAR(r.latency_us.p99, 20'000.0, 20.0);
  EXPECT_NEAR(r.latency_us.mean, 20'000.0, 20.0);
  EXPECT_LT(r.latency_us.stddev, 20.0);
}

TEST(BenchResult, JsonRoundTripKeepsEveryField) {
  BenchResult r = sample_run(1, 20'000, 50'000);
  r.rate = 12'345.5;
  r.rate_shortfall = RateShortfall{12'345.5, 11'000.25};
  r.server = ServerStats{4242, 3.25, 12u << 20, 0.375};
  r.errors = {1, 2, 3, 4, 5, 6};
  r.hosts = 3;
  std::string text = to_json(r);
  auto back = from_json(text);
  ASSERT_TRUE(back.ok()) << back.error().message;
  const BenchResult& b = *back;
  EXPECT_EQ(b.target, r.target);
  EXPECT_EQ(b.proto, "tcp");
  EXPECT_EQ(b.mode, "rr");
  EXPECT_EQ(b.conns, 10u);
  EXPECT_EQ(b.depth, 2u);
  EXPECT_EQ(b.size, 64u);
  EXPECT_EQ(b.threads, 2u);
  EXPECT_EQ(b.hosts, 3u);
  EXPECT_DOUBLE_EQ(b.duration_s, 5);
  EXPECT_DOUBLE_EQ(b.warmup_s, 1);
  ASSERT_TRUE(b.rate.has_value());
  EXPECT_DOUBLE_EQ(*b.rate, 12'345.5);
  EXPECT_EQ(b.round_trips, r.round_trips);
  EXPECT_EQ(b.bytes, r.bytes);
  EXPECT_DOUBLE_EQ(b.elapsed_s, r.elapsed_s);
  EXPECT_DOUBLE_EQ(b.rt_per_s, r.rt_per_s);
  EXPECT_DOUBLE_EQ(b.mb_per_s, r.mb_per_s);
  EXPECT_DOUBLE_EQ(b.latency_us.p99, r.latency_us.p99);
  EXPECT_DOUBLE_EQ(b.latency_us.p9999, r.latency_us.p9999);
  EXPECT_DOUBLE_EQ(b.latency_us.stddev, r.latency_us.stddev);
  EXPECT_EQ(b.errors.mismatch, 1u);
  EXPECT_EQ(b.errors.other, 6u);
  ASSERT_TRUE(b.rate_shortfall.has_value());
  EXPECT_DOUBLE_EQ(b.rate_shortfall->achieved, 11'000.25);
  ASSERT_TRUE(b.server.has_value());
  EXPECT_EQ(b.server->pid, 4242);
  EXPECT_EQ(b.server->rss_bytes, 12u << 20);
  EXPECT_DOUBLE_EQ(b.server->user_share, 0.375);
  EXPECT_TRUE(b.histogram.same_counts(r.histogram));
  // Stable output: writing what was read gives the same text.
  EXPECT_EQ(to_json(b), text);
}

TEST(BenchResult, JsonRoundTripKeepsPhasesRepetitionsAndSearch) {
  BenchResult r = sample_run(4, 5000, 30'000);
  r.mode = "crr";
  r.rate = 1500;
  r.rate_unit = "conn/s";
  r.slot_waits = 17;
  r.percentiles = {50, 99.5};
  r.proto = "tls";
  r.connect.emplace();
  r.first_echo.emplace();
  r.handshake.emplace();
  r.tls = TlsStats{"TLSv1.3", "TLS_AES_128_GCM_SHA256", 100, 99};
  for (int i = 0; i < 100; ++i) {
    r.connect->histogram.record(20'000 + uint64_t(i));
    r.first_echo->histogram.record(60'000 + uint64_t(i));
    r.handshake->histogram.record(300'000 + uint64_t(i));
  }
  r.runs = {sample_run(5, 100, 30'000), sample_run(6, 100, 31'000)};
  r.repetitions = Repetitions{2, 1.5, 95, 50, true, {FigureStats{"rt_per_s", 100, 90, 110, false},
                                                     FigureStats{"p99.5_us", 40, 20, 60, true}}};
  finalize(r);
  std::string text = to_json(r);
  EXPECT_NE(text.find("\"p99.5\": "), std::string::npos) << "each percentile asked has its key";
  auto back = from_json(text);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->rate_unit, "conn/s");
  EXPECT_EQ(back->slot_waits, 17u);
  EXPECT_EQ(back->percentiles, (std::vector<double>{50, 99.5}));
  ASSERT_TRUE(back->connect && back->first_echo);
  EXPECT_TRUE(back->connect->histogram.same_counts(r.connect->histogram));
  EXPECT_DOUBLE_EQ(back->first_echo->latency_us.p50, r.first_echo->latency_us.p50);
  ASSERT_TRUE(back->handshake && back->tls);
  EXPECT_TRUE(back->handshake->histogram.same_counts(r.handshake->histogram));
  EXPECT_EQ(back->tls->handshakes, 100u);
  EXPECT_EQ(back->tls->resumed, 99u);
  EXPECT_EQ(back->tls->version, "TLSv1.3");
  EXPECT_EQ(back->proto, "tls");
  ASSERT_TRUE(back->repetitions);
  EXPECT_EQ(back->repetitions->figures.size(), 2u);
  EXPECT_EQ(back->repetitions->figures[1].name, "p99.5_us");
  EXPECT_TRUE(back->repetitions->figures[1].wide);
  EXPECT_TRUE(back->repetitions->spread_too_wide);
  ASSERT_EQ(back->runs.size(), 2u);
  EXPECT_TRUE(back->runs[1].histogram.same_counts(r.runs[1].histogram));
  EXPECT_EQ(to_json(*back), text);
  std::string summary = format_summary(r);
  for (const char* want : {"connect ", "first echo", "handshake ", "100 handshakes, 99 resumed", "p99.5 ", "repetitions 2 runs 1.5 s apart", "too wide",
                           "the runs disagree too much", "17 connections were due", "open loop at 1500 conn/s"})
    EXPECT_NE(summary.find(want), std::string::npos) << want << "\n" << summary;

  BenchResult searched = sample_run(7, 1000, 30'000);
  searched.rate = 900;
  searched.find_rate = RateSearch{"p99<1ms", 900.0, {SearchStep{std::nullopt, 1000, true, "closed loop"},
                                                     SearchStep{1000.0, 990, false, "p99 2 ms, over 1 ms"},
                                                     SearchStep{900.0, 900, true, "p99 800 µs < 1 ms"}}};
  searched.runs = {sample_run(8, 10, 1000), sample_run(9, 10, 1000), sample_run(10, 10, 1000)};
  text = to_json(searched);
  back = from_json(text);
  ASSERT_TRUE(back.ok()) << back.error().message;
  ASSERT_TRUE(back->find_rate && back->find_rate->found);
  EXPECT_DOUBLE_EQ(*back->find_rate->found, 900);
  ASSERT_EQ(back->find_rate->steps.size(), 3u);
  EXPECT_FALSE(back->find_rate->steps[0].rate);
  EXPECT_EQ(back->find_rate->steps[1].reason, "p99 2 ms, over 1 ms");
  EXPECT_EQ(back->runs.size(), 3u);
  EXPECT_EQ(to_json(*back), text);
  summary = format_summary(searched);
  EXPECT_NE(summary.find("p99<1ms holds up to 900 msg/s"), std::string::npos) << summary;
  EXPECT_NE(summary.find("FAIL"), std::string::npos) << summary;
}

TEST(BenchResult, JsonUsesTheSchemaNames) {
  BenchResult r = sample_run(2, 100, 1000);
  std::string text = to_json(r);
  for (const char* key : {"\"eco_bench\": 1", "\"rate\": null", "\"rate_shortfall\": null", "\"server\": null",
                          "\"p99.9\":", "\"p99.99\":", "\"short_read\":", "\"latency_us\":", "\"histogram\": \"HISTF"}) {
    EXPECT_NE(text.find(key), std::string::npos) << key << "\n" << text;
  }
}

TEST(BenchResult, FromJsonRejectsBadInputWithTheFieldName) {
  BenchResult r = sample_run(3, 100, 1000);
  std::string good = to_json(r);
  auto expect_error = [](const std::string& text, const std::string& needle) {
    auto res = from_json(text);
    ASSERT_FALSE(res.ok()) << text.substr(0, 200);
    EXPECT_NE(res.error().message.find(needle), std::string::npos) << res.error().message;
  };
  expect_error("{", "not valid JSON");
  expect_error("[1,2]", "JSON object");
  expect_error("{\"x\":1}", "eco_bench");
  auto replace = [&](const std::string& from, const std::string& to) {
    std::string s = good;
    auto pos = s.find(from);
    EXPECT_NE(pos, std::string::npos) << from;
    return s.replace(pos, from.size(), to);
  };
  expect_error(replace("\"eco_bench\": 1", "\"eco_bench\": 2"), "version 2");
  expect_error(replace("\"round_trips\"", "\"roundtrips\""), "round_trips");
  expect_error(replace("\"size\": 64", "\"size\": \"64\""), "size");
  expect_error(replace("\"conns\": 10", "\"conns\": -10"), "conns");
  expect_error(replace("\"proto\": \"tcp\"", "\"proto\": \"sctp\""), "proto");
  expect_error(replace("\"p99.9\"", "\"p99_9\""), "latency_us.p99.9");
  expect_error(replace("\"timeout\"", "\"timeouts\""), "errors.timeout");
  expect_error(replace("\"histogram\": \"HISTF", "\"histogram\": \"XISF"), "histogram");
}

TEST(BenchMerge, HistogramsAddAndCountsSum) {
  BenchResult a = sample_run(10, 30'000, 40'000);
  BenchResult b = sample_run(11, 10'000, 400'000);  // a slower machine or path
  auto m = merge({a, b});
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->hosts, 2u);
  EXPECT_EQ(m->round_trips, 40'000u);
  EXPECT_EQ(m->bytes, 40'000u * 64u);
  EXPECT_EQ(m->conns, 20u);
  EXPECT_EQ(m->threads, 4u);
  EXPECT_DOUBLE_EQ(m->rt_per_s, a.rt_per_s + b.rt_per_s);
  EXPECT_DOUBLE_EQ(m->mb_per_s, a.mb_per_s + b.mb_per_s);
  EXPECT_DOUBLE_EQ(m->elapsed_s, 5.01);
  EXPECT_EQ(m->errors.timeout, a.errors.timeout + b.errors.timeout);
  EXPECT_EQ(m->target, "127.0.0.1:5346");

  Histogram all;
  all.merge(a.histogram);
  all.merge(b.histogram);
  EXPECT_TRUE(m->histogram.same_counts(all));
  // The merged p99 is the p99 of all samples, not an average of the two p99s.
  EXPECT_DOUBLE_EQ(m->latency_us.p99, double(all.value_at_percentile(99)) / 1000.0);
  EXPECT_GT(m->latency_us.p50, a.latency_us.p50);
  EXPECT_LT(m->latency_us.p50, b.latency_us.p50);
  EXPECT_NE(m->latency_us.p99, (a.latency_us.p99 + b.latency_us.p99) / 2);

  // Merging through JSON files gives the same answer, and merges of merges add up.
  auto again = merge({*from_json(to_json(*m)), *from_json(to_json(a))});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->hosts, 3u);
  EXPECT_EQ(again->round_trips, 70'000u);
}

TEST(BenchMerge, RefusesRunsThatMeasuredDifferentThings) {
  BenchResult a = sample_run(1, 100, 1000);
  struct Case {
    const char* field;
    void (*change)(BenchResult&);
  };
  for (Case c : {Case{"proto", [](BenchResult& r) { r.proto = "udp"; }},
                 Case{"mode", [](BenchResult& r) { r.mode = "crr"; }},
                 Case{"message size", [](BenchResult& r) { r.size = 1024; }},
                 Case{"loop", [](BenchResult& r) { r.rate = 1000.0; }}}) {
    BenchResult b = a;
    c.change(b);
    auto m = merge({a, b});
    ASSERT_FALSE(m.ok()) << c.field;
    EXPECT_NE(m.error().message.find(c.field), std::string::npos) << m.error().message;
    EXPECT_NE(m.error().message.find("cannot merge"), std::string::npos);
  }
  EXPECT_FALSE(merge({}).ok());
}

TEST(BenchMerge, OpenLoopRatesAndShortfallsAndServerCost) {
  BenchResult a = sample_run(1, 1000, 1000);
  BenchResult b = sample_run(2, 3000, 1000);
  a.rate = 1000;
  b.rate = 2000;
  b.rate_shortfall = RateShortfall{2000, 1500};
  a.server = ServerStats{77, 10.0, 1000, 0.5};  // 10 µs x 1000 rt = 10 ms CPU
  b.server = ServerStats{77, 10.0 / 3.0, 3000, 0.7};  // the same 10 ms, seen by b
  auto m = merge({a, b});
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_DOUBLE_EQ(*m->rate, 3000);
  ASSERT_TRUE(m->rate_shortfall);
  EXPECT_DOUBLE_EQ(m->rate_shortfall->asked, 3000);
  EXPECT_DOUBLE_EQ(m->rate_shortfall->achieved, 2500);
  ASSERT_TRUE(m->server);
  EXPECT_NEAR(m->server->cpu_us_per_rt, 10'000.0 / 4000.0, 1e-9);
  EXPECT_EQ(m->server->rss_bytes, 3000u);
  EXPECT_NEAR(m->server->user_share, 0.6, 1e-12);
}

TEST(BenchMerge, RunMergeReadsFilesAndReportsErrors) {
  char dir_tmpl[] = "/tmp/eco_merge_XXXXXX";
  ASSERT_NE(mkdtemp(dir_tmpl), nullptr);
  std::string dir = dir_tmpl;
  auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir + "/" + name) << text;
    return dir + "/" + name;
  };
  BenchResult a = sample_run(1, 100, 1000);
  a.errors = {};
  std::string fa = write("a.json", to_json(a));
  std::string fb = write("b.json", to_json(a));
  std::string bad = write("bad.json", "{\"eco_bench\": 1}");
  EXPECT_EQ(run_merge({fa, fb}, true), 0);
  EXPECT_EQ(run_merge({fa, bad}, false), 2);
  EXPECT_EQ(run_merge({fa, dir + "/missing.json"}, false), 2);
  EXPECT_EQ(run_merge({}, false), 2);
  a.errors.mismatch = 1;
  std::string fc = write("c.json", to_json(a));
  EXPECT_EQ(run_merge({fa, fc}, false), 1);  // errors in any run fail the merge too
  for (const char* f : {"a.json", "b.json", "bad.json", "c.json"}) std::remove((dir + "/" + f).c_str());
  rmdir(dir.c_str());
}

TEST(BenchSummary, PicksUnitsPerValueAndListsErrors) {
  EXPECT_EQ(format_latency_us(0.85), "850 ns");
  EXPECT_EQ(format_latency_us(41.23), "41.2 µs");
  EXPECT_EQ(format_latency_us(999.4), "999 µs");
  EXPECT_EQ(format_latency_us(20'100), "20.1 ms");
  EXPECT_EQ(format_latency_us(1'500'000), "1.50 s");
  BenchResult r = sample_run(5, 1000, 20'000'000);
  r.errors = {};
  std::string s = format_summary(r);
  EXPECT_NE(s.find("rt/s"), std::string::npos) << s;
  EXPECT_NE(s.find("MB/s"), std::string::npos) << s;
  EXPECT_NE(s.find(" ms"), std::string::npos) << s;
  EXPECT_NE(s.find("p99.99"), std::string::npos) << s;
  EXPECT_NE(s.find("errors      none"), std::string::npos) << s;
  r.errors.reset = 3;
  r.errors.mismatch = 1;
  s = format_summary(r);
  EXPECT_NE(s.find("1 mismatch, 3 reset"), std::string::npos) << s;
  BenchResult empty;
  empty.errors.refused = 4;
  s = format_summary(empty);
  EXPECT_NE(s.find("no round trips completed"), std::string::npos) << s;
  EXPECT_NE(s.find("4 refused"), std::string::npos) << s;
}

TEST(HdrLog, LinesHaveHistogramLogWriterShape) {
  std::string head = hdr_log_header(1'700'000'000'123, "eco test");
  EXPECT_EQ(head.rfind("#eco test\n#[Histogram log format version 1.3]\n#[StartTime: 1700000000.123 (seconds since epoch), ", 0), 0u)
      << head;
  EXPECT_NE(head.find("\n#[BaseTime: 1700000000.123 (seconds since epoch)]\n"), std::string::npos) << head;
  EXPECT_NE(head.find("\n\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n"),
            std::string::npos);
  Histogram h;
  h.record(1'500'000);  // 1.5 ms
  std::string line = hdr_log_interval(2.0, 1.0004, h);
  EXPECT_EQ(line.rfind("2.000,1.000,1.500,HISTF", 0), 0u) << line;  // max in ms
  ASSERT_EQ(line.back(), '\n');
  std::string b64 = line.substr(line.rfind(',') + 1);
  b64.pop_back();
  auto back = Histogram::decode_compressed_base64(b64);
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(back->same_counts(h));
}

TEST(HdrLog, WriterCreatesAFileAndReportsBadPaths) {
  EXPECT_FALSE(HdrLogWriter::create("/nonexistent-dir/x.hlog", 0).ok());
  std::string path = "/tmp/eco_hdrlog_" + std::to_string(getpid()) + ".hlog";
  auto w = HdrLogWriter::create(path, 1'000);
  ASSERT_TRUE(w.ok()) << w.error().message;
  Histogram h;
  h.record(1000);
  ASSERT_TRUE(w->append(0, 1, h).ok());
  ASSERT_TRUE(w->append(1, 1, h).ok());
  ASSERT_TRUE(w->close().ok());
  EXPECT_FALSE(w->append(2, 1, h).ok());
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("\n0.000,1.000,0.001,HISTF"), std::string::npos) << text;
  EXPECT_NE(text.find("\n1.000,1.000,0.001,HISTF"), std::string::npos) << text;
  std::remove(path.c_str());
}
