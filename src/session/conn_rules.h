#pragma once
// The rules of every TCP connection, for every engine, with no system calls: admission,
// the PROXY header, the echo's accounting and backpressure, the per-byte limits, the
// deadlines, the rate pause, half-close and the one close path with its books.
//
// An engine turns its readiness events or completions into calls here and carries out
// what they return:
//
//   admit() → open()          a connection was accepted (refused ones are counted here)
//   room()                    how many bytes it may read now (0: stop reading)
//   input()                   bytes arrived in the engine's own buffer: the span to send
//                             straight back (zero copy), or close
//   sent() / keep()           bytes went back / bytes the socket did not take are queued
//   eof() → finished()        the peer's FIN; close once everything went back
//   expire() / resume_paused()  deadlines passed / rate pauses over
//   close() → give_back()     the books; the queue's storage comes back to the engine,
//                             which returns it once no request of its own reads it
//
// A connection of a listener with a protocol stage (stage.h: TLS) takes the same calls:
// input() hands the bytes to the stage and returns Input::kQueued (what it wrote is in
// the out queue: send it as any queued bytes), and drained() after such sends lets the
// stage go on. The plain echo pays for stages only in the branches it already has for
// limits and PROXY (inspect_).
//
// One object per loop thread (not shared): it holds the loop's buffer pools, timers and
// rate pauses, and writes the loop's Counters.
#include <cstdint>
#include <optional>
#include <vector>

#include "net/proxy_protocol.h"
#include "session/admission.h"
#include "session/buffer_pool.h"
#include "session/conn.h"
#include "session/conn_slots.h"
#include "session/counters.h"
#include "session/deadline_list.h"
#include "session/limits.h"

namespace eco::session {

// What to do with bytes that arrived (ConnRules::input): send [data, data + len) back.
// `flags` is 0 on the plain echo path (and len > 0), so an engine tests it once.
struct Input {
  static constexpr uint8_t kClose = 1;    // end the connection now (reject or close_why says why)
  static constexpr uint8_t kPaused = 2;   // the rate paused reading from now on (stop a receive in flight)
  static constexpr uint8_t kNothing = 4;  // len is 0: nothing to send (a PROXY header so far)
  static constexpr uint8_t kQueued = 8;   // len is 0: a stage wrote into the out queue; send it

  char* data;  // a part of the engine's buffer
  uint32_t len;
  uint8_t flags;

  bool close() const { return flags & kClose; }
  bool paused() const { return flags & kPaused; }
  bool queued() const { return flags & kQueued; }
};

class ConnRules {
 public:
  ConnRules(const Limits& limits, Admission& adm, Counters& counters, uint32_t buffer_size);
  ConnRules(const ConnRules&) = delete;
  ConnRules& operator=(const ConnRules&) = delete;
  ~ConnRules();

  // The loop's factory for a kind of listener (e.g. its TLS stages); it outlives the rules'
  // connections. Set before the first connection.
  void set_stage(Service s, StageFactory* f);

  // ---- accepting ----
  struct Admit {
    Admitted admitted = Admitted::none;
    uint32_t source = kNoSource;
    Service service = Service::echo;
  };
  // Before the connection costs anything: allow/deny, --max-conns, --max-conns-per-ip
  // (with PROXY only the global cap: the socket peer is the balancer). nullopt: refused,
  // counted and logged; the engine closes the socket.
  // A stage's own admission comes last (e.g. the bound on TLS handshakes in progress).
  std::optional<Admit> admit(const sockaddr* peer, socklen_t len, Service service = Service::echo);
  // Whether admit() and the log lines need the peer's address (io_uring asks only then).
  bool needs_peer_address() const;
  // The accepted socket takes its slot: the state starts over, it is counted open, its
  // deadlines start, and it is logged (with PROXY, once the header names the client).
  // false: its stage could not be made (out of memory); the connection is closed in the
  // books (close()), and the engine releases the slot and closes the socket.
  bool open(Conn& c, uint32_t slot, int fd, const Admit& a, const sockaddr* peer, socklen_t len, uint64_t now);
  // admit() and open() for an accepted socket: its slot, or nullopt when refused (then
  // the engine closes the socket).
  template <class C>
  std::optional<uint32_t> accept(ConnSlots<C>& conns, int fd, const sockaddr* peer, socklen_t len, uint64_t now,
                                 Service service = Service::echo) {
    auto a = admit(peer, len, service);
    if (!a) return std::nullopt;
    uint32_t slot = conns.take();
    if (!open(conns[slot], slot, fd, *a, peer, len, now)) {
      give_back(close(conns[slot], slot, "out of memory", now));
      conns.release(slot);
      return std::nullopt;
    }
    return slot;
  }

  // ---- bytes ----
  // How many bytes the connection may read now: the room left under --buffer, or 0
  // after the peer's FIN or while the rate pauses it.
  [[gnu::always_inline]] uint32_t room(const Conn& c) const {
    if (c.s.peer_eof || c.paused_until) return 0;
    if (inspect_ && c.stage) [[unlikely]]
      return c.stage->room();
    uint64_t pending = c.s.pending();
    return pending < buffer_size_ ? uint32_t(buffer_size_ - pending) : 0;
  }
  [[gnu::always_inline]] Input input(Conn& c, uint32_t slot, char* data, uint32_t n, uint64_t now) {
    if (inspect_) [[unlikely]]
      return inspect(c, slot, data, n, now);
    c.s.received(n);
    return {data, n, 0};
  }
  // Bytes the socket took (for a staged connection, from the out queue: its payload is
  // counted by the stage).
  [[gnu::always_inline]] void sent(Conn& c, uint32_t slot, uint32_t n, uint64_t now) {
    if (inspect_) [[unlikely]]
      return sent_inspected(c, slot, n, now);
    c.s.sent(n);
    counters_.add(counters_.tcp_bytes, n);
  }
  // After sending queued bytes: a stage goes on with what waited for room (what it writes
  // is queued again). false: close now (close_why or reject says why).
  bool drained(Conn& c, uint32_t slot, uint64_t now) {
    if (!c.stage) return true;
    return stage_resume(c, slot, now);
  }
  // Bytes echoed by the kernel itself (sockmap), added to the close line's count.
  void kernel_echoed(Conn& c, uint64_t n) {
    c.s.received(n);
    c.s.sent(n);
  }
  // Queues bytes the socket did not take (they are sent before anything read later);
  // false when no buffer could be had (then close: out of memory).
  bool keep(Conn& c, const char* data, uint32_t n);
  // Gives an empty queue's storage back to the pool (while nothing reads it).
  void drop_empty_queue(Conn& c) {
    if (c.out.attached() && c.out.pending() == 0) pool_.release(c.out.detach());
  }
  // Makes sure the queue has storage, for reading straight into it; false: out of memory.
  bool hold_queue(Conn& c);
  // The peer's FIN (a stage hears of it too; what it then writes is queued).
  void eof(Conn& c, uint32_t slot, uint64_t now);
  bool finished(const Conn& c) const {
    if (inspect_ && c.stage) [[unlikely]]
      return c.stage->finished() && c.out.pending() == 0;
    return c.s.finished();
  }

  // ---- time ----
  bool clocked() const { return clocked_; }  // the engine keeps `now` fresh each turn
  uint64_t next_deadline() const;            // UINT64_MAX: none
  // Closes, through close(slot), every connection past a deadline (its reason set).
  template <class C, class Close>
  void expire(ConnSlots<C>& conns, uint64_t now, Close&& close);
  // Calls resume(slot) for every connection whose rate pause is over.
  template <class C, class Resume>
  void resume_paused(ConnSlots<C>& conns, uint64_t now, Resume&& resume);

  // ---- closing ----
  // The one close path: a pending policy reason is counted, logged at most once a second
  // and becomes the reason; the close line is logged; Admission is given back exactly
  // once; deadlines and PROXY state go; the connection is counted closed. Returns the
  // out queue's storage (or nullptr): give_back() it once no request reads it.
  char* close(Conn& c, uint32_t slot, const char* why, uint64_t now);
  void give_back(char* storage) {
    if (storage) pool_.release(storage);
  }
  // At the end of a drain, or at stop: every connection still open is counted as cut
  // and closed through close(slot, why); one already closing keeps its reason (why null).
  template <class C, class Close>
  void cut_remaining(ConnSlots<C>& conns, bool draining, Close&& close);

  uint32_t buffer_size() const { return buffer_size_; }
  Counters& counters() { return counters_; }
  Admission& admission() { return adm_; }

 private:
  class Io;  // the StageIo of one call into a stage
  friend class Io;
  struct StageKind {
    StageFactory* factory = nullptr;
    uint64_t deadline_ns = 0;
    DeadlineList deadlines;  // one timeout per kind: the front is the next to pass
  };

  [[gnu::noinline]] Input inspect(Conn& c, uint32_t slot, char* data, uint32_t n, uint64_t now);
  [[gnu::noinline]] void sent_inspected(Conn& c, uint32_t slot, uint32_t n, uint64_t now);
  [[gnu::noinline]] bool stage_resume(Conn& c, uint32_t slot, uint64_t now);
  Input stage_input(Conn& c, uint32_t slot, char* data, uint32_t n, uint64_t now);
  // The per-byte limits on n more payload bytes: false closes (c.reject set); `paused`
  // tells that the rate paused reading from now on.
  bool police(Conn& c, uint32_t slot, uint64_t n, uint64_t now, bool& paused);
  enum class Header { wait, done, close };
  Header take_proxy(Conn& c, uint32_t slot, const char* data, uint32_t n, uint32_t& used);
  void refuse(Reject r, const net::Address& peer);

  struct Pause {
    uint64_t tag;
    uint64_t until;
  };

  const Limits& lim_;
  Admission& adm_;
  Counters& counters_;
  uint32_t buffer_size_;
  BufferPool pool_;
  BufferPool proxy_pool_;
  ConnTimers timers_;
  StageKind stages_[kServices];
  bool policed_ = false;   // a per-byte limit or the idle deadline is on
  bool inspect_ = false;   // input() leaves its fast path: policed_, PROXY or a stage
  bool clocked_ = false;
  std::vector<Pause> paused_;
  std::vector<Pause> paused_scan_;
};

template <class C, class Close>
void ConnRules::expire(ConnSlots<C>& conns, uint64_t now, Close&& close) {
  auto expired = [&](uint32_t slot, Reject why) {
    C& c = conns[slot];
    if (c.fd < 0 || c.closing) return;
    c.reject = uint8_t(why);
    close(slot);
  };
  for (StageKind& k : stages_) {
    while (!k.deadlines.empty() && k.deadlines.front_stamp() + k.deadline_ns <= now) {
      uint32_t slot = k.deadlines.front();
      k.deadlines.remove(slot);
      expired(slot, k.factory->deadline_reason());
    }
  }
  if (timers_.enabled()) timers_.expire(now, expired);
}

template <class C, class Resume>
void ConnRules::resume_paused(ConnSlots<C>& conns, uint64_t now, Resume&& resume) {
  if (paused_.empty()) return;
  paused_scan_.clear();
  paused_scan_.swap(paused_);  // resume() may pause again: that appends to paused_
  for (const Pause& p : paused_scan_) {
    C* c = conns.find(p.tag);
    if (!c || !c->paused_until) continue;
    if (c->paused_until > now) {
      paused_.push_back({p.tag, c->paused_until});
      continue;
    }
    c->paused_until = 0;
    resume(uint32_t(p.tag));
  }
}

template <class C, class Close>
void ConnRules::cut_remaining(ConnSlots<C>& conns, bool draining, Close&& close) {
  for (uint32_t slot = 0; slot < conns.size(); ++slot) {
    if (conns[slot].fd < 0) continue;
    if (conns[slot].closing) {  // its close was already decided, with its own reason
      close(slot, nullptr);
      continue;
    }
    counters_.add(counters_.cut_at_stop, 1);
    close(slot, draining ? "drain timeout" : "server stopping");
  }
}

}  // namespace eco::session
