#include "bench/histogram.h"

#include <zlib.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

#include "bench/base64.h"

namespace eco::bench {

namespace {

// HdrHistogram's V2 cookies with the word-size nibble set to 0x10, exactly as its
// getEncodingCookie()/getCompressedEncodingCookie() write them; readers mask the
// nibble off (cookie & ~0xf0) before comparing.
constexpr uint32_t kV2EncodingCookie = 0x1c849303u | 0x10u;
constexpr uint32_t kV2CompressedEncodingCookie = 0x1c849304u | 0x10u;
constexpr uint32_t kCookieBaseMask = ~0xf0u;
constexpr size_t kEncodingHeaderSize = 40;
// An uncompressed payload can never exceed 9 bytes per count (ZigZag LEB128 of a
// 64-bit value); this caps what a hostile or corrupt input can make us inflate.
constexpr size_t kMaxInflatedBytes = 64u << 20;

void put_u32(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(char((v >> shift) & 0xff));
}
void put_u64(std::string& out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(char((v >> shift) & 0xff));
}
uint32_t get_u32(const unsigned char* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
}
uint64_t get_u64(const unsigned char* p) { return uint64_t(get_u32(p)) << 32 | get_u32(p + 4); }

// HdrHistogram's ZigZagEncoding.putLong: zigzag, then little-endian 7-bit groups
// with a continuation bit, except that a 9th byte carries a full 8 bits.
void put_zigzag(std::string& out, int64_t value) {
  uint64_t v = (uint64_t(value) << 1) ^ uint64_t(value >> 63);
  for (int i = 0; i < 8; ++i) {
    if ((v >> 7) == 0) {
      out.push_back(char(v));
      return;
    }
    out.push_back(char((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(char(v & 0xff));
}

// Returns false when the input ends inside a value.
bool get_zigzag(const unsigned char*& p, const unsigned char* end, int64_t& value) {
  uint64_t v = 0;
  for (int i = 0; i < 9; ++i) {
    if (p == end) return false;
    uint64_t byte = *p++;
    if (i == 8) {
      v |= byte << 56;
      break;
    }
    v |= (byte & 0x7f) << (7 * i);
    if ((byte & 0x80) == 0) break;
  }
  value = int64_t(v >> 1) ^ -int64_t(v & 1);
  return true;
}

int32_t buckets_needed(uint64_t highest, int32_t sub_bucket_count, int unit_magnitude) {
  // As HdrHistogram's getBucketsNeededToCoverValue.
  uint64_t smallest_untrackable = uint64_t(sub_bucket_count) << unit_magnitude;
  int32_t needed = 1;
  while (smallest_untrackable <= highest) {
    if (smallest_untrackable > uint64_t(std::numeric_limits<int64_t>::max()) / 2) return needed + 1;
    smallest_untrackable <<= 1;
    ++needed;
  }
  return needed;
}

}  // namespace

Histogram::Histogram(uint64_t highest, int significant_digits)
    : highest_(std::clamp<uint64_t>(highest, 2, uint64_t(std::numeric_limits<int64_t>::max()))),
      digits_(std::clamp(significant_digits, 0, 5)) {
  // The layout follows HdrHistogram's AbstractHistogram.init() with lowest = 1, so
  // counts line up index for index with a Java Histogram(1, highest, digits).
  uint64_t largest_single_unit = 2;
  for (int i = 0; i < digits_; ++i) largest_single_unit *= 10;
  int sub_bucket_count_magnitude = int(std::bit_width(largest_single_unit - 1));  // ceil(log2)
  sub_bucket_half_count_magnitude_ = std::max(sub_bucket_count_magnitude, 1) - 1;
  unit_magnitude_ = 0;
  sub_bucket_count_ = int32_t(1) << (sub_bucket_half_count_magnitude_ + 1);
  sub_bucket_half_count_ = sub_bucket_count_ / 2;
  sub_bucket_mask_ = uint64_t(sub_bucket_count_ - 1) << unit_magnitude_;
  bucket_count_ = buckets_needed(highest_, sub_bucket_count_, unit_magnitude_);
  counts_.assign(size_t(bucket_count_ + 1) * size_t(sub_bucket_half_count_), 0);
}

size_t Histogram::index_of(uint64_t value) const {
  // getBucketIndex: leadingZeroCountBase - numberOfLeadingZeros(value | subBucketMask)
  int leading_zero_base = 64 - unit_magnitude_ - sub_bucket_half_count_magnitude_ - 1;
  int bucket = leading_zero_base - std::countl_zero(value | sub_bucket_mask_);
  int64_t sub_bucket = int64_t(value >> (bucket + unit_magnitude_));
  int64_t base = int64_t(bucket + 1) << sub_bucket_half_count_magnitude_;
  return size_t(base + (sub_bucket - sub_bucket_half_count_));
}

uint64_t Histogram::value_from_index(size_t index) const {
  int64_t bucket = int64_t(index >> sub_bucket_half_count_magnitude_) - 1;
  int64_t sub_bucket = int64_t(index & size_t(sub_bucket_half_count_ - 1)) + sub_bucket_half_count_;
  if (bucket < 0) {
    sub_bucket -= sub_bucket_half_count_;
    bucket = 0;
  }
  return uint64_t(sub_bucket) << (bucket + unit_magnitude_);
}

uint64_t Histogram::lowest_equivalent(uint64_t value) const {
  return value_from_index(index_of(value));
}

uint64_t Histogram::bucket_width(uint64_t value) const {
  int leading_zero_base = 64 - unit_magnitude_ - sub_bucket_half_count_magnitude_ - 1;
  int bucket = leading_zero_base - std::countl_zero(value | sub_bucket_mask_);
  uint64_t sub_bucket = value >> (bucket + unit_magnitude_);
  int shift = unit_magnitude_ + (sub_bucket >= uint64_t(sub_bucket_count_) ? bucket + 1 : bucket);
  return uint64_t(1) << shift;
}

uint64_t Histogram::highest_equivalent(uint64_t value) const {
  return lowest_equivalent(value) + bucket_width(value) - 1;
}

uint64_t Histogram::median_equivalent(uint64_t value) const {
  return lowest_equivalent(value) + (bucket_width(value) >> 1);
}

void Histogram::record(uint64_t value_ns, uint64_t count) {
  if (value_ns > highest_) {
    value_ns = highest_;
    clamped_ += count;
  }
  counts_[index_of(value_ns)] += count;
  total_ += count;
  if (value_ns < min_) min_ = value_ns;
  if (value_ns > max_) max_ = value_ns;
}

void Histogram::merge(const Histogram& other) {
  if (other.total_ == 0) return;
  if (other.counts_.size() == counts_.size() && other.digits_ == digits_) {
    // Every count lies between the indexes of min_ and max_: only that range is added.
    for (size_t i = other.index_of(other.min_), last = other.index_of(other.max_); i <= last; ++i)
      counts_[i] += other.counts_[i];
    total_ += other.total_;
    min_ = std::min(min_, other.min_);
    max_ = std::max(max_, other.max_);
  } else {
    // Different layouts: re-record each bucket at its lowest value, as HdrHistogram's
    // add() does, so the result stays within this histogram's own error bound.
    for (size_t i = 0; i < other.counts_.size(); ++i) {
      if (other.counts_[i] != 0) record(other.value_from_index(i), other.counts_[i]);
    }
  }
  clamped_ += other.clamped_;
}

void Histogram::reset() {
  // Only the range between min_ and max_ can hold counts: a bench thread resets its
  // interval histogram ten times a second, and the whole array is 229 KB.
  if (total_ > 0) std::fill(counts_.begin() + ptrdiff_t(index_of(min_)), counts_.begin() + ptrdiff_t(index_of(max_)) + 1, 0);
  total_ = 0;
  clamped_ = 0;
  min_ = UINT64_MAX;
  max_ = 0;
}

uint64_t Histogram::min() const { return total_ == 0 ? 0 : lowest_equivalent(min_); }

uint64_t Histogram::max() const { return total_ == 0 ? 0 : highest_equivalent(max_); }

double Histogram::mean() const {
  if (total_ == 0) return 0.0;
  // HdrHistogram's getMean(): each bucket counts at its median equivalent value.
  double sum = 0.0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    if (counts_[i] != 0) sum += double(median_equivalent(value_from_index(i))) * double(counts_[i]);
  }
  return sum / double(total_);
}

double Histogram::stddev() const {
  if (total_ == 0) return 0.0;
  double m = mean();
  double sum = 0.0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    if (counts_[i] == 0) continue;
    double dev = double(median_equivalent(value_from_index(i))) - m;
    sum += dev * dev * double(counts_[i]);
  }
  return std::sqrt(sum / double(total_));
}

uint64_t Histogram::value_at_percentile(double percentile) const {
  if (total_ == 0) return 0;
  // The same arithmetic as HdrHistogram 2.1.11's getValueAtPercentile, including
  // the nextAfter that keeps 99.0 of 100 samples from rounding up to sample 100.
  double requested =
      std::min(std::max(std::nextafter(percentile, -std::numeric_limits<double>::infinity()), 0.0), 100.0);
  double fp_count = requested * double(total_) / 100.0;
  uint64_t wanted = std::max<uint64_t>(uint64_t(std::ceil(fp_count)), 1);
  uint64_t running = 0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    running += counts_[i];
    if (running >= wanted) {
      uint64_t v = value_from_index(i);
      return percentile == 0.0 ? lowest_equivalent(v) : highest_equivalent(v);
    }
  }
  return 0;
}

bool Histogram::same_counts(const Histogram& other) const {
  return highest_ == other.highest_ && digits_ == other.digits_ && total_ == other.total_ &&
         counts_ == other.counts_;
}

std::string Histogram::encode() const {
  // AbstractHistogram.encodeIntoByteBuffer: a 40-byte big-endian header, then
  // counts up to the max value's index, runs of zeros written as one negative count.
  std::string out;
  out.reserve(kEncodingHeaderSize + 64);
  put_u32(out, kV2EncodingCookie);
  put_u32(out, 0);  // payload length, patched below
  put_u32(out, 0);  // normalizing index offset
  put_u32(out, uint32_t(digits_));
  put_u64(out, 1);  // lowest discernible value
  put_u64(out, highest_);
  double ratio = 1.0;
  uint64_t ratio_bits;
  std::memcpy(&ratio_bits, &ratio, sizeof ratio);
  put_u64(out, ratio_bits);
  size_t limit = total_ == 0 ? 0 : index_of(max_) + 1;
  size_t i = 0;
  while (i < limit) {
    uint64_t c = counts_[i++];
    if (c == 0) {
      int64_t zeros = 1;
      while (i < limit && counts_[i] == 0) {
        ++zeros;
        ++i;
      }
      put_zigzag(out, zeros > 1 ? -zeros : 0);
    } else {
      put_zigzag(out, int64_t(c));
    }
  }
  uint32_t payload = uint32_t(out.size() - kEncodingHeaderSize);
  for (int b = 0; b < 4; ++b) out[size_t(4 + b)] = char((payload >> (24 - 8 * b)) & 0xff);
  return out;
}

std::string Histogram::encode_compressed() const {
  std::string raw = encode();
  uLongf bound = compressBound(uLong(raw.size()));
  std::string out(8 + bound, '\0');
  // java.util.zip.Deflater's default: zlib format at the default level.
  int rc = compress2(reinterpret_cast<Bytef*>(out.data() + 8), &bound,
                     reinterpret_cast<const Bytef*>(raw.data()), uLong(raw.size()), Z_DEFAULT_COMPRESSION);
  if (rc != Z_OK) return {};  // only on out-of-memory; callers treat "" as no histogram
  out.resize(8 + bound);
  std::string head;
  put_u32(head, kV2CompressedEncodingCookie);
  put_u32(head, uint32_t(bound));
  out.replace(0, 8, head);
  return out;
}

std::string Histogram::encode_compressed_base64() const { return base64_encode(encode_compressed()); }

Result<Histogram> Histogram::decode(std::string_view bytes) {
  auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  if (bytes.size() < kEncodingHeaderSize) return Error{"histogram: encoding shorter than its header"};
  uint32_t cookie = get_u32(p);
  if ((cookie & kCookieBaseMask) != 0x1c849303u) {
    return Error{"histogram: not an HdrHistogram V2 encoding (cookie " + std::to_string(cookie) + ")"};
  }
  uint32_t payload = get_u32(p + 4);
  uint32_t normalizing = get_u32(p + 8);
  uint32_t digits = get_u32(p + 12);
  uint64_t lowest = get_u64(p + 16);
  uint64_t highest = get_u64(p + 24);
  if (normalizing != 0) return Error{"histogram: shifted (normalizing offset) histograms are not supported"};
  if (digits > 5) return Error{"histogram: significant digits " + std::to_string(digits) + " out of range 0..5"};
  if (lowest != 1) return Error{"histogram: lowest discernible value must be 1, got " + std::to_string(lowest)};
  if (highest < 2 || highest > uint64_t(std::numeric_limits<int64_t>::max())) {
    return Error{"histogram: highest trackable value out of range"};
  }
  if (payload > bytes.size() - kEncodingHeaderSize) return Error{"histogram: payload truncated"};
  Histogram h(highest, int(digits));
  const unsigned char* cur = p + kEncodingHeaderSize;
  const unsigned char* end = cur + payload;
  size_t index = 0;
  while (cur < end && index < h.counts_.size()) {
    int64_t c;
    if (!get_zigzag(cur, end, c)) return Error{"histogram: payload ends inside a count"};
    if (c < 0) {
      uint64_t zeros = uint64_t(-(c + 1)) + 1;  // no overflow for INT64_MIN
      if (zeros > h.counts_.size() - index) return Error{"histogram: zero run past the last bucket"};
      index += size_t(zeros);
      continue;
    }
    if (h.total_ + uint64_t(c) < h.total_) return Error{"histogram: total count overflows"};
    h.counts_[index] = uint64_t(c);
    h.total_ += uint64_t(c);
    if (c != 0) {
      uint64_t v = h.value_from_index(index);
      h.min_ = std::min(h.min_, v);
      h.max_ = std::max(h.max_, v);
    }
    ++index;
  }
  if (cur != end) return Error{"histogram: more counts than buckets"};
  return h;
}

Result<Histogram> Histogram::decode_compressed(std::string_view bytes) {
  auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  if (bytes.size() < 8) return Error{"histogram: compressed encoding shorter than its header"};
  uint32_t cookie = get_u32(p);
  if ((cookie & kCookieBaseMask) != 0x1c849304u) {
    return Error{"histogram: not an HdrHistogram V2 compressed encoding (cookie " + std::to_string(cookie) + ")"};
  }
  uint32_t length = get_u32(p + 4);
  if (length > bytes.size() - 8) return Error{"histogram: compressed data truncated"};

  z_stream zs{};
  if (inflateInit(&zs) != Z_OK) return Error{"histogram: zlib inflateInit failed"};
  zs.next_in = const_cast<Bytef*>(p + 8);
  zs.avail_in = length;
  std::string raw;
  int rc = Z_OK;
  while (rc == Z_OK) {
    if (raw.size() >= kMaxInflatedBytes) break;
    size_t old = raw.size();
    raw.resize(old + std::max<size_t>(4096, old));
    zs.next_out = reinterpret_cast<Bytef*>(raw.data() + old);
    zs.avail_out = uInt(raw.size() - old);
    rc = inflate(&zs, Z_NO_FLUSH);
    raw.resize(raw.size() - zs.avail_out);
    if (rc == Z_BUF_ERROR && zs.avail_in == 0) break;  // input ended before the stream did
  }
  inflateEnd(&zs);
  if (rc != Z_STREAM_END) return Error{"histogram: compressed data is corrupt or truncated"};
  return decode(raw);
}

Result<Histogram> Histogram::decode_compressed_base64(const std::string& text) {
  auto bytes = base64_decode(text);
  if (!bytes) return Error{"histogram: " + bytes.error().message};
  return decode_compressed(*bytes);
}

}  // namespace eco::bench
