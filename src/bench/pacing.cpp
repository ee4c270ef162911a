#include "bench/pacing.h"

#include <sys/prctl.h>
#include <time.h>

#include <atomic>
#include <cerrno>

namespace eco::bench {

int wait_events(int epfd, epoll_event* events, int max, uint64_t timeout_ns) {
  static std::atomic<bool> have_pwait2{true};  // every thread reaches the same answer
  if (have_pwait2.load(std::memory_order_relaxed)) {
    timespec ts{time_t(timeout_ns / 1'000'000'000u), long(timeout_ns % 1'000'000'000u)};
    int n = epoll_pwait2(epfd, events, max, &ts, nullptr);
    if (n >= 0 || errno != ENOSYS) return n;
    have_pwait2.store(false, std::memory_order_relaxed);
  }
  // Round up: waking early would only spin.
  return epoll_wait(epfd, events, max, int((timeout_ns + 999'999) / 1'000'000));
}

void tighten_timer_slack() { (void)prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0); }

}  // namespace eco::bench
