#include "session/conn_rules.h"

#include <algorithm>
#include <cstring>

#include "session/conn_log.h"
#include "util/log.h"

namespace eco::session {

static_assert(kNoSource == Admission::kNoSource);

ConnRules::ConnRules(const Limits& limits, Admission& adm, Counters& counters, uint32_t buffer_size)
    : lim_(limits),
      adm_(adm),
      counters_(counters),
      buffer_size_(buffer_size),
      pool_(buffer_size, 256),
      proxy_pool_(uint32_t(net::kProxyMaxHeader), 64),
      timers_(limits.idle_timeout_ns, limits.max_duration_ns, limits.proxy_protocol ? limits.proxy_timeout_ns : 0) {
  // One flag for everything per byte beyond plain echo: with no limits the hot path
  // pays a single predictable branch.
  policed_ = lim_.max_bytes || lim_.rate_per_ip || timers_.idle_enabled();
  inspect_ = policed_ || lim_.proxy_protocol;
  clocked_ = timers_.enabled() || lim_.rate_per_ip;
}

ConnRules::~ConnRules() = default;

// What a stage's calls may do to its connection: write into the out queue, count payload
// under the per-byte limits, and run its deadline.
class ConnRules::Io final : public StageIo {
 public:
  Io(ConnRules& r, Conn& c, uint32_t slot, uint64_t now) : r_(r), c_(c), slot_(slot), now_(now) {}
  uint32_t space() override {
    if (!c_.out.attached()) return r_.pool_.buffer_size();  // write() takes a buffer then
    return c_.out.room();
  }
  bool write(const char* data, uint32_t n) override {
    if (!r_.keep(c_, data, n)) {
      c_.close_why = "out of memory";
      return false;
    }
    return true;
  }
  bool payload_in(uint64_t n) override {
    c_.s.received(n);
    return r_.police(c_, slot_, n, now_, paused);
  }
  void payload_out(uint64_t n) override { c_.s.sent(n); }
  void arm_deadline() override {
    StageKind& k = r_.stages_[size_t(c_.service)];
    if (!k.deadline_ns) return;
    if (k.deadlines.contains(slot_)) k.deadlines.touch(slot_, now_);
    else k.deadlines.push_back(slot_, now_);
  }
  void disarm_deadline() override { r_.stages_[size_t(c_.service)].deadlines.remove(slot_); }
  uint64_t now() const override { return now_; }
  net::Address peer() const override { return c_.address(); }

  bool paused = false;

 private:
  ConnRules& r_;
  Conn& c_;
  uint32_t slot_;
  uint64_t now_;
};

void ConnRules::set_stage(Service s, StageFactory* f) {
  StageKind& k = stages_[size_t(s)];
  k.factory = f;
  k.deadline_ns = f ? f->deadline_ns() : 0;
  if (f) inspect_ = true;
  if (k.deadline_ns) clocked_ = true;
}

void ConnRules::refuse(Reject r, const net::Address& peer) {
  counters_.reject(r);
  adm_.log_reject(r, peer);
}

bool ConnRules::needs_peer_address() const {
  return log::enabled(log::Level::info) || adm_.needs_peer_address();
}

std::optional<ConnRules::Admit> ConnRules::admit(const sockaddr* peer, socklen_t len, Service service) {
  Admit a;
  a.service = service;
  if (StageFactory* f = stages_[size_t(service)].factory) {
    if (Reject r = f->admit(); r != Reject::count) {
      refuse(r, net::Address::from(peer, len));
      return std::nullopt;
    }
  }
  if (lim_.proxy_protocol) {
    // The socket peer is the balancer: only the global cap applies until the header
    // names the client.
    if (auto r = adm_.admit_pending()) {
      refuse(*r, net::Address::from(peer, len));
      return std::nullopt;
    }
    a.admitted = Admitted::pending;
    return a;
  }
  if (!adm_.enabled()) return a;
  net::Address addr = net::Address::from(peer, len);
  if (auto r = adm_.admit(addr, a.source)) {
    refuse(*r, addr);
    return std::nullopt;
  }
  a.admitted = Admitted::full;
  return a;
}

bool ConnRules::open(Conn& c, uint32_t slot, int fd, const Admit& a, const sockaddr* peer, socklen_t len,
                     uint64_t now) {
  c.fd = fd;
  ++c.gen;
  c.closing = false;
  c.awaiting_proxy = lim_.proxy_protocol;
  c.admitted = a.admitted;
  c.reject = kNoReject;
  c.proxy_have = 0;
  c.source = a.source;
  c.close_why = nullptr;
  c.paused_until = 0;
  c.service = a.service;
  c.s = TcpSession{};
  c.s.started_ns = now;
  c.set_peer(peer, len);
  counters_.connection_opened();
  if (timers_.enabled()) {
    timers_.opened(slot, now);
    if (c.awaiting_proxy) timers_.await_proxy(slot, now);
  }
  if (!c.awaiting_proxy) log_connected(c.address());  // with PROXY: once the client is known
  if (StageFactory* f = stages_[size_t(a.service)].factory) {
    Io io(*this, c, slot, now);
    c.stage = f->make(io);
    if (!c.stage) return false;
  }
  return true;
}

// input() off its fast path: the PROXY header first, then the per-byte limits.
Input ConnRules::inspect(Conn& c, uint32_t slot, char* data, uint32_t n, uint64_t now) {
  if (c.awaiting_proxy) {
    uint32_t used = 0;
    switch (take_proxy(c, slot, data, n, used)) {
      case Header::wait:
        return {data + n, 0, Input::kNothing};
      case Header::close:
        return {data, 0, Input::kClose};
      case Header::done:
        break;
    }
    // Echo bytes may have come right behind the header.
    data += used;
    n -= used;
    if (n == 0) return {data, 0, Input::kNothing};
  }
  if (c.stage) return stage_input(c, slot, data, n, now);
  c.s.received(n);
  if (!policed_) return {data, n, 0};
  bool paused = false;
  if (!police(c, slot, n, now, paused)) return {data, 0, Input::kClose};
  return {data, n, paused ? Input::kPaused : uint8_t(0)};
}

bool ConnRules::police(Conn& c, uint32_t slot, uint64_t n, uint64_t now, bool& paused) {
  if (!policed_) return true;
  if (lim_.max_bytes && c.s.bytes_in > lim_.max_bytes) {
    c.reject = uint8_t(Reject::max_bytes);
    return false;
  }
  timers_.activity(slot, now);
  if (lim_.rate_per_ip) {
    // Over the source's budget: stop reading this connection until the debt is paid;
    // the kernel's receive window then slows the sender, and no byte is lost.
    if (uint64_t wait = adm_.charge(c.source, n, now)) {
      if (!c.paused_until) {
        paused = true;
        paused_.push_back({c.tag(slot), now + wait});
      }
      c.paused_until = std::max(c.paused_until, now + wait);
    }
  }
  return true;
}

Input ConnRules::stage_input(Conn& c, uint32_t slot, char* data, uint32_t n, uint64_t now) {
  Io io(*this, c, slot, now);
  if (!c.stage->input(io, data, n)) return {data, 0, Input::kClose};
  return {data, 0, uint8_t(Input::kQueued | (io.paused ? Input::kPaused : 0))};
}

bool ConnRules::stage_resume(Conn& c, uint32_t slot, uint64_t now) {
  Io io(*this, c, slot, now);
  return c.stage->resume(io);
}

void ConnRules::sent_inspected(Conn& c, uint32_t slot, uint32_t n, uint64_t now) {
  if (c.stage) return;  // ciphertext or framing: the stage counted the payload
  c.s.sent(n);
  counters_.add(counters_.tcp_bytes, n);
  if (policed_) timers_.activity(slot, now);
}

// --proxy-protocol: the header is collected from whatever the engine read (it is never
// echoed); `used` says how many of the n bytes were header once it is done.
ConnRules::Header ConnRules::take_proxy(Conn& c, uint32_t slot, const char* data, uint32_t n, uint32_t& used) {
  if (!c.proxy_buf && !(c.proxy_buf = proxy_pool_.acquire())) {
    c.close_why = "out of memory";
    return Header::close;
  }
  size_t have = c.proxy_have;
  size_t take = std::min<size_t>(n, net::kProxyMaxHeader - have);
  std::memcpy(c.proxy_buf + have, data, take);
  net::ProxyHeader h;
  net::ProxyResult r = net::parse_proxy_header(reinterpret_cast<const uint8_t*>(c.proxy_buf), have + take, h);
  if (r.state == net::ProxyParse::need_more && have + take == net::kProxyMaxHeader) {
    r.state = net::ProxyParse::invalid;
    r.error = "PROXY header longer than the longest one allowed";
  }
  if (r.state == net::ProxyParse::invalid) {
    log::debug("PROXY header from {}: {}", c.address().to_string(), r.error);
    c.reject = uint8_t(Reject::proxy_invalid);
    return Header::close;
  }
  if (r.state == net::ProxyParse::need_more) {
    c.proxy_have = uint16_t(have + take);
    return Header::wait;
  }
  used = uint32_t(h.length - have);
  proxy_pool_.release(c.proxy_buf);
  c.proxy_buf = nullptr;
  c.proxy_have = 0;
  c.awaiting_proxy = false;
  timers_.proxy_done(slot);
  if (!h.local) c.set_peer(&h.source.storage, h.source.len);  // the client the balancer saw
  net::Address client = c.address();
  if (auto rej = adm_.admit_source(client, c.source)) {
    c.reject = uint8_t(*rej);  // the close gives back the pending slot
    return Header::close;
  }
  c.admitted = Admitted::full;
  log_connected(client);
  return Header::done;
}

bool ConnRules::hold_queue(Conn& c) {
  if (c.out.attached()) return true;
  char* b = pool_.acquire();
  if (!b) return false;
  c.out.attach(b, pool_.buffer_size());
  return true;
}

bool ConnRules::keep(Conn& c, const char* data, uint32_t n) {
  if (!hold_queue(c)) return false;
  c.out.append(data, n);  // fits: pending bytes never exceed --buffer
  return true;
}

void ConnRules::eof(Conn& c, uint32_t slot, uint64_t now) {
  c.s.eof();
  if (c.awaiting_proxy) {
    log::debug("PROXY header from {}: {}", c.address().to_string(),
               c.proxy_have ? "closed inside the PROXY header" : "closed before a PROXY header");
    c.reject = uint8_t(Reject::proxy_invalid);
    return;
  }
  if (c.stage) {
    Io io(*this, c, slot, now);
    // A stage that fails here has said why (close_reason) and is finished.
    (void)c.stage->eof(io);
  }
}

uint64_t ConnRules::next_deadline() const {
  uint64_t d = timers_.next_deadline();
  for (const StageKind& k : stages_)
    if (!k.deadlines.empty()) d = std::min(d, k.deadlines.front_stamp() + k.deadline_ns);
  for (const Pause& p : paused_) d = std::min(d, p.until);
  return d;
}

char* ConnRules::close(Conn& c, uint32_t slot, const char* why, uint64_t now) {
  if (c.stage) {
    Io io(*this, c, slot, now);
    c.stage->closing(io);
    if (c.reject == kNoReject && !c.close_why && *c.stage->close_reason()) c.close_why = c.stage->close_reason();
    stages_[size_t(c.service)].deadlines.remove(slot);
  }
  if (c.reject != kNoReject) {
    auto r = Reject(c.reject);
    c.reject = kNoReject;
    why = to_string(r);
    refuse(r, c.address());
  } else if (c.close_why) {
    why = c.close_why;
  }
  log_closed(c.address(), c.s, now, why ? why : "");
  if (c.admitted == Admitted::full) adm_.release(c.address());
  else if (c.admitted == Admitted::pending) adm_.release_pending();
  c.admitted = Admitted::none;
  if (timers_.enabled()) timers_.closed(slot);
  if (c.proxy_buf) {
    proxy_pool_.release(c.proxy_buf);
    c.proxy_buf = nullptr;
  }
  c.awaiting_proxy = false;
  c.paused_until = 0;
  c.close_why = nullptr;
  c.stage.reset();  // after the close line: its reason may be the stage's own string
  counters_.connection_closed();
  if (!c.out.attached()) return nullptr;
  c.out.consumed(c.out.pending());
  return c.out.detach();
}

}  // namespace eco::session
