#include "harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "engine/engine.h"
#ifdef ECO_HAVE_SOCKMAP
#include "engine/sockmap_loader.h"
#endif
#include "net/address.h"
#include "net/socket.h"

extern char** environ;

namespace eco::itest {
namespace {

int remaining(double deadline_ms) {
  double left = deadline_ms - now_ms();
  return left <= 0 ? 0 : int(left) + 1;
}

// Waits for `events` on fd until the deadline; false on timeout.
bool wait_for(int fd, short events, double deadline_ms) {
  for (;;) {
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, remaining(deadline_ms));
    if (n > 0) return true;
    if (n == 0) return false;
    if (errno != EINTR) return false;
  }
}

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// Spawns argv with stdin/stdout/stderr from/to the given files. With `nofile`, the
// child's RLIMIT_NOFILE is lowered before exec (posix_spawn cannot do that, so that
// path forks; the child then calls only async-signal-safe functions).
// `notify`, when not empty, becomes the child's NOTIFY_SOCKET (replacing ours).
pid_t spawn(const std::vector<std::string>& args, const std::string& in, const std::string& out,
            const std::string& err, rlim_t nofile, const std::string& notify = {}) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::string notify_env = "NOTIFY_SOCKET=" + notify;
  std::vector<char*> envp;
  for (char** e = environ; *e; ++e)
    if (notify.empty() || std::strncmp(*e, "NOTIFY_SOCKET=", 14) != 0) envp.push_back(*e);
  if (!notify.empty()) envp.push_back(notify_env.data());
  envp.push_back(nullptr);
  if (nofile == 0) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, in.c_str(), O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    // Nothing else of ours (or of ctest's) leaks in: /proc/PID/fd must count only the server's own.
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    pid_t pid = -1;
    int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&fa);
    return rc == 0 ? pid : -1;
  }
  Fd fin(::open(in.c_str(), O_RDONLY | O_CLOEXEC));
  Fd fout(::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  Fd ferr(::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fin.valid() || !fout.valid() || !ferr.valid()) return -1;
  pid_t pid = ::fork();
  if (pid == 0) {
    rlimit rl{nofile, nofile};
    if (::dup2(fin.get(), 0) < 0 || ::dup2(fout.get(), 1) < 0 || ::dup2(ferr.get(), 2) < 0 ||
        ::close_range(3, ~0u, 0) != 0 || ::setrlimit(RLIMIT_NOFILE, &rl) != 0)
      ::_exit(127);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  return pid;
}

// Waits for pid with a deadline; nullopt on timeout.
std::optional<int> reap(pid_t pid, int timeout_ms) {
  double deadline = now_ms() + timeout_ms;
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return decode_status(status);
    if (r < 0 && errno != EINTR) return -1;
    if (now_ms() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

}  // namespace

const char* eco_binary() { return ECO_BINARY; }

std::vector<std::string> engines() {
  std::vector<std::string> out;
  for (const engine::EngineInfo& e : engine::engine_table()) out.push_back(e.name);
  return out;
}

bool engine_refuses(const std::string& engine, std::string_view flag) {
  const engine::EngineInfo* e = engine::find_engine(engine);
  if (!e) return false;
  for (const engine::Setting& s : e->refuses)
    if (flag == s.flag) return true;
  return false;
}

::testing::AssertionResult refused_at_startup(const std::string& engine, const std::vector<std::string>& args) {
  std::vector<std::string> argv{"serve", "--engine", engine, "--listen", "127.0.0.1:0"};
  argv.insert(argv.end(), args.begin(), args.end());
  RunResult r = run_eco(argv, {}, 10000);
  std::string want = "eco: cannot use --engine " + engine + " with " + args.at(0);
  if (r.exit_code != 2) return ::testing::AssertionFailure() << "exit " << r.exit_code << ", not 2: " << r.err;
  if (r.err.find(want) == std::string::npos)
    return ::testing::AssertionFailure() << "no line '" << want << "': " << r.err;
  if (std::count(r.err.begin(), r.err.end(), '\n') != 1)
    return ::testing::AssertionFailure() << "more than one line: " << r.err;
  return ::testing::AssertionSuccess();
}

std::string engine_param_name(const ::testing::TestParamInfo<std::string>& info) { return info.param; }

double now_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return double(ts.tv_sec) * 1e3 + double(ts.tv_nsec) / 1e6;
}

std::string hostport(const std::string& host, uint16_t port) {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

// ---- files ----

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/eco-itest-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data())) path_ = buf.data();
}

TempDir::~TempDir() {
  if (path_.empty()) return;
  if (DIR* d = ::opendir(path_.c_str())) {
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") ::unlink((path_ + "/" + n).c_str());
    }
    ::closedir(d);
  }
  ::rmdir(path_.c_str());
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

bool write_file(const std::string& path, std::string_view data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(data.data(), std::streamsize(data.size()));
  return bool(f);
}

// ---- server process ----

Server::Server(ServerOptions opts) : opts_(std::move(opts)) {}

Server::~Server() {
  if (pid_ > 0 && !exit_code_) {
    ::kill(pid_, SIGKILL);
    int status;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
}

::testing::AssertionResult Server::start() {
  if (dir_.path().empty()) return ::testing::AssertionFailure() << "mkdtemp failed";
  std::vector<std::string> args{eco_binary(), "serve", "--engine", opts_.engine, "--port-file",
                                dir_.file("port"), "--drain-timeout", opts_.drain_timeout};
  for (const auto& l : opts_.listen) {
    args.push_back("--listen");
    args.push_back(l);
  }
  args.insert(args.end(), opts_.extra.begin(), opts_.extra.end());
  // The server's READY=1 comes here: an abstract socket, so that a server that dropped
  // privileges (--user) can still reach it.
  static std::atomic<unsigned> serial{0};
  std::string notify = fmt::format("@eco-itest-{}-{}", ::getpid(), serial++);
  notify_.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  std::memcpy(sun.sun_path + 1, notify.data() + 1, notify.size() - 1);
  socklen_t len = socklen_t(offsetof(sockaddr_un, sun_path) + notify.size());
  if (!notify_.valid() || ::bind(notify_.get(), reinterpret_cast<sockaddr*>(&sun), len) != 0)
    return ::testing::AssertionFailure() << "cannot bind the notify socket " << notify << ": " << strerror(errno);
  pid_ = spawn(args, "/dev/null", dir_.file("stdout"), dir_.file("stderr"), opts_.nofile, notify);
  if (pid_ < 0) return ::testing::AssertionFailure() << "cannot spawn " << eco_binary() << ": " << strerror(errno);
  // inotify wakes us as soon as the port file is renamed into place (tests that
  // signal right after "ready" depend on that); the poll timeout is the fallback.
  Fd ino(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
  if (ino.valid()) ::inotify_add_watch(ino.get(), dir_.path().c_str(), IN_MOVED_TO | IN_CLOSE_WRITE);
  // ASan builds start slowly on a busy machine: generous, but bounded.
  double deadline = now_ms() + 15000;
  while (now_ms() < deadline) {
    std::string text = read_file(dir_.file("port"));
    if (!text.empty() && text.back() == '\n') {
      port_ = uint16_t(std::stoul(text));
      return ::testing::AssertionSuccess();
    }
    if (!running())
      return ::testing::AssertionFailure() << "eco serve exited with " << exit_code_.value_or(-1)
                                           << " before writing its port file; log:\n"
                                           << log();
    if (ino.valid()) {
      pollfd p{ino.get(), POLLIN, 0};
      if (::poll(&p, 1, 20) > 0) {
        char buf[4096];
        while (::read(ino.get(), buf, sizeof buf) > 0) {
        }
      }
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  return ::testing::AssertionFailure() << "eco serve wrote no port file within 15 s; log:\n" << log();
}

bool Server::wait_ready(int timeout_ms) {
  double deadline = now_ms() + timeout_ms;
  while (!ready_ && notify_.valid()) {
    char buf[512];
    ssize_t n = ::recv(notify_.get(), buf, sizeof buf, 0);
    if (n > 0) {
      ready_ = std::string_view(buf, size_t(n)).find("READY=1") != std::string_view::npos;
      continue;
    }
    if (!running() || !wait_for(notify_.get(), POLLIN, deadline)) break;
  }
  return ready_;
}

int Server::settled_fd_count() {
  // The port file is written once the listeners are bound, before the loop threads make
  // their own fds (epoll, rings, BPF maps and programs); READY=1 comes once they have.
  // Loading BPF can pause for long without opening anything (a sanitizer build parses
  // the kernel's BTF slowly), so stillness alone is not proof.
  EXPECT_TRUE(wait_ready(15000)) << "eco serve sent no READY=1 within 15 s";
  // Then the count must also hold still (threads that end late, e.g. a failed probe).
  double deadline = now_ms() + 3000;
  int last = fd_count(pid_);
  double since = now_ms();
  while (now_ms() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    int n = fd_count(pid_);
    if (n != last) {
      last = n;
      since = now_ms();
    } else if (now_ms() - since >= 200) {
      break;
    }
  }
  return last;
}

bool Server::running() {
  if (pid_ <= 0 || exit_code_) return false;
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exit_code_ = decode_status(status);
    return false;
  }
  return true;
}

std::string Server::log() const { return read_file(dir_.file("stderr")); }

bool Server::wait_log(std::string_view needle, int timeout_ms) const {
  double deadline = now_ms() + timeout_ms;
  for (;;) {
    if (log().find(needle) != std::string::npos) return true;
    if (now_ms() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

size_t Server::count_in_log(std::string_view needle) const {
  std::string text = log();
  size_t n = 0;
  for (size_t pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + needle.size())) ++n;
  return n;
}

void Server::signal(int sig) const {
  if (pid_ > 0 && !exit_code_) ::kill(pid_, sig);
}

std::optional<int> Server::wait_exit(int timeout_ms) {
  if (exit_code_) return exit_code_;
  if (pid_ <= 0) return std::nullopt;
  exit_code_ = reap(pid_, timeout_ms);
  return exit_code_;
}

::testing::AssertionResult Server::stop(int timeout_ms) {
  if (running()) signal(SIGTERM);
  auto code = wait_exit(timeout_ms);
  if (!code) return ::testing::AssertionFailure() << "eco serve did not exit within " << timeout_ms << " ms of SIGTERM";
  std::string text = log();
  for (const char* bad : {"AddressSanitizer", "LeakSanitizer", "runtime error:", "UndefinedBehaviorSanitizer"})
    if (text.find(bad) != std::string::npos)
      return ::testing::AssertionFailure() << "sanitizer report in the server log:\n" << text;
  if (*code != 0) return ::testing::AssertionFailure() << "eco serve exited with " << *code << "; log:\n" << text;
  return ::testing::AssertionSuccess();
}

void EngineTest::SetUp() {
  const engine::EngineInfo* e = engine::find_engine(GetParam());
  ASSERT_NE(e, nullptr) << GetParam();
  if (std::string why = e->unavailable(); !why.empty())
    GTEST_SKIP() << "the " << e->name << " engine cannot run on this machine: " << why;
}

Server* EngineTest::start_server(ServerOptions opts) {
  opts.engine = GetParam();
  auto s = std::make_unique<Server>(std::move(opts));
  auto started = s->start();
  EXPECT_TRUE(started);
  if (!started) return nullptr;
  servers_.push_back(std::move(s));
  return servers_.back().get();
}

void EngineTest::TearDown() {
  for (auto& s : servers_) {
    if (s->finished()) continue;
    EXPECT_TRUE(s->stop());
  }
  servers_.clear();
}

void raise_fd_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
  }
}

// ---- sockets ----

Fd tcp_connect_err(const std::string& host, uint16_t port, int timeout_ms, int& errno_out) {
  errno_out = 0;
  net::HostPort hp;
  hp.host = host;
  hp.port = port;
  auto addrs = net::resolve(hp, net::Proto::tcp, false);
  if (!addrs || addrs->empty()) {
    errno_out = EINVAL;
    return Fd();
  }
  auto fd = net::connect_tcp(addrs->front(), timeout_ms);
  if (!fd) {
    errno_out = fd.error().code;
    return Fd();
  }
  return std::move(*fd);
}

Fd tcp_connect(const std::string& host, uint16_t port, int timeout_ms) {
  int err;
  return tcp_connect_err(host, port, timeout_ms, err);
}

bool send_all(int fd, std::string_view data, int timeout_ms) {
  double deadline = now_ms() + timeout_ms;
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      data.remove_prefix(size_t(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return false;
    if (!wait_for(fd, POLLOUT, deadline)) return false;
  }
  return true;
}

std::string read_exact(int fd, size_t n, int timeout_ms) {
  double deadline = now_ms() + timeout_ms;
  std::string out;
  out.reserve(n);
  char buf[65536];
  while (out.size() < n) {
    ssize_t r = ::recv(fd, buf, std::min(sizeof buf, n - out.size()), MSG_DONTWAIT);
    if (r > 0) {
      out.append(buf, size_t(r));
      continue;
    }
    if (r == 0) break;
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) break;
    if (!wait_for(fd, POLLIN, deadline)) break;
  }
  return out;
}

std::string read_to_eof(int fd, int timeout_ms, bool& eof) {
  double deadline = now_ms() + timeout_ms;
  std::string out;
  char buf[65536];
  eof = false;
  for (;;) {
    ssize_t r = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (r > 0) {
      out.append(buf, size_t(r));
      continue;
    }
    if (r == 0) {
      eof = true;
      return out;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return out;
    if (!wait_for(fd, POLLIN, deadline)) return out;
  }
}

bool expect_eof(int fd, int timeout_ms) {
  bool eof;
  std::string rest = read_to_eof(fd, timeout_ms, eof);
  return eof && rest.empty();
}

std::string echo_roundtrip(int fd, std::string_view data, int timeout_ms, bool& eof) {
  double deadline = now_ms() + timeout_ms;
  std::string out;
  out.reserve(data.size());
  std::vector<char> buf(256 * 1024);
  size_t sent = 0;
  bool shut = false;
  eof = false;
  for (;;) {
    if (sent == data.size() && !shut) {
      if (::shutdown(fd, SHUT_WR) != 0) return out;
      shut = true;
    }
    pollfd p{fd, short(POLLIN | (shut ? 0 : POLLOUT)), 0};
    int n = ::poll(&p, 1, remaining(deadline));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return out;  // timeout
    if (p.revents & POLLOUT) {
      ssize_t s = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (s > 0) sent += size_t(s);
      else if (s < 0 && errno != EAGAIN && errno != EINTR) return out;
    }
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t r = ::recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
      if (r > 0) out.append(buf.data(), size_t(r));
      else if (r == 0) {
        eof = true;
        return out;
      } else if (errno != EAGAIN && errno != EINTR) {
        return out;
      }
    }
  }
}

bool echo_once(int fd, std::string_view msg, int timeout_ms) {
  if (!send_all(fd, msg, timeout_ms)) return false;
  return read_exact(fd, msg.size(), timeout_ms) == msg;
}

void set_linger_rst(int fd) { (void)net::set_linger_reset(fd); }

Fd udp_socket(const std::string& host, uint16_t port) {
  net::HostPort hp;
  hp.host = host;
  hp.port = port;
  auto addrs = net::resolve(hp, net::Proto::udp, false);
  if (!addrs || addrs->empty()) return Fd();
  auto fd = net::connect_udp(addrs->front());
  if (!fd) return Fd();
  return std::move(*fd);
}

std::string random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (size_t i = 0; i < n; i += 4) {
    uint32_t v = uint32_t(rng());
    for (size_t k = 0; k < 4 && i + k < n; ++k) s[i + k] = char(uint8_t(v >> (8 * k)));
  }
  // The bytes most likely to trip a string-minded server, always present.
  if (n >= 1) s[0] = '\0';
  if (n >= 2) s[n - 1] = char(0xFF);
  if (n >= 3) s[n / 2] = '\n';
  return s;
}

// ---- /proc ----

long rss_kib(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

int fd_count(pid_t pid) {
  DIR* d = ::opendir(("/proc/" + std::to_string(pid) + "/fd").c_str());
  if (!d) return -1;
  int n = 0;
  while (dirent* e = ::readdir(d))
    if (e->d_name[0] != '.') ++n;
  ::closedir(d);
  return n;
}

double cpu_seconds(pid_t pid) {
  std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream in(stat.substr(close + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  // Fields after "(comm) ": state is field 3; utime and stime are fields 14 and 15.
  for (int i = 3; i <= 15 && in >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return double(utime + stime) / double(::sysconf(_SC_CLK_TCK));
}

int wait_fd_count(pid_t pid, int want, int timeout_ms) {
  double deadline = now_ms() + timeout_ms;
  for (;;) {
    int n = fd_count(pid);
    if (n == want || now_ms() >= deadline) return n;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

// ---- eco as a client ----

RunResult run_eco(const std::vector<std::string>& args, std::string_view input, int timeout_ms) {
  RunResult res;
  TempDir dir;
  std::string in = "/dev/null";
  if (!input.empty()) {
    in = dir.file("stdin");
    write_file(in, input);
  }
  std::vector<std::string> argv{eco_binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  pid_t pid = spawn(argv, in, dir.file("stdout"), dir.file("stderr"), 0);
  if (pid < 0) {
    res.err = "cannot spawn eco";
    return res;
  }
  auto code = reap(pid, timeout_ms);
  if (!code) {
    ::kill(pid, SIGKILL);
    int status;
    ::waitpid(pid, &status, 0);
  }
  res.exit_code = code.value_or(-1);
  res.out = read_file(dir.file("stdout"));
  res.err = read_file(dir.file("stderr"));
  return res;
}

}  // namespace eco::itest
