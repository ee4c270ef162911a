// Man pages written from the CLI11 definitions (cli_model.h): eco(1), eco-serve(1),
// eco-send(1), eco-ping(1), eco-bench(1) and eco.toml(5). The build runs
// `eco __man PAGE -o FILE` for each; tests/packaging compares them with `--help`.
#include "cli/man_page.h"

#include <algorithm>

#include <fmt/format.h>

#include "cli/cli_model.h"
#include "util/exit_codes.h"

namespace eco::cli {
namespace {

// Text for a roff line: backslashes and minus signs escaped (so flags copy as "-"),
// and a leading '.' or '\'' kept from reading as a request.
std::string esc(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '\\')
      out += "\\e";
    else if (c == '-')
      out += "\\-";
    else
      out += c;
  }
  if (!out.empty() && (out[0] == '.' || out[0] == '\'')) out.insert(0, "\\&");
  return out;
}

std::string bold(const std::string& s) { return "\\fB" + esc(s) + "\\fR"; }
std::string italic(const std::string& s) { return "\\fI" + esc(s) + "\\fR"; }

std::string lower_first(std::string s) {
  if (!s.empty() && s[0] >= 'A' && s[0] <= 'Z') s[0] = char(s[0] - 'A' + 'a');
  return s;
}

// A NAME line: the description's first sentence or clause ("Load-test an echo server: ...").
std::string summary(const std::string& description) {
  std::string s = one_paragraph(description);
  size_t end = std::min(s.find(". "), s.find(": "));
  return end == std::string::npos ? s : s.substr(0, end);
}

std::string strip_period(std::string s) {
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

// "auto|sockmap|uring|epoll", "SIZE", ... as the value of an option.
std::string value_text(const OptionInfo& o) {
  if (o.value.empty()) return "";
  if (o.choices.empty()) return italic(o.value);
  std::string out;
  for (const std::string& c : o.choices) out += (out.empty() ? "" : "|") + bold(c);
  return out;
}

void header(std::string& out, const std::string& name, int section, const std::string& version) {
  std::string upper = name;
  std::transform(upper.begin(), upper.end(), upper.begin(), [](char c) { return char(std::toupper(c)); });
  fmt::format_to(std::back_inserter(out), ".TH {} {} \"\" \"eco {}\" \"eco manual\"\n", esc(upper), section,
                 esc(version));
  out += ".nh\n.ad l\n";  // flags and addresses read better unhyphenated, left-aligned
}

void option_list(std::string& out, const std::vector<OptionInfo>& options) {
  std::string group;
  for (const OptionInfo& o : options) {
    if (!o.positional.empty()) continue;
    if (o.group != group && o.group != "Options") out += ".SS \"" + esc(o.group) + "\"\n";
    group = o.group;
    std::string names;
    for (const std::string& n : o.names) names += (names.empty() ? "" : ", ") + bold(n);
    out += ".TP\n" + names + (o.value.empty() ? "" : " " + value_text(o)) + "\n";
    std::string text = o.description;
    if (!o.default_value.empty()) text += fmt::format(" (default: {})", o.default_value);
    if (o.repeatable && text.find("repeatable") == std::string::npos) text += " May be given more than once.";
    out += esc(text) + "\n";
  }
}

void arguments(std::string& out, const std::vector<OptionInfo>& options) {
  bool any = false;
  for (const OptionInfo& o : options) {
    if (o.positional.empty()) continue;
    if (!any) out += ".SH ARGUMENTS\n";
    any = true;
    std::string text = o.description;
    if (!o.default_value.empty()) text += fmt::format(" (default: {})", o.default_value);
    out += ".TP\n" + italic(o.positional) + "\n" + esc(text) + "\n";
  }
}

std::string synopsis_args(const std::vector<OptionInfo>& options) {
  std::string out;
  for (const OptionInfo& o : options)
    if (!o.positional.empty()) {
      std::string arg = italic(o.positional) + (o.repeatable ? "..." : "");
      out += o.required ? " " + arg : " [" + arg + "]";
    }
  return out;
}

void exit_status(std::string& out) {
  out += ".SH \"EXIT STATUS\"\n";
  const std::pair<int, const char*> codes[] = {
      {kExitOk, "Success: the echo was identical; the server stopped cleanly."},
      {kExitMismatch, "The echo differed, was cut short or had extra bytes; or the server failed while running."},
      {kExitUsage, "Usage error: a bad flag, address, size or file; or the server cannot listen."},
      {kExitConnection, "Connection error: refused, reset, unreachable or timed out."},
  };
  for (const auto& [code, text] : codes) out += fmt::format(".TP\n.B {}\n{}\n", code, esc(text));
}

const char* const kPages[] = {"eco", "eco-serve", "eco-send", "eco-ping", "eco-bench", "eco.toml"};

void see_also(std::string& out, const std::string& self) {
  std::string refs;
  for (const char* p : kPages)
    if (self != p) refs += (refs.empty() ? "" : ",\n") + bold(p) + (std::string(p) == "eco.toml" ? "(5)" : "(1)");
  out += ".SH \"SEE ALSO\"\n" + refs + "\n";
}

std::string root_page(const CLI::App& root, const std::string& version) {
  std::string out;
  header(out, "eco", 1, version);
  // "eco: TCP and UDP echo for Linux ..." -> "TCP and UDP echo for Linux ..."
  std::string about = one_paragraph(root.get_description());
  if (about.rfind("eco: ", 0) == 0) about = about.substr(5);
  out += ".SH NAME\neco \\- " + esc(strip_period(about)) + "\n";
  out += ".SH SYNOPSIS\n.B eco\n" + italic("COMMAND") + " [" + italic("OPTIONS") + "]\n.br\n.B eco\n[" +
         bold("--help") + "|" + bold("--version") + "]\n";
  out += ".SH DESCRIPTION\n" + esc(about) + " Each command has its own page and its own " + bold("--help") + ".\n";
  out += ".SH COMMANDS\n";
  for (const CLI::App* sub : visible_subcommands(root))
    out += ".TP\n" + bold("eco " + sub->get_name()) + "\n" + esc(one_paragraph(sub->get_description())) +
           " See " + bold("eco-" + sub->get_name()) + "(1).\n";
  out += ".SH OPTIONS\n";
  option_list(out, visible_options(root));
  exit_status(out);
  see_also(out, "eco");
  return out;
}

std::string command_page(const CLI::App& cmd, const std::string& version) {
  const std::string page = "eco-" + cmd.get_name();
  std::string out;
  header(out, page, 1, version);
  std::vector<OptionInfo> options = visible_options(cmd);
  out += ".SH NAME\n" + esc(page) + " \\- " + esc(strip_period(lower_first(summary(cmd.get_description())))) + "\n";
  out += ".SH SYNOPSIS\n" + bold("eco " + cmd.get_name()) + " [" + italic("OPTIONS") + "]" + synopsis_args(options) + "\n";
  for (const CLI::App* sub : visible_subcommands(cmd))
    out += ".br\n" + bold("eco " + cmd.get_name() + " " + sub->get_name()) + " [" + italic("OPTIONS") + "]" +
           synopsis_args(visible_options(*sub)) + "\n";
  out += ".SH DESCRIPTION\n" + esc(one_paragraph(cmd.get_description())) + "\n";
  if (cmd.get_name() == "serve")
    out += ".PP\nEvery long option is also a key of the file given with " + bold("--config") + "; see " +
           bold("eco.toml") + "(5).\n";
  arguments(out, options);
  out += ".SH OPTIONS\n";
  option_list(out, options);
  for (const CLI::App* sub : visible_subcommands(cmd)) {
    std::vector<OptionInfo> sub_options = visible_options(*sub);
    out += ".SH \"" + esc("eco " + cmd.get_name() + " " + sub->get_name()) + "\"\n" +
           esc(one_paragraph(sub->get_description())) + "\n";
    for (const OptionInfo& o : sub_options)
      if (!o.positional.empty()) out += ".TP\n" + italic(o.positional) + "...\n" + esc(o.description) + "\n";
    option_list(out, sub_options);
  }
  exit_status(out);
  if (cmd.get_name() == "serve")
    out += ".SH FILES\n.TP\n.I /etc/eco/eco.toml\nExample settings (" + bold("eco.toml") +
           "(5)).\n.TP\n.I /lib/systemd/system/eco.socket\n.TQ\n.I /lib/systemd/system/eco.service\n"
           "Socket activation on port 7 (TCP and UDP), with a sandboxed service.\n";
  see_also(out, page);
  return out;
}

std::string toml_value(const OptionInfo& o) {
  if (o.value.empty()) return bold("true") + "|" + bold("false");
  std::string one = o.integer                 ? italic(o.value)
                    : o.choices.empty()       ? "\"" + italic(o.value) + "\""
                                              : "\"" + value_text(o) + "\"";
  return o.repeatable ? "[" + one + ", ...]" : one;
}

std::string config_page(const CLI::App& root, const std::string& version) {
  const CLI::App* serve = root.get_subcommand("serve");
  std::string out;
  header(out, "eco.toml", 5, version);
  out += ".SH NAME\neco.toml \\- settings file of eco serve\n";
  out += ".SH SYNOPSIS\n.B eco serve \\-\\-config\n.I FILE\n.br\n.I /etc/eco/eco.toml\n";
  out += ".SH DESCRIPTION\nA TOML file whose keys are the long option names of " + bold("eco serve") +
         " (see " + bold("eco-serve") + "(1)), with the same meaning and the same checks: each key becomes " +
         bold("--key=value") +
         " in front of the command line, which is then parsed as usual. An option given on the command line wins "
         "over its key; for a list such as " + bold("listen") +
         ", the command line's list replaces the file's whole list.\n.PP\n"
         "Only top-level keys are allowed. Values are strings, integers, booleans, or flat arrays of those for "
         "options that may be given more than once. An unknown key, a table or a nested array is an error that "
         "names the file and the line, and " + bold("eco serve") + " exits with status 2.\n";
  out += ".SH KEYS\n";
  std::vector<std::string> keys = config_keys(*serve);
  std::string group;
  for (const OptionInfo& o : visible_options(*serve)) {
    if (o.positional.empty() == false || o.names.empty()) continue;
    std::string key = o.names.back().substr(2);
    if (std::find(keys.begin(), keys.end(), key) == keys.end()) continue;  // help, config
    if (o.group != group && o.group != "Options") out += ".SS \"" + esc(o.group) + "\"\n";
    group = o.group;
    std::string text = o.description;
    if (!o.default_value.empty()) text += fmt::format(" (default: {})", o.default_value);
    out += ".TP\n" + bold(key) + " = " + toml_value(o) + "\n" + esc(text) + "\n";
  }
  out += ".SH EXAMPLE\n.EX\n" +
         esc("# eco serve --config /etc/eco/eco.toml\n"
             "listen = [\"127.0.0.1:5346\", \"[::1]:5346\"]\n"
             "udp = true\n"
             "threads = 2\n"
             "drain-timeout = \"5s\"\n"
             "metrics = \"127.0.0.1:9346\"\n"
             "seccomp = true\n") +
         ".EE\n";
  out += ".SH FILES\n.TP\n.I /etc/eco/eco.toml\nThe example the package installs; the packaged eco.service reads it.\n";
  see_also(out, "eco.toml");
  return out;
}

}  // namespace

std::vector<std::string> man_page_names() { return {std::begin(kPages), std::end(kPages)}; }

Result<std::string> man_page(const CLI::App& root, const std::string& page, const std::string& version) {
  if (page == "eco") return root_page(root, version);
  if (page == "eco.toml") return config_page(root, version);
  if (page.rfind("eco-", 0) == 0)
    for (const CLI::App* sub : visible_subcommands(root))
      if (sub->get_name() == page.substr(4)) return command_page(*sub, version);
  std::string names;
  for (const char* p : kPages) names += (names.empty() ? "" : ", ") + std::string(p);
  return Error{fmt::format("no man page '{}' (pages: {})", page, names)};
}

}  // namespace eco::cli
