#include "server/inetd.h"

#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "util/exit_codes.h"
#include "util/log.h"

namespace eco::server {

int serve_inetd() {
  signal(SIGPIPE, SIG_IGN);  // a vanished peer is an error return, not a kill
  int listening = 0;
  socklen_t len = sizeof listening;
  if (getsockopt(STDIN_FILENO, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && listening) {
    log::error("--inetd: stdin is a listening socket, not a connection (systemd-socket-activate needs --accept)");
    return kExitUsage;
  }
  char buf[64 * 1024];
  uint64_t total = 0;
  for (;;) {
    ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == ECONNRESET) break;  // the peer's business, not a failure of ours
      log::error("inetd: read: {}", std::strerror(errno));
      return kExitMismatch;
    }
    for (ssize_t off = 0; off < n;) {
      ssize_t w = ::write(STDOUT_FILENO, buf + off, size_t(n - off));
      if (w < 0) {
        if (errno == EINTR) continue;
        if (errno == EPIPE || errno == ECONNRESET) return kExitOk;
        log::error("inetd: write: {}", std::strerror(errno));
        return kExitMismatch;
      }
      off += w;
    }
    total += uint64_t(n);
  }
  log::debug("inetd: echoed {} bytes", total);
  return kExitOk;
}

}  // namespace eco::server
