#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "util/result.h"

namespace eco {

// "65536", "64K", "64KiB", "1M", "1MiB", "1G" (binary units, case-insensitive).
Result<uint64_t> parse_size(std::string_view text);
// "5", "2.5", "500ms", "5s", "1m" -> seconds.
Result<double> parse_duration(std::string_view text);
// 1536 -> "1.5 KiB"
std::string format_bytes(double bytes);

}  // namespace eco
