#pragma once
// The server side of the tls:// listeners: their certificates (given, or an ephemeral
// one for the listen names), the start-up lines that say what is served, SIGHUP's
// reload, and the TLS part of the exit summary.
#include <memory>
#include <string>
#include <vector>

#include "server/listeners.h"
#include "session/counters.h"
#include "tls/server_context.h"
#include "util/result.h"

namespace eco::server {

// The context for the tls:// endpoints (nullptr when there are none). Fails when the
// --tls-* flags were given without a tls:// listener, or a file cannot be used.
Result<std::unique_ptr<tls::ServerContext>> make_tls(const tls::ServerSettings& settings, bool flags_given,
                                                     const std::vector<Endpoint>& endpoints);

// SIGHUP: new handshakes take the reloaded certificates; a broken file keeps the old ones.
void reload_tls(tls::ServerContext& ctx);

// "; TLS: 3 handshake(s) (1 resumed), 2 failed (not_tls=2), 120 plaintext bytes echoed"
// (empty when nothing was served over TLS).
std::string tls_summary(const session::Counters& totals);

}  // namespace eco::server
