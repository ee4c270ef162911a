#pragma once
// The per-connection log lines every engine prints, so they read the same everywhere.
#include <cstdint>
#include <string_view>

#include "net/address.h"
#include "session/tcp_session.h"

namespace eco::session {

void log_connected(const net::Address& peer);
// `why` is empty for a normal close, else e.g. "connection reset by peer".
void log_closed(const net::Address& peer, const TcpSession& s, uint64_t now_ns, std::string_view why);

}  // namespace eco::session
