#pragma once
// Logging to stderr, text or JSON lines. Each record is written with one write(2),
// so lines from several threads never interleave.
#include <fmt/format.h>

#include <initializer_list>
#include <string_view>
#include <utility>

namespace eco::log {

enum class Level { debug = 0, info = 1, warn = 2, error = 3, off = 4 };
enum class Format { text, json };

void configure(Level level, Format format);
bool enabled(Level level);
// Parses "debug|info|warn|error|off"; returns false on an unknown name.
bool parse_level(std::string_view name, Level& out);

// A structured field: key and an already formatted value.
using Field = std::pair<std::string_view, std::string_view>;

// Writes `message` at `level`; fields go into JSON keys, or after the text.
void write(Level level, std::string_view message, std::initializer_list<Field> fields = {});

template <class... Args>
void info(fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::info)) write(Level::info, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void warn(fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::warn)) write(Level::warn, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void error(fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::error)) write(Level::error, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void debug(fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::debug)) write(Level::debug, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace eco::log
