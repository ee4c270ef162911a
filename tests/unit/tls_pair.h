#pragma once
// Test and bench support for src/tls: a small PKI made at run time (a CA, server and
// client certificates, an expired one, one from a CA nobody trusts), written as PEM files
// to a temporary directory, and a pump that moves ciphertext between two Endpoints in
// memory.
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <string>

#include "tls/cert.h"
#include "tls/client_context.h"
#include "tls/endpoint.h"
#include "tls/server_context.h"

namespace eco::tls::testing {

struct Pki {
  std::string dir;
  std::string ca, other_ca;                        // CA certificate files
  std::string server_cert, server_key;             // localhost, 127.0.0.1, ::1
  std::string named_cert, named_key;               // other.test, *.wild.test
  std::string client_cert, client_key;             // CN=test client, signed by ca
  std::string expired_cert, expired_key;           // signed by ca, expired yesterday
  std::string stranger_cert, stranger_key;         // signed by other_ca

  Pki() {
    char tmpl[] = "/tmp/eco-tls-XXXXXX";
    if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp");
    dir = tmpl;
    Credentials ca_c = make({"eco test CA", {}, -3600, 86400L * 3650, true, false}, nullptr);
    Credentials other = make({"stranger CA", {}, -3600, 86400L * 3650, true, false}, nullptr);
    ca = save_cert("ca.pem", ca_c);
    other_ca = save_cert("other_ca.pem", other);
    save_pair("server", make({"localhost", {"localhost", "127.0.0.1", "::1"}, -3600, 86400, false, false}, &ca_c),
              server_cert, server_key);
    save_pair("named", make({"other.test", {"other.test", "*.wild.test"}, -3600, 86400, false, false}, &ca_c),
              named_cert, named_key);
    save_pair("client", make({"test client", {}, -3600, 86400, false, true}, &ca_c), client_cert, client_key);
    save_pair("expired", make({"expired client", {}, -2 * 86400, -86400, false, true}, &ca_c), expired_cert,
              expired_key);
    save_pair("stranger", make({"stranger", {}, -3600, 86400, false, true}, &other), stranger_cert, stranger_key);
  }
  ~Pki() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  Pki(const Pki&) = delete;
  Pki& operator=(const Pki&) = delete;

  std::string path(const std::string& name) const { return dir + "/" + name; }

  static Credentials make(const CertSpec& spec, const Credentials* issuer) {
    auto c = make_certificate(spec, issuer);
    if (!c) throw std::runtime_error(c.error().message);
    return std::move(*c);
  }
  std::string save_cert(const std::string& name, const Credentials& c) const {
    std::string p = path(name);
    if (!write_file_atomically(p, to_pem(c.cert.get()))) throw std::runtime_error("write " + p);
    return p;
  }
  void save_pair(const std::string& stem, const Credentials& c, std::string& cert, std::string& key) const {
    cert = save_cert(stem + ".pem", c);
    key = path(stem + ".key");
    if (!write_file_atomically(key, key_to_pem(c.key.get()))) throw std::runtime_error("write " + key);
  }
};

// Moves what `from` has to send into `to`, as much as `to` takes. True if a byte moved.
inline bool move_bytes(Endpoint& from, Endpoint& to) {
  auto out = from.output();
  if (out.empty()) return false;
  size_t n = to.feed(out.data(), out.size());
  from.consume_output(n);
  return n > 0;
}

// Drives both handshakes until both are done or either fails (bounded).
inline void handshake(Endpoint& client, Endpoint& server) {
  for (int i = 0; i < 64; ++i) {
    IoResult c = client.handshake();
    bool moved = move_bytes(client, server);
    IoResult s = server.handshake();
    moved |= move_bytes(server, client);
    if (c.status == Io::error || s.status == Io::error) {
      // Deliver the alert, as an engine would, and let the other side read it.
      move_bytes(client, server);
      move_bytes(server, client);
      char buf[256];
      if (c.status != Io::error) client.read(buf, sizeof buf);
      if (s.status != Io::error) server.read(buf, sizeof buf);
      return;
    }
    if (c.status == Io::ok && s.status == Io::ok && !moved) return;
  }
}

// Reads everything `ep` can give now into a string (stops on want_input / closed / error).
inline IoResult read_all(Endpoint& ep, std::string& out) {
  char buf[16384];
  for (;;) {
    IoResult r = ep.read(buf, sizeof buf);
    if (r.status != Io::ok) return r;
    out.append(buf, r.bytes);
  }
}

// Sends `msg` from a to b and back: b echoes what it reads. Returns what came back to a.
inline std::string echo(Endpoint& a, Endpoint& b, const std::string& msg) {
  std::string at_b, back;
  size_t sent = 0, echoed = 0;
  for (int i = 0; i < 100000 && back.size() < msg.size(); ++i) {
    if (sent < msg.size()) sent += a.write(msg.data() + sent, msg.size() - sent).bytes;
    move_bytes(a, b);
    if (read_all(b, at_b).status == Io::error) {
      move_bytes(b, a);  // b's alert reaches a
      read_all(a, back);
      break;
    }
    if (echoed < at_b.size()) echoed += b.write(at_b.data() + echoed, at_b.size() - echoed).bytes;
    move_bytes(b, a);
    if (read_all(a, back).status == Io::error) break;
  }
  return back;
}

}  // namespace eco::tls::testing
