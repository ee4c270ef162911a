// The UDP load loop: a connected UDP socket per "connection" on the shared loop
// skeleton, each datagram one message whose header (connection id, sequence) says
// which request it answers. Closed loop keeps `depth` datagrams in flight per socket
// and gives up on one after a timeout (UDP may drop it); open loop sends on the
// schedule.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "bench/load_loop.h"
#include "bench/payload.h"

namespace eco::bench {
namespace {

constexpr uint32_t kMaxDepth = 1024;
constexpr int kRecvPerEvent = 64;

struct Slot {
  uint64_t seq = 0;
  uint64_t sent_at = 0;
  bool used = false;
};

struct Sock {
  Link link;
  uint32_t id = 0;
  bool out_armed = false;
  bool replied = false;
  uint64_t next_seq = 0;  // next message to send
  uint64_t due_seq = 0;   // messages below this may be sent now
  uint64_t sent = 0, received = 0;
};

class UdpLoop final : public LoadLoop {
 public:
  using LoadLoop::LoadLoop;

 private:
  bool setup(uint64_t now) override;
  void on_due(uint64_t m, uint64_t now) override;
  void on_event(uint32_t k, uint32_t events, uint64_t now) override;
  void on_tick(uint64_t now) override;
  void on_stop(uint64_t) override {}
  // A datagram not back within its timeout is lost: no need to wait out the grace.
  bool drained(uint64_t now) const override { return in_flight() == 0 || now >= end_ + timeout_ns_; }
  void finish() override;

  std::string where() const { return "udp://" + plan_.target.to_string(); }
  void refused() { count(ErrorKind::refused, where() + ": connection refused (no server on that port)"); }
  Slot* free_slot(uint32_t k);
  Slot* find_slot(uint32_t k, uint64_t seq);
  void release(Sock& s, Slot* slot);
  void flush(uint32_t k, uint64_t now);
  void on_readable(uint32_t k, uint64_t now);
  uint64_t in_flight() const;

  const Transport& net_ = *plan_.transport;
  uint32_t depth_ = 1;
  uint64_t timeout_ns_ = 1'000'000'000;
  std::vector<Sock> socks_;
  std::vector<Slot> slots_;
  std::vector<uint8_t> tx_, rx_;
};

Slot* UdpLoop::free_slot(uint32_t k) {
  Slot* s = &slots_[size_t(k) * depth_];
  for (uint32_t i = 0; i < depth_; ++i)
    if (!s[i].used) return &s[i];
  return nullptr;
}

Slot* UdpLoop::find_slot(uint32_t k, uint64_t seq) {
  Slot* s = &slots_[size_t(k) * depth_];
  for (uint32_t i = 0; i < depth_; ++i)
    if (s[i].used && s[i].seq == seq) return &s[i];
  return nullptr;
}

// A closed-loop slot is free again: the next message may go.
void UdpLoop::release(Sock& s, Slot* slot) {
  if (slot == nullptr) return;
  slot->used = false;
  if (!stopping_) ++s.due_seq;
}

void UdpLoop::flush(uint32_t k, uint64_t now) {
  Sock& s = socks_[k];
  while (s.next_seq < s.due_seq) {
    Slot* slot = nullptr;
    if (!open_loop() && (slot = free_slot(k)) == nullptr) break;
    fill_stream(s.id, size_, s.next_seq * size_, size_, tx_.data());
    IoResult w = net_.write(s.link, tx_.data(), size_);
    if (w.status == Io::retry) {
      want_out(s.link.fd.get(), k, true, s.out_armed);
      return;
    }
    if (w.status != Io::ok) {
      // ECONNREFUSED: an ICMP port unreachable for an earlier datagram; the message is
      // sent again. Anything else: skip this message rather than spin on it.
      if (w.err == ECONNREFUSED) {
        refused();
        continue;
      }
      count(ErrorKind::other, fmt::format("sending to {}: {}", where(), std::strerror(w.err)));
      ++s.next_seq;
      continue;
    }
    if (slot != nullptr) *slot = Slot{s.next_seq, now, true};
    ++s.next_seq;
    ++s.sent;
  }
  want_out(s.link.fd.get(), k, false, s.out_armed);
}

void UdpLoop::on_readable(uint32_t k, uint64_t now) {
  Sock& s = socks_[k];
  for (int i = 0; i < kRecvPerEvent; ++i) {
    IoResult r = net_.read(s.link, rx_.data(), rx_.size());
    if (r.status == Io::retry) break;
    if (r.status != Io::ok) {
      if (r.err == ECONNREFUSED) {
        refused();
        continue;
      }
      count(ErrorKind::other, fmt::format("receiving from {}: {}", where(), std::strerror(r.err)));
      break;
    }
    if (r.bytes != size_) {
      count(ErrorKind::mismatch, fmt::format("{} echoed a datagram of {} bytes, sent {}", where(), r.bytes, size_));
      continue;
    }
    uint32_t conn;
    uint64_t seq;
    read_header(rx_.data(), conn, seq);
    if (conn != s.id || seq >= s.next_seq) {
      count(ErrorKind::mismatch, fmt::format("{} echoed a datagram that was never sent (connection {}, message {})",
                                             where(), conn, seq));
      continue;
    }
    Slot* slot = nullptr;
    if (!open_loop()) {
      slot = find_slot(k, seq);
      if (slot == nullptr) continue;  // late (already counted as a timeout) or duplicate
    }
    if (o_.verify) {
      size_t bad = verify_stream(s.id, size_, seq * size_, rx_.data(), size_);
      if (bad < size_) {
        count(ErrorKind::mismatch, fmt::format("echo differs on connection {} message {} byte {}", s.id, seq, bad));
        release(s, slot);
        continue;
      }
    }
    record(open_loop() ? sched_.intended(seq, k) : slot->sent_at, now);
    if (in_window(now)) out_.bytes += size_;
    s.replied = true;
    ++s.received;
    release(s, slot);
  }
  flush(k, now);
}

void UdpLoop::on_event(uint32_t k, uint32_t events, uint64_t now) {
  if (events & (EPOLLIN | EPOLLERR)) on_readable(k, now);
  if (events & EPOLLOUT) flush(k, now);
}

void UdpLoop::on_due(uint64_t m, uint64_t now) {
  const uint32_t n = plan_.conns;
  uint32_t k = uint32_t(m % n);
  socks_[k].due_seq = m / n + 1;
  flush(k, now);
}

void UdpLoop::on_tick(uint64_t now) {
  if (open_loop()) return;
  // A datagram (or its echo) may be lost: give up on it and send the next one.
  for (uint32_t k = 0; k < socks_.size(); ++k) {
    bool freed = false;
    Slot* sl = &slots_[size_t(k) * depth_];
    for (uint32_t i = 0; i < depth_; ++i) {
      if (sl[i].used && now - sl[i].sent_at > timeout_ns_) {
        count(ErrorKind::timeout, fmt::format("no echo from {} within {:g} s", where(), double(timeout_ns_) / 1e9));
        release(socks_[k], &sl[i]);
        freed = true;
      }
    }
    if (freed) flush(k, now);
  }
}

uint64_t UdpLoop::in_flight() const {
  uint64_t n = 0;
  if (open_loop()) {
    for (const Sock& s : socks_) n += s.sent > s.received ? s.sent - s.received : 0;
  } else {
    for (const Slot& sl : slots_) n += sl.used ? 1 : 0;
  }
  return n;
}

void UdpLoop::finish() {
  uint64_t missing = in_flight();
  if (missing > 0) {
    out_.errors.timeout += missing;
    if (out_.first_error.empty()) out_.first_error = fmt::format("{} echoes from {} never came back", missing, where());
  }
  slots_.assign(slots_.size(), Slot{});
  for (Sock& s : socks_) {
    if (s.replied) ++out_.connected;
    net_.close(s.link);
  }
}

bool UdpLoop::setup(uint64_t now) {
  const uint32_t n = plan_.conns;
  depth_ = open_loop() ? 1 : std::clamp<uint32_t>(o_.depth, 1, kMaxDepth);
  timeout_ns_ = uint64_t(std::min(o_.timeout_s, 1.0) * 1e9);
  socks_.resize(n);
  slots_.assign(size_t(n) * depth_, Slot{});
  tx_.assign(size_, 0);
  rx_.assign(65536, 0);
  SourcePlan sources = plan_.sources;
  for (uint32_t k = 0; k < n; ++k) {
    Sock& s = socks_[k];
    s.id = plan_.first_conn + k;
    net::Address scratch;
    if (auto st = net_.open(s.link, plan_.target, sources.pick(s.id, scratch)); !st) {
      out_.fatal = st.error().message;
      return false;
    }
    if (!watch(s.link.fd.get(), k, EPOLLIN)) {
      out_.fatal = fmt::format("epoll_ctl: {}", std::strerror(errno));
      return false;
    }
    if (!open_loop()) {
      s.due_seq = depth_;
      flush(k, now);
    }
  }
  return true;
}

}  // namespace

void run_udp_worker(const WorkerPlan& plan, WorkerLive& live, WorkerResult& out) {
  UdpLoop loop(plan, live, out);
  loop.run();
}

}  // namespace eco::bench
