// tls::ServerContext and ClientContext: the ephemeral certificate, reload (new handshakes
// get the new files, open connections keep theirs, a broken file keeps the old ones), and
// the settings checks that become one-line usage errors.
#include "tls/server_context.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tls_pair.h"

namespace eco::tls {
namespace {

using testing::Pki;

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::unique_ptr<ClientContext> trusting(const std::string& ca, std::string sni = "") {
  ClientSettings cs;
  cs.ca_file = ca;
  cs.sni = std::move(sni);
  auto c = ClientContext::create(cs);
  EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error().message);
  return c.ok() ? std::move(*c) : nullptr;
}

TEST(TlsContext, EphemeralCertificateIsWrittenAndTrustedForLoopbackAndListenNames) {
  Pki pki;  // for its temporary directory
  ServerSettings ss;
  ss.write_cert = pki.path("eco.pem");
  ss.ephemeral_hosts = {"echo.example", "192.0.2.7"};
  auto ctx = ServerContext::create(ss);
  ASSERT_TRUE(ctx.ok()) << ctx.error().message;
  auto cfg = (*ctx)->current();
  ASSERT_TRUE(cfg->ephemeral());
  const Credentials& c = cfg->credentials().front();
  EXPECT_EQ(c.key_type, "ECDSA P-256");
  ASSERT_EQ(c.fingerprint.size(), 32u * 3 - 1) << c.fingerprint;  // "AB:CD:...", 32 bytes
  for (size_t i = 0; i < c.fingerprint.size(); ++i)
    EXPECT_TRUE(i % 3 == 2 ? c.fingerprint[i] == ':' : std::isxdigit(c.fingerprint[i]) && !std::islower(c.fingerprint[i]))
        << c.fingerprint;
  EXPECT_EQ(c.names, (std::vector<std::string>{"localhost", "127.0.0.1", "::1", "echo.example", "192.0.2.7"}));
  ASSERT_NE(slurp(ss.write_cert).find("-----BEGIN CERTIFICATE-----"), std::string::npos);
  auto written = load_certificates(ss.write_cert, "cert");
  ASSERT_TRUE(written.ok());
  EXPECT_EQ(fingerprint_sha256(written->front().get()), c.fingerprint);
  // A client that trusts the written file verifies every name it covers.
  for (const char* host : {"localhost", "127.0.0.1", "::1", "echo.example"}) {
    auto cc = trusting(ss.write_cert);
    Endpoint cl = Endpoint::client(*cc, host);
    Endpoint sv = Endpoint::server(cfg);
    testing::handshake(cl, sv);
    EXPECT_TRUE(cl.handshake_done()) << host << ": " << cl.error_text();
  }
  // A reload keeps the same ephemeral certificate (the written file stays valid).
  ASSERT_TRUE((*ctx)->reload().ok());
  EXPECT_EQ((*ctx)->current()->credentials().front().fingerprint, c.fingerprint);
}

TEST(TlsContext, ReloadSwapsForNewHandshakesKeepsOpenOnesAndSurvivesABrokenFile) {
  Pki pki;
  std::string cert = pki.path("live.pem"), key = pki.path("live.key");
  std::filesystem::copy_file(pki.server_cert, cert);
  std::filesystem::copy_file(pki.server_key, key);
  ServerSettings ss;
  ss.certs = {{cert, key}};
  auto ctx = ServerContext::create(ss);
  ASSERT_TRUE(ctx.ok()) << ctx.error().message;
  ConfigCache cache(**ctx);
  auto cc = trusting(pki.ca, "other.test");
  auto cc_insecure = ClientContext::create({.insecure = true});
  ASSERT_TRUE(cc_insecure.ok());

  Endpoint old_client = Endpoint::client(**cc_insecure, "localhost");
  Endpoint old_server = Endpoint::server(cache.get());
  testing::handshake(old_client, old_server);
  ASSERT_TRUE(old_server.handshake_done());
  uint64_t gen = (*ctx)->generation();

  // A broken file: the reload fails, says which file and why, and nothing changes.
  ASSERT_TRUE(write_file_atomically(cert, "not a certificate\n").ok());
  Status bad = (*ctx)->reload();
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find(cert), std::string::npos) << bad.error().message;
  EXPECT_EQ((*ctx)->generation(), gen);
  {
    Endpoint c = Endpoint::client(**cc_insecure, "localhost");
    Endpoint s = Endpoint::server(cache.get());
    testing::handshake(c, s);
    EXPECT_EQ(c.peer_subject(), "CN=localhost,O=eco");
  }
  // New files (another name): new handshakes get them; the open connection goes on.
  std::filesystem::copy_file(pki.named_cert, cert, std::filesystem::copy_options::overwrite_existing);
  std::filesystem::copy_file(pki.named_key, key, std::filesystem::copy_options::overwrite_existing);
  ASSERT_TRUE((*ctx)->reload().ok());
  EXPECT_EQ((*ctx)->generation(), gen + 1);
  Endpoint c = Endpoint::client(*cc, "127.0.0.1");
  Endpoint s = Endpoint::server(cache.get());
  testing::handshake(c, s);
  ASSERT_TRUE(c.handshake_done()) << c.error_text();
  EXPECT_EQ(c.peer_subject(), "CN=other.test,O=eco");
  EXPECT_EQ(testing::echo(old_client, old_server, "still here"), "still here");
}

TEST(TlsContext, FileErrorsNameTheFileAndTheReason) {
  Pki pki;
  auto missing = ServerContext::create({.certs = {{pki.path("nope.pem"), pki.server_key}}});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().message, "cannot read TLS certificate '" + pki.path("nope.pem") + "': No such file or directory");
  auto mismatch = ServerContext::create({.certs = {{pki.server_cert, pki.client_key}}});
  ASSERT_FALSE(mismatch.ok());
  EXPECT_EQ(mismatch.error().message,
            "TLS key '" + pki.client_key + "' does not match certificate '" + pki.server_cert + "'");
  auto key_as_cert = ServerContext::create({.certs = {{pki.server_key, pki.server_key}}});
  ASSERT_FALSE(key_as_cert.ok());
  EXPECT_NE(key_as_cert.error().message.find("holds no PEM certificate"), std::string::npos);
  auto bad_ca = ClientContext::create({.ca_file = pki.server_key});
  ASSERT_FALSE(bad_ca.ok());
  EXPECT_NE(bad_ca.error().message.find("TLS CA file"), std::string::npos) << bad_ca.error().message;
}

TEST(TlsContext, SettingsThatContradictEachOtherAreRefused) {
  EXPECT_FALSE(validate(ServerSettings{.certs = {{"a.pem", ""}}}).ok());
  EXPECT_FALSE(validate(ServerSettings{.certs = {{"a.pem", "a.key"}}, .write_cert = "out.pem"}).ok());
  EXPECT_FALSE(validate(ServerSettings{.client_auth = ClientAuth::require}).ok());
  EXPECT_FALSE(validate(ServerSettings{.alpn = {""}}).ok());
  EXPECT_FALSE(validate(ServerSettings{.handshake_timeout_s = 0}).ok());
  EXPECT_TRUE(validate(ServerSettings{.client_ca = "ca.pem", .client_auth = ClientAuth::optional}).ok());
  EXPECT_FALSE(validate(ClientSettings{.cert_file = "c.pem"}).ok());
  EXPECT_FALSE(validate(ClientSettings{.ca_file = "ca.pem", .insecure = true}).ok());
  EXPECT_FALSE(validate(ClientSettings{.min_version = Version::tls1_3, .max_version = Version::tls1_2}).ok());
}

TEST(TlsContext, WildcardsCoverOneLabelOnly) {
  std::vector<std::string> names{"*.wild.test", "exact.test"};
  EXPECT_TRUE(name_matches("a.wild.test", names));
  EXPECT_TRUE(name_matches("A.WILD.test", names));
  EXPECT_TRUE(name_matches("Exact.Test", names));
  EXPECT_FALSE(name_matches("wild.test", names));
  EXPECT_FALSE(name_matches("a.b.wild.test", names));
  EXPECT_FALSE(name_matches(".wild.test", names));
  EXPECT_FALSE(name_matches("other.test", names));
}

}  // namespace
}  // namespace eco::tls
