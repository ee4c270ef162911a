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

ECO_ENGINE_SUITE(TutorialExchange);

}  // namespace
}  // namespace eco::itest
