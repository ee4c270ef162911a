#pragma once
// The --tls-* flags as reusable pieces: the server set (for eco serve's tls:// listeners)
// and the client set (eco send, eco ping, eco bench). Each adds its flags to a
// CLI11 app and, once parsed, turns them into the settings src/tls takes, with the checks
// that make a bad combination a one-line usage error.
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "tls/client_context.h"
#include "tls/server_context.h"
#include "util/result.h"

namespace eco::cli {

class TlsServerFlags {
 public:
  // --tls-cert, --tls-key (repeatable, paired in order), --tls-write-cert, --tls-min-version,
  // --tls-alpn, --tls-client-ca, --tls-client-auth, --tls-unknown-sni,
  // --tls-handshake-timeout, --tls-max-handshakes; shown under "TLS" in --help.
  void add(CLI::App& app);
  // True when any of them was given (they need a tls:// listener).
  bool given() const;
  // After parsing: the settings, or why they do not go together.
  Result<tls::ServerSettings> settings() const;

 private:
  std::vector<CLI::Option*> opts_;
  std::vector<std::string> certs_, keys_, alpn_;
  std::string write_cert_, min_version_ = "1.2", client_ca_, client_auth_, unknown_sni_ = "default";
  std::string handshake_timeout_ = "10s";
  uint32_t max_handshakes_ = 1024;
};

class TlsClientFlags {
 public:
  // --tls-ca, --tls-insecure, --tls-sni, --tls-cert, --tls-key, and --tls-resume when the
  // command can use it (a command that makes one connection cannot).
  void add(CLI::App& app, bool with_resume);
  // True when any of them was given (they need a tls:// address).
  bool given() const;
  Result<tls::ClientSettings> settings() const;

 private:
  std::vector<CLI::Option*> opts_;
  tls::ClientSettings s_;
};

}  // namespace eco::cli
