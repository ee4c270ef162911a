// The io_uring engine's UDP side: one multishot recvmsg per listener into a buffer
// ring of its own; each datagram goes back whole to its sender, straight from its ring
// buffer (see uring_loop.h).
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

#include "engine/uring_loop.h"
#include "util/log.h"

namespace eco::engine {

void UringLoop::arm_udp(size_t i) {
  UringListener& ls = listeners_[i];
  if (ls.armed || !ls.l->fd.valid() || draining_) return;
  io_uring_sqe* s = sqe();
  io_uring_prep_recvmsg_multishot(s, ls.l->fd.get(), &udp_msg_, 0);
  s->flags |= IOSQE_BUFFER_SELECT;
  s->buf_group = kUdpGroup;
  io_uring_sqe_set_data64(s, tag(kUdpRecv, 0, uint32_t(i)));
  ls.armed = true;
  ls.starved = false;
  ++inflight_;
}

void UringLoop::on_udp_recv(size_t i, int res, unsigned flags) {
  UringListener& ls = listeners_[i];
  if (!(flags & IORING_CQE_F_MORE)) {
    ls.armed = false;
    --inflight_;
  }
  if (flags & IORING_CQE_F_BUFFER) {
    auto bid = uint16_t(flags >> IORING_CQE_BUFFER_SHIFT);
    udp_bufs_.taken();
    char* buf = udp_bufs_.addr(bid);
    io_uring_recvmsg_out* o =
        res >= 0 && ls.l->fd.valid() ? io_uring_recvmsg_validate(buf, res, &udp_msg_) : nullptr;
    // Policy drops (reflector ports, access list, rate) are never echoed.
    if (o && udp_guard_.active() &&
        !udp_guard_.pass(static_cast<sockaddr*>(io_uring_recvmsg_name(o)), std::min(o->namelen, udp_msg_.msg_namelen),
                         now_))
      o = nullptr;  // recycled below, like a truncated one; not an error
    bool truncated = o && (o->flags & MSG_TRUNC);
    if (truncated) counters_.add(counters_.udp_dropped, 1);
    if (!o || truncated) {
      udp_bufs_.recycle(bid);
    } else {
      UdpSend& u = udp_sends_[bid];
      u.iov.iov_base = io_uring_recvmsg_payload(o, &udp_msg_);
      u.iov.iov_len = io_uring_recvmsg_payload_length(o, res, &udp_msg_);
      u.msg = msghdr{};
      u.msg.msg_name = io_uring_recvmsg_name(o);
      u.msg.msg_namelen = std::min(o->namelen, udp_msg_.msg_namelen);
      u.msg.msg_iov = &u.iov;
      u.msg.msg_iovlen = 1;
      io_uring_sqe* s = sqe();
      // MSG_DONTWAIT: a full send buffer drops the datagram (counted), as UDP does.
      io_uring_prep_sendmsg(s, ls.l->fd.get(), &u.msg, MSG_DONTWAIT | MSG_NOSIGNAL);
      io_uring_sqe_set_data64(s, tag(kUdpSend, 0, bid));
      ++inflight_;
    }
  }
  if (ls.armed || draining_ || res == -ECANCELED) return;
  if (res == -ENOBUFS) {
    ls.starved = true;  // re-armed by rearm_starved_udp() once buffers are back
    return;
  }
  if (res < 0) log::warn("recvmsg on udp://{}: {}", ls.l->addr.to_string(), std::strerror(-res));
  arm_udp(i);
}

void UringLoop::on_udp_send(uint16_t bid, int res) {
  --inflight_;
  if (res >= 0) {  // counted when echoed, as the epoll engine does: a dropped one is not
    counters_.add(counters_.udp_datagrams, 1);
    counters_.add(counters_.udp_bytes, uint64_t(res));
  } else {
    counters_.add(counters_.udp_dropped, 1);
  }
  udp_bufs_.recycle(bid);
}

// A UDP receive that ran out of buffers is re-armed at the top of the next turn once
// buffers are back. (Not from the send completion that returns a buffer: the ENOBUFS
// completion may come after the last send completion of the batch, and then no later
// event would re-arm it.)
void UringLoop::rearm_starved_udp() {
  if (udp_bufs_.free_count() == 0) return;
  for (size_t i = 0; i < listeners_.size(); ++i)
    if (listeners_[i].starved) arm_udp(i);
}

}  // namespace eco::engine
