#pragma once
// Shell completion scripts, generated from the CLI11 definitions (see cli_model.h).
#include <string>

#include <CLI/CLI.hpp>

#include "util/result.h"

namespace eco::cli {

// The completion script for `shell` ("bash" or "zsh"); `root` is the whole eco app.
Result<std::string> completion_script(const CLI::App& root, const std::string& shell);

}  // namespace eco::cli
