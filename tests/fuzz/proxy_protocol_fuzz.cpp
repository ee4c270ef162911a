// libFuzzer target: the PROXY protocol parser reads bytes straight from the network.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "net/proxy_protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  eco::net::ProxyHeader h;
  auto r = eco::net::parse_proxy_header(data, size, h);
  // Invariants: a parsed header never claims more bytes than it was given, or more than the bound.
  if (r.state == eco::net::ProxyParse::done && (h.length > size || h.length > eco::net::kProxyMaxHeader)) std::abort();
  if (r.state == eco::net::ProxyParse::invalid && r.error.empty()) std::abort();
  // A header is self-delimiting: exactly its own bytes parse to the same header.
  if (r.state == eco::net::ProxyParse::done) {
    eco::net::ProxyHeader h2;
    auto exact = eco::net::parse_proxy_header(data, h.length, h2);
    if (exact.state != eco::net::ProxyParse::done || h2.length != h.length || h2.local != h.local) std::abort();
  }
  return 0;
}
