#pragma once
// How a bench loop opens, reads, writes and closes one connection: a small table of
// functions per transport, as wrk's net.c has it. Plain TCP and UDP are its rows; a
// TLS row wraps the TCP one (its handshake in `establish`, its records in `read` and
// `write`, its state in Link::session: bench/tls_transport.h) without the loops changing.
#include <cstddef>
#include <cstdint>

#include "net/address.h"
#include "util/fd.h"
#include "util/result.h"

namespace eco::bench {

// What a transport call did. retry: nothing now, wait for readiness (EAGAIN, or a
// handshake that needs the peer); closed: the peer's EOF (TCP).
enum class Io : uint8_t { ok, retry, closed, error };

struct IoResult {
  Io status = Io::ok;
  size_t bytes = 0;         // ok: bytes moved (a UDP read: the datagram's whole length)
  int err = 0;              // error: the errno
  bool want_write = false;  // retry in establish: wait for writable, not readable
  const char* text = nullptr;  // error: the transport's own words (TLS), instead of strerror(err)
};

// What a transport with a handshake of its own (TLS) learnt while establishing.
struct Handshake {
  uint64_t transport_up = 0;  // when the TCP connect completed (monotonic ns); the handshake ran after
  uint64_t done = 0;          // when the handshake finished
  bool resumed = false;
  const char* version = "";   // static strings from the library
  const char* cipher = "";
};

// One connection as its transport sees it: the socket and, for a transport that
// keeps per-connection state (a TLS session), that state.
struct Link {
  Fd fd;
  void* session = nullptr;
};

struct Transport {
  const char* name;
  // Starts a non-blocking connect from `source` (any when null); on failure the
  // Error's code is the errno.
  Status (*open)(Link& link, const net::Address& target, const net::Address* source);
  // Called once the socket reports writable after open: ok = ready for messages.
  IoResult (*establish)(Link& link);
  IoResult (*read)(Link& link, uint8_t* buf, size_t len);
  IoResult (*write)(Link& link, const uint8_t* buf, size_t len);
  void (*close)(Link& link);
  // null for a transport with no handshake beyond TCP's; else what the last establish learnt.
  const Handshake* (*handshake)(const Link& link);
};

extern const Transport kTcpTransport;
extern const Transport kUdpTransport;

}  // namespace eco::bench
