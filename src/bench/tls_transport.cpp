#include "bench/tls_transport.h"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "client/stream.h"
#include "net/socket.h"
#include "util/clock.h"

namespace eco::bench {
namespace {

TlsLink& tls_of(Link& link) { return *static_cast<TlsLink*>(link.session); }

IoResult tls_failure(TlsLink& t) {
  const tls::Endpoint& ep = *t.ep;
  std::string hint;
  if (ep.reason() == tls::Reason::server_cert_untrusted) hint = " (trust its CA with --tls-ca FILE, or --tls-insecure)";
  t.text = fmt::format("TLS {}: {}{}", ep.handshake_done() ? "error" : "handshake failed", ep.error_text(), hint);
  return {Io::error, 0, EPROTO, false, t.text.c_str()};
}

// Sends what the endpoint has to send. ok: all of it left (or the socket is full: the
// caller looks at pending_output()); error: the socket failed.
IoResult send_pending(Link& link, tls::Endpoint& ep) {
  while (ep.pending_output() > 0) {
    auto out = ep.output();
    ssize_t s = ::send(link.fd.get(), out.data(), out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (s < 0) {
      if (errno == EAGAIN || errno == EINTR) return {Io::ok};
      return {Io::error, 0, errno};
    }
    ep.consume_output(size_t(s));
  }
  return {Io::ok};
}

Status tls_open(Link& link, const net::Address& target, const net::Address* source) {
  TlsLink& t = tls_of(link);
  auto fd = net::start_connect(target, net::Proto::tcp, {.source = source, .nodelay = true});
  if (!fd) return fd.error();
  link.fd = std::move(*fd);
  t.ep.reset();  // the last connection's endpoint keeps its session in the context first
  t.ep.emplace(tls::Endpoint::client(*t.target->ctx, t.target->host));
  t.held = 0;
  t.hs = {};
  return {};
}

IoResult tls_establish(Link& link) {
  TlsLink& t = tls_of(link);
  tls::Endpoint& ep = *t.ep;
  if (t.hs.transport_up == 0) {
    if (int err = net::connect_error(link.fd.get()); err != 0) return {Io::error, 0, err};
    t.hs.transport_up = now_ns();
  }
  for (;;) {
    tls::IoResult r = ep.handshake();
    if (IoResult s = send_pending(link, ep); s.status != Io::ok) return s;
    switch (r.status) {
      case tls::Io::ok:
        // Ciphertext still unsent (our Finished, on a full socket) goes first with the next write.
        t.hs.done = now_ns();  // the loop's clock is the turn's: the handshake may have ended within it
        t.hs.resumed = ep.resumed();
        t.hs.version = ep.version();
        t.hs.cipher = ep.cipher();
        return {Io::ok};
      case tls::Io::error: return tls_failure(t);
      case tls::Io::want_output:
        if (ep.pending_output() > 0) return {Io::retry, 0, 0, true};
        continue;
      case tls::Io::closed:  // not a handshake outcome; treated as the peer going away
      case tls::Io::want_input: {
        auto space = ep.input_space();
        ssize_t n = ::recv(link.fd.get(), space.data(), space.size(), MSG_DONTWAIT);
        if (n < 0) {
          if (errno == EAGAIN || errno == EINTR) return {Io::retry, 0, 0, ep.pending_output() > 0};
          return {Io::error, 0, errno};
        }
        if (n == 0) ep.feed_eof();
        else ep.commit_input(size_t(n));
        continue;
      }
    }
  }
}

// Decrypts into buf until the socket has nothing more now. It receives only while buf
// has room for all the ciphertext the endpoint may hold (its input bound), so no complete
// record is ever left inside the endpoint when it returns: the loop waits on the socket
// (level-triggered), and decrypted bytes waiting in the endpoint would never wake it.
IoResult tls_read(Link& link, uint8_t* buf, size_t len) {
  TlsLink& t = tls_of(link);
  tls::Endpoint& ep = *t.ep;
  char* out = reinterpret_cast<char*>(buf);
  size_t total = 0;
  bool received = false;
  auto some_or = [&](IoResult r) { return total > 0 ? IoResult{Io::ok, total} : r; };
  for (;;) {
    tls::IoResult r = ep.read(out + total, len - total);
    switch (r.status) {
      case tls::Io::ok:
        total += r.bytes;
        if (total == len) return {Io::ok, total};
        continue;
      case tls::Io::closed: return some_or({Io::closed});
      case tls::Io::error:
        // Without close_notify the loop still knows whether echoes were missing.
        if (ep.reason() == tls::Reason::no_close_notify) return some_or({Io::closed});
        return some_or(tls_failure(t));
      case tls::Io::want_output:
        if (IoResult s = send_pending(link, ep); s.status != Io::ok) return some_or(s);
        if (ep.pending_output() > 0) return some_or({Io::retry});  // the next write sends it first
        continue;
      case tls::Io::want_input: {
        if (ep.pending_output() > 0)  // e.g. the answer to a KeyUpdate
          if (IoResult s = send_pending(link, ep); s.status != Io::ok) return some_or(s);
        // A short recv emptied the socket: a second one would only say EAGAIN.
        if (received && t.drained) return some_or({Io::retry});
        if (total > 0 && len - total < tls::Limits{}.input_cap) return {Io::ok, total};
        auto space = ep.input_space();
        ssize_t n = ::recv(link.fd.get(), space.data(), space.size(), MSG_DONTWAIT);
        if (n < 0) {
          if (errno == EAGAIN || errno == EINTR) return some_or({Io::retry});
          return some_or({Io::error, 0, errno});
        }
        received = true;
        t.drained = size_t(n) < space.size();
        if (n == 0) ep.feed_eof();
        else ep.commit_input(size_t(n));
        continue;
      }
    }
  }
}

// Reports bytes written only once their ciphertext has left: the loop then arms
// EPOLLOUT for what is still queued, and calls again with the same bytes (regenerated
// from the payload pattern), which are acknowledged without being encrypted twice.
IoResult tls_write(Link& link, const uint8_t* buf, size_t len) {
  TlsLink& t = tls_of(link);
  tls::Endpoint& ep = *t.ep;
  if (IoResult s = send_pending(link, ep); s.status != Io::ok) return s;
  if (ep.pending_output() > 0) return {Io::retry};
  if (t.held > 0) {
    size_t n = t.held;  // may be more than len after on_stop trimmed the target: they were sent
    t.held = 0;
    return {Io::ok, n};
  }
  tls::IoResult r = ep.write(reinterpret_cast<const char*>(buf), len);
  if (r.status == tls::Io::error) return tls_failure(t);
  if (IoResult s = send_pending(link, ep); s.status != Io::ok) return s;
  if (r.status != tls::Io::ok || r.bytes == 0) return {Io::retry};
  if (ep.pending_output() > 0) {
    t.held = r.bytes;
    return {Io::retry};
  }
  return {Io::ok, r.bytes};
}

void tls_close(Link& link) {
  if (!link.session) return;
  TlsLink& t = tls_of(link);
  if (t.ep && link.fd.valid() && t.ep->handshake_done()) {
    // close_notify, best effort: it ends the stream cleanly and lets the session resume.
    (void)t.ep->shutdown();
    (void)send_pending(link, *t.ep);
  }
  t.ep.reset();
  link.fd.reset();
}

const Handshake* tls_handshake(const Link& link) { return &static_cast<const TlsLink*>(link.session)->hs; }

}  // namespace

const Transport kTlsTransport{"tls", tls_open, tls_establish, tls_read, tls_write, tls_close, tls_handshake};

Status probe_tls(const net::Address& target, const TlsTarget& t, double timeout_s) {
  const int timeout_ms = int(timeout_s * 1000);
  const std::string peer = "tls://" + target.to_string();
  auto conn = net::connect_tcp_any({target}, timeout_ms);
  if (!conn) return Error{fmt::format("cannot connect to {}: {}", peer, conn.error().message), conn.error().code};
  client::TlsInfo info;
  auto st = client::tls_stream(std::move(conn->fd), *t.ctx, t.host, target.to_string(), timeout_ms, info);
  if (!st) return st.error();
  client::Stream& s = **st;
  if (!t.ctx->settings().resume) {
    (void)s.shutdown_write();
    return {};
  }
  // TLS 1.3 sends the ticket after the handshake: one echoed byte makes sure it came.
  const uint64_t deadline = now_ns() + uint64_t(timeout_ms) * 1'000'000;
  const char one = '\n';  // a line: line-based servers (gnutls-serv --echo) echo it too
  bool sent = false, eof = false;
  for (;;) {
    if (!sent) {
      auto w = s.send(&one, 1);
      if (!w) return Error{fmt::format("first connection to {}: {}", peer, w.error().message)};
      sent = *w == 1;
    } else if (auto f = s.flush(); !f) {
      return Error{fmt::format("first connection to {}: {}", peer, f.error().message)};
    }
    char b;
    auto r = s.recv(&b, 1, eof);
    if (!r) return Error{fmt::format("first connection to {}: {}", peer, r.error().message)};
    if (*r == 1) break;
    if (eof) return Error{fmt::format("first connection to {}: closed before echoing", peer)};
    uint64_t now = now_ns();
    if (now >= deadline) return Error{fmt::format("first connection to {}: no echo within {:g} s", peer, timeout_s)};
    pollfd p{s.fd(), short(POLLIN | (s.wants_write() || !sent ? POLLOUT : 0)), 0};
    if (::poll(&p, 1, 100) < 0 && errno != EINTR) return Error{std::strerror(errno), errno};
  }
  (void)s.shutdown_write();
  return {};
}

}  // namespace eco::bench
