#pragma once
// The client side of TLS, for eco's clients (send, ping; bench later): what to trust, what
// to send, and the session kept from the last connection for resumption.
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "tls/ossl.h"
#include "tls/server_context.h"
#include "util/result.h"

namespace eco::tls {

struct ClientSettings {
  std::string ca_file;       // trust these CAs (PEM bundle); empty: the system's store
  bool insecure = false;     // do not verify the server's certificate or name
  std::string sni;           // send and verify this name instead of the host connected to
  std::string cert_file, key_file;  // a client certificate (mutual TLS)
  bool resume = false;       // offer the session of the last connection (ticket)
  Version min_version = Version::tls1_2;
  Version max_version = Version::tls1_3;
  std::vector<std::string> alpn;  // offered protocols; empty: no ALPN extension
};

Status validate(const ClientSettings& s);

class ClientContext {
 public:
  // Loads the CA, client certificate and key. Errors are one line naming the file.
  static Result<std::unique_ptr<ClientContext>> create(ClientSettings settings);
  ~ClientContext();

  SSL_CTX* ctx() const { return ctx_.get(); }
  const ClientSettings& settings() const { return settings_; }
  // The session the server gave on the last connection (null before one).
  bool has_session() const;
  void apply_session(SSL* ssl) const;  // offers it on a new connection
  void keep_session(SSL* ssl);          // the connection's session becomes the last one, if resumable
  void forget_session();

 private:
  ClientContext() = default;
  static int on_new_session(SSL* ssl, SSL_SESSION* sess);

  ClientSettings settings_;
  SslCtxPtr ctx_;
  mutable std::mutex mu_;
  SSL_SESSION* last_ = nullptr;  // owned (one reference)
};

}  // namespace eco::tls
