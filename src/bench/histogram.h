#pragma once
// HDR-style latency histogram (log-linear buckets, fixed memory, <= 1% relative
// error), laid out exactly like HdrHistogram's so it can be written in HdrHistogram's
// own V2 encoding. One per bench thread, merged at the end; samples are never sorted.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.h"

namespace eco::bench {

class Histogram {
 public:
  // Values are nanoseconds from 1 ns up to `highest` (default 100 s); larger values
  // are clamped to `highest` and counted in clamped().
  explicit Histogram(uint64_t highest = 100'000'000'000ull, int significant_digits = 3);

  void record(uint64_t value_ns, uint64_t count = 1);
  // Adds every count of `other` (which must have the same layout).
  void merge(const Histogram& other);
  void reset();

  uint64_t count() const { return total_; }
  uint64_t clamped() const { return clamped_; }
  uint64_t min() const;  // 0 when empty
  uint64_t max() const;
  double mean() const;
  double stddev() const;
  // The value at or below which `percentile` (0..100) of samples fall, as HdrHistogram
  // reports it (the highest equivalent value of the bucket).
  uint64_t value_at_percentile(double percentile) const;

  // HdrHistogram V2 compressed encoding (zlib-deflated, as HdrHistogram's
  // encodeIntoCompressedByteBuffer), then base64: what interval logs carry.
  std::string encode_compressed_base64() const;
  static Result<Histogram> decode_compressed_base64(const std::string& text);
  // The same encodings as bytes: V2 (cookie 0x1c849313) and its zlib-compressed
  // wrapper (cookie 0x1c849314). Decoding validates every length and index.
  std::string encode() const;
  std::string encode_compressed() const;
  static Result<Histogram> decode(std::string_view bytes);
  static Result<Histogram> decode_compressed(std::string_view bytes);

  // Equal layout and identical counts (what merge and encode/decode must preserve).
  bool same_counts(const Histogram& other) const;
  // Bucket bounds around `value`, as HdrHistogram's lowest/highestEquivalentValue.
  uint64_t lowest_equivalent(uint64_t value) const;
  size_t memory_bytes() const { return counts_.size() * sizeof(uint64_t); }

  int64_t lowest_discernible() const { return 1; }
  uint64_t highest_trackable() const { return highest_; }
  int significant_digits() const { return digits_; }

 private:
  size_t index_of(uint64_t value) const;
  uint64_t value_from_index(size_t index) const;
  uint64_t highest_equivalent(uint64_t value) const;
  uint64_t median_equivalent(uint64_t value) const;
  uint64_t bucket_width(uint64_t value) const;

  uint64_t highest_;
  int digits_;
  int unit_magnitude_ = 0;
  int sub_bucket_half_count_magnitude_ = 0;
  int32_t sub_bucket_count_ = 0;
  int32_t sub_bucket_half_count_ = 0;
  uint64_t sub_bucket_mask_ = 0;
  int32_t bucket_count_ = 0;
  std::vector<uint64_t> counts_;
  uint64_t total_ = 0;
  uint64_t clamped_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
};

}  // namespace eco::bench
