#pragma once
// The command-line definitions (CLI11) read back as data, for everything generated from
// them: the man pages, the shell completions and the keys of eco.toml. One walk over
// the same CLI::App objects that parse the command line, so none of those can drift
// from `--help`.
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace eco::cli {

struct OptionInfo {
  std::vector<std::string> names;  // "-l", "--listen" (flags and options)
  std::string positional;          // "address" (positionals; names is then empty)
  std::string value;               // "ADDR", "SIZE", "N", ...; empty for a flag
  std::vector<std::string> choices;  // the values it accepts, when they are a fixed set
  bool file = false;               // its value names a file
  bool repeatable = false;         // may be given more than once (a list)
  bool required = false;
  bool integer = false;            // its value is a whole number
  std::string default_value;
  std::string description;         // one paragraph
  std::string group;               // "Options", "Operations", "Limits and access", ...
};

// The visible options of one (sub)command, in definition order: positionals first,
// then options, each group's together, as `--help` lists them. Options in CLI11 option
// groups (add_option_group) count as the command's own.
std::vector<OptionInfo> visible_options(const CLI::App& app);

// Subcommands a user can name (hidden ones, whose group is empty, left out).
std::vector<const CLI::App*> visible_subcommands(const CLI::App& app);

// The keys `eco serve --config` accepts: every long option name of `eco serve`
// (hidden tuning ones too) but help and config.
std::vector<std::string> config_keys(const CLI::App& serve);

// Descriptions flattened to one paragraph (CLI11 help text wraps with '\n').
std::string one_paragraph(const std::string& text);

}  // namespace eco::cli
