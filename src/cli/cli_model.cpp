#include "cli/cli_model.h"

#include <algorithm>
#include <cctype>

#include "engine/engine.h"

namespace eco::cli {
namespace {

bool all_caps(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i)
    if (i == s.size() || s[i] == sep) {
      out.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  return out;
}

// CLI11's type name is the value type followed by each check's description:
// "TEXT:SIZE", "UINT:UINT in [1 - 1024]", "TEXT:{text,json}", "FILE", "TEXT:FILE".
void read_type(const CLI::Option& opt, OptionInfo& info) {
  std::vector<std::string> parts = split(opt.get_type_name(), ':');
  const std::string base = parts.front();
  for (size_t i = 1; i < parts.size(); ++i) {
    const std::string& p = parts[i];
    if (p.size() > 2 && p.front() == '{' && p.back() == '}')
      info.choices = split(p.substr(1, p.size() - 2), ',');
    else if (all_caps(p))
      info.value = p;
  }
  info.integer = base == "UINT" || base == "INT";
  if (info.value.empty()) info.value = info.integer ? "N" : base == "FLOAT" ? "NUMBER" : base;
  info.file = info.value == "FILE" || base == "FILE";
}

// A value drawn from a set is named after its option: --log-format LOG-FORMAT.
void name_choice_value(const CLI::Option& opt, OptionInfo& info) {
  if (info.choices.empty() || info.value != "TEXT" || opt.get_lnames().empty()) return;
  info.value = opt.get_lnames().front();
  std::transform(info.value.begin(), info.value.end(), info.value.begin(), [](char c) { return char(std::toupper(c)); });
}

OptionInfo describe(const CLI::Option& opt, const std::string& group) {
  OptionInfo info;
  if (opt.get_positional() && opt.get_snames().empty() && opt.get_lnames().empty()) {
    info.positional = opt.get_single_name();
  } else {
    for (const std::string& s : opt.get_snames()) info.names.push_back("-" + s);
    for (const std::string& l : opt.get_lnames()) info.names.push_back("--" + l);
  }
  if (opt.get_type_size_max() > 0) read_type(opt, info);
  info.repeatable = opt.get_items_expected_max() > 1;
  info.required = opt.get_required();
  info.default_value = opt.get_default_str();
  info.description = one_paragraph(opt.get_description());
  info.group = group;
  // The engines are chosen at run time from the engine table, not by a CLI11 check.
  if (std::find(info.names.begin(), info.names.end(), "--engine") != info.names.end()) {
    info.choices = {"auto"};
    for (const engine::EngineInfo& e : engine::engine_table()) info.choices.push_back(e.name);
  }
  name_choice_value(opt, info);
  return info;
}

void collect(const CLI::App& app, const std::string& group_override, std::vector<OptionInfo>& out) {
  for (const CLI::Option* opt : app.get_options()) {
    if (opt->get_group().empty()) continue;  // hidden
    out.push_back(describe(*opt, group_override.empty() ? opt->get_group() : group_override));
  }
  // Option groups are nameless sub-apps holding options of their parent command.
  for (const CLI::App* og : app.get_subcommands([](const CLI::App* s) { return s->get_name().empty(); }))
    if (!og->get_group().empty()) collect(*og, og->get_group(), out);
}

}  // namespace

std::string one_paragraph(const std::string& text) {
  std::string out;
  for (char c : text) out += c == '\n' ? ' ' : c;
  return out;
}

std::vector<OptionInfo> visible_options(const CLI::App& app) {
  std::vector<OptionInfo> all;
  collect(app, "", all);
  std::vector<std::string> groups;
  for (const OptionInfo& o : all)
    if (o.positional.empty() && std::find(groups.begin(), groups.end(), o.group) == groups.end())
      groups.push_back(o.group);
  std::vector<OptionInfo> out;
  for (const OptionInfo& o : all)
    if (!o.positional.empty()) out.push_back(o);
  for (const std::string& g : groups)
    for (const OptionInfo& o : all)
      if (o.positional.empty() && o.group == g) out.push_back(o);
  return out;
}

std::vector<const CLI::App*> visible_subcommands(const CLI::App& app) {
  return app.get_subcommands([](const CLI::App* s) { return !s->get_name().empty() && !s->get_group().empty(); });
}

std::vector<std::string> config_keys(const CLI::App& serve) {
  std::vector<std::string> keys;
  std::vector<const CLI::App*> apps{&serve};
  for (const CLI::App* og : serve.get_subcommands([](const CLI::App* s) { return s->get_name().empty(); }))
    apps.push_back(og);
  for (const CLI::App* a : apps)
    for (const CLI::Option* o : a->get_options())
      for (const std::string& name : o->get_lnames())
        if (name != "help" && name != "config") keys.push_back(name);
  return keys;
}

}  // namespace eco::cli
