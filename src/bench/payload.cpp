#include "bench/payload.h"

#include <algorithm>
#include <bit>
#include <cstring>

namespace eco::bench {
namespace {

inline uint64_t splitmix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Byte k (0..7) of a body block is byte k of its little-endian word.
inline uint64_t little_endian(uint64_t word) {
  if constexpr (std::endian::native == std::endian::big) return __builtin_bswap64(word);
  return word;
}

// Walks bytes [offset, offset+len) of the stream: emit(index, byte) for the header
// and partial blocks, emit_word(index, word) for each whole 8-byte body block (the
// bulk of a message, a word at a time); either stops the walk by returning how far
// it got short of its length. Shared by fill and verify so they cannot disagree.
template <class Emit, class EmitWord>
inline size_t walk(uint32_t conn, uint32_t size, uint64_t offset, size_t len, Emit emit, EmitWord emit_word) {
  size_t done = 0;
  uint64_t seq = offset / size;
  uint32_t pos = uint32_t(offset % size);
  while (done < len) {
    const uint64_t key = splitmix((uint64_t(conn) << 40) ^ seq);
    uint32_t block = UINT32_MAX;
    uint64_t word = 0;
    while (pos < size && done < len) {
      if (pos >= kHeaderBytes && (pos & 7) == 0 && pos + 8 <= size && len - done >= 8) {
        size_t same = emit_word(done, splitmix(key + (pos >> 3)));
        if (same < 8) return done + same;
        pos += 8;
        done += 8;
        continue;
      }
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
      ++pos;
      ++done;
    }
    pos = 0;
    ++seq;
  }
  return done;
}

}  // namespace

void fill_stream(uint32_t conn, uint32_t size, uint64_t offset, size_t len, uint8_t* out) {
  walk(
      conn, size, offset, len,
      [out](size_t i, uint8_t b) {
        out[i] = b;
        return true;
      },
      [out](size_t i, uint64_t word) {
        uint64_t le = little_endian(word);
        std::memcpy(out + i, &le, 8);
        return size_t(8);
      });
}

size_t verify_stream(uint32_t conn, uint32_t size, uint64_t offset, const uint8_t* data, size_t len) {
  return walk(
      conn, size, offset, len, [data](size_t i, uint8_t b) { return data[i] == b; },
      [data](size_t i, uint64_t word) {
        uint64_t le = little_endian(word);
        if (std::memcmp(data + i, &le, 8) == 0) return size_t(8);
        size_t same = 0;
        while (data[i + same] == uint8_t(word >> (8 * same))) ++same;
        return same;
      });
}

void fill_text_stream(uint32_t conn, uint32_t size, uint64_t offset, size_t len, uint8_t* out) {
  fill_stream(conn, size, offset, len, out);
  for (size_t i = 0; i < len; ++i) out[i] = uint8_t('0' + (out[i] & 63));
  // The first message end at or after offset, then every size bytes.
  uint64_t end = offset / size * size + size - 1;
  for (; end < offset + len; end += size) out[end - offset] = '\n';
}

size_t verify_text_stream(uint32_t conn, uint32_t size, uint64_t offset, const uint8_t* data, size_t len) {
  uint8_t want[4096];
  for (size_t done = 0; done < len;) {
    size_t n = std::min(len - done, sizeof want);
    fill_text_stream(conn, size, offset + done, n, want);
    if (std::memcmp(want, data + done, n) != 0) {
      size_t i = 0;
      while (want[i] == data[done + i]) ++i;
      return done + i;
    }
    done += n;
  }
  return len;
}

void read_header(const uint8_t* msg, uint32_t& conn, uint64_t& seq) {
  conn = 0;
  seq = 0;
  for (uint32_t i = 0; i < 4; ++i) conn |= uint32_t(msg[i]) << (8 * i);
  for (uint32_t i = 0; i < 8; ++i) seq |= uint64_t(msg[4 + i]) << (8 * i);
}

}  // namespace eco::bench
