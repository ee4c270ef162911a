// Shutdown and restart under load, once per engine.
// - SIGTERM with many echoes in flight: every echo that can finish within the drain
//   timeout finishes, byte for byte; connections that cannot (their client never reads)
//   are cut at the deadline, and the server says how many.
// - Socket activation: the listening socket is held by a parent (here the test, as
//   systemd does), so when eco is killed with SIGKILL and started again, connections
//   arriving in between wait in the kernel's accept queue and are then served.
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

#include "harness.h"

extern char** environ;

namespace eco::itest {
namespace {

using Restart = EngineTest;

TEST_P(Restart, SigtermUnderLoadFinishesWhatCanFinishAndCountsTheCut) {
  constexpr int kClients = 20, kStuck = 5;
  Server* srv = start_server({.engine = GetParam(), .extra = {"--threads", "2"}, .drain_timeout = "3s"});
  ASSERT_TRUE(srv);
  // Stuck clients: they send more than can be buffered and never read, so their echo
  // cannot finish; the drain deadline has to cut them.
  std::vector<Fd> stuck;
  const std::string blob = random_bytes(1 << 20, 3);
  for (int i = 0; i < kStuck; ++i) {
    Fd fd = tcp_connect("127.0.0.1", srv->port());
    ASSERT_TRUE(fd.valid());
    int small = 4096;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    ::send(fd.get(), blob.data(), blob.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    stuck.push_back(std::move(fd));
  }
  // Well-behaved clients: each streams 2.5 MiB in 64 KiB pieces over ~0.8 s, reading
  // its echo as it goes; the SIGTERM lands in the middle of all of them.
  std::atomic<int> started{0}, ok{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      Fd fd = tcp_connect("127.0.0.1", srv->port());
      if (!fd.valid()) return;
      const std::string data = random_bytes(40 * 65536, uint32_t(100 + i));
      std::string back;
      ++started;
      for (size_t off = 0; off < data.size(); off += 65536) {
        if (!send_all(fd.get(), std::string_view(data).substr(off, 65536), 5000)) return;
        back += read_exact(fd.get(), 65536, 5000);
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      ::shutdown(fd.get(), SHUT_WR);
      if (back == data && expect_eof(fd.get(), 5000)) ++ok;
    });
  }
  double deadline = now_ms() + 5000;
  while (started < kClients && now_ms() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  srv->signal(SIGTERM);
  for (auto& t : threads) t.join();
  auto code = srv->wait_exit(10000);
  ASSERT_TRUE(code.has_value()) << "server did not exit after the drain timeout";
  EXPECT_EQ(*code, 0) << srv->log();
  EXPECT_EQ(ok.load(), kClients) << "an echo that could finish within the drain was lost\n" << srv->log();
  EXPECT_TRUE(srv->wait_log(std::to_string(kStuck) + " connection(s) cut at shutdown", 1000)) << srv->log();
  std::printf("[ figures  ] SIGTERM under load: %d/%d streaming echoes completed, %d stuck cut\n", ok.load(),
              kClients, kStuck);
}

// eco started on an inherited listening socket (fd 3, LISTEN_FDS=1, LISTEN_PID=its pid).
pid_t spawn_activated(int listen_fd, const std::string& engine, const std::string& log) {
  std::vector<std::string> args{eco_binary(), "serve", "--engine", engine, "--threads", "2"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e)
    if (std::strncmp(*e, "LISTEN_", 7) != 0) env.emplace_back(*e);
  env.emplace_back("LISTEN_FDS=1");
  env.emplace_back("LISTEN_PID=0000000000");  // filled in by the child with its own pid
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  char* pid_slot = envp[envp.size() - 2] + std::strlen("LISTEN_PID=");
  Fd out(::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  pid_t pid = ::fork();
  if (pid == 0) {
    // Only async-signal-safe calls from here to exec.
    unsigned long me = static_cast<unsigned long>(::getpid());
    for (int i = 9; i >= 0; --i, me /= 10) pid_slot[i] = char('0' + me % 10);
    int skip = 0;
    while (skip < 9 && pid_slot[skip] == '0') ++skip;
    for (int i = 0; i + skip <= 10; ++i) pid_slot[i] = pid_slot[i + skip];  // no leading zeros
    int devnull = ::open("/dev/null", O_RDONLY);
    if (::dup2(devnull, 0) < 0 || ::dup2(out.get(), 2) < 0 || ::dup2(listen_fd, 3) != 3) ::_exit(127);
    ::close_range(4, ~0u, 0);
    ::fcntl(3, F_SETFD, 0);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  return pid;
}

TEST_P(Restart, KillNineAndStartAgainOnAHeldSocketLosesNoConnection) {
  TempDir dir;
  const std::string log = dir.file("eco.log");
  // The socket-activation parent's part: bind and listen once, keep the socket.
  Fd lfd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(lfd.valid());
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(lfd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(lfd.get(), 512), 0);
  socklen_t alen = sizeof a;
  ASSERT_EQ(::getsockname(lfd.get(), reinterpret_cast<sockaddr*>(&a), &alen), 0);
  const uint16_t port = ntohs(a.sin_port);

  auto wait_serving = [&](pid_t pid) {
    double deadline = now_ms() + 15000;
    while (now_ms() < deadline) {
      if (read_file(log).find("Listening on tcp 127.0.0.1:" + std::to_string(port)) != std::string::npos &&
          fd_count(pid) > 4)
        return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  };
  auto kill9 = [](pid_t pid) {
    ::kill(pid, SIGKILL);
    int st;
    ::waitpid(pid, &st, 0);
  };

  pid_t first = spawn_activated(lfd.get(), GetParam(), log);
  ASSERT_GT(first, 0);
  if (!wait_serving(first)) {
    kill9(first);
    FAIL() << "first eco did not come up:\n" << read_file(log);
  }
  {
    Fd c = tcp_connect("127.0.0.1", port);
    ASSERT_TRUE(echo_once(c.get(), "before the restart")) << read_file(log);
  }
  kill9(first);  // nothing drains: the process is simply gone

  // Connections arriving while no eco runs: the kernel completes their handshake and
  // queues them; none is refused. Each also sends its request right away.
  constexpr int kDuringGap = 50;
  std::vector<Fd> waiting;
  std::vector<std::string> msgs;
  for (int i = 0; i < kDuringGap; ++i) {
    int err = 0;
    Fd c = tcp_connect_err("127.0.0.1", port, 2000, err);
    ASSERT_TRUE(c.valid()) << "connection #" << i << " during the restart failed: " << std::strerror(err);
    msgs.push_back("queued during the restart #" + std::to_string(i));
    ASSERT_TRUE(send_all(c.get(), msgs.back()));
    waiting.push_back(std::move(c));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));

  pid_t second = spawn_activated(lfd.get(), GetParam(), log);
  ASSERT_GT(second, 0);
  int served = 0;
  for (int i = 0; i < kDuringGap; ++i)
    served += read_exact(waiting[size_t(i)].get(), msgs[size_t(i)].size(), 15000) == msgs[size_t(i)];
  Fd after = tcp_connect("127.0.0.1", port);
  bool after_ok = after.valid() && echo_once(after.get(), "after the restart");
  waiting.clear();
  after.reset();
  ::kill(second, SIGTERM);
  int st = 0;
  ::waitpid(second, &st, 0);
  EXPECT_EQ(served, kDuringGap) << read_file(log);
  EXPECT_TRUE(after_ok);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << read_file(log);
  std::printf("[ figures  ] kill -9 + restart on a held socket: %d/%d connections made during the gap served\n",
              served, kDuringGap);
}

ECO_ENGINE_SUITE(Restart);

}  // namespace
}  // namespace eco::itest
