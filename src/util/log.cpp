#include "util/log.h"

#include <time.h>
#include <unistd.h>

#include <atomic>
#include <string>

namespace eco::log {
namespace {

std::atomic<int> g_level{int(Level::info)};
std::atomic<int> g_format{int(Format::text)};

const char* level_name(Level l) {
  switch (l) {
    case Level::debug: return "debug";
    case Level::info: return "info";
    case Level::warn: return "warn";
    case Level::error: return "error";
    default: return "off";
  }
}

void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += char(c);
    } else if (c < 0x20) {
      out += fmt::format("\\u{:04x}", c);
    } else {
      out += char(c);
    }
  }
  out += '"';
}

std::string timestamp() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  tm t;
  gmtime_r(&ts.tv_sec, &t);
  char buf[40];
  size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &t);
  return fmt::format("{}.{:03}Z", std::string_view(buf, n), ts.tv_nsec / 1'000'000);
}

}  // namespace

void configure(Level level, Format format) {
  g_level.store(int(level));
  g_format.store(int(format));
}

bool enabled(Level level) { return int(level) >= g_level.load(std::memory_order_relaxed); }

bool parse_level(std::string_view name, Level& out) {
  for (Level l : {Level::debug, Level::info, Level::warn, Level::error, Level::off}) {
    if (name == level_name(l)) {
      out = l;
      return true;
    }
  }
  return false;
}

void write(Level level, std::string_view message, std::initializer_list<Field> fields) {
  if (!enabled(level)) return;
  std::string line;
  if (Format(g_format.load(std::memory_order_relaxed)) == Format::json) {
    line = "{\"ts\":\"" + timestamp() + "\",\"level\":\"" + level_name(level) + "\",\"msg\":";
    append_json_string(line, message);
    for (const auto& [k, v] : fields) {
      line += ',';
      append_json_string(line, k);
      line += ':';
      append_json_string(line, v);
    }
    line += "}\n";
  } else {
    // Text lines carry the message only: it already says what the fields hold.
    line = fmt::format("{} {:<5} {}\n", timestamp(), level_name(level), message);
  }
  // One write per record; a short write to stderr is not worth a retry loop here.
  [[maybe_unused]] ssize_t n = ::write(STDERR_FILENO, line.data(), line.size());
}

}  // namespace eco::log
