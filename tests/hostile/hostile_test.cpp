// Hostile clients, once per engine: slowloris, senders that never read, reset storms,
// half-open connections and floods above --max-conns. For each: the server's RSS stays
// under a stated bound, its fd count returns to the baseline, a well-behaved client
// connected all along keeps getting its echo (its latency is printed; only a generous
// hang guard is asserted), and an idle server does not spin (CPU from /proc/PID/stat).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "harness.h"

namespace eco::itest {
namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
// Hang guard for one echo of the well-behaved client (not a performance bound).
constexpr int kHangGuardMs = kSanitized ? 3000 : 1000;
// An idle second may cost at most this much server CPU (a busy loop costs ~1 s; 10,000
// stalled connections on a machine at load 14 measure up to 0.14).
constexpr double kIdleCpuSeconds = 0.25;

// A non-blocking connect from source address 127.0.0.<src> (so many connections do not
// run out of ephemeral ports on one source), with optional small buffers. The connect
// is left in progress; wait_connected() finishes a batch.
Fd start_connect(int src, uint16_t port, int rcvbuf = 0, int sndbuf = 0) {
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return fd;
  int one = 1;
  ::setsockopt(fd.get(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
  if (rcvbuf) ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  if (sndbuf) ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(0x7f000000u | uint32_t(src));
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return Fd();
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 && errno != EINPROGRESS) return Fd();
  return fd;
}

// Opens n connections in batches (the listen backlog is never overrun); false if any
// fails to connect within the bound.
bool open_many(std::vector<Fd>& out, size_t n, uint16_t port, int rcvbuf = 0, int sndbuf = 0) {
  constexpr size_t kBatch = 500;
  for (size_t done = 0; done < n;) {
    size_t batch = std::min(kBatch, n - done);
    std::vector<pollfd> pfds;
    for (size_t i = 0; i < batch; ++i) {
      Fd fd = start_connect(2 + int((done + i) % 200), port, rcvbuf, sndbuf);
      if (!fd.valid()) {
        ADD_FAILURE() << "connect #" << done + i << ": " << std::strerror(errno);
        return false;
      }
      pfds.push_back({fd.get(), POLLOUT, 0});
      out.push_back(std::move(fd));
    }
    double deadline = now_ms() + 10000;
    size_t pending = batch;
    while (pending > 0 && now_ms() < deadline) {
      if (::poll(pfds.data(), pfds.size(), 100) < 0 && errno != EINTR) return false;
      for (auto& p : pfds) {
        if (p.fd < 0 || !p.revents) continue;
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(p.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
          ADD_FAILURE() << "connect: " << std::strerror(err);
          return false;
        }
        p.fd = -1;
        --pending;
      }
    }
    if (pending) {
      ADD_FAILURE() << pending << " connects still pending after 10 s";
      return false;
    }
    done += batch;
  }
  return true;
}

// Closes with RST (no TIME_WAIT left behind to eat the next test's ports).
void close_all_rst(std::vector<Fd>& fds) {
  for (auto& fd : fds)
    if (fd.valid()) set_linger_rst(fd.get());
  fds.clear();
}

// The well-behaved client: one connection made before the storm, echoing 64 bytes every
// 20 ms on its own thread; records each round trip and fails on a lost or slow echo.
class Prober {
 public:
  explicit Prober(uint16_t port) : fd_(tcp_connect("127.0.0.1", port)) {
    thread_ = std::thread([this] {
      std::string msg = random_bytes(64, 99);
      while (!stop_) {
        double t0 = now_ms();
        if (!fd_.valid() || !echo_once(fd_.get(), msg, kHangGuardMs)) {
          failed_ = true;
          return;
        }
        lat_ms_.push_back(now_ms() - t0);
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    });
  }
  ~Prober() { finish(); }
  void finish() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  // After finish(): true if every echo came back within the hang guard; prints figures.
  bool report(const char* what) {
    finish();
    std::vector<double> l = lat_ms_;
    std::sort(l.begin(), l.end());
    double p50 = l.empty() ? 0 : l[l.size() / 2];
    double p99 = l.empty() ? 0 : l[std::min(l.size() - 1, l.size() * 99 / 100)];
    double mx = l.empty() ? 0 : l.back();
    std::printf("[ figures  ] %s: well-behaved client %zu echoes, p50 %.2f ms, p99 %.2f ms, max %.2f ms%s\n", what,
                l.size(), p50, p99, mx, failed_ ? " (an echo FAILED)" : "");
    ::testing::Test::RecordProperty("client_p99_ms", std::to_string(p99));
    return !failed_ && !l.empty();
  }

 private:
  Fd fd_;
  std::thread thread_;
  std::atomic<bool> stop_{false}, failed_{false};
  std::vector<double> lat_ms_;
};

double idle_cpu_seconds(pid_t pid) {
  double c0 = cpu_seconds(pid);
  std::this_thread::sleep_for(std::chrono::seconds(1));
  return cpu_seconds(pid) - c0;
}

// Waits (at most 10 s) until the server spends under 20 ms of CPU in a quarter second,
// then measures one second. After a test has pushed hundreds of MiB at the server, the
// kernel and the server are still moving it for a while (up to 0.3 s of CPU in the
// following second on a quiet machine, more on a loaded one); what must not happen is
// that the CPU never settles. A busy loop never settles, so it still fails.
double settled_idle_cpu_seconds(pid_t pid) {
  for (double deadline = now_ms() + 10000; now_ms() < deadline;) {
    double c0 = cpu_seconds(pid);
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    if (cpu_seconds(pid) - c0 < 0.02) break;
  }
  return idle_cpu_seconds(pid);
}

// Sends up to `bytes` without blocking; returns how many went.
size_t send_some(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n <= 0) break;
    off += size_t(n);
  }
  return off;
}

// Each case floods one server and measures a well-behaved client meanwhile; ctest runs
// them one at a time (RUN_SERIAL). Two 10,000-sender floods at once push the kernel's
// TCP memory past tcp_mem's pressure mark (437,000 pages seen, mark 383,869; one flood
// peaks near 240,000): sends then fail for want of memory, the sockmap engine's psocks
// retry every jiffy on the shared workqueue (870,000 work items in one run, against
// 22,000 alone) and the client's echo waited up to 355 ms; on epoll it can miss the 1 s guard.
using Hostile = EngineTest;

// RSS bounds (stated in docs/reliability.md): the server may grow by at most a fixed
// slack plus a per-connection allowance over its idle size. Sanitizer builds get more:
// ASan's shadow memory and quarantine multiply every allocation.
constexpr long kSlackKiB = kSanitized ? 256 * 1024 : 64 * 1024;
long rss_bound_kib(long base, size_t conns, long per_conn_kib) {
  return base + kSlackKiB + long(conns) * per_conn_kib * (kSanitized ? 3 : 1);
}

TEST_P(Hostile, SlowlorisFiveThousandOneBytePerSecond) {
  const size_t n = 5000;
  // sockmap echoes in the kernel and refuses per-byte limits such as --idle-timeout.
  const bool idle = GetParam() != "sockmap";
  std::vector<std::string> extra{"--threads", "2", "--quiet"};
  if (idle) extra.insert(extra.end(), {"--idle-timeout", "2s"});
  Server* srv = start_server({.extra = extra});
  ASSERT_TRUE(srv);
  const int base_fds = srv->settled_fd_count();
  const long base_rss = rss_kib(srv->pid());
  Prober probe(srv->port());
  std::vector<Fd> conns;
  ASSERT_TRUE(open_many(conns, n, srv->port()));
  // Three seconds of one byte per second on every connection (each second is under the
  // idle timeout: a slow client is not an idle one).
  for (int round = 0; round < 3; ++round) {
    double t0 = now_ms();
    for (auto& c : conns) ASSERT_EQ(::send(c.get(), "x", 1, MSG_NOSIGNAL | MSG_DONTWAIT), 1);
    double left = 1000 - (now_ms() - t0);
    if (left > 0) std::this_thread::sleep_for(std::chrono::milliseconds(int(left)));
  }
  const long rss = rss_kib(srv->pid());
  const int fds = fd_count(srv->pid());
  const double cpu = idle_cpu_seconds(srv->pid());
  std::printf("[ figures  ] slowloris x%zu: server RSS %ld -> %ld KiB, fds %d -> %d, CPU in an idle second %.3f s\n",
              n, base_rss, rss, base_fds, fds, cpu);
  EXPECT_LE(rss, rss_bound_kib(base_rss, n, 16));
  EXPECT_GE(fds, base_fds + int(n));  // every slow client was accepted, none refused
  EXPECT_LT(cpu, kIdleCpuSeconds) << "server busy while only slow clients are connected";
  if (idle) {
    // Once they go quiet, --idle-timeout closes every one of them: back to baseline with
    // the clients still open, and each client sees its echo then EOF.
    EXPECT_EQ(wait_fd_count(srv->pid(), base_fds + 1 /* the prober */, 15000), base_fds + 1);
    int eofs = 0;
    for (auto& c : conns) eofs += read_exact(c.get(), 4, 2000) == "xxx" && expect_eof(c.get(), 2000);
    EXPECT_EQ(eofs, int(n));
  } else {
    std::printf("[ note     ] no --idle-timeout with this engine: slow clients closed by the test instead\n");
  }
  close_all_rst(conns);
  EXPECT_TRUE(probe.report("slowloris"));
  EXPECT_EQ(wait_fd_count(srv->pid(), base_fds + 1, 10000), base_fds + 1);
}

// The heaviest: 10,000 connections that each send 32 KiB and never read (a 4 KiB
// receive buffer each, so the echo backs up into the server). The server must stop
// reading them (backpressure) instead of buffering without bound.
TEST_P(Hostile, TenThousandSendersThatNeverRead) {
  const size_t n = kSanitized ? 2000 : 10000;
  Server* srv = start_server({.extra = {"--threads", "2", "--quiet", "--buffer", "16K"}});
  ASSERT_TRUE(srv);
  const int base_fds = srv->settled_fd_count();
  const long base_rss = rss_kib(srv->pid());
  Prober probe(srv->port());
  std::vector<Fd> conns;
  ASSERT_TRUE(open_many(conns, n, srv->port(), 4096, 8192));
  const std::string chunk = random_bytes(32 * 1024, 5);
  size_t sent = 0;
  for (auto& c : conns) sent += send_some(c.get(), chunk);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // let the server fill what it will
  for (auto& c : conns) sent += send_some(c.get(), chunk);      // and try again
  const double cpu = settled_idle_cpu_seconds(srv->pid());
  const long rss = rss_kib(srv->pid());  // after the server has taken all it will
  std::printf("[ figures  ] never-read x%zu: %zu KiB sent, server RSS %ld -> %ld KiB (%.1f KiB/conn), "
              "CPU in a stalled second %.3f s\n",
              n, sent / 1024, base_rss, rss, double(rss - base_rss) / double(n), cpu);
  EXPECT_LE(rss, rss_bound_kib(base_rss, n, 40));  // --buffer 16K + bookkeeping, well under the 64 KiB sent
  // (What was sent mostly sits in kernel socket buffers, which the kernel bounds; the
  // RSS bound is what shows the server itself stopped reading.)
  EXPECT_LT(cpu, kIdleCpuSeconds) << "server spins on connections it cannot write to";
  close_all_rst(conns);
  EXPECT_TRUE(probe.report("never-read"));
  EXPECT_EQ(wait_fd_count(srv->pid(), base_fds + 1, 15000), base_fds + 1);
}

// 2,000 connections reset by their client while the server still has echo to send them.
TEST_P(Hostile, TwoThousandResetsMidEcho) {
  Server* srv = start_server({.extra = {"--threads", "2", "--quiet"}});
  ASSERT_TRUE(srv);
  const int base_fds = srv->settled_fd_count();
  const long base_rss = rss_kib(srv->pid());
  Prober probe(srv->port());
  const std::string chunk = random_bytes(48 * 1024, 6);
  for (int batch = 0; batch < 10; ++batch) {
    std::vector<Fd> conns;
    ASSERT_TRUE(open_many(conns, 200, srv->port(), 4096, 0));
    for (auto& c : conns) send_some(c.get(), chunk);
    close_all_rst(conns);
  }
  EXPECT_EQ(wait_fd_count(srv->pid(), base_fds + 1, 10000), base_fds + 1);
  const long rss = rss_kib(srv->pid());
  std::printf("[ figures  ] resets x2000: server RSS %ld -> %ld KiB\n", base_rss, rss);
  EXPECT_LE(rss, rss_bound_kib(base_rss, 200, 64));
  EXPECT_LT(idle_cpu_seconds(srv->pid()), kIdleCpuSeconds);
  EXPECT_TRUE(probe.report("resets"));
}

// Half-open: clients that send, shut down their write side and never read. The server
// must keep its end until the echo can be written (or --idle-timeout gives up), and
// must not spin on the EOF it already saw.
TEST_P(Hostile, HalfOpenClientsThatNeverRead) {
  const size_t n = 1000;
  // sockmap echoes in the kernel and refuses per-byte limits such as --idle-timeout.
  const bool idle = GetParam() != "sockmap";
  std::vector<std::string> extra{"--threads", "2", "--quiet"};
  if (idle) extra.insert(extra.end(), {"--idle-timeout", "2s"});
  Server* srv = start_server({.extra = extra});
  ASSERT_TRUE(srv);
  const int base_fds = srv->settled_fd_count();
  Prober probe(srv->port());
  std::vector<Fd> conns;
  ASSERT_TRUE(open_many(conns, n, srv->port(), 4096, 0));
  const std::string chunk = random_bytes(64 * 1024, 7);
  for (auto& c : conns) {
    send_some(c.get(), chunk);
    ::shutdown(c.get(), SHUT_WR);
  }
  const double cpu = settled_idle_cpu_seconds(srv->pid());
  std::printf("[ figures  ] half-open x%zu: CPU in a stalled second %.3f s\n", n, cpu);
  EXPECT_LT(cpu, kIdleCpuSeconds);
  if (idle) {
    EXPECT_EQ(wait_fd_count(srv->pid(), base_fds + 1, 15000), base_fds + 1);
  }
  close_all_rst(conns);
  EXPECT_TRUE(probe.report("half-open"));
  EXPECT_EQ(wait_fd_count(srv->pid(), base_fds + 1, 10000), base_fds + 1);
}

// A flood of connections above --max-conns: the server holds at most that many, the
// connection already in (the prober) is still served, and after the flood everything
// is back to the baseline.
TEST_P(Hostile, FloodAboveMaxConns) {
  const int max_conns = 200;
  Server* srv = start_server({.extra = {"--threads", "2", "--quiet", "--max-conns", std::to_string(max_conns)}});
  ASSERT_TRUE(srv);
  const int base_fds = srv->settled_fd_count();
  Prober probe(srv->port());
  std::vector<Fd> conns;
  ASSERT_TRUE(open_many(conns, 2000, srv->port()));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const int fds = fd_count(srv->pid());
  std::printf("[ figures  ] flood of 2000 over --max-conns %d: server fds %d (baseline %d)\n", max_conns, fds,
              base_fds);
  // The limit counts connections; the server may briefly hold one more while refusing it.
  EXPECT_LE(fds, base_fds + max_conns + 2);
  EXPECT_LT(idle_cpu_seconds(srv->pid()), kIdleCpuSeconds);
  close_all_rst(conns);
  EXPECT_TRUE(probe.report("flood"));
  EXPECT_EQ(wait_fd_count(srv->pid(), base_fds + 1, 10000), base_fds + 1);
  Fd after = tcp_connect("127.0.0.1", srv->port());
  ASSERT_TRUE(after.valid());
  EXPECT_TRUE(echo_once(after.get(), "served after the flood"));
}

ECO_ENGINE_SUITE(Hostile);

}  // namespace
}  // namespace eco::itest
