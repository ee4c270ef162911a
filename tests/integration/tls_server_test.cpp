// `eco serve --listen tls://` on every engine, against clients no one here wrote
// (openssl s_client, gnutls-cli, Python's ssl) and eco's own: the bytes come back over
// TLS 1.2 and 1.3, bad input closes only its connection with a counted reason, a
// handshake that never finishes meets its deadline, SIGHUP reloads (a broken file keeps
// the old certificate), and the --tls-* flags need a
// tls:// listener. Loopback only; every client runs under `timeout`.
#include <signal.h>

#include <cstdio>

#include "harness.h"
#include "policy_helpers.h"

namespace eco::itest {
namespace {

class TlsServer : public EngineTest {
 protected:
  Server* start_tls(std::vector<std::string> extra = {}) {
    cert_ = dir_.file("cert.pem");
    extra.insert(extra.end(), {"--tls-write-cert", cert_});
    return start_server({.engine = GetParam(), .listen = {"tls://127.0.0.1:0"}, .extra = extra});
  }
  // Runs a shell command (bounded by `timeout`), returning its stdout.
  static std::string sh(const std::string& cmd) {
    std::string out;
    FILE* p = ::popen(("timeout 20 sh -c '" + cmd + "' 2>/dev/null").c_str(), "r");
    if (!p) return out;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    ::pclose(p);
    return out;
  }
  TempDir dir_;
  std::string cert_;
};

TEST_P(TlsServer, EcoSendGetsItsBytesBack) {
  Server* srv = start_tls();
  ASSERT_TRUE(srv);
  RunResult r = run_eco({"send", "tls://localhost:" + std::to_string(srv->port()), "over tls", "--tls-ca", cert_});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "Received: b'over tls'\n") << r.err;
  EXPECT_TRUE(srv->wait_log("TLS with 127.0.0.1:", 2000)) << srv->log();
}

TEST_P(TlsServer, OpensslAndGnutlsClientsOverTls12And13) {
  Server* srv = start_tls();
  ASSERT_TRUE(srv);
  std::string port = std::to_string(srv->port());
  for (const char* v : {"-tls1_2", "-tls1_3"}) {
    // -quiet implies -ign_eof; -no_ign_eof ends it once the input (and the echo) are done.
    std::string out = sh("(printf \"line %s\\n\" " + std::string(v) + "; sleep 1) | openssl s_client -quiet -no_ign_eof " +
                         "-connect 127.0.0.1:" + port + " -CAfile " + cert_ + " -verify_return_error " + v);
    EXPECT_EQ(out, std::string("line ") + v + "\n") << srv->log();
  }
  for (const char* prio : {"NORMAL:-VERS-ALL:+VERS-TLS1.2", "NORMAL:-VERS-ALL:+VERS-TLS1.3"}) {
    std::string out = sh("(echo gnutls; sleep 1) | gnutls-cli --logfile=/dev/null --x509cafile=" + cert_ +
                         " --priority=" + prio + " -p " + port + " localhost");
    EXPECT_NE(out.find("gnutls\n"), std::string::npos) << prio << ": " << out << srv->log();
  }
  EXPECT_TRUE(srv->wait_log("TLSv1.2", 2000)) << srv->log();
  EXPECT_TRUE(srv->wait_log("TLSv1.3", 2000)) << srv->log();
}

// Python's ssl module sends sizes from one byte to 4 MiB and reads them back while
// sending (non-blocking, one thread: an SSL object is not safe to read and write from two
// threads at once), so full buffers never stall it; every byte is compared.
TEST_P(TlsServer, PythonSslEchoesEverySizeByteForByte) {
  Server* srv = start_tls();
  ASSERT_TRUE(srv);
  std::string script = dir_.file("client.py");
  ASSERT_TRUE(write_file(script, R"(import os, select, socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
for size in (1, 100, 16384, 16385, 1 << 20, 4 << 20):
    data = os.urandom(size)
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1]))), server_hostname="localhost")
    s.setblocking(False)
    sent, got = 0, bytearray()
    while len(got) < size:
        if sent < size:
            try: sent += s.send(data[sent:sent + 65536])
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError): pass
        try:
            chunk = s.recv(65536)
            if not chunk: break
            got += chunk
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            if not select.select([s], [s] if sent < size else [], [], 10)[0] and sent == size: break
    s.close()
    print(size, "ok" if bytes(got) == data else "BAD %d" % len(got))
)"));
  std::string out = sh("python3 " + script + " " + std::to_string(srv->port()) + " " + cert_ + " 2>&1");
  EXPECT_EQ(out, "1 ok\n100 ok\n16384 ok\n16385 ok\n1048576 ok\n4194304 ok\n") << srv->log();
}

TEST_P(TlsServer, PlaintextInsteadOfAHandshakeIsClosedAndCounted) {
  Server* srv = start_tls();
  ASSERT_TRUE(srv);
  Fd fd = tcp_connect("127.0.0.1", srv->port());
  ASSERT_TRUE(send_all(fd.get(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  bool eof = false;
  read_to_eof(fd.get(), 5000, eof);  // an alert, perhaps, then the close
  EXPECT_TRUE(eof) << srv->log();
  // The server still serves.
  RunResult r = run_eco({"send", "tls://localhost:" + std::to_string(srv->port()), "after", "--tls-ca", cert_});
  EXPECT_EQ(r.out, "Received: b'after'\n") << r.err;
  std::string summary = summary_after_stop(*srv);
  EXPECT_NE(summary.find("not_tls=1"), std::string::npos) << summary;
}

TEST_P(TlsServer, AHandshakeThatNeverFinishesMeetsItsDeadline) {
  Server* srv = start_tls({"--tls-handshake-timeout", "300ms"});
  ASSERT_TRUE(srv);
  Fd fd = tcp_connect("127.0.0.1", srv->port());
  ASSERT_TRUE(send_all(fd.get(), std::string("\x16\x03\x01", 3)));  // a record header, then silence
  double start = now_ms();
  EXPECT_TRUE(expect_eof(fd.get(), 5000)) << srv->log();
  EXPECT_GE(now_ms() - start, 200);
  EXPECT_EQ(refused_count(summary_after_stop(*srv), "handshake_timeout"), 1u) << srv->log();
}

// SIGHUP: a good certificate file is reloaded; a broken one keeps the current one, and
// the server goes on serving with it.
TEST_P(TlsServer, SighupReloadsAndABrokenFileKeepsTheOldCertificate) {
  std::string cert = dir_.file("given.pem"), key = dir_.file("given.key");
  sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost "
     "-addext subjectAltName=DNS:localhost -keyout " + key + " -out " + cert);
  ASSERT_FALSE(read_file(cert).empty());
  Server* srv = start_server({.engine = GetParam(), .listen = {"tls://127.0.0.1:0"},
                              .extra = {"--tls-cert", cert, "--tls-key", key}});
  ASSERT_TRUE(srv);
  std::string target = "tls://localhost:" + std::to_string(srv->port());
  srv->signal(SIGHUP);
  EXPECT_TRUE(srv->wait_log("SIGHUP: TLS certificate for localhost reloaded from " + cert, 3000)) << srv->log();
  ASSERT_TRUE(write_file(cert, "not a certificate\n"));
  srv->signal(SIGHUP);
  EXPECT_TRUE(srv->wait_log("SIGHUP: TLS reload failed, keeping the current certificates", 3000)) << srv->log();
  RunResult r = run_eco({"send", target, "still served", "--tls-insecure"});
  EXPECT_EQ(r.out, "Received: b'still served'\n") << r.err << srv->log();
}

ECO_ENGINE_SUITE(TlsServer);

TEST(TlsServerFlags, NeedATlsListener) {
  RunResult r = run_eco({"serve", "--listen", "127.0.0.1:0", "--tls-min-version", "1.3"}, {}, 10000);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("the --tls-* server options need a tls:// listener"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace eco::itest
