#pragma once
// --server-pid: the server's CPU time and memory from /proc, and the machine-wide CPU
// time from /proc/stat, sampled at the start and end of the measured window so bench
// can report CPU-µs per round trip (the project's efficiency figure).
#include <sys/types.h>

#include <cstdint>

#include "util/result.h"

namespace eco::bench {

struct ProcSample {
  uint64_t user_us = 0, system_us = 0;  // utime, stime of the whole process
  uint64_t rss_bytes = 0;
};

struct MachineSample {
  uint64_t busy_us = 0;  // every CPU, every state but idle and iowait
};

Result<ProcSample> read_process(pid_t pid);
Result<MachineSample> read_machine();

}  // namespace eco::bench
