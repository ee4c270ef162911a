// libFuzzer target: a server tls::Endpoint fed what a client might send instead of a
// ClientHello, in the chunk sizes the input's first byte picks, then EOF. Whatever comes,
// the endpoint must end in a state it names (never hang or grow): output within its bound,
// and an error always with a reason and a message.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "tls/endpoint.h"
#include "tls/server_context.h"

namespace {

const std::shared_ptr<const eco::tls::ServerConfig>& config() {
  static const auto cfg = [] {
    eco::tls::ServerSettings s;  // the ephemeral certificate: no files needed
    s.alpn = {"h2", "http/1.1"};
    s.unknown_sni = eco::tls::UnknownSni::refuse;
    auto ctx = eco::tls::ServerContext::create(s);
    if (!ctx.ok()) std::abort();
    return (*ctx)->current();
  }();
  return cfg;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace eco::tls;
  if (size == 0) return 0;
  const size_t chunk = 1 + size_t(data[0]) * 17;  // 1 to 4336 bytes per feed
  const eco::tls::Limits limits{.input_cap = 8 << 10, .output_cap = 16 << 10};
  Endpoint ep = Endpoint::server(config(), limits);
  char plain[4096];
  size_t pos = 1;
  Io last = Io::want_input;
  for (int round = 0; round < 10000 && last != Io::error && last != Io::closed; ++round) {
    if (pos < size) pos += ep.feed(reinterpret_cast<const char*>(data) + pos, std::min(chunk, size - pos));
    else ep.feed_eof();
    IoResult r = ep.read(plain, sizeof plain);
    last = r.status;
    if (r.status == Io::ok && (r.bytes == 0 || r.bytes > sizeof plain)) std::abort();
    if (ep.pending_output() > limits.output_cap) std::abort();
    ep.consume_output(ep.pending_output());  // a peer that reads everything we send
  }
  if (last != Io::error && last != Io::closed) std::abort();  // fed EOF: it must have ended
  if (last == Io::error && (ep.reason() == Reason::none || ep.error_text().empty())) std::abort();
  return 0;
}
