#pragma once
// The TLS echo stage (stage.h) over a sans-I/O tls::Endpoint: ciphertext from the engine
// is fed to the endpoint, the plaintext it yields is written straight back through it,
// and its ciphertext goes to the connection's out queue. No system calls, so epoll and
// io_uring serve TLS with the paths they have for queued bytes.
//
// Memory per connection is bounded: the endpoint's input and output bounds
// (tls::Limits), at most one record of plaintext the endpoint did not take yet, and the
// out queue (--buffer). room() is the endpoint's free input, so when the peer stops
// reading, output backs up, decryption stops, input fills and reading stops: TCP's
// window then pushes back on the peer, as for plain echo.
//
// TlsStages is the factory of one loop thread: its config cache (a reload reaches it
// with one atomic load per accept), the bound on handshakes in progress, the shared
// plaintext scratch buffer, and the loop's Counters.
#include <cstdint>
#include <memory>
#include <string>

#include "session/counters.h"
#include "session/stage.h"
#include "tls/endpoint.h"
#include "tls/server_context.h"

namespace eco::session {

class TlsStages final : public StageFactory {
 public:
  TlsStages(const tls::ServerContext& ctx, Counters& counters);

  Reject admit() override;
  std::unique_ptr<Stage> make(StageIo& io) override;
  uint64_t deadline_ns() const override { return deadline_ns_; }
  Reject deadline_reason() const override { return Reject::handshake_timeout; }

  // For the stages of this loop.
  static constexpr size_t kScratch = 16 << 10;  // one full record of plaintext
  char* scratch() { return scratch_.get(); }
  Counters& counters() { return counters_; }
  uint32_t handshaking = 0;  // connections of this loop in their handshake

 private:
  tls::ConfigCache cache_;
  Counters& counters_;
  uint64_t deadline_ns_;
  uint32_t max_handshakes_;
  std::unique_ptr<char[]> scratch_;
};

class TlsEchoStage final : public Stage {
 public:
  TlsEchoStage(TlsStages& f, tls::Endpoint ep) : f_(f), ep_(std::move(ep)) {}

  uint32_t room() const override;
  bool input(StageIo& io, const char* data, uint32_t n) override;
  bool resume(StageIo& io) override { return pump(io); }
  bool eof(StageIo& io) override;
  bool finished() const override { return done_ && ep_.pending_output() == 0; }
  const char* close_reason() const override { return reason_; }
  void closing(StageIo& io) override;

 private:
  bool pump(StageIo& io);
  bool move_output(StageIo& io);  // false: the out queue is full (wait) or out of memory
  bool echo(StageIo& io, const char* plain, size_t n);
  void echoed(StageIo& io, size_t n);
  void established(StageIo& io);
  void fail(StageIo& io);
  void check_output(StageIo& io);

  TlsStages& f_;
  mutable tls::Endpoint ep_;     // input_space() is not const, room() is
  std::string plain_;            // plaintext read but not yet taken by write() (one record at most)
  bool handshaking_ = true;
  bool done_ = false;            // nothing more to read: failed, or close_notify answered
  bool eof_ = false;
  bool oom_ = false;
  const char* reason_ = "";
};

}  // namespace eco::session
