#pragma once
// The byte stream eco send and eco ping talk over: plain TCP, or TLS with a tls::Endpoint
// driven over the socket (the same endpoint the server stage uses). Like wrk's net.c, two
// rows of one small table; all calls are non-blocking and the caller polls fd().
#include <cstddef>
#include <memory>
#include <string>

#include "net/address.h"
#include "tls/client_context.h"
#include "util/fd.h"
#include "util/result.h"

namespace eco::client {

class Stream {
 public:
  virtual ~Stream() = default;
  int fd() const { return fd_.get(); }
  // Bytes taken (0: try again when fd() is writable).
  virtual Result<size_t> send(const char* p, size_t n) = 0;
  // Bytes received (0: nothing yet, or the end when `eof` is set).
  virtual Result<size_t> recv(char* p, size_t cap, bool& eof) = 0;
  // No more bytes will be sent: TCP's FIN, or TLS's close_notify.
  virtual Status shutdown_write() = 0;
  // Whether the peer goes on sending after shutdown_write(). TCP: yes (half-close). TLS: no
  // — TLS 1.2 makes close_notify the end of both directions (RFC 5246 7.2.1) and servers
  // such as gnutls-serv treat it so in TLS 1.3 too — so close_notify waits for the echo.
  virtual bool half_close() const { return true; }
  // Bytes the stream itself still has to write to the socket (poll for POLLOUT).
  virtual bool wants_write() const { return false; }
  // Bytes already received that recv() can return without waiting for the socket.
  virtual bool has_buffered() const { return false; }
  virtual Status flush() { return {}; }

 protected:
  explicit Stream(Fd fd) : fd_(std::move(fd)) {}
  Fd fd_;
};

std::unique_ptr<Stream> plain_stream(Fd fd);

struct TlsInfo {
  std::string version, cipher, alpn;
  bool resumed = false;
  double handshake_ms = 0;
  bool clean_close = true;  // false: the server closed without close_notify
};

// Runs the TLS handshake over a connected socket (waiting at most timeout_ms) and returns
// the stream. `peer` names the server in errors; `host` is what SNI and verification use.
// Errors say what failed and what to try ("certificate verify failed: ... (--tls-ca FILE
// or --tls-insecure)").
Result<std::unique_ptr<Stream>> tls_stream(Fd fd, tls::ClientContext& ctx, const std::string& host,
                                           const std::string& peer, int timeout_ms, TlsInfo& info);

// The TLS context a target needs: null for a plain one. Usage errors: --tls-* flags with an
// address that is not tls://, --udp with one that is, unreadable certificate files.
Result<std::unique_ptr<tls::ClientContext>> tls_for_target(const net::HostPort& hp, bool udp,
                                                            const tls::ClientSettings& settings, bool flags_given);

}  // namespace eco::client
