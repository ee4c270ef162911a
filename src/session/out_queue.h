#pragma once
// The bytes of one connection waiting to be sent back, in a circular buffer.
//
//   storage [0, cap): pending bytes are [head, head+len) taken modulo cap
//   front(): the contiguous run from head (what one send can take)
//   free_space(): the contiguous run after the pending bytes (what one recv can fill)
//
// It never moves bytes: with io_uring the kernel reads the front while a send is in
// flight and new receives fill the back, so compacting would corrupt the bytes being
// sent. Storage comes from a BufferPool and is held only while bytes are pending, so an
// idle or keeping-up connection holds no buffer at all.
#include <algorithm>
#include <cassert>
#include <cstdint>
#include <cstring>

namespace eco::session {

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
  uint32_t capacity() const { return cap_; }
  uint32_t room() const { return cap_ - len_; }
  const char* front() const { return data_ + head_; }
  uint32_t front_len() const { return std::min(len_, cap_ - head_); }

  // Room to receive into, right after the pending bytes (contiguous: up to the end of
  // the storage, or up to the front once wrapped); then appended(n).
  char* free_space(uint32_t& len) {
    if (len_ == 0) {
      head_ = 0;
      len = cap_;
      return data_;
    }
    uint32_t tail = (head_ + len_) % cap_;
    len = tail > head_ ? cap_ - tail : head_ - tail;  // tail == head: full
    return data_ + tail;
  }
  void appended(uint32_t n) {
    assert(n <= room());
    len_ += n;
  }

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

}  // namespace eco::session
