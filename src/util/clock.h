#pragma once
#include <time.h>

#include <cstdint>

namespace eco {

// Monotonic nanoseconds: the one clock for durations, timeouts and latency.
inline uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1'000'000'000u + uint64_t(ts.tv_nsec);
}

}  // namespace eco
