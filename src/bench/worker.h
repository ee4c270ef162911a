#pragma once
// What one bench thread is given and what it hands back. Each thread owns its loop,
// its connections and its histograms; the main thread only reads the few relaxed
// counters (stored once per loop turn) and the once-per-tick interval histogram
// below (behind a mutex that the worker takes ten times a second, never per message).
#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>

#include "bench/connector.h"
#include "bench/histogram.h"
#include "bench/options.h"
#include "bench/result.h"
#include "bench/transport.h"
#include "bench/tls_transport.h"
#include "net/address.h"

namespace eco::bench {

// The run's timeline, shared read-only by every thread (monotonic ns).
struct Timeline {
  uint64_t start = 0;
  uint64_t measure_from = 0;  // start + warmup
  uint64_t end = 0;           // measure_from + duration: no new messages after this
  uint64_t hard_stop = 0;     // end + grace: in-flight echoes still missing are timeouts
};

struct WorkerPlan {
  const BenchOptions* opts = nullptr;
  net::Address target;
  const Transport* transport = &kTcpTransport;
  const TlsTarget* tls = nullptr;  // with kTlsTransport: the context and server name
  SourcePlan sources;
  uint32_t index = 0;      // thread number
  uint32_t first_conn = 0; // global id of this thread's first connection
  uint32_t conns = 0;
  double rate = 0;         // this thread's share of the open-loop schedule (events/s), 0 = closed loop
  double connect_rate = 0; // this thread's share of --connect-rate
  Timeline time;
  const std::atomic<bool>* interrupted = nullptr;  // SIGINT: finish now
};

// Live view for the progress line and the per-interval outputs.
struct WorkerLive {
  std::atomic<uint64_t> round_trips{0};
  std::atomic<uint64_t> bytes{0};
  std::array<std::atomic<uint64_t>, kErrorKinds> errors{};
  std::atomic<bool> done{false};
  std::mutex mu;
  Histogram interval;  // samples since the main thread last took them
};

struct WorkerResult {
  Histogram hist;                // every sample in the measured window
  uint64_t round_trips = 0;      // echoes completed and verified in the window
  uint64_t bytes = 0;            // echoed bytes received in the window
  uint64_t scheduled = 0;        // open loop: messages due in the window
  uint64_t connected = 0;        // connections that ever got established
  uint64_t slot_waits = 0;       // crr open loop: connections due while every slot was busy
  Histogram connect;             // TCP: connect() until established, per connection
  Histogram first_echo;          // TCP: connect() until the first echoed byte
  Histogram handshake;           // TLS: TCP established until the handshake finished
  uint64_t handshakes = 0;       // TLS handshakes counted in `handshake`, and how many resumed
  uint64_t resumed = 0;
  const char* tls_version = "";  // of the last handshake
  const char* tls_cipher = "";
  ErrorCounts errors;
  std::string first_error;       // one example message, for the summary
  std::string fatal;             // setup failure (epoll, fd limit): the run is void
};

void run_tcp_worker(const WorkerPlan& plan, WorkerLive& live, WorkerResult& out);
void run_udp_worker(const WorkerPlan& plan, WorkerLive& live, WorkerResult& out);

}  // namespace eco::bench
