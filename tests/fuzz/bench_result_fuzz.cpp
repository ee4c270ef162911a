// libFuzzer target: `eco bench merge` reads result files that may come from other
// machines (bench/result.h from_json, with its base64 HdrHistogram inside), and merges
// them (bench/merge.h). Input: JSON text, tried alone, against itself, and with its
// histogram field's bytes also decoded directly.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "bench/histogram.h"
#include "bench/merge.h"
#include "bench/result.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto r = eco::bench::from_json(text);
  if (!r.ok()) {
    if (r.error().message.empty()) std::abort();  // every refusal names what is wrong
  } else {
    // What was read writes out and reads back to the same measurement.
    std::string again = eco::bench::to_json(*r);
    auto r2 = eco::bench::from_json(again);
    if (!r2.ok()) std::abort();
    if (r2->round_trips != r->round_trips || r2->bytes != r->bytes || r2->errors.total() != r->errors.total() ||
        !r2->histogram.same_counts(r->histogram))
      std::abort();
    // A run merges with itself (same parameters): counts add up.
    auto m = eco::bench::merge(std::vector<eco::bench::BenchResult>{*r, *r});
    if (m.ok() && m->histogram.count() != 2 * r->histogram.count()) std::abort();
    (void)eco::bench::format_summary(*r);
  }
  // The raw decoders on the same bytes: compressed HdrHistogram and base64 text.
  (void)eco::bench::Histogram::decode(text);
  (void)eco::bench::Histogram::decode_compressed(text);
  (void)eco::bench::Histogram::decode_compressed_base64(std::string(text));
  return 0;
}
