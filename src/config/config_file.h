#pragma once
// `eco serve --config FILE`: a TOML file whose keys are the long flag names of the
// command line. The file is translated into arguments and parsed by the same CLI11
// definitions, so every flag (present and future) has a key with the same meaning
// and the same validation, and nothing is parsed twice in two different ways.
#include <string>
#include <string_view>
#include <vector>

#include "util/result.h"

namespace eco::config {

// Translates TOML text into "--key=value" arguments, one per value:
//   threads = 2                    -> --threads=2
//   udp = true / false             -> --udp=true / --udp=false
//   listen = ["a:1", "[::1]:1"]    -> --listen=a:1 --listen=[::1]:1
//   drain-timeout = "5s"           -> --drain-timeout=5s
// Only top-level keys are allowed, each one of `known_keys` (long names without
// dashes); values are strings, integers, floats, booleans or arrays of those.
// Errors name the source and line: "eco.toml:3: unknown key 'thread' (known: ...)".
// Pure: no I/O, safe on any input (a libFuzzer target feeds it arbitrary bytes).
Result<std::vector<std::string>> config_to_args(std::string_view toml_text, std::string_view source_name,
                                                const std::vector<std::string>& known_keys);

// The key of one translated argument: "--listen=a:1" -> "listen".
std::string_view arg_key(std::string_view arg);

}  // namespace eco::config
