// `eco send tls://` and `eco ping tls://` against TLS echo servers no one here wrote:
// gnutls-serv --echo (GnuTLS) and socat OPENSSL-LISTEN with cat behind it (OpenSSL), over
// TLS 1.2 and 1.3, trusting the server's CA, insecure, with the wrong CA, and with a client
// certificate the server requires. Certificates are made at test time; loopback only.
// gnutls-serv echoes line by line (nothing until a newline), so what is sent to it is
// lines of text, and ping (binary probes) runs against socat.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <thread>

#include "../unit/tls_pair.h"
#include "harness.h"
#include "outside_tls_server.h"

extern char** environ;

namespace eco::itest {
namespace {

using tls::testing::Pki;

// gnutls-serv --echo, or socat forking `cat` per connection, restricted to one version.
std::vector<std::string> server_args(const Case& c, uint16_t port, bool require_client_cert) {
  const Pki& p = pki();
  if (c.peer == Peer::gnutls) {
    std::vector<std::string> a{"gnutls-serv", "--echo", "--port", std::to_string(port), "--x509certfile",
                               p.server_cert, "--x509keyfile", p.server_key, "--priority",
                               std::string("NORMAL:-VERS-ALL:+VERS-TLS") + c.version};
    if (require_client_cert) a.insert(a.end(), {"--require-client-cert", "--verify-client-cert", "--x509cafile", p.ca});
    return a;
  }
  std::string v = std::string("TLS") + c.version;
  std::string listen = "OPENSSL-LISTEN:" + std::to_string(port) + ",bind=127.0.0.1,reuseaddr,fork,cert=" +
                       p.server_cert + ",key=" + p.server_key + ",min-version=" + v + ",max-version=" + v;
  listen += require_client_cert ? ",verify=1,cafile=" + p.ca : ",verify=0";
  return {"socat", listen, "SYSTEM:cat"};
}

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  return std::string(info.param.peer == Peer::gnutls ? "gnutls" : "socat") + "_v" +
         (info.param.version[2] == '3' ? "1_3" : "1_2");
}

// `n` bytes every echo server here gives back whole: printable lines ending in a newline.
std::string lines(size_t n, uint32_t seed) {
  std::string s = random_bytes(n, seed);
  for (size_t i = 0; i < n; ++i) s[i] = (i % 100 == 99 || i + 1 == n) ? '\n' : char('!' + (uint8_t(s[i]) % 90));
  return s;
}

class TlsClient : public ::testing::TestWithParam<Case> {
 protected:
  std::unique_ptr<OutsideServer> start(bool require_client_cert = false) {
    auto s = std::make_unique<OutsideServer>([&](uint16_t port) { return server_args(GetParam(), port, require_client_cert); });
    EXPECT_TRUE(s->up()) << "the outside TLS server did not start: " << s->log();
    return s;
  }
  std::string tls_version() const { return std::string("TLSv") + GetParam().version; }
};

TEST_P(TlsClient, SendVerifiesEveryEchoedByteWithTheServersCa) {
  auto srv = start();
  ASSERT_TRUE(srv->up());
  RunResult r = run_eco({"send", srv->addr(), "hello over tls\n", "--tls-ca", pki().ca});
  EXPECT_EQ(r.exit_code, 0) << r.err << srv->log();
  EXPECT_EQ(r.out, "Received: b'hello over tls\\n'\n");
  TempDir dir;
  std::string data = lines(3 << 20, 17);  // many records both ways, written and read at once
  ASSERT_TRUE(write_file(dir.file("in.bin"), data));
  r = run_eco({"send", srv->addr(), "--file", dir.file("in.bin"), "--tls-ca", pki().ca, "--raw"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(r.out == data) << "echo of " << r.out.size() << " bytes differs from the " << data.size() << " sent";
}

TEST_P(TlsClient, InsecureSkipsVerificationAndSniNamesTheCertificate) {
  auto srv = start();
  ASSERT_TRUE(srv->up());
  // The certificate is for localhost: with no trust at all only --tls-insecure gets through.
  RunResult r = run_eco({"send", srv->addr(), "x\n", "--tls-insecure"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  // Verification against another name than the address: --tls-sni.
  r = run_eco({"send", srv->addr(), "y\n", "--tls-ca", pki().ca, "--tls-sni", "localhost"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = run_eco({"send", srv->addr(), "z\n", "--tls-ca", pki().ca, "--tls-sni", "elsewhere.test"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("certificate verify failed"), std::string::npos) << r.err;
}

TEST_P(TlsClient, WrongCaFailsWithOneClearLine) {
  auto srv = start();
  ASSERT_TRUE(srv->up());
  for (std::string cmd : {"send", "ping"}) {
    std::vector<std::string> args{cmd, srv->addr(), "--tls-ca", pki().other_ca};
    if (cmd == "ping") args.insert(args.end(), {"-c", "1"});
    else args.push_back("x\n");
    RunResult r = run_eco(args);
    EXPECT_EQ(r.exit_code, 3) << cmd << ": " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_EQ(r.err.rfind("eco: TLS handshake with 127.0.0.1:", 0), 0u) << r.err;
    EXPECT_NE(r.err.find("certificate verify failed: unable to get local issuer certificate (trust its CA with "
                         "--tls-ca FILE, or --tls-insecure)"),
              std::string::npos)
        << r.err;
  }
}

TEST_P(TlsClient, ClientCertificateRequiredByTheServer) {
  auto srv = start(true);
  ASSERT_TRUE(srv->up());
  RunResult ok = run_eco({"send", srv->addr(), "mutual\n", "--tls-ca", pki().ca, "--tls-cert", pki().client_cert,
                          "--tls-key", pki().client_key});
  EXPECT_EQ(ok.exit_code, 0) << ok.err << srv->log();
  EXPECT_EQ(ok.out, "Received: b'mutual\\n'\n");
  RunResult none = run_eco({"send", srv->addr(), "mutual\n", "--tls-ca", pki().ca});
  EXPECT_EQ(none.exit_code, 3) << none.out;
  EXPECT_EQ(std::count(none.err.begin(), none.err.end(), '\n'), 1) << none.err;
  RunResult stranger = run_eco({"send", srv->addr(), "mutual\n", "--tls-ca", pki().ca, "--tls-cert",
                                pki().stranger_cert, "--tls-key", pki().stranger_key});
  EXPECT_EQ(stranger.exit_code, 3) << stranger.out;
  EXPECT_NE(stranger.err.find("alert"), std::string::npos) << stranger.err;
}

INSTANTIATE_TEST_SUITE_P(Peers, TlsClient,
                         ::testing::Values(Case{Peer::gnutls, "1.2"}, Case{Peer::gnutls, "1.3"},
                                           Case{Peer::socat, "1.2"}, Case{Peer::socat, "1.3"}),
                         case_name);

using TlsPing = TlsClient;

TEST_P(TlsPing, ReportsTheHandshakeApartFromTheRoundTrips) {
  auto srv = start();
  ASSERT_TRUE(srv->up());
  RunResult r = run_eco({"ping", srv->addr(), "-c", "3", "-i", "0.05", "--tls-ca", pki().ca});
  EXPECT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_NE(r.out.find("bytes per probe over " + tls_version() + ", connected in "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("TLS handshake "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("3 sent, 3 received, 0% loss"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("seq=2 time="), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(" + tls_version() + ", "), std::string::npos) << r.out;  // the summary's TLS line
  EXPECT_NE(r.out.find("rtt min/avg/max/mdev"), std::string::npos) << r.out;
}

TEST_P(TlsPing, ResumesTheSessionOfAFirstConnection) {
  auto srv = start();
  ASSERT_TRUE(srv->up());
  RunResult r = run_eco({"ping", srv->addr(), "-c", "1", "--tls-ca", pki().ca, "--tls-resume"});
  EXPECT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_NE(r.out.find("(resumed)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("the first connection's full handshake"), std::string::npos) << r.out;
}

INSTANTIATE_TEST_SUITE_P(Peers, TlsPing, ::testing::Values(Case{Peer::socat, "1.2"}, Case{Peer::socat, "1.3"}),
                         case_name);

TEST(TlsClientUsage, TlsFlagsAndAddressesThatDoNotGoTogether) {
  struct Bad {
    std::vector<std::string> args;
    std::string err;
  } cases[] = {
      {{"send", "127.0.0.1:1", "--tls-insecure"},
       "eco: --tls-* flags apply to tls:// addresses (did you mean tls://127.0.0.1:1?)\n"},
      {{"ping", "tls://127.0.0.1:1", "--udp"}, "eco: TLS runs over TCP: --udp does not go with a tls:// address\n"},
      {{"send", "tls://127.0.0.1:1", "--tls-ca", "/nonexistent/ca.pem"},
       "eco: cannot read TLS CA file '/nonexistent/ca.pem': No such file or directory\n"},
      {{"send", "tls://127.0.0.1:1", "--tls-cert", "c.pem"},
       "eco: --tls-cert and --tls-key go together (a client certificate needs its key)\n"},
      {{"send", "tls://127.0.0.1:1", "--tls-insecure", "--tls-ca", "ca.pem"},
       "eco: --tls-insecure and --tls-ca contradict each other (pick one)\n"},
  };
  for (const Bad& b : cases) {
    RunResult r = run_eco(b.args);
    EXPECT_EQ(r.exit_code, 2) << b.args[1];
    EXPECT_EQ(r.err, b.err);
  }
}

TEST(TlsClientUsage, PlainServerAnsweringATlsClientIsOneLine) {
  // A plaintext echo server sends the ClientHello back: the handshake fails at once and says so.
  auto srv = std::make_unique<OutsideServer>([](uint16_t port) {
    return std::vector<std::string>{"socat", "TCP-LISTEN:" + std::to_string(port) + ",bind=127.0.0.1,reuseaddr,fork",
                                    "SYSTEM:cat"};
  });
  ASSERT_TRUE(srv->up()) << srv->log();
  RunResult r = run_eco({"send", srv->addr(), "x\n", "--tls-insecure", "--timeout", "3s"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find("(is the server speaking TLS?)"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace eco::itest
