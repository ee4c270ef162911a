#include "session/conn_log.h"

#include <fmt/format.h>

#include "util/log.h"

namespace eco::session {

void log_connected(const net::Address& peer) {
  if (!log::enabled(log::Level::info)) return;
  std::string p = peer.to_string();
  log::write(log::Level::info, "Connected by " + p, {{"event", "connect"}, {"peer", p}});
}

void log_closed(const net::Address& peer, const TcpSession& s, uint64_t now_ns, std::string_view why) {
  if (!log::enabled(log::Level::info)) return;
  std::string p = peer.to_string();
  double ms = double(now_ns - s.started_ns) / 1e6;
  std::string bytes = std::to_string(s.bytes_out);
  std::string dur = fmt::format("{:.3f}", ms);
  std::string msg = fmt::format("Closed {}: echoed {} bytes in {:.3f} ms{}{}", p, s.bytes_out, ms,
                                why.empty() ? "" : " (", why.empty() ? "" : std::string(why) + ")");
  log::write(log::Level::info, msg,
             {{"event", "close"}, {"peer", p}, {"bytes", bytes}, {"ms", dur}, {"reason", why}});
}

}  // namespace eco::session
