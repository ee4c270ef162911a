#pragma once
// The TLS row of the transport table: TCP underneath, a tls::Endpoint over it. The loop
// keeps every system call: ciphertext is received straight into the endpoint's
// input_space() and sent straight from its output(), so a round trip costs the same
// three system calls as plain TCP (epoll_wait, recv, send).
//
// Each connection slot owns a TlsLink (Link::session points at it) for the loop's
// lifetime; a new TCP connection gets a new endpoint in the same slot, which offers the
// context's last session when resumption is on.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bench/transport.h"
#include "net/address.h"
#include "tls/client_context.h"
#include "tls/endpoint.h"
#include "util/result.h"

namespace eco::bench {

// What every TLS connection of a run shares: the client context (thread-safe: each
// endpoint is one thread's, the last session sits behind the context's mutex) and the
// name SNI and verification use.
struct TlsTarget {
  tls::ClientContext* ctx = nullptr;
  std::string host;
};

struct TlsLink {
  const TlsTarget* target = nullptr;
  std::optional<tls::Endpoint> ep;
  size_t held = 0;       // plaintext the endpoint took whose ciphertext is not all sent yet
  bool drained = false;  // read: the last recv took all the socket had
  Handshake hs;
  std::string text;      // the last error, for IoResult::text
};

// One TlsLink per connection slot of a loop.
class TlsLinks {
 public:
  TlsLinks(const TlsTarget& target, uint32_t n) : links_(n) {
    for (TlsLink& l : links_) l.target = &target;
  }
  void* at(uint32_t k) { return &links_[k]; }

 private:
  std::vector<TlsLink> links_;
};

extern const Transport kTlsTransport;

// One connection made before the load starts, so a handshake that cannot succeed (an
// untrusted certificate, a server not speaking TLS) is one clear error at once instead
// of a run of failures; with resumption it also gets the first session ticket (one byte
// echoed, then close_notify), so even the first measured connection can resume.
Status probe_tls(const net::Address& target, const TlsTarget& t, double timeout_s);

}  // namespace eco::bench
