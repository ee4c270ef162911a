#include "tls/client_context.h"

#include <openssl/err.h>

#include <fmt/format.h>

#include "tls/cert.h"
#include "tls/endpoint_state.h"

namespace eco::tls {
namespace {
int ctx_index() {
  static const int idx = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return idx;
}
int version_number(Version v) { return v == Version::tls1_3 ? TLS1_3_VERSION : TLS1_2_VERSION; }
}  // namespace

Status validate(const ClientSettings& s) {
  if (s.cert_file.empty() != s.key_file.empty())
    return Error{"--tls-cert and --tls-key go together (a client certificate needs its key)"};
  if (s.insecure && !s.ca_file.empty()) return Error{"--tls-insecure and --tls-ca contradict each other (pick one)"};
  if (version_number(s.min_version) > version_number(s.max_version)) return Error{"TLS minimum version above the maximum"};
  return {};
}

Result<std::unique_ptr<ClientContext>> ClientContext::create(ClientSettings settings) {
  if (auto s = validate(settings); !s) return s.error();
  std::unique_ptr<ClientContext> cc(new ClientContext);
  cc->settings_ = std::move(settings);
  const ClientSettings& s = cc->settings_;
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx) return Error{"cannot create a TLS context: " + take_openssl_error()};
  cc->ctx_.reset(ctx);
  SSL_CTX_set_min_proto_version(ctx, version_number(s.min_version));
  SSL_CTX_set_max_proto_version(ctx, version_number(s.max_version));
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_read_ahead(ctx, 1);

  if (s.insecure) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  } else {
    if (!s.ca_file.empty()) {
      auto cas = load_certificates(s.ca_file, "TLS CA file");
      if (!cas) return cas.error();
      X509_STORE* store = SSL_CTX_get_cert_store(ctx);
      for (auto& ca : *cas) X509_STORE_add_cert(store, ca.get());
      ERR_clear_error();
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
      return Error{"cannot load the system's CA certificates: " + take_openssl_error()};
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, on_verify);
  }
  if (!s.cert_file.empty()) {
    auto c = load_credentials(s.cert_file, s.key_file);
    if (!c) return c.error();
    if (SSL_CTX_use_cert_and_key(ctx, c->cert.get(), c->key.get(), c->chain.get(), 1) != 1)
      return Error{fmt::format("cannot use TLS certificate '{}': {}", s.cert_file, take_openssl_error())};
  }
  if (!s.alpn.empty()) {
    std::string wire;
    for (const std::string& p : s.alpn) {
      if (p.empty() || p.size() > 255) return Error{fmt::format("invalid ALPN protocol '{}' (1 to 255 bytes)", p)};
      wire += char(p.size());
      wire += p;
    }
    if (SSL_CTX_set_alpn_protos(ctx, reinterpret_cast<const unsigned char*>(wire.data()), unsigned(wire.size())) != 0)
      return Error{"cannot set ALPN: " + take_openssl_error()};
  }
  // Sessions (TLS 1.3 tickets arrive after the handshake) are kept here, not in OpenSSL's cache.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(ctx, on_new_session);
  SSL_CTX_set_ex_data(ctx, ctx_index(), cc.get());
  SSL_CTX_set_info_callback(ctx, on_info);
  return cc;
}

ClientContext::~ClientContext() { SSL_SESSION_free(last_); }

int ClientContext::on_new_session(SSL* ssl, SSL_SESSION* sess) {
  auto* self = static_cast<ClientContext*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctx_index()));
  if (!self) return 0;
  std::lock_guard lock(self->mu_);
  SSL_SESSION_free(self->last_);
  self->last_ = sess;
  return 1;  // we keep the reference OpenSSL gave us
}

bool ClientContext::has_session() const {
  std::lock_guard lock(mu_);
  return last_ != nullptr;
}

void ClientContext::apply_session(SSL* ssl) const {
  std::lock_guard lock(mu_);
  if (last_) SSL_set_session(ssl, last_);
}

void ClientContext::keep_session(SSL* ssl) {
  SSL_SESSION* sess = SSL_get1_session(ssl);
  if (!sess || !SSL_SESSION_is_resumable(sess)) {
    SSL_SESSION_free(sess);
    return;
  }
  std::lock_guard lock(mu_);
  SSL_SESSION_free(last_);
  last_ = sess;
}

void ClientContext::forget_session() {
  std::lock_guard lock(mu_);
  SSL_SESSION_free(last_);
  last_ = nullptr;
}

}  // namespace eco::tls
