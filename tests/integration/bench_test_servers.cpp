#include "bench_test_servers.h"

#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <random>
#include <string>

#include "net/socket.h"
#include "util/clock.h"

namespace eco::itest {
namespace {

// Sleeps to the nanosecond deadline (absolute, so no drift; in steps of at most
// 10 ms so a stopping server is not held up).
void sleep_until_ns(uint64_t t, const std::atomic<bool>& stop) {
  for (uint64_t now = now_ns(); now < t && !stop.load(); now = now_ns()) {
    uint64_t until = std::min(t, now + 10'000'000);
    timespec ts{time_t(until / 1'000'000'000), long(until % 1'000'000'000)};
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr);
  }
}

bool write_all(int fd, const char* p, size_t n, const std::atomic<bool>& stop) {
  while (n > 0 && !stop.load()) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        pollfd pf{fd, POLLOUT, 0};
        ::poll(&pf, 1, 50);
        continue;
      }
      return false;
    }
    p += w;
    n -= size_t(w);
  }
  return n == 0;
}

}  // namespace

TestEchoServer::TestEchoServer(Misbehavior how, int delay_ms) : TestEchoServer(how, ServerShape{.delay_ms = delay_ms}) {}

TestEchoServer::TestEchoServer(Misbehavior how, const ServerShape& shape) : how_(how), shape_(shape) {
  net::HostPort hp{"127.0.0.1", 0};
  auto addrs = net::resolve(hp, net::Proto::tcp, true);
  if (!addrs) return;
  auto fd = net::listen_socket(addrs->front(), net::Proto::tcp, {});
  if (!fd) return;
  auto local = net::local_address(fd->get());
  if (!local) return;
  port_ = local->port();
  listener_ = std::move(*fd);
  acceptor_ = std::thread([this] { accept_loop(); });
}

TestEchoServer::~TestEchoServer() {
  stop_.store(true);
  if (acceptor_.joinable()) acceptor_.join();
  std::lock_guard lock(mu_);
  for (auto& t : threads_) t.join();
}

std::set<std::string> TestEchoServer::sources() {
  std::lock_guard lock(mu_);
  return sources_;
}

std::string TestEchoServer::address() const { return "127.0.0.1:" + std::to_string(port_); }

void TestEchoServer::accept_loop() {
  while (!stop_.load()) {
    pollfd p{listener_.get(), POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    int c = ::accept4(listener_.get(), reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC);
    if (c < 0) continue;
    std::string from = net::Address::from(reinterpret_cast<sockaddr*>(&peer), len).to_string();
    if (accepted_.fetch_add(1) == 0) stall_from_ns_.store(now_ns() + 1'500'000'000);
    (void)net::set_nodelay(c);
    std::lock_guard lock(mu_);
    sources_.insert(from.substr(0, from.rfind(':')));
    threads_.emplace_back([this, c] { serve(Fd(c)); });
  }
}

uint64_t TestEchoServer::serve_queue(uint64_t arrived, uint64_t messages) {
  std::lock_guard lock(queue_mu_);
  queue_free_at_ = std::max(queue_free_at_, arrived) + messages * uint64_t(shape_.service_us) * 1000;
  return queue_free_at_;
}

void TestEchoServer::serve(Fd conn) {
  // The delays are the truth the tests compare with: 1 µs timer slack, not 50 µs.
  (void)prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
  std::string buf(64 << 10, '\0');
  uint64_t reads = 0;
  uint64_t bytes = 0;
  std::mt19937 rng(uint32_t(accepted_.load()));
  std::uniform_real_distribution<double> jitter_ms(shape_.jitter_min_ms, shape_.jitter_max_ms);
  while (!stop_.load()) {
    pollfd p{conn.get(), POLLIN, 0};
    int n = ::poll(&p, 1, 50);
    if (n <= 0) continue;
    ssize_t r = ::recv(conn.get(), buf.data(), buf.size(), 0);
    if (r <= 0) return;
    const uint64_t arrived = now_ns();
    ++reads;
    switch (how_) {
      case Misbehavior::none:
        break;
      case Misbehavior::delay:
        sleep_until_ns(arrived + uint64_t(shape_.delay_ms) * 1'000'000, stop_);
        break;
      case Misbehavior::jitter:
        sleep_until_ns(arrived + uint64_t(jitter_ms(rng) * 1e6), stop_);
        break;
      case Misbehavior::capacity: {
        uint64_t before = bytes / shape_.message_size;
        bytes += uint64_t(r);
        sleep_until_ns(serve_queue(arrived, bytes / shape_.message_size - before), stop_);
        break;
      }
      case Misbehavior::stall_once: {
        uint64_t from = stall_from_ns_.load();
        if (arrived >= from && arrived < from + 1'000'000'000) sleep_until_ns(from + 1'000'000'000, stop_);
        break;
      }
      case Misbehavior::flip:
        if (reads % 20 == 0) buf[0] = char(buf[0] ^ 0x01);
        break;
      case Misbehavior::reset:
        if (reads > 5) {
          (void)net::set_linger_reset(conn.get());
          return;  // closing with SO_LINGER 0 sends RST
        }
        break;
      case Misbehavior::blackhole:
        continue;
    }
    if (!write_all(conn.get(), buf.data(), size_t(r), stop_)) return;
  }
}

}  // namespace eco::itest
