// Privileges: --user/--group drop root once bound; port 7 binds with
// CAP_NET_BIND_SERVICE alone and fails clearly without it; NO_NEW_PRIVS is always set.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "harness.h"

extern char** environ;

namespace eco::itest {
namespace {

constexpr const char* kSetpriv = "/usr/bin/setpriv";

// "Uid:\t65534\t65534\t65534\t65534" and friends from /proc/PID/status, or from one
// thread's /proc/PID/task/TID/status.
std::string status_line(pid_t pid, const std::string& key, const std::string& tid = "") {
  std::string dir = "/proc/" + std::to_string(pid) + (tid.empty() ? "" : "/task/" + tid);
  std::ifstream in(dir + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key + ":", 0) == 0) return line.substr(key.size() + 1);
  return "";
}

bool wait_status(pid_t pid, const std::string& key, const std::string& want, int timeout_ms) {
  double end = now_ms() + timeout_ms;
  while (now_ms() < end) {
    if (status_line(pid, key) == want) return true;
    usleep(10000);
  }
  return false;
}

class PrivilegesTest : public EngineTest {
 protected:
  void SetUp() override {
    EngineTest::SetUp();
    if (geteuid() != 0) GTEST_SKIP() << "needs root";
  }
};

TEST_P(PrivilegesTest, RunsAsTheGivenUserAfterBinding) {
  Server* s = start_server({.extra = {"--user", "nobody", "--group", "nogroup", "--udp", "--threads", "2"}});
  ASSERT_TRUE(s);
  EXPECT_TRUE(wait_status(s->pid(), "Uid", "\t65534\t65534\t65534\t65534", 5000)) << status_line(s->pid(), "Uid");
  EXPECT_EQ(status_line(s->pid(), "Gid"), "\t65534\t65534\t65534\t65534");
  EXPECT_EQ(status_line(s->pid(), "Groups"), "\t65534 ");
  EXPECT_EQ(status_line(s->pid(), "CapEff"), "\t0000000000000000");
  EXPECT_EQ(status_line(s->pid(), "CapPrm"), "\t0000000000000000");
  EXPECT_EQ(status_line(s->pid(), "NoNewPrivs"), "\t1");
  EXPECT_TRUE(s->wait_log("Running as user nobody (uid 65534), group nogroup (gid 65534)", 2000)) << s->log();
  // The drop comes after the loop threads are set up (sockmap loads its program as
  // root): every thread, not only the main one, must have dropped.
  ASSERT_TRUE(s->wait_ready(5000));
  int threads = 0;
  for (const auto& t : std::filesystem::directory_iterator("/proc/" + std::to_string(s->pid()) + "/task")) {
    std::string tid = t.path().filename();
    EXPECT_EQ(status_line(s->pid(), "Uid", tid), "\t65534\t65534\t65534\t65534") << "thread " << tid;
    EXPECT_EQ(status_line(s->pid(), "CapEff", tid), "\t0000000000000000") << "thread " << tid;
    ++threads;
  }
  EXPECT_GE(threads, 3) << "the main thread and two loop threads";
  // No engine lost a privilege it needed (sockmap: its program and map updates).
  EXPECT_EQ(s->log().find("Operation not permitted"), std::string::npos) << s->log();
  Fd fd = tcp_connect("127.0.0.1", s->port());
  EXPECT_TRUE(echo_once(fd.get(), "as nobody"));
  Fd u = udp_socket("127.0.0.1", s->port());
  ASSERT_EQ(::send(u.get(), "dg", 2, 0), 2);
  EXPECT_EQ(read_exact(u.get(), 2, 3000), "dg");
}

TEST_P(PrivilegesTest, NoNewPrivsEvenWithoutUser) {
  Server* s = start_server({});
  ASSERT_TRUE(s);
  EXPECT_EQ(status_line(s->pid(), "NoNewPrivs"), "\t1");
}

ECO_ENGINE_SUITE(PrivilegesTest);

TEST(PrivilegeErrors, UnknownUserOrGroup) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  auto r = run_eco({"serve", "--listen", "127.0.0.1:0", "--user", "no-such-user-eco"}, {}, 10000);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("eco: unknown user 'no-such-user-eco'"), std::string::npos) << r.err;
  r = run_eco({"serve", "--listen", "127.0.0.1:0", "--user", "nobody", "--group", "no-such-group-eco"}, {}, 10000);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("eco: unknown group 'no-such-group-eco'"), std::string::npos) << r.err;
  r = run_eco({"serve", "--listen", "127.0.0.1:0", "--group", "nogroup"}, {}, 10000);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--group needs --user"), std::string::npos) << r.err;
}

// Runs eco through setpriv as nobody; returns the exit code, or -1 on timeout.
// `ready` is called once the port file appears, with eco still running.
struct Unprivileged {
  TempDir dir;
  pid_t pid = -1;
  std::string log_path() const { return dir.file("eco.log"); }
  std::string port_path() const { return dir.file("port"); }

  bool spawn(bool with_cap, const std::vector<std::string>& serve_args) {
    chmod(dir.path().c_str(), 0777);  // nobody writes the port file here
    std::vector<std::string> argv{kSetpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups"};
    if (with_cap) {
      argv.push_back("--inh-caps=+net_bind_service");
      argv.push_back("--ambient-caps=+net_bind_service");
    } else {
      argv.push_back("--inh-caps=-all");
    }
    argv.insert(argv.end(), {eco_binary(), "serve", "--port-file", port_path(), "--threads", "1"});
    argv.insert(argv.end(), serve_args.begin(), serve_args.end());
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, log_path().c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int rc = posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    return rc == 0;
  }
  bool wait_port(int timeout_ms) {
    double end = now_ms() + timeout_ms;
    while (now_ms() < end) {
      std::string t = read_file(port_path());
      if (!t.empty() && t.back() == '\n') return true;
      int st;
      if (waitpid(pid, &st, WNOHANG) == pid) {
        exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        pid = -1;
        return false;
      }
      usleep(10000);
    }
    return false;
  }
  int wait_exit(int timeout_ms) {
    if (pid < 0) return exit_code;
    double end = now_ms() + timeout_ms;
    while (now_ms() < end) {
      int st;
      if (waitpid(pid, &st, WNOHANG) == pid) {
        pid = -1;
        return exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      }
      usleep(10000);
    }
    return -1;
  }
  ~Unprivileged() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
  }
  int exit_code = -1;
};

// A loopback address of this test's own, so port 7 is free whatever else runs.
std::string own_loopback() { return "127.77." + std::to_string(getpid() % 250) + ".7"; }

class PortSevenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (to become nobody with a capability)";
    if (access(kSetpriv, X_OK) != 0) GTEST_SKIP() << "setpriv not installed (util-linux)";
  }
};

TEST_F(PortSevenTest, BindsWithCapNetBindServiceAlone) {
  Unprivileged p;
  std::string host = own_loopback();
  ASSERT_TRUE(p.spawn(true, {"--listen", host + ":7", "--udp"}));
  ASSERT_TRUE(p.wait_port(15000)) << read_file(p.log_path());
  EXPECT_EQ(status_line(p.pid, "Uid"), "\t65534\t65534\t65534\t65534");
  Fd fd = tcp_connect(host, 7);
  EXPECT_TRUE(echo_once(fd.get(), "port seven"));
  Fd u = udp_socket(host, 7);
  ASSERT_EQ(::send(u.get(), "seven", 5, 0), 5);
  EXPECT_EQ(read_exact(u.get(), 5, 3000), "seven");
  fd.reset();
  ::kill(p.pid, SIGTERM);
  EXPECT_EQ(p.wait_exit(10000), 0) << read_file(p.log_path());
}

TEST_F(PortSevenTest, WithoutTheCapabilityTheBindFailsClearly) {
  Unprivileged p;
  std::string host = own_loopback();
  ASSERT_TRUE(p.spawn(false, {"--listen", host + ":7"}));
  EXPECT_FALSE(p.wait_port(15000));
  EXPECT_EQ(p.wait_exit(10000), 2);
  std::string log = read_file(p.log_path());
  EXPECT_NE(log.find("eco: cannot listen on " + host + ":7: permission denied (ports below 1024 need "
                     "CAP_NET_BIND_SERVICE)"),
            std::string::npos)
      << log;
}

TEST_F(PortSevenTest, UserFlagWithoutRootIsAnError) {
  Unprivileged p;
  ASSERT_TRUE(p.spawn(true, {"--listen", "127.0.0.1:0", "--user", "nobody"}));
  EXPECT_FALSE(p.wait_port(15000));
  EXPECT_EQ(p.wait_exit(10000), 2);
  std::string log = read_file(p.log_path());
  EXPECT_NE(log.find("eco: --user nobody needs eco to be started as root"), std::string::npos) << log;
}

// Socket activation with every hardening flag at once: systemd-socket-activate (as root)
// binds, eco drops to nobody, filters its syscalls, and still serves the inherited socket.
TEST(SocketActivated, DropsPrivilegesAndFiltersSyscalls) {
  const char* activate = "/usr/bin/systemd-socket-activate";
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  if (access(activate, X_OK) != 0) GTEST_SKIP() << "systemd-socket-activate not installed";
  // A port below the ephemeral range, so no client socket of a parallel test holds it.
  uint16_t port = uint16_t(20000 + (getpid() * 7919) % 12000);
  TempDir dir;
  std::string log = dir.file("eco.log");
  std::vector<std::string> argv{activate, "-l", "127.0.0.1:" + std::to_string(port), eco_binary(), "serve",
                                "--engine", "epoll", "--threads", "2", "--user", "nobody", "--seccomp"};
#if defined(__SANITIZE_ADDRESS__)
  argv.pop_back();  // LeakSanitizer's exit check cannot run under the filter
#endif
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = -1;
  ASSERT_EQ(posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ), 0);
  posix_spawn_file_actions_destroy(&fa);
  struct Reap {
    pid_t p;
    ~Reap() {
      ::kill(p, SIGKILL);
      waitpid(p, nullptr, 0);
    }
  } reap{pid};
  Fd fd;
  for (double end = now_ms() + 5000; now_ms() < end && !fd.valid(); usleep(20000)) {
    int err = 0;
    fd = tcp_connect_err("127.0.0.1", port, 200, err);
  }
  ASSERT_TRUE(fd.valid()) << read_file(log);
  EXPECT_TRUE(echo_once(fd.get(), "activated, unprivileged, filtered")) << read_file(log);
  bool eof = false;
  std::string data = random_bytes(512 << 10, 3);
  Fd fd2 = tcp_connect("127.0.0.1", port);
  EXPECT_TRUE(echo_roundtrip(fd2.get(), data, 10000, eof) == data) << read_file(log);
  std::string text = read_file(log);
  EXPECT_NE(text.find("Running as user nobody"), std::string::npos) << text;
#if !defined(__SANITIZE_ADDRESS__)
  EXPECT_NE(text.find("seccomp: system call allow-list installed"), std::string::npos) << text;
#endif
}

}  // namespace
}  // namespace eco::itest
