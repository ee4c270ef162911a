#include <memory>

#include "cli/commands.h"
#include "cli/tls_flags.h"
#include "client/send.h"
#include "util/exit_codes.h"
#include "util/units.h"

namespace eco::cli {

Command add_send(CLI::App& app) {
  auto o = std::make_shared<client::SendOptions>();
  auto timeout = std::make_shared<std::string>("10s");
  auto tls = std::make_shared<TlsClientFlags>();
  CLI::App* sub = app.add_subcommand(
      "send", "Send a message, a file or stdin to an echo server, read the whole echo back and verify it.\n"
              "Exit 0 if the echo is identical, 1 if it differs, 3 on connection errors or timeouts.");
  sub->add_option("address", o->target, "Server address, HOST:PORT or [V6]:PORT (udp://... for UDP, tls://... for TLS)")
      ->type_name("ADDR")
      ->default_str("127.0.0.1:5346");
  sub->add_option("message", o->message, "Text to send; '-' reads stdin")
      ->default_str("the tutorial's 'Hello world! ...'");
  sub->add_option("-f,--file", o->file, "Send this file instead ('-' for stdin); any size is streamed")
      ->type_name("FILE");
  sub->add_flag("-r,--raw", o->raw, "Write the echo to stdout unchanged (instead of Received: b'...')");
  sub->add_flag("-u,--udp", o->udp, "Use UDP: the input goes out as datagrams of up to 65507 bytes");
  sub->add_option("--timeout", *timeout, "Longest wait for progress before giving up")
      ->default_str("10s")
      ->check(duration_validator());
  tls->add(*sub, false);
  return {sub, [o, timeout, tls] {
            // "-" alone (in either position) means stdin to the default address.
            if (o->target == "-" && o->file.empty()) {
              o->target = "127.0.0.1:5346";
              o->file = "-";
            }
            if (o->file.empty() && o->message == "-") o->file = "-";
            o->timeout_s = *parse_duration(*timeout);
            auto ts = tls->settings();
            if (!ts) return fail(kExitUsage, ts.error().message);
            o->tls = *ts;
            o->tls_flags = tls->given();
            return client::send(*o);
          }};
}

}  // namespace eco::cli
