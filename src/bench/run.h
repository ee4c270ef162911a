#pragma once
// One run of the load: a loop thread per --threads with its share of the connections
// and of the rate, the watcher on the calling thread (interval outputs, --server-pid
// samples at the window's edges), and the per-thread results merged once at the end.
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "bench/options.h"
#include "bench/progress.h"
#include "bench/result.h"
#include "bench/tls_transport.h"
#include "net/address.h"

namespace eco::bench {

// What stays the same over the runs of one invocation.
struct RunSetup {
  const BenchOptions* opts = nullptr;
  net::Address target;
  bool udp = false;
  const TlsTarget* tls = nullptr;     // tls:// targets
  std::vector<net::Address> sources;  // --source-ip, resolved and checked
  IntervalOutputs* outputs = nullptr;
  const std::atomic<bool>* interrupted = nullptr;
  uint64_t first_start = 0;  // when the first run began (monotonic ns): interval timestamps count from it
};

struct RunOutcome {
  BenchResult result;  // finalized
  uint64_t connected = 0;
  std::string first_error;
  std::string fatal;   // set up failed (epoll, sockets): the run is void
  double machine_us_per_rt = -1;
  bool interrupted = false;
};

// `rate` in the mode's unit (0: closed loop); `number` and `label` name the run in
// the interval outputs ("rep 2/5").
RunOutcome run_once(const RunSetup& setup, double rate, uint32_t number, const std::string& label);

}  // namespace eco::bench
