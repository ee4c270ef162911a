#include <memory>
#include <thread>

#include "cli/commands.h"
#include "server/inetd.h"
#include "server/server.h"
#include "util/exit_codes.h"
#include "util/log.h"
#include "util/units.h"

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
};
}  // namespace

Command add_serve(CLI::App& app) {
  auto a = std::make_shared<ServeArgs>();
  CLI::App* sub = app.add_subcommand("serve", "Run the echo server (TCP, and UDP with --udp).");
  sub->add_option("-l,--listen", a->cfg.listen,
                  "Address to listen on, repeatable: HOST:PORT, [V6]:PORT, tcp://... or udp://...\n"
                  "([::]:PORT is dual-stack; port 0 picks a free port). Default 127.0.0.1:5346");
  sub->add_flag("-u,--udp", a->cfg.udp, "Also serve UDP on every TCP address");
  sub->add_option("-t,--threads", a->cfg.threads, "Event-loop threads (default: one per core)")
      ->check(CLI::Range(1u, 1024u));
  sub->add_option("--engine", a->cfg.engine,
                  "I/O engine: auto (io_uring when the kernel allows it, else epoll), uring or epoll")
      ->default_str("auto");
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
  sub->add_option("--port-file", a->cfg.port_file, "Write the listening port here once bound (for port 0)");
  sub->add_option("--log-level", a->log_level, "debug, info, warn, error or off")->default_str("info");
  sub->add_option("--log-format", a->log_format, "text or json")->default_str("text")
      ->check(CLI::IsMember({"text", "json"}));
  sub->add_flag("-q,--quiet", a->quiet, "Only log warnings and errors (no per-connection lines)");
  sub->add_flag("--inetd", a->inetd,
                "Echo one connection given as stdin/stdout, then exit (inetd, xinetd, systemd-socket-activate --inetd)");

  return {sub, [a] {
            log::Level level;
            if (!log::parse_level(a->log_level, level))
              return fail(kExitUsage, "invalid --log-level '" + a->log_level + "' (debug, info, warn, error, off)");
            if (a->quiet && level < log::Level::warn) level = log::Level::warn;
            log::configure(level, a->log_format == "json" ? log::Format::json : log::Format::text);
            if (a->inetd) return server::serve_inetd();
            uint64_t buffer = *parse_size(a->buffer);
            if (buffer < 1 || buffer > (1u << 30))
              return fail(kExitUsage, "invalid --buffer '" + a->buffer + "' (must be 1 byte to 1 GiB)");
            a->cfg.engine_config.buffer_size = uint32_t(buffer);
            a->cfg.drain_timeout_s = *parse_duration(a->drain);
            auto rc = server::serve(a->cfg);
            if (!rc) return fail(kExitUsage, rc.error().message);
            return *rc;
          }};
}

}  // namespace eco::cli
