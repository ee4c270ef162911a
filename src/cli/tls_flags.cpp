#include "cli/tls_flags.h"

#include <fmt/format.h>

#include "util/units.h"

namespace eco::cli {

void TlsServerFlags::add(CLI::App& app) {
  const char* g = "TLS (tls:// listeners)";
  app.add_option("--tls-cert", certs_,
                 "Certificate (PEM, leaf then chain) for tls:// listeners; repeat with certificates for other "
                 "names, chosen by SNI (the first is the default). None: an ephemeral self-signed one")
      ->type_name("FILE")->group(g);
  app.add_option("--tls-key", keys_, "Private key (PEM) of the --tls-cert given in the same position")
      ->type_name("FILE")->group(g);
  app.add_option("--tls-write-cert", write_cert_,
                 "Write the ephemeral certificate (PEM) here, for clients to trust (--tls-ca FILE)")
      ->type_name("FILE")->group(g);
  app.add_option("--tls-min-version", min_version_, "Oldest TLS version accepted")
      ->check(CLI::IsMember({"1.2", "1.3"}))->default_str("1.2")->group(g);
  app.add_option("--tls-alpn", alpn_, "ALPN protocols offered, in preference order (comma-separated); default none")
      ->delimiter(',')->type_name("LIST")->group(g);
  app.add_option("--tls-client-ca", client_ca_, "CA bundle (PEM) that client certificates must chain to")
      ->type_name("FILE")->group(g);
  app.add_option("--tls-client-auth", client_auth_,
                 "Client certificates: none, optional (one that comes must verify) or require; "
                 "default require with --tls-client-ca, else none")
      ->check(CLI::IsMember({"none", "optional", "require"}))->group(g);
  app.add_option("--tls-unknown-sni", unknown_sni_,
                 "An SNI that names none of the certificates: serve the default one, or refuse the handshake")
      ->check(CLI::IsMember({"default", "refuse"}))->default_str("default")->group(g);
  app.add_option("--tls-handshake-timeout", handshake_timeout_, "Longest time a TLS handshake may take")
      ->type_name("DURATION")->default_str("10s")->group(g);  // checked by settings()
  app.add_option("--tls-max-handshakes", max_handshakes_,
                 "Most TLS handshakes in progress per thread (0: no bound); connections past it are "
                 "refused at once (counted as handshake_limit)")
      ->default_str("1024")->group(g);
  for (CLI::Option* o : app.get_options())
    if (o->get_group() == g) opts_.push_back(o);
}

bool TlsServerFlags::given() const {
  for (const CLI::Option* o : opts_)
    if (o->count() > 0) return true;
  return false;
}

Result<tls::ServerSettings> TlsServerFlags::settings() const {
  tls::ServerSettings s;
  if (certs_.size() != keys_.size())
    return Error{fmt::format("--tls-cert and --tls-key come in pairs: {} certificate{} and {} key{}", certs_.size(),
                             certs_.size() == 1 ? "" : "s", keys_.size(), keys_.size() == 1 ? "" : "s")};
  for (size_t i = 0; i < certs_.size(); ++i) s.certs.push_back({certs_[i], keys_[i]});
  s.write_cert = write_cert_;
  s.min_version = min_version_ == "1.3" ? tls::Version::tls1_3 : tls::Version::tls1_2;
  s.alpn = alpn_;
  s.client_ca = client_ca_;
  if (client_auth_.empty()) s.client_auth = client_ca_.empty() ? tls::ClientAuth::none : tls::ClientAuth::require;
  else if (client_auth_ == "optional") s.client_auth = tls::ClientAuth::optional;
  else if (client_auth_ == "require") s.client_auth = tls::ClientAuth::require;
  else if (!client_ca_.empty()) return Error{"--tls-client-ca needs --tls-client-auth optional or require, not none"};
  s.unknown_sni = unknown_sni_ == "refuse" ? tls::UnknownSni::refuse : tls::UnknownSni::default_cert;
  auto t = parse_duration(handshake_timeout_);
  if (!t) return Error{"--tls-handshake-timeout: " + t.error().message};
  s.handshake_timeout_s = *t;
  s.max_handshakes = max_handshakes_;
  if (auto v = tls::validate(s); !v) return v.error();
  return s;
}

void TlsClientFlags::add(CLI::App& app, bool with_resume) {
  const char* g = "TLS (tls:// addresses)";
  opts_.push_back(app.add_option("--tls-ca", s_.ca_file,
                                 "Trust the server certificates this CA bundle (PEM) signed; default: the system's CAs")
                      ->type_name("FILE")->group(g));
  opts_.push_back(app.add_flag("--tls-insecure", s_.insecure, "Do not verify the server's certificate or name")
                      ->group(g));
  opts_.push_back(app.add_option("--tls-sni", s_.sni,
                                 "Send this server name (SNI) and verify the certificate against it, "
                                 "instead of the host connected to")
                      ->type_name("NAME")->group(g));
  opts_.push_back(app.add_option("--tls-cert", s_.cert_file, "Client certificate (PEM) for servers that ask for one")
                      ->type_name("FILE")->group(g));
  opts_.push_back(app.add_option("--tls-key", s_.key_file, "Private key (PEM) of --tls-cert")
                      ->type_name("FILE")->group(g));
  if (with_resume) {
    opts_.push_back(app.add_flag("--tls-resume", s_.resume,
                                 "Resume a session: a first connection gets a ticket, the measured one offers it")
                        ->group(g));
  }
}

bool TlsClientFlags::given() const {
  for (const CLI::Option* o : opts_)
    if (o->count() > 0) return true;
  return false;
}

Result<tls::ClientSettings> TlsClientFlags::settings() const {
  if (auto v = tls::validate(s_); !v) return v.error();
  return s_;
}

}  // namespace eco::cli
