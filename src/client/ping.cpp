#include "client/ping.h"

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include <fmt/format.h>

#include "bench/payload.h"
#include "client/stream.h"
#include "net/socket.h"
#include "util/clock.h"
#include "util/exit_codes.h"

namespace eco::client {
namespace {

std::atomic<bool> g_stop{false};
void on_sigint(int) { g_stop.store(true); }

int fail(int code, const std::string& msg) {
  fmt::print(stderr, "eco: {}\n", msg);
  return code;
}

struct Stats {
  uint64_t sent = 0, received = 0, mismatched = 0, duplicates = 0, late = 0;
  double min_ms = 0, max_ms = 0, sum = 0, sum_sq = 0;
  void add(double ms) {
    if (received == 0 || ms < min_ms) min_ms = ms;
    if (received == 0 || ms > max_ms) max_ms = ms;
    sum += ms;
    sum_sq += ms * ms;
    ++received;
  }
};

double ms_since(uint64_t t) { return double(now_ns() - t) / 1e6; }

// Waits for `fd` to be readable until `deadline` (monotonic ns); false on timeout or Ctrl-C.
bool wait_readable(int fd, uint64_t deadline) {
  for (;;) {
    uint64_t now = now_ns();
    if (now >= deadline || g_stop.load()) return false;
    pollfd p{fd, POLLIN, 0};
    int n = ::poll(&p, 1, int(std::min<uint64_t>((deadline - now + 999'999) / 1'000'000, 100)));
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) return false;
  }
}

// Sleeps until the next probe is due; false if interrupted.
bool sleep_until(uint64_t t) {
  for (uint64_t now = now_ns(); now < t; now = now_ns()) {
    if (g_stop.load()) return false;
    usleep(useconds_t(std::min<uint64_t>(t - now, 50'000'000) / 1000));
  }
  return !g_stop.load();
}

int summarize(const PingOptions& o, const std::string& peer, const Stats& s, double connect_ms,
              const std::string& tls_line = {}) {
  fmt::print("\n--- {} echo ping statistics ---\n", peer);
  double loss = s.sent ? 100.0 * double(s.sent - std::min(s.sent, s.received)) / double(s.sent) : 0;
  fmt::print("{} sent, {} received, {:g}% loss", s.sent, s.received, std::round(loss * 10) / 10);
  if (s.mismatched) fmt::print(", {} differed", s.mismatched);
  if (s.duplicates) fmt::print(", {} duplicates", s.duplicates);
  if (s.late) fmt::print(", {} late", s.late);
  fmt::print("\n");
  if (connect_ms >= 0) fmt::print("connect time {:.3f} ms\n", connect_ms);
  if (!tls_line.empty()) fmt::print("{}\n", tls_line);
  if (s.received > 0) {
    double avg = s.sum / double(s.received);
    double mdev = std::sqrt(std::max(0.0, s.sum_sq / double(s.received) - avg * avg));
    fmt::print("rtt min/avg/max/mdev = {:.3f}/{:.3f}/{:.3f}/{:.3f} ms\n", s.min_ms, avg, s.max_ms, mdev);
  }
  std::fflush(stdout);
  (void)o;
  if (s.mismatched) return kExitMismatch;
  if (s.received < s.sent) return kExitConnection;
  return kExitOk;
}

// Writes all of [p, p+n) before `deadline`; false with `err` set otherwise.
bool send_all(Stream& st, const uint8_t* p, size_t n, uint64_t deadline, std::string& err) {
  size_t off = 0;
  while (off < n || st.wants_write()) {
    auto w = off < n ? st.send(reinterpret_cast<const char*>(p) + off, n - off) : st.flush().ok() ? Result<size_t>(size_t(0))
                                                                                                 : Result<size_t>(Error{"send"});
    if (!w) {
      err = w.error().message;
      return false;
    }
    off += *w;
    if (off == n && !st.wants_write()) return true;
    uint64_t now = now_ns();
    if (now >= deadline || g_stop.load()) {
      err = "timed out sending";
      return false;
    }
    pollfd pf{st.fd(), POLLOUT, 0};
    if (::poll(&pf, 1, int(std::min<uint64_t>((deadline - now) / 1'000'000 + 1, 100))) < 0 && errno != EINTR) {
      err = std::strerror(errno);
      return false;
    }
  }
  return true;
}

// Connects and, over TLS, shakes hands. `connect_ms` excludes the handshake.
Result<std::unique_ptr<Stream>> open_stream(const std::vector<net::Address>& addrs, const std::string& host,
                                            tls::ClientContext* tls_ctx, int timeout_ms, std::string& peer,
                                            double& connect_ms, TlsInfo& info) {
  uint64_t t0 = now_ns();
  auto conn = net::connect_tcp_any(addrs, timeout_ms);
  if (!conn) return conn.error();
  connect_ms = ms_since(t0);
  (void)net::set_nodelay(conn->fd.get());
  peer = conn->addr.to_string();
  if (!tls_ctx) return plain_stream(std::move(conn->fd));
  return tls_stream(std::move(conn->fd), *tls_ctx, host, peer, timeout_ms, info);
}

// --tls-resume: a first connection whose only job is to get a session ticket (TLS 1.3
// sends it after the handshake, so one byte is echoed), closed in order so it can be resumed.
Result<double> fetch_session(const std::vector<net::Address>& addrs, const std::string& host, tls::ClientContext& ctx,
                             int timeout_ms) {
  std::string peer, err;
  double connect_ms = 0;
  TlsInfo info;
  auto st = open_stream(addrs, host, &ctx, timeout_ms, peer, connect_ms, info);
  if (!st) return st.error();
  const uint8_t one = '.';
  uint64_t deadline = now_ns() + uint64_t(timeout_ms) * 1'000'000;
  if (!send_all(**st, &one, 1, deadline, err)) return Error{fmt::format("first connection to {}: {}", peer, err)};
  char b;
  bool eof = false;
  for (size_t got = 0; got < 1;) {
    if (!(*st)->has_buffered() && !wait_readable((*st)->fd(), deadline))
      return Error{fmt::format("first connection to {}: no echo within {} ms", peer, timeout_ms)};
    auto r = (*st)->recv(&b, 1, eof);
    if (!r) return Error{fmt::format("first connection to {}: {}", peer, r.error().message)};
    if (eof) return Error{fmt::format("first connection to {}: closed by the server", peer)};
    got += *r;
  }
  (void)(*st)->shutdown_write();
  return info.handshake_ms;
}

int ping_tcp(const PingOptions& o, const std::vector<net::Address>& addrs, const std::string& host,
             tls::ClientContext* tls_ctx, uint32_t session) {
  const int timeout_ms = int(std::lround(o.timeout_s * 1000));
  double first_full_ms = -1;
  if (tls_ctx && o.tls.resume) {
    auto first = fetch_session(addrs, host, *tls_ctx, timeout_ms);
    if (!first) return fail(kExitConnection, first.error().message);
    first_full_ms = *first;
  }
  std::string peer;
  double connect_ms = 0;
  TlsInfo info;
  auto opened = open_stream(addrs, host, tls_ctx, timeout_ms, peer, connect_ms, info);
  if (!opened) return fail(kExitConnection, opened.error().message);
  Stream& st = **opened;
  const int fd = st.fd();
  std::string tls_line;
  if (tls_ctx) {
    std::string how = info.resumed                ? "resumed"
                      : first_full_ms >= 0        ? "full: the server did not resume the session"
                                                  : "full";
    tls_line = fmt::format("TLS handshake {:.3f} ms ({}, {}, {}{})", info.handshake_ms, info.version, info.cipher, how,
                           first_full_ms >= 0 ? fmt::format("; the first connection's full handshake {:.3f} ms",
                                                            first_full_ms)
                                              : "");
    peer = "tls://" + peer;
    fmt::print("ECHO PING {}: {} bytes per probe over {}, connected in {:.3f} ms, TLS handshake {:.3f} ms{}\n", peer,
               o.size, info.version, connect_ms, info.handshake_ms, info.resumed ? " (resumed)" : "");
  } else {
    fmt::print("ECHO PING {}: {} bytes per probe over TCP, connected in {:.3f} ms\n", peer, o.size, connect_ms);
  }
  std::fflush(stdout);

  std::vector<uint8_t> tx(o.size), rx(std::max<size_t>(o.size, 65536));
  Stats s;
  uint64_t recv_off = 0;  // stream offset of the next echoed byte (late echoes are skipped over)
  const uint64_t start = now_ns();
  for (uint64_t seq = 0; (o.count == 0 || seq < o.count) && !g_stop.load(); ++seq) {
    if (!sleep_until(start + uint64_t(double(seq) * o.interval_s * 1e9))) break;
    const uint64_t msg_off = seq * o.size;
    bench::fill_stream(session, o.size, msg_off, o.size, tx.data());
    uint64_t sent_at = now_ns();
    std::string err;
    if (!send_all(st, tx.data(), tx.size(), sent_at + uint64_t(o.timeout_s * 1e9), err)) {
      fmt::print("send failed: seq={} {}\n", seq, err);
      break;
    }
    ++s.sent;
    const uint64_t deadline = sent_at + uint64_t(o.timeout_s * 1e9);
    bool bad = false, closed = false;
    while (recv_off < msg_off + o.size) {
      if (!st.has_buffered() && !wait_readable(fd, deadline)) break;
      bool eof = false;
      auto got = st.recv(reinterpret_cast<char*>(rx.data()), std::min<uint64_t>(rx.size(), msg_off + o.size - recv_off), eof);
      if (!got || eof) {
        closed = true;
        fmt::print("{}: seq={} connection {}\n", peer, seq, !got ? got.error().message : "closed by the server");
        break;
      }
      if (*got == 0) continue;
      ssize_t r = ssize_t(*got);
      // Bytes of an earlier, timed-out probe are skipped; this probe's bytes are verified.
      size_t skip = recv_off < msg_off ? size_t(std::min<uint64_t>(msg_off - recv_off, uint64_t(r))) : 0;
      size_t mine = size_t(r) - skip;
      if (mine > 0 && bench::verify_stream(session, o.size, recv_off + skip, rx.data() + skip, mine) < mine) bad = true;
      recv_off += uint64_t(r);
    }
    if (closed) break;
    if (recv_off >= msg_off + o.size) {
      double ms = ms_since(sent_at);
      if (bad) {
        ++s.mismatched;
        fmt::print("{} bytes from {}: seq={} time={:.3f} ms (ECHO DIFFERS)\n", o.size, peer, seq, ms);
      } else {
        s.add(ms);
        fmt::print("{} bytes from {}: seq={} time={:.3f} ms\n", o.size, peer, seq, ms);
      }
    } else if (!g_stop.load()) {
      fmt::print("timeout: seq={} (no echo from {} within {:g} s)\n", seq, peer, o.timeout_s);
    } else {
      --s.sent;  // interrupted while waiting: not a lost probe
    }
    std::fflush(stdout);
  }
  (void)st.shutdown_write();  // TLS: close_notify, so the server sees an orderly close
  return summarize(o, peer, s, connect_ms, tls_line);
}

int ping_udp(const PingOptions& o, const net::Address& addr, uint32_t session) {
  if (o.size < bench::kHeaderBytes || o.size > 65507)
    return fail(kExitUsage, fmt::format("UDP probes need -s between {} and 65507 bytes (each carries its sequence "
                                        "number)", bench::kHeaderBytes));
  auto fd = net::connect_udp(addr);
  if (!fd) return fail(kExitConnection, fd.error().message);
  std::string peer = "udp://" + addr.to_string();
  fmt::print("ECHO PING {}: {} bytes per probe over UDP\n", peer, o.size);
  std::fflush(stdout);
  std::vector<uint8_t> tx(o.size), rx(65536);
  std::vector<uint64_t> sent_at;
  std::vector<bool> got;
  Stats s;
  const uint64_t start = now_ns();
  for (uint64_t seq = 0; (o.count == 0 || seq < o.count) && !g_stop.load(); ++seq) {
    if (!sleep_until(start + uint64_t(double(seq) * o.interval_s * 1e9))) break;
    bench::fill_stream(session, o.size, seq * o.size, o.size, tx.data());
    sent_at.push_back(now_ns());
    got.push_back(false);
    ++s.sent;
    if (::send(fd->get(), tx.data(), tx.size(), 0) < 0) {
      fmt::print("{}: seq={} {}\n", peer, seq, errno == ECONNREFUSED ? "port unreachable" : std::strerror(errno));
      std::fflush(stdout);
      continue;
    }
    const uint64_t deadline = sent_at.back() + uint64_t(o.timeout_s * 1e9);
    bool answered = false, unreachable = false;
    while (!answered && wait_readable(fd->get(), deadline)) {
      ssize_t r = ::recv(fd->get(), rx.data(), rx.size(), MSG_DONTWAIT | MSG_TRUNC);
      if (r < 0) {
        if (errno == EAGAIN || errno == EINTR) continue;
        if (errno == ECONNREFUSED) {  // ICMP port unreachable: nobody listens there
          unreachable = true;
          break;
        }
        fmt::print("{}: seq={} {}\n", peer, seq, std::strerror(errno));
        break;
      }
      uint32_t conn = 0;
      uint64_t rseq = 0;
      if (size_t(r) >= bench::kHeaderBytes) bench::read_header(rx.data(), conn, rseq);
      double ms = ms_since(rseq < sent_at.size() ? sent_at[rseq] : sent_at.back());
      if (size_t(r) != o.size || conn != session || rseq > seq ||
          bench::verify_stream(session, o.size, rseq * o.size, rx.data(), o.size) < o.size) {
        ++s.mismatched;
        fmt::print("{} bytes from {}: not a probe of ours or damaged (ECHO DIFFERS)\n", r, peer);
        continue;
      }
      if (got[rseq]) {
        ++s.duplicates;
        fmt::print("{} bytes from {}: seq={} time={:.3f} ms (DUP!)\n", r, peer, rseq, ms);
      } else if (rseq < seq) {
        got[rseq] = true;
        ++s.late;
        fmt::print("{} bytes from {}: seq={} time={:.3f} ms (late, after its timeout)\n", r, peer, rseq, ms);
      } else {
        got[rseq] = true;
        answered = true;
        s.add(ms);
        fmt::print("{} bytes from {}: seq={} time={:.3f} ms\n", r, peer, rseq, ms);
      }
    }
    if (unreachable) fmt::print("{}: seq={} port unreachable (nothing listens there)\n", peer, seq);
    else if (!answered && !g_stop.load()) fmt::print("timeout: seq={} (no echo from {} within {:g} s)\n", seq, peer, o.timeout_s);
    else if (!answered) --s.sent;
    std::fflush(stdout);
  }
  return summarize(o, peer, s, -1);
}

}  // namespace

int ping(const PingOptions& o) {
  auto hp = net::parse_host_port(o.target, true);
  if (!hp) return fail(kExitUsage, hp.error().message);
  bool udp = o.udp || (hp->has_scheme && hp->proto == net::Proto::udp);
  auto tls_ctx = tls_for_target(*hp, udp, o.tls, o.tls_flags);
  if (!tls_ctx) return fail(kExitUsage, tls_ctx.error().message);
  auto addrs = net::resolve(*hp, udp ? net::Proto::udp : net::Proto::tcp, false);
  if (!addrs) return fail(kExitUsage, addrs.error().message);
  if (o.size < 1) return fail(kExitUsage, "-s must be at least 1 byte");
  struct sigaction sa{}, old_sa{};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &old_sa);
  g_stop.store(false);
  uint32_t session = std::random_device{}();
  int rc = udp ? ping_udp(o, addrs->front(), session) : ping_tcp(o, *addrs, hp->host, tls_ctx->get(), session);
  sigaction(SIGINT, &old_sa, nullptr);
  return rc;
}

}  // namespace eco::client
