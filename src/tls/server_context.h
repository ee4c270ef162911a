#pragma once
// The server side of TLS: settings (what the --tls-* flags fill), the immutable
// ServerConfig one generation of certificates makes (an SSL_CTX and what its callbacks
// read), and the ServerContext that holds the current generation and reloads it.
//
// Reload (SIGHUP): reload() builds a whole new ServerConfig from the same files; only when
// that succeeded does it replace the current one. New handshakes take the new config;
// every Endpoint holds a shared_ptr to the config it started with, so open connections
// keep theirs until they close. Session-ticket keys and the ephemeral certificate are
// kept across reloads (tickets stay valid; a client that trusts the written certificate
// keeps trusting it).
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "tls/cert.h"
#include "tls/ticket_keys.h"
#include "util/result.h"

namespace eco::tls {

enum class Version { tls1_2, tls1_3 };
enum class ClientAuth { none, optional, require };
// An SNI that names none of the certificates: serve the first (default) certificate, as
// most servers do (a client that checks names then refuses it itself), or refuse the
// handshake with an unrecognized_name alert (Reason::unknown_sni).
enum class UnknownSni { default_cert, refuse };

struct CertFiles {
  std::string cert, key;
};

struct ServerSettings {
  std::vector<CertFiles> certs;             // chosen by SNI; the first is the default. Empty: ephemeral
  std::vector<std::string> ephemeral_hosts; // names the ephemeral certificate covers besides localhost, 127.0.0.1, ::1
  std::string write_cert;                   // write the ephemeral certificate (PEM) here
  Version min_version = Version::tls1_2;
  std::vector<std::string> alpn;            // offered protocols in preference order; empty: no ALPN
  std::string client_ca;                    // CA bundle that client certificates must chain to
  ClientAuth client_auth = ClientAuth::none;
  UnknownSni unknown_sni = UnknownSni::default_cert;
  double handshake_timeout_s = 10;          // enforced by the connection stage, not here
  uint32_t max_handshakes = 1024;           // per loop thread, enforced by the connection stage; 0: no bound
  std::chrono::seconds ticket_rotation = std::chrono::hours(1);
};

// Checks that the settings make sense together (paired files, a CA for client auth, ...).
Status validate(const ServerSettings& s);

// One generation: immutable once built, shared by every Endpoint made from it.
class ServerConfig {
 public:
  ~ServerConfig();
  ServerConfig(const ServerConfig&) = delete;
  ServerConfig& operator=(const ServerConfig&) = delete;

  SSL_CTX* ctx() const { return ctx_.get(); }
  const std::vector<Credentials>& credentials() const { return creds_; }  // [0] is the default
  const ServerSettings& settings() const { return settings_; }
  bool ephemeral() const { return ephemeral_; }
  // The credentials for an SNI name (nullptr: none matches).
  const Credentials* find(std::string_view sni) const;

 private:
  friend class ServerContext;
  ServerConfig() = default;
  SslCtxPtr ctx_;
  std::vector<Credentials> creds_;
  ServerSettings settings_;
  std::shared_ptr<TicketKeys> tickets_;
  bool ephemeral_ = false;
};

class ServerContext {
 public:
  // Builds the first generation: loads the files, or generates the ephemeral certificate
  // (and writes it to settings.write_cert). Errors are one line naming the file and why.
  static Result<std::unique_ptr<ServerContext>> create(ServerSettings settings);

  // Rebuilds from the same files. On failure the current config stays and the error says why.
  // Safe to call from any thread.
  Status reload();

  std::shared_ptr<const ServerConfig> current() const;
  // Bumped by every successful reload: a relaxed load tells a loop its cached config is stale.
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }
  const ServerSettings& settings() const { return settings_; }
  TicketKeys& ticket_keys() { return *tickets_; }

 private:
  ServerContext() = default;
  Result<std::shared_ptr<const ServerConfig>> build() const;

  ServerSettings settings_;
  std::shared_ptr<TicketKeys> tickets_;
  std::shared_ptr<const Credentials> ephemeral_;  // kept across reloads
  mutable std::mutex mu_;
  std::shared_ptr<const ServerConfig> current_;
  std::atomic<uint64_t> generation_{0};
};

// One per loop thread: the current config at the cost of one atomic load per accept; the
// ServerContext's lock is taken only after a reload.
class ConfigCache {
 public:
  explicit ConfigCache(const ServerContext& ctx) : ctx_(&ctx) {}
  const std::shared_ptr<const ServerConfig>& get() {
    uint64_t g = ctx_->generation();
    if (!config_ || g != gen_) {
      config_ = ctx_->current();
      gen_ = g;
    }
    return config_;
  }

 private:
  const ServerContext* ctx_;
  uint64_t gen_ = 0;
  std::shared_ptr<const ServerConfig> config_;
};

}  // namespace eco::tls
