#pragma once
// The result of one `eco bench` run (or of several merged, repeated or searched):
// what --json prints, what `eco bench merge` reads, and what the peer harness
// compares. Schema version 1 (fields added since are optional when read):
//
// {"eco_bench":1, "target", "proto":"tcp"|"udp"|"tls", "mode":"rr"|"crr"|"stream", "conns",
//  "depth", "size", "threads", "duration_s", "warmup_s", "rate": R or null,
//  "rate_unit": "msg/s"|"conn/s"|"B/s", "hosts", "round_trips", "bytes", "elapsed_s",
//  "rt_per_s", "mb_per_s", "percentiles": [50, 90, ...],
//  "latency_us": {"min","mean","p50","p90","p99","p99.9","p99.99","max","stddev", and
//                 "pN" for each further --percentiles value},
//  "connect": null or {"count", "latency_us": {...}, "histogram"},     (TCP only)
//  "first_echo": null or {"count", "latency_us": {...}, "histogram"},
//  "handshake": null or {"count", "latency_us": {...}, "histogram"},   (TLS only)
//  "tls": null or {"version","cipher","handshakes","resumed"},
//  "errors": {"mismatch","short_read","reset","refused","timeout","other"},
//  "rate_shortfall": null or {"asked","achieved"}, "slot_waits",
//  "server": null or {"pid","cpu_us_per_rt","rss_bytes","user_share"},
//  "repetitions": null or {"count","cooldown_s","confidence","level","spread_too_wide",
//                          "figures": {NAME: {"median","low","high","wide"}}, "runs": [result...]},
//  "find_rate": null or {"slo","unit","found": R or null,
//                        "steps": [{"rate","achieved","pass","reason"}], "runs": [result...]},
//  "histogram": base64 HdrHistogram V2 compressed encoding of the whole run, in ns}
//
// With repetitions or a search the top level is the aggregate: every repetition's
// samples together, or the step at the rate found.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bench/histogram.h"
#include "util/result.h"

namespace eco::bench {

inline constexpr int kBenchSchemaVersion = 1;

// Latency in microseconds, as HdrHistogram reports it from the histogram (percentiles
// are the highest value of their bucket, min the lowest).
struct LatencySummary {
  double min = 0, mean = 0, p50 = 0, p90 = 0, p99 = 0, p999 = 0, p9999 = 0, max = 0, stddev = 0;
};

// The kinds of echo error bench counts apart, in report order.
enum class ErrorKind : uint8_t { mismatch, short_read, reset, refused, timeout, other };
inline constexpr size_t kErrorKinds = 6;
// "mismatch", "short_read", ... (the JSON and CSV names).
const char* error_kind_name(ErrorKind k);

struct ErrorCounts {
  uint64_t mismatch = 0;    // echoed bytes differed from what was sent
  uint64_t short_read = 0;  // the peer closed before echoing everything
  uint64_t reset = 0;       // ECONNRESET / EPIPE
  uint64_t refused = 0;     // ECONNREFUSED on connect
  uint64_t timeout = 0;     // no echo (or connect) within the timeout
  uint64_t other = 0;
  uint64_t total() const { return mismatch + short_read + reset + refused + timeout + other; }
  uint64_t& operator[](ErrorKind k) {
    switch (k) {
      case ErrorKind::mismatch: return mismatch;
      case ErrorKind::short_read: return short_read;
      case ErrorKind::reset: return reset;
      case ErrorKind::refused: return refused;
      case ErrorKind::timeout: return timeout;
      case ErrorKind::other: break;
    }
    return other;
  }
  uint64_t operator[](ErrorKind k) const { return const_cast<ErrorCounts&>(*this)[k]; }
  void add(const ErrorCounts& o) {
    for (size_t i = 0; i < kErrorKinds; ++i) (*this)[ErrorKind(i)] += o[ErrorKind(i)];
  }
};

// Open loop only: the generator could not keep the asked rate (both in rate_unit).
struct RateShortfall {
  double asked = 0;
  double achieved = 0;
};

// --server-pid: the server's cost, read from /proc over the measured interval.
struct ServerStats {
  int64_t pid = 0;
  double cpu_us_per_rt = 0;  // user + system CPU time per round trip
  uint64_t rss_bytes = 0;
  double user_share = 0;     // user / (user + system), 0..1
};

// Connection-phase latency (TCP): connect() until established, and connect() until
// the first echoed byte; over TLS also the handshake, from TCP established to its end.
struct Phase {
  Histogram histogram;
  LatencySummary latency_us;  // from histogram (finalize)
};

// TLS: what the handshakes were (of the last one; a run speaks to one server) and how
// many of those counted resumed a session.
struct TlsStats {
  std::string version, cipher;
  uint64_t handshakes = 0, resumed = 0;
};

// --reps: one figure over the repetitions, its median and confidence interval.
struct FigureStats {
  std::string name;  // "rt_per_s", "mb_per_s", "p99_us", ...
  double median = 0, low = 0, high = 0;
  bool wide = false;  // the interval is wider than the trust limit
};

struct Repetitions {
  uint64_t count = 0;
  double cooldown_s = 0;
  double confidence = 95;  // asked, percent
  double level = 0;        // what the interval achieves with this many runs, percent
  bool spread_too_wide = false;
  std::vector<FigureStats> figures;
};

// --find-rate: one open-loop step of the search.
struct SearchStep {
  std::optional<double> rate;  // in rate_unit; none: the closed-loop probe
  double achieved = 0;         // in rate_unit
  bool pass = false;
  std::string reason;          // "p99 812 µs < 1 ms" or why it failed
};

struct RateSearch {
  std::string slo;
  std::optional<double> found;
  std::vector<SearchStep> steps;
};

struct BenchResult {
  std::string target;  // "host:port" as given
  std::string proto = "tcp";
  std::string mode = "rr";
  uint64_t conns = 0;
  uint64_t depth = 0;
  uint64_t size = 0;
  uint64_t threads = 0;
  double duration_s = 0;
  double warmup_s = 0;
  std::optional<double> rate;  // asked (--rate), in rate_unit; none = closed loop
  std::string rate_unit = "msg/s";
  uint64_t hosts = 1;          // how many runs were merged into this one

  uint64_t round_trips = 0;
  uint64_t bytes = 0;  // payload bytes echoed back and verified
  double elapsed_s = 0;
  double rt_per_s = 0;
  double mb_per_s = 0;  // 10^6 bytes per second
  std::vector<double> percentiles = {50, 90, 99, 99.9, 99.99};  // shown in the summary
  LatencySummary latency_us;
  std::optional<Phase> connect, first_echo;
  std::optional<Phase> handshake;  // TLS: TCP established until the handshake finished
  std::optional<TlsStats> tls;
  ErrorCounts errors;
  std::optional<RateShortfall> rate_shortfall;
  uint64_t slot_waits = 0;  // crr open loop: connections due while every --conns slot was busy
  std::optional<ServerStats> server;

  std::optional<Repetitions> repetitions;
  std::optional<RateSearch> find_rate;
  std::vector<BenchResult> runs;  // each repetition, or each search step

  Histogram histogram;  // whole measured run, nanoseconds

  // Member spellings of the free functions below.
  std::string to_json() const;
  std::string format_summary() const;
};

// Fills rt_per_s, mb_per_s (from round_trips, bytes and elapsed_s) and latency_us
// (from histogram, as for each phase). The bench runner calls it once at the end of a run.
void finalize(BenchResult& r);
LatencySummary summarize_latency(const Histogram& h);
// A result describing the same load as `r` (target, mode, sizes, rate, percentiles)
// with nothing counted yet: where a merge or a combination of runs starts.
BenchResult same_load(const BenchResult& r);
// What the run achieved in rate_unit (round trips a second, or bytes for B/s), and
// the shortfall it records when that is clearly (5%, for the ramp and the window's
// edges) below the rate asked.
double achieved_rate(const BenchResult& r);
void note_shortfall(BenchResult& r);
// Adds what `r` counted (round trips, bytes, errors, slot waits, histograms) to `into`.
void add_counts(BenchResult& into, const BenchResult& r);

// One JSON object (pretty-printed, keys in schema order) and a trailing newline.
std::string to_json(const BenchResult& r);
// Strict: a missing or mistyped field, an unknown schema version or an undecodable
// histogram is an error naming the field.
Result<BenchResult> from_json(std::string_view text);

// The human summary: rt/s, MB/s, latency percentiles with a unit picked per value
// (ns/µs/ms/s), error counts, rate shortfall and server cost when present.
std::string format_summary(const BenchResult& r);
// "850 ns", "41.2 µs", "20.1 ms", "1.50 s": 3 significant digits.
std::string format_latency_us(double us);
// "1,200 msg/s", "52.4 MB/s": a rate in its unit, for people.
std::string format_rate(double rate, const std::string& unit);

}  // namespace eco::bench
