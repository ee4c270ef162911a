#pragma once
// Session-ticket keys that rotate. OpenSSL's built-in ticket key is made once per SSL_CTX
// and never changes (and a reload, which builds a new SSL_CTX, would drop every ticket
// issued). Here one TicketKeys outlives the contexts: a new key every `rotation`, tickets
// are sealed with the newest key, and the two before it still open tickets (which are then
// renewed), so a ticket stays valid for 2 to 3 rotations. The keys are random, in memory
// only: a restart starts over with full handshakes.
//
// Installed with SSL_CTX_set_tlsext_ticket_key_evp_cb (AES-256-CBC + HMAC-SHA256, as
// OpenSSL's own tickets). The callback takes a mutex: it runs once per handshake, never
// per record.
#include <openssl/ssl.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <mutex>

namespace eco::tls {

class TicketKeys {
 public:
  explicit TicketKeys(std::chrono::seconds rotation = std::chrono::hours(1));
  std::chrono::seconds rotation() const { return rotation_; }
  // Ticket lifetime to advertise (SSL_CTX_set_timeout): two rotations.
  long lifetime_s() const { return long(2 * rotation_.count()); }
  // Makes a new key now (tests; the callback rotates by time on its own).
  void rotate();
  // Installs the callback on ctx; `keys` must outlive ctx (it is stored as ex-data).
  static void install(SSL_CTX* ctx, TicketKeys* keys);

 private:
  struct Key {
    std::array<unsigned char, 16> name{};
    std::array<unsigned char, 32> aes{}, hmac{};
    bool valid = false;
  };
  static int callback(SSL* ssl, unsigned char* key_name, unsigned char* iv, EVP_CIPHER_CTX* cctx,
                      EVP_MAC_CTX* hctx, int enc);
  int seal_or_open(SSL* ssl, unsigned char* key_name, unsigned char* iv, EVP_CIPHER_CTX* cctx, EVP_MAC_CTX* hctx, int enc);
  void rotate_locked(std::chrono::steady_clock::time_point now);

  std::mutex mu_;
  std::chrono::seconds rotation_;
  std::chrono::steady_clock::time_point made_{};
  std::array<Key, 3> keys_{};  // [0] newest
};

}  // namespace eco::tls
