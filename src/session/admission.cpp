#include "session/admission.h"

#include <algorithm>
#include <random>

#include <fmt/format.h>

#include "util/clock.h"
#include "util/log.h"

namespace eco::session {
namespace {

size_t table_size(const Limits& l) {
  // Room for twice the connections allowed (a load factor that keeps the bounded
  // probe window from filling), or a fixed 64 Ki sources when there is no cap.
  size_t want = l.max_conns ? size_t(std::min<uint64_t>(l.max_conns, 1u << 19)) * 2 : size_t(1) << 16;
  size_t n = 1024;
  while (n < want) n <<= 1;
  return n;
}

}  // namespace

Result<std::unique_ptr<Admission>> Admission::create(const Limits& limits) {
  auto a = std::make_unique<Admission>(limits);
  for (const std::string& c : limits.allow)
    if (auto s = a->acl_.add_allow(c); !s) return Error{"--allow: " + s.error().message};
  for (const std::string& c : limits.deny)
    if (auto s = a->acl_.add_deny(c); !s) return Error{"--deny: " + s.error().message};
  a->enabled_ = !a->acl_.empty() || limits.max_conns || a->table_enabled_;
  return a;
}

Admission::Admission(const Limits& limits) : limits_(limits) {
  table_enabled_ = limits.max_conns_per_ip || limits.rate_per_ip;
  enabled_ = limits.max_conns || table_enabled_;
  if (table_enabled_) {
    size_t n = table_size(limits);
    table_.reset(new Entry[n]);
    mask_ = n - 1;
    stripes_.reset(new std::mutex[kLockStripes]);
    std::random_device rd;
    seed_ = (uint64_t(rd()) << 32) ^ rd();
  }
}

std::optional<Reject> Admission::admit(const net::Address& peer, uint32_t& source) {
  source = kNoSource;
  if (!enabled_) return std::nullopt;
  if (!acl_.empty() && !acl_.admits(peer)) return Reject::denied;
  if (auto r = admit_pending()) return r;
  if (table_enabled_) {
    if (auto r = take_source(peer, source)) {
      release_pending();
      return r;
    }
  }
  return std::nullopt;
}

void Admission::release(const net::Address& peer) {
  if (!enabled_) return;
  if (table_enabled_) drop_source(peer);
  release_pending();
}

std::optional<Reject> Admission::admit_pending() {
  if (!limits_.max_conns) return std::nullopt;
  if (open_.fetch_add(1, std::memory_order_relaxed) >= limits_.max_conns) {
    open_.fetch_sub(1, std::memory_order_relaxed);
    return Reject::max_conns;
  }
  return std::nullopt;
}

void Admission::release_pending() {
  if (limits_.max_conns) open_.fetch_sub(1, std::memory_order_relaxed);
}

std::optional<Reject> Admission::admit_source(const net::Address& client, uint32_t& source) {
  source = kNoSource;
  if (!acl_.empty() && !acl_.admits(client)) return Reject::denied;
  if (table_enabled_) return take_source(client, source);
  return std::nullopt;
}

std::optional<Reject> Admission::take_source(const net::Address& peer, uint32_t& source) {
  IpKey k;
  if (!ip_key(peer.sa(), k)) return std::nullopt;  // not IP: no per-source rule applies
  size_t h = size_t(ip_hash(k, seed_));
  std::lock_guard lock(table_mu_);
  size_t found = SIZE_MAX, free = SIZE_MAX;
  for (size_t i = 0; i < kProbe; ++i) {
    size_t idx = (h + i) & mask_;
    Entry& e = table_[idx];
    if (e.used && e.key == k) {
      found = idx;
      break;
    }
    if (free == SIZE_MAX && (!e.used || e.conns == 0)) free = idx;
  }
  if (found != SIZE_MAX) {
    Entry& e = table_[found];
    if (limits_.max_conns_per_ip && e.conns >= limits_.max_conns_per_ip) return Reject::max_conns_per_ip;
    ++e.conns;
    source = uint32_t(found);
    return std::nullopt;
  }
  if (free == SIZE_MAX) return Reject::max_conns;  // table full: more sources than the server holds
  Entry& e = table_[free];
  std::lock_guard bucket(stripes_[free % kLockStripes]);
  e.key = k;
  e.used = true;
  e.conns = 1;
  e.tokens = int64_t(limits_.rate_per_ip);  // a full second of budget to start with
  e.refill_ns = now_ns();
  source = uint32_t(free);
  return std::nullopt;
}

void Admission::drop_source(const net::Address& peer) {
  IpKey k;
  if (!ip_key(peer.sa(), k)) return;
  size_t h = size_t(ip_hash(k, seed_));
  std::lock_guard lock(table_mu_);
  for (size_t i = 0; i < kProbe; ++i) {
    Entry& e = table_[(h + i) & mask_];
    if (e.used && e.key == k) {
      // The key stays (with its budget) until another source needs the entry, so
      // reconnecting does not refill a source's byte budget.
      if (e.conns > 0) --e.conns;
      return;
    }
  }
}

uint64_t Admission::charge(uint32_t source, uint64_t bytes, uint64_t now) {
  if (source == kNoSource || !limits_.rate_per_ip) return 0;
  const auto rate = int64_t(limits_.rate_per_ip);
  std::lock_guard lock(stripes_[source % kLockStripes]);
  Entry& e = table_[source];
  if (now > e.refill_ns) {
    // A full bucket holds one second of budget, so more than a second idle adds nothing
    // more (and the product stays far from overflowing).
    uint64_t elapsed = std::min<uint64_t>(now - e.refill_ns, 1'000'000'000);
    auto add = int64_t(double(elapsed) * double(rate) / 1e9);
    if (add > 0) {
      e.tokens = std::min(e.tokens + add, rate);
      e.refill_ns = now;
    }
  } else if (now < e.refill_ns) {
    e.refill_ns = now;
  }
  e.tokens -= int64_t(bytes);
  if (e.tokens >= 0) return 0;
  return uint64_t(double(-e.tokens) * 1e9 / double(rate)) + 1;
}

void Admission::log_reject(Reject r, const net::Address& peer) {
  if (!log::enabled(log::Level::warn)) return;
  LogState& s = log_[size_t(r)];
  uint64_t now = now_ns();
  uint64_t next = s.next_ns.load(std::memory_order_relaxed);
  if (now < next || !s.next_ns.compare_exchange_strong(next, now + 1'000'000'000, std::memory_order_relaxed)) {
    s.suppressed.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  uint64_t more = s.suppressed.exchange(0, std::memory_order_relaxed);
  std::string p = peer.to_string();
  std::string msg = fmt::format("refused {} ({}){}", p, to_string(r),
                                more ? fmt::format("; {} more refused for this reason not logged", more) : "");
  log::write(log::Level::warn, msg, {{"event", "reject"}, {"peer", p}, {"reason", to_string(r)}});
}

}  // namespace eco::session
