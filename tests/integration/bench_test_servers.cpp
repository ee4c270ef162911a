#include "bench_test_servers.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "net/socket.h"
#include "util/clock.h"

namespace eco::itest {
namespace {

void sleep_until_ns(uint64_t t, const std::atomic<bool>& stop) {
  for (uint64_t now = now_ns(); now < t && !stop.load(); now = now_ns())
    usleep(useconds_t(std::min<uint64_t>(t - now, 10'000'000) / 1000));
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

TestEchoServer::TestEchoServer(Misbehavior how, int delay_ms) : how_(how), delay_ms_(delay_ms) {
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

void TestEchoServer::serve(Fd conn) {
  std::string buf(64 << 10, '\0');
  uint64_t reads = 0;
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
        sleep_until_ns(arrived + uint64_t(delay_ms_) * 1'000'000, stop_);
        break;
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
