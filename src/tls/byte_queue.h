#pragma once
// A fixed-capacity byte queue for one direction of a TLS endpoint. It never grows:
// push() takes what fits, which is what bounds an endpoint's memory.
//
//   0 <= head <= tail <= cap
//   [0, head) consumed  |  [head, tail) readable  |  [tail, cap) writable
//
// Readable bytes are moved to the front only when the writable tail is too short for what
// is asked (for input that is a partial record, usually a few bytes).
#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>
#include <span>

namespace eco::tls {

class ByteQueue {
 public:
  explicit ByteQueue(size_t cap) : buf_(new char[cap]), cap_(cap) {}

  size_t size() const { return tail_ - head_; }
  bool empty() const { return head_ == tail_; }
  size_t capacity() const { return cap_; }
  size_t room() const { return cap_ - size(); }

  std::span<const char> readable() const { return {buf_.get() + head_, size()}; }
  void consume(size_t n) {
    head_ += std::min(n, size());
    if (head_ == tail_) head_ = tail_ = 0;
  }
  // Contiguous free space, at least half the room (compacting first if needed).
  std::span<char> writable() {
    if (head_ > 0 && cap_ - tail_ < room() / 2 + 1) compact();
    return {buf_.get() + tail_, cap_ - tail_};
  }
  void commit(size_t n) { tail_ += std::min(n, cap_ - tail_); }

  // Copies as much of [p, p+n) as fits; returns how much.
  size_t push(const char* p, size_t n) {
    n = std::min(n, room());
    if (cap_ - tail_ < n) compact();
    if (n) std::memcpy(buf_.get() + tail_, p, n);
    tail_ += n;
    return n;
  }
  size_t pop(char* dst, size_t n) {
    n = std::min(n, size());
    if (n) std::memcpy(dst, buf_.get() + head_, n);
    consume(n);
    return n;
  }

 private:
  void compact() {
    std::memmove(buf_.get(), buf_.get() + head_, size());
    tail_ -= head_;
    head_ = 0;
  }
  std::unique_ptr<char[]> buf_;
  size_t cap_, head_ = 0, tail_ = 0;
};

}  // namespace eco::tls
