#pragma once
// Connection slots: a vector of per-connection state plus a free list, so a closed
// connection's slot is reused and the loop allocates only when it holds more
// connections than ever before.
#include <cstdint>
#include <vector>

namespace eco::session {

// Returns a free slot index, growing `slots` only when the free list is empty.
template <class T>
uint32_t take_slot(std::vector<T>& slots, std::vector<uint32_t>& free_list) {
  if (!free_list.empty()) {
    uint32_t slot = free_list.back();
    free_list.pop_back();
    return slot;
  }
  slots.emplace_back();
  return uint32_t(slots.size() - 1);
}

}  // namespace eco::session
