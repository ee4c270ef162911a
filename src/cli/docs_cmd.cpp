// Hidden commands the build runs to write the man pages and completion scripts from
// the definitions that parse the command line: `eco __man PAGE [-o FILE]` and
// `eco __completion SHELL [-o FILE]`. Hidden (empty group): not in --help or completion.
#include <cstdio>
#include <fstream>
#include <memory>

#include "cli/commands.h"
#include "cli/completion.h"
#include "cli/man_page.h"
#include "util/build_version.h"
#include "util/exit_codes.h"

namespace eco::cli {
namespace {

struct DocArgs {
  std::string what;
  std::string output;
};

int emit(const Result<std::string>& text, const std::string& output) {
  if (!text) return fail(kExitUsage, text.error().message);
  if (output.empty()) {
    std::fwrite(text.value().data(), 1, text.value().size(), stdout);
    return std::fflush(stdout) == 0 ? kExitOk : fail(kExitMismatch, "cannot write to stdout");
  }
  std::ofstream out(output, std::ios::binary | std::ios::trunc);
  out << text.value();
  out.close();
  if (!out) return fail(kExitUsage, "cannot write '" + output + "'");
  return kExitOk;
}

CLI::App* hidden(CLI::App& app, const char* name, const char* what, const char* about, DocArgs& a) {
  CLI::App* sub = app.add_subcommand(name, about)->group("");
  sub->add_option(what, a.what, what)->required();
  sub->add_option("-o,--output", a.output, "Write here instead of stdout")->type_name("FILE");
  return sub;
}

}  // namespace

Command add_man(CLI::App& app) {
  auto a = std::make_shared<DocArgs>();
  CLI::App* sub = hidden(app, "__man", "page", "Print a man page (eco, eco-serve, ..., eco.toml) in roff", *a);
  return {sub, [a, &app] { return emit(man_page(app, a->what, build_version()), a->output); }};
}

Command add_completion(CLI::App& app) {
  auto a = std::make_shared<DocArgs>();
  CLI::App* sub = hidden(app, "__completion", "shell", "Print the bash or zsh completion script", *a);
  return {sub, [a, &app] { return emit(completion_script(app, a->what), a->output); }};
}

}  // namespace eco::cli
