#include "bench/search.h"

#include <cmath>
#include <cstdlib>

#include <fmt/format.h>

#include "bench/result.h"

namespace eco::bench {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

Result<SloTerm> parse_term(std::string_view text, std::string_view whole) {
  auto bad = [&](const std::string& why) {
    return Error{fmt::format("invalid --find-rate '{}': {} (e.g. p99<1ms, p99.9<=500us, max<10ms)", whole, why)};
  };
  size_t op = text.find('<');
  if (op == std::string_view::npos) return bad(fmt::format("'{}' has no '<' or '<='", text));
  SloTerm t;
  std::string name(trim(text.substr(0, op)));
  std::string_view rest = text.substr(op + 1);
  if (!rest.empty() && rest.front() == '=') {
    t.inclusive = true;
    rest.remove_prefix(1);
  }
  rest = trim(rest);
  if (name == "max") {
    t.percentile = 100;
  } else {
    char* end = nullptr;
    double p = name.size() > 1 && name[0] == 'p' ? std::strtod(name.c_str() + 1, &end) : -1;
    if (end == nullptr || *end != '\0' || !(p > 0 && p <= 100))
      return bad(fmt::format("unknown percentile '{}' (use pN with N in (0, 100], e.g. p50, p99, p99.9, or max)",
                             name));
    t.percentile = p;
  }
  std::string bound(rest);
  char* end = nullptr;
  double v = std::strtod(bound.c_str(), &end);
  std::string_view unit(end);
  double ns_per = unit == "ns" ? 1 : unit == "us" || unit == "µs" ? 1e3 : unit == "ms" ? 1e6 : unit == "s" ? 1e9 : 0;
  if (bound.empty() || end == bound.c_str() || !std::isfinite(v) || v <= 0)
    return bad(fmt::format("the bound '{}' is not a positive duration", bound));
  if (ns_per == 0) return bad(fmt::format("the bound '{}' needs a unit: ns, us, ms or s", bound));
  t.bound_ns = v * ns_per;
  return t;
}

std::string term_name(const SloTerm& t) {
  return t.percentile == 100 ? std::string("max") : fmt::format("p{:g}", t.percentile);
}

}  // namespace

Result<Slo> parse_slo(std::string_view text) {
  Slo slo;
  slo.text = std::string(text);
  size_t at = 0;
  for (;;) {
    size_t comma = text.find(',', at);
    auto term = parse_term(text.substr(at, comma == std::string_view::npos ? std::string_view::npos : comma - at), text);
    if (!term) return term.error();
    slo.terms.push_back(*term);
    if (comma == std::string_view::npos) break;
    at = comma + 1;
  }
  return slo;
}

bool slo_holds(const Slo& slo, const Histogram& h, std::string& reason) {
  reason.clear();
  if (h.count() == 0) {
    reason = "no round trips completed";
    return false;
  }
  bool all = true;
  for (const SloTerm& t : slo.terms) {
    double v = double(t.percentile == 100 ? h.max() : h.value_at_percentile(t.percentile));
    bool ok = t.inclusive ? v <= t.bound_ns : v < t.bound_ns;
    if (!reason.empty()) reason += ", ";
    reason += fmt::format("{} {} {} {}", term_name(t), format_latency_us(v / 1000), ok ? (t.inclusive ? "<=" : "<") : "over",
                          format_latency_us(t.bound_ns / 1000));
    all = all && ok;
  }
  return all;
}

std::optional<double> search_rate(double start, const StepFn& step, const SearchLimits& limits) {
  std::optional<double> lo, hi;  // highest rate that passed, lowest that failed
  double rate = std::max(start, limits.floor);
  for (int n = 0; n < limits.max_steps; ++n) {
    bool stop = false;
    bool pass = step(rate, stop);
    if (stop) break;
    if (pass) lo = rate;
    else hi = rate;
    if (!hi) {
      rate *= 2;
    } else if (!lo) {
      rate /= 2;
      if (rate < limits.floor) break;
    } else {
      if (*hi <= *lo * (1 + limits.precision)) break;
      rate = (*lo + *hi) / 2;
    }
  }
  return lo;
}

}  // namespace eco::bench
