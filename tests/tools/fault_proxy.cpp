// fault_proxy: a test-only TCP proxy that injects the faults this kernel cannot (it
// has no tc netem): delay and jitter, re-segmentation into tiny writes, stalls, and
// resets. It sits between `eco send`/`eco bench` and `eco serve` in the fault tests
// (tests/faults/). It never changes a byte: every fault is about timing or framing,
// except --reset-after, which cuts the connection (both sides see a RST).
//
//   fault_proxy --listen 127.0.0.1:0 --upstream HOST:PORT [--port-file F]
//               [--delay-ms N] [--jitter-ms N] [--chunk N] [--stall-every BYTES --stall-ms N]
//               [--reset-after BYTES] [--max-seconds N]
//
// Bounded: it exits by itself after --max-seconds (default 120), and handles at most
// 256 connections at once (two blocking pump threads each; simple beats fast here).
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <thread>

#include "net/address.h"
#include "net/socket.h"
#include "util/fd.h"

namespace {

struct Options {
  std::string listen = "127.0.0.1:0", upstream, port_file;
  int delay_ms = 0, jitter_ms = 0, stall_ms = 0, max_seconds = 120;
  size_t chunk = 0, stall_every = 0, reset_after = 0;
};

Options opt;
std::atomic<int> live{0};
constexpr int kMaxLive = 256;

[[noreturn]] void die(const std::string& msg) {
  std::fprintf(stderr, "fault_proxy: %s\n", msg.c_str());
  std::exit(2);
}

bool send_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= size_t(w);
  }
  return true;
}

// Both sockets of one proxied connection. Whoever sees the reset threshold cuts both.
struct Pair {
  eco::Fd client, upstream;
  std::atomic<bool> cut{false};
  std::atomic<int> pumps{2};
};

// SO_LINGER 0 makes the final close() send RST; SHUT_RD (which sends nothing) wakes the
// other pump's recv so both pumps end and the last one's Pair closes both sockets.
void cut_both(Pair& p) {
  if (p.cut.exchange(true)) return;
  (void)eco::net::set_linger_reset(p.client.get());  // best effort: the peer may be gone already
  (void)eco::net::set_linger_reset(p.upstream.get());
  ::shutdown(p.client.get(), SHUT_RD);
  ::shutdown(p.upstream.get(), SHUT_RD);
}

// Copies from -> to with the configured faults; `count_reset` is the direction whose
// bytes count toward --reset-after (server to client: the echo).
void pump(std::shared_ptr<Pair> p, int from, int to, unsigned seed, bool count_reset) {
  std::minstd_rand rng(seed);
  char buf[16384];
  size_t total = 0, since_stall = 0;
  for (;;) {
    ssize_t n = ::recv(from, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (opt.delay_ms || opt.jitter_ms) {
      int d = opt.delay_ms + (opt.jitter_ms ? int(rng() % unsigned(opt.jitter_ms + 1)) : 0);
      std::this_thread::sleep_for(std::chrono::milliseconds(d));
    }
    size_t off = 0;
    bool ok = true;
    while (ok && off < size_t(n)) {
      size_t len = size_t(n) - off;
      if (opt.chunk) len = std::min(len, opt.chunk);
      if (opt.stall_every) len = std::min(len, opt.stall_every - since_stall);
      if (count_reset && opt.reset_after && total + len >= opt.reset_after) {
        // Forward exactly up to the threshold, then cut: the peer sees a partial echo and a RST.
        send_all(to, buf + off, opt.reset_after - total);
        cut_both(*p);
        ok = false;
        break;
      }
      ok = send_all(to, buf + off, len);
      off += len;
      total += len;
      since_stall += len;
      if (opt.stall_every && since_stall >= opt.stall_every) {
        since_stall = 0;
        std::this_thread::sleep_for(std::chrono::milliseconds(opt.stall_ms));
      }
    }
    if (!ok) break;
  }
  if (!p->cut.load()) ::shutdown(to, SHUT_WR);  // pass the half-close on
  if (--p->pumps == 0) live.fetch_sub(1);
}

int int_arg(const char* v) {
  char* end = nullptr;
  long x = std::strtol(v, &end, 10);
  if (!v[0] || *end || x < 0 || x > 1'000'000'000) die(std::string("bad number '") + v + "'");
  return int(x);
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) die("missing value for " + a);
    const char* v = argv[++i];
    if (a == "--listen") opt.listen = v;
    else if (a == "--upstream") opt.upstream = v;
    else if (a == "--port-file") opt.port_file = v;
    else if (a == "--delay-ms") opt.delay_ms = int_arg(v);
    else if (a == "--jitter-ms") opt.jitter_ms = int_arg(v);
    else if (a == "--chunk") opt.chunk = size_t(int_arg(v));
    else if (a == "--stall-every") opt.stall_every = size_t(int_arg(v));
    else if (a == "--stall-ms") opt.stall_ms = int_arg(v);
    else if (a == "--reset-after") opt.reset_after = size_t(int_arg(v));
    else if (a == "--max-seconds") opt.max_seconds = int_arg(v);
    else die("unknown option " + a);
  }
  if (opt.upstream.empty()) die("--upstream is required");
  ::signal(SIGPIPE, SIG_IGN);
  ::alarm(unsigned(opt.max_seconds));  // the bound: SIGALRM's default action ends the process

  auto lhp = eco::net::parse_host_port(opt.listen);
  auto uhp = eco::net::parse_host_port(opt.upstream);
  if (!lhp.ok()) die(lhp.error().message);
  if (!uhp.ok()) die(uhp.error().message);
  auto laddrs = eco::net::resolve(*lhp, eco::net::Proto::tcp, true);
  auto uaddrs = eco::net::resolve(*uhp, eco::net::Proto::tcp, false);
  if (!laddrs.ok()) die(laddrs.error().message);
  if (!uaddrs.ok()) die(uaddrs.error().message);
  auto lfd = eco::net::listen_socket(laddrs->front(), eco::net::Proto::tcp, {});
  if (!lfd.ok()) die(lfd.error().message);
  if (auto s = eco::net::set_nonblocking(lfd->get(), false); !s.ok()) die(s.error().message);
  auto bound = eco::net::local_address(lfd->get());
  if (!bound.ok()) die(bound.error().message);
  if (!opt.port_file.empty()) {
    std::string tmp = opt.port_file + ".tmp";
    FILE* f = std::fopen(tmp.c_str(), "w");
    if (!f || std::fprintf(f, "%u\n", unsigned(bound->port())) < 0 || std::fclose(f) != 0 ||
        std::rename(tmp.c_str(), opt.port_file.c_str()) != 0)
      die("cannot write " + opt.port_file);
  }
  std::fprintf(stderr, "fault_proxy: %s -> %s\n", bound->to_string().c_str(), opt.upstream.c_str());

  unsigned seed = 1;
  for (;;) {
    int c = ::accept4(lfd->get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) {
      if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE) {
        if (errno == EMFILE || errno == ENFILE) std::this_thread::sleep_for(std::chrono::milliseconds(10));
        continue;
      }
      die(std::string("accept: ") + std::strerror(errno));
    }
    auto p = std::make_shared<Pair>();
    p->client.reset(c);
    if (live.load() >= kMaxLive) continue;  // over the bound: the client sees a plain close
    auto up = eco::net::connect_tcp(uaddrs->front(), 5000, /*blocking=*/true);
    if (!up.ok()) {
      std::fprintf(stderr, "fault_proxy: upstream: %s\n", up.error().message.c_str());
      (void)eco::net::set_linger_reset(c);
      continue;
    }
    p->upstream = std::move(*up);
    // Small writes must leave as small segments (that is the point of --chunk).
    (void)eco::net::set_nodelay(p->client.get());
    (void)eco::net::set_nodelay(p->upstream.get());
    // A pump blocked sending to a peer that stopped reading gives up after 10 s (bounded).
    timeval tv{10, 0};
    ::setsockopt(p->client.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    ::setsockopt(p->upstream.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    live.fetch_add(1);
    std::thread(pump, p, p->client.get(), p->upstream.get(), seed++, false).detach();
    std::thread(pump, p, p->upstream.get(), p->client.get(), seed++, true).detach();
  }
}
