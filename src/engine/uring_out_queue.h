#pragma once
// Bytes of one io_uring connection waiting to be sent back, in a circular buffer.
//
// Unlike session::EchoBuffer it never moves bytes: with io_uring the kernel reads the
// front of the queue while a send is in flight, and the back keeps filling from new
// receives, so compacting (memmove) would corrupt the bytes being sent.
//
//   storage [0, cap): pending bytes are [head, head+len) taken modulo cap
//   front(): the contiguous run from head (what one send can take)
//
// Storage comes from a BufferPool and is held only while bytes are pending.
#include <algorithm>
#include <cassert>
#include <cstdint>
#include <cstring>

namespace eco::engine {

class OutQueue {
 public:
  bool attached() const { return data_ != nullptr; }
  void attach(char* storage, uint32_t capacity) {
    assert(!attached());
    data_ = storage;
    cap_ = capacity;
    head_ = len_ = 0;
  }
  char* detach() {
    assert(len_ == 0);
    char* d = data_;
    data_ = nullptr;
    cap_ = head_ = len_ = 0;
    return d;
  }

  uint32_t pending() const { return len_; }
  uint32_t room() const { return cap_ - len_; }
  const char* front() const { return data_ + head_; }
  uint32_t front_len() const { return std::min(len_, cap_ - head_); }

  void append(const char* src, uint32_t n) {
    assert(n <= room());
    uint32_t tail = (head_ + len_) % cap_;
    uint32_t first = std::min(n, cap_ - tail);
    std::memcpy(data_ + tail, src, first);
    std::memcpy(data_, src + first, n - first);
    len_ += n;
  }
  void consumed(uint32_t n) {
    assert(n <= len_);
    len_ -= n;
    head_ = len_ ? (head_ + n) % cap_ : 0;
  }

 private:
  char* data_ = nullptr;
  uint32_t cap_ = 0, head_ = 0, len_ = 0;
};

}  // namespace eco::engine
