// The TCP load loop: non-blocking connections on the shared loop skeleton,
// level-triggered. A connection's state is a handful of stream offsets (sent, due,
// echoed); the bytes themselves are regenerated from the payload pattern, so nothing
// is allocated or copied per message.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include <fmt/format.h>

#include "bench/load_loop.h"
#include "bench/payload.h"
#include "bench/tls_transport.h"

namespace eco::bench {
namespace {

constexpr size_t kIoChunk = 256 << 10;
constexpr uint64_t kRetryNs = 100'000'000;     // after a refused or failed connect
constexpr uint64_t kReconnectNs = 10'000'000;  // after an established connection failed
constexpr uint32_t kStreamWindow = 256 << 10;  // stream mode keeps this many bytes in flight
constexpr uint32_t kMaxDepth = 4096;
constexpr int kConnectsPerPass = 256;          // interleave big ramps with I/O
constexpr int kSourceAttempts = 8;             // sources tried when one has no port left

enum class State : uint8_t { waiting, connecting, open, finished };

struct Conn {
  Link link;
  State state = State::waiting;
  bool out_armed = false;
  bool queued = false;       // in the connect queue
  uint32_t id = 0;           // global connection id carried in the payload
  uint64_t send_off = 0;     // stream offsets: message seq occupies [seq*S, (seq+1)*S)
  uint64_t target_off = 0;   // bytes due to be sent
  uint64_t recv_off = 0;     // bytes echoed and verified
  uint64_t started = 0;      // connect start (crr latency, connect timeout, phases)
  uint64_t intended = 0;     // crr open loop: when the schedule wanted this connection
  uint64_t last_progress = 0;
  bool echoed = false;       // the first echoed byte of this connection has arrived
};

ErrorKind kind_of(int err) {
  switch (err) {
    case ECONNREFUSED: return ErrorKind::refused;
    case ECONNRESET:
    case EPIPE: return ErrorKind::reset;
    case ETIMEDOUT: return ErrorKind::timeout;
    default: return ErrorKind::other;
  }
}

class TcpLoop final : public LoadLoop {
 public:
  using LoadLoop::LoadLoop;

 private:
  bool crr() const { return o_.mode == Mode::crr; }
  // crr's open loop deals connections to free slots; the others deal messages to
  // connections, round robin.
  bool paced_connects() const { return crr() && open_loop(); }
  // rr opens its connections during the warm-up, so all of them count; crr's count
  // like its round trips, in the measured window.
  bool phases_counted(const Conn& c) const { return !crr() || in_window(c.started); }

  bool setup(uint64_t now) override;
  void start_due(uint64_t now) override;
  uint64_t next_start() const override { return q_len_ > 0 ? connect_at_[q_head_] : UINT64_MAX; }
  void on_due(uint64_t m, uint64_t now) override;
  void on_event(uint32_t k, uint32_t events, uint64_t now) override;
  void on_tick(uint64_t now) override;
  void on_stop(uint64_t now) override;
  bool drained(uint64_t now) const override;
  void finish() override;

  void enqueue_connect(uint32_t k, uint64_t at);
  void start_connect(uint32_t k, uint64_t now);
  void on_connected(uint32_t k, uint64_t now);
  void queue_message(Conn& c, uint32_t k, uint64_t now);
  void flush(uint32_t k, uint64_t now);
  void on_readable(uint32_t k, uint64_t now);
  void complete(uint32_t k, uint64_t seq, uint64_t now);
  void fail(uint32_t k, ErrorKind kind, const std::string& why, uint64_t now);
  void close_conn(Conn& c);
  void drain_backlog(uint64_t now);
  void set_out(uint32_t k, bool on) { want_out(conns_[k].link.fd.get(), k, on, conns_[k].out_armed); }
  void record_phases(const Conn& c, uint64_t now);
  // The transport's words for an error when it has them (TLS), else the errno's.
  static const char* why(const IoResult& r) { return r.text ? r.text : std::strerror(r.err); }

  void fill(const Conn& c, uint64_t off, size_t n, uint8_t* out) const { fill_(c.id, size_, off, n, out); }

  // The payload's form, chosen once (a call through these costs what a direct call does).
  void (*const fill_)(uint32_t, uint32_t, uint64_t, size_t, uint8_t*) = o_.text ? fill_text_stream : fill_stream;
  size_t (*const verify_)(uint32_t, uint32_t, uint64_t, const uint8_t*, size_t) =
      o_.text ? verify_text_stream : verify_stream;
  const Transport& net_ = *plan_.transport;
  SourcePlan sources_ = plan_.sources;
  uint32_t depth_ = 1;
  std::vector<Conn> conns_;
  std::vector<uint64_t> sent_at_;    // closed loop: when message seq was queued, [k*depth + seq%depth]
  std::vector<uint32_t> connect_q_;  // ring of connection indices waiting to connect
  std::vector<uint64_t> connect_at_;
  size_t q_head_ = 0, q_len_ = 0;
  std::vector<uint32_t> free_;       // crr open loop: idle slots
  uint64_t backlog_ = 0;             // crr open loop: due connections waiting for a slot
  std::vector<uint8_t> tx_, rx_;
  std::unique_ptr<TlsLinks> tls_;    // TLS: each slot's endpoint state (Link::session)
};

void TcpLoop::close_conn(Conn& c) {
  net_.close(c.link);
  c.out_armed = false;
  c.state = State::waiting;
}

void TcpLoop::enqueue_connect(uint32_t k, uint64_t at) {
  Conn& c = conns_[k];
  if (c.queued) return;
  c.queued = true;
  size_t slot = (q_head_ + q_len_) % connect_q_.size();
  connect_q_[slot] = k;
  connect_at_[slot] = at;
  ++q_len_;
}

// Starts the oldest due connections on free slots. Their latency counts from when
// they were due, so a generator short of slots shows in the percentiles.
void TcpLoop::drain_backlog(uint64_t now) {
  while (backlog_ > 0 && !free_.empty()) {
    uint32_t k = free_.back();
    free_.pop_back();
    conns_[k].intended = sched_.due(next_m_ - backlog_);
    --backlog_;
    start_connect(k, now);
  }
}

void TcpLoop::start_due(uint64_t now) {
  drain_backlog(now);
  for (int i = 0; i < kConnectsPerPass && q_len_ > 0; ++i) {
    if (connect_at_[q_head_] > now) break;
    uint32_t k = connect_q_[q_head_];
    q_head_ = (q_head_ + 1) % connect_q_.size();
    --q_len_;
    conns_[k].queued = false;
    start_connect(k, now);
  }
}

void TcpLoop::fail(uint32_t k, ErrorKind kind, const std::string& why, uint64_t now) {
  Conn& c = conns_[k];
  count(kind, why);
  close_conn(c);
  if (stopping_) c.state = State::finished;
  else if (paced_connects()) free_.push_back(k);  // the failed attempt is counted; the schedule goes on
  // Keep the offered load going: the connection comes back with the next sequence.
  else enqueue_connect(k, now + (kind == ErrorKind::refused ? kRetryNs : kReconnectNs));
}

void TcpLoop::start_connect(uint32_t k, uint64_t now) {
  Conn& c = conns_[k];
  for (int attempt = 0; attempt < kSourceAttempts; ++attempt) {
    net::Address scratch;
    const net::Address* src = sources_.pick(c.id, scratch);
    if (auto st = net_.open(c.link, plan_.target, src); !st) {
      int err = st.error().code;
      // This source address has no free port left towards the server: use the next.
      if (err == EADDRNOTAVAIL && sources_.next_block()) continue;
      fail(k, kind_of(err), st.error().message, now);
      return;
    }
    c.state = State::connecting;
    c.started = now;
    c.last_progress = now;
    c.echoed = false;
    if (!watch(c.link.fd.get(), k, EPOLLIN | EPOLLOUT)) {
      fail(k, ErrorKind::other, fmt::format("epoll_ctl: {}", std::strerror(errno)), now);
      return;
    }
    c.out_armed = true;
    return;
  }
  fail(k, ErrorKind::other, "no loopback source address with a free port left", now);
}

void TcpLoop::on_connected(uint32_t k, uint64_t now) {
  Conn& c = conns_[k];
  IoResult r = net_.establish(c.link);
  if (r.status == Io::retry) {
    set_out(k, r.want_write);
    return;
  }
  if (r.status != Io::ok) {
    fail(k, kind_of(r.err),
         fmt::format("cannot connect to {}: {}", plan_.target.to_string(), why(r)), now);
    return;
  }
  c.state = State::open;
  ++out_.connected;
  if (phases_counted(c)) record_phases(c, now);
  c.last_progress = now;
  // Continue the connection's stream where it left off (after a reconnect), so a
  // stale byte from an old connection can never match.
  uint64_t seq = (c.target_off + size_ - 1) / size_;
  if (open_loop() && !crr()) seq = std::max(seq, sched_.next_seq_for(next_m_, k));
  c.send_off = c.recv_off = c.target_off = seq * size_;
  if (stopping_) return;
  if (!open_loop() || crr()) {
    uint32_t n = crr() ? 1 : depth_;
    for (uint32_t i = 0; i < n; ++i) queue_message(c, k, now);
  }
  flush(k, now);
}

// TCP: connect() until established. TLS: the same until the TCP connect completed, and
// from there the handshake.
void TcpLoop::record_phases(const Conn& c, uint64_t now) {
  // (The transport's own clock for TLS: a handshake can begin and end within one turn.)
  const Handshake* hs = net_.handshake ? net_.handshake(c.link) : nullptr;
  if (!hs) {
    out_.connect.record(std::max<uint64_t>(now - c.started, 1));
    return;
  }
  uint64_t up = std::max(hs->transport_up, c.started);
  out_.connect.record(std::max<uint64_t>(up - c.started, 1));
  out_.handshake.record(std::max<uint64_t>(std::max(hs->done, up) - up, 1));
  ++out_.handshakes;
  if (hs->resumed) ++out_.resumed;
  out_.tls_version = hs->version;
  out_.tls_cipher = hs->cipher;
}

void TcpLoop::queue_message(Conn& c, uint32_t k, uint64_t now) {
  uint64_t seq = c.target_off / size_;
  sent_at_[size_t(k) * depth_ + seq % depth_] = now;
  c.target_off += size_;
}

void TcpLoop::flush(uint32_t k, uint64_t now) {
  Conn& c = conns_[k];
  if (c.state != State::open) return;
  if (c.send_off == c.recv_off && c.send_off < c.target_off) c.last_progress = now;  // the clock starts now
  while (c.send_off < c.target_off) {
    size_t n = size_t(std::min<uint64_t>(c.target_off - c.send_off, tx_.size()));
    fill(c, c.send_off, n, tx_.data());
    IoResult w = net_.write(c.link, tx_.data(), n);
    if (w.status == Io::retry) {
      set_out(k, true);
      return;
    }
    if (w.status != Io::ok) {
      fail(k, w.err == EPIPE || w.err == ECONNRESET ? ErrorKind::reset : ErrorKind::other,
           fmt::format("sending to {}: {}", plan_.target.to_string(), why(w)), now);
      return;
    }
    c.send_off += w.bytes;
  }
  set_out(k, false);
}

void TcpLoop::complete(uint32_t k, uint64_t seq, uint64_t now) {
  Conn& c = conns_[k];
  uint64_t from;
  if (crr()) from = open_loop() ? c.intended : c.started;
  else if (open_loop()) from = sched_.intended(seq, k);
  else from = sent_at_[size_t(k) * depth_ + seq % depth_];
  record(from, now);
  if (stopping_) return;
  if (crr()) {
    // One request per connection: close (FIN from our side) and open the next.
    close_conn(c);
    if (!paced_connects()) {
      start_connect(k, now);
      return;
    }
    free_.push_back(k);
    drain_backlog(now);
    return;
  }
  if (!open_loop()) queue_message(c, k, now);
}

void TcpLoop::on_readable(uint32_t k, uint64_t now) {
  Conn& c = conns_[k];
  IoResult r = net_.read(c.link, rx_.data(), rx_.size());
  if (r.status == Io::retry) return;
  if (r.status == Io::error) {
    fail(k, kind_of(r.err), fmt::format("receiving from {}: {}", plan_.target.to_string(), why(r)), now);
    return;
  }
  if (r.status == Io::closed) {
    if (c.send_off > c.recv_off)
      fail(k, ErrorKind::short_read,
           fmt::format("{} closed the connection with {} bytes not echoed (message {} byte {})",
                       plan_.target.to_string(), c.send_off - c.recv_off, c.recv_off / size_, c.recv_off % size_),
           now);
    else
      fail(k, ErrorKind::other, fmt::format("{} closed the connection", plan_.target.to_string()), now);
    return;
  }
  size_t got = r.bytes;
  if (c.recv_off + got > c.send_off) {
    fail(k, ErrorKind::mismatch,
         fmt::format("{} echoed {} bytes more than it was sent", plan_.target.to_string(),
                     c.recv_off + got - c.send_off),
         now);
    return;
  }
  if (o_.verify) {
    size_t bad = verify_(c.id, size_, c.recv_off, rx_.data(), got);
    if (bad < got) {
      uint64_t at = c.recv_off + bad;
      uint8_t want;
      fill(c, at, 1, &want);
      fail(k, ErrorKind::mismatch,
           fmt::format("echo differs on connection {} message {} byte {}: sent 0x{:02x}, received 0x{:02x}", c.id,
                       at / size_, at % size_, want, rx_[bad]),
           now);
      return;
    }
  }
  if (!c.echoed) {
    c.echoed = true;
    if (phases_counted(c)) out_.first_echo.record(std::max<uint64_t>(now - c.started, 1));
  }
  uint64_t old = c.recv_off;
  c.recv_off += got;
  c.last_progress = now;
  if (in_window(now)) out_.bytes += got;
  for (uint64_t seq = old / size_; (seq + 1) * size_ <= c.recv_off; ++seq) {
    complete(k, seq, now);
    if (c.state != State::open) return;  // crr: the connection was replaced
  }
  flush(k, now);
}

void TcpLoop::on_event(uint32_t k, uint32_t events, uint64_t now) {
  Conn& c = conns_[k];
  if (c.state == State::connecting) {
    on_connected(k, now);
    return;
  }
  if (c.state != State::open) return;
  if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) on_readable(k, now);
  if (c.state == State::open && (events & EPOLLOUT)) flush(k, now);
}

void TcpLoop::on_due(uint64_t m, uint64_t now) {
  if (paced_connects()) {
    if (free_.empty() && in_window(sched_.due(m))) ++out_.slot_waits;
    ++backlog_;
    drain_backlog(now);
    return;
  }
  const uint32_t n = plan_.conns;
  uint32_t k = uint32_t(m % n);
  Conn& c = conns_[k];
  // A message due while its connection is down is never sent (the error that took
  // the connection down is already counted).
  if (c.state == State::open && c.target_off / size_ == m / n) {
    c.target_off += size_;
    flush(k, now);
  }
}

void TcpLoop::on_tick(uint64_t now) {
  const uint64_t limit = uint64_t(o_.timeout_s * 1e9);
  for (uint32_t k = 0; k < conns_.size(); ++k) {
    Conn& c = conns_[k];
    bool waiting = c.state == State::connecting || (c.state == State::open && c.send_off > c.recv_off);
    if (waiting && now - c.last_progress > limit)
      fail(k, ErrorKind::timeout,
           fmt::format("no {} from {} for {:g} s", c.state == State::connecting ? "connection" : "echo",
                       plan_.target.to_string(), o_.timeout_s),
           now);
  }
}

void TcpLoop::on_stop(uint64_t now) {
  backlog_ = 0;
  for (uint32_t k = 0; k < conns_.size(); ++k) {
    Conn& c = conns_[k];
    if (c.state == State::open) {
      // Finish the message being written; nothing new is started.
      c.target_off = std::min(c.target_off, (c.send_off + size_ - 1) / size_ * size_);
      flush(k, now);
    } else if (c.state == State::connecting || c.state == State::waiting) {
      close_conn(c);
      c.state = State::finished;
    }
  }
}

bool TcpLoop::drained(uint64_t) const {
  for (const Conn& c : conns_)
    if (c.state == State::open && c.recv_off < c.target_off) return false;
  return true;
}

void TcpLoop::finish() {
  // Whatever was sent and never came back within the grace period timed out.
  for (Conn& c : conns_) {
    if (c.state == State::open && c.send_off > c.recv_off) {
      uint64_t missing = (c.send_off - c.recv_off + size_ - 1) / size_;
      out_.errors.timeout += missing;
      if (out_.first_error.empty())
        out_.first_error = fmt::format("{} echoes from {} still missing {:g} s after the run", missing,
                                       plan_.target.to_string(), o_.grace_s);
    }
    net_.close(c.link);
    c.state = State::finished;
  }
}

bool TcpLoop::setup(uint64_t) {
  const uint32_t n = plan_.conns;
  if (o_.mode == Mode::rr) depth_ = std::clamp<uint32_t>(o_.depth, 1, kMaxDepth);
  if (o_.mode == Mode::stream)
    depth_ = std::clamp<uint32_t>(std::max(o_.depth, (kStreamWindow + size_ - 1) / size_), 1, kMaxDepth);
  if (open_loop()) depth_ = 1;  // latency comes from the schedule, not from stored send times
  conns_.resize(n);
  if (plan_.tls) {
    tls_ = std::make_unique<TlsLinks>(*plan_.tls, n);
    for (uint32_t k = 0; k < n; ++k) conns_[k].link.session = tls_->at(k);
  }
  sent_at_.assign(size_t(n) * depth_, 0);
  connect_q_.assign(n, 0);
  connect_at_.assign(n, 0);
  tx_.assign(std::min<size_t>(kIoChunk, std::max<size_t>(size_t(size_) * depth_, 4096)), 0);
  rx_.assign(kIoChunk, 0);
  const uint64_t start = plan_.time.start;
  for (uint32_t k = 0; k < n; ++k) {
    conns_[k].id = plan_.first_conn + k;
    if (paced_connects()) {
      free_.push_back(n - 1 - k);  // slot 0 is taken first
      continue;
    }
    uint64_t at = plan_.connect_rate > 0 ? start + uint64_t(double(k) * 1e9 / plan_.connect_rate) : start;
    enqueue_connect(k, at);
  }
  return true;
}

}  // namespace

void run_tcp_worker(const WorkerPlan& plan, WorkerLive& live, WorkerResult& out) {
  TcpLoop loop(plan, live, out);
  loop.run();
}

}  // namespace eco::bench
