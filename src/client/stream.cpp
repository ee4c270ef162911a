#include "client/stream.h"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "tls/endpoint.h"
#include "util/clock.h"

namespace eco::client {
namespace {

class PlainStream final : public Stream {
 public:
  explicit PlainStream(Fd fd) : Stream(std::move(fd)) {}
  Result<size_t> send(const char* p, size_t n) override {
    ssize_t s = ::send(fd(), p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (s >= 0) return size_t(s);
    if (errno == EAGAIN || errno == EINTR) return size_t(0);
    return Error{std::strerror(errno), errno};
  }
  Result<size_t> recv(char* p, size_t cap, bool& eof) override {
    ssize_t r = ::recv(fd(), p, cap, MSG_DONTWAIT);
    eof = r == 0;
    if (r >= 0) return size_t(r);
    if (errno == EAGAIN || errno == EINTR) return size_t(0);
    return Error{std::strerror(errno), errno};
  }
  Status shutdown_write() override {
    if (::shutdown(fd(), SHUT_WR) != 0) return Error{fmt::format("shutdown: {}", std::strerror(errno)), errno};
    return {};
  }
};

class TlsStream final : public Stream {
 public:
  TlsStream(Fd fd, tls::Endpoint ep, TlsInfo& info) : Stream(std::move(fd)), ep_(std::move(ep)), info_(info) {}

  Status flush() override {
    while (ep_.pending_output() > 0) {
      auto out = ep_.output();
      ssize_t s = ::send(fd(), out.data(), out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (s < 0 && (errno == EAGAIN || errno == EINTR)) return {};
      if (s < 0) return alert_or(Error{std::strerror(errno), errno});
      ep_.consume_output(size_t(s));
    }
    return {};
  }
  bool wants_write() const override { return ep_.pending_output() > 0; }
  bool half_close() const override { return false; }
  bool has_buffered() const override { return ep_.read_pending(); }

  Result<size_t> send(const char* p, size_t n) override {
    if (auto f = flush(); !f) return f.error();
    tls::IoResult r = ep_.write(p, n);
    if (r.status == tls::Io::error) return tls_error();
    if (auto f = flush(); !f) return f.error();
    return r.bytes;
  }

  Result<size_t> recv(char* p, size_t cap, bool& eof) override {
    eof = false;
    for (;;) {
      tls::IoResult r = ep_.read(p, cap);
      switch (r.status) {
        case tls::Io::ok: return r.bytes;
        case tls::Io::closed: eof = true; return size_t(0);
        case tls::Io::error:
          if (ep_.reason() == tls::Reason::no_close_notify) {  // the caller knows what it expected
            info_.clean_close = false;
            eof = true;
            return size_t(0);
          }
          return tls_error();
        case tls::Io::want_output:
          if (auto f = flush(); !f) return f.error();
          if (ep_.pending_output() > 0) return size_t(0);
          continue;
        case tls::Io::want_input: {
          if (auto f = flush(); !f) return f.error();  // e.g. a KeyUpdate answer
          auto space = ep_.input_space();
          ssize_t n = ::recv(fd(), space.data(), space.size(), MSG_DONTWAIT);
          if (n < 0 && (errno == EAGAIN || errno == EINTR)) return size_t(0);
          if (n < 0) return Error{std::strerror(errno), errno};
          if (n == 0) ep_.feed_eof();
          else ep_.commit_input(size_t(n));
          continue;
        }
      }
    }
  }

  Status shutdown_write() override {
    tls::IoResult r = ep_.shutdown();
    if (r.status == tls::Io::error) return tls_error();
    return flush();
  }

  // Drives the handshake until done, failed, or the deadline (monotonic ns).
  Status handshake(uint64_t deadline) {
    for (;;) {
      tls::IoResult r = ep_.handshake();
      if (auto f = flush(); !f) return f.error();
      if (r.status == tls::Io::ok) return {};
      if (r.status == tls::Io::error) return Error{detail(), EPROTO};
      uint64_t now = now_ns();
      if (now >= deadline) return Error{"timed out", ETIMEDOUT};
      pollfd p{fd(), short(POLLIN | (ep_.pending_output() ? POLLOUT : 0)), 0};
      int n = ::poll(&p, 1, int(std::min<uint64_t>((deadline - now) / 1'000'000 + 1, 100)));
      if (n < 0 && errno != EINTR) return Error{std::strerror(errno), errno};
      if (n > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR))) {
        auto space = ep_.input_space();
        ssize_t got = ::recv(fd(), space.data(), space.size(), MSG_DONTWAIT);
        if (got < 0 && errno != EAGAIN && errno != EINTR) return Error{std::strerror(errno), errno};
        if (got == 0) ep_.feed_eof();
        if (got > 0) ep_.commit_input(size_t(got));
      }
    }
  }

  const tls::Endpoint& endpoint() const { return ep_; }

 private:
  // A server that refuses us (a TLS 1.3 client certificate it rejects) sends an alert and
  // closes; our next send then meets a reset. The alert says why: read it if it came.
  Error alert_or(Error e) {
    char sink[4096];
    for (int i = 0; i < 64; ++i) {
      auto space = ep_.input_space();
      ssize_t n = ::recv(fd(), space.data(), space.size(), MSG_DONTWAIT);
      if (n <= 0) break;
      ep_.commit_input(size_t(n));
    }
    tls::IoResult r;
    do r = ep_.read(sink, sizeof sink);
    while (r.status == tls::Io::ok);
    return r.status == tls::Io::error ? tls_error() : e;
  }

  Error tls_error() const {
    return Error{fmt::format("TLS {}: {}", ep_.handshake_done() ? "error" : "handshake failed", detail()), EPROTO};
  }
  // What went wrong, and what to try when that is clear.
  std::string detail() const {
    std::string hint;
    switch (ep_.reason()) {
      case tls::Reason::server_cert_untrusted: hint = " (trust its CA with --tls-ca FILE, or --tls-insecure)"; break;
      case tls::Reason::handshake_failed:
      case tls::Reason::handshake_eof:
        if (!ep_.handshake_done()) hint = " (is the server speaking TLS?)";
        break;
      default: break;
    }
    return ep_.error_text() + hint;
  }

  tls::Endpoint ep_;
  TlsInfo& info_;
};

}  // namespace

std::unique_ptr<Stream> plain_stream(Fd fd) { return std::make_unique<PlainStream>(std::move(fd)); }

Result<std::unique_ptr<tls::ClientContext>> tls_for_target(const net::HostPort& hp, bool udp,
                                                            const tls::ClientSettings& settings, bool flags_given) {
  if (udp && hp.tls) return Error{"TLS runs over TCP: --udp does not go with a tls:// address"};
  if (flags_given && !hp.tls)
    return Error{fmt::format("--tls-* flags apply to tls:// addresses (did you mean tls://{}?)", net::format_host_port(hp))};
  if (!hp.tls) return std::unique_ptr<tls::ClientContext>();
  return tls::ClientContext::create(settings);
}

Result<std::unique_ptr<Stream>> tls_stream(Fd fd, tls::ClientContext& ctx, const std::string& host,
                                           const std::string& peer, int timeout_ms, TlsInfo& info) {
  uint64_t start = now_ns();
  auto s = std::make_unique<TlsStream>(std::move(fd), tls::Endpoint::client(ctx, host), info);
  if (auto h = s->handshake(start + uint64_t(timeout_ms) * 1'000'000); !h)
    return Error{fmt::format("TLS handshake with {} failed: {}", peer, h.error().message), h.error().code};
  info.handshake_ms = double(now_ns() - start) / 1e6;
  const tls::Endpoint& ep = s->endpoint();
  info.version = ep.version();
  info.cipher = ep.cipher();
  info.alpn = std::string(ep.alpn());
  info.resumed = ep.resumed();
  return std::unique_ptr<Stream>(std::move(s));
}

}  // namespace eco::client
