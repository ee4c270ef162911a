#pragma once
// Reads a PROXY protocol header off a socket without ever taking a byte past it:
// peek what is there, parse, then consume exactly the header (or, while incomplete,
// exactly what was peeked) into the caller's buffer of kProxyMaxHeader bytes. The
// bytes after the header stay in the socket, in order, for the echo path. Bounded:
// the buffer never holds more than the longest legal header.
#include <cstddef>
#include <cstdint>
#include <string>

#include "net/proxy_protocol.h"

namespace eco::net {

enum class ProxyStep {
  wait,     // incomplete (or nothing to read yet): call again when readable
  done,     // header consumed; `out` holds it
  invalid,  // malformed, or the peer closed before a complete header
  failed,   // socket error (errno-style message in `why`)
};

ProxyStep read_proxy_header(int fd, uint8_t* buf, size_t& have, ProxyHeader& out, std::string& why);

}  // namespace eco::net
