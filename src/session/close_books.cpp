#include "session/close_books.h"

#include "session/conn_log.h"

namespace eco::session {

void close_books(Admission& adm, Counters& counters, const net::Address& peer, const TcpSession& s,
                 uint64_t now_ns, uint8_t& reject, Admitted& admitted, const char* why) {
  if (reject != kNoReject) {
    auto r = Reject(reject);
    reject = kNoReject;
    why = to_string(r);
    counters.reject(r);
    adm.log_reject(r, peer);
  }
  log_closed(peer, s, now_ns, why);
  if (admitted == Admitted::full) adm.release(peer);
  else if (admitted == Admitted::pending) adm.release_pending();
  admitted = Admitted::none;
}

}  // namespace eco::session
