// libFuzzer target: --listen values, eco send/bench/ping addresses, --allow/--deny networks.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "net/address.h"
#include "net/cidr.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto hp = eco::net::parse_host_port(text);
  if (!hp.ok() && hp.error().message.empty()) std::abort();
  if (hp.ok() && hp->host.empty()) std::abort();  // a missing host means 127.0.0.1, never ""
  if (hp.ok() && hp->tls) std::abort();           // tls:// only where the caller speaks TLS
  auto tls = eco::net::parse_host_port(text, true);
  if (tls.ok() && (tls->host.empty() || (tls->tls && tls->proto != eco::net::Proto::tcp))) std::abort();
  if (hp.ok() && (!tls.ok() || tls->host != hp->host || tls->port != hp->port)) std::abort();
  auto c = eco::net::parse_cidr(text);
  if (c.ok()) {
    // A parsed network prints in a form that parses back to itself.
    auto again = eco::net::parse_cidr(c->to_string());
    if (!again.ok() || again->bytes != c->bytes || again->prefix != c->prefix) std::abort();
  }
  return 0;
}
