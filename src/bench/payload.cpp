#include "bench/payload.h"

namespace eco::bench {
namespace {

inline uint64_t splitmix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Calls emit(index, byte) for bytes [offset, offset+len) of the stream; stops early
// when emit returns false. Shared by fill and verify so they cannot disagree.
template <class Emit>
inline size_t walk(uint32_t conn, uint32_t size, uint64_t offset, size_t len, Emit emit) {
  size_t done = 0;
  uint64_t seq = offset / size;
  uint32_t pos = uint32_t(offset % size);
  while (done < len) {
    const uint64_t key = splitmix((uint64_t(conn) << 40) ^ seq);
    uint32_t block = UINT32_MAX;
    uint64_t word = 0;
    for (; pos < size && done < len; ++pos, ++done) {
      uint8_t b;
      if (pos < 4) {
        b = uint8_t(conn >> (8 * pos));
      } else if (pos < kHeaderBytes) {
        b = uint8_t(seq >> (8 * (pos - 4)));
      } else {
        if ((pos >> 3) != block) {
          block = pos >> 3;
          word = splitmix(key + block);
        }
        b = uint8_t(word >> (8 * (pos & 7)));
      }
      if (!emit(done, b)) return done;
    }
    pos = 0;
    ++seq;
  }
  return done;
}

}  // namespace

void fill_stream(uint32_t conn, uint32_t size, uint64_t offset, size_t len, uint8_t* out) {
  walk(conn, size, offset, len, [out](size_t i, uint8_t b) {
    out[i] = b;
    return true;
  });
}

size_t verify_stream(uint32_t conn, uint32_t size, uint64_t offset, const uint8_t* data, size_t len) {
  return walk(conn, size, offset, len, [data](size_t i, uint8_t b) { return data[i] == b; });
}

void read_header(const uint8_t* msg, uint32_t& conn, uint64_t& seq) {
  conn = 0;
  seq = 0;
  for (uint32_t i = 0; i < 4; ++i) conn |= uint32_t(msg[i]) << (8 * i);
  for (uint32_t i = 0; i < 8; ++i) seq |= uint64_t(msg[4 + i]) << (8 * i);
}

}  // namespace eco::bench
