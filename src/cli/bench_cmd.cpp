#include <cmath>
#include <exception>
#include <string>
#include <memory>

#include "bench/merge.h"
#include "bench/options.h"
#include "bench/runner.h"
#include "cli/commands.h"
#include "util/exit_codes.h"
#include "util/units.h"

namespace eco::cli {

namespace {
struct BenchArgs {
  bench::BenchOptions o;
  std::string size = "64", duration = "10s", warmup = "1s", timeout = "5s";
  std::string mode = "rr";
  bool no_verify = false;
};
// CLI::PositiveNumber's message prints DBL_MAX in full; this one says what is wanted.
CLI::Validator positive_rate() {
  return CLI::Validator(
      [](std::string& v) {
        double d = 0;
        try {
          size_t used = 0;
          d = std::stod(v, &used);
          if (used != v.size()) d = -1;
        } catch (const std::exception&) {
          d = -1;
        }
        return d > 0 && std::isfinite(d) ? std::string() : "'" + v + "' is not a positive number (per second)";
      },
      "RATE");
}

}  // namespace

Command add_bench(CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  CLI::App* sub = app.add_subcommand(
      "bench", "Load-test an echo server: closed loop (each connection keeps --depth messages in flight) or open\n"
               "loop (--rate, latency from each message's intended send time). Every echoed byte is verified.\n"
               "Exit 0 if clean, 1 on any mismatch, short read, reset, refused connect or timeout, 3 if nothing\n"
               "could connect. `eco bench merge a.json b.json ...` combines runs from several machines.");
  sub->add_option("address", a->o.target, "Server address, HOST:PORT or [V6]:PORT (udp://... for UDP)")
      ->type_name("ADDR")
      ->default_str("127.0.0.1:5346");
  sub->add_option("-c,--conns", a->o.conns, "Concurrent connections (UDP: sockets)")->default_str("1")
      ->check(CLI::Range(1u, 1'000'000u));
  sub->add_option("-d,--depth", a->o.depth, "Messages in flight per connection (closed loop)")->default_str("1")
      ->check(CLI::Range(1u, 4096u));
  sub->add_option("-s,--size", a->size, "Bytes per message (64, 1K, 64KiB, ...)")->default_str("64")
      ->check(size_validator());
  sub->add_option("-t,--duration", a->duration, "Measured time, after the warm-up")->default_str("10s")
      ->check(duration_validator());
  sub->add_option("-w,--warmup", a->warmup, "Time before measuring (connections ramp, caches warm)")
      ->default_str("1s")->check(duration_validator());
  sub->add_option("-T,--threads", a->o.threads, "Load threads, each with its own loop and connections")
      ->default_str("1")->check(CLI::Range(1u, 1024u));
  sub->add_flag("-u,--udp", a->o.udp, "Use UDP datagrams (one message each)");
  sub->add_option("-r,--rate", a->o.rate, "Open loop: total messages per second over all connections")
      ->check(positive_rate());
  sub->add_option("-m,--mode", a->mode, "rr: request/echo on persistent connections; crr: a new connection per "
                                        "request; stream: a deep window of messages in flight (throughput)")
      ->default_str("rr")->check(CLI::IsMember({"rr", "crr", "stream"}));
  sub->add_flag("--no-verify", a->no_verify, "Do not check echoed bytes (raw speed checks only)");
  sub->add_option("--connect-rate", a->o.connect_rate, "Open at most this many connections per second while ramping")
      ->check(positive_rate());
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
  sub->add_option("--server-pid", a->o.server_pid, "Also report this local server's CPU time per round trip and RSS")
      ->check(CLI::Range(1, 1 << 30));
  sub->add_flag("-q,--quiet", a->o.quiet, "No live progress line");

  auto files = std::make_shared<std::vector<std::string>>();
  auto merge_json = std::make_shared<bool>(false);
  CLI::App* merge = sub->add_subcommand("merge", "Combine `eco bench --json` results from several load machines "
                                                 "(histograms added, rates summed) into one report.");
  merge->add_option("files", *files, "Result files written with --json")->required()->check(CLI::ExistingFile);
  merge->add_flag("--json", *merge_json, "Print the merged result as JSON");

  return {sub, [a, merge, files, merge_json] {
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
            o.mode = a->mode == "crr" ? bench::Mode::crr : a->mode == "stream" ? bench::Mode::stream : bench::Mode::rr;
            o.verify = !a->no_verify;
            return bench::run_bench(o);
          }};
}

}  // namespace eco::cli
