// systemd integration: socket activation (TCP and UDP), inetd mode, and sd_notify
// readiness/watchdog messages, through Debian's systemd-socket-activate.
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "harness.h"

extern char** environ;

namespace eco::itest {
namespace {

constexpr const char* kActivate = "/usr/bin/systemd-socket-activate";

// A free loopback port for the activator to bind. Taken from below the ephemeral range
// (32768+), where every client socket of the other tests running in parallel gets its
// source port, so the port cannot be taken by one of them before the activator binds.
uint16_t free_port(int type) {
  static unsigned seed = unsigned(getpid()) * 2654435761u;
  for (int attempt = 0; attempt < 200; ++attempt) {
    seed = seed * 1103515245u + 12345u;
    uint16_t port = uint16_t(20000 + (seed >> 8) % 12000);
    Fd fd(::socket(AF_INET, type | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) return port;
  }
  return 0;
}

// A child process with extra environment, killed and reaped on destruction.
class Child {
 public:
  Child(std::vector<std::string> argv, std::vector<std::string> env_extra, const std::string& log_path) {
    std::vector<std::string> env;
    for (char** e = environ; *e; ++e) env.emplace_back(*e);
    for (auto& e : env_extra) env.push_back(e);
    std::vector<char*> args, envp;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (posix_spawn(&pid_, args[0], &fa, nullptr, args.data(), envp.data()) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&fa);
  }
  ~Child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  bool ok() const { return pid_ > 0; }

 private:
  pid_t pid_ = -1;
};

// Polls until a TCP connect to the port succeeds (the activator is listening).
bool wait_listening(uint16_t port, int timeout_ms) {
  double end = now_ms() + timeout_ms;
  while (now_ms() < end) {
    int err = 0;
    Fd fd = tcp_connect_err("127.0.0.1", port, 200, err);
    if (fd.valid()) return true;
    usleep(20000);
  }
  return false;
}

class SystemdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access(kActivate, X_OK) != 0) GTEST_SKIP() << kActivate << " not installed (Debian package systemd)";
  }
  TempDir dir;
};

TEST_F(SystemdTest, SocketActivatedTcpEchoes) {
  uint16_t port = free_port(SOCK_STREAM);
  ASSERT_NE(port, 0);
  std::string log = dir.file("eco.log");
  Child c({kActivate, "-l", "127.0.0.1:" + std::to_string(port), eco_binary(), "serve", "--threads", "2"}, {}, log);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(wait_listening(port, 5000));  // this probe connection starts eco
  auto r = run_eco({"send", "127.0.0.1:" + std::to_string(port), "activated"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "Received: b'activated'\n");
  std::string big = random_bytes(1 << 20, 7);
  TempDir in;
  ASSERT_TRUE(write_file(in.file("big"), big));
  auto r2 = run_eco({"send", "127.0.0.1:" + std::to_string(port), "--file", in.file("big")});
  EXPECT_EQ(r2.exit_code, 0) << r2.err;
  // eco served the socket it was given, not one of its own.
  EXPECT_NE(read_file(log).find("Listening on tcp 127.0.0.1:" + std::to_string(port)), std::string::npos)
      << read_file(log);
}

TEST_F(SystemdTest, SocketActivatedUdpEchoes) {
  uint16_t port = free_port(SOCK_DGRAM);
  ASSERT_NE(port, 0);
  std::string log = dir.file("eco.log");
  Child c({kActivate, "--datagram", "-l", "127.0.0.1:" + std::to_string(port), eco_binary(), "serve", "-t", "1"}, {},
          log);
  ASSERT_TRUE(c.ok());
  // The first datagram wakes the activator, which starts eco; retry until an echo comes.
  RunResult r;
  for (int i = 0; i < 20; ++i) {
    r = run_eco({"send", "--udp", "--timeout", "500ms", "127.0.0.1:" + std::to_string(port), "dgram"}, {}, 5000);
    if (r.exit_code == 0) break;
  }
  EXPECT_EQ(r.exit_code, 0) << r.err << read_file(log);
  EXPECT_EQ(r.out, "Received: b'dgram'\n");
}

TEST_F(SystemdTest, InetdModeEchoesEachAcceptedConnection) {
  uint16_t port = free_port(SOCK_STREAM);
  std::string log = dir.file("eco.log");
  Child c({kActivate, "--accept", "--inetd", "-l", "127.0.0.1:" + std::to_string(port), eco_binary(), "serve",
           "--inetd"},
          {}, log);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(wait_listening(port, 5000));
  std::string big = random_bytes(3 << 20, 11);
  TempDir in;
  ASSERT_TRUE(write_file(in.file("big"), big));
  for (int i = 0; i < 3; ++i) {
    auto r = run_eco({"send", "127.0.0.1:" + std::to_string(port), "--file", in.file("big")});
    EXPECT_EQ(r.exit_code, 0) << r.err << read_file(log);
  }
}

TEST_F(SystemdTest, InetdModeOnAListeningSocketIsAUsageError) {
  uint16_t port = free_port(SOCK_STREAM);
  std::string log = dir.file("eco.log");
  // Without --accept the activator hands over the listening socket itself.
  Child c({kActivate, "--inetd", "-l", "127.0.0.1:" + std::to_string(port), eco_binary(), "serve", "--inetd"}, {},
          log);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(wait_listening(port, 5000));
  double end = now_ms() + 5000;
  while (now_ms() < end && read_file(log).find("listening socket") == std::string::npos) usleep(20000);
  EXPECT_NE(read_file(log).find("stdin is a listening socket"), std::string::npos) << read_file(log);
}

TEST(SdNotify, ReadyAndWatchdogMessagesArrive) {
  TempDir dir;
  std::string path = dir.file("notify.sock");
  Fd sock(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  std::strncpy(sun.sun_path, path.c_str(), sizeof sun.sun_path - 1);
  ASSERT_EQ(::bind(sock.get(), reinterpret_cast<sockaddr*>(&sun), sizeof sun), 0) << std::strerror(errno);
  std::string log = dir.file("eco.log");
  Child c({eco_binary(), "serve", "--listen", "127.0.0.1:0", "--threads", "1"},
          {"NOTIFY_SOCKET=" + path, "WATCHDOG_USEC=200000"}, log);
  ASSERT_TRUE(c.ok());
  bool ready = false, watchdog = false;
  double end = now_ms() + 5000;
  while (now_ms() < end && !(ready && watchdog)) {
    pollfd p{sock.get(), POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    char buf[512];
    ssize_t n = ::recv(sock.get(), buf, sizeof buf, 0);
    if (n <= 0) continue;
    std::string msg(buf, size_t(n));
    ready |= msg.find("READY=1") != std::string::npos;
    watchdog |= msg.find("WATCHDOG=1") != std::string::npos;
  }
  EXPECT_TRUE(ready) << read_file(log);
  EXPECT_TRUE(watchdog) << read_file(log);
}

}  // namespace
}  // namespace eco::itest
