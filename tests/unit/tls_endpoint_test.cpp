// tls::Endpoint: a client and a server endpoint pumping ciphertext into each other in
// memory, for each thing the server stage relies on: versions, SNI, ALPN, resumption,
// client certificates, and every kind of bad peer, each ending with its own reason.
#include "tls/endpoint.h"

#include <gtest/gtest.h>
#include <openssl/ssl.h>

#include <string>

#include "tls_pair.h"

namespace eco::tls {
namespace {

using testing::Pki;

const Pki& pki() {
  static const Pki p;
  return p;
}

std::shared_ptr<const ServerConfig> server_config(ServerSettings s) {
  auto ctx = ServerContext::create(std::move(s));
  EXPECT_TRUE(ctx.ok()) << (ctx.ok() ? "" : ctx.error().message);
  return ctx.ok() ? (*ctx)->current() : nullptr;
}

ServerSettings with_cert() {
  ServerSettings s;
  s.certs = {{pki().server_cert, pki().server_key}};
  return s;
}

std::unique_ptr<ClientContext> client_ctx(ClientSettings s = {}) {
  if (s.ca_file.empty() && !s.insecure) s.ca_file = pki().ca;
  auto c = ClientContext::create(std::move(s));
  EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error().message);
  return c.ok() ? std::move(*c) : nullptr;
}

std::string peer_cn(const Endpoint& ep) { return ep.peer_subject(); }

std::string version_name(const ::testing::TestParamInfo<Version>& p) {
  return p.param == Version::tls1_3 ? "v1_3" : "v1_2";
}

class Versions : public ::testing::TestWithParam<Version> {};

TEST_P(Versions, HandshakeThenEchoBothWays) {
  auto cfg = server_config(with_cert());
  ClientSettings cs;
  cs.min_version = cs.max_version = GetParam();
  auto cc = client_ctx(cs);
  Endpoint c = Endpoint::client(*cc, "localhost");
  Endpoint s = Endpoint::server(cfg);
  testing::handshake(c, s);
  ASSERT_TRUE(c.handshake_done()) << c.error_text();
  ASSERT_TRUE(s.handshake_done()) << s.error_text();
  EXPECT_STREQ(s.version(), GetParam() == Version::tls1_3 ? "TLSv1.3" : "TLSv1.2");
  EXPECT_STREQ(c.version(), s.version());
  EXPECT_FALSE(s.resumed());
  EXPECT_EQ(s.sni(), "localhost");
  EXPECT_TRUE(s.sni_matched());
  EXPECT_EQ(testing::echo(c, s, std::string(64, 'x')), std::string(64, 'x'));
  std::string big(1 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = char(i * 131 + (i >> 9));
  EXPECT_EQ(testing::echo(c, s, big), big);  // many records, partial writes, compaction
}

INSTANTIATE_TEST_SUITE_P(Tls, Versions, ::testing::Values(Version::tls1_2, Version::tls1_3),
                         version_name);

TEST(TlsEndpoint, IpAddressIsVerifiedAndNotSentAsSni) {
  auto cfg = server_config(with_cert());
  auto cc = client_ctx();
  Endpoint c = Endpoint::client(*cc, "127.0.0.1");
  Endpoint s = Endpoint::server(cfg);
  testing::handshake(c, s);
  ASSERT_TRUE(s.handshake_done()) << c.error_text() << s.error_text();
  EXPECT_EQ(s.sni(), "");
}

TEST(TlsEndpoint, SniSelectsTheCertificate) {
  ServerSettings ss = with_cert();
  ss.certs.push_back({pki().named_cert, pki().named_key});
  auto cfg = server_config(ss);
  auto cc_named = client_ctx({.sni = "other.test"});
  auto cc_wild = client_ctx({.sni = "a.wild.test"});
  auto cc_plain = client_ctx();
  for (auto* cc : {cc_named.get(), cc_wild.get()}) {
    Endpoint c = Endpoint::client(*cc, "127.0.0.1");
    Endpoint s = Endpoint::server(cfg);
    testing::handshake(c, s);
    ASSERT_TRUE(c.handshake_done()) << cc->settings().sni << ": " << c.error_text();
    EXPECT_EQ(s.sni(), cc->settings().sni);
    EXPECT_TRUE(s.sni_matched());
    EXPECT_EQ(peer_cn(c), "CN=other.test,O=eco");
  }
  Endpoint c = Endpoint::client(*cc_plain, "localhost");
  Endpoint s = Endpoint::server(cfg);
  testing::handshake(c, s);
  ASSERT_TRUE(c.handshake_done()) << c.error_text();
  EXPECT_EQ(peer_cn(c), "CN=localhost,O=eco");  // the default (first) certificate
}

TEST(TlsEndpoint, UnknownSniGetsTheDefaultCertificateOrIsRefused) {
  auto insecure = client_ctx({.insecure = true, .sni = "nobody.test"});
  {
    Endpoint c = Endpoint::client(*insecure, "127.0.0.1");
    Endpoint s = Endpoint::server(server_config(with_cert()));
    testing::handshake(c, s);
    ASSERT_TRUE(s.handshake_done()) << s.error_text();
    EXPECT_FALSE(s.sni_matched());
    EXPECT_EQ(peer_cn(c), "CN=localhost,O=eco");
  }
  ServerSettings strict = with_cert();
  strict.unknown_sni = UnknownSni::refuse;
  Endpoint c = Endpoint::client(*insecure, "127.0.0.1");
  Endpoint s = Endpoint::server(server_config(strict));
  testing::handshake(c, s);
  EXPECT_EQ(s.reason(), Reason::unknown_sni);
  EXPECT_EQ(c.reason(), Reason::peer_alert) << c.error_text();
  EXPECT_NE(c.error_text().find("unrecognized name"), std::string::npos) << c.error_text();
}

TEST(TlsEndpoint, AlpnPicksOursFirstAndRefusesNoOverlap) {
  ServerSettings ss = with_cert();
  ss.alpn = {"h2", "http/1.1"};
  auto cfg = server_config(ss);
  auto both = client_ctx({.alpn = {"http/1.1", "h2"}});
  auto none_shared = client_ctx({.alpn = {"spdy/3"}});
  auto no_alpn = client_ctx();
  {
    Endpoint c = Endpoint::client(*both, "localhost");
    Endpoint s = Endpoint::server(cfg);
    testing::handshake(c, s);
    EXPECT_EQ(s.alpn(), "h2");
    EXPECT_EQ(c.alpn(), "h2");
  }
  {
    Endpoint c = Endpoint::client(*no_alpn, "localhost");
    Endpoint s = Endpoint::server(cfg);
    testing::handshake(c, s);
    EXPECT_TRUE(s.handshake_done()) << s.error_text();
    EXPECT_EQ(s.alpn(), "");
  }
  Endpoint c = Endpoint::client(*none_shared, "localhost");
  Endpoint s = Endpoint::server(cfg);
  testing::handshake(c, s);
  EXPECT_EQ(s.reason(), Reason::alpn_mismatch);
  EXPECT_EQ(c.reason(), Reason::peer_alert);
}

// A full handshake, an echo (TLS 1.3 tickets arrive after the handshake), then a new
// connection that offers the ticket. Returns whether it was resumed.
bool resume_once(ClientContext& cc, const std::shared_ptr<const ServerConfig>& cfg) {
  Endpoint c = Endpoint::client(cc, "localhost");
  Endpoint s = Endpoint::server(cfg);
  testing::handshake(c, s);
  EXPECT_EQ(testing::echo(c, s, "ping"), "ping");
  EXPECT_TRUE(c.handshake_done() && s.handshake_done()) << c.error_text() << s.error_text();
  // An orderly close: OpenSSL never offers a session whose connection ended without one.
  EXPECT_EQ(c.shutdown().status, Io::ok);
  return s.resumed() && c.resumed();
}

class Resumption : public ::testing::TestWithParam<Version> {};

TEST_P(Resumption, TicketResumesAndSurvivesRotationAndReload) {
  auto ctx = ServerContext::create(with_cert());
  ASSERT_TRUE(ctx.ok());
  ClientSettings cs{.resume = true};
  cs.min_version = cs.max_version = GetParam();
  auto cc = client_ctx(cs);
  EXPECT_FALSE(resume_once(*cc, (*ctx)->current()));  // no session yet: full
  ASSERT_TRUE(cc->has_session());
  EXPECT_TRUE(resume_once(*cc, (*ctx)->current()));
  (*ctx)->ticket_keys().rotate();  // the ticket's key is now the previous one: still opens
  EXPECT_TRUE(resume_once(*cc, (*ctx)->current()));
  ASSERT_TRUE((*ctx)->reload().ok());  // a new SSL_CTX, the same ticket keys
  EXPECT_TRUE(resume_once(*cc, (*ctx)->current()));
  for (int i = 0; i < 3; ++i) (*ctx)->ticket_keys().rotate();  // three rotations: every key we knew is gone
  EXPECT_FALSE(resume_once(*cc, (*ctx)->current()));
  EXPECT_TRUE(resume_once(*cc, (*ctx)->current()));  // the full handshake brought a fresh ticket
}

INSTANTIATE_TEST_SUITE_P(Tls, Resumption, ::testing::Values(Version::tls1_2, Version::tls1_3),
                         version_name);

class ClientCerts : public ::testing::TestWithParam<Version> {
 protected:
  // Handshake (and one echo, where TLS 1.3 reports the server's verdict to the client).
  void run(ClientAuth auth, const std::string& cert, const std::string& key) {
    ServerSettings ss = with_cert();
    ss.client_ca = pki().ca;
    ss.client_auth = auth;
    ClientSettings cs{.cert_file = cert, .key_file = key};
    cs.min_version = cs.max_version = GetParam();
    cc_ = client_ctx(cs);
    c_ = std::make_unique<Endpoint>(Endpoint::client(*cc_, "localhost"));
    s_ = std::make_unique<Endpoint>(Endpoint::server(server_config(ss)));
    testing::handshake(*c_, *s_);
    testing::echo(*c_, *s_, "hello");
  }
  std::unique_ptr<ClientContext> cc_;
  std::unique_ptr<Endpoint> c_, s_;
};

TEST_P(ClientCerts, TrustedCertificateIsAcceptedAndItsSubjectKnown) {
  run(ClientAuth::require, pki().client_cert, pki().client_key);
  ASSERT_TRUE(s_->handshake_done()) << s_->error_text();
  EXPECT_EQ(s_->reason(), Reason::none);
  EXPECT_TRUE(s_->peer_has_cert());
  EXPECT_EQ(s_->peer_subject(), "CN=test client,O=eco");
}

TEST_P(ClientCerts, MissingCertificateIsRefusedWhenRequired) {
  run(ClientAuth::require, "", "");
  EXPECT_EQ(s_->reason(), Reason::client_cert_missing) << s_->error_text();
  EXPECT_EQ(c_->reason(), Reason::peer_alert) << c_->error_text();
}

TEST_P(ClientCerts, MissingCertificateIsFineWhenOptional) {
  run(ClientAuth::optional, "", "");
  ASSERT_TRUE(s_->handshake_done()) << s_->error_text();
  EXPECT_EQ(s_->reason(), Reason::none);
  EXPECT_FALSE(s_->peer_has_cert());
}

TEST_P(ClientCerts, UntrustedCertificateIsRefusedEvenWhenOptional) {
  run(ClientAuth::optional, pki().stranger_cert, pki().stranger_key);
  EXPECT_EQ(s_->reason(), Reason::client_cert_untrusted) << s_->error_text();
  EXPECT_EQ(c_->reason(), Reason::peer_alert);
}

TEST_P(ClientCerts, ExpiredCertificateIsRefused) {
  run(ClientAuth::require, pki().expired_cert, pki().expired_key);
  EXPECT_EQ(s_->reason(), Reason::client_cert_expired) << s_->error_text();
  EXPECT_NE(s_->error_text().find("expired"), std::string::npos) << s_->error_text();
}

INSTANTIATE_TEST_SUITE_P(Tls, ClientCerts, ::testing::Values(Version::tls1_2, Version::tls1_3),
                         version_name);

TEST(TlsEndpoint, ServerCertificateFromAnUnknownCaOrForAnotherNameIsRefused) {
  auto cfg = server_config(with_cert());
  auto wrong_ca = client_ctx({.ca_file = pki().other_ca});
  auto right_ca = client_ctx();
  auto insecure = client_ctx({.insecure = true});
  struct Case {
    ClientContext* cc;
    const char* host;
    bool ok;
  } cases[] = {{wrong_ca.get(), "localhost", false}, {right_ca.get(), "elsewhere.test", false},
               {insecure.get(), "elsewhere.test", true}, {right_ca.get(), "::1", true}};
  for (const Case& k : cases) {
    Endpoint c = Endpoint::client(*k.cc, k.host);
    Endpoint s = Endpoint::server(cfg);
    testing::handshake(c, s);
    EXPECT_EQ(c.handshake_done(), k.ok) << k.host << ": " << c.error_text();
    if (!k.ok) {
      EXPECT_EQ(c.reason(), Reason::server_cert_untrusted) << k.host;
      EXPECT_NE(c.error_text().find("certificate verify failed"), std::string::npos) << c.error_text();
      EXPECT_EQ(s.reason(), Reason::peer_alert) << s.error_text();  // the client said why
    }
  }
}

TEST(TlsEndpoint, MinimumVersionRefusesOlderClients) {
  ServerSettings ss = with_cert();
  ss.min_version = Version::tls1_3;
  ClientSettings cs;
  cs.max_version = Version::tls1_2;
  auto cc = client_ctx(cs);
  Endpoint c = Endpoint::client(*cc, "localhost");
  Endpoint s = Endpoint::server(server_config(ss));
  testing::handshake(c, s);
  EXPECT_EQ(s.reason(), Reason::unsupported_version) << s.error_text();
}

TEST(TlsEndpoint, RenegotiationIsRefusedAndEndsTheConnection) {
  auto cc = client_ctx({.max_version = Version::tls1_2});
  Endpoint c = Endpoint::client(*cc, "localhost");
  Endpoint s = Endpoint::server(server_config(with_cert()));
  testing::handshake(c, s);
  ASSERT_TRUE(s.handshake_done());
  SSL_clear_options(c.ssl(), SSL_OP_NO_RENEGOTIATION);  // eco's client refuses too; this one asks
  ASSERT_EQ(SSL_renegotiate(c.ssl()), 1);
  SSL_do_handshake(c.ssl());  // writes the new ClientHello, in a record of the session
  testing::move_bytes(c, s);
  char buf[64];
  EXPECT_EQ(s.read(buf, sizeof buf).status, Io::error);
  EXPECT_EQ(s.reason(), Reason::renegotiation);
  EXPECT_GT(s.pending_output(), 0u);  // the no_renegotiation alert, for the engine to send
}

TEST(TlsEndpoint, PlaintextOrGarbageInsteadOfAClientHelloIsNotTls) {
  auto cfg = server_config(with_cert());
  for (std::string bad : {std::string("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), std::string("\x80\x2e\x01\x03\x01", 5),
                          std::string("\x16\x01garbage", 9), std::string("Hello world!")}) {
    Endpoint s = Endpoint::server(cfg);
    s.feed(bad.data(), bad.size());
    EXPECT_EQ(s.handshake().status, Io::error) << bad;
    EXPECT_EQ(s.reason(), Reason::not_tls) << bad;
    EXPECT_EQ(s.pending_output(), 0u) << "no TLS alert to a peer that does not speak TLS";
  }
  // A record header that looks like TLS but carries garbage: a handshake failure, no hang.
  Endpoint s = Endpoint::server(cfg);
  std::string junk("\x16\x03\x01\x00\x10" "0123456789abcdef", 21);
  s.feed(junk.data(), junk.size());
  EXPECT_EQ(s.handshake().status, Io::error);
  EXPECT_EQ(s.reason(), Reason::handshake_failed) << s.error_text();
}

TEST(TlsEndpoint, TruncatedHandshakeOrSilentPeerEndsAsHandshakeEof) {
  auto cfg = server_config(with_cert());
  auto cc = client_ctx();
  Endpoint c = Endpoint::client(*cc, "localhost");
  ASSERT_EQ(c.handshake().status, Io::want_input);
  std::string hello(c.output().data(), c.output().size());
  Endpoint s = Endpoint::server(cfg);
  s.feed(hello.data(), hello.size() / 2);
  EXPECT_EQ(s.handshake().status, Io::want_input);
  s.feed_eof();
  EXPECT_EQ(s.handshake().status, Io::error);
  EXPECT_EQ(s.reason(), Reason::handshake_eof);
  Endpoint silent = Endpoint::server(cfg);
  silent.feed_eof();
  EXPECT_EQ(silent.handshake().status, Io::error);
  EXPECT_EQ(silent.reason(), Reason::handshake_eof);
}

TEST(TlsEndpoint, RecordOverTheMaximumSizeIsRefused) {
  for (Version v : {Version::tls1_2, Version::tls1_3}) {
    auto cc = client_ctx({.min_version = v, .max_version = v});
    Endpoint c = Endpoint::client(*cc, "localhost");
    Endpoint s = Endpoint::server(server_config(with_cert()));
    testing::handshake(c, s);
    ASSERT_TRUE(s.handshake_done());
    // Application data claiming 18,433 bytes: one more than TLS 1.2 allows (2^14 + 2048).
    std::string rec("\x17\x03\x03\x48\x01", 5);
    rec += std::string(64, 'z');
    s.feed(rec.data(), rec.size());
    char buf[64];
    EXPECT_EQ(s.read(buf, sizeof buf).status, Io::error);
    EXPECT_EQ(s.reason(), Reason::record_too_large) << s.error_text();
  }
}

TEST(TlsEndpoint, CloseWithoutCloseNotifyIsToldApartFromAnOrderlyClose) {
  auto cfg = server_config(with_cert());
  auto cc = client_ctx();
  {
    Endpoint c = Endpoint::client(*cc, "localhost");
    Endpoint s = Endpoint::server(cfg);
    testing::handshake(c, s);
    ASSERT_EQ(testing::echo(c, s, "abc"), "abc");
    s.feed_eof();
    char buf[64];
    EXPECT_EQ(s.read(buf, sizeof buf).status, Io::error);
    EXPECT_EQ(s.reason(), Reason::no_close_notify);
  }
  // close_notify from the client: the server reads `closed`, and can still send (half-close).
  Endpoint c = Endpoint::client(*cc, "localhost");
  Endpoint s = Endpoint::server(cfg);
  testing::handshake(c, s);
  ASSERT_EQ(c.write("last", 4).bytes, 4u);
  ASSERT_EQ(c.shutdown().status, Io::ok);
  EXPECT_TRUE(c.close_notify_sent());
  testing::move_bytes(c, s);
  std::string got;
  EXPECT_EQ(testing::read_all(s, got).status, Io::closed);
  EXPECT_EQ(got, "last");
  EXPECT_TRUE(s.close_notify_received());
  ASSERT_EQ(s.write(got.data(), got.size()).bytes, 4u);
  ASSERT_EQ(s.shutdown().status, Io::ok);
  testing::move_bytes(s, c);
  std::string back;
  EXPECT_EQ(testing::read_all(c, back).status, Io::closed);
  EXPECT_EQ(back, "last");
}

TEST(TlsEndpoint, OutputAndInputStayWithinTheirBoundsWhenNobodyReads) {
  Limits lim{.input_cap = 8 << 10, .output_cap = 24 << 10};
  auto cc = client_ctx();
  Endpoint c = Endpoint::client(*cc, "localhost", lim);
  Endpoint s = Endpoint::server(server_config(with_cert()), lim);
  testing::handshake(c, s);
  ASSERT_TRUE(s.handshake_done());
  std::string chunk(4096, 'q');
  size_t accepted = 0;
  IoResult r;
  for (int i = 0; i < 1000; ++i) {  // 4 MiB offered; the peer never takes a byte
    r = s.write(chunk.data(), chunk.size());
    accepted += r.bytes;
    ASSERT_LE(s.pending_output(), lim.output_cap);
    if (r.status == Io::want_output) break;
  }
  EXPECT_EQ(r.status, Io::want_output);
  EXPECT_GT(accepted, lim.output_cap / 2);
  EXPECT_LT(accepted, lim.output_cap);
  // Draining lets writing go on.
  std::string sink(s.pending_output(), '\0');
  s.take_output(sink.data(), sink.size());
  EXPECT_EQ(s.write(chunk.data(), chunk.size()).bytes, chunk.size());
  // Input: a peer that floods ciphertext while nobody calls read() fills input_cap, no more.
  std::string flood(1 << 20, '\x17');
  size_t took = c.feed(flood.data(), flood.size());
  EXPECT_GT(took, 0u);
  EXPECT_LE(took, lim.input_cap);
  EXPECT_EQ(c.feed(flood.data(), flood.size()), 0u);
}

TEST(TlsEndpoint, ZeroCopyInputAndOutputViews) {
  auto cc = client_ctx();
  Endpoint c = Endpoint::client(*cc, "localhost");
  Endpoint s = Endpoint::server(server_config(with_cert()));
  for (int i = 0; i < 64 && !(c.handshake_done() && s.handshake_done()); ++i) {
    c.handshake();
    for (Endpoint* from : {&c, &s}) {
      Endpoint& to = from == &c ? s : c;
      auto out = from->output();
      auto space = to.input_space();
      size_t n = std::min(out.size(), space.size());
      std::copy_n(out.data(), n, space.data());
      to.commit_input(n);
      from->consume_output(n);
    }
    s.handshake();
  }
  EXPECT_TRUE(c.handshake_done() && s.handshake_done()) << c.error_text() << s.error_text();
  EXPECT_EQ(testing::echo(c, s, "views"), "views");
}

}  // namespace
}  // namespace eco::tls
