#pragma once
// Integration-test harness: runs the real `eco` binary and talks to it over real
// loopback sockets. Everything here is bounded in time; a server started by a test
// is always killed and reaped, even when the test fails half-way.
#include <sys/resource.h>
#include <sys/types.h>

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/fd.h"

namespace eco::itest {

// Path of the eco binary under test (set by CMake).
const char* eco_binary();

// Engines to run every server test against: every named engine the build knows,
// without "auto" (which is one of them).
std::vector<std::string> engines();
// For INSTANTIATE_TEST_SUITE_P names: "epoll", "uring".
std::string engine_param_name(const ::testing::TestParamInfo<std::string>& info);

// A fresh temporary directory, removed (with its files) when the object dies.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(std::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  std::string path_;
};

std::string read_file(const std::string& path);
bool write_file(const std::string& path, std::string_view data);

struct ServerOptions {
  std::string engine = "epoll";
  std::vector<std::string> listen = {"127.0.0.1:0"};
  std::vector<std::string> extra;   // more flags, e.g. {"--threads", "1"}
  std::string drain_timeout = "3s";
  rlim_t nofile = 0;                // nonzero: RLIMIT_NOFILE (soft and hard) of the server
};

// One `eco serve` process with its stderr captured to a file.
class Server {
 public:
  explicit Server(ServerOptions opts);
  ~Server();  // SIGKILL + reap if still running
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Spawns and waits (bounded) for the port file. On failure the message includes the log.
  ::testing::AssertionResult start();
  pid_t pid() const { return pid_; }
  uint16_t port() const { return port_; }
  bool running();
  // Waits (bounded) for the server's READY=1: every loop is set up.
  bool wait_ready(int timeout_ms);
  // The server's fd count once start-up has finished (for leak checks).
  int settled_fd_count();

  std::string log() const;
  // Waits until the log contains `needle` (true) or timeout_ms passes (false).
  bool wait_log(std::string_view needle, int timeout_ms) const;
  size_t count_in_log(std::string_view needle) const;

  bool finished() const { return exit_code_.has_value(); }

  void signal(int sig) const;
  // Waits for exit; returns the exit code (128+N if killed by signal N), or nullopt on timeout.
  std::optional<int> wait_exit(int timeout_ms);
  // SIGTERM, then expects a clean exit 0 and no sanitizer report in the log.
  ::testing::AssertionResult stop(int timeout_ms = 10000);

 private:
  ServerOptions opts_;
  TempDir dir_;
  pid_t pid_ = -1;
  uint16_t port_ = 0;
  std::optional<int> exit_code_;
  Fd notify_;  // NOTIFY_SOCKET of the server, for READY=1
  bool ready_ = false;
};

// Every test process may need many sockets (1,000 clients): raise the soft limit
// to the hard one once.
void raise_fd_limit();

// ---- sockets (all non-blocking, CLOEXEC, with deadlines) ----
Fd tcp_connect(const std::string& host, uint16_t port, int timeout_ms = 5000);
// Fails (invalid Fd) on error; errno_out gets the connect error.
Fd tcp_connect_err(const std::string& host, uint16_t port, int timeout_ms, int& errno_out);
bool send_all(int fd, std::string_view data, int timeout_ms = 10000);
// Reads exactly n bytes; returns fewer if EOF/error/timeout came first.
std::string read_exact(int fd, size_t n, int timeout_ms = 10000);
// Reads until EOF; `eof` tells whether EOF was seen (false: timeout or error).
std::string read_to_eof(int fd, int timeout_ms, bool& eof);
// Waits for EOF with no more data; true if EOF came in time with nothing before it.
bool expect_eof(int fd, int timeout_ms);
// Writes `data` while reading the echo concurrently (so any size fits through
// full socket buffers), then shuts down the write side and reads to EOF.
// Returns everything received; `eof` says whether the server closed cleanly.
std::string echo_roundtrip(int fd, std::string_view data, int timeout_ms, bool& eof);
// Echo of one small message on an open connection; true if it came back intact.
bool echo_once(int fd, std::string_view msg, int timeout_ms = 5000);
void set_linger_rst(int fd);

Fd udp_socket(const std::string& host, uint16_t port);  // connected to host:port

std::string random_bytes(size_t n, uint32_t seed);

// ---- /proc ----
long rss_kib(pid_t pid);
int fd_count(pid_t pid);
double cpu_seconds(pid_t pid);  // utime + stime
// Waits until fd_count(pid) == want; returns the last count seen.
int wait_fd_count(pid_t pid, int want, int timeout_ms);

// ---- running eco as a client ----
struct RunResult {
  int exit_code = -1;  // 128+N if killed by signal N; -1 if it timed out
  std::string out, err;
};
// Runs `eco args...` with stdin from `input` (empty: /dev/null), bounded by timeout_ms.
RunResult run_eco(const std::vector<std::string>& args, std::string_view input = {}, int timeout_ms = 20000);

// Milliseconds since an arbitrary start (monotonic).
double now_ms();

// "tcp://[::1]:port"-style helpers for address arguments.
std::string hostport(const std::string& host, uint16_t port);

// Base of every server test, parametrised by engine name. Servers it starts are
// stopped at the end with SIGTERM and must exit 0 with no sanitizer report,
// unless the test already reaped them itself.
class EngineTest : public ::testing::TestWithParam<std::string> {
 protected:
  static void SetUpTestSuite() { raise_fd_limit(); }
  // Skips (with the reason) an engine this machine cannot run, e.g. sockmap without BPF.
  void SetUp() override;
  // nullptr (and a test failure) if the server did not come up: ASSERT_TRUE on it.
  Server* start_server(ServerOptions opts = {});
  void TearDown() override;

 private:
  std::vector<std::unique_ptr<Server>> servers_;
};

// Whether the engine table says `engine` refuses `flag` at startup (a limit it cannot
// enforce, e.g. sockmap and --max-bytes).
bool engine_refuses(const std::string& engine, std::string_view flag);

// For a test of a limit some engine refuses at startup instead of enforcing it: on such
// an engine the test checks the refusal instead (`eco serve --engine E ARGS...` exits 2
// at once with one line naming the flag, and serves nothing) and returns.
::testing::AssertionResult refused_at_startup(const std::string& engine, const std::vector<std::string>& args);
#define ECO_IF_ENGINE_REFUSES_EXPECT_REFUSAL(flag, ...)                                  \
  if (::eco::itest::engine_refuses(GetParam(), flag)) {                                 \
    EXPECT_TRUE(::eco::itest::refused_at_startup(GetParam(), {flag, ##__VA_ARGS__}));   \
    return;                                                                             \
  }

#define ECO_ENGINE_SUITE(Suite) \
  INSTANTIATE_TEST_SUITE_P(Engines, Suite, ::testing::ValuesIn(::eco::itest::engines()), \
                           ::eco::itest::engine_param_name)

}  // namespace eco::itest
