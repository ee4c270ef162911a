#pragma once
// Per-thread counters: one writer (the loop thread that claimed them), read by anyone.
// Relaxed load+store instead of fetch_add keeps the hot path free of locked
// instructions, which is only correct while one thread writes: debug and sanitizer
// builds check that on every write (muduo's assertInLoopThread idea).
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "session/reject_reason.h"
#include "tls/reason.h"

#if !defined(NDEBUG) || defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define ECO_CHECK_THREADS 1
#else
#define ECO_CHECK_THREADS 0
#endif

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
  // TLS listeners (session/tls_stage.h).
  std::atomic<uint64_t> tls_bytes{0};         // plaintext bytes echoed
  std::atomic<uint64_t> tls_active{0};        // connections past their handshake, open
  std::atomic<uint64_t> tls_full{0};          // handshakes done, full
  std::atomic<uint64_t> tls_resumed{0};       // handshakes done, resumed from a ticket
  std::atomic<uint64_t> tls_v12{0};           // handshakes done by version
  std::atomic<uint64_t> tls_v13{0};
  std::atomic<uint64_t> tls_client_certs{0};  // handshakes with a verified client certificate
  std::atomic<uint64_t> tls_failed[tls::kReasonCount]{};  // connections that failed, by reason

  // The calling thread becomes the one writer. Unclaimed counters (a sum made by a
  // reader) may be written by whoever holds them.
  void claim() {
#if ECO_CHECK_THREADS
    owner_.store(thread_token(), std::memory_order_relaxed);
#endif
  }

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

  [[gnu::always_inline]] void add(std::atomic<uint64_t>& c, uint64_t n) {
    check_writer();
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  [[gnu::always_inline]] void sub(std::atomic<uint64_t>& c, uint64_t n) {
    check_writer();
    c.store(c.load(std::memory_order_relaxed) - n, std::memory_order_relaxed);
  }

 private:
#if ECO_CHECK_THREADS
  static uintptr_t thread_token() {
    static thread_local char token;
    return reinterpret_cast<uintptr_t>(&token);
  }
  void check_writer() const {
    uintptr_t owner = owner_.load(std::memory_order_relaxed);
    if (owner != 0 && owner != thread_token()) {
      std::fputs("eco: internal error: per-thread counters written by a thread that does not own them\n", stderr);
      std::abort();
    }
  }
  std::atomic<uintptr_t> owner_{0};
#else
  void check_writer() const {}
#endif
};

}  // namespace eco::session
