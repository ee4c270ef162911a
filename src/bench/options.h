#pragma once
// What `eco bench` was asked to do, after the CLI has parsed it, and the checks that
// refuse contradictory requests before anything runs.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tls/client_context.h"
#include "util/result.h"

namespace eco::bench {

// rr: request/echo on persistent connections; crr: a new connection per request
// (netperf TCP_CRR); stream: keep a deep window of messages in flight (throughput).
enum class Mode { rr, crr, stream };
const char* mode_name(Mode m);

struct BenchOptions {
  std::string target = "127.0.0.1:5346";
  bool udp = false;
  Mode mode = Mode::rr;
  uint32_t conns = 1;
  uint32_t depth = 1;       // messages in flight per connection (closed loop)
  uint32_t size = 64;       // bytes per message
  uint32_t threads = 1;
  double duration_s = 10;
  double warmup_s = 1;
  // Open loop, in the mode's unit (rate_unit): rr messages/s, crr new connections/s,
  // stream bytes/s. 0 = closed loop.
  double rate = 0;
  double connect_rate = 0;  // new connections/s while ramping up; 0 = as fast as possible
  uint32_t conns_per_source = 20000;  // loopback: move to the next 127.0.0.x source after this many
  bool conns_per_source_given = false;
  std::vector<std::string> source_ips;  // --source-ip: connections spread over these, round robin
  double timeout_s = 5;     // no progress on a connection with messages in flight for this long
  double grace_s = 2;       // after the run, how long in-flight echoes may still arrive
  bool verify = true;
  bool text = false;        // --payload text: printable lines (bench/payload.h)
  bool json = false;
  bool quiet = false;
  bool progress = true;     // live line (only when stderr is a tty)
  std::string hist_file;
  std::string csv_file;     // one line per interval
  std::vector<double> percentiles = {50, 90, 99, 99.9, 99.99};
  int server_pid = 0;
  uint32_t reps = 1;                  // --reps: run the same load this many times
  std::optional<double> cooldown_s;   // pause between repetitions or search steps
  double confidence = 95;             // level of the repetitions' intervals, percent
  std::string find_rate;              // --find-rate SLO, e.g. "p99<1ms"
  tls::ClientSettings tls;            // tls:// targets: --tls-ca, --tls-resume, ...
  bool tls_flags = false;             // some --tls-* flag was given (they need a tls:// target)
};

// "msg/s", "conn/s" or "B/s": what --rate counts in this mode.
const char* rate_unit(Mode m);
// The open-loop schedule's events per second over all connections (messages, or
// for crr connections) for `rate` in the mode's unit.
double schedule_rate(const BenchOptions& o, double rate);

// "2000", "2.5k", "50M", "1G" (decimal: k = 1,000), optionally followed by "/s".
Result<double> parse_rate(std::string_view text);
// "50,90,99,99.9": each in (0, 100], at most 16.
Result<std::vector<double>> parse_percentiles(std::string_view text);
// "99.9" for 99.9, "50" for 50: how a percentile is named in JSON keys and columns.
std::string percentile_label(double p);

// One line naming what is wrong, or nothing: contradictory or impossible options
// (the CLI prints it and exits 2). `udp` is the protocol the target resolved to.
std::optional<std::string> validate(const BenchOptions& o, bool udp);

}  // namespace eco::bench
