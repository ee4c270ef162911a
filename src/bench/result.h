#pragma once
// The result of one `eco bench` run (or of several merged): what --json prints, what
// `eco bench merge` reads, and what the peer harness compares. Schema version 1:
//
// {"eco_bench":1, "target", "proto":"tcp"|"udp", "mode":"rr"|"crr"|"stream", "conns",
//  "depth", "size", "threads", "duration_s", "warmup_s", "rate": R or null, "hosts",
//  "round_trips", "bytes", "elapsed_s", "rt_per_s", "mb_per_s",
//  "latency_us": {"min","mean","p50","p90","p99","p99.9","p99.99","max","stddev"},
//  "errors": {"mismatch","short_read","reset","refused","timeout","other"},
//  "rate_shortfall": null or {"asked","achieved"},
//  "server": null or {"pid","cpu_us_per_rt","rss_bytes","user_share"},
//  "histogram": base64 HdrHistogram V2 compressed encoding of the whole run, in ns}
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

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

// Open loop only: the generator could not send at the asked rate (rates per second).
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
  std::optional<double> rate;  // total messages/s asked (--rate), none = closed loop
  uint64_t hosts = 1;          // how many runs were merged into this one

  uint64_t round_trips = 0;
  uint64_t bytes = 0;  // payload bytes echoed back and verified
  double elapsed_s = 0;
  double rt_per_s = 0;
  double mb_per_s = 0;  // 10^6 bytes per second
  LatencySummary latency_us;
  ErrorCounts errors;
  std::optional<RateShortfall> rate_shortfall;
  std::optional<ServerStats> server;

  Histogram histogram;  // whole measured run, nanoseconds

  // Member spellings of the free functions below.
  std::string to_json() const;
  std::string format_summary() const;
};

// Fills rt_per_s, mb_per_s (from round_trips, bytes and elapsed_s) and latency_us
// (from histogram). The bench runner calls it once at the end of a run.
void finalize(BenchResult& r);
LatencySummary summarize_latency(const Histogram& h);

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

}  // namespace eco::bench
