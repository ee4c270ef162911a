#include "tls/endpoint.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cctype>

#include <fmt/format.h>

#include "tls/cert.h"
#include "tls/client_context.h"
#include "tls/endpoint_state.h"
#include "tls/server_context.h"

namespace eco::tls {
namespace {

// ---- the memory BIO: OpenSSL reads ciphertext from State::in and writes to State::out ----

int bio_read(BIO* b, char* dst, int len) {
  auto* s = static_cast<Endpoint::State*>(BIO_get_data(b));
  BIO_clear_retry_flags(b);
  size_t n = s->in.pop(dst, size_t(std::max(len, 0)));
  if (n > 0) return int(n);
  if (s->in_eof) return 0;  // EOF: OpenSSL reports it (unexpected EOF, or after close_notify)
  BIO_set_retry_read(b);
  return -1;
}

int bio_write(BIO* b, const char* src, int len) {
  auto* s = static_cast<Endpoint::State*>(BIO_get_data(b));
  BIO_clear_retry_flags(b);
  size_t n = s->out.push(src, size_t(std::max(len, 0)));
  if (n > 0 || len == 0) return int(n);
  BIO_set_retry_write(b);  // the output bound is full: OpenSSL returns WANT_WRITE
  return -1;
}

long bio_ctrl(BIO* b, int cmd, long, void*) {
  auto* s = static_cast<Endpoint::State*>(BIO_get_data(b));
  switch (cmd) {
    case BIO_CTRL_FLUSH: return 1;
    case BIO_CTRL_PENDING: return long(s->in.size());
    case BIO_CTRL_WPENDING: return long(s->out.size());
    case BIO_CTRL_EOF: return s->in_eof && s->in.empty();
    default: return 0;
  }
}

BIO_METHOD* bio_method() {
  static BIO_METHOD* const m = [] {
    BIO_METHOD* bm = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "eco tls endpoint");
    BIO_meth_set_read(bm, bio_read);
    BIO_meth_set_write(bm, bio_write);
    BIO_meth_set_ctrl(bm, bio_ctrl);
    return bm;
  }();
  return m;
}

// Ciphertext bytes a record adds around its plaintext, at most: 5 header + 16 tag + 8
// explicit nonce (TLS 1.2 GCM) or 1 content type (TLS 1.3), rounded up.
constexpr size_t kRecordOverhead = 32;
constexpr size_t kMaxFragment = 16384;
// Room kept for what OpenSSL may write ahead of a record (a KeyUpdate, an alert).
constexpr size_t kWriteSlack = 128;

// The most plaintext whose records fit in `room` bytes of output.
size_t plaintext_fitting(size_t room) {
  if (room <= kWriteSlack + kRecordOverhead) return 0;
  size_t avail = room - kWriteSlack;
  size_t records = (avail + kMaxFragment + kRecordOverhead - 1) / (kMaxFragment + kRecordOverhead);
  return avail - records * kRecordOverhead;
}

std::string printable_prefix(std::span<const char> bytes) {
  std::string s;
  for (char c : bytes.subspan(0, std::min<size_t>(bytes.size(), 8)))
    s += std::isprint(static_cast<unsigned char>(c)) ? c : '.';
  return s;
}

bool is_ip_literal(const std::string& host) {
  unsigned char buf[16];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

std::unique_ptr<Endpoint::State> new_state(SSL_CTX* ctx, bool server, Limits limits) {
  auto st = std::make_unique<Endpoint::State>(server, limits);
  ERR_clear_error();
  st->ssl = ctx ? SSL_new(ctx) : nullptr;
  BIO* bio = st->ssl ? BIO_new(bio_method()) : nullptr;
  if (!bio) {
    st->failed = true;
    st->reason = Reason::internal;
    st->error_text = "cannot create a TLS connection: " + take_openssl_error("out of memory");
    return st;
  }
  BIO_set_data(bio, st.get());
  BIO_set_init(bio, 1);
  SSL_set_bio(st->ssl, bio, bio);  // one reference, owned by the SSL from here on
  SSL_set_app_data(st->ssl, st.get());
  return st;
}

}  // namespace

const char* io_name(Io io) {
  switch (io) {
    case Io::ok: return "ok";
    case Io::want_input: return "want_input";
    case Io::want_output: return "want_output";
    case Io::closed: return "closed";
    case Io::error: return "error";
  }
  return "?";
}

const char* reason_name(Reason r) {
  static constexpr const char* names[kReasonCount] = {
      "none", "not_tls", "handshake_eof", "handshake_failed", "unsupported_version", "unknown_sni",
      "alpn_mismatch", "client_cert_missing", "client_cert_untrusted", "client_cert_expired",
      "server_cert_untrusted", "peer_alert", "renegotiation", "record_too_large", "protocol_error",
      "no_close_notify", "internal"};
  return int(r) < kReasonCount ? names[int(r)] : "?";
}

int on_verify(int ok, X509_STORE_CTX* store) {
  if (ok) return ok;
  auto* ssl = static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  Endpoint::State* st = ssl ? state_of(ssl) : nullptr;
  if (st && st->callback_reason == Reason::none) {
    int err = X509_STORE_CTX_get_error(store);
    bool dates = err == X509_V_ERR_CERT_HAS_EXPIRED || err == X509_V_ERR_CERT_NOT_YET_VALID;
    st->callback_reason = !st->server ? Reason::server_cert_untrusted
                          : dates     ? Reason::client_cert_expired
                                      : Reason::client_cert_untrusted;
    st->callback_text = fmt::format("certificate verify failed: {}", X509_verify_cert_error_string(err));
  }
  return ok;
}

void on_info(const SSL* ssl, int where, int ret) {
  if ((where & SSL_CB_WRITE_ALERT) && (ret & 0xff) == SSL_AD_NO_RENEGOTIATION)
    if (Endpoint::State* st = state_of(ssl)) st->renegotiation = true;
}

Endpoint Endpoint::server(std::shared_ptr<const ServerConfig> config, Limits limits) {
  auto st = new_state(config ? config->ctx() : nullptr, true, limits);
  st->config = std::move(config);
  if (st->ssl) SSL_set_accept_state(st->ssl);
  return Endpoint(std::move(st));
}

Endpoint Endpoint::client(ClientContext& ctx, std::string_view host, Limits limits) {
  auto st = new_state(ctx.ctx(), false, limits);
  if (!st->ssl) return Endpoint(std::move(st));
  SSL_set_connect_state(st->ssl);
  const ClientSettings& cs = ctx.settings();
  std::string name = cs.sni.empty() ? std::string(host) : cs.sni;
  if (!name.empty() && name.front() == '[' && name.back() == ']') name = name.substr(1, name.size() - 2);
  bool ip = is_ip_literal(name);
  if (!ip && !name.empty()) {  // RFC 6066: SNI carries host names only, never addresses
    SSL_set_tlsext_host_name(st->ssl, name.c_str());
    st->sni = name;
  }
  if (!cs.insecure) {
    if (ip) X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(st->ssl), name.c_str());
    else SSL_set1_host(st->ssl, name.c_str());
  }
  if (cs.resume) {
    ctx.apply_session(st->ssl);
    st->client_ctx = &ctx;
  }
  return Endpoint(std::move(st));
}

Endpoint::Endpoint(std::unique_ptr<State> s) : st_(std::move(s)) {}
Endpoint::~Endpoint() {
  // A TLS 1.2 resumption that renews the ticket replaces the session without telling the
  // new-session callback: keep the connection's final session. OpenSSL refuses to offer a
  // session whose connection ended without our close_notify, so only those are kept.
  if (st_ && st_->client_ctx && st_->hs_done && !st_->failed && st_->shutdown_sent) st_->client_ctx->keep_session(st_->ssl);
}
Endpoint::Endpoint(Endpoint&&) noexcept = default;
Endpoint& Endpoint::operator=(Endpoint&&) noexcept = default;

size_t Endpoint::feed(const char* cipher, size_t n) { return st_->in.push(cipher, n); }
std::span<char> Endpoint::input_space() { return st_->in.writable(); }
void Endpoint::commit_input(size_t n) { st_->in.commit(n); }
void Endpoint::feed_eof() { st_->in_eof = true; }

size_t Endpoint::pending_output() const { return st_->out.size(); }
std::span<const char> Endpoint::output() const { return st_->out.readable(); }
void Endpoint::consume_output(size_t n) { st_->out.consume(n); }
size_t Endpoint::take_output(char* dst, size_t cap) { return st_->out.pop(dst, cap); }

namespace {

IoResult fail(Endpoint::State& s, Reason r, std::string text) {
  s.failed = true;
  s.reason = r;
  s.error_text = std::move(text);
  ERR_clear_error();
  return {Io::error, 0};
}

// Names the failure from what the callbacks saw and the first entry of OpenSSL's error queue.
IoResult classify(Endpoint::State& s, int ssl_error) {
  unsigned long e = ERR_peek_error();
  const char* text = e ? ERR_reason_error_string(e) : nullptr;
  std::string t = text ? text : "";
  if (s.callback_reason != Reason::none)
    return fail(s, s.callback_reason, s.callback_text.empty() ? t : s.callback_text);
  bool eof = (ssl_error == SSL_ERROR_SYSCALL && e == 0) ||
             (ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING);
  if (eof) {
    return s.hs_done ? fail(s, Reason::no_close_notify, "the peer closed the connection without close_notify")
                     : fail(s, Reason::handshake_eof, "the peer closed the connection during the handshake");
  }
  if (ERR_GET_LIB(e) == ERR_LIB_SSL) {
    int r = ERR_GET_REASON(e);
    switch (r) {
      case SSL_R_WRONG_VERSION_NUMBER:
      case SSL_R_HTTP_REQUEST:
      case SSL_R_HTTPS_PROXY_REQUEST:
      case SSL_R_UNKNOWN_PROTOCOL:
        return fail(s, s.hs_done ? Reason::protocol_error : Reason::not_tls, t);
      case SSL_R_ENCRYPTED_LENGTH_TOO_LONG:
      case SSL_R_PACKET_LENGTH_TOO_LONG:
      case SSL_R_DATA_LENGTH_TOO_LONG:
      case SSL_R_EXCESSIVE_MESSAGE_SIZE:
        return fail(s, Reason::record_too_large, t);
      case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
        return fail(s, Reason::client_cert_missing, "no client certificate (the server requires one)");
      case SSL_R_UNSUPPORTED_PROTOCOL:
      case SSL_R_NO_PROTOCOLS_AVAILABLE:
      case SSL_R_VERSION_TOO_LOW:
      case SSL_R_UNSUPPORTED_SSL_VERSION:
      case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
        return fail(s, Reason::unsupported_version, t);
      case SSL_R_NO_APPLICATION_PROTOCOL:
        return fail(s, Reason::alpn_mismatch, t);
      case SSL_R_CERTIFICATE_VERIFY_FAILED:
        return fail(s, s.server ? Reason::client_cert_untrusted : Reason::server_cert_untrusted, t);
      default:
        if (r > SSL_AD_REASON_OFFSET && r < SSL_AD_REASON_OFFSET + 256)
          return fail(s, Reason::peer_alert, fmt::format("the peer sent an alert: {}", t));
        break;
    }
  }
  if (ERR_GET_REASON(e) == ERR_R_MALLOC_FAILURE) return fail(s, Reason::internal, t);
  if (t.empty()) t = "TLS failure";
  return fail(s, s.hs_done ? Reason::protocol_error : Reason::handshake_failed, t);
}

IoResult after(Endpoint::State& s, int rc) {
  switch (SSL_get_error(s.ssl, rc)) {
    case SSL_ERROR_WANT_READ: return {Io::want_input, 0};
    case SSL_ERROR_WANT_WRITE: return {Io::want_output, 0};
    case SSL_ERROR_ZERO_RETURN: return {Io::closed, 0};
    default: return classify(s, SSL_get_error(s.ssl, rc));
  }
}

}  // namespace

IoResult Endpoint::handshake() {
  State& s = *st_;
  if (s.failed) return {Io::error, 0};
  if (s.hs_done) return {Io::ok, 0};
  if (s.server && !s.looks_like_tls) {
    // A ClientHello record starts 0x16 0x03. Anything else (plaintext, HTTP, an SSLv2 hello)
    // is refused at once, with no alert: the peer does not speak TLS.
    std::span<const char> in = s.in.readable();
    if (in.empty()) {
      if (s.in_eof) return fail(s, Reason::handshake_eof, "the peer closed the connection before its ClientHello");
      return {Io::want_input, 0};
    }
    if (in[0] != 0x16 || (in.size() >= 2 && in[1] != 0x03))
      return fail(s, Reason::not_tls, fmt::format("not a TLS ClientHello (the first bytes: '{}')", printable_prefix(in)));
    s.looks_like_tls = in.size() >= 2;
  }
  ERR_clear_error();
  int rc = SSL_do_handshake(s.ssl);
  if (rc == 1) {
    s.hs_done = true;
    return {Io::ok, 0};
  }
  return after(s, rc);
}

IoResult Endpoint::read(char* plain, size_t cap) {
  State& s = *st_;
  if (!s.hs_done || s.failed) {
    IoResult h = handshake();
    if (h.status != Io::ok) return h;
  }
  // No ERR_clear_error() here or in write() (it costs ~1,200 instructions, a sixth of a small
  // record): the thread's queue is empty on entry, since every outcome but an error leaves
  // it empty (SSL_get_error would have said SSL_ERROR_SSL) and fail() empties it.
  size_t n = 0;
  int rc = SSL_read_ex(s.ssl, plain, cap, &n);
  if (s.renegotiation) return fail(s, Reason::renegotiation, "the peer asked to renegotiate (refused)");
  if (rc == 1) return {Io::ok, n};
  return after(s, rc);
}

IoResult Endpoint::write(const char* plain, size_t n) {
  State& s = *st_;
  if (!s.hs_done || s.failed) {
    IoResult h = handshake();
    if (h.status != Io::ok) return h;
  }
  if (n == 0) return {Io::ok, 0};
  size_t chunk = s.retry_write ? std::min(s.retry_write, n) : std::min(n, plaintext_fitting(s.out.room()));
  if (chunk == 0) return {Io::want_output, 0};
  size_t written = 0;
  int rc = SSL_write_ex(s.ssl, plain, chunk, &written);
  if (rc == 1) {
    s.retry_write = 0;
    return {Io::ok, written};
  }
  IoResult r = after(s, rc);
  if (r.status == Io::want_output) s.retry_write = chunk;
  return r;
}

IoResult Endpoint::shutdown() {
  State& s = *st_;
  if (s.failed) return {Io::error, 0};
  if (s.shutdown_sent || !s.hs_done) return {Io::ok, 0};  // mid-handshake there is nothing to close
  ERR_clear_error();
  int rc = SSL_shutdown(s.ssl);
  if (rc >= 0) {
    s.shutdown_sent = true;
    return {Io::ok, 0};
  }
  return after(s, rc);
}

bool Endpoint::read_pending() const { return !st_->failed && (SSL_has_pending(st_->ssl) || !st_->in.empty()); }

bool Endpoint::handshake_done() const { return st_->hs_done; }
bool Endpoint::resumed() const { return st_->ssl && SSL_session_reused(st_->ssl); }
const char* Endpoint::version() const { return st_->ssl ? SSL_get_version(st_->ssl) : ""; }
const char* Endpoint::cipher() const {
  const SSL_CIPHER* c = st_->ssl ? SSL_get_current_cipher(st_->ssl) : nullptr;
  return c ? SSL_CIPHER_get_name(c) : "";
}
std::string_view Endpoint::sni() const {
  if (!st_->server) return st_->sni;
  const char* n = st_->ssl ? SSL_get_servername(st_->ssl, TLSEXT_NAMETYPE_host_name) : nullptr;
  return n ? std::string_view(n) : std::string_view();
}
bool Endpoint::sni_matched() const { return st_->sni_matched; }
std::string_view Endpoint::alpn() const {
  const unsigned char* p = nullptr;
  unsigned int len = 0;
  if (st_->ssl) SSL_get0_alpn_selected(st_->ssl, &p, &len);
  return p ? std::string_view(reinterpret_cast<const char*>(p), len) : std::string_view();
}
bool Endpoint::peer_has_cert() const { return st_->ssl && SSL_get0_peer_certificate(st_->ssl); }
std::string Endpoint::peer_subject() const {
  X509* c = st_->ssl ? SSL_get0_peer_certificate(st_->ssl) : nullptr;
  return c ? subject_of(c) : std::string();
}
bool Endpoint::close_notify_received() const {
  return st_->ssl && (SSL_get_shutdown(st_->ssl) & SSL_RECEIVED_SHUTDOWN);
}
bool Endpoint::close_notify_sent() const { return st_->shutdown_sent; }
Reason Endpoint::reason() const { return st_->reason; }
const std::string& Endpoint::error_text() const { return st_->error_text; }
SSL* Endpoint::ssl() const { return st_->ssl; }

}  // namespace eco::tls
