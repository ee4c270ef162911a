#include "tls/server_context.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <fmt/format.h>

#include "tls/endpoint_state.h"

namespace eco::tls {
namespace {

// Mozilla's "intermediate" TLS 1.2 list without DHE: ECDHE + AEAD only (forward secrecy,
// no CBC). TLS 1.3: OpenSSL's three suites, AES-128-GCM first (the cheapest with AES-NI),
// ChaCha20 for clients that put it first (those without AES hardware).
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
constexpr const char* kTls13Suites = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
constexpr const char* kGroups = "X25519:P-256:P-384";
constexpr unsigned char kSessionIdContext[] = "eco";

int config_index() {
  static const int idx = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return idx;
}

const ServerConfig* config_of(SSL* ssl) {
  return static_cast<const ServerConfig*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), config_index()));
}

// Runs once per ClientHello, with or without an SNI extension: picks the certificate.
int on_servername(SSL* ssl, int* alert, void*) {
  const ServerConfig* cfg = config_of(ssl);
  Endpoint::State* st = state_of(ssl);
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (!cfg || !name) return SSL_TLSEXT_ERR_OK;  // no SNI: the default certificate
  const Credentials* c = cfg->find(name);
  if (st) st->sni_matched = c != nullptr;
  if (!c) {
    if (cfg->settings().unknown_sni == UnknownSni::default_cert) return SSL_TLSEXT_ERR_OK;
    if (st) st->callback_reason = Reason::unknown_sni;
    *alert = SSL_AD_UNRECOGNIZED_NAME;
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  if (c != &cfg->credentials().front() && SSL_use_cert_and_key(ssl, c->cert.get(), c->key.get(), c->chain.get(), 1) != 1) {
    *alert = SSL_AD_INTERNAL_ERROR;
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  return SSL_TLSEXT_ERR_OK;
}

int on_alpn(SSL* ssl, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned int inlen,
            void* arg) {
  const auto* wire = static_cast<const std::string*>(arg);
  unsigned char* selected = nullptr;
  // Our preference order wins; no overlap is fatal (RFC 7301 section 3.2).
  if (SSL_select_next_proto(&selected, outlen, reinterpret_cast<const unsigned char*>(wire->data()),
                            unsigned(wire->size()), in, inlen) != OPENSSL_NPN_NEGOTIATED) {
    if (Endpoint::State* st = state_of(ssl)) st->callback_reason = Reason::alpn_mismatch;
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

std::string alpn_wire(const std::vector<std::string>& protos) {
  std::string w;
  for (const std::string& p : protos) {
    w += char(p.size());
    w += p;
  }
  return w;
}

}  // namespace

Status validate(const ServerSettings& s) {
  for (const CertFiles& c : s.certs) {
    if (c.cert.empty() || c.key.empty()) return Error{"--tls-cert and --tls-key come in pairs (one key per certificate)"};
  }
  if (!s.certs.empty() && !s.write_cert.empty())
    return Error{"--tls-write-cert writes the generated certificate; with --tls-cert there is none (copy your file instead)"};
  if (s.client_auth != ClientAuth::none && s.client_ca.empty())
    return Error{"--tls-client-auth optional|require needs --tls-client-ca FILE (the CA client certificates must chain to)"};
  for (const std::string& p : s.alpn) {
    if (p.empty() || p.size() > 255) return Error{fmt::format("invalid ALPN protocol '{}' (1 to 255 bytes)", p)};
  }
  if (s.handshake_timeout_s <= 0) return Error{"--tls-handshake-timeout must be more than 0"};
  return {};
}

ServerConfig::~ServerConfig() = default;

const Credentials* ServerConfig::find(std::string_view sni) const {
  for (const Credentials& c : creds_)
    if (name_matches(sni, c.names)) return &c;
  return nullptr;
}

Result<std::unique_ptr<ServerContext>> ServerContext::create(ServerSettings settings) {
  if (auto s = validate(settings); !s) return s.error();
  std::unique_ptr<ServerContext> sc(new ServerContext);
  sc->settings_ = std::move(settings);
  sc->tickets_ = std::make_shared<TicketKeys>(sc->settings_.ticket_rotation);
  if (sc->settings_.certs.empty()) {
    auto eph = make_self_signed(sc->settings_.ephemeral_hosts);
    if (!eph) return eph.error();
    if (!sc->settings_.write_cert.empty()) {
      if (auto s = write_file_atomically(sc->settings_.write_cert, to_pem(eph->cert.get())); !s) return s.error();
    }
    sc->ephemeral_ = std::make_shared<Credentials>(std::move(*eph));
  }
  auto cfg = sc->build();
  if (!cfg) return cfg.error();
  sc->current_ = std::move(*cfg);
  sc->generation_.store(1, std::memory_order_release);
  return sc;
}

Status ServerContext::reload() {
  auto cfg = build();
  if (!cfg) return cfg.error();
  std::lock_guard lock(mu_);
  current_ = std::move(*cfg);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  return {};
}

std::shared_ptr<const ServerConfig> ServerContext::current() const {
  std::lock_guard lock(mu_);
  return current_;
}

Result<std::shared_ptr<const ServerConfig>> ServerContext::build() const {
  ERR_clear_error();
  std::shared_ptr<ServerConfig> cfg(new ServerConfig);
  cfg->settings_ = settings_;
  cfg->tickets_ = tickets_;
  if (ephemeral_) {
    // The same key and certificate in every generation; Credentials are not copyable, so
    // each generation holds its own references to them.
    Credentials c;
    X509_up_ref(ephemeral_->cert.get());
    c.cert.reset(ephemeral_->cert.get());
    EVP_PKEY_up_ref(ephemeral_->key.get());
    c.key.reset(ephemeral_->key.get());
    c.chain.reset(sk_X509_new_null());
    c.names = ephemeral_->names;
    c.fingerprint = ephemeral_->fingerprint;
    c.key_type = ephemeral_->key_type;
    c.not_after = ephemeral_->not_after;
    cfg->creds_.push_back(std::move(c));
    cfg->ephemeral_ = true;
  }
  for (const CertFiles& f : settings_.certs) {
    auto c = load_credentials(f.cert, f.key);
    if (!c) return c.error();
    cfg->creds_.push_back(std::move(*c));
  }

  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) return Error{"cannot create a TLS context: " + take_openssl_error()};
  cfg->ctx_.reset(ctx);
  SSL_CTX_set_min_proto_version(ctx, settings_.min_version == Version::tls1_3 ? TLS1_3_VERSION : TLS1_2_VERSION);
  SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                               SSL_OP_PRIORITIZE_CHACHA);
  // Partial writes and a moving buffer: write() can hand over whatever prefix fits.
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_read_ahead(ctx, 1);  // one input-buffer read per record batch, not two per record
  if (SSL_CTX_set_cipher_list(ctx, kTls12Ciphers) != 1 || SSL_CTX_set_ciphersuites(ctx, kTls13Suites) != 1 ||
      SSL_CTX_set1_groups_list(ctx, kGroups) != 1)
    return Error{"cannot set TLS ciphers: " + take_openssl_error()};
  // Stateless resumption only: tickets sealed with the rotating keys, no server-side cache.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_num_tickets(ctx, 1);
  SSL_CTX_set_session_id_context(ctx, kSessionIdContext, sizeof kSessionIdContext - 1);
  TicketKeys::install(ctx, tickets_.get());

  const Credentials& def = cfg->creds_.front();
  if (SSL_CTX_use_cert_and_key(ctx, def.cert.get(), def.key.get(), def.chain.get(), 1) != 1)
    return Error{fmt::format("cannot use TLS certificate '{}': {}", def.cert_file, take_openssl_error())};
  SSL_CTX_set_tlsext_servername_callback(ctx, on_servername);

  if (!settings_.alpn.empty()) {
    auto* wire = new std::string(alpn_wire(settings_.alpn));
    // The wire form lives as long as the context: freed with it through ex-data below.
    static const int alpn_idx = SSL_CTX_get_ex_new_index(
        0, nullptr, nullptr, nullptr, [](void*, void* p, CRYPTO_EX_DATA*, int, long, void*) {
          delete static_cast<std::string*>(p);
        });
    SSL_CTX_set_ex_data(ctx, alpn_idx, wire);
    SSL_CTX_set_alpn_select_cb(ctx, on_alpn, wire);
  }

  if (settings_.client_auth != ClientAuth::none) {
    auto cas = load_certificates(settings_.client_ca, "TLS client CA");
    if (!cas) return cas.error();
    X509_STORE* store = SSL_CTX_get_cert_store(ctx);
    STACK_OF(X509_NAME)* names = sk_X509_NAME_new_null();
    for (auto& ca : *cas) {
      X509_STORE_add_cert(store, ca.get());
      sk_X509_NAME_push(names, X509_NAME_dup(X509_get_subject_name(ca.get())));
    }
    ERR_clear_error();  // a duplicate certificate in the bundle is not an error
    SSL_CTX_set_client_CA_list(ctx, names);  // tells clients which CA to pick a certificate for
    int mode = SSL_VERIFY_PEER | (settings_.client_auth == ClientAuth::require ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0);
    SSL_CTX_set_verify(ctx, mode, on_verify);
  }
  SSL_CTX_set_info_callback(ctx, on_info);
  SSL_CTX_set_ex_data(ctx, config_index(), cfg.get());
  return std::shared_ptr<const ServerConfig>(std::move(cfg));
}

}  // namespace eco::tls
