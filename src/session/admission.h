#pragma once
// Admission: which connections the server takes. One object shared by all
// loop threads, built once from the Limits; thread-safe.
//
//   admit(peer)   before any byte is echoed: allow/deny, --max-conns, --max-conns-per-ip.
//                 nullopt = admitted, and then the connection holds a slot in the global
//                 and per-source counts until release(peer) (exactly once).
//   charge(...)   per-source byte budget (--rate-limit-per-ip): how long to stop reading.
//
// With nothing configured admit()/release() are one branch: no lock, no syscall.
// The per-source table is fixed-size (open addressing, bounded probes), allocated
// once: many distinct sources cannot make it grow; when it is full a new source is
// refused (max_conns) rather than tracked loosely.
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "net/address.h"
#include "net/cidr.h"
#include "session/ip_key.h"
#include "session/limits.h"
#include "session/reject_reason.h"
#include "util/result.h"

namespace eco::session {

class Admission {
 public:
  static constexpr uint32_t kNoSource = ~0u;

  static Result<std::unique_ptr<Admission>> create(const Limits& limits);
  explicit Admission(const Limits& limits);  // no CIDRs checked: use create()
  Admission(const Admission&) = delete;
  Admission& operator=(const Admission&) = delete;

  std::optional<Reject> admit(const net::Address& peer) {
    uint32_t unused;
    return admit(peer, unused);
  }
  // Also names the source's table entry for charge() (kNoSource when untracked).
  std::optional<Reject> admit(const net::Address& peer, uint32_t& source);
  void release(const net::Address& peer);

  // PROXY protocol in two steps: at accept only the global slot is taken (the socket
  // peer is the balancer); once the header names the client, admit_source() applies
  // allow/deny and the per-source count to it. A connection that passed both is
  // released with release(client); one that never got past the header with
  // release_pending(). (admit_source failing leaves the pending slot held.)
  std::optional<Reject> admit_pending();
  std::optional<Reject> admit_source(const net::Address& client, uint32_t& source);
  void release_pending();

  bool needs_peer_address() const { return !acl_.empty() || table_enabled_; }
  bool enabled() const { return enabled_; }
  // True when the access list lets `peer` in (used per UDP datagram too).
  bool allowed(const net::Address& peer) const { return acl_.empty() || acl_.admits(peer); }
  bool has_acl() const { return !acl_.empty(); }
  bool rate_limited() const { return limits_.rate_per_ip != 0; }

  // Takes `bytes` from the source's budget; returns 0, or for how many ns its
  // connections should stop reading (the debt divided by the rate).
  uint64_t charge(uint32_t source, uint64_t bytes, uint64_t now_ns);

  // A rejection (or drop) log line, at most one per reason per second; the rest are
  // counted and reported with the next line.
  void log_reject(Reject r, const net::Address& peer);

  const Limits& limits() const { return limits_; }
  uint64_t open_connections() const { return open_.load(std::memory_order_relaxed); }

 private:
  struct Entry {
    IpKey key;
    uint32_t conns = 0;
    bool used = false;      // holds a key (possibly with conns == 0, reusable)
    int64_t tokens = 0;     // bytes of budget left (negative: debt)
    uint64_t refill_ns = 0;  // last refill
  };
  static constexpr size_t kProbe = 32;
  static constexpr size_t kLockStripes = 64;

  std::optional<Reject> take_source(const net::Address& peer, uint32_t& source);
  void drop_source(const net::Address& peer);

  Limits limits_;
  net::AccessList acl_;
  bool enabled_ = false;
  bool table_enabled_ = false;
  std::atomic<uint64_t> open_{0};
  uint64_t seed_ = 0;
  std::mutex table_mu_;
  std::unique_ptr<Entry[]> table_;
  size_t mask_ = 0;
  std::unique_ptr<std::mutex[]> stripes_;
  struct LogState {
    std::atomic<uint64_t> next_ns{0};
    std::atomic<uint64_t> suppressed{0};
  };
  LogState log_[kRejectReasons];
};

}  // namespace eco::session
