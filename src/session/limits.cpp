#include "session/limits.h"

#include <charconv>

#include <fmt/format.h>

namespace eco::session {

Result<std::vector<uint16_t>> parse_port_list(std::string_view text) {
  std::vector<uint16_t> out;
  if (text == "none") return out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string_view::npos) comma = text.size();
    std::string_view p = text.substr(start, comma - start);
    unsigned v = 0;
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
    if (p.empty() || ec != std::errc() || end != p.data() + p.size() || v > 65535)
      return Error{fmt::format("invalid port list '{}': '{}' is not a port 0-65535 (or use 'none')", text, p)};
    out.push_back(uint16_t(v));
    start = comma + 1;
  }
  return out;
}

Result<uint32_t> parse_per_second(std::string_view text) {
  std::string_view num = text;
  if (num.size() > 2 && num.substr(num.size() - 2) == "/s") num.remove_suffix(2);
  uint32_t v = 0;
  auto [end, ec] = std::from_chars(num.data(), num.data() + num.size(), v);
  if (num.empty() || ec != std::errc() || end != num.data() + num.size() || v == 0)
    return Error{fmt::format("invalid rate '{}' (a count per second, e.g. 100 or 100/s)", text)};
  return v;
}

}  // namespace eco::session
