// `eco send` against servers that misbehave in each way it must catch (run in this
// process, on a thread), and against the real eco serve with large inputs.
#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <functional>
#include <thread>

#include "harness.h"
#include "net/socket.h"

namespace eco::itest {
namespace {

// A one-connection TCP (or one-exchange UDP) server on 127.0.0.1 with a scripted
// behaviour. The handler gets the connected (non-blocking) fd; everything is
// bounded so the thread always ends.
class FakeServer {
 public:
  FakeServer(net::Proto proto, std::function<void(int)> handler) {
    net::HostPort hp;
    hp.host = "127.0.0.1";
    hp.port = 0;
    auto addrs = net::resolve(hp, proto, true);
    if (!addrs) return;
    auto fd = net::listen_socket(addrs->front(), proto, {});
    if (!fd) return;
    listener_ = std::move(*fd);
    port_ = net::local_address(listener_.get())->port();
    thread_ = std::thread([this, proto, handler] {
      pollfd p{listener_.get(), POLLIN, 0};
      if (::poll(&p, 1, 20000) != 1) return;
      if (proto == net::Proto::udp) return handler(listener_.get());
      Fd conn(::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
      if (conn.valid()) handler(conn.get());
    });
  }
  ~FakeServer() {
    if (thread_.joinable()) thread_.join();
  }
  uint16_t port() const { return port_; }
  std::string addr() const { return hostport("127.0.0.1", port_); }

 private:
  Fd listener_;
  uint16_t port_ = 0;
  std::thread thread_;
};

// Echoes through `mangle` until the client's EOF, then closes.
void echo_with(int fd, const std::function<void(std::string&, uint64_t)>& mangle) {
  uint64_t offset = 0;
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 10000) != 1) return;
    char buf[65536];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return;
    std::string chunk(buf, size_t(n));
    mangle(chunk, offset);
    offset += uint64_t(n);
    if (!send_all(fd, chunk, 10000)) return;
  }
}

TEST(SendClient, WrongBytesExitOne) {
  // Correct for the first 1000 bytes, then one byte flipped.
  FakeServer fake(net::Proto::tcp, [](int fd) {
    echo_with(fd, [](std::string& c, uint64_t off) {
      if (off <= 1000 && off + c.size() > 1000) c[1000 - off] = char(c[1000 - off] ^ 0x20);
    });
  });
  ASSERT_NE(fake.port(), 0);
  RunResult r = run_eco({"send", fake.addr(), std::string(3000, 'a')});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("differs at byte 1000"), std::string::npos) << r.err;
}

TEST(SendClient, WrongBytesInTutorialMessageExitOne) {
  FakeServer fake(net::Proto::tcp, [](int fd) {
    echo_with(fd, [](std::string& c, uint64_t) {
      for (char& ch : c) ch = char(std::toupper(static_cast<unsigned char>(ch)));
    });
  });
  RunResult r = run_eco({"send", fake.addr()});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(r.err.rfind("eco: ", 0), 0u) << r.err;
}

TEST(SendClient, ServerClosingEarlyExitsOne) {
  // Echoes half of what it got, then closes.
  FakeServer fake(net::Proto::tcp, [](int fd) {
    std::string got = read_exact(fd, 100, 10000);
    send_all(fd, got.substr(0, got.size() / 2));
  });
  RunResult r = run_eco({"send", fake.addr(), std::string(100, 'z')});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("closed the connection"), std::string::npos) << r.err;
}

TEST(SendClient, ServerClosingWithoutEchoExitsOne) {
  FakeServer fake(net::Proto::tcp, [](int fd) { read_exact(fd, 10, 10000); });
  RunResult r = run_eco({"send", fake.addr(), "0123456789"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
}

TEST(SendClient, ServerEchoingExtraBytesExitsOne) {
  FakeServer fake(net::Proto::tcp, [](int fd) {
    echo_with(fd, [](std::string& c, uint64_t) { c += "!"; });
  });
  RunResult r = run_eco({"send", fake.addr(), "hello"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
}

TEST(SendClient, ServerResettingExitsThree) {
  FakeServer fake(net::Proto::tcp, [](int fd) {
    read_exact(fd, 5, 10000);
    set_linger_rst(fd);
  });
  RunResult r = run_eco({"send", fake.addr(), "hello"});
  // A reset after some bytes is either a connection error (3) or a short echo (1), never success.
  EXPECT_TRUE(r.exit_code == 3 || r.exit_code == 1) << r.exit_code << " " << r.err;
}

TEST(SendClient, SilentServerTimesOutWithExitThree) {
  // Takes the bytes (and the client's FIN) and never answers nor closes: --timeout
  // bounds the wait.
  std::atomic<bool> quit{false};
  FakeServer fake(net::Proto::tcp, [&quit](int fd) {
    bool eof;
    read_to_eof(fd, 10000, eof);
    for (int i = 0; i < 1000 && !quit; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  });
  double t0 = now_ms();
  RunResult r = run_eco({"send", "--timeout", "500ms", fake.addr(), "anyone?"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("timed out"), std::string::npos) << r.err;
  EXPECT_LT(now_ms() - t0, 8000.0);
  quit = true;
}

TEST(SendClient, FullEchoFromServerThatStaysOpenSucceedsWithoutWaitingForTimeout) {
  // RFC 862 does not make the server close: once every byte is back, eco send is
  // done after a short grace for the FIN, not after --timeout.
  std::atomic<bool> quit{false};
  FakeServer fake(net::Proto::tcp, [&quit](int fd) {
    std::string got = read_exact(fd, 5, 10000);
    send_all(fd, got, 10000);
    for (int i = 0; i < 1500 && !quit; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  });
  double t0 = now_ms();
  RunResult r = run_eco({"send", "--timeout", "10s", fake.addr(), "hello"});
  double took = now_ms() - t0;
  quit = true;
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("hello"), std::string::npos) << r.out;
  EXPECT_LT(took, 5000.0) << "waited for --timeout instead of finishing after the full echo";
}

TEST(SendClient, ClosedPortExitsThree) {
  // Bind a port and do not listen: connecting is refused.
  net::HostPort hp;
  hp.host = "127.0.0.1";
  hp.port = 0;
  auto addrs = net::resolve(hp, net::Proto::udp, true);
  ASSERT_TRUE(addrs);
  auto fd = net::listen_socket(addrs->front(), net::Proto::udp, {});  // holds the number, no TCP listener
  ASSERT_TRUE(fd);
  uint16_t port = net::local_address(fd->get())->port();
  RunResult r = run_eco({"send", hostport("127.0.0.1", port)});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("refused"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");
}

TEST(SendClient, UdpWrongEchoExitsOne) {
  FakeServer fake(net::Proto::udp, [](int fd) {
    char buf[2048];
    sockaddr_storage from{};
    socklen_t len = sizeof from;
    ssize_t n = ::recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
    if (n <= 0) return;
    buf[0] = char(buf[0] ^ 1);
    ::sendto(fd, buf, size_t(n), 0, reinterpret_cast<sockaddr*>(&from), len);
  });
  RunResult r = run_eco({"send", "--udp", fake.addr(), "datagram"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
}

TEST(SendClient, UdpSilentServerTimesOutWithExitThree) {
  FakeServer fake(net::Proto::udp, [](int fd) {
    char buf[2048];
    (void)::recv(fd, buf, sizeof buf, 0);
  });
  RunResult r = run_eco({"send", "--udp", "--timeout", "300ms", fake.addr(), "datagram"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
}

// Against the real server, per engine.
using SendAgainstServer = EngineTest;

TEST_P(SendAgainstServer, FileOfSeveralMiBExitsZero) {
  Server* srv = start_server({.extra = {"--quiet"}});
  ASSERT_TRUE(srv);
  TempDir dir;
  std::string data = random_bytes(6u << 20, 21);
  ASSERT_TRUE(write_file(dir.file("in.bin"), data));
  RunResult r = run_eco({"send", "--file", dir.file("in.bin"), hostport("127.0.0.1", srv->port())});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("Echoed 6291456 bytes"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("identical"), std::string::npos) << r.out;
}

TEST_P(SendAgainstServer, StdinOfSeveralMiBExitsZero) {
  Server* srv = start_server({.extra = {"--quiet"}});
  ASSERT_TRUE(srv);
  std::string data = random_bytes(5u << 20, 22);
  RunResult r = run_eco({"send", hostport("127.0.0.1", srv->port()), "-"}, data);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("Echoed 5242880 bytes"), std::string::npos) << r.out;
  r = run_eco({"send", "--file", "-", hostport("127.0.0.1", srv->port())}, data);
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST_P(SendAgainstServer, RawWritesTheExactBytes) {
  Server* srv = start_server({.extra = {"--quiet"}});
  ASSERT_TRUE(srv);
  TempDir dir;
  std::string data = random_bytes(3u << 20, 23);
  ASSERT_TRUE(write_file(dir.file("in.bin"), data));
  RunResult r = run_eco({"send", "--raw", "--file", dir.file("in.bin"), hostport("127.0.0.1", srv->port())});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.size(), data.size());
  EXPECT_TRUE(r.out == data) << "--raw output differs from the input";
  // A message: exactly its bytes, no "Received:", no newline added.
  r = run_eco({"send", "--raw", hostport("127.0.0.1", srv->port()), "just\tthis"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "just\tthis");
}

TEST_P(SendAgainstServer, EmptyMessageEchoesNothing) {
  Server* srv = start_server();
  ASSERT_TRUE(srv);
  RunResult r = run_eco({"send", hostport("127.0.0.1", srv->port()), ""});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "Received: b''\n");
}

TEST_P(SendAgainstServer, UdpFileSplitsIntoDatagrams) {
  Server* srv = start_server({.listen = {"udp://127.0.0.1:0"}});
  ASSERT_TRUE(srv);
  std::string data = random_bytes(200 * 1000, 24);  // four datagrams: 3 x 65507 + rest
  RunResult r = run_eco({"send", "--udp", "--raw", "--file", "-", hostport("127.0.0.1", srv->port())}, data);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(r.out == data);
}

ECO_ENGINE_SUITE(SendAgainstServer);

}  // namespace
}  // namespace eco::itest
