#pragma once
// The io_uring engine: completion-based, one ring per thread. Its parts:
//   uring.cpp       the loop: setup, submit-and-wait, completions, ticks, drain, teardown
//   uring_tcp.cpp   accepting, and one TCP connection's receives, sends and close
//   uring_udp.cpp   UDP: multishot recvmsg, each datagram sent back from its ring buffer
//   uring_buf_ring.h  the provided-buffer rings
//
// Per listener one multishot accept (or, for UDP, one multishot recvmsg); per
// connection one multishot recv that takes its buffer from a shared provided-buffer
// ring only when bytes arrive, so an idle connection holds no user-space buffer.
// Received bytes go straight back with a non-blocking send from that same ring buffer
// (no copy); only what the kernel would not take at once is copied into the
// connection's queue (bounded by --buffer), and the ring buffer returns to the kernel.
// So a ring buffer is never held across a wait on a slow peer, and a few slow readers
// cannot starve everyone else of buffers.
//
// Backpressure is exact: each recv is armed with a byte cap (per completion and in
// total) equal to the room left under --buffer, so bytes held per connection never
// exceed it; when the cap is reached the kernel ends the recv (no F_MORE) and it is
// re-armed once sends have made room. At most one send is in flight per connection,
// so bytes leave in the order they came.
//
// What bytes mean (PROXY header, limits, close reasons, deadlines) is
// session::ConnRules'; this engine only moves them and keeps its requests in order.
#include <liburing.h>

#include <cstdint>
#include <vector>

#include "engine/accept_pause.h"
#include "engine/engine.h"
#include "engine/stages.h"
#include "engine/uring_buf_ring.h"
#include "session/conn_rules.h"
#include "session/udp_guard.h"

namespace eco::engine {

// user_data: kind (8 bits) | generation (24) | index (32). The index is a connection
// slot, a listener number, or a UDP buffer id.
enum Kind : uint8_t { kAccept = 1, kRecv, kSend, kUdpRecv, kUdpSend, kWake, kTimer, kCancel, kTick };

constexpr uint16_t kTcpGroup = 0;  // provided-buffer groups
constexpr uint16_t kUdpGroup = 1;

constexpr uint64_t tag(Kind k, uint32_t gen, uint32_t idx) {
  return uint64_t(k) << 56 | uint64_t(gen & 0xffffff) << 32 | idx;
}
constexpr Kind kind_of(uint64_t t) { return Kind(t >> 56); }
constexpr uint32_t index_of(uint64_t t) { return uint32_t(t); }

struct UringConn : session::Conn {
  bool recv_armed = false;
  bool send_busy = false;
  bool send_from_ring = false;  // the send in flight reads ring buffer ring_bid
  bool starved = false;         // recv ended with ENOBUFS; re-armed when buffers return
  uint16_t ring_bid = 0;
  uint32_t ring_len = 0;
  const char* ring_data = nullptr;  // the send's bytes: ring_len of them, in buffer ring_bid

  void reset_requests() {
    recv_armed = send_busy = send_from_ring = starved = false;
  }
};

struct UringListener {
  Listener* l;
  bool armed = false;
  bool starved = false;  // UDP recvmsg ended with ENOBUFS
};

// One echoed datagram in flight: its sendmsg header points into its ring buffer.
struct UdpSend {
  msghdr msg{};
  iovec iov{};
};

class UringLoop {
 public:
  explicit UringLoop(LoopContext& ctx);
  UringLoop(const UringLoop&) = delete;
  UringLoop& operator=(const UringLoop&) = delete;
  ~UringLoop();

  Status run();

 private:
  // uring.cpp
  Status setup();
  io_uring_sqe* sqe();
  void reap();
  void handle(const io_uring_cqe& cqe);
  void cancel(uint64_t user_data);
  void arm_timer();
  void arm_tick();
  void on_tick();
  void arm_wake();
  void enter_drain();
  void teardown();

  // uring_tcp.cpp
  void arm_accept(size_t i);
  void on_accept(size_t i, int res, unsigned flags);
  void resume_accepts();
  void add_conn(int fd, session::Service service);
  void arm_recv(uint32_t slot, bool one_completion);
  void on_recv(uint32_t slot, int res, unsigned flags);
  void take_bytes(uint32_t slot, uint16_t bid, uint32_t n);
  void send_ring(UringConn& c, uint32_t slot, uint16_t bid, const char* data, uint32_t n);
  void send_queued(UringConn& c, uint32_t slot);
  void on_send(uint32_t slot, int res);
  bool attach_queue(UringConn& c);
  const char* ring_bytes(const UringConn& c) const { return c.ring_data; }
  void settle(uint32_t slot);
  void rearm_starved();
  void begin_close(uint32_t slot, int err);
  void finalize(uint32_t slot);

  // uring_udp.cpp
  void arm_udp(size_t i);
  void on_udp_recv(size_t i, int res, unsigned flags);
  void on_udp_send(uint16_t bid, int res);
  void rearm_starved_udp();

  LoopContext& ctx_;
  const EngineConfig& cfg_;
  session::Counters& counters_;
  session::ConnRules rules_;
  LoopStages stages_;
  session::ConnSlots<UringConn> conns_;
  session::UdpGuard udp_guard_;
  bool clocked_ = false;  // deadlines, rates or the UDP rate need the clock each turn
  bool tick_armed_ = false;
  uint64_t now_ = 0;      // this turn's clock, kept only when clocked_
  __kernel_timespec tick_ts_{};
  io_uring ring_{};
  bool ring_up_ = false;
  BufRing tcp_bufs_;
  BufRing udp_bufs_;
  std::vector<UdpSend> udp_sends_;
  msghdr udp_msg_{};  // recvmsg template: room for the sender's address, no control data
  std::vector<UringListener> listeners_;
  // Connections waiting for a receive buffer, oldest first: tags from starved_head_ on.
  // While it is not empty the ring is short of buffers, and each connection gets one
  // buffer per turn in this order, so none is starved for long.
  std::vector<uint64_t> starved_;
  size_t starved_head_ = 0;
  __kernel_timespec timer_ts_{};
  uint64_t inflight_ = 0;  // requests whose last completion has not been seen
  bool draining_ = false;
  bool paused_ = false;  // accepting paused for lack of fds
  AcceptPause accept_pause_;  // its warning and counter, once per episode
  bool timer_armed_ = false;
  bool wake_armed_ = false;
};

}  // namespace eco::engine
