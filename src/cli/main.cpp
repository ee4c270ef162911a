// eco: TCP and UDP echo for Linux — server, client, latency probe and load generator.
#include <sys/utsname.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include <fmt/format.h>

#include "cli/cli_model.h"
#include "cli/commands.h"
#include "config/config_file.h"
#include "engine/engine.h"
#include "util/build_version.h"
#include "util/exit_codes.h"
#include "util/units.h"

namespace eco::cli {

int fail(int code, const std::string& message) {
  fmt::print(stderr, "eco: {}\n", message);
  return code;
}

CLI::Validator size_validator() {
  return CLI::Validator(
      [](std::string& s) {
        auto r = parse_size(s);
        return r ? std::string() : r.error().message;
      },
      "SIZE");
}

CLI::Validator duration_validator() {
  return CLI::Validator(
      [](std::string& s) {
        auto r = parse_duration(s);
        return r ? std::string() : r.error().message;
      },
      "DURATION");
}

std::string version_text() {
  utsname u{};
  uname(&u);
  std::string engines;
  for (const engine::EngineInfo& e : engine::engine_table()) engines += (engines.empty() ? "" : ", ") + std::string(e.name);
  return fmt::format("eco {} (engines: {}; Linux {})", build_version(), engines, u.release);
}

// `eco serve --config FILE`: the file's keys become "--key=value" arguments put in
// front of the command line's, and everything is parsed again by the same flag
// definitions. Keys the command line already gives are left out, so it wins (for a
// list too: --listen on the command line replaces the file's whole list).
// Empty when no config file was given.
Result<std::vector<std::string>> config_file_args(CLI::App& app, int argc, char** argv) {
  CLI::App* serve = app.get_subcommand("serve");
  CLI::Option* opt = serve->get_option_no_throw("--config");
  if (!serve->parsed() || !opt || opt->count() == 0) return std::vector<std::string>{};
  if (argc < 2 || std::strcmp(argv[1], "serve") != 0) return Error{"--config belongs after 'eco serve'"};
  std::string path = opt->as<std::string>();
  std::ifstream in(path);
  std::stringstream text;
  if (in) text << in.rdbuf();
  if (!in || in.bad()) return sys_error(fmt::format("cannot read config file '{}'", path));
  auto args = config::config_to_args(text.str(), path, config_keys(*serve));
  if (!args) return args.error();
  std::vector<std::string> out{argv[0], argv[1]};
  for (const std::string& a : *args)
    if (serve->get_option("--" + std::string(config::arg_key(a)))->count() == 0) out.push_back(a);
  out.insert(out.end(), argv + 2, argv + argc);
  return out;
}

}  // namespace eco::cli

int main(int argc, char** argv) {
  using namespace eco;
  CLI::App app{"eco: TCP and UDP echo for Linux (RFC 862) — a server, a client that verifies every byte,\n"
               "a latency probe and a load generator.",
               "eco"};
  app.require_subcommand(1);
  app.set_version_flag("--version", cli::version_text());
  app.footer(
      "Exit codes: 0 ok; 1 echo differed or runtime failure; 2 bad usage or cannot listen;\n"
      "3 cannot connect, reset or timed out.\nRun 'eco SUBCOMMAND --help' for a subcommand's flags.");

  std::vector<cli::Command> commands{cli::add_serve(app), cli::add_send(app),  cli::add_ping(app),
                                     cli::add_bench(app), cli::add_man(app),   cli::add_completion(app)};
  // A mistyped command name would otherwise read "A subcommand is required".
  std::string names;
  std::string help_hint = "eco --help";
  for (const auto& c : commands)
    if (!c.app->get_group().empty()) names += (names.empty() ? "" : ", ") + c.app->get_name();
  if (argc > 1 && argv[1][0] != '-') {
    bool known = false;
    for (const auto& c : commands) known |= c.app->get_name() == argv[1];
    if (!known) return cli::fail(kExitUsage, fmt::format("unknown command '{}' (commands: {})", argv[1], names));
    help_hint = fmt::format("eco {} --help", argv[1]);
  }
  try {
    app.parse(argc, argv);
    auto with_config = cli::config_file_args(app, argc, argv);
    if (!with_config) return cli::fail(kExitUsage, with_config.error().message);
    if (!with_config->empty()) {
      std::vector<char*> args;
      for (std::string& a : *with_config) args.push_back(a.data());
      app.clear();
      try {
        app.parse(int(args.size()), args.data());
      } catch (const CLI::ParseError& e) {
        return cli::fail(kExitUsage, fmt::format("{} (with the settings of config file '{}')", e.what(),
                                                 app.get_subcommand("serve")->get_option("--config")->as<std::string>()));
      }
    }
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    // One line with a pointer to --help; never CLI11's multi-line dump.
    return cli::fail(kExitUsage, fmt::format("{} (see '{}')", e.what(), help_hint));
  }
  for (auto& c : commands)
    if (c.app->parsed()) return c.run();
  return kExitUsage;
}
