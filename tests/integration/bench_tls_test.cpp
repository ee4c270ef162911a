// `eco bench tls://` against TLS echo servers no one here wrote: gnutls-serv --echo
// (GnuTLS) and socat OPENSSL-LISTEN forking PIPE (OpenSSL), each restricted to TLS 1.2 or
// 1.3, with certificates made at test time; loopback only. Every mode verifies every
// echoed byte; the handshake phase and resumed handshakes are read back from the JSON.
//
// gnutls-serv echoes a C string once it holds a newline, reading at most 1 KiB per wake-up
// (a larger record waits inside GnuTLS until more bytes come), so it gets --payload text
// with small messages, one in flight per connection; socat gets the binary pattern in every
// mode, records of up to 16 KiB included, and nodelay (with Nagle on, the echo that follows
// its session tickets waits for our delayed ACK, ~40 ms a connection in crr).
#include <algorithm>

#include "../unit/tls_pair.h"
#include "bench_run.h"
#include "outside_tls_server.h"

namespace eco::itest {
namespace {

using tls::testing::Pki;

std::vector<std::string> server_args(const Case& c, uint16_t port) {
  const Pki& p = pki();
  if (c.peer == Peer::gnutls)
    return {"gnutls-serv", "--echo", "--port", std::to_string(port), "--x509certfile", p.server_cert,
            "--x509keyfile", p.server_key, "--priority", std::string("NORMAL:-VERS-ALL:+VERS-TLS") + c.version};
  std::string v = std::string("TLS") + c.version;
  return {"socat",
          "OPENSSL-LISTEN:" + std::to_string(port) + ",bind=127.0.0.1,reuseaddr,fork,cert=" + p.server_cert +
              ",key=" + p.server_key + ",nodelay,verify=0,min-version=" + v + ",max-version=" + v,
          "PIPE"};
}

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  return std::string(info.param.peer == Peer::gnutls ? "gnutls" : "socat") + "_v" +
         (info.param.version[2] == '3' ? "1_3" : "1_2");
}

class BenchTls : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    srv_ = std::make_unique<OutsideServer>([&](uint16_t port) { return server_args(GetParam(), port); });
    ASSERT_TRUE(srv_->up()) << "the outside TLS server did not start: " << srv_->log();
  }
  bool gnutls() const { return GetParam().peer == Peer::gnutls; }
  // The run's common flags: trust the test CA, short windows, the payload the peer echoes.
  BenchRun bench(std::vector<std::string> args) {
    args.insert(args.begin(), srv_->addr());
    for (const char* a : {"--tls-ca", pki().ca.c_str(), "-t", "1s", "-w", "300ms"}) args.emplace_back(a);
    if (gnutls()) args.insert(args.end(), {"--payload", "text"});
    return run_bench(args);
  }
  void expect_tls(const BenchRun& b) {
    EXPECT_EQ(b.result.proto, "tls");
    EXPECT_EQ(b.result.target, srv_->addr());
    ASSERT_TRUE(b.result.tls && b.result.handshake) << b.run.out;
    EXPECT_EQ(b.result.tls->version, std::string("TLSv") + GetParam().version);
    EXPECT_GT(b.result.tls->handshakes, 0u);
    EXPECT_EQ(b.result.handshake->histogram.count(), b.result.tls->handshakes);
    // A loopback handshake takes more than a microsecond and less than the run.
    EXPECT_GT(b.result.handshake->latency_us.min, 1.0) << b.run.out;
    EXPECT_LT(b.result.handshake->latency_us.max, 1e6) << b.run.out;
  }
  std::unique_ptr<OutsideServer> srv_;
};

TEST_P(BenchTls, RequestEchoOnPersistentConnections) {
  BenchRun b = bench({"-c", "4", "-s", gnutls() ? "200" : "1000"});
  EXPECT_CLEAN(b);
  expect_tls(b);
  EXPECT_EQ(b.result.tls->handshakes, 4u) << "one handshake per persistent connection";
  EXPECT_EQ(b.result.tls->resumed, 0u);
  EXPECT_EQ(b.result.bytes, b.result.round_trips * b.result.size);
}

TEST_P(BenchTls, OpenLoopRequestEcho) {
  BenchRun b = bench({"-c", "2", "--rate", "400"});
  EXPECT_CLEAN(b);
  expect_tls(b);
  EXPECT_FALSE(b.result.rate_shortfall) << b.run.out;
  EXPECT_NEAR(double(b.result.round_trips), 400.0, 80.0);
}

TEST_P(BenchTls, ConnectionPerRequestCountsFullHandshakes) {
  BenchRun b = bench({"-m", "crr", "-c", "2"});
  EXPECT_CLEAN(b);
  expect_tls(b);
  EXPECT_EQ(b.result.tls->resumed, 0u) << "without --tls-resume every handshake is a full one";
  // Each measured round trip had its own handshake (give or take the window's edges).
  EXPECT_NEAR(double(b.result.tls->handshakes), double(b.result.round_trips), 4.0);
}

TEST_P(BenchTls, ResumedHandshakesAreCounted) {
  BenchRun b = bench({"-m", "crr", "-c", "2", "--tls-resume"});
  EXPECT_CLEAN(b);
  expect_tls(b);
  // The probe connection got the first ticket, so every counted handshake resumes.
  EXPECT_EQ(b.result.tls->resumed, b.result.tls->handshakes) << b.run.out;
  std::string summary = run_eco({"bench", srv_->addr(), "--tls-ca", pki().ca, "-m", "crr", "--tls-resume", "-t",
                                 "300ms", "-w", "0s", "-q", "--payload", gnutls() ? "text" : "binary"})
                            .out;
  EXPECT_NE(summary.find(" resumed; TLSv"), std::string::npos) << summary;
  EXPECT_NE(summary.find("  handshake   p50 "), std::string::npos) << summary;
}

TEST_P(BenchTls, StreamOfLargeRecords) {
  if (gnutls()) {
    // gnutls-serv cannot stream (see the top of this file): a deep window of lines is the
    // most it takes, 8 lines of 100 bytes in flight per connection.
    BenchRun b = bench({"-m", "rr", "-c", "2", "-d", "8", "-s", "100"});
    EXPECT_CLEAN(b);
    expect_tls(b);
    return;
  }
  for (const char* size : {"64", "16KiB", "100KiB"}) {
    BenchRun b = bench({"-m", "stream", "-c", "2", "-s", size});
    EXPECT_CLEAN(b);
    expect_tls(b);
    EXPECT_GT(b.result.bytes, uint64_t(1) << 20) << size;
  }
}

TEST_P(BenchTls, WrongCaFailsWithOneClearLine) {
  RunResult r = run_eco({"bench", srv_->addr(), "--tls-ca", pki().other_ca, "-t", "1s", "-q"});
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_EQ(r.out, "") << "no run starts when no handshake can succeed";
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_EQ(r.err.rfind("eco: TLS handshake with 127.0.0.1:", 0), 0u) << r.err;
  EXPECT_NE(r.err.find("certificate verify failed: unable to get local issuer certificate (trust its CA with "
                       "--tls-ca FILE, or --tls-insecure)"),
            std::string::npos)
      << r.err;
  // Without any trust only --tls-insecure gets through.
  BenchRun b = run_bench({srv_->addr(), "--tls-insecure", "-t", "300ms", "-w", "0s", "--payload",
                          gnutls() ? "text" : "binary"});
  EXPECT_CLEAN(b);
}

INSTANTIATE_TEST_SUITE_P(Peers, BenchTls,
                         ::testing::Values(Case{Peer::gnutls, "1.2"}, Case{Peer::gnutls, "1.3"},
                                           Case{Peer::socat, "1.2"}, Case{Peer::socat, "1.3"}),
                         case_name);

TEST(BenchTlsUsage, FlagsAndAddressesThatDoNotGo) {
  RunResult r = run_eco({"bench", "127.0.0.1:1", "--tls-insecure", "-t", "1s"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "eco: --tls-* flags apply to tls:// addresses (did you mean tls://127.0.0.1:1?)\n");
  r = run_eco({"bench", "tls://127.0.0.1:1", "--udp", "-t", "1s"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "eco: TLS runs over TCP: --udp does not go with a tls:// address\n");
  r = run_eco({"bench", "udp://127.0.0.1:1", "--payload", "text", "-t", "1s"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--payload text is for TCP and TLS"), std::string::npos) << r.err;
  // Nothing listening: the probe connection says so at once.
  r = run_eco({"bench", "tls://127.0.0.1:1", "--tls-insecure", "-t", "1s"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.err.rfind("eco: cannot connect to tls://127.0.0.1:1: ", 0), 0u) << r.err;
}

}  // namespace
}  // namespace eco::itest
