// The bytes eco bench sends and verifies: one pattern whatever the offsets and
// lengths sends and reads happen to cover (the byte-at-a-time and the word-at-a-time
// paths agree), the same pattern as before the word path existed, and a wrong byte
// found at its index.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

#include "bench/payload.h"

using namespace eco::bench;

namespace {

uint64_t fnv1a(const std::vector<uint8_t>& bytes) {
  uint64_t h = 1469598103934665603ull;
  for (uint8_t c : bytes) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

}  // namespace

TEST(BenchPayload, ThePatternIsTheOneEarlierVersionsSent) {
  // 4,096 bytes from offset 5 of connection 42's stream, hashed, as the byte-at-a-time
  // implementation wrote them: runs recorded by older versions still verify.
  struct Golden {
    uint32_t size;
    uint64_t fnv;
  };
  for (Golden g : {Golden{13, 0x5c81a39653800790ull}, Golden{64, 0x7a1c9acdc2df9c52ull},
                   Golden{1000, 0x54b2c14d13fe8520ull}}) {
    std::vector<uint8_t> b(4096);
    fill_stream(42, g.size, 5, b.size(), b.data());
    EXPECT_EQ(fnv1a(b), g.fnv) << "size " << g.size;
  }
}

TEST(BenchPayload, AnySplitIntoPiecesGivesTheSameBytes) {
  std::mt19937 rng(3);
  for (uint32_t size : {1u, 7u, 12u, 13u, 16u, 17u, 64u, 100u, 1024u}) {
    std::vector<uint8_t> whole(5000), pieces(5000);
    fill_stream(9, size, 0, whole.size(), whole.data());
    for (size_t at = 0; at < pieces.size();) {
      size_t n = std::min<size_t>(1 + rng() % 40, pieces.size() - at);
      fill_stream(9, size, at, n, pieces.data() + at);
      EXPECT_EQ(verify_stream(9, size, at, whole.data() + at, n), n) << "size " << size << " at " << at;
      at += n;
    }
    EXPECT_EQ(pieces, whole) << "size " << size;
  }
}

TEST(BenchPayload, VerifyFindsTheFirstWrongByte) {
  const uint32_t size = 64;
  std::vector<uint8_t> buf(640);
  fill_stream(7, size, 0, buf.size(), buf.data());
  for (size_t bad : {0u, 3u, 11u, 12u, 15u, 16u, 23u, 40u, 63u, 64u, 333u, 639u}) {
    std::vector<uint8_t> copy = buf;
    copy[bad] ^= 0x20;
    EXPECT_EQ(verify_stream(7, size, 0, copy.data(), copy.size()), bad);
  }
  // Another connection's or another message's bytes do not match.
  std::vector<uint8_t> other(640);
  fill_stream(8, size, 0, other.size(), other.data());
  EXPECT_LT(verify_stream(7, size, 0, other.data(), other.size()), 4u);
  EXPECT_LT(verify_stream(7, size, 64, buf.data(), 64), 64u);
  uint32_t conn;
  uint64_t seq;
  read_header(buf.data() + 3 * size, conn, seq);
  EXPECT_EQ(conn, 7u);
  EXPECT_EQ(seq, 3u);
}

TEST(BenchPayload, TextFormIsPrintableLinesInAnyPieces) {
  for (uint32_t size : {1u, 2u, 13u, 64u, 1000u}) {
    std::vector<uint8_t> whole(size * 7 + 5);
    fill_text_stream(3, size, 0, whole.size(), whole.data());
    for (size_t i = 0; i < whole.size(); ++i) {
      if (i % size == size - 1) {
        ASSERT_EQ(whole[i], '\n') << "size " << size << " byte " << i << ": every message ends a line";
      } else {
        ASSERT_TRUE(whole[i] >= '0' && whole[i] < '0' + 64) << "size " << size << " byte " << i;
      }
    }
    std::vector<uint8_t> pieces(whole.size());
    for (size_t at = 0, n = 1; at < pieces.size(); at += n, n = n * 3 % 17 + 1) {
      n = std::min(n, pieces.size() - at);
      fill_text_stream(3, size, at, n, pieces.data() + at);
      EXPECT_EQ(verify_text_stream(3, size, at, whole.data() + at, n), n);
    }
    EXPECT_EQ(pieces, whole) << "size " << size;
  }
  // A wrong byte, or another connection's stream, is found where it is.
  std::vector<uint8_t> buf(9000);
  fill_text_stream(5, 64, 0, buf.size(), buf.data());
  std::vector<uint8_t> copy = buf;
  copy[8191] ^= 1;
  EXPECT_EQ(verify_text_stream(5, 64, 0, copy.data(), copy.size()), 8191u);
  std::vector<uint8_t> other(64);
  fill_text_stream(6, 64, 0, other.size(), other.data());
  EXPECT_LT(verify_text_stream(5, 64, 0, other.data(), other.size()), 4u);
}
