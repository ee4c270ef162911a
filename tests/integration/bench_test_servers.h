#pragma once
// Echo servers of known behaviour that run inside the test process (one thread per
// connection), so bench's measurements can be checked against a known truth: a
// fixed delay, a random delay of known distribution, a fixed capacity, one stall, a
// flipped byte, resets, silence.
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "util/fd.h"

namespace eco::itest {

enum class Misbehavior {
  none,        // a plain echo
  delay,       // every echo leaves `delay_ms` after its bytes arrived
  stall_once,  // echoes at once, except that nothing is echoed for 1 s, 1.5 s after the first accept
  flip,        // every 20th read has its first byte flipped
  reset,       // echoes 5 reads, then resets the connection (RST)
  blackhole,   // reads and never answers
  jitter,      // every echo leaves a delay drawn uniformly from [jitter_min_ms, jitter_max_ms] after its bytes arrived
  capacity,    // one server for all connections: each message of `message_size` bytes takes `service_us`,
               // one after another, so at most 1e6 / service_us messages a second are echoed
};

// The parameters of the behaviours that have them.
struct ServerShape {
  int delay_ms = 20;
  int jitter_min_ms = 10, jitter_max_ms = 30;
  int service_us = 1000;
  size_t message_size = 64;
};

class TestEchoServer {
 public:
  explicit TestEchoServer(Misbehavior how, int delay_ms = 20);
  TestEchoServer(Misbehavior how, const ServerShape& shape);
  ~TestEchoServer();  // stops and joins every thread
  TestEchoServer(const TestEchoServer&) = delete;
  TestEchoServer& operator=(const TestEchoServer&) = delete;

  bool ok() const { return listener_.valid(); }
  uint16_t port() const { return port_; }
  std::string address() const;
  uint64_t accepted() const { return accepted_.load(); }
  // Distinct client IP addresses seen (as "127.0.0.2").
  std::set<std::string> sources();

 private:
  void accept_loop();
  void serve(Fd conn);

  // capacity: when the one server, busy with the messages before, has done these.
  uint64_t serve_queue(uint64_t arrived, uint64_t messages);

  Misbehavior how_;
  ServerShape shape_;
  std::mutex queue_mu_;
  uint64_t queue_free_at_ = 0;
  Fd listener_;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> accepted_{0};
  std::atomic<uint64_t> stall_from_ns_{0};
  std::mutex mu_;
  std::vector<std::thread> threads_;
  std::set<std::string> sources_;
  std::thread acceptor_;
};

}  // namespace eco::itest
