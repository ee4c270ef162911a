#pragma once
// The sockmap engine's kernel side: loads the embedded BPF object (src/bpf/echo.bpf.c,
// compiled and turned into a skeleton at build time, so no file is read at run time),
// attaches the verdict program to the sockhash, and gives the loop the few map
// operations it needs. Everything is held by file descriptors of this process: when
// it exits, even by SIGKILL, the maps and the program go away and the sockets return
// to plain TCP. Nothing is pinned or attached anywhere global.
#include <cstdint>
#include <memory>
#include <string>

#include "util/fd.h"
#include "util/result.h"

struct ring_buffer;

namespace eco::engine {

// Whether this kernel and process can run the engine: one trial load, cached.
struct SockmapSupport {
  bool available = false;
  std::string reason;  // why not, e.g. "bpf(BPF_PROG_LOAD): Operation not permitted"
};
const SockmapSupport& sockmap_support();

// What one connection's BPF state says.
struct SockmapConnStats {
  uint64_t redirected = 0;  // bytes echoed in-kernel
  uint64_t passed = 0;      // bytes handed to user space
  uint32_t repeats = 0;     // retransmitted segments whose old bytes were dropped or cut
  uint32_t unchecked = 0;   // segments whose TCP sequence numbers did not add up (not checked)
  bool handed_off = false;
  bool broken = false;      // an overlap could not be cut: the connection must be reset
};

class SockmapKernel {
 public:
  // Called with (cookie, tag) for every connection the verdict handed to user space.
  using HandoffFn = void (*)(void* ctx, uint64_t cookie, uint64_t tag);

  static Result<std::unique_ptr<SockmapKernel>> load(HandoffFn on_handoff, void* ctx);
  ~SockmapKernel();
  SockmapKernel(const SockmapKernel&) = delete;
  SockmapKernel& operator=(const SockmapKernel&) = delete;

  // Puts an accepted socket under the verdict: its state entry first (tagged), then
  // the sockhash, then a nudge so bytes that arrived before insertion are judged now,
  // in order, ahead of any later ones. Returns the socket cookie.
  Result<uint64_t> insert(int fd, uint64_t tag);
  // Forgets a connection's state (the sockhash entry goes with the socket's close).
  void forget(uint64_t cookie);
  SockmapConnStats conn_stats(uint64_t cookie) const;
  // Loop-wide totals, in one map lookup.
  struct Totals {
    uint64_t bytes = 0;     // redirected (echoed in-kernel)
    uint64_t handoffs = 0;  // connections handed to user space, ever
    uint64_t broken = 0;    // connections the verdict marked broken, ever
  };
  Totals totals() const;

  int handoff_fd() const;  // epoll this; then call drain_handoffs()
  void drain_handoffs();
  void deliver(uint64_t cookie, uint64_t tag);  // from the ring callback
  // Ring records delivered so far: fewer than totals().handoffs + .broken after
  // drain_handoffs() means some were lost (the ring was full).
  uint64_t records() const { return records_; }

 private:
  SockmapKernel() = default;

  Fd socks_, conns_, ring_map_;
  ring_buffer* ring_ = nullptr;
  HandoffFn on_handoff_ = nullptr;
  uint64_t records_ = 0;
  void* ctx_ = nullptr;
};

// TCP-level facts the loop needs to close a connection at the right moment.
struct TcpFlushState {
  uint64_t received = 0;  // bytes received from the peer (tcpi_bytes_received)
  uint64_t queued = 0;    // bytes ever queued for sending (acked + still in the send queue)
  bool closed = false;    // TCP state CLOSE (reset, or fully closed): no more bytes will come
  uint64_t held() const { return received > queued ? received - queued : 0; }
  // Once the peer's FIN is in, tcpi_bytes_received counts it as one byte too.
  uint64_t held_after_fin() const { return received > queued + 1 ? received - 1 - queued : 0; }
};
Result<TcpFlushState> tcp_flush_state(int fd);

}  // namespace eco::engine
