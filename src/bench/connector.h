#pragma once
// Opening many client connections from one machine. One source address has ~28,000
// ephemeral ports towards one server address; for more, bench binds each socket to
// another loopback source (127.0.0.2, .3, ...) before connecting.
// TODO(net): start_connect belongs in net/socket.h (the one place for socket calls);
// it lives here until net/ offers a non-blocking connect with a source address.
#include <cstdint>

#include "net/address.h"
#include "util/fd.h"
#include "util/result.h"

namespace eco::bench {

// Starts a non-blocking TCP connect (EINPROGRESS is success); binds to `source`
// first when given (port chosen at connect time, so ports are per 4-tuple).
// On failure the Error's code is the errno.
Result<Fd> start_connect(const net::Address& target, const net::Address* source);

// Whether the connect on `fd` succeeded (0) or the errno it failed with.
int connect_result(int fd);

// Source addresses for a loopback IPv4 target: 127.0.0.1 + index (bench leaves index
// 0 to the kernel). False for other targets.
bool loopback_source(const net::Address& target, uint32_t index, net::Address& out);

// Raises RLIMIT_NOFILE so `needed` descriptors fit; explains what to do when the
// hard limit is too low.
Status raise_fd_limit(uint64_t needed);

}  // namespace eco::bench
