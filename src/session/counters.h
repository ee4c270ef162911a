#pragma once
// Per-thread counters: one writer (the loop thread), read by anyone. Relaxed
// load+store instead of fetch_add keeps the hot path free of locked instructions.
#include <atomic>
#include <cstdint>

#include "session/reject_reason.h"

namespace eco::session {

struct alignas(64) Counters {
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> closed{0};
  std::atomic<uint64_t> active{0};
  std::atomic<uint64_t> tcp_bytes{0};        // bytes echoed over TCP
  std::atomic<uint64_t> udp_datagrams{0};    // datagrams echoed
  std::atomic<uint64_t> udp_bytes{0};
  std::atomic<uint64_t> udp_dropped{0};      // datagrams not echoed (send buffer full)
  std::atomic<uint64_t> accept_paused{0};    // times accepting paused for lack of fds
  std::atomic<uint64_t> cut_at_stop{0};      // connections closed by shutdown, not by the peer
  // Connections the server ended (or, for UDP sources, datagrams it dropped) by policy.
  std::atomic<uint64_t> rejected[kRejectReasons]{};

  void reject(Reject r) { add(rejected[size_t(r)], 1); }

  // A connection's life, counted the same way by every engine.
  void connection_opened() {
    add(accepted, 1);
    add(active, 1);
  }
  void connection_closed() {
    add(closed, 1);
    sub(active, 1);
  }

  static void add(std::atomic<uint64_t>& c, uint64_t n) {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  static void sub(std::atomic<uint64_t>& c, uint64_t n) {
    c.store(c.load(std::memory_order_relaxed) - n, std::memory_order_relaxed);
  }
};

}  // namespace eco::session
