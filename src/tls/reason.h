#pragma once
// Why a TLS connection failed: a small closed set, usable as a metric label
// (eco_tls_handshakes_total{outcome="..."}) and in log lines.
#include <cstdint>

namespace eco::tls {

enum class Reason : uint8_t {
  none,
  not_tls,                 // the first bytes are not a TLS handshake record (plaintext, HTTP, garbage, SSLv2)
  handshake_eof,           // the peer closed before the handshake finished (truncated ClientHello, port scan)
  handshake_failed,        // any other handshake failure (no shared cipher or group, bad message, ...)
  unsupported_version,     // the peer's versions and ours do not overlap (--tls-min-version)
  unknown_sni,             // SNI names no certificate and the server refuses unknown names
  alpn_mismatch,           // the peer offered ALPN protocols, none of ours
  client_cert_missing,     // --tls-client-auth require and no certificate came
  client_cert_untrusted,   // a client certificate that does not verify against --tls-client-ca
  client_cert_expired,     // a client certificate outside its validity period
  server_cert_untrusted,   // client side: the server's certificate does not verify (CA or name)
  peer_alert,              // the peer ended the handshake with a fatal alert (e.g. it distrusts our certificate)
  renegotiation,           // the peer asked to renegotiate (refused: TLS 1.2 renegotiation is off)
  record_too_large,        // a record longer than TLS allows (2^14 + expansion)
  protocol_error,          // a bad record after the handshake (MAC failure, unexpected message)
  no_close_notify,         // the peer closed the TCP connection without close_notify (possible truncation)
  internal,                // out of memory or an OpenSSL failure that is not the peer's doing
};

inline constexpr int kReasonCount = int(Reason::internal) + 1;

// "not_tls", "client_cert_expired", ...: the enumerator's name.
const char* reason_name(Reason r);

}  // namespace eco::tls
