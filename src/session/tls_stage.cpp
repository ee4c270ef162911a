#include "session/tls_stage.h"

#include <algorithm>
#include <cstring>

#include "util/log.h"

namespace eco::session {

TlsStages::TlsStages(const tls::ServerContext& ctx, Counters& counters)
    : cache_(ctx),
      counters_(counters),
      deadline_ns_(uint64_t(ctx.settings().handshake_timeout_s * 1e9)),
      max_handshakes_(ctx.settings().max_handshakes),
      scratch_(new char[kScratch]) {}

Reject TlsStages::admit() {
  // A handshake costs the server far more than the client (key exchange, signature):
  // past the bound, new connections are refused at once rather than queued.
  if (max_handshakes_ && handshaking >= max_handshakes_) return Reject::handshake_limit;
  return Reject::count;
}

std::unique_ptr<Stage> TlsStages::make(StageIo& io) {
  auto st = std::make_unique<TlsEchoStage>(*this, tls::Endpoint::server(cache_.get()));
  ++handshaking;
  io.arm_deadline();
  return st;
}

uint32_t TlsEchoStage::room() const {
  if (done_ || eof_) return 0;
  return uint32_t(ep_.input_space().size());
}

bool TlsEchoStage::input(StageIo& io, const char* data, uint32_t n) {
  // The engine read at most room(): the endpoint takes all of it.
  size_t fed = ep_.feed(data, n);
  if (fed < n) {
    reason_ = "internal error: TLS input over its bound";
    done_ = true;
    return false;
  }
  return pump(io);
}

bool TlsEchoStage::eof(StageIo& io) {
  eof_ = true;
  ep_.feed_eof();
  return pump(io);
}

// Runs the endpoint as far as it goes: handshake, then decrypt, echo, encrypt, until it
// needs input or the out queue is full. false: out of memory or a limit closed it.
bool TlsEchoStage::pump(StageIo& io) {
  for (;;) {
    if (!move_output(io)) return !oom_;
    if (done_) return true;
    if (handshaking_) {
      tls::IoResult r = ep_.handshake();
      if (r.status == tls::Io::ok) {
        established(io);
        continue;
      }
      if (r.status == tls::Io::want_output) {
        check_output(io);
        continue;
      }
      if (r.status == tls::Io::want_input) return true;
      fail(io);
      continue;  // the alert goes out first
    }
    if (!plain_.empty()) {
      // What write() did not take last time goes first (OpenSSL's retry rule).
      tls::IoResult w = ep_.write(plain_.data(), plain_.size());
      if (w.status == tls::Io::ok) {
        echoed(io, w.bytes);
        plain_.erase(0, w.bytes);
        continue;
      }
      if (w.status == tls::Io::want_output) check_output(io);
      else fail(io);
      continue;
    }
    tls::IoResult r = ep_.read(f_.scratch(), TlsStages::kScratch);
    switch (r.status) {
      case tls::Io::ok:
        if (!io.payload_in(r.bytes)) return false;  // --max-bytes: its reason is set
        if (!echo(io, f_.scratch(), r.bytes)) fail(io);
        continue;
      case tls::Io::want_input:
        return true;
      case tls::Io::want_output:
        check_output(io);
        continue;
      case tls::Io::closed: {
        // close_notify: the peer's half-close. Everything read went back; answer with ours.
        tls::IoResult s = ep_.shutdown();
        if (s.status == tls::Io::want_output) {
          check_output(io);
          continue;
        }
        done_ = true;
        continue;
      }
      case tls::Io::error:
        fail(io);
        continue;
    }
  }
}

bool TlsEchoStage::echo(StageIo& io, const char* plain, size_t n) {
  tls::IoResult w = ep_.write(plain, n);
  size_t taken = w.status == tls::Io::ok ? w.bytes : 0;
  if (w.status != tls::Io::ok && w.status != tls::Io::want_output) return false;
  if (taken) echoed(io, taken);
  if (taken < n) plain_.assign(plain + taken, n - taken);
  return true;
}

// Plaintext the endpoint took: echoed, for the close line, the limits and /metrics.
void TlsEchoStage::echoed(StageIo& io, size_t n) {
  io.payload_out(n);
  f_.counters().add(f_.counters().tls_bytes, n);
}

bool TlsEchoStage::move_output(StageIo& io) {
  while (ep_.pending_output() > 0) {
    uint32_t space = io.space();
    if (space == 0) return false;
    std::span<const char> out = ep_.output();
    uint32_t n = uint32_t(std::min<size_t>(out.size(), space));
    if (!io.write(out.data(), n)) {
      oom_ = true;
      return false;
    }
    ep_.consume_output(n);
  }
  return true;
}

void TlsEchoStage::established(StageIo& io) {
  handshaking_ = false;
  --f_.handshaking;
  io.disarm_deadline();
  Counters& c = f_.counters();
  c.add(c.tls_active, 1);
  c.add(ep_.resumed() ? c.tls_resumed : c.tls_full, 1);
  if (std::strcmp(ep_.version(), "TLSv1.3") == 0) c.add(c.tls_v13, 1);
  else c.add(c.tls_v12, 1);
  if (ep_.peer_has_cert()) c.add(c.tls_client_certs, 1);
  if (log::enabled(log::Level::info)) {
    std::string sni = ep_.sni().empty() ? "no SNI" : "SNI " + std::string(ep_.sni());
    std::string alpn = ep_.alpn().empty() ? "" : ", ALPN " + std::string(ep_.alpn());
    std::string cert = ep_.peer_has_cert() ? ", client " + ep_.peer_subject() : "";
    log::info("TLS with {}: {} {}, {}{}{}{}", io.peer().to_string(), ep_.version(), ep_.cipher(), sni, alpn,
              ep_.resumed() ? ", resumed" : "", cert);
  }
}

// want_output with nothing to send would spin: an endpoint fault, not the peer's.
void TlsEchoStage::check_output(StageIo& io) {
  if (ep_.pending_output() == 0) fail(io);
}

void TlsEchoStage::fail(StageIo& io) {
  done_ = true;
  tls::Reason r = ep_.reason();
  if (r == tls::Reason::none) r = tls::Reason::internal;
  reason_ = tls::reason_name(r);
  f_.counters().add(f_.counters().tls_failed[size_t(r)], 1);
  log::debug("TLS with {}: {} ({})", io.peer().to_string(), reason_, ep_.error_text());
}

void TlsEchoStage::closing(StageIo&) {
  if (handshaking_) {
    handshaking_ = false;
    --f_.handshaking;
  } else {
    f_.counters().sub(f_.counters().tls_active, 1);
  }
}

}  // namespace eco::session
