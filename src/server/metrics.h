#pragma once
// `--metrics ADDR`: Prometheus text format (0.0.4) at /metrics, and /healthz and
// /readyz, served by cpp-httplib on a thread of its own. The engines never see it:
// a scrape reads their per-thread counters (relaxed atomics) and sums them.
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "net/address.h"
#include "session/counters.h"
#include "util/result.h"

namespace eco::server {

// What a scrape reads; set once before start(), read-only afterwards.
struct MetricsSource {
  std::vector<const session::Counters*> counters;  // one per loop thread
  std::string engine;
};

// The counters of every loop summed, plus process facts.
struct MetricsSnapshot {
  session::Counters totals;
  std::string engine;
  double start_time_s = 0;  // Unix time eco serve started
  uint64_t rss_bytes = 0;
  double cpu_seconds = 0;
};

// Adds one loop's counters into `total` (a local sum, written by one thread): what a
// scrape and the exit summary read.
void add_into(session::Counters& total, const session::Counters& c);

// Prometheus text exposition format 0.0.4 (pure; the tests parse it back).
std::string render_metrics(const MetricsSnapshot& s);

class MetricsServer {
 public:
  // Binds ADDR ("host:port", "[v6]:port"; port 0 picks one) now, at start-up, so a
  // bad address fails before serving starts and a low port binds before privileges drop.
  static Result<std::unique_ptr<MetricsServer>> bind(const std::string& spec);
  ~MetricsServer();  // stops and joins the thread
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  const net::Address& address() const;
  // Starts the HTTP thread; returns once every thread it will ever use exists (so
  // a seccomp filter installed afterwards never has to allow creating one).
  Status start(MetricsSource source);
  // /readyz answers 503 from now on (SIGTERM: draining, then stopping).
  void set_draining();
  void stop();

  struct Impl;

 private:
  MetricsServer() = default;
  std::unique_ptr<Impl> impl_;
};

}  // namespace eco::server
