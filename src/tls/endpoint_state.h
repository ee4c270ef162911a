#pragma once
// What an Endpoint keeps, shared with the OpenSSL callbacks of the server and client
// contexts (they find it through SSL_get_app_data). Internal to src/tls.
#include <openssl/ssl.h>

#include <memory>
#include <string>

#include "tls/byte_queue.h"
#include "tls/endpoint.h"

namespace eco::tls {

struct Endpoint::State {
  State(bool is_server, Limits limits) : in(limits.input_cap), out(limits.output_cap), server(is_server) {}
  ~State() { SSL_free(ssl); }

  SSL* ssl = nullptr;
  ByteQueue in, out;  // ciphertext received / to send
  bool server;
  bool in_eof = false;
  bool hs_done = false;
  bool looks_like_tls = false;  // server: the first two bytes were a TLS handshake record's
  bool failed = false;
  bool sni_matched = false;
  bool renegotiation = false;   // we refused a renegotiation (the info callback saw our alert)
  bool shutdown_sent = false;
  size_t retry_write = 0;       // bytes of an SSL_write that must be retried (OpenSSL's rule)
  Reason callback_reason = Reason::none;  // what a callback (SNI, ALPN, verify) decided, before OpenSSL failed
  std::string callback_text;
  Reason reason = Reason::none;
  std::string error_text;
  std::string sni;  // client: the name sent
  std::shared_ptr<const ServerConfig> config;  // server: keeps the callbacks' data alive
  ClientContext* client_ctx = nullptr;         // client with resumption: where the session goes at the end
};

inline Endpoint::State* state_of(const SSL* ssl) { return static_cast<Endpoint::State*>(SSL_get_app_data(ssl)); }

// Certificate verification (both roles): records why a certificate was refused.
int on_verify(int ok, X509_STORE_CTX* store);
// Alerts we send: a no_renegotiation alert marks a refused renegotiation.
void on_info(const SSL* ssl, int where, int ret);

}  // namespace eco::tls
