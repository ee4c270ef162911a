#pragma once
// The bytes of one connection that were received but not yet sent back.
//
//   0 <= head <= tail <= capacity
//   [0, head)      already sent
//   [head, tail)   pending: received, waiting to be sent
//   [tail, cap)    free: room to receive into
//
// The storage comes from a BufferPool and is held only while bytes are pending,
// so an idle or keeping-up connection holds no buffer at all.
#include <cassert>
#include <cstdint>
#include <cstring>

namespace eco::session {

class EchoBuffer {
 public:
  bool attached() const { return data_ != nullptr; }
  void attach(char* storage, uint32_t capacity) {
    assert(!attached());
    data_ = storage;
    cap_ = capacity;
    head_ = tail_ = 0;
  }
  // Gives the storage back (to return it to the pool); only when nothing is pending.
  char* detach() {
    assert(pending() == 0);
    char* d = data_;
    data_ = nullptr;
    cap_ = head_ = tail_ = 0;
    return d;
  }

  uint32_t pending() const { return tail_ - head_; }
  uint32_t capacity() const { return cap_; }
  const char* pending_data() const { return data_ + head_; }

  // Room to receive into; slides pending bytes to the front first when that helps.
  char* free_space(uint32_t& len) {
    if (head_ > 0 && tail_ == cap_) compact();
    len = cap_ - tail_;
    return data_ + tail_;
  }
  void appended(uint32_t n) {
    assert(n <= cap_ - tail_);
    tail_ += n;
  }
  void append(const char* src, uint32_t n) {
    uint32_t room;
    char* dst = free_space(room);
    assert(n <= room);
    std::memcpy(dst, src, n);
    tail_ += n;
  }
  void consumed(uint32_t n) {
    assert(n <= pending());
    head_ += n;
    if (head_ == tail_) head_ = tail_ = 0;
  }

 private:
  void compact() {
    std::memmove(data_, data_ + head_, pending());
    tail_ -= head_;
    head_ = 0;
  }

  char* data_ = nullptr;
  uint32_t cap_ = 0, head_ = 0, tail_ = 0;
};

}  // namespace eco::session
