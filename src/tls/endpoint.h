#pragma once
// One TLS connection with no I/O (the nghttp2/wslay shape): the caller feeds it the
// ciphertext it received and sends the ciphertext it hands out; plaintext goes in and out
// through read() and write(). No sockets, no system calls: any engine can drive it, and
// tests pump two of them into each other in memory.
//
//   socket ──recv──▶ feed() / input_space()+commit_input()     read() ──▶ plaintext
//   socket ◀─send── output()+consume_output() / take_output()  write() ◀── plaintext
//
// Memory is bounded by construction (Limits): ciphertext not yet decrypted is at most
// input_cap bytes (feed() takes what fits), ciphertext not yet sent at most output_cap
// (write() accepts only the plaintext whose records fit; read() and handshake() stop with
// want_output when a record or alert they must write does not fit), plus OpenSSL's own
// per-connection record buffers (about 34 KiB with read-ahead, see docs/design.md).
// Plaintext is never buffered here: it is in the caller's buffer or not yet decrypted.
//
// Not thread-safe: one endpoint belongs to one loop thread. read() and write() rely on
// OpenSSL's per-thread error queue being empty when they are called (every endpoint call
// leaves it so); other OpenSSL calls on the same thread must leave it empty too.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "tls/reason.h"

typedef struct ssl_st SSL;

namespace eco::tls {

class ServerConfig;
class ClientContext;

enum class Io : uint8_t {
  ok,           // `bytes` moved (read: > 0 plaintext bytes; write: accepted, may be < n)
  want_input,   // feed more ciphertext, then call again
  want_output,  // send (consume) pending output, then call again
  closed,       // read: the peer sent close_notify; no more plaintext will come
  error,        // failed for good: reason(), error_text(); send pending output (the alert), then close
};
const char* io_name(Io io);

struct IoResult {
  Io status = Io::ok;
  size_t bytes = 0;
};

struct Limits {
  size_t input_cap = 32 << 10;   // two full records: a reader that keeps up never waits on this
  size_t output_cap = 64 << 10;  // a handshake flight with a long certificate chain fits at once
};

class Endpoint {
 public:
  // A server endpoint over a snapshot of the server's context (ServerContext::current()):
  // the snapshot lives as long as the endpoint, so a reload never touches open connections.
  // (An endpoint OpenSSL could not allocate fails its first call with Reason::internal.)
  static Endpoint server(std::shared_ptr<const ServerConfig> config, Limits limits = {});
  // A client endpoint. `host` is the name or address connected to: it is sent as SNI
  // (unless it is an IP address, or the context overrides SNI) and checked against the
  // server's certificate unless the context is insecure. The context must outlive it.
  static Endpoint client(ClientContext& ctx, std::string_view host, Limits limits = {});
  ~Endpoint();
  Endpoint(Endpoint&&) noexcept;
  Endpoint& operator=(Endpoint&&) noexcept;

  // ---- ciphertext in ----
  // Copies as much of [cipher, cipher+n) as fits in the input bound; returns how much.
  size_t feed(const char* cipher, size_t n);
  // Zero-copy form: receive straight into input_space(), then commit_input(bytes received).
  std::span<char> input_space();
  void commit_input(size_t n);
  // The transport reached EOF: no more ciphertext will come.
  void feed_eof();

  // ---- handshake and plaintext ----
  // Drives the handshake; ok once it is done. read() and write() drive it too, so a
  // server only needs handshake() to learn when it finished; a client calls it first
  // to produce its ClientHello.
  IoResult handshake();
  // Decrypts into [plain, plain+cap). Call it until it returns something other than ok:
  // plaintext may be left inside after a read that filled `cap` (read_pending()).
  IoResult read(char* plain, size_t cap);
  // Encrypts a prefix of [plain, plain+n): returns the bytes accepted (0 with want_output
  // when the output bound is full). After want_output, the next write() must start with the
  // same bytes (OpenSSL's retry rule; an echo buffer that keeps unsent bytes at its head
  // does so by itself).
  IoResult write(const char* plain, size_t n);
  // Queues close_notify (once). want_output: no room for it yet; call again after sending.
  IoResult shutdown();
  // True when read() may return plaintext without more ciphertext being fed.
  bool read_pending() const;

  // ---- ciphertext out ----
  size_t pending_output() const;
  std::span<const char> output() const;  // send straight from here, then consume_output()
  void consume_output(size_t n);
  size_t take_output(char* dst, size_t cap);  // copying form of output() + consume_output()

  // ---- state ----
  bool handshake_done() const;
  bool resumed() const;              // the session was resumed (ticket), no full handshake
  const char* version() const;       // "TLSv1.3", "TLSv1.2"
  const char* cipher() const;        // "TLS_AES_256_GCM_SHA384"
  std::string_view sni() const;      // server: what the client asked for; client: what was sent
  bool sni_matched() const;          // server: the SNI named one of our certificates
  std::string_view alpn() const;     // the protocol agreed, or empty
  bool peer_has_cert() const;
  std::string peer_subject() const;  // RFC 2253 form, "CN=client,O=eco"; empty without a certificate
  bool close_notify_received() const;
  bool close_notify_sent() const;
  Reason reason() const;             // none unless an Io::error was returned
  const std::string& error_text() const;  // one line for a person: "certificate verify failed: ..."

  SSL* ssl() const;  // for what this interface does not cover (tests, diagnostics)

  struct State;

 private:
  explicit Endpoint(std::unique_ptr<State> s);
  std::unique_ptr<State> st_;
};

}  // namespace eco::tls
