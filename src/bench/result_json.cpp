// --json output and its strict reader (the input of `eco bench merge`).
#include <fmt/format.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "bench/options.h"
#include "bench/result.h"

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

  // The value of `key` when it is there and `ok` with it; otherwise records which
  // field is missing or what it must be, and returns nullptr.
  template <class Ok>
  const Json* get(const char* key, const char* must_be, Ok ok) {
    const Json* v = find(key);
    if (!v) fail("missing field '" + name(key) + "'");
    else if (!ok(*v)) fail("field '" + name(key) + "' must be " + must_be);
    else return v;
    return nullptr;
  }

  bool u64(const char* key, uint64_t& out) {
    const Json* v = get(key, "a non-negative integer", [](const Json& j) {
      return j.is_number_unsigned() || (j.is_number_integer() && j.get<int64_t>() >= 0);
    });
    if (v) out = v->is_number_unsigned() ? v->get<uint64_t>() : uint64_t(v->get<int64_t>());
    return v != nullptr;
  }
  bool i64(const char* key, int64_t& out) {
    const Json* v = get(key, "an integer", [](const Json& j) { return j.is_number_integer(); });
    if (v) out = v->get<int64_t>();
    return v != nullptr;
  }
  bool num(const char* key, double& out) {
    const Json* v = get(key, "a number", [](const Json& j) { return j.is_number(); });
    if (!v) return false;
    out = v->get<double>();
    return std::isfinite(out) || fail("field '" + name(key) + "' must be finite");
  }
  bool boolean(const char* key, bool& out) {
    const Json* v = get(key, "true or false", [](const Json& j) { return j.is_boolean(); });
    if (v) out = v->get<bool>();
    return v != nullptr;
  }
  bool str(const char* key, std::string& out) {
    const Json* v = get(key, "a string", [](const Json& j) { return j.is_string(); });
    if (v) out = v->get<std::string>();
    return v != nullptr;
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


Json latency_json(const LatencySummary& l, const Histogram& h, const std::vector<double>& percentiles) {
  Json j{{"min", finite(l.min)},   {"mean", finite(l.mean)},       {"p50", finite(l.p50)},
         {"p90", finite(l.p90)},   {"p99", finite(l.p99)},         {"p99.9", finite(l.p999)},
         {"p99.99", finite(l.p9999)}, {"max", finite(l.max)}, {"stddev", finite(l.stddev)}};
  for (double p : percentiles) {
    std::string key = fmt::format("p{}", percentile_label(p));
    if (!j.contains(key)) j[key] = double(h.value_at_percentile(p)) / 1000.0;
  }
  return j;
}

Json phase_json(const std::optional<Phase>& p, const std::vector<double>& percentiles) {
  if (!p) return nullptr;
  return Json{{"count", p->histogram.count()},
              {"latency_us", latency_json(p->latency_us, p->histogram, percentiles)},
              {"histogram", p->histogram.encode_compressed_base64()}};
}

Json result_json(const BenchResult& r);

Json runs_json(const std::vector<BenchResult>& runs) {
  Json a = Json::array();
  for (const BenchResult& run : runs) a.push_back(result_json(run));
  return a;
}

Json repetitions_json(const BenchResult& r) {
  if (!r.repetitions) return nullptr;
  const Repetitions& rep = *r.repetitions;
  Json figures = Json::object();
  for (const FigureStats& f : rep.figures)
    figures[f.name] = Json{{"median", finite(f.median)}, {"low", finite(f.low)}, {"high", finite(f.high)},
                           {"wide", f.wide}};
  return Json{{"count", rep.count},           {"cooldown_s", finite(rep.cooldown_s)},
              {"confidence", finite(rep.confidence)}, {"level", finite(rep.level)},
              {"spread_too_wide", rep.spread_too_wide}, {"figures", figures},
              {"runs", runs_json(r.runs)}};
}

Json find_rate_json(const BenchResult& r) {
  if (!r.find_rate) return nullptr;
  const RateSearch& s = *r.find_rate;
  Json steps = Json::array();
  for (const SearchStep& st : s.steps)
    steps.push_back(Json{{"rate", st.rate ? Json(finite(*st.rate)) : Json(nullptr)},
                         {"achieved", finite(st.achieved)},
                         {"pass", st.pass},
                         {"reason", st.reason}});
  return Json{{"slo", s.slo},
              {"found", s.found ? Json(finite(*s.found)) : Json(nullptr)},
              {"steps", steps},
              {"runs", runs_json(r.runs)}};
}

Json result_json(const BenchResult& r) {
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
  j["rate_unit"] = r.rate_unit;
  j["hosts"] = r.hosts;
  j["round_trips"] = r.round_trips;
  j["bytes"] = r.bytes;
  j["elapsed_s"] = finite(r.elapsed_s);
  j["rt_per_s"] = finite(r.rt_per_s);
  j["mb_per_s"] = finite(r.mb_per_s);
  j["percentiles"] = r.percentiles;
  j["latency_us"] = latency_json(r.latency_us, r.histogram, r.percentiles);
  j["connect"] = phase_json(r.connect, r.percentiles);
  j["first_echo"] = phase_json(r.first_echo, r.percentiles);
  j["handshake"] = phase_json(r.handshake, r.percentiles);
  if (r.tls) {
    j["tls"] = Json{{"version", r.tls->version}, {"cipher", r.tls->cipher}, {"handshakes", r.tls->handshakes},
                    {"resumed", r.tls->resumed}};
  } else {
    j["tls"] = nullptr;
  }
  Json errors = Json::object();
  for (size_t i = 0; i < kErrorKinds; ++i) errors[error_kind_name(ErrorKind(i))] = r.errors[ErrorKind(i)];
  j["errors"] = errors;
  if (r.rate_shortfall) {
    j["rate_shortfall"] = Json{{"asked", finite(r.rate_shortfall->asked)},
                               {"achieved", finite(r.rate_shortfall->achieved)}};
  } else {
    j["rate_shortfall"] = nullptr;
  }
  j["slot_waits"] = r.slot_waits;
  if (r.server) {
    const ServerStats& s = *r.server;
    j["server"] = Json{{"pid", s.pid},
                       {"cpu_us_per_rt", finite(s.cpu_us_per_rt)},
                       {"rss_bytes", s.rss_bytes},
                       {"user_share", finite(s.user_share)}};
  } else {
    j["server"] = nullptr;
  }
  j["repetitions"] = repetitions_json(r);
  j["find_rate"] = find_rate_json(r);
  j["histogram"] = r.histogram.encode_compressed_base64();
  return j;
}

Result<BenchResult> read_result(const Json& j, const std::string& where);

// "runs": [...] inside `obj` (named `where`), each a whole result.
Status read_runs(const Json& obj, const std::string& where, std::vector<BenchResult>& out) {
  auto it = obj.find("runs");
  if (it == obj.end() || !it->is_array()) return Error{"field '" + where + ".runs' must be an array"};
  for (size_t i = 0; i < it->size(); ++i) {
    auto run = read_result((*it)[i], fmt::format("{}.runs[{}]", where, i));
    if (!run) return run.error();
    out.push_back(std::move(*run));
  }
  return {};
}

// Reads the object `key` of `top` with `read`, when it is there and not null.
template <class Read>
Status optional_object(Reader& top, const char* key, Read read) {
  const Json* p = top.object_or_null(key);
  if (!top.error().empty()) return Error{top.error()};
  return p ? read(*p) : Status{};
}

Status read_phase(const Json& p, const char* key, std::optional<Phase>& out) {
  Reader pr(p, key);
  std::string text;
  if (!pr.str("histogram", text)) return Error{pr.error()};
  auto h = Histogram::decode_compressed_base64(text);
  if (!h) return Error{fmt::format("field '{}.histogram': {}", key, h.error().message)};
  out = Phase{std::move(*h), {}};
  out->latency_us = summarize_latency(out->histogram);
  return {};
}

Status read_tls(const Json& p, BenchResult& r) {
  Reader tr(p, "tls");
  TlsStats t;
  if (!(tr.str("version", t.version) && tr.str("cipher", t.cipher) && tr.u64("handshakes", t.handshakes) &&
        tr.u64("resumed", t.resumed)))
    return Error{tr.error()};
  r.tls = std::move(t);
  return {};
}

Status read_repetitions(const Json& p, BenchResult& r) {
  Reader rr(p, "repetitions");
  Repetitions rep;
  if (!(rr.u64("count", rep.count) && rr.num("cooldown_s", rep.cooldown_s) && rr.num("confidence", rep.confidence) &&
        rr.num("level", rep.level) && rr.boolean("spread_too_wide", rep.spread_too_wide)))
    return Error{rr.error()};
  const Json* figures = rr.object_or_null("figures");
  if (!figures) return Error{"field 'repetitions.figures' must be an object"};
  for (auto it = figures->begin(); it != figures->end(); ++it) {
    if (!it->is_object()) return Error{"field 'repetitions.figures." + it.key() + "' must be an object"};
    Reader fr(*it, "repetitions.figures." + it.key());
    FigureStats f;
    f.name = it.key();
    if (!(fr.num("median", f.median) && fr.num("low", f.low) && fr.num("high", f.high) && fr.boolean("wide", f.wide)))
      return Error{fr.error()};
    rep.figures.push_back(f);
  }
  if (auto st = read_runs(p, "repetitions", r.runs); !st) return st;
  r.repetitions = std::move(rep);
  return {};
}

Status read_find_rate(const Json& p, BenchResult& r) {
  Reader sr(p, "find_rate");
  RateSearch s;
  if (!sr.str("slo", s.slo)) return Error{sr.error()};
  if (const Json* f = sr.find("found"); f && !f->is_null()) {
    double v = 0;
    if (!sr.num("found", v)) return Error{sr.error()};
    s.found = v;
  }
  auto steps = p.find("steps");
  if (steps == p.end() || !steps->is_array()) return Error{"field 'find_rate.steps' must be an array"};
  for (size_t i = 0; i < steps->size(); ++i) {
    const Json& sj = (*steps)[i];
    std::string where = fmt::format("find_rate.steps[{}]", i);
    if (!sj.is_object()) return Error{"field '" + where + "' must be an object"};
    Reader st(sj, where);
    SearchStep step;
    if (const Json* rate = st.find("rate"); rate && !rate->is_null()) {
      double v = 0;
      if (!st.num("rate", v)) return Error{st.error()};
      step.rate = v;
    }
    if (!(st.num("achieved", step.achieved) && st.boolean("pass", step.pass) && st.str("reason", step.reason)))
      return Error{st.error()};
    s.steps.push_back(std::move(step));
  }
  if (auto st = read_runs(p, "find_rate", r.runs); !st) return st;
  r.find_rate = std::move(s);
  return {};
}

Result<BenchResult> read_result(const Json& j, const std::string& where) {
  auto in = [&](const std::string& msg) { return where.empty() ? msg : where + ": " + msg; };
  if (!j.is_object()) return Error{in("not an eco bench result (expected a JSON object)")};
  BenchResult r;
  Reader top(j);
  int64_t version = 0;
  if (!top.find("eco_bench")) return Error{in("not an eco bench result (no 'eco_bench' field)")};
  if (!top.i64("eco_bench", version)) return Error{in(top.error())};
  if (version != kBenchSchemaVersion) {
    return Error{in(fmt::format("eco bench result schema version {} is not supported (this eco reads {})", version,
                                kBenchSchemaVersion))};
  }
  bool ok = top.str("target", r.target) && top.str("proto", r.proto) && top.str("mode", r.mode) &&
            top.u64("conns", r.conns) && top.u64("depth", r.depth) && top.u64("size", r.size) &&
            top.u64("threads", r.threads) && top.num("duration_s", r.duration_s) &&
            top.num("warmup_s", r.warmup_s) && top.u64("hosts", r.hosts) &&
            top.u64("round_trips", r.round_trips) && top.u64("bytes", r.bytes) &&
            top.num("elapsed_s", r.elapsed_s) && top.num("rt_per_s", r.rt_per_s) &&
            top.num("mb_per_s", r.mb_per_s);
  if (!ok) return Error{in(top.error())};
  if (r.proto != "tcp" && r.proto != "udp" && r.proto != "tls")
    return Error{in("field 'proto' must be \"tcp\", \"udp\" or \"tls\"")};
  if (r.mode != "rr" && r.mode != "crr" && r.mode != "stream") {
    return Error{in("field 'mode' must be \"rr\", \"crr\" or \"stream\"")};
  }
  if (const Json* rate = top.find("rate"); rate && !rate->is_null()) {
    double v = 0;
    if (!top.num("rate", v)) return Error{in(top.error())};
    r.rate = v;
  }
  if (top.find("rate_unit")) {
    if (!top.str("rate_unit", r.rate_unit)) return Error{in(top.error())};
    if (r.rate_unit != "msg/s" && r.rate_unit != "conn/s" && r.rate_unit != "B/s")
      return Error{in("field 'rate_unit' must be \"msg/s\", \"conn/s\" or \"B/s\"")};
  }
  if (const Json* pc = top.find("percentiles")) {
    if (!pc->is_array()) return Error{in("field 'percentiles' must be an array")};
    r.percentiles.clear();
    for (const Json& v : *pc) {
      if (!v.is_number() || !(v.get<double>() > 0 && v.get<double>() <= 100))
        return Error{in("field 'percentiles' must hold numbers in (0, 100]")};
      r.percentiles.push_back(v.get<double>());
    }
  }

  const Json* lat = top.object_or_null("latency_us");
  const Json* err = top.object_or_null("errors");
  if (!top.error().empty()) return Error{in(top.error())};
  if (!lat) return Error{in("missing field 'latency_us'")};
  if (!err) return Error{in("missing field 'errors'")};
  Reader l(*lat, "latency_us");
  LatencySummary& s = r.latency_us;
  ok = l.num("min", s.min) && l.num("mean", s.mean) && l.num("p50", s.p50) && l.num("p90", s.p90) &&
       l.num("p99", s.p99) && l.num("p99.9", s.p999) && l.num("p99.99", s.p9999) && l.num("max", s.max) &&
       l.num("stddev", s.stddev);
  if (!ok) return Error{in(l.error())};
  Reader e(*err, "errors");
  for (size_t i = 0; i < kErrorKinds; ++i)
    if (!e.u64(error_kind_name(ErrorKind(i)), r.errors[ErrorKind(i)])) return Error{in(e.error())};

  if (const Json* rs = top.object_or_null("rate_shortfall")) {
    Reader rr(*rs, "rate_shortfall");
    RateShortfall v;
    if (!(rr.num("asked", v.asked) && rr.num("achieved", v.achieved))) return Error{in(rr.error())};
    r.rate_shortfall = v;
  }
  if (top.find("slot_waits") && !top.u64("slot_waits", r.slot_waits)) return Error{in(top.error())};
  if (const Json* sv = top.object_or_null("server")) {
    Reader sr(*sv, "server");
    ServerStats v;
    if (!(sr.i64("pid", v.pid) && sr.num("cpu_us_per_rt", v.cpu_us_per_rt) && sr.u64("rss_bytes", v.rss_bytes) &&
          sr.num("user_share", v.user_share))) {
      return Error{in(sr.error())};
    }
    r.server = v;
  }
  if (!top.error().empty()) return Error{in(top.error())};
  for (Status st :
       {optional_object(top, "connect", [&](const Json& p) { return read_phase(p, "connect", r.connect); }),
        optional_object(top, "first_echo", [&](const Json& p) { return read_phase(p, "first_echo", r.first_echo); }),
        optional_object(top, "handshake", [&](const Json& p) { return read_phase(p, "handshake", r.handshake); }),
        optional_object(top, "tls", [&](const Json& p) { return read_tls(p, r); }),
        optional_object(top, "repetitions", [&](const Json& p) { return read_repetitions(p, r); }),
        optional_object(top, "find_rate", [&](const Json& p) { return read_find_rate(p, r); })})
    if (!st) return Error{in(st.error().message)};

  std::string hist;
  if (!top.str("histogram", hist)) return Error{in(top.error())};
  auto h = Histogram::decode_compressed_base64(hist);
  if (!h) return Error{in("field 'histogram': " + h.error().message)};
  r.histogram = std::move(*h);
  return r;
}

}  // namespace

std::string to_json(const BenchResult& r) { return result_json(r).dump(2) + "\n"; }

Result<BenchResult> from_json(std::string_view text) {
  Json j = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Error{"not valid JSON"};
  return read_result(j, "");
}

}  // namespace eco::bench
