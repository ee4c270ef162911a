#include "bench/result.h"

#include <fmt/format.h>

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

namespace eco::bench {

using Json = nlohmann::ordered_json;

namespace {

// Reading fields without exceptions: each getter checks presence and type and names
// the field in its error, so a hand-edited or truncated file gives one clear line.
class Reader {
 public:
  explicit Reader(const Json& obj, std::string where = "") : obj_(obj), where_(std::move(where)) {}

  const Json* find(const char* key) const {
    auto it = obj_.find(key);
    return it == obj_.end() ? nullptr : &*it;
  }
  bool fail(const std::string& msg) {
    if (error_.empty()) error_ = msg;
    return false;
  }
  std::string name(const char* key) const { return where_.empty() ? key : where_ + "." + key; }

  bool u64(const char* key, uint64_t& out) {
    const Json* v = find(key);
    if (!v) return fail("missing field '" + name(key) + "'");
    if (v->is_number_unsigned()) {
      out = v->get<uint64_t>();
      return true;
    }
    if (v->is_number_integer() && v->get<int64_t>() >= 0) {
      out = uint64_t(v->get<int64_t>());
      return true;
    }
    return fail("field '" + name(key) + "' must be a non-negative integer");
  }
  bool i64(const char* key, int64_t& out) {
    const Json* v = find(key);
    if (!v) return fail("missing field '" + name(key) + "'");
    if (v->is_number_integer()) {
      out = v->get<int64_t>();
      return true;
    }
    return fail("field '" + name(key) + "' must be an integer");
  }
  bool num(const char* key, double& out) {
    const Json* v = find(key);
    if (!v) return fail("missing field '" + name(key) + "'");
    if (!v->is_number()) return fail("field '" + name(key) + "' must be a number");
    out = v->get<double>();
    if (!std::isfinite(out)) return fail("field '" + name(key) + "' must be finite");
    return true;
  }
  bool str(const char* key, std::string& out) {
    const Json* v = find(key);
    if (!v) return fail("missing field '" + name(key) + "'");
    if (!v->is_string()) return fail("field '" + name(key) + "' must be a string");
    out = v->get<std::string>();
    return true;
  }
  // Absent or null -> nullptr (no error); present but not an object -> error.
  const Json* object_or_null(const char* key) {
    const Json* v = find(key);
    if (!v || v->is_null()) return nullptr;
    if (!v->is_object()) {
      fail("field '" + name(key) + "' must be an object or null");
      return nullptr;
    }
    return v;
  }

  const std::string& error() const { return error_; }

 private:
  const Json& obj_;
  std::string where_;
  std::string error_;
};

// JSON has no NaN/Inf; a run with zero samples must still write valid JSON.
double finite(double v) { return std::isfinite(v) ? v : 0.0; }

}  // namespace

const char* error_kind_name(ErrorKind k) {
  switch (k) {
    case ErrorKind::mismatch: return "mismatch";
    case ErrorKind::short_read: return "short_read";
    case ErrorKind::reset: return "reset";
    case ErrorKind::refused: return "refused";
    case ErrorKind::timeout: return "timeout";
    case ErrorKind::other: break;
  }
  return "other";
}

LatencySummary summarize_latency(const Histogram& h) {
  LatencySummary s;
  auto us = [](uint64_t ns) { return double(ns) / 1000.0; };
  s.min = us(h.min());
  s.mean = h.mean() / 1000.0;
  s.p50 = us(h.value_at_percentile(50));
  s.p90 = us(h.value_at_percentile(90));
  s.p99 = us(h.value_at_percentile(99));
  s.p999 = us(h.value_at_percentile(99.9));
  s.p9999 = us(h.value_at_percentile(99.99));
  s.max = us(h.max());
  s.stddev = h.stddev() / 1000.0;
  return s;
}

void finalize(BenchResult& r) {
  r.rt_per_s = r.elapsed_s > 0 ? double(r.round_trips) / r.elapsed_s : 0.0;
  r.mb_per_s = r.elapsed_s > 0 ? double(r.bytes) / r.elapsed_s / 1e6 : 0.0;
  r.latency_us = summarize_latency(r.histogram);
}

std::string to_json(const BenchResult& r) {
  Json j;
  j["eco_bench"] = kBenchSchemaVersion;
  j["target"] = r.target;
  j["proto"] = r.proto;
  j["mode"] = r.mode;
  j["conns"] = r.conns;
  j["depth"] = r.depth;
  j["size"] = r.size;
  j["threads"] = r.threads;
  j["duration_s"] = finite(r.duration_s);
  j["warmup_s"] = finite(r.warmup_s);
  j["rate"] = r.rate ? Json(finite(*r.rate)) : Json(nullptr);
  j["hosts"] = r.hosts;
  j["round_trips"] = r.round_trips;
  j["bytes"] = r.bytes;
  j["elapsed_s"] = finite(r.elapsed_s);
  j["rt_per_s"] = finite(r.rt_per_s);
  j["mb_per_s"] = finite(r.mb_per_s);
  const LatencySummary& l = r.latency_us;
  j["latency_us"] = Json{{"min", finite(l.min)},   {"mean", finite(l.mean)},     {"p50", finite(l.p50)},
                         {"p90", finite(l.p90)},   {"p99", finite(l.p99)},       {"p99.9", finite(l.p999)},
                         {"p99.99", finite(l.p9999)}, {"max", finite(l.max)}, {"stddev", finite(l.stddev)}};
  const ErrorCounts& e = r.errors;
  j["errors"] = Json{{"mismatch", e.mismatch}, {"short_read", e.short_read}, {"reset", e.reset},
                     {"refused", e.refused},   {"timeout", e.timeout},       {"other", e.other}};
  if (r.rate_shortfall) {
    j["rate_shortfall"] = Json{{"asked", finite(r.rate_shortfall->asked)},
                               {"achieved", finite(r.rate_shortfall->achieved)}};
  } else {
    j["rate_shortfall"] = nullptr;
  }
  if (r.server) {
    const ServerStats& s = *r.server;
    j["server"] = Json{{"pid", s.pid},
                       {"cpu_us_per_rt", finite(s.cpu_us_per_rt)},
                       {"rss_bytes", s.rss_bytes},
                       {"user_share", finite(s.user_share)}};
  } else {
    j["server"] = nullptr;
  }
  j["histogram"] = r.histogram.encode_compressed_base64();
  return j.dump(2) + "\n";
}

Result<BenchResult> from_json(std::string_view text) {
  Json j = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Error{"not valid JSON"};
  if (!j.is_object()) return Error{"not an eco bench result (expected a JSON object)"};
  BenchResult r;
  Reader top(j);
  int64_t version = 0;
  if (!top.find("eco_bench")) return Error{"not an eco bench result (no 'eco_bench' field)"};
  if (!top.i64("eco_bench", version)) return Error{top.error()};
  if (version != kBenchSchemaVersion) {
    return Error{fmt::format("eco bench result schema version {} is not supported (this eco reads {})", version,
                             kBenchSchemaVersion)};
  }
  bool ok = top.str("target", r.target) && top.str("proto", r.proto) && top.str("mode", r.mode) &&
            top.u64("conns", r.conns) && top.u64("depth", r.depth) && top.u64("size", r.size) &&
            top.u64("threads", r.threads) && top.num("duration_s", r.duration_s) &&
            top.num("warmup_s", r.warmup_s) && top.u64("hosts", r.hosts) &&
            top.u64("round_trips", r.round_trips) && top.u64("bytes", r.bytes) &&
            top.num("elapsed_s", r.elapsed_s) && top.num("rt_per_s", r.rt_per_s) &&
            top.num("mb_per_s", r.mb_per_s);
  if (!ok) return Error{top.error()};
  if (r.proto != "tcp" && r.proto != "udp") return Error{"field 'proto' must be \"tcp\" or \"udp\""};
  if (r.mode != "rr" && r.mode != "crr" && r.mode != "stream") {
    return Error{"field 'mode' must be \"rr\", \"crr\" or \"stream\""};
  }
  if (const Json* rate = top.find("rate"); rate && !rate->is_null()) {
    double v = 0;
    if (!top.num("rate", v)) return Error{top.error()};
    r.rate = v;
  }

  const Json* lat = top.object_or_null("latency_us");
  const Json* err = top.object_or_null("errors");
  if (!top.error().empty()) return Error{top.error()};
  if (!lat) return Error{"missing field 'latency_us'"};
  if (!err) return Error{"missing field 'errors'"};
  Reader l(*lat, "latency_us");
  LatencySummary& s = r.latency_us;
  ok = l.num("min", s.min) && l.num("mean", s.mean) && l.num("p50", s.p50) && l.num("p90", s.p90) &&
       l.num("p99", s.p99) && l.num("p99.9", s.p999) && l.num("p99.99", s.p9999) && l.num("max", s.max) &&
       l.num("stddev", s.stddev);
  if (!ok) return Error{l.error()};
  Reader e(*err, "errors");
  ErrorCounts& c = r.errors;
  ok = e.u64("mismatch", c.mismatch) && e.u64("short_read", c.short_read) && e.u64("reset", c.reset) &&
       e.u64("refused", c.refused) && e.u64("timeout", c.timeout) && e.u64("other", c.other);
  if (!ok) return Error{e.error()};

  if (const Json* rs = top.object_or_null("rate_shortfall")) {
    Reader rr(*rs, "rate_shortfall");
    RateShortfall v;
    if (!(rr.num("asked", v.asked) && rr.num("achieved", v.achieved))) return Error{rr.error()};
    r.rate_shortfall = v;
  }
  if (const Json* sv = top.object_or_null("server")) {
    Reader sr(*sv, "server");
    ServerStats v;
    if (!(sr.i64("pid", v.pid) && sr.num("cpu_us_per_rt", v.cpu_us_per_rt) && sr.u64("rss_bytes", v.rss_bytes) &&
          sr.num("user_share", v.user_share))) {
      return Error{sr.error()};
    }
    r.server = v;
  }
  if (!top.error().empty()) return Error{top.error()};

  std::string hist;
  if (!top.str("histogram", hist)) return Error{top.error()};
  auto h = Histogram::decode_compressed_base64(hist);
  if (!h) return Error{"field 'histogram': " + h.error().message};
  r.histogram = std::move(*h);
  return r;
}

std::string format_latency_us(double us) {
  // Three significant digits in the largest unit that keeps the number >= 1.
  auto three = [](double v, const char* unit) {
    int decimals = v >= 100 ? 0 : v >= 10 ? 1 : 2;
    return fmt::format("{:.{}f} {}", v, decimals, unit);
  };
  if (us < 1.0) return fmt::format("{:.0f} ns", us * 1000.0);
  if (us < 1000.0) return three(us, "µs");
  if (us < 1'000'000.0) return three(us / 1000.0, "ms");
  return three(us / 1'000'000.0, "s");
}

std::string format_summary(const BenchResult& r) {
  std::string out;
  auto line = [&](std::string s) {
    out += s;
    out += '\n';
  };
  std::string loop = r.rate ? fmt::format("open loop at {:.0f}/s", *r.rate) : "closed loop";
  line(fmt::format("{} {} {}: {} conns x depth {}, {} B messages, {} thread{}, {:.1f} s measured ({}){}", r.target,
                   r.proto, r.mode, r.conns, r.depth, r.size, r.threads, r.threads == 1 ? "" : "s", r.elapsed_s, loop,
                   r.hosts > 1 ? fmt::format(", {} hosts merged", r.hosts) : ""));
  line(fmt::format("  throughput  {:.0f} rt/s  {:.2f} MB/s  ({} round trips, {} bytes verified)", r.rt_per_s,
                   r.mb_per_s, r.round_trips, r.bytes));
  const LatencySummary& l = r.latency_us;
  if (r.histogram.count() == 0) {
    line("  latency     no round trips completed");
  } else {
    line(fmt::format("  latency     p50 {}  p90 {}  p99 {}  p99.9 {}  p99.99 {}  max {}", format_latency_us(l.p50),
                     format_latency_us(l.p90), format_latency_us(l.p99), format_latency_us(l.p999),
                     format_latency_us(l.p9999), format_latency_us(l.max)));
    line(fmt::format("              min {}  mean {}  stddev {}", format_latency_us(l.min), format_latency_us(l.mean),
                     format_latency_us(l.stddev)));
  }
  const ErrorCounts& e = r.errors;
  if (e.total() == 0) {
    line("  errors      none");
  } else {
    std::string list;
    auto add = [&](const char* name, uint64_t n) {
      if (n == 0) return;
      if (!list.empty()) list += ", ";
      list += fmt::format("{} {}", n, name);
    };
    add("mismatch", e.mismatch);
    add("short read", e.short_read);
    add("reset", e.reset);
    add("refused", e.refused);
    add("timeout", e.timeout);
    add("other", e.other);
    line("  errors      " + list);
  }
  if (r.rate_shortfall) {
    line(fmt::format("  rate        asked {:.0f}/s, achieved {:.0f}/s: the generator could not keep up",
                     r.rate_shortfall->asked, r.rate_shortfall->achieved));
  }
  if (r.server) {
    const ServerStats& s = *r.server;
    line(fmt::format("  server      pid {}: {:.2f} µs CPU per round trip ({:.0f}% user), RSS {:.1f} MiB", s.pid,
                     s.cpu_us_per_rt, s.user_share * 100.0, double(s.rss_bytes) / (1024.0 * 1024.0)));
  }
  if (r.histogram.clamped() > 0) {
    line(fmt::format("  note        {} samples above {:.0f} s were counted at {:.0f} s", r.histogram.clamped(),
                     double(r.histogram.highest_trackable()) / 1e9, double(r.histogram.highest_trackable()) / 1e9));
  }
  return out;
}

std::string BenchResult::to_json() const { return bench::to_json(*this); }
std::string BenchResult::format_summary() const { return bench::format_summary(*this); }

}  // namespace eco::bench
