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
  if (!gate) return;
  if (!arrived_) {
    arrived_ = true;
    gate->arrive();
  }
  gate->wait_open();
}

void StartGate::arrive() {
  setting_up_.fetch_sub(1, std::memory_order_release);
  setting_up_.notify_all();
}

void StartGate::wait_open() {
  while (!open_.load(std::memory_order_acquire)) open_.wait(false);
}

void StartGate::wait_all() {
  for (unsigned n = setting_up_.load(std::memory_order_acquire); n != 0; n = setting_up_.load(std::memory_order_acquire))
    setting_up_.wait(n);
}

void StartGate::open() {
  open_.store(true, std::memory_order_release);
  open_.notify_all();
}

}  // namespace eco::engine
