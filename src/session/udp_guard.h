#pragma once
// The UDP rules, one per loop thread (no locks): datagrams from reflector source ports,
// from sources the access list refuses, or above a per-source rate are dropped, never
// echoed; each drop is counted by reason and logged at most once a second.
//
// The rate table is small, fixed and direct-mapped (a seeded hash of the source picks
// one entry; a different source there simply takes it over with a fresh budget), so a
// flood of spoofed sources costs no memory, only evictions. SO_REUSEPORT hashes one
// source to one thread's socket, so one thread sees all of a source's datagrams.
#include <sys/socket.h>

#include <bitset>
#include <memory>
#include <optional>

#include "net/address.h"
#include "session/admission.h"
#include "session/counters.h"
#include "session/ip_key.h"
#include "session/limits.h"
#include "session/reject_reason.h"

namespace eco::session {

class UdpGuard {
 public:
  static constexpr size_t kTableSize = 4096;

  UdpGuard(const Limits& l, Admission& adm, Counters& counters) : adm_(adm), counters_(counters), rate_(l.udp_rate_per_ip) {
    for (uint16_t p : l.udp_drop_ports) drop_.set(p);
    any_drop_ = drop_.any();
    if (rate_) {
      table_.reset(new Entry[kTableSize]);
      interval_ns_ = std::max<uint64_t>(1, 1'000'000'000ull / rate_);
      seed_ = uint64_t(reinterpret_cast<uintptr_t>(this)) * 0x9e3779b97f4a7c15ull ^ uint64_t(l.udp_rate_per_ip);
    }
  }

  bool active() const { return any_drop_ || rate_ || adm_.has_acl(); }
  bool needs_time() const { return rate_ != 0; }

  // True: echo it. False: dropped by policy (counted and logged). `now` matters only
  // with a rate.
  bool pass(const sockaddr* from, socklen_t len, uint64_t now) {
    auto r = check(from, len, now);
    if (!r) return true;
    counters_.reject(*r);
    adm_.log_reject(*r, net::Address::from(from, len));
    return false;
  }

  // nullopt: echo it. `now` matters only with a rate.
  std::optional<Reject> check(const sockaddr* from, socklen_t len, uint64_t now) {
    if (any_drop_ && drop_.test(port_of(from))) return Reject::reflector_port;
    if (adm_.has_acl() && !adm_.allowed(net::Address::from(from, len))) return Reject::denied;
    if (rate_ && !within_rate(from, now)) return Reject::rate_limited;
    return std::nullopt;
  }

 private:
  // GCRA: one "theoretical arrival time" per source; a burst of up to one second's
  // worth passes, then one datagram per interval.
  struct Entry {
    IpKey key;
    uint64_t tat = 0;
    bool used = false;
  };

  bool within_rate(const sockaddr* from, uint64_t now) {
    IpKey k;
    if (!ip_key(from, k)) return true;
    Entry& e = table_[ip_hash(k, seed_) & (kTableSize - 1)];
    if (!e.used || !(e.key == k)) {
      e.key = k;
      e.used = true;
      e.tat = now;
    }
    uint64_t tat = std::max(e.tat, now);
    if (tat - now > 1'000'000'000ull - interval_ns_) return false;
    e.tat = tat + interval_ns_;
    return true;
  }

  Admission& adm_;
  Counters& counters_;
  uint32_t rate_;
  std::bitset<65536> drop_;
  bool any_drop_ = false;
  std::unique_ptr<Entry[]> table_;
  uint64_t interval_ns_ = 0;
  uint64_t seed_ = 0;
};

}  // namespace eco::session
