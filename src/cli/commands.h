#pragma once
// Each subcommand adds itself to the app and returns how to run it once parsed.
// The CLI layer only parses and validates; the work lives in server/, client/, bench/.
#include <functional>

#include <CLI/CLI.hpp>

namespace eco::cli {

struct Command {
  CLI::App* app = nullptr;
  std::function<int()> run;  // returns the exit code
};

Command add_serve(CLI::App& app);
Command add_send(CLI::App& app);
Command add_bench(CLI::App& app);
Command add_ping(CLI::App& app);
// Hidden: the build writes the man pages and shell completions with these (docs_cmd.cpp).
Command add_man(CLI::App& app);
Command add_completion(CLI::App& app);

// Prints "eco: <message>" on stderr and returns `code`.
int fail(int code, const std::string& message);

// CLI11 validators that reuse eco's own parsers, so messages match everywhere.
CLI::Validator size_validator();
CLI::Validator duration_validator();

}  // namespace eco::cli
