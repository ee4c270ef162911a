#pragma once
// Fixed-size buffers for connections that have bytes waiting to be sent. One pool per
// event-loop thread (no locks). Freed buffers are kept for reuse up to `keep`, so a
// burst of slow readers does not leave the process holding its peak forever.
#include <cstdint>
#include <cstdlib>
#include <vector>

namespace eco::session {

class BufferPool {
 public:
  BufferPool(uint32_t buffer_size, size_t keep) : size_(buffer_size), keep_(keep) {}
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;
  ~BufferPool() {
    for (char* b : free_) std::free(b);
  }

  uint32_t buffer_size() const { return size_; }
  size_t in_use() const { return in_use_; }

  // nullptr when memory is exhausted; the caller closes that connection.
  char* acquire() {
    char* b;
    if (!free_.empty()) {
      b = free_.back();
      free_.pop_back();
    } else {
      b = static_cast<char*>(std::malloc(size_));
      if (!b) return nullptr;
    }
    ++in_use_;
    return b;
  }
  void release(char* b) {
    --in_use_;
    if (free_.size() < keep_) free_.push_back(b);
    else std::free(b);
  }

 private:
  uint32_t size_;
  size_t keep_;
  size_t in_use_ = 0;
  std::vector<char*> free_;
};

}  // namespace eco::session
