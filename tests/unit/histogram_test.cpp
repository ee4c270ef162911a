#include "bench/histogram.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "bench/base64.h"

using eco::bench::Histogram;

namespace {

// The exact percentile of a sorted sample, by HdrHistogram's rule: the value of
// sample number ceil(p/100 * n) (1-based), at least the first.
uint64_t exact_percentile(const std::vector<uint64_t>& sorted, double p) {
  auto rank = uint64_t(std::ceil(p / 100.0 * double(sorted.size())));
  rank = std::clamp<uint64_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

// The histogram's claim: every percentile within 0.1% (3 significant digits) of
// the exact one, and never below it (it reports the bucket's highest value).
void expect_percentiles_close(const Histogram& h, std::vector<uint64_t> samples) {
  std::sort(samples.begin(), samples.end());
  for (double p : {1.0, 10.0, 25.0, 50.0, 75.0, 90.0, 99.0, 99.9, 99.99, 100.0}) {
    double exact = double(exact_percentile(samples, p));
    double got = double(h.value_at_percentile(p));
    EXPECT_GE(got, exact) << "p" << p;
    EXPECT_LE(got, exact * 1.001 + 1) << "p" << p;
  }
}

}  // namespace

TEST(Histogram, EmptyReportsZeros) {
  Histogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.max(), 0u);
  EXPECT_EQ(h.value_at_percentile(99), 0u);
  EXPECT_EQ(h.mean(), 0.0);
}

TEST(Histogram, ConstantValueIsExactBelow2048AndWithinPrecisionAbove) {
  Histogram small;
  for (int i = 0; i < 1000; ++i) small.record(1234);
  EXPECT_EQ(small.value_at_percentile(50), 1234u);
  EXPECT_EQ(small.value_at_percentile(99.99), 1234u);
  EXPECT_EQ(small.min(), 1234u);
  EXPECT_EQ(small.max(), 1234u);
  EXPECT_DOUBLE_EQ(small.mean(), 1234.0);
  EXPECT_DOUBLE_EQ(small.stddev(), 0.0);

  Histogram big;
  const uint64_t v = 20'000'000;  // 20 ms in ns
  big.record(v, 500);
  EXPECT_EQ(big.count(), 500u);
  for (double p : {0.0, 50.0, 99.0, 100.0}) {
    double got = double(big.value_at_percentile(p));
    EXPECT_NEAR(got, double(v), double(v) * 0.001) << p;
  }
  EXPECT_LE(big.min(), v);
  EXPECT_GE(big.max(), v);
}

TEST(Histogram, UniformPercentilesWithinPrecision) {
  Histogram h;
  std::vector<uint64_t> samples;
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<uint64_t> dist(1'000, 10'000'000);
  for (int i = 0; i < 200'000; ++i) {
    uint64_t v = dist(rng);
    samples.push_back(v);
    h.record(v);
  }
  EXPECT_EQ(h.count(), samples.size());
  expect_percentiles_close(h, samples);
  // Uniform on [a, b]: the median is near the middle.
  EXPECT_NEAR(double(h.value_at_percentile(50)), 5'000'500.0, 5'000'500.0 * 0.01);
}

TEST(Histogram, ExponentialTailPercentilesWithinPrecision) {
  Histogram h;
  std::vector<uint64_t> samples;
  std::mt19937_64 rng(7);
  std::exponential_distribution<double> dist(1.0 / 50'000.0);  // mean 50 µs
  for (int i = 0; i < 200'000; ++i) {
    auto v = uint64_t(dist(rng)) + 1;
    samples.push_back(v);
    h.record(v);
  }
  expect_percentiles_close(h, samples);
  // Exponential: p50 = mean * ln 2, p99 = mean * ln 100 (sampling error well under 5%).
  EXPECT_NEAR(double(h.value_at_percentile(50)), 50'000.0 * std::log(2.0), 50'000.0 * std::log(2.0) * 0.05);
  EXPECT_NEAR(double(h.value_at_percentile(99)), 50'000.0 * std::log(100.0), 50'000.0 * std::log(100.0) * 0.05);
  EXPECT_NEAR(h.mean(), 50'000.0, 50'000.0 * 0.02);
  EXPECT_NEAR(h.stddev(), 50'000.0, 50'000.0 * 0.05);
}

TEST(Histogram, WideRangeValuesStayWithinOnePercent) {
  Histogram h;
  // 1 ns .. 100 s on a log scale: every bucket a value lands in is within 0.1%.
  for (double v = 1; v < 1e11; v *= 1.37) {
    h.reset();
    h.record(uint64_t(v));
    double got = double(h.value_at_percentile(50));
    EXPECT_GE(got, std::floor(v));
    EXPECT_LE(got, std::floor(v) * 1.001 + 1) << v;
  }
}

TEST(Histogram, ValuesAboveHighestAreClampedAndCounted) {
  Histogram h(1'000'000);
  h.record(5'000'000);
  h.record(10);
  EXPECT_EQ(h.count(), 2u);
  EXPECT_EQ(h.clamped(), 1u);
  EXPECT_NEAR(double(h.max()), 1'000'000.0, 1'000.0);
}

TEST(Histogram, MemoryIsFixedByRangeNotSamples) {
  Histogram h;
  size_t before = h.memory_bytes();
  for (uint64_t v = 1; v < 100'000'000'000ull; v = v * 3 + 1) h.record(v);
  EXPECT_EQ(h.memory_bytes(), before);
  // HdrHistogram(1, 100 s, 3 digits): 28 half-buckets of 1024 counts.
  EXPECT_EQ(before, 28u * 1024u * 8u);
}

TEST(Histogram, MergeEqualsOneHistogramOfAllSamples) {
  Histogram a, b, all;
  std::mt19937_64 rng(1);
  std::lognormal_distribution<double> dist(11.0, 1.5);
  for (int i = 0; i < 50'000; ++i) {
    auto v = uint64_t(dist(rng)) + 1;
    (i % 3 == 0 ? a : b).record(v);
    all.record(v);
  }
  a.merge(b);
  EXPECT_TRUE(a.same_counts(all));
  EXPECT_EQ(a.count(), all.count());
  EXPECT_EQ(a.min(), all.min());
  EXPECT_EQ(a.max(), all.max());
  for (double p : {50.0, 90.0, 99.0, 99.9, 99.99}) {
    EXPECT_EQ(a.value_at_percentile(p), all.value_at_percentile(p)) << p;
  }
  EXPECT_DOUBLE_EQ(a.mean(), all.mean());
}

TEST(Histogram, ResetClearsEveryCountIncludingClampedAndDecoded) {
  // reset() and merge() touch only the range between the lowest and highest value
  // recorded: whatever filled the histogram, after reset it equals a fresh one.
  Histogram fresh;
  Histogram h;
  for (uint64_t v : {1ull, 2047ull, 2048ull, 123'456ull, 99'999'999'999ull, 500'000'000'000ull}) h.record(v, 3);
  h.reset();
  EXPECT_TRUE(h.same_counts(fresh));
  EXPECT_EQ(h.clamped(), 0u);
  Histogram src;
  src.record(7);
  src.record(40'000'000);
  auto decoded = Histogram::decode(src.encode());
  ASSERT_TRUE(decoded.ok());
  decoded->reset();
  EXPECT_TRUE(decoded->same_counts(fresh));
  // Reused after a reset, and merged, it counts as a histogram of those samples only.
  h.record(5'000);
  h.merge(src);
  Histogram want;
  want.record(5'000);
  want.record(7);
  want.record(40'000'000);
  EXPECT_TRUE(h.same_counts(want));
}

TEST(Histogram, MergeIntoEmptyAndOfEmpty) {
  Histogram a, empty;
  a.record(100);
  a.merge(empty);
  EXPECT_EQ(a.count(), 1u);
  empty.merge(a);
  EXPECT_TRUE(empty.same_counts(a));
  EXPECT_EQ(empty.min(), 100u);
}

TEST(Histogram, EncodeDecodeRoundTripIsExact) {
  Histogram h;
  std::mt19937_64 rng(3);
  std::exponential_distribution<double> dist(1.0 / 200'000.0);
  for (int i = 0; i < 100'000; ++i) h.record(uint64_t(dist(rng)) + 1);
  h.record(30'000'000'000ull);  // a lone 30 s stall far out in the tail

  auto plain = Histogram::decode(h.encode());
  ASSERT_TRUE(plain.ok()) << plain.error().message;
  EXPECT_TRUE(plain->same_counts(h));

  std::string text = h.encode_compressed_base64();
  auto back = Histogram::decode_compressed_base64(text);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_TRUE(back->same_counts(h));
  EXPECT_EQ(back->min(), h.min());
  EXPECT_EQ(back->max(), h.max());
  EXPECT_EQ(back->value_at_percentile(99.99), h.value_at_percentile(99.99));
}

TEST(Histogram, EncodingMatchesHdrHistogramBytes) {
  Histogram h;
  h.record(1);
  h.record(1);
  h.record(3);
  h.record(2048);  // first value of the second bucket
  std::string e = h.encode();
  auto u8 = [&](size_t i) { return unsigned(uint8_t(e[i])); };
  // Cookie 0x1c849313 (V2 base 0x1c849303 | word size nibble 0x10), big endian.
  EXPECT_EQ(u8(0), 0x1cu);
  EXPECT_EQ(u8(1), 0x84u);
  EXPECT_EQ(u8(2), 0x93u);
  EXPECT_EQ(u8(3), 0x13u);
  EXPECT_EQ(u8(15), 3u);  // significant digits
  EXPECT_EQ(u8(23), 1u);  // lowest discernible value
  EXPECT_EQ(u8(32), 0x3fu);  // 1.0 as an IEEE double: 3ff0000000000000
  EXPECT_EQ(u8(33), 0xf0u);
  // Payload: index0 = 0 -> 0; index1 = 2 -> zigzag 4; index2 = 0 -> 0 (a single zero is
  // written as a count); index3 = 1 -> 2; then zeros up to index 2048 (index of 2048 is
  // 1024 + 1024 = 2048), a run of 2044 -> zigzag(-2044) = 4087 = 0xF7 0x1F; then 1 -> 2.
  std::vector<unsigned> payload;
  for (size_t i = 40; i < e.size(); ++i) payload.push_back(u8(i));
  EXPECT_EQ(payload, (std::vector<unsigned>{0, 4, 0, 2, 0xf7, 0x1f, 2}));
  EXPECT_EQ(u8(7), payload.size());  // payload length field

  std::string c = h.encode_compressed();
  EXPECT_EQ(unsigned(uint8_t(c[3])), 0x14u);  // compressed cookie 0x1c849314
  EXPECT_EQ(unsigned(uint8_t(c[8])), 0x78u);  // zlib header, as java.util.zip.Deflater writes
}

TEST(Histogram, DecodeRejectsGarbage) {
  EXPECT_FALSE(Histogram::decode_compressed_base64("not base64!").ok());
  EXPECT_FALSE(Histogram::decode_compressed_base64("").ok());
  EXPECT_FALSE(Histogram::decode_compressed_base64(eco::bench::base64_encode("HISTOGRAM")).ok());
  Histogram h;
  h.record(12345);
  std::string good = h.encode_compressed();
  // Truncated compressed stream.
  EXPECT_FALSE(Histogram::decode_compressed(good.substr(0, good.size() - 3)).ok());
  // Uncompressed: a zero run reaching past the last bucket.
  std::string bad = h.encode().substr(0, 40);
  bad[7] = 3;
  bad += "\xff\xff\x7f";  // zigzag of a huge negative run
  EXPECT_FALSE(Histogram::decode(bad).ok());
  // A wrong cookie is named in the message.
  std::string wrong = good;
  wrong[0] = 0;
  auto r = Histogram::decode_compressed(wrong);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("cookie"), std::string::npos);
}

TEST(Base64, KnownVectors) {
  using eco::bench::base64_decode;
  using eco::bench::base64_encode;
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(*base64_decode("Zm9vYg=="), "foob");
  EXPECT_EQ(*base64_decode("Zm9vYmE="), "fooba");
  EXPECT_FALSE(base64_decode("Zm9").ok());
  EXPECT_FALSE(base64_decode("Zm9*").ok());
}

TEST(Histogram, DecodeSurvivesCorruptedInput) {
  // Result files come from other machines: a flipped or truncated byte must give an
  // error or a histogram, never a crash or an out-of-bounds write (ASan build checks).
  Histogram h;
  std::mt19937_64 rng(9);
  for (int i = 0; i < 5'000; ++i) h.record(1 + rng() % 50'000'000);
  const std::string plain = h.encode();
  const std::string packed = h.encode_compressed();
  int decoded = 0;
  for (int i = 0; i < 3'000; ++i) {
    std::string p = plain, c = packed;
    p[rng() % p.size()] = char(rng());
    c[8 + rng() % (c.size() - 8)] = char(rng());
    auto a = Histogram::decode(p);
    auto b = Histogram::decode_compressed(c);
    auto t = Histogram::decode(plain.substr(0, rng() % plain.size()));
    decoded += a.ok() + b.ok() + t.ok();
    if (a.ok()) {
      // Whatever decoded is self-consistent: its max bounds every percentile.
      EXPECT_LE(a->value_at_percentile(99.9), a->max());
    }
  }
  // Flips in count bytes still decode (to other counts); most header/zlib damage does not.
  EXPECT_GT(decoded, 0);
  EXPECT_LT(decoded, 9'000);
}

TEST(Histogram, ReadsAndWritesWhatHdrHistogramJavaDoes) {
  // Golden vectors from HdrHistogram 2.1.11 (Debian's libhdrhistogram-java):
  // Histogram(1, 100 s, 3) after recordValue 1, 2, 1000, 123456, 20 ms x3, 1.5 s,
  // encodeIntoCompressedByteBuffer and encodeIntoByteBuffer, in base64.
  const std::string java_compressed =
      "HISTFAAAAC94nJNpmSzMwMDAzwABzFCaEYjFPcpeMNh/gIowMZ3kZ9qfx/S5hG1hMhMArhgIxg==";
  const std::string java_plain = "HISTEwAAAA8AAAAAAAAAAwAAAAAAAAABAAAAF0h26AA/8AAAAAAAAAACAskPAr9uAvN0BqFjAg==";
  Histogram mine;
  for (uint64_t v : {1ull, 2ull, 1000ull, 123456ull}) mine.record(v);
  mine.record(20'000'000, 3);
  mine.record(1'500'000'000);

  auto theirs = Histogram::decode_compressed_base64(java_compressed);
  ASSERT_TRUE(theirs.ok()) << theirs.error().message;
  EXPECT_TRUE(theirs->same_counts(mine));
  // Java's getValueAtPercentile(50), (90), getMaxValue(), getMinValue(), getMean().
  EXPECT_EQ(theirs->value_at_percentile(50), 123519u);
  EXPECT_EQ(theirs->value_at_percentile(90), 1500512255u);
  EXPECT_EQ(theirs->max(), 1500512255u);
  EXPECT_EQ(theirs->min(), 1u);
  EXPECT_DOUBLE_EQ(theirs->mean(), 1.95012809375E8);
  // Byte for byte the same uncompressed encoding as Java's.
  EXPECT_EQ(eco::bench::base64_encode(mine.encode()), java_plain);
}
