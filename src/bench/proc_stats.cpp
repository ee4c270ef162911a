#include "bench/proc_stats.h"

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include <fmt/format.h>

namespace eco::bench {
namespace {

uint64_t ticks_to_us(uint64_t ticks) {
  static const long hz = sysconf(_SC_CLK_TCK);
  return ticks * 1'000'000u / uint64_t(hz > 0 ? hz : 100);
}

Result<std::string> slurp(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "re");
  if (f == nullptr) return sys_error(fmt::format("cannot read {}", path));
  std::string s;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) s.append(buf, n);
  std::fclose(f);
  return s;
}

}  // namespace

Result<ProcSample> read_process(pid_t pid) {
  auto stat = slurp(fmt::format("/proc/{}/stat", pid));
  if (!stat) return Error{fmt::format("--server-pid {}: no such process ({})", pid, stat.error().message)};
  // The command name (field 2) may hold spaces and parentheses: fields resume after the last ')'.
  size_t close = stat->rfind(')');
  if (close == std::string::npos) return Error{fmt::format("/proc/{}/stat: unexpected format", pid)};
  unsigned long long utime = 0, stime = 0;
  long long rss_pages = 0;
  // Fields after ')': 3 state ... 14 utime 15 stime ... 24 rss.
  int got = std::sscanf(stat->c_str() + close + 1,
                        " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d %*u %*u %lld",
                        &utime, &stime, &rss_pages);
  if (got != 3) return Error{fmt::format("/proc/{}/stat: unexpected format", pid)};
  ProcSample s;
  s.user_us = ticks_to_us(utime);
  s.system_us = ticks_to_us(stime);
  s.rss_bytes = uint64_t(rss_pages < 0 ? 0 : rss_pages) * uint64_t(sysconf(_SC_PAGESIZE));
  return s;
}

Result<MachineSample> read_machine() {
  auto stat = slurp("/proc/stat");
  if (!stat) return stat.error();
  unsigned long long v[10] = {};
  int got = std::sscanf(stat->c_str(), "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
                        &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]);
  if (got < 4) return Error{"/proc/stat: unexpected format"};
  // user nice system idle iowait irq softirq steal (guest time is already in user).
  uint64_t busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
  return MachineSample{ticks_to_us(busy)};
}

}  // namespace eco::bench
