#pragma once
// `eco ping`: ping(8) for echo servers. One probe at a time, one line per probe, and
// the statistics on count end or Ctrl-C. TCP probes go over one connection (its
// connect time is reported separately, and over TLS the handshake time too); UDP probes are datagrams carrying a sequence
// number, so late and duplicate replies are told apart from lost ones.
#include <cstdint>
#include <string>

#include "tls/client_context.h"

namespace eco::client {

struct PingOptions {
  std::string target = "127.0.0.1:5346";
  uint64_t count = 0;       // 0: until interrupted
  double interval_s = 1.0;  // between probe starts
  uint32_t size = 64;       // bytes per probe
  bool udp = false;
  double timeout_s = 2.0;   // per probe
  tls::ClientSettings tls;  // for a tls:// target (--tls-* flags); tls.resume: connect twice
  bool tls_flags = false;   // some --tls-* flag was given (an error without tls://)
};

// Returns the exit code: 0 every probe echoed intact, 1 an echo differed,
// 3 cannot connect or a probe was lost.
int ping(const PingOptions& opts);

}  // namespace eco::client
