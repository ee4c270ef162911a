// What tls::Endpoint costs in instructions, with no sockets: a client and a server endpoint
// in memory. bench/tls_endpoint_cost.sh runs it under callgrind, counting only the
// functions named server_* or client_* (one side's work), and divides by the count.
//
//   tls_endpoint_cost echo SIZE N     N echoes of SIZE bytes over one TLS 1.3 connection
//   tls_endpoint_cost full N          N full handshakes (TLS 1.3, X25519, ECDSA P-256)
//   tls_endpoint_cost resumed N       N handshakes resuming a ticket (psk_dhe_ke: with X25519)
//   ... full|resumed N 1.2            the same over TLS 1.2
//   ... resumed N psk_ke              TLS 1.3 resumption without (EC)DHE (SSL_OP_ALLOW_NO_DHE_KEX
//                                     on both sides; OpenSSL clients do not offer it by default)
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "../tests/unit/tls_pair.h"

using namespace eco::tls;

namespace {

// Each side's work is a function of its own, so callgrind can count one side alone (noipa:
// identical bodies must not be folded into one).
__attribute__((noipa)) void server_echo(Endpoint& s, char* buf, size_t cap) {
  for (;;) {
    IoResult r = s.read(buf, cap);
    if (r.status != Io::ok) break;
    for (size_t off = 0; off < r.bytes;) off += s.write(buf + off, r.bytes - off).bytes;
  }
}
__attribute__((noipa)) void client_send(Endpoint& c, const char* msg, size_t n) {
  for (size_t off = 0; off < n;) off += c.write(msg + off, n - off).bytes;
}
__attribute__((noipa)) size_t client_receive(Endpoint& c, char* buf, size_t cap) {
  size_t got = 0;
  for (;;) {
    IoResult r = c.read(buf, cap);
    if (r.status != Io::ok) return got;
    got += r.bytes;
  }
}
__attribute__((noipa)) IoResult server_handshake(Endpoint& s) { return s.handshake(); }
__attribute__((noipa)) IoResult client_handshake(Endpoint& c) { return c.handshake(); }
__attribute__((noipa)) Endpoint server_accept(const std::shared_ptr<const ServerConfig>& cfg) {
  return Endpoint::server(cfg);
}
__attribute__((noipa)) Endpoint client_connect(ClientContext& cc) { return Endpoint::client(cc, "localhost"); }

// Moves every byte both ways (ciphertext fits: the bounds are larger than one flight).
void pump(Endpoint& a, Endpoint& b) {
  while (testing::move_bytes(a, b) | testing::move_bytes(b, a)) {
  }
}

// One connection: handshakes on both sides, then the client reads the ticket (TLS 1.3
// sends it after the handshake) and closes in order, so the session can be resumed.
// Returns 1 resumed, 0 full, -1 failed.
int connect_once(ClientContext& cc, const std::shared_ptr<const ServerConfig>& cfg) {
  Endpoint s = server_accept(cfg);
  Endpoint c = client_connect(cc);
  for (int i = 0; i < 16 && !(c.handshake_done() && s.handshake_done()); ++i) {
    client_handshake(c);
    pump(c, s);
    server_handshake(s);
    pump(c, s);
  }
  char buf[256];
  client_receive(c, buf, sizeof buf);
  c.shutdown();
  if (!c.handshake_done() || !s.handshake_done() || s.resumed() != c.resumed()) return -1;
  return s.resumed() ? 1 : 0;
}

int usage() {
  std::fprintf(stderr, "usage: tls_endpoint_cost echo SIZE N | full N [1.2] | resumed N [1.2|psk_ke]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3 || argc > 4) return usage();
  const std::string mode = argv[1];
  const std::string variant = mode != "echo" && argc == 4 ? argv[3] : "";
  const long n = std::atol(argv[2]);
  testing::Pki pki;
  ServerSettings ss;
  ss.certs = {{pki.server_cert, pki.server_key}};
  auto sctx = ServerContext::create(ss);
  ClientSettings cs;
  cs.ca_file = pki.ca;
  cs.resume = mode == "resumed";
  if (variant == "1.2") cs.max_version = Version::tls1_2;
  auto cctx = ClientContext::create(cs);
  if (!sctx || !cctx || n <= 0) return usage();
  auto cfg = (*sctx)->current();
  if (variant == "psk_ke") {
    SSL_CTX_set_options(cfg->ctx(), SSL_OP_ALLOW_NO_DHE_KEX);
    SSL_CTX_set_options((*cctx)->ctx(), SSL_OP_ALLOW_NO_DHE_KEX);
  }

  if (mode == "echo" && argc == 4) {
    const size_t size = size_t(std::atol(argv[2]));
    const long count = std::atol(argv[3]);
    std::string msg(size, 'e');
    std::string buf(size + 16384, '\0');
    Endpoint s = Endpoint::server(cfg);
    Endpoint c = Endpoint::client(**cctx, "localhost");
    testing::handshake(c, s);
    size_t back = 0;
    for (long i = 0; i < count; ++i) {
      client_send(c, msg.data(), msg.size());
      pump(c, s);
      server_echo(s, buf.data(), buf.size());
      pump(c, s);
      back += client_receive(c, buf.data(), buf.size());
    }
    std::printf("%ld echoes of %zu bytes, %zu bytes back, %s %s\n", count, size, back, s.version(), s.cipher());
    return back == size * size_t(count) ? 0 : 1;
  }
  if (mode == "full" || mode == "resumed") {
    if (cs.resume && connect_once(**cctx, cfg) != 0) return 1;  // the first ticket
    long resumed = 0;
    for (long i = 0; i < n; ++i) {
      int r = connect_once(**cctx, cfg);
      if (r < 0) return 1;
      resumed += r;
    }
    std::printf("%ld handshakes, %ld resumed, %s\n", n, resumed, variant.empty() ? "TLS 1.3" : variant.c_str());
    return resumed == (cs.resume ? n : 0) ? 0 : 1;
  }
  return usage();
}
