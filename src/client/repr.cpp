#include "client/repr.h"

#include <fmt/format.h>

namespace eco::client {

std::string python_bytes_repr(std::string_view bytes) {
  // Python picks double quotes only when the bytes hold a ' and no ".
  bool has_single = bytes.find('\'') != std::string_view::npos;
  bool has_double = bytes.find('"') != std::string_view::npos;
  char quote = (has_single && !has_double) ? '"' : '\'';
  std::string out = "b";
  out += quote;
  for (unsigned char c : bytes) {
    if (c == '\\') out += "\\\\";
    else if (c == quote) out += fmt::format("\\{}", char(c));
    else if (c == '\t') out += "\\t";
    else if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c < 0x20 || c >= 0x7f) out += fmt::format("\\x{:02x}", c);
    else out += char(c);
  }
  out += quote;
  return out;
}

}  // namespace eco::client
