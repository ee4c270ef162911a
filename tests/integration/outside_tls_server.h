#pragma once
// Outside TLS echo servers (gnutls-serv, socat, ...) for the TLS client tests: started on a
// free loopback port, up once they accept a TCP connection, killed and reaped at the end.
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"
#include "../unit/tls_pair.h"

extern char** environ;

namespace eco::itest {

// A port the kernel just handed out and took back (the servers below cannot be told to
// pick one and say which); a start that loses the race is retried on another port.
inline uint16_t unused_port() {
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), len) != 0 ||
      ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0)
    return 0;
  return ntohs(a.sin_port);
}

// An outside TLS echo server, killed and reaped when the test ends.
class OutsideServer {
 public:
  // `make_args(port)` gives the command line; the server is up once it accepts a TCP connection.
  explicit OutsideServer(const std::function<std::vector<std::string>(uint16_t)>& make_args) {
    for (int attempt = 0; attempt < 3 && !up_; ++attempt) {
      stop();
      port_ = unused_port();
      std::vector<std::string> args = make_args(port_);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      posix_spawn_file_actions_t fa;
      posix_spawn_file_actions_init(&fa);
      posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
      posix_spawn_file_actions_addopen(&fa, 1, log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      posix_spawn_file_actions_adddup2(&fa, 1, 2);
      int rc = posix_spawnp(&pid_, argv[0], &fa, nullptr, argv.data(), environ);
      posix_spawn_file_actions_destroy(&fa);
      if (rc != 0) {
        pid_ = -1;
        return;
      }
      for (int i = 0; i < 200 && !up_; ++i) {  // at most 4 s
        int err = 0;
        Fd probe = tcp_connect_err("127.0.0.1", port_, 200, err);
        up_ = probe.valid();
        if (!up_) std::this_thread::sleep_for(std::chrono::milliseconds(20));
        if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {  // exited: port taken, or bad flags
          pid_ = -1;
          break;
        }
      }
    }
  }
  ~OutsideServer() { stop(); }
  bool up() const { return up_; }
  std::string addr() const { return "tls://127.0.0.1:" + std::to_string(port_); }
  std::string log() const { return read_file(log_); }

 private:
  void stop() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    pid_ = -1;
  }
  TempDir dir_;
  std::string log_ = dir_.file("server.log");
  pid_t pid_ = -1;
  uint16_t port_ = 0;
  bool up_ = false;
};

// The test PKI both outside servers use, made once per process.
inline const tls::testing::Pki& pki() {
  static const tls::testing::Pki p;
  return p;
}

// Which outside TLS echo server, restricted to which version.
enum class Peer { gnutls, socat };
struct Case {
  Peer peer;
  const char* version;  // "1.2" or "1.3"
};

}  // namespace eco::itest
