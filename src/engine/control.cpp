#include <sys/eventfd.h>
#include <unistd.h>

#include "engine/engine.h"

namespace eco::engine {

Status LoopControl::set(Phase p) {
  phase.store(int(p), std::memory_order_release);
  uint64_t one = 1;
  if (::write(wake.get(), &one, sizeof one) != sizeof one) return sys_error("write(eventfd)");
  return {};
}

void LoopControl::set_up_done() {
  if (!counted_ && setting_up) {
    counted_ = true;
    setting_up->fetch_sub(1, std::memory_order_release);
    setting_up->notify_all();
  }
  if (go)
    while (!go->load(std::memory_order_acquire)) go->wait(false);
}

}  // namespace eco::engine
