#pragma once
// The books kept when an engine closes a TCP connection, the same on every engine: a
// policy reason set on it (--max-bytes, --idle-timeout, ...) is counted, logged at most
// once a second, and becomes the close reason; the close line is logged; and the
// connection's hold on Admission (its per-source count, or the PROXY pending slot) is
// released, exactly once.
#include <cstdint>

#include "net/address.h"
#include "session/admission.h"
#include "session/counters.h"
#include "session/tcp_session.h"

namespace eco::session {

// How much of Admission a connection holds.
enum class Admitted : uint8_t { none, pending, full };

constexpr uint8_t kNoReject = 0xff;  // Conn::reject when no policy reason is pending

// Clears `reject` and `admitted`.
// At the end of a drain, or at stop: every connection still open is closed through
// the engine's `close(slot, why)` and counted as cut (eco_connections_cut_at_stop_total).
template <class Conns, class Close>
void cut_remaining(Conns& conns, Counters& counters, bool draining, Close&& close) {
  for (uint32_t slot = 0; slot < conns.size(); ++slot) {
    if (conns[slot].fd < 0) continue;
    Counters::add(counters.cut_at_stop, 1);
    close(slot, draining ? "drain timeout" : "server stopping");
  }
}

void close_books(Admission& adm, Counters& counters, const net::Address& peer, const TcpSession& s,
                 uint64_t now_ns, uint8_t& reject, Admitted& admitted, const char* why);

}  // namespace eco::session
