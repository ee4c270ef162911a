#pragma once
// An engine's connection table: a vector of its connection type plus a free list, so a
// closed connection's slot is reused and the loop allocates only when it holds more
// connections than ever before. Tags (generation << 32 | slot) name a connection in
// events; a tag whose connection has gone finds nothing.
#include <cstdint>
#include <vector>

namespace eco::session {

template <class C>
class ConnSlots {
 public:
  // A slot for a new connection; the caller opens it (ConnRules::open) at once.
  uint32_t take() {
    ++live_;
    if (!free_.empty()) {
      uint32_t slot = free_.back();
      free_.pop_back();
      return slot;
    }
    conns_.emplace_back();
    return uint32_t(conns_.size() - 1);
  }
  // The slot comes free (its fd already closed by the engine).
  void release(uint32_t slot) {
    conns_[slot].fd = -1;
    free_.push_back(slot);
    --live_;
  }

  C& operator[](uint32_t slot) { return conns_[slot]; }
  const C& operator[](uint32_t slot) const { return conns_[slot]; }
  uint32_t size() const { return uint32_t(conns_.size()); }
  uint64_t live() const { return live_; }
  void reserve(size_t n) { conns_.reserve(n); }

  // The open connection a tag names, or nullptr (closed, or the slot reused since).
  C* find(uint64_t tag) {
    auto slot = uint32_t(tag);
    if (slot >= conns_.size()) return nullptr;
    C& c = conns_[slot];
    return c.fd >= 0 && c.tag(slot) == tag ? &c : nullptr;
  }

 private:
  std::vector<C> conns_;
  std::vector<uint32_t> free_;
  uint64_t live_ = 0;
};

}  // namespace eco::session
