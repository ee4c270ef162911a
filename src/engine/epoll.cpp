// The epoll engine: edge-triggered readiness, one loop per thread.
//
// Each connection is registered once for IN|OUT|RDHUP, edge-triggered, so the loop
// never calls epoll_ctl on the hot path. The loop and the TCP echo are the readiness
// skeleton's (readiness_loop.h); this file adds UDP: recvmmsg up to 16 datagrams,
// sendmmsg each back to its sender, whole.
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <cstring>
#include <memory>

#include "engine/readiness_loop.h"
#include "session/udp_guard.h"

namespace eco::engine {
namespace {

constexpr int kUdpBatch = 16;       // datagrams per recvmmsg
constexpr int kUdpRounds = 16;      // recvmmsg calls per listener per turn, for fairness
constexpr size_t kDatagramMax = 65536;

class EpollLoop : public ReadinessLoop<EpollLoop, ReadyConn> {
 public:
  explicit EpollLoop(LoopContext& ctx)
      : ReadinessLoop(ctx), udp_guard_(cfg_.limits, *ctx.admission, counters_) {}

  Status setup_extra() {
    for (const Listener& l : ctx_.listeners)
      if (l.proto == net::Proto::udp) {
        udp_bufs_.reset(new char[size_t(kUdpBatch) * kDatagramMax]);
        break;
      }
    return {};
  }
  void on_listener(size_t i) {
    if (listeners_[i].l->proto == net::Proto::udp) return handle_udp(*listeners_[i].l);
    ReadinessLoop::on_listener(i);
  }
  static constexpr bool kShortReadDrains = true;
  bool real_eof(ReadyConn&) { return true; }

 private:
  void handle_udp(Listener& l);
  int recv_batch(Listener& l, mmsghdr* msgs, iovec* iov, sockaddr_storage* from);
  int drop_by_policy(mmsghdr* msgs, int n);
  void send_batch(Listener& l, mmsghdr* msgs, int n);

  session::UdpGuard udp_guard_;
  std::unique_ptr<char[]> udp_bufs_;
};

void EpollLoop::handle_udp(Listener& l) {
  mmsghdr msgs[kUdpBatch];
  iovec iov[kUdpBatch];
  sockaddr_storage from[kUdpBatch];
  for (int round = 0; round < kUdpRounds; ++round) {
    int got = recv_batch(l, msgs, iov, from);
    if (got <= 0) return;
    int n = udp_guard_.active() ? drop_by_policy(msgs, got) : got;
    send_batch(l, msgs, n);
    if (got < kUdpBatch) return;  // the socket is empty
  }
}

int EpollLoop::recv_batch(Listener& l, mmsghdr* msgs, iovec* iov, sockaddr_storage* from) {
  for (int i = 0; i < kUdpBatch; ++i) {
    iov[i] = {udp_bufs_.get() + size_t(i) * kDatagramMax, kDatagramMax};
    msgs[i].msg_hdr = msghdr{};
    msgs[i].msg_hdr.msg_name = &from[i];
    msgs[i].msg_hdr.msg_namelen = sizeof from[i];
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  int n = recvmmsg(l.fd.get(), msgs, kUdpBatch, MSG_DONTWAIT, nullptr);
  if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
    log::warn("recvmmsg on udp://{}: {}", l.addr.to_string(), std::strerror(errno));
  return n;
}

// Policy drops (reflector ports, access list, rate) leave the batch before the echo.
int EpollLoop::drop_by_policy(mmsghdr* msgs, int n) {
  uint64_t now = udp_guard_.needs_time() ? now_ns() : 0;
  int kept = 0;
  for (int i = 0; i < n; ++i) {
    if (!udp_guard_.pass(static_cast<sockaddr*>(msgs[i].msg_hdr.msg_name), msgs[i].msg_hdr.msg_namelen, now)) continue;
    if (kept != i) msgs[kept] = msgs[i];  // still points at its own iov and address
    ++kept;
  }
  return kept;
}

// Each datagram goes back whole to its sender: same buffer, length and address.
void EpollLoop::send_batch(Listener& l, mmsghdr* msgs, int n) {
  uint64_t bytes = 0;
  for (int i = 0; i < n; ++i) {
    msgs[i].msg_hdr.msg_iov->iov_len = msgs[i].msg_len;
    msgs[i].msg_hdr.msg_flags = 0;
    bytes += msgs[i].msg_len;
  }
  int sent = 0, dropped = 0;
  while (sent < n) {
    int m = sendmmsg(l.fd.get(), msgs + sent, unsigned(n - sent), MSG_DONTWAIT);
    if (m < 0) {
      if (errno == EINTR) continue;
      // sendmmsg fails only for the first message of the call: that one datagram is
      // dropped (send buffer full, sender unreachable) and counted; the rest still go.
      counters_.add(counters_.udp_dropped, 1);
      bytes -= msgs[sent].msg_len;
      ++dropped;
      ++sent;
      continue;
    }
    sent += m;
  }
  counters_.add(counters_.udp_datagrams, uint64_t(n - dropped));
  counters_.add(counters_.udp_bytes, bytes);
}

}  // namespace

Status run_epoll(LoopContext& ctx) {
  EpollLoop loop(ctx);
  return loop.run();
}

}  // namespace eco::engine
