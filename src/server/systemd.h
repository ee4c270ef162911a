#pragma once
// systemd integration, by hand (no libsystemd needed): sockets passed by socket
// activation (sd_listen_fds(3): LISTEN_PID, LISTEN_FDS, fds from 3) and readiness /
// watchdog notifications (sd_notify(3): a datagram to $NOTIFY_SOCKET).
#include <cstdint>
#include <string_view>
#include <vector>

#include "net/address.h"
#include "util/fd.h"
#include "util/result.h"

namespace eco::server::systemd {

struct InheritedSocket {
  Fd fd;
  net::Address addr;
  net::Proto proto;
};

// The listening sockets systemd passed to this process (empty when not socket
// activated). Clears the LISTEN_* variables so children do not inherit them.
Result<std::vector<InheritedSocket>> inherited_sockets();

// Sends e.g. "READY=1" or "WATCHDOG=1"; a no-op without $NOTIFY_SOCKET.
void notify(std::string_view state);

// Half of $WATCHDOG_USEC in ns (how often to ping), or 0 when no watchdog is set.
uint64_t watchdog_ping_interval_ns();

}  // namespace eco::server::systemd
