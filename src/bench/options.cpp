#include "bench/options.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>

#include <fmt/format.h>

#include "bench/payload.h"

namespace eco::bench {

namespace {

struct ModeInfo {
  const char* name;
  const char* rate_unit;  // what --rate counts
};
// Indexed by Mode.
constexpr ModeInfo kModes[] = {{"rr", "msg/s"}, {"crr", "conn/s"}, {"stream", "B/s"}};

}  // namespace

const char* mode_name(Mode m) { return kModes[size_t(m)].name; }
const char* rate_unit(Mode m) { return kModes[size_t(m)].rate_unit; }

double schedule_rate(const BenchOptions& o, double rate) {
  return o.mode == Mode::stream ? rate / double(o.size) : rate;
}

Result<double> parse_rate(std::string_view text) {
  std::string s(text);
  if (s.size() > 2 && s.compare(s.size() - 2, 2, "/s") == 0) s.resize(s.size() - 2);
  const char* begin = s.c_str();
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(begin, &end);
  double mul = 1;
  std::string_view unit(end);
  if (unit == "k" || unit == "K") mul = 1e3;
  else if (unit == "M") mul = 1e6;
  else if (unit == "G") mul = 1e9;
  else if (!unit.empty()) end = const_cast<char*>(begin);  // junk after the number
  if (s.empty() || end == begin || errno != 0 || !std::isfinite(v) || v <= 0)
    return Error{fmt::format("invalid rate '{}' (a positive number per second, e.g. 2000, 2.5k, 50M)", text)};
  return v * mul;
}

Result<std::vector<double>> parse_percentiles(std::string_view text) {
  std::vector<double> out;
  size_t at = 0;
  while (at <= text.size()) {
    size_t comma = text.find(',', at);
    std::string item(text.substr(at, comma == std::string_view::npos ? std::string_view::npos : comma - at));
    char* end = nullptr;
    double p = std::strtod(item.c_str(), &end);
    if (item.empty() || *end != '\0' || !(p > 0 && p <= 100))
      return Error{fmt::format("invalid percentile '{}' in --percentiles (each a number in (0, 100], e.g. 50,99,99.9)",
                               item)};
    out.push_back(p);
    if (comma == std::string_view::npos) break;
    at = comma + 1;
  }
  if (out.size() > 16) return Error{"--percentiles takes at most 16 values"};
  return out;
}

std::string percentile_label(double p) { return fmt::format("{:g}", p); }

std::optional<std::string> validate(const BenchOptions& o, bool udp) {
  if (o.size < 1) return "--size must be at least 1 byte";
  if (o.conns < 1) return "--conns must be at least 1";
  if (o.duration_s <= 0) return "--duration must be more than 0";
  if (udp) {
    if (o.mode != Mode::rr) return fmt::format("--mode {} is TCP only (UDP has no connections or stream)", mode_name(o.mode));
    if (o.size < kHeaderBytes) return fmt::format("UDP --size must be at least {} bytes (each datagram carries "
                                                  "its connection and sequence number)", kHeaderBytes);
    if (o.size > 65507) return "UDP --size must be at most 65507 bytes (one datagram)";
    if (o.text) return "--payload text is for TCP and TLS streams (UDP replies are read by their binary header)";
  }
  if (o.rate < 0 || o.connect_rate < 0) return "rates must be positive";
  const bool open = o.rate > 0 || !o.find_rate.empty();
  if (open && o.depth > 1)
    return "--depth is for the closed loop; with --rate or --find-rate the schedule decides how many messages are in "
           "flight";
  if (open && o.mode == Mode::crr && o.connect_rate > 0)
    return "--connect-rate ramps closed-loop connections; with --mode crr and a rate the schedule opens them";
  if (o.rate > 0 && o.mode == Mode::stream && o.rate / double(o.size) * (o.warmup_s + o.duration_s) < 1)
    return fmt::format("--rate {:g} B/s with {}-byte messages sends less than one message in the run (use a higher "
                       "rate or a smaller --size)", o.rate, o.size);
  if (!o.source_ips.empty() && o.conns_per_source_given)
    return "--conns-per-source spreads connections over loopback sources by itself; with --source-ip the sources "
           "are the ones given";
  if (o.reps < 1) return "--reps must be at least 1";
  if (!o.find_rate.empty() && o.rate > 0)
    return "--find-rate searches for the rate itself; it cannot be combined with --rate";
  if (!o.find_rate.empty() && o.reps > 1)
    return "--find-rate and --reps cannot be combined (the search runs its own steps)";
  if (o.cooldown_s && o.reps < 2 && o.find_rate.empty())
    return "--cooldown is the pause between repetitions or search steps: use it with --reps N (N >= 2) or --find-rate";
  if (o.confidence <= 50 || o.confidence >= 100) return "--confidence must be between 50 and 100 (percent, e.g. 95)";
  return std::nullopt;
}

}  // namespace eco::bench
