#pragma once
// Connection slots in the order of a timestamp, as an intrusive doubly linked list:
// push_back, remove and touch (move to the back with a new stamp) are O(1). When every
// member shares one timeout, the front is always the next to expire, so a loop's
// timer only looks at the front (idle: touched on activity, i.e. an LRU; duration and
// PROXY wait: stamped once at accept, i.e. a FIFO).
#include <cstdint>
#include <algorithm>
#include <vector>

#include "session/reject_reason.h"

namespace eco::session {

class DeadlineList {
 public:
  static constexpr uint32_t kNone = ~0u;

  bool empty() const { return head_ == kNone; }
  uint32_t front() const { return head_; }
  uint64_t front_stamp() const { return links_[head_].stamp; }
  bool contains(uint32_t slot) const { return slot < links_.size() && links_[slot].in; }

  // Grows the link table (only when the engine's slot table grew: not per event).
  void push_back(uint32_t slot, uint64_t stamp) {
    if (slot >= links_.size()) links_.resize(size_t(slot) + 1);
    Link& l = links_[slot];
    l.stamp = stamp;
    l.in = true;
    l.next = kNone;
    l.prev = tail_;
    if (tail_ != kNone) links_[tail_].next = slot;
    else head_ = slot;
    tail_ = slot;
  }

  void remove(uint32_t slot) {
    if (!contains(slot)) return;
    Link& l = links_[slot];
    if (l.prev != kNone) links_[l.prev].next = l.next;
    else head_ = l.next;
    if (l.next != kNone) links_[l.next].prev = l.prev;
    else tail_ = l.prev;
    l.in = false;
    l.prev = l.next = kNone;
  }

  void touch(uint32_t slot, uint64_t stamp) {
    if (slot == tail_ && contains(slot)) {
      links_[slot].stamp = stamp;
      return;
    }
    remove(slot);
    push_back(slot, stamp);
  }

 private:
  struct Link {
    uint32_t prev = kNone, next = kNone;
    uint64_t stamp = 0;
    bool in = false;
  };
  std::vector<Link> links_;
  uint32_t head_ = kNone, tail_ = kNone;
};

// The three per-connection deadlines of one loop (idle, age, PROXY header wait).
class ConnTimers {
 public:
  explicit ConnTimers(uint64_t idle_ns, uint64_t duration_ns, uint64_t proxy_ns)
      : idle_ns_(idle_ns), duration_ns_(duration_ns), proxy_ns_(proxy_ns) {}

  bool enabled() const { return idle_ns_ || duration_ns_ || proxy_ns_; }
  bool idle_enabled() const { return idle_ns_ != 0; }

  void opened(uint32_t slot, uint64_t now) {
    if (idle_ns_) idle_.push_back(slot, now);
    if (duration_ns_) age_.push_back(slot, now);
  }
  void await_proxy(uint32_t slot, uint64_t now) {
    if (proxy_ns_) proxy_.push_back(slot, now);
  }
  void proxy_done(uint32_t slot) { proxy_.remove(slot); }
  void activity(uint32_t slot, uint64_t now) {
    if (idle_ns_) idle_.touch(slot, now);
  }
  void closed(uint32_t slot) {
    idle_.remove(slot);
    age_.remove(slot);
    proxy_.remove(slot);
  }

  // The earliest deadline of any connection, or UINT64_MAX.
  uint64_t next_deadline() const {
    uint64_t d = UINT64_MAX;
    if (!idle_.empty()) d = std::min(d, idle_.front_stamp() + idle_ns_);
    if (!age_.empty()) d = std::min(d, age_.front_stamp() + duration_ns_);
    if (!proxy_.empty()) d = std::min(d, proxy_.front_stamp() + proxy_ns_);
    return d;
  }

  // Calls expired(slot, reason) for every connection past a deadline; the slot has
  // already left every list (so the callback may close it).
  template <class F>
  void expire(uint64_t now, F&& expired) {
    expire_list(proxy_, proxy_ns_, now, Reject::proxy_timeout, expired);
    expire_list(age_, duration_ns_, now, Reject::max_duration, expired);
    expire_list(idle_, idle_ns_, now, Reject::idle_timeout, expired);
  }

 private:
  template <class F>
  void expire_list(DeadlineList& l, uint64_t timeout, uint64_t now, Reject why, F& expired) {
    while (!l.empty() && l.front_stamp() + timeout <= now) {
      uint32_t slot = l.front();
      closed(slot);
      expired(slot, why);
    }
  }

  uint64_t idle_ns_, duration_ns_, proxy_ns_;
  DeadlineList idle_, age_, proxy_;
};

}  // namespace eco::session
