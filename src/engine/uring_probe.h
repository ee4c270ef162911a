#pragma once
// Run-time probe for the io_uring engine: can this process use io_uring at all, and
// which of the optional kernel features the engine uses are there. Computed once per
// process (the first call does the work, a few syscalls on a private ring).
#include <string>

namespace eco::engine {

struct UringFeatures {
  bool available = false;
  std::string reason;          // why not, when !available ("io_uring_setup: ...")
  bool defer_taskrun = false;  // IORING_SETUP_SINGLE_ISSUER | DEFER_TASKRUN (6.1)
  bool coop_taskrun = false;   // IORING_SETUP_COOP_TASKRUN (5.19), the fallback
  bool recv_limit = false;     // multishot recv with a total byte cap (sqe->optlen, 6.17)
  bool ring_fd = false;        // IORING_REGISTER_RING_FD (5.18)
  std::string summary() const;  // "defer_taskrun recv_limit ..." for logs and docs
};

// ECO_DISABLE_URING=1 in the environment makes the probe fail with that reason, so the
// fallback path can be tested on any machine.
const UringFeatures& uring_features();

// io_uring_setup flags for a loop ring given the probe (SINGLE_ISSUER + DEFER_TASKRUN,
// else COOP_TASKRUN + TASKRUN_FLAG, else none).
unsigned uring_setup_flags(const UringFeatures& f);

}  // namespace eco::engine
