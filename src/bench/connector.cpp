#include "bench/connector.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>

#include <fmt/format.h>

namespace eco::bench {

SourcePlan::SourcePlan(const net::Address& target, std::vector<net::Address> given, uint32_t conns_per_source)
    : given_(std::move(given)), per_source_(conns_per_source == 0 ? 1 : conns_per_source) {
  if (given_.empty() && target.family() == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(&target.storage);
    loopback_ = (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
  }
}

const net::Address* SourcePlan::pick(uint32_t id, net::Address& scratch) const {
  if (!given_.empty()) return &given_[id % given_.size()];
  if (!loopback_) return nullptr;
  uint32_t index = id / per_source_ + shift_;
  if (index == 0) return nullptr;
  scratch = loopback_source(index);
  return &scratch;
}

bool SourcePlan::next_block() {
  if (!loopback_) return false;
  ++shift_;
  return true;
}

net::Address loopback_source(uint32_t index) {
  sockaddr_in src{};
  src.sin_family = AF_INET;
  uint32_t host = 0x7F000001u + index + 2 * (index / 253);
  src.sin_addr.s_addr = htonl(host);
  return net::Address::from(reinterpret_cast<const sockaddr*>(&src), sizeof src);
}

Status raise_fd_limit(uint64_t needed) {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return sys_error("getrlimit(RLIMIT_NOFILE)");
  if (rl.rlim_cur >= needed) return {};
  if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < needed) {
    // Above the hard limit only with CAP_SYS_RESOURCE (e.g. root); otherwise explain.
    rlimit up{needed, needed};
    if (setrlimit(RLIMIT_NOFILE, &up) == 0) return {};
    return Error{fmt::format("this run needs {} file descriptors but the hard limit is {} "
                             "(raise it with `ulimit -Hn` / LimitNOFILE=, or use fewer --conns)",
                             needed, uint64_t(rl.rlim_max))};
  }
  rlimit nl{needed, rl.rlim_max};
  if (setrlimit(RLIMIT_NOFILE, &nl) != 0) return sys_error("setrlimit(RLIMIT_NOFILE)");
  return {};
}

}  // namespace eco::bench
