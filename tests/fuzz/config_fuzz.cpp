// libFuzzer target: `eco serve --config FILE` (config/config_file.h). The file is
// outside input; whatever it holds, config_to_args returns arguments or one error
// that names the file, never crashes, and only ever yields "--key=value" for known keys.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "config/config_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<std::string> known = {"listen", "udp", "threads", "engine", "buffer", "max-conns",
                                                 "allow", "deny", "drain-timeout", "metrics", "proxy-protocol"};
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto r = eco::config::config_to_args(text, "fuzz.toml", known);
  if (!r) {
    if (r.error().message.find("fuzz.toml") == std::string::npos) std::abort();
    return 0;
  }
  for (const std::string& arg : *r) {
    if (arg.size() < 3 || arg.compare(0, 2, "--") != 0 || arg.find('=') == std::string::npos) std::abort();
    std::string key(eco::config::arg_key(arg));
    bool ok = false;
    for (const auto& k : known) ok = ok || k == key;
    if (!ok) std::abort();
  }
  return 0;
}
