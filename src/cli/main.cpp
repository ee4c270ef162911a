// eco: TCP and UDP echo for Linux — server, client, latency probe and load generator.
#include <sys/utsname.h>

#include <cstdio>
#include <vector>

#include <fmt/format.h>

#include "cli/commands.h"
#include "engine/engine.h"
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
  for (const auto& e : engine::engine_names())
    if (e != "auto") engines += (engines.empty() ? "" : ", ") + e;
  return fmt::format("eco {} (engines: {}; Linux {})", ECO_VERSION, engines, u.release);
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

  std::vector<cli::Command> commands{cli::add_serve(app), cli::add_send(app), cli::add_ping(app), cli::add_bench(app)};
  // A mistyped command name would otherwise read "A subcommand is required".
  std::string names;
  std::string help_hint = "eco --help";
  for (const auto& c : commands) names += (names.empty() ? "" : ", ") + c.app->get_name();
  if (argc > 1 && argv[1][0] != '-') {
    bool known = false;
    for (const auto& c : commands) known |= c.app->get_name() == argv[1];
    if (!known) return cli::fail(kExitUsage, fmt::format("unknown command '{}' (commands: {})", argv[1], names));
    help_hint = fmt::format("eco {} --help", argv[1]);
  }
  try {
    app.parse(argc, argv);
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
