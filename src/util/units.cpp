#include "util/units.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>

#include <fmt/format.h>

namespace eco {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = char(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

Result<uint64_t> parse_size(std::string_view text) {
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end == text.data())
    return Error{fmt::format("invalid size '{}' (e.g. 65536, 64K, 1M)", text)};
  std::string unit = lower(std::string_view(end, size_t(text.data() + text.size() - end)));
  uint64_t mul = 1;
  if (unit.empty() || unit == "b") mul = 1;
  else if (unit == "k" || unit == "kb" || unit == "kib") mul = 1ull << 10;
  else if (unit == "m" || unit == "mb" || unit == "mib") mul = 1ull << 20;
  else if (unit == "g" || unit == "gb" || unit == "gib") mul = 1ull << 30;
  else return Error{fmt::format("invalid size '{}': unknown unit '{}' (use K, M or G)", text, unit)};
  if (value > (UINT64_MAX / mul)) return Error{fmt::format("invalid size '{}': too large", text)};
  return value * mul;
}

Result<double> parse_duration(std::string_view text) {
  std::string s(text);
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (s.empty() || end == s.c_str() || !std::isfinite(v) || v < 0)
    return Error{fmt::format("invalid duration '{}' (e.g. 5, 2.5s, 500ms, 1m)", text)};
  std::string unit = lower(end);
  if (unit.empty() || unit == "s") return v;
  if (unit == "ms") return v / 1000;
  if (unit == "us") return v / 1e6;
  if (unit == "m" || unit == "min") return v * 60;
  if (unit == "h") return v * 3600;
  return Error{fmt::format("invalid duration '{}': unknown unit '{}' (use ms, s, m or h)", text, unit)};
}

std::string format_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int i = 0;
  while (bytes >= 1024 && i < 4) {
    bytes /= 1024;
    ++i;
  }
  return i == 0 ? fmt::format("{:.0f} B", bytes) : fmt::format("{:.1f} {}", bytes, units[i]);
}

}  // namespace eco
