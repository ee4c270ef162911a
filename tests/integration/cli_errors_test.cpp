// Bad flags and addresses: exit code 2 and one readable line starting "eco: ",
// never a stack of CLI11 help text or an exception message.
#include <netinet/in.h>
#include <sys/socket.h>

#include <sstream>

#include "harness.h"
#include "net/socket.h"

namespace eco::itest {
namespace {

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

// Exit 2; stderr is exactly one line, "eco: " + something containing `needle`, that
// points at --help when the flags were wrong; nothing on stdout.
void expect_usage_error(const std::vector<std::string>& args, const std::string& needle) {
  std::string cmd;
  for (const auto& a : args) cmd += " " + a;
  SCOPED_TRACE("eco" + cmd);
  RunResult r = run_eco(args, {}, 10000);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(r.out, "");
  auto ls = lines(r.err);
  ASSERT_EQ(ls.size(), 1u) << r.err;
  EXPECT_EQ(ls[0].rfind("eco: ", 0), 0u) << ls[0];
  EXPECT_NE(ls[0].find(needle), std::string::npos) << "message: " << ls[0];
}

TEST(CliErrors, PortOutOfRange) {
  expect_usage_error({"serve", "--listen", "127.0.0.1:70000"}, "invalid port '70000' (must be 0-65535)");
}

TEST(CliErrors, PortNotANumber) { expect_usage_error({"serve", "--listen", "127.0.0.1:http8"}, "invalid port"); }

TEST(CliErrors, UnresolvableAddress) {
  expect_usage_error({"serve", "--listen", "999.1.2.3:5346"}, "999.1.2.3");
}

TEST(CliErrors, AddressNotOnThisHost) {
  // 192.0.2.0/24 is TEST-NET-1: documentation only, never assigned to a host.
  expect_usage_error({"serve", "--listen", "192.0.2.77:0"}, "192.0.2.77");
}

TEST(CliErrors, UnknownFlag) { expect_usage_error({"serve", "--no-such-flag"}, "--no-such-flag"); }

TEST(CliErrors, UnknownSubcommand) {
  expect_usage_error({"sereve"}, "unknown command 'sereve' (commands: serve, send, ping, bench)");
}

TEST(CliErrors, MissingSubcommand) { expect_usage_error({}, "subcommand"); }

TEST(CliErrors, FlagErrorsPointAtTheSubcommandsHelp) {
  expect_usage_error({"send", "--timeout", "soon"}, "see 'eco send --help'");
}

TEST(CliErrors, BufferGarbage) { expect_usage_error({"serve", "--buffer", "garbage"}, "garbage"); }

TEST(CliErrors, BufferZero) { expect_usage_error({"serve", "--buffer", "0"}, "--buffer"); }

TEST(CliErrors, DrainTimeoutGarbage) { expect_usage_error({"serve", "--drain-timeout", "soon"}, "soon"); }

TEST(CliErrors, ThreadsZero) { expect_usage_error({"serve", "--threads", "0"}, "threads"); }

TEST(CliErrors, UnknownEngine) {
  expect_usage_error({"serve", "--engine", "carrier-pigeon", "--listen", "127.0.0.1:0"}, "carrier-pigeon");
}

TEST(CliErrors, UnknownLogLevel) {
  expect_usage_error({"serve", "--log-level", "chatty", "--listen", "127.0.0.1:0"}, "chatty");
}

TEST(CliErrors, BadScheme) { expect_usage_error({"serve", "--listen", "sctp://127.0.0.1:0"}, "sctp://"); }

TEST(CliErrors, SendBadPort) { expect_usage_error({"send", "127.0.0.1:99999"}, "invalid port '99999'"); }

TEST(CliErrors, SendBadTimeout) { expect_usage_error({"send", "--timeout", "forever", "127.0.0.1:1"}, "forever"); }

TEST(CliErrors, SendMissingFile) {
  expect_usage_error({"send", "--file", "/nonexistent/eco-input", "127.0.0.1:1"}, "/nonexistent/eco-input");
}

using CliErrorsPerEngine = EngineTest;

TEST_P(CliErrorsPerEngine, PortAlreadyInUse) {
  // Someone else holds the port: eco must say so, not share it or crash.
  auto addrs = net::resolve(net::HostPort{"127.0.0.1", 0}, net::Proto::tcp, true);
  ASSERT_TRUE(addrs);
  auto holder = net::listen_socket(addrs->front(), net::Proto::tcp, {});
  ASSERT_TRUE(holder);
  auto local = net::local_address(holder->get());
  ASSERT_TRUE(local);
  std::string spec = hostport("127.0.0.1", local->port());
  expect_usage_error({"serve", "--engine", GetParam(), "--listen", spec}, "address already in use");
}

TEST_P(CliErrorsPerEngine, SecondServerOnTheSamePortIsRefused) {
  // A second eco must not silently share the first one's port via SO_REUSEPORT.
  Server* srv = start_server();
  ASSERT_TRUE(srv);
  expect_usage_error({"serve", "--engine", GetParam(), "--listen", hostport("127.0.0.1", srv->port())},
                     "address already in use");
  Fd fd = tcp_connect("127.0.0.1", srv->port());
  ASSERT_TRUE(fd.valid());
  EXPECT_TRUE(echo_once(fd.get(), "first server unaffected"));
}

TEST_P(CliErrorsPerEngine, UdpPortAlreadyInUse) {
  auto addrs = net::resolve(net::HostPort{"127.0.0.1", 0}, net::Proto::udp, true);
  ASSERT_TRUE(addrs);
  auto holder = net::listen_socket(addrs->front(), net::Proto::udp, {});
  ASSERT_TRUE(holder);
  auto local = net::local_address(holder->get());
  ASSERT_TRUE(local);
  expect_usage_error({"serve", "--engine", GetParam(), "--listen", "udp://" + hostport("127.0.0.1", local->port())},
                     "address already in use");
}

ECO_ENGINE_SUITE(CliErrorsPerEngine);

}  // namespace
}  // namespace eco::itest
