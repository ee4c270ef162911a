#pragma once
// Where bench's connections come from. One source address has ~28,000 ephemeral
// ports towards one server address; for more, connections are spread over several
// sources: the ones given with --source-ip (round robin), or for a loopback IPv4
// target by themselves, a block of --conns-per-source connections per loopback
// address (127.0.0.1, then .2, .3, ...).
#include <cstdint>
#include <vector>

#include "net/address.h"
#include "util/result.h"

namespace eco::bench {

class SourcePlan {
 public:
  SourcePlan() = default;
  SourcePlan(const net::Address& target, std::vector<net::Address> given, uint32_t conns_per_source);

  // The source for connection `id`, written to `scratch`; nullptr lets the kernel
  // choose (the first loopback block, or a non-loopback target with no --source-ip).
  const net::Address* pick(uint32_t id, net::Address& scratch) const;
  // A source had no free port left (EADDRNOTAVAIL): moves the loopback blocks on by
  // one and returns true, or false when there is nothing to move on to.
  bool next_block();

 private:
  bool loopback_ = false;
  std::vector<net::Address> given_;
  uint32_t per_source_ = 20000;
  uint32_t shift_ = 0;
};

// 127.0.0.1 + index, skipping .0 and .255 in the last octet.
net::Address loopback_source(uint32_t index);

// Raises RLIMIT_NOFILE so `needed` descriptors fit; explains what to do when the
// hard limit is too low.
Status raise_fd_limit(uint64_t needed);

}  // namespace eco::bench
