#pragma once
// A protocol stage: what a connection runs instead of the plain echo (TLS, HTTP,
// WebSocket). Like the rest of session/ it makes no system calls: the engine reads bytes
// and hands them to ConnRules::input(), which gives them to the connection's stage; what
// the stage writes goes through its StageIo into the connection's out queue, which the
// engine sends as it sends any queued bytes. So every engine serves every stage with the
// code it already has for a slow reader.
//
//   engine recv ──▶ ConnRules::input ──▶ Stage::input ──▶ StageIo::write ──▶ out queue ──▶ engine send
//                                                         (payload_in / payload_out: limits, counts)
//   out queue drained ──▶ ConnRules::drained ──▶ Stage::resume
//
// Backpressure is the stage's room(): the engine never reads more than room() bytes for
// it, and a stage that cannot write (the queue is full) keeps what it has and reports
// less room, so the kernel's receive window pushes back on the client as for plain echo.
//
// Stages nest: TLS gives its inner stage (HTTP, WebSocket) a StageIo whose write()
// encrypts, so https:// and wss:// are TLS around the same stages.
#include <cstdint>
#include <memory>

#include "net/address.h"
#include "session/reject_reason.h"

namespace eco::session {

// What a stage may do to its connection while one of its calls runs.
class StageIo {
 public:
  virtual ~StageIo() = default;
  // Bytes write() takes now; 0: wait for resume().
  virtual uint32_t space() = 0;
  // Queues bytes for the peer (n <= space()). false: out of memory; return false too.
  virtual bool write(const char* data, uint32_t n) = 0;
  // Payload the peer sent (plaintext, a request's bytes): counted on the close line and
  // by the per-byte limits (--max-bytes, the rate per source, the idle deadline).
  // false: a limit ends the connection (its reason is set); return false.
  virtual bool payload_in(uint64_t n) = 0;
  // Payload sent back: counted on the close line.
  virtual void payload_out(uint64_t n) = 0;
  // The stage's own deadline (the factory's timeout and reason, e.g. a TLS handshake
  // or an HTTP request header): arm() starts it over from now, disarm() stops it.
  virtual void arm_deadline() = 0;
  virtual void disarm_deadline() = 0;
  virtual uint64_t now() const = 0;
  // The client (as PROXY protocol named it, if it did).
  virtual net::Address peer() const = 0;
};

class Stage {
 public:
  virtual ~Stage() = default;
  // Bytes the engine may read for it now (0: stop reading until resume() made room).
  virtual uint32_t room() const = 0;
  // Bytes from the peer: it takes all n (n <= room()). false: close now (close_reason()).
  virtual bool input(StageIo& io, const char* data, uint32_t n) = 0;
  // The out queue has room again: go on with what waits. false: close now.
  virtual bool resume(StageIo& io) = 0;
  // The peer shut down its write side. false: close now.
  virtual bool eof(StageIo& io) = 0;
  // Nothing more will be written: the connection closes once its out queue is empty.
  virtual bool finished() const = 0;
  // Why it ends the connection, for the close line ("" when it ended normally).
  virtual const char* close_reason() const = 0;
  // The connection is closing (for whatever reason): the stage's last word for the books.
  virtual void closing(StageIo& io) = 0;
};

// Makes the stage of each new connection of one kind of listener, one per loop thread.
class StageFactory {
 public:
  virtual ~StageFactory() = default;
  // Before the connection costs anything: a reason to refuse it (e.g. too many TLS
  // handshakes in progress), or Reject::count to take it.
  virtual Reject admit() = 0;
  // nullptr: out of memory (the connection closes).
  virtual std::unique_ptr<Stage> make(StageIo& io) = 0;
  // The StageIo deadline: how long, and why the connection closes when it passes.
  virtual uint64_t deadline_ns() const = 0;
  virtual Reject deadline_reason() const = 0;
};

// What a listener serves; the engines pass it from the listener to ConnRules::admit().
enum class Service : uint8_t { echo, tls_echo, count };
inline constexpr size_t kServices = size_t(Service::count);

}  // namespace eco::session
