#include <memory>
#include <thread>

#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/tls_flags.h"
#include "engine/engine.h"
#include "server/inetd.h"
#include "server/privileges.h"
#include "server/server.h"
#include "util/exit_codes.h"
#include "util/log.h"
#include "util/units.h"
#include "session/limits.h"

namespace eco::cli {

namespace {
struct ServeArgs {
  server::ServeConfig cfg;
  std::string buffer = "64K";
  std::string drain = "5s";
  std::string log_level = "info";
  std::string log_format = "text";
  bool quiet = false;
  bool inetd = false;
  // Limits and access, parsed in the run step.
  std::string idle_timeout, max_duration, max_bytes, rate_per_ip, proxy_timeout = "5s", udp_drop_ports,
      udp_rate;
  TlsServerFlags tls;
};

// The --engine help, from the engine table: each engine, and auto's rule.
std::string engine_help() {
  std::string help = "I/O engine:";
  for (const engine::EngineInfo& e : engine::engine_table()) help += fmt::format("\n  {}: {}", e.name, e.summary);
  help += "\n  auto: the first of those that can serve as asked, with one log line saying which it passed over "
          "and why";
  return help;
}
}  // namespace

Command add_serve(CLI::App& app) {
  auto a = std::make_shared<ServeArgs>();
  CLI::App* sub = app.add_subcommand("serve", "Run the echo server (TCP, and UDP with --udp).");
  sub->add_option("-l,--listen", a->cfg.listen,
                  "Address to listen on, repeatable: HOST:PORT, [V6]:PORT, tcp://..., udp://... or tls://... (TLS, see below)\n"
                  "([::]:PORT is dual-stack; port 0 picks a free port). Default 127.0.0.1:5346")
      ->type_name("ADDR");
  sub->add_flag("-u,--udp", a->cfg.udp, "Also serve UDP on every TCP address");
  sub->add_option("-t,--threads", a->cfg.threads, "Event-loop threads (default: one per core)")
      ->check(CLI::Range(1u, 1024u));
  sub->add_option("--engine", a->cfg.engine, engine_help())->default_str("auto");
  // Hidden io_uring knobs, for tests (a deliberately tiny buffer ring) and tuning.
  sub->add_option("--uring-ring-entries", a->cfg.engine_config.ring_entries, "io_uring SQ entries")
      ->check(CLI::Range(1u, 32768u))
      ->group("");
  sub->add_option("--uring-buf-ring-entries", a->cfg.engine_config.buf_ring_entries,
                  "io_uring receive buffers per thread (rounded up to a power of two)")
      ->check(CLI::Range(1u, 32768u))
      ->group("");
  sub->add_option("--uring-buf-size", a->cfg.engine_config.buf_ring_size, "io_uring receive buffer size")
      ->check(CLI::Range(1u, 1u << 20))
      ->group("");
  sub->add_option("--buffer", a->buffer, "Most bytes held per connection waiting to be sent back; above it the "
                                         "server stops reading that client (backpressure)")
      ->default_str("64K")
      ->check(size_validator());
  sub->add_option("--drain-timeout", a->drain, "On SIGINT/SIGTERM, how long open connections may finish")
      ->default_str("5s")
      ->check(duration_validator());
  sub->add_option("--port-file", a->cfg.port_file, "Write the listening port here once bound (for port 0)")
      ->type_name("FILE");
  sub->add_option("--log-level", a->log_level, "debug, info, warn, error or off")->default_str("info");
  sub->add_option("--log-format", a->log_format, "text or json")->default_str("text")
      ->check(CLI::IsMember({"text", "json"}));
  sub->add_flag("-q,--quiet", a->quiet, "Only log warnings and errors (no per-connection lines)");
  sub->add_flag("--inetd", a->inetd,
                "Echo one connection given as stdin/stdout, then exit (inetd, xinetd, systemd-socket-activate --inetd)");
  const std::string ops = "Operations";
  sub->add_option("--metrics", a->cfg.metrics,
                  "Serve Prometheus metrics at http://ADDR/metrics, and /healthz and /readyz (e.g. 127.0.0.1:9346)")
      ->type_name("ADDR")
      ->group(ops);
  // Read in main(): its keys become arguments, parsed again with the command line winning.
  sub->add_option("--config", "TOML file; its keys are these flags' long names (listen = [\"...\"], threads = 2, "
                              "udp = true); flags given on the command line win")
      ->type_name("FILE")
      ->group(ops);
  sub->add_option("--user", a->cfg.user, "Started as root: run as this user (name or uid) once the sockets are bound")
      ->group(ops);
  sub->add_option("--group", a->cfg.group, "With --user: run with this group (default: the user's primary group)")
      ->group(ops);
  sub->add_flag("--seccomp", a->cfg.seccomp,
                "Once serving, allow only the system calls serving needs; any other fails with EPERM")
      ->group(ops);

  const std::string lim = "Limits and access";
  auto& L = a->cfg.engine_config.limits;
  sub->add_option("--max-conns", L.max_conns, "Most open TCP connections (all threads); excess ones are closed at once")
      ->group(lim);
  sub->add_option("--max-conns-per-ip", L.max_conns_per_ip, "Most open TCP connections per source address")
      ->group(lim);
  sub->add_option("--idle-timeout", a->idle_timeout, "Close a connection after this long without a byte (off by default)")
      ->check(duration_validator())
      ->group(lim);
  sub->add_option("--max-conn-duration", a->max_duration, "Close a connection this long after it opened")
      ->check(duration_validator())
      ->group(lim);
  sub->add_option("--max-bytes", a->max_bytes, "Close a connection that sends more than this many bytes")
      ->check(size_validator())
      ->group(lim);
  sub->add_option("--rate-limit-per-ip", a->rate_per_ip,
                  "Bytes per second per source over TCP (e.g. 1M); enforced by pausing reads")
      ->check(size_validator())
      ->group(lim);
  sub->add_option("--allow", L.allow, "Only admit sources in this CIDR (repeatable; IPv4 or IPv6)")
      ->type_name("CIDR")
      ->group(lim);
  sub->add_option("--deny", L.deny, "Refuse sources in this CIDR (repeatable; wins over --allow)")
      ->type_name("CIDR")
      ->group(lim);
  sub->add_flag("--proxy-protocol", L.proxy_protocol,
                "TCP clients start with a PROXY v1/v2 header; its source is the client for logs, limits, access")
      ->group(lim);
  sub->add_option("--proxy-timeout", a->proxy_timeout, "How long a PROXY header may take to arrive")
      ->default_str("5s")
      ->check(duration_validator())
      ->group(lim);
  sub->add_option("--udp-drop-ports", a->udp_drop_ports,
                  "UDP source ports never answered, comma-separated, or 'none' "
                  "(default 0,7,13,17,19,37,53,123,161,389,1900,11211)")
      ->group(lim);
  sub->add_option("--udp-rate-per-ip", a->udp_rate, "Datagrams per second per source (e.g. 100/s); more are dropped")
      ->group(lim);
  a->tls.add(*sub);

  return {sub, [a] {
            log::Level level;
            if (!log::parse_level(a->log_level, level))
              return fail(kExitUsage, "invalid --log-level '" + a->log_level + "' (debug, info, warn, error, off)");
            if (a->quiet && level < log::Level::warn) level = log::Level::warn;
            log::configure(level, a->log_format == "json" ? log::Format::json : log::Format::text);
            // Nothing eco serve starts may gain privileges (and --seccomp needs this).
            if (auto s = server::set_no_new_privs(); !s) return fail(kExitMismatch, s.error().message);
            if (a->inetd) return server::serve_inetd();
            uint64_t buffer = *parse_size(a->buffer);
            if (buffer < 1 || buffer > (1u << 30))
              return fail(kExitUsage, "invalid --buffer '" + a->buffer + "' (must be 1 byte to 1 GiB)");
            a->cfg.engine_config.buffer_size = uint32_t(buffer);
            a->cfg.drain_timeout_s = *parse_duration(a->drain);
            auto& limits = a->cfg.engine_config.limits;
            auto ns = [](const std::string& d) { return uint64_t(*parse_duration(d) * 1e9); };
            if (!a->idle_timeout.empty()) limits.idle_timeout_ns = ns(a->idle_timeout);
            if (!a->max_duration.empty()) limits.max_duration_ns = ns(a->max_duration);
            limits.proxy_timeout_ns = ns(a->proxy_timeout);
            if (limits.proxy_timeout_ns == 0) return fail(kExitUsage, "invalid --proxy-timeout '0' (must be > 0)");
            if (!a->max_bytes.empty()) limits.max_bytes = *parse_size(a->max_bytes);
            if (!a->rate_per_ip.empty()) limits.rate_per_ip = *parse_size(a->rate_per_ip);
            if (!a->udp_drop_ports.empty()) {
              auto ports = session::parse_port_list(a->udp_drop_ports);
              if (!ports) return fail(kExitUsage, "--udp-drop-ports: " + ports.error().message);
              limits.udp_drop_ports = *ports;
            }
            if (!a->udp_rate.empty()) {
              auto r = session::parse_per_second(a->udp_rate);
              if (!r) return fail(kExitUsage, "--udp-rate-per-ip: " + r.error().message);
              limits.udp_rate_per_ip = *r;
            }
            auto tls = a->tls.settings();
            if (!tls) return fail(kExitUsage, tls.error().message);
            a->cfg.tls = std::move(*tls);
            a->cfg.tls_flags_given = a->tls.given();
            auto rc = server::serve(a->cfg);
            if (!rc) return fail(kExitUsage, rc.error().message);
            return *rc;
          }};
}

}  // namespace eco::cli
