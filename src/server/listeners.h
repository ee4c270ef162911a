#pragma once
// The listening sockets of `eco serve`: from --listen (bound once per loop thread) or
// from systemd (socket activation, shared by every thread), and the port file.
#include <cstdint>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "server/server.h"
#include "util/result.h"

namespace eco::server {

struct Endpoint {
  net::Address addr;
  net::Proto proto;
  bool tls = false;  // a tls:// listener (TCP)
  std::string host;  // as given in --listen, for the ephemeral certificate's names

  // "tcp", "udp" or "tls", for the log.
  const char* scheme() const { return tls ? "tls" : net::proto_name(proto); }
};

struct Bound {
  std::vector<Endpoint> endpoints;                    // what is served, for the log
  std::vector<std::vector<engine::Listener>> per_thread;  // each loop's own sockets
  uint16_t chosen_port = 0;  // the free port picked for port-0 endpoints (0: none)
};

// Socket activation when systemd passed sockets, else every --listen address once per
// thread (SO_REUSEPORT shards connections across the threads' sockets in the kernel).
Result<Bound> bind_listeners(const ServeConfig& cfg, unsigned threads);

// Written whole under a temporary name, then renamed: a reader never sees half a file.
Status write_port_file(const std::string& path, uint16_t port);

}  // namespace eco::server
