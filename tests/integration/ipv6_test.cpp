// IPv6: a server on [::1], and a dual-stack server on [::] reached over both families.
#include "harness.h"

namespace eco::itest {
namespace {

using Ipv6 = EngineTest;

TEST_P(Ipv6, EchoOnLoopbackV6) {
  Server* srv = start_server({.listen = {"[::1]:0"}});
  ASSERT_TRUE(srv);
  Fd fd = tcp_connect("::1", srv->port());
  ASSERT_TRUE(fd.valid());
  std::string data = random_bytes(300 * 1000, 61);
  bool eof;
  EXPECT_TRUE(echo_roundtrip(fd.get(), data, 10000, eof) == data);
  EXPECT_TRUE(eof);
  EXPECT_TRUE(srv->wait_log("Connected by [::1]:", 2000)) << srv->log();
  // Bound to ::1 only: IPv4 loopback must not reach it.
  int err = 0;
  Fd v4 = tcp_connect_err("127.0.0.1", srv->port(), 2000, err);
  EXPECT_FALSE(v4.valid());
}

TEST_P(Ipv6, EcoSendToBracketedV6Address) {
  Server* srv = start_server({.listen = {"[::1]:0"}});
  ASSERT_TRUE(srv);
  RunResult r = run_eco({"send", hostport("::1", srv->port())});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "Received: b'Hello world! This is an echo server made with python.'\n");
}

TEST_P(Ipv6, DualStackWildcardServesBothFamilies) {
  Server* srv = start_server({.listen = {"[::]:0"}});
  ASSERT_TRUE(srv);
  Fd v6 = tcp_connect("::1", srv->port());
  ASSERT_TRUE(v6.valid());
  EXPECT_TRUE(echo_once(v6.get(), "over IPv6"));
  Fd v4 = tcp_connect("127.0.0.1", srv->port());
  ASSERT_TRUE(v4.valid()) << "[::] should be dual-stack";
  EXPECT_TRUE(echo_once(v4.get(), "over IPv4"));
  // IPv4 peers on a dual-stack socket are logged as plain IPv4, not ::ffff:...
  EXPECT_TRUE(srv->wait_log("Connected by 127.0.0.1:", 2000)) << srv->log();
  EXPECT_TRUE(srv->wait_log("Connected by [::1]:", 2000)) << srv->log();
  EXPECT_EQ(srv->log().find("::ffff:"), std::string::npos) << srv->log();
}

TEST_P(Ipv6, SeveralListenAddressesAtOnce) {
  Server* srv = start_server({.listen = {"127.0.0.1:0", "[::1]:0"}});
  ASSERT_TRUE(srv);
  // Port 0 on several addresses picks one port for all, so one port file finds them.
  Fd v4 = tcp_connect("127.0.0.1", srv->port());
  Fd v6 = tcp_connect("::1", srv->port());
  ASSERT_TRUE(v4.valid());
  ASSERT_TRUE(v6.valid());
  EXPECT_TRUE(echo_once(v4.get(), "four"));
  EXPECT_TRUE(echo_once(v6.get(), "six"));
}

ECO_ENGINE_SUITE(Ipv6);

}  // namespace
}  // namespace eco::itest
