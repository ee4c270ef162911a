#pragma once
// `eco serve`: binds the listeners, runs one engine loop per thread, handles
// SIGINT/SIGTERM (drain, then stop) and reports what was served.
#include <cstdint>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "tls/server_context.h"
#include "util/result.h"

namespace eco::server {

struct ServeConfig {
  std::vector<std::string> listen;  // "[tcp://|udp://|tls://]host:port"; empty: 127.0.0.1:5346
  bool udp = false;                 // also serve UDP on every TCP address
  unsigned threads = 0;             // 0: one per core
  std::string engine = "auto";
  engine::EngineConfig engine_config;
  double drain_timeout_s = 5.0;
  std::string port_file;
  // Operations: metrics endpoint, privilege drop, syscall filter.
  std::string metrics;      // --metrics HOST:PORT: Prometheus /metrics, /healthz, /readyz; empty: off
  std::string user, group;  // --user/--group: started as root, run as these once bound
  bool seccomp = false;     // --seccomp: allow-list of syscalls once serving
  // tls:// listeners: certificates, versions, client authentication, limits.
  tls::ServerSettings tls;
  bool tls_flags_given = false;  // a --tls-* flag was given (an error without tls://)
};

// Runs until a signal ends it. Returns the process exit code; startup failures are
// returned as an Error (the CLI prints it and exits 2 for bad input, 1 otherwise).
Result<int> serve(const ServeConfig& cfg);

}  // namespace eco::server
