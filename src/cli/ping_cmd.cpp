#include <memory>

#include "cli/commands.h"
#include "cli/tls_flags.h"
#include "client/ping.h"
#include "util/exit_codes.h"
#include "util/units.h"

namespace eco::cli {

Command add_ping(CLI::App& app) {
  auto o = std::make_shared<client::PingOptions>();
  auto interval = std::make_shared<std::string>("1s");
  auto timeout = std::make_shared<std::string>("2s");
  auto size = std::make_shared<std::string>("64");
  auto tls = std::make_shared<TlsClientFlags>();
  CLI::App* sub = app.add_subcommand(
      "ping", "Measure round trips to an echo server, one probe at a time, like ping(8).\n"
              "Ctrl-C or the count's end prints the statistics. Exit 0 if every probe came back intact,\n"
              "1 if an echo differed, 3 if a probe was lost or nothing could connect.");
  sub->add_option("address", o->target, "Server address, HOST:PORT or [V6]:PORT (udp://... for UDP, tls://... for TLS)")
      ->type_name("ADDR")
      ->default_str("127.0.0.1:5346");
  sub->add_option("-c,--count", o->count, "Stop after this many probes (default: until Ctrl-C)");
  sub->add_option("-i,--interval", *interval, "Time between probes")->default_str("1s")->check(duration_validator());
  sub->add_option("-s,--size", *size, "Bytes per probe")->default_str("64")->check(size_validator());
  sub->add_flag("-u,--udp", o->udp, "Probe with UDP datagrams");
  sub->add_option("-W,--timeout", *timeout, "How long to wait for each echo")->default_str("2s")
      ->check(duration_validator());
  tls->add(*sub, true);
  return {sub, [o, interval, timeout, size, tls] {
            o->interval_s = *parse_duration(*interval);
            o->timeout_s = *parse_duration(*timeout);
            uint64_t s = *parse_size(*size);
            if (s < 1 || s > (16u << 20)) return fail(kExitUsage, "invalid -s '" + *size + "' (must be 1 byte to 16 MiB)");
            if (o->timeout_s <= 0) return fail(kExitUsage, "-W must be more than 0");
            o->size = uint32_t(s);
            auto ts = tls->settings();
            if (!ts) return fail(kExitUsage, ts.error().message);
            o->tls = *ts;
            o->tls_flags = tls->given();
            return client::ping(*o);
          }};
}

}  // namespace eco::cli
