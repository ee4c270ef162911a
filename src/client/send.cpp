#include "client/send.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "client/repr.h"
#include "client/stream.h"
#include "net/socket.h"
#include "util/clock.h"
#include "util/exit_codes.h"
#include "util/fd.h"

namespace eco::client {
namespace {

constexpr size_t kWindow = 4 << 20;     // most bytes sent but not yet seen echoed
constexpr size_t kChunk = 64 << 10;     // one read from the source or the socket
constexpr size_t kReprLimit = 4096;     // longer echoes get a summary, not a repr
constexpr size_t kMaxUdpPayload = 65507;
constexpr uint64_t kFinGraceNs = 300'000'000;  // after a full echo, how long to wait for the FIN

int fail(int code, const std::string& msg) {
  fmt::print(stderr, "eco: {}\n", msg);
  return code;
}

// Where the bytes to send come from: the message, or a file descriptor read as we go.
struct Source {
  std::string_view message;
  size_t message_pos = 0;
  Fd owned;
  int fd = -1;
  bool eof = false;

  // Appends up to `room` bytes to dst; returns -1 on read error (errno set).
  ssize_t read(char* dst, size_t room) {
    if (fd < 0) {
      size_t n = std::min(room, message.size() - message_pos);
      std::memcpy(dst, message.data() + message_pos, n);
      message_pos += n;
      eof = message_pos == message.size();
      return ssize_t(n);
    }
    ssize_t n;
    do n = ::read(fd, dst, room);
    while (n < 0 && errno == EINTR);
    if (n == 0) eof = true;
    return n;
  }
};

// Bytes read from the source: [verified, sent) await their echo, [sent, filled) await sending.
struct Window {
  std::vector<char> buf = std::vector<char>(kWindow);
  size_t verified = 0, sent = 0, filled = 0;

  void compact() {
    if (verified == 0) return;
    std::memmove(buf.data(), buf.data() + verified, filled - verified);
    sent -= verified;
    filled -= verified;
    verified = 0;
  }
};

struct Outcome {
  uint64_t total_sent = 0, total_echoed = 0;
  std::string first_bytes;  // the echo, kept for the repr when it is short
};

void keep_for_repr(Outcome& o, const char* p, size_t n) {
  if (o.first_bytes.size() <= kReprLimit) o.first_bytes.append(p, std::min(n, kReprLimit + 1 - o.first_bytes.size()));
}

int report_success(const SendOptions& opts, const Outcome& o, const std::string& peer, double ms, bool short_text) {
  if (opts.raw) return kExitOk;
  if (short_text && o.first_bytes.size() <= kReprLimit) {
    fmt::print("Received: {}\n", python_bytes_repr(o.first_bytes));
  } else {
    fmt::print("Echoed {} bytes from {} in {:.3f} ms: identical\n", o.total_echoed, peer, ms);
  }
  return kExitOk;
}

Status write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return sys_error("write to stdout");
    }
    p += w;
    n -= size_t(w);
  }
  return {};
}

int mismatch(uint64_t offset, unsigned char want, unsigned char got) {
  return fail(kExitMismatch, fmt::format("echo differs at byte {}: sent 0x{:02x}, received 0x{:02x}", offset,
                                         want, got));
}

// Connects to the first address that answers; over TLS, runs the handshake too.
Result<std::unique_ptr<Stream>> open_stream(tls::ClientContext* tls_ctx, const std::vector<net::Address>& addrs,
                                            const std::string& host, std::string& peer, int timeout_ms) {
  auto conn = net::connect_tcp_any(addrs, timeout_ms);
  if (!conn) return conn.error();
  (void)net::set_nodelay(conn->fd.get());
  peer = conn->addr.to_string();
  if (!tls_ctx) return plain_stream(std::move(conn->fd));
  TlsInfo info;
  return tls_stream(std::move(conn->fd), *tls_ctx, host, peer, timeout_ms, info);
}

int send_stream(const SendOptions& opts, tls::ClientContext* tls_ctx, const std::vector<net::Address>& addrs,
                const std::string& host, Source& src, bool short_text) {
  const int timeout_ms = int(std::lround(opts.timeout_s * 1000));
  uint64_t started = now_ns();
  std::string peer;
  auto opened = open_stream(tls_ctx, addrs, host, peer, timeout_ms);
  if (!opened) return fail(kExitConnection, opened.error().message);
  Stream& st = **opened;
  const int fd = st.fd();

  Window w;
  Outcome o;
  bool shut = false, peer_eof = false;
  std::vector<char> rbuf(kChunk);
  uint64_t last_progress = now_ns();
  for (;;) {
    if (src.eof && w.sent == w.filled && !shut && (st.half_close() || w.verified == w.filled)) {
      // Everything is sent: half-close so the server knows, and finishes its echo (over TLS,
      // close_notify once the echo is all back: it ends the connection).
      if (auto s = st.shutdown_write(); !s) return fail(kExitConnection, fmt::format("{}: {}", peer, s.error().message));
      shut = true;
    }
    if (shut && w.verified == w.filled && peer_eof) break;

    if (!src.eof && w.filled + kChunk > kWindow) w.compact();
    bool want_input = !src.eof && w.filled < kWindow;
    if (want_input && src.fd < 0) {  // the message never blocks: take it now
      w.filled += size_t(src.read(w.buf.data() + w.filled, kWindow - w.filled));
      want_input = false;
    }
    // The socket and the input are waited on together: a slow stdin never holds up the echo.
    // Bytes the TLS layer already holds are read without waiting.
    bool buffered = st.has_buffered();
    pollfd fds[2] = {{fd, short(POLLIN | (w.sent < w.filled || st.wants_write() ? POLLOUT : 0)), 0}, {src.fd, POLLIN, 0}};
    int n = ::poll(fds, want_input ? 2 : 1, buffered ? 0 : 100);
    if (n < 0 && errno != EINTR) return fail(kExitConnection, sys_error("poll").message);
    pollfd& p = fds[0];
    if (buffered) p.revents |= POLLIN;
    if (n > 0 && want_input && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
      ssize_t r = src.read(w.buf.data() + w.filled, std::min(kChunk, kWindow - w.filled));
      if (r < 0) return fail(kExitUsage, fmt::format("cannot read input: {}", std::strerror(errno)));
      w.filled += size_t(r);
    }
    if (p.revents & POLLOUT) {
      if (auto f = st.flush(); !f) return fail(kExitConnection, fmt::format("sending to {}: {}", peer, f.error().message));
    }
    if ((p.revents & POLLOUT) && w.sent < w.filled) {
      auto s = st.send(w.buf.data() + w.sent, w.filled - w.sent);
      if (!s) return fail(kExitConnection, fmt::format("sending to {}: {}", peer, s.error().message));
      if (*s > 0) {
        w.sent += *s;
        o.total_sent += *s;
        last_progress = now_ns();
      }
    }
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      bool eof = false;
      auto r = st.recv(rbuf.data(), rbuf.size(), eof);
      if (!r)
        return fail(kExitConnection, fmt::format("receiving from {}: {} after {} of {} bytes echoed", peer,
                                                 r.error().message, o.total_echoed, o.total_sent));
      if (eof) {
        peer_eof = true;
        if (w.verified < w.filled || !src.eof)
          return fail(kExitMismatch, fmt::format("{} closed the connection after echoing {} of {} bytes", peer,
                                                 o.total_echoed, o.total_sent + (w.filled - w.sent)));
      }
      if (*r > 0) {
        size_t got = *r;
        if (got > w.sent - w.verified) {
          return fail(kExitMismatch, fmt::format("{} sent back more than it was sent ({} bytes extra)", peer,
                                                 got - (w.sent - w.verified)));
        }
        const char* want = w.buf.data() + w.verified;
        for (size_t i = 0; i < got; ++i) {
          if (want[i] != rbuf[i])
            return mismatch(o.total_echoed + i, static_cast<unsigned char>(want[i]),
                            static_cast<unsigned char>(rbuf[i]));
        }
        if (opts.raw) {
          if (auto s = write_all(STDOUT_FILENO, rbuf.data(), got); !s) return fail(kExitConnection, s.error().message);
        } else {
          keep_for_repr(o, rbuf.data(), got);
        }
        w.verified += got;
        o.total_echoed += got;
        last_progress = now_ns();
        if (w.verified == w.filled && w.verified > kWindow / 2) w.verified = w.sent = w.filled = 0;
      }
    }
    // All echoed: wait a moment for the server's FIN (bytes beyond the echo would be an
    // error worth reporting), but a server that keeps the connection open after a full
    // echo is within RFC 862, so its silence is success, not a --timeout wait.
    if (shut && w.verified == w.filled && !st.wants_write() && now_ns() - last_progress > kFinGraceNs) break;
    if (now_ns() - last_progress > uint64_t(timeout_ms) * 1'000'000) {
      return fail(kExitConnection, fmt::format("timed out after {:g} s waiting for the echo from {} ({} of {} bytes back)",
                                               opts.timeout_s, peer, o.total_echoed, o.total_sent));
    }
  }
  return report_success(opts, o, tls_ctx ? "tls://" + peer : peer, double(now_ns() - started) / 1e6, short_text);
}

int send_udp(const SendOptions& opts, const net::Address& addr, Source& src, bool short_text) {
  if (src.fd < 0 && src.message.size() > kMaxUdpPayload)
    return fail(kExitUsage, fmt::format("message of {} bytes does not fit one UDP datagram (at most {})",
                                        src.message.size(), kMaxUdpPayload));
  uint64_t started = now_ns();
  auto conn = net::connect_udp(addr);
  if (!conn) return fail(kExitConnection, conn.error().message);
  int fd = conn->get();
  std::string peer = addr.to_string();
  const int timeout_ms = int(std::lround(opts.timeout_s * 1000));
  std::vector<char> out(kMaxUdpPayload), in(65536);
  Outcome o;
  // Stop and wait: one datagram out, its echo back, compared, then the next.
  bool first = true;
  while (!src.eof || first) {
    size_t len = 0;
    while (!src.eof && len < kMaxUdpPayload) {
      ssize_t n = src.read(out.data() + len, kMaxUdpPayload - len);
      if (n < 0) return fail(kExitUsage, fmt::format("cannot read input: {}", std::strerror(errno)));
      len += size_t(n);
    }
    if (!first && len == 0) break;
    first = false;
    if (::send(fd, out.data(), len, 0) != ssize_t(len))
      return fail(kExitConnection, fmt::format("sending to udp://{}: {}", peer, std::strerror(errno)));
    o.total_sent += len;
    pollfd p{fd, POLLIN, 0};
    int n;
    do n = ::poll(&p, 1, timeout_ms);
    while (n < 0 && errno == EINTR);
    if (n == 0)
      return fail(kExitConnection, fmt::format("timed out after {:g} s waiting for the echo from udp://{}",
                                               opts.timeout_s, peer));
    ssize_t r = ::recv(fd, in.data(), in.size(), MSG_TRUNC);
    if (r < 0)
      return fail(kExitConnection, fmt::format("receiving from udp://{}: {}", peer, std::strerror(errno)));
    if (size_t(r) != len)
      return fail(kExitMismatch, fmt::format("echoed datagram has {} bytes, sent {}", r, len));
    for (size_t i = 0; i < len; ++i)
      if (in[i] != out[i])
        return mismatch(o.total_echoed + i, static_cast<unsigned char>(out[i]), static_cast<unsigned char>(in[i]));
    if (opts.raw) {
      if (auto s = write_all(STDOUT_FILENO, in.data(), len); !s) return fail(kExitConnection, s.error().message);
    } else {
      keep_for_repr(o, in.data(), len);
    }
    o.total_echoed += len;
  }
  return report_success(opts, o, "udp://" + peer, double(now_ns() - started) / 1e6, short_text);
}

}  // namespace

int send(const SendOptions& opts) {
  auto hp = net::parse_host_port(opts.target, true);
  if (!hp) return fail(kExitUsage, hp.error().message);
  bool udp = opts.udp || (hp->has_scheme && hp->proto == net::Proto::udp);
  auto tls_ctx = tls_for_target(*hp, udp, opts.tls, opts.tls_flags);
  if (!tls_ctx) return fail(kExitUsage, tls_ctx.error().message);
  auto addrs = net::resolve(*hp, udp ? net::Proto::udp : net::Proto::tcp, false);
  if (!addrs) return fail(kExitUsage, addrs.error().message);

  Source src;
  bool short_text = opts.file.empty();
  if (opts.file == "-") {
    src.fd = STDIN_FILENO;
  } else if (!opts.file.empty()) {
    src.owned.reset(::open(opts.file.c_str(), O_RDONLY | O_CLOEXEC));
    if (!src.owned.valid()) return fail(kExitUsage, fmt::format("cannot open '{}': {}", opts.file, std::strerror(errno)));
    src.fd = src.owned.get();
  } else {
    src.message = opts.message;
    src.eof = opts.message.empty();
  }
  if (udp) return send_udp(opts, addrs->front(), src, short_text);
  return send_stream(opts, tls_ctx->get(), *addrs, hp->host, src, short_text);
}

}  // namespace eco::client
