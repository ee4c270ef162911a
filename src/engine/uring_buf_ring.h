#pragma once
// A provided-buffer ring for the io_uring engine: the kernel picks a buffer for each
// receive and names it in the completion; the loop hands it back with recycle() once
// its bytes are dealt with.
#include <liburing.h>
#include <sys/mman.h>

#include <cstddef>
#include <cstdint>

#include "util/result.h"

namespace eco::engine {

class BufRing {
 public:
  BufRing() = default;
  BufRing(const BufRing&) = delete;
  BufRing& operator=(const BufRing&) = delete;
  ~BufRing() {
    if (keep_mapped_) return;
    if (ring_mem_) munmap(ring_mem_, ring_bytes_);
    if (base_) munmap(base_, size_t(entries_) * size_);
  }

  Status init(io_uring& ring, uint16_t group, uint32_t entries, uint32_t size) {
    entries_ = entries;
    size_ = size;
    mask_ = io_uring_buf_ring_mask(entries);
    ring_bytes_ = (size_t(entries) * sizeof(io_uring_buf) + 4095) & ~size_t(4095);
    // Anonymous mappings: pages become resident only when the kernel first fills them.
    void* r = mmap(nullptr, ring_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (r == MAP_FAILED) return sys_error("mmap(buffer ring)");
    ring_mem_ = r;
    void* b = mmap(nullptr, size_t(entries) * size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (b == MAP_FAILED) return sys_error("mmap(buffers)");
    base_ = static_cast<char*>(b);
    br_ = static_cast<io_uring_buf_ring*>(ring_mem_);
    io_uring_buf_ring_init(br_);
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<uintptr_t>(ring_mem_);
    reg.ring_entries = entries;
    reg.bgid = group;
    if (int e = io_uring_register_buf_ring(&ring, &reg, 0); e < 0) return sys_error("io_uring_register_buf_ring", -e);
    for (uint32_t i = 0; i < entries; ++i) io_uring_buf_ring_add(br_, addr(uint16_t(i)), size_, uint16_t(i), mask_, int(i));
    io_uring_buf_ring_advance(br_, int(entries));
    return {};
  }

  char* addr(uint16_t bid) const { return base_ + size_t(bid) * size_; }
  uint32_t size() const { return size_; }
  uint32_t entries() const { return entries_; }
  void taken() { ++out_; }
  void recycle(uint16_t bid) {
    io_uring_buf_ring_add(br_, addr(bid), size_, bid, mask_, 0);
    io_uring_buf_ring_advance(br_, 1);
    --out_;
  }
  uint32_t free_count() const { return entries_ - out_; }
  // After a teardown that could not confirm every request ended: never unmap memory the
  // kernel might still write to.
  void keep_mapped() { keep_mapped_ = true; }

 private:
  io_uring_buf_ring* br_ = nullptr;
  void* ring_mem_ = nullptr;
  size_t ring_bytes_ = 0;
  char* base_ = nullptr;
  uint32_t entries_ = 0, size_ = 0, out_ = 0;
  int mask_ = 0;
  bool keep_mapped_ = false;
};

}  // namespace eco::engine
