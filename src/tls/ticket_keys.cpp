#include "tls/ticket_keys.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cstring>

namespace eco::tls {
namespace {
int ex_index() {
  static const int idx = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return idx;
}
}  // namespace

TicketKeys::TicketKeys(std::chrono::seconds rotation) : rotation_(rotation) {
  std::lock_guard lock(mu_);
  rotate_locked(std::chrono::steady_clock::now());
}

void TicketKeys::rotate() {
  std::lock_guard lock(mu_);
  rotate_locked(std::chrono::steady_clock::now());
}

void TicketKeys::rotate_locked(std::chrono::steady_clock::time_point now) {
  for (size_t i = keys_.size() - 1; i > 0; --i) keys_[i] = keys_[i - 1];
  Key& k = keys_[0];
  // RAND_bytes only fails when the system's entropy source does; a ticket key that is not
  // random would be worse than none, so such a key is never used to seal.
  k.valid = RAND_bytes(k.name.data(), int(k.name.size())) == 1 && RAND_bytes(k.aes.data(), int(k.aes.size())) == 1 &&
            RAND_bytes(k.hmac.data(), int(k.hmac.size())) == 1;
  made_ = now;
}

void TicketKeys::install(SSL_CTX* ctx, TicketKeys* keys) {
  SSL_CTX_set_ex_data(ctx, ex_index(), keys);
  SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, &TicketKeys::callback);
  SSL_CTX_set_timeout(ctx, keys->lifetime_s());
}

int TicketKeys::callback(SSL* ssl, unsigned char* key_name, unsigned char* iv, EVP_CIPHER_CTX* cctx,
                         EVP_MAC_CTX* hctx, int enc) {
  auto* self = static_cast<TicketKeys*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ex_index()));
  return self ? self->seal_or_open(ssl, key_name, iv, cctx, hctx, enc) : -1;
}

// OpenSSL's contract: sealing returns 1 (or -1: no ticket); opening returns 0 (unknown key:
// full handshake), 1 (ok) or 2 (ok, but issue a fresh ticket). TLS 1.3 tickets are always
// renewed: OpenSSL's server sends none after a resumption otherwise, and clients use each
// ticket once (RFC 8446 C.4), so a client that reconnects would fall back to a full
// handshake every other time.
int TicketKeys::seal_or_open(SSL* ssl, unsigned char* key_name, unsigned char* iv, EVP_CIPHER_CTX* cctx,
                             EVP_MAC_CTX* hctx, int enc) {
  std::lock_guard lock(mu_);
  auto now = std::chrono::steady_clock::now();
  if (now - made_ >= rotation_) rotate_locked(now);
  const Key* key = nullptr;
  int found = 1;
  if (enc) {
    key = &keys_[0];
    if (!key->valid) return -1;
    std::memcpy(key_name, key->name.data(), key->name.size());
    if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(EVP_aes_256_cbc())) != 1) return -1;
  } else {
    for (size_t i = 0; i < keys_.size() && !key; ++i) {
      if (keys_[i].valid && std::memcmp(key_name, keys_[i].name.data(), keys_[i].name.size()) == 0) {
        key = &keys_[i];
        found = i == 0 && SSL_version(ssl) != TLS1_3_VERSION ? 1 : 2;
      }
    }
    if (!key) return 0;
  }
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, const_cast<unsigned char*>(key->hmac.data()), key->hmac.size()),
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0), OSSL_PARAM_construct_end()};
  if (EVP_MAC_CTX_set_params(hctx, params) != 1) return -1;
  int ok = enc ? EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), nullptr, key->aes.data(), iv)
               : EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), nullptr, key->aes.data(), iv);
  return ok == 1 ? found : -1;
}

}  // namespace eco::tls
