#include "config/config_file.h"

#include <algorithm>

#include <fmt/format.h>
#include <toml++/toml.h>

namespace eco::config {
namespace {

std::string where(std::string_view source, const toml::source_region& r) {
  return fmt::format("{}:{}", source, r.begin.line);
}

// One scalar as the text CLI11 would see after "--key=".
Result<std::string> scalar_text(const toml::node& n, std::string_view source, std::string_view key) {
  if (auto s = n.as_string()) return std::string(s->get());
  if (auto i = n.as_integer()) return std::to_string(i->get());
  if (auto f = n.as_floating_point()) return fmt::format("{}", f->get());
  if (auto b = n.as_boolean()) return std::string(b->get() ? "true" : "false");
  return Error{fmt::format("{}: key '{}' has a value of a type eco does not take (use a string, number, "
                           "boolean or an array of those)",
                           where(source, n.source()), key)};
}

}  // namespace

std::string_view arg_key(std::string_view arg) {
  if (arg.substr(0, 2) == "--") arg.remove_prefix(2);
  return arg.substr(0, arg.find('='));
}

Result<std::vector<std::string>> config_to_args(std::string_view toml_text, std::string_view source_name,
                                                const std::vector<std::string>& known_keys) {
  toml::table table;
  try {
    table = toml::parse(toml_text, source_name);
  } catch (const toml::parse_error& e) {
    return Error{fmt::format("{}:{}: {}", source_name, e.source().begin.line, e.description())};
  }
  std::vector<std::string> args;
  for (const auto& [key, node] : table) {
    std::string_view name = key.str();
    if (std::find(known_keys.begin(), known_keys.end(), name) == known_keys.end())
      return Error{fmt::format("{}: unknown key '{}' (keys are the long flag names of 'eco serve --help')",
                               where(source_name, key.source()), name)};
    if (const toml::array* arr = node.as_array()) {
      for (const toml::node& el : *arr) {
        if (el.is_array() || el.is_table())
          return Error{fmt::format("{}: key '{}' holds a nested array or table; use a flat array",
                                   where(source_name, el.source()), name)};
        auto text = scalar_text(el, source_name, name);
        if (!text) return text.error();
        args.push_back(fmt::format("--{}={}", name, *text));
      }
      continue;
    }
    if (node.is_table())
      return Error{fmt::format("{}: key '{}' is a table; eco serve's settings are top-level keys",
                               where(source_name, node.source()), name)};
    auto text = scalar_text(node, source_name, name);
    if (!text) return text.error();
    args.push_back(fmt::format("--{}={}", name, *text));
  }
  return args;
}

}  // namespace eco::config
