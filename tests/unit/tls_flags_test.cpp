// The --tls-* flag sets: what each flag fills, the defaults, and the combinations that are
// one-line usage errors (eco serve gets the server set, send and ping the client set).
#include "cli/tls_flags.h"

#include <gtest/gtest.h>

namespace eco::cli {
namespace {

// Parses `args` (after the program name) with the server flags; the settings or the error.
Result<tls::ServerSettings> server(std::vector<std::string> args) {
  CLI::App app;
  TlsServerFlags flags;
  flags.add(app);
  std::reverse(args.begin(), args.end());
  app.parse(args);
  return flags.settings();
}

TEST(TlsServerFlags, DefaultsAreTheEphemeralCertificateAndTls12Up) {
  auto s = server({});
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_TRUE(s->certs.empty());
  EXPECT_EQ(s->min_version, tls::Version::tls1_2);
  EXPECT_TRUE(s->alpn.empty());
  EXPECT_EQ(s->client_auth, tls::ClientAuth::none);
  EXPECT_EQ(s->unknown_sni, tls::UnknownSni::default_cert);
  EXPECT_EQ(s->handshake_timeout_s, 10.0);
  EXPECT_EQ(s->max_handshakes, 1024u);
}

TEST(TlsServerFlags, EveryFlagFillsItsSetting) {
  auto s = server({"--tls-cert", "a.pem", "--tls-key", "a.key", "--tls-cert", "b.pem", "--tls-key", "b.key",
                   "--tls-min-version", "1.3", "--tls-alpn", "h2,http/1.1", "--tls-client-ca", "ca.pem",
                   "--tls-unknown-sni", "refuse", "--tls-handshake-timeout", "1500ms", "--tls-max-handshakes", "0"});
  ASSERT_TRUE(s.ok()) << s.error().message;
  ASSERT_EQ(s->certs.size(), 2u);
  EXPECT_EQ(s->certs[1].cert, "b.pem");
  EXPECT_EQ(s->certs[1].key, "b.key");
  EXPECT_EQ(s->min_version, tls::Version::tls1_3);
  EXPECT_EQ(s->alpn, (std::vector<std::string>{"h2", "http/1.1"}));
  EXPECT_EQ(s->client_auth, tls::ClientAuth::require);  // a client CA alone means require
  EXPECT_EQ(s->unknown_sni, tls::UnknownSni::refuse);
  EXPECT_DOUBLE_EQ(s->handshake_timeout_s, 1.5);
  EXPECT_EQ(s->max_handshakes, 0u);
  auto opt = server({"--tls-client-ca", "ca.pem", "--tls-client-auth", "optional", "--tls-write-cert", "out.pem"});
  ASSERT_TRUE(opt.ok()) << opt.error().message;
  EXPECT_EQ(opt->client_auth, tls::ClientAuth::optional);
  EXPECT_EQ(opt->write_cert, "out.pem");
}

TEST(TlsServerFlags, CombinationsThatMakeNoSenseAreOneLine) {
  struct Bad {
    std::vector<std::string> args;
    std::string message;
  } cases[] = {
      {{"--tls-cert", "a.pem"}, "--tls-cert and --tls-key come in pairs: 1 certificate and 0 keys"},
      {{"--tls-client-auth", "require"},
       "--tls-client-auth optional|require needs --tls-client-ca FILE (the CA client certificates must chain to)"},
      {{"--tls-client-ca", "ca.pem", "--tls-client-auth", "none"},
       "--tls-client-ca needs --tls-client-auth optional or require, not none"},
      {{"--tls-cert", "a.pem", "--tls-key", "a.key", "--tls-write-cert", "o.pem"},
       "--tls-write-cert writes the generated certificate; with --tls-cert there is none (copy your file instead)"},
  };
  for (const Bad& b : cases) {
    auto s = server(b.args);
    ASSERT_FALSE(s.ok()) << b.args[0];
    EXPECT_EQ(s.error().message, b.message);
  }
  EXPECT_THROW(server({"--tls-min-version", "1.1"}), CLI::ValidationError);
  auto soon = server({"--tls-handshake-timeout", "soon"});
  ASSERT_FALSE(soon.ok());
  EXPECT_EQ(soon.error().message.rfind("--tls-handshake-timeout: ", 0), 0u) << soon.error().message;
}

TEST(TlsClientFlags, FillTheClientSettingsAndKnowWhetherAnyWasGiven) {
  CLI::App app;
  TlsClientFlags flags;
  flags.add(app, true);
  app.parse(std::vector<std::string>{});
  EXPECT_FALSE(flags.given());
  CLI::App app2;
  TlsClientFlags f2;
  f2.add(app2, true);
  std::vector<std::string> args{"--tls-ca", "ca.pem", "--tls-sni", "echo.test", "--tls-cert", "c.pem", "--tls-key",
                                "c.key", "--tls-resume"};
  std::reverse(args.begin(), args.end());
  app2.parse(args);
  EXPECT_TRUE(f2.given());
  auto s = f2.settings();
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->ca_file, "ca.pem");
  EXPECT_EQ(s->sni, "echo.test");
  EXPECT_EQ(s->cert_file, "c.pem");
  EXPECT_EQ(s->key_file, "c.key");
  EXPECT_TRUE(s->resume);
  EXPECT_FALSE(s->insecure);
  // A one-connection command has no --tls-resume.
  CLI::App app3;
  TlsClientFlags f3;
  f3.add(app3, false);
  EXPECT_THROW(app3.parse(std::vector<std::string>{"--tls-resume"}), CLI::ExtrasError);
}

}  // namespace
}  // namespace eco::cli
