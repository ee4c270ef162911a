#pragma once
// Man pages in roff, generated from the CLI11 definitions (see cli_model.h).
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "util/result.h"

namespace eco::cli {

// "eco", "eco-serve", "eco-send", "eco-ping", "eco-bench" (section 1), "eco.toml" (5).
std::vector<std::string> man_page_names();

// The page's roff source; `root` is the whole eco app. An unknown page is an error.
Result<std::string> man_page(const CLI::App& root, const std::string& page, const std::string& version);

}  // namespace eco::cli
