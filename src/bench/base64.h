#pragma once
// Standard base64 (RFC 4648, with padding): the text form interval logs and JSON
// results carry HdrHistogram encodings in.
#include <string>
#include <string_view>

#include "util/result.h"

namespace eco::bench {

std::string base64_encode(std::string_view bytes);
// Rejects characters outside the alphabet and bad padding; ignores nothing.
Result<std::string> base64_decode(std::string_view text);

}  // namespace eco::bench
