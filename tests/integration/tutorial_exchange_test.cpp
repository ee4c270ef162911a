// The tutorial's session: a server on loopback and a client that sends one line and
// prints what came back, byte for byte as the Python client printed it.
#include "harness.h"

namespace eco::itest {
namespace {

using TutorialExchange = EngineTest;

TEST_P(TutorialExchange, SendPrintsTheTutorialLineAndServerLogsConnectedBy) {
  Server* srv = start_server();
  ASSERT_TRUE(srv);
  RunResult r = run_eco({"send", hostport("127.0.0.1", srv->port())});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "Received: b'Hello world! This is an echo server made with python.'\n");
  EXPECT_EQ(r.err, "");
  EXPECT_TRUE(srv->wait_log("Connected by 127.0.0.1:", 2000)) << srv->log();
  // The closing line says how much was echoed.
  EXPECT_TRUE(srv->wait_log("echoed 53 bytes", 2000)) << srv->log();
}

TEST_P(TutorialExchange, RawSocketGetsTheExactLineBackThenEofAfterHalfClose) {
  Server* srv = start_server();
  ASSERT_TRUE(srv);
  Fd fd = tcp_connect("127.0.0.1", srv->port());
  ASSERT_TRUE(fd.valid());
  const std::string msg = "Hello world! This is an echo server made with python.";
  bool eof;
  EXPECT_EQ(echo_roundtrip(fd.get(), msg, 5000, eof), msg);
  EXPECT_TRUE(eof);
}

TEST_P(TutorialExchange, ServerAnnouncesItsListeningAddress) {
  Server* srv = start_server();
  ASSERT_TRUE(srv);
  EXPECT_TRUE(srv->wait_log("Listening on tcp 127.0.0.1:" + std::to_string(srv->port()), 2000)) << srv->log();
}

TEST_P(TutorialExchange, HostNamesAreResolved) {
  Server* srv = start_server({.listen = {"localhost:0"}});
  ASSERT_TRUE(srv);
  RunResult r = run_eco({"send", "localhost:" + std::to_string(srv->port()), "by name"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "Received: b'by name'\n");
}

TEST_P(TutorialExchange, JsonLogsAreOneObjectPerLine) {
  Server* srv = start_server({.extra = {"--log-format", "json"}});
  ASSERT_TRUE(srv);
  RunResult r = run_eco({"send", hostport("127.0.0.1", srv->port())});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(srv->wait_log("\"event\":\"close\"", 2000)) << srv->log();
  std::string log = srv->log();
  size_t lines = 0, start = 0;
  for (size_t nl; (nl = log.find('\n', start)) != std::string::npos; start = nl + 1, ++lines) {
    std::string line = log.substr(start, nl - start);
    EXPECT_TRUE(line.size() >= 2 && line.front() == '{' && line.back() == '}') << line;
  }
  EXPECT_EQ(start, log.size()) << "last line not terminated";
  EXPECT_GE(lines, 3u);
  EXPECT_NE(log.find("\"event\":\"connect\""), std::string::npos) << log;
}

TEST_P(TutorialExchange, QuietHidesConnectionLines) {
  Server* srv = start_server({.extra = {"--quiet"}});
  ASSERT_TRUE(srv);
  RunResult r = run_eco({"send", hostport("127.0.0.1", srv->port())});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(srv->stop());
  EXPECT_EQ(srv->log().find("Connected by"), std::string::npos) << srv->log();
}

ECO_ENGINE_SUITE(TutorialExchange);

}  // namespace
}  // namespace eco::itest
