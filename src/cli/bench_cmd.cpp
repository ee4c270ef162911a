#include <cmath>
#include <memory>
#include <string>

#include "bench/merge.h"
#include "bench/options.h"
#include "bench/runner.h"
#include "cli/commands.h"
#include "cli/tls_flags.h"
#include "util/exit_codes.h"
#include "util/units.h"

namespace eco::cli {

namespace {
struct BenchArgs {
  bench::BenchOptions o;
  std::string size = "64", duration = "10s", warmup = "1s", timeout = "5s";
  std::string mode = "rr";
  std::string payload = "binary";
  std::string rate, connect_rate, source_ips, cooldown;
  std::string percentiles = "50,90,99,99.9,99.99";
  bool no_verify = false;
};

// A validator from one of bench's parsers, so the message is the parser's own.
template <class Parse>
CLI::Validator parsed_by(Parse parse, const char* name) {
  return CLI::Validator(
      [parse](std::string& v) {
        auto r = parse(v);
        return r ? std::string() : r.error().message;
      },
      name);
}

}  // namespace

Command add_bench(CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  auto tls = std::make_shared<TlsClientFlags>();
  CLI::App* sub = app.add_subcommand(
      "bench",
      "Load-test an echo server: closed loop (each connection keeps --depth messages in flight) or open\n"
      "loop (--rate, latency from each message's or connection's intended start). Every echoed byte is\n"
      "verified. --find-rate searches for the highest rate that keeps a latency objective; --reps repeats\n"
      "the run and reports medians with confidence intervals.\n"
      "Exit 0 if clean, 1 on any mismatch, short read, reset, refused connect or timeout (or no rate\n"
      "holds the --find-rate objective), 2 on bad options, 3 if nothing could connect.\n"
      "`eco bench merge a.json b.json ...` combines runs from several machines.");
  sub->add_option("address", a->o.target,
                  "Server address, HOST:PORT or [V6]:PORT (udp://... for UDP, tls://... for TLS)")
      ->type_name("ADDR")
      ->default_str("127.0.0.1:5346");
  sub->add_option("-c,--conns", a->o.conns, "Concurrent connections (UDP: sockets; crr with --rate: most open at once)")
      ->default_str("1")->check(CLI::Range(1u, 1'000'000u));
  sub->add_option("-d,--depth", a->o.depth, "Messages in flight per connection (closed loop)")->default_str("1")
      ->check(CLI::Range(1u, 4096u));
  sub->add_option("-s,--size", a->size, "Bytes per message (64, 1K, 64KiB, ...)")->default_str("64")
      ->check(size_validator());
  sub->add_option("-t,--duration", a->duration, "Measured time, after the warm-up (per repetition or search step)")
      ->default_str("10s")->check(duration_validator());
  sub->add_option("-w,--warmup", a->warmup, "Time before measuring (connections ramp, caches warm)")
      ->default_str("1s")->check(duration_validator());
  sub->add_option("-T,--threads", a->o.threads, "Load threads, each with its own loop and connections")
      ->default_str("1")->check(CLI::Range(1u, 1024u));
  sub->add_flag("-u,--udp", a->o.udp, "Use UDP datagrams (one message each)");
  sub->add_option("-r,--rate", a->rate,
                  "Open loop, in total over all connections: rr messages/s, crr new connections/s, stream bytes/s "
                  "(2000, 2.5k, 50M)")
      ->check(parsed_by(bench::parse_rate, "RATE"));
  sub->add_option("-m,--mode", a->mode, "rr: request/echo on persistent connections; crr: a new connection per "
                                        "request; stream: a deep window of messages in flight (throughput)")
      ->default_str("rr")->check(CLI::IsMember({"rr", "crr", "stream"}));
  sub->add_option("--find-rate", a->o.find_rate,
                  "Search for the highest open-loop rate that keeps this latency objective, e.g. 'p99<1ms' or "
                  "'p50<200us,p99.9<=5ms' (short steps of --duration each)")
      ->type_name("SLO");
  sub->add_option("--reps", a->o.reps, "Run the same load N times; report medians and confidence intervals")
      ->default_str("1");
  sub->add_option("--cooldown", a->cooldown, "Pause between repetitions or search steps")
      ->check(duration_validator());
  sub->add_option("--confidence", a->o.confidence, "Level of the --reps intervals, percent")->default_str("95");
  sub->add_option("--percentiles", a->percentiles, "Latency percentiles for the summary and JSON")
      ->default_str("50,90,99,99.9,99.99")->check(parsed_by(bench::parse_percentiles, "LIST"));
  sub->add_option("--payload", a->payload,
                  "binary: the checkable pattern; text: the same as printable bytes, each message ending in a "
                  "newline, for echo servers that work line by line (gnutls-serv --echo); TCP and TLS")
      ->default_str("binary")->check(CLI::IsMember({"binary", "text"}));
  sub->add_flag("--no-verify", a->no_verify, "Do not check echoed bytes (raw speed checks only)");
  sub->add_option("--connect-rate", a->connect_rate, "Open at most this many connections per second while ramping")
      ->check(parsed_by(bench::parse_rate, "RATE"));
  sub->add_option("--source-ip", a->source_ips,
                  "Send from these local addresses, connections spread over them in turn (A,B,C); without it, "
                  "loopback targets spread over 127.0.0.x by themselves")
      ->type_name("ADDRS");
  sub->add_option("--conns-per-source", a->o.conns_per_source,
                  "Loopback IPv4 targets: bind each further block of this many connections to the next source "
                  "address (127.0.0.2, .3, ...), so more than one address's ~28,000 ports can be used")
      ->default_str("20000")->check(CLI::Range(1u, 60000u));
  sub->add_option("--timeout", a->timeout, "A connection with messages in flight and no progress this long is a "
                                           "timeout (UDP: a datagram after min(this, 1 s))")
      ->default_str("5s")->check(duration_validator());
  sub->add_flag("--json", a->o.json, "Print the result as one JSON object (for `eco bench merge`)");
  sub->add_option("--hist", a->o.hist_file, "Write the latency histogram as an HdrHistogram interval log")
      ->type_name("FILE");
  sub->add_option("--csv", a->o.csv_file,
                  "Write one CSV line per interval: rt/s, MB/s, p50/p99/max and the errors by kind")
      ->type_name("FILE");
  sub->add_option("--server-pid", a->o.server_pid, "Also report this local server's CPU time per round trip and RSS")
      ->check(CLI::Range(1, 1 << 30));
  sub->add_flag("-q,--quiet", a->o.quiet, "No live progress line");
  tls->add(*sub, true);

  auto files = std::make_shared<std::vector<std::string>>();
  auto merge_json = std::make_shared<bool>(false);
  CLI::App* merge = sub->add_subcommand("merge", "Combine `eco bench --json` results from several load machines "
                                                 "(histograms added, rates summed) into one report.");
  merge->add_option("files", *files, "Result files written with --json")->required()->check(CLI::ExistingFile);
  merge->add_flag("--json", *merge_json, "Print the merged result as JSON");

  return {sub, [a, sub, merge, files, merge_json, tls] {
            if (merge->parsed()) return bench::run_merge(*files, *merge_json);
            bench::BenchOptions& o = a->o;
            o.size = uint32_t(std::min<uint64_t>(*parse_size(a->size), UINT32_MAX));
            if (o.size < 1 || o.size > (64u << 20))
              return fail(kExitUsage, "invalid --size '" + a->size + "' (must be 1 byte to 64 MiB)");
            o.duration_s = *parse_duration(a->duration);
            o.warmup_s = *parse_duration(a->warmup);
            o.timeout_s = *parse_duration(a->timeout);
            if (o.duration_s <= 0) return fail(kExitUsage, "--duration must be more than 0");
            if (o.timeout_s <= 0) return fail(kExitUsage, "--timeout must be more than 0");
            if (!a->rate.empty()) o.rate = *bench::parse_rate(a->rate);
            if (!a->connect_rate.empty()) o.connect_rate = *bench::parse_rate(a->connect_rate);
            if (!a->cooldown.empty()) o.cooldown_s = *parse_duration(a->cooldown);
            o.percentiles = *bench::parse_percentiles(a->percentiles);
            o.conns_per_source_given = sub->count("--conns-per-source") > 0;
            for (size_t at = 0; !a->source_ips.empty() && at <= a->source_ips.size();) {
              size_t comma = a->source_ips.find(',', at);
              o.source_ips.push_back(a->source_ips.substr(at, comma == std::string::npos ? comma : comma - at));
              if (comma == std::string::npos) break;
              at = comma + 1;
            }
            o.mode = a->mode == "crr" ? bench::Mode::crr : a->mode == "stream" ? bench::Mode::stream : bench::Mode::rr;
            o.verify = !a->no_verify;
            o.text = a->payload == "text";
            auto ts = tls->settings();
            if (!ts) return fail(kExitUsage, ts.error().message);
            o.tls = *ts;
            o.tls_flags = tls->given();
            return bench::run_bench(o);
          }};
}

}  // namespace eco::cli
