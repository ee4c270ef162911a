#pragma once
// What `eco bench` was asked to do, after the CLI has parsed and validated it.
#include <cstdint>
#include <string>

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
  double rate = 0;          // total messages/s over all connections; 0 = closed loop
  double connect_rate = 0;  // new connections/s while ramping up; 0 = as fast as possible
  uint32_t conns_per_source = 20000;  // loopback: move to the next 127.0.0.x source after this many
  double timeout_s = 5;     // no progress on a connection with messages in flight for this long
  double grace_s = 2;       // after the run, how long in-flight echoes may still arrive
  bool verify = true;
  bool json = false;
  bool quiet = false;
  bool progress = true;     // live line (only when stderr is a tty)
  std::string hist_file;
  int server_pid = 0;
};

}  // namespace eco::bench
