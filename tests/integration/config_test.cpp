// eco serve --config FILE: every flag is a key, the command line wins, and a bad
// file is one clear line and exit 2.
#include <gtest/gtest.h>

#include <sys/socket.h>

#include <algorithm>

#include "harness.h"
#include "http_get.h"

namespace eco::itest {
namespace {

TEST(ConfigFile, KeysSetTheFlags) {
  TempDir dir;
  std::string path = dir.file("eco.toml");
  ASSERT_TRUE(write_file(path, R"(# eco serve settings
listen = ["127.0.0.1:0"]
udp = true
threads = 2
quiet = false
metrics = "127.0.0.1:0"
drain-timeout = "2s"
)"));
  Server s({.listen = {}, .extra = {"--config", path}});
  ASSERT_TRUE(s.start());
  EXPECT_TRUE(s.wait_log("on 2 threads", 2000)) << s.log();
  EXPECT_NE(s.log().find("Listening on udp 127.0.0.1:" + std::to_string(s.port())), std::string::npos) << s.log();
  Fd u = udp_socket("127.0.0.1", s.port());
  ASSERT_EQ(::send(u.get(), "ping", 4, 0), 4);
  EXPECT_EQ(read_exact(u.get(), 4, 3000), "ping");
  uint16_t mport = metrics_port(s);
  ASSERT_NE(mport, 0) << s.log();
  EXPECT_EQ(http_get(mport, "/healthz").status, 200);
  EXPECT_TRUE(s.stop());
}

TEST(ConfigFile, CommandLineWinsForScalarsAndLists) {
  TempDir dir;
  std::string path = dir.file("eco.toml");
  // Neither of these could serve: 192.0.2.1 (TEST-NET) is no local address.
  ASSERT_TRUE(write_file(path, "threads = 3\nlisten = [\"192.0.2.1:7\", \"192.0.2.1:8\"]\nudp = true\n"));
  Server s({.extra = {"--config", path, "--threads", "1"}});  // harness adds --listen 127.0.0.1:0
  ASSERT_TRUE(s.start());
  EXPECT_TRUE(s.wait_log("on 1 thread ", 2000)) << s.log();
  EXPECT_EQ(s.log().find("192.0.2.1"), std::string::npos) << s.log();
  // Keys the command line does not give still apply.
  EXPECT_NE(s.log().find("Listening on udp 127.0.0.1:"), std::string::npos) << s.log();
  Fd fd = tcp_connect("127.0.0.1", s.port());
  EXPECT_TRUE(echo_once(fd.get(), "cli wins"));
  EXPECT_TRUE(s.stop());
}

void expect_usage_error(const std::vector<std::string>& args, const std::string& want) {
  auto r = run_eco(args, {}, 10000);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find(want), std::string::npos) << "want: " << want << "\ngot: " << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST(ConfigFile, UnknownKeyNamesKeyAndLine) {
  TempDir dir;
  std::string path = dir.file("eco.toml");
  ASSERT_TRUE(write_file(path, "threads = 1\n\n# typo below\nthread = 2\n"));
  expect_usage_error({"serve", "--config", path}, "eco: " + path + ":4: unknown key 'thread'");
}

TEST(ConfigFile, MissingFileIsAUsageError) {
  expect_usage_error({"serve", "--config", "/nonexistent/eco.toml"},
                     "eco: cannot read config file '/nonexistent/eco.toml': No such file or directory");
}

TEST(ConfigFile, SyntaxErrorNamesTheLine) {
  TempDir dir;
  std::string path = dir.file("eco.toml");
  ASSERT_TRUE(write_file(path, "threads = 1\nlisten = [\"a\"\n"));
  expect_usage_error({"serve", "--config", path}, "eco: " + path + ":");
}

TEST(ConfigFile, BadValueIsCheckedLikeTheFlag) {
  TempDir dir;
  std::string path = dir.file("eco.toml");
  ASSERT_TRUE(write_file(path, "threads = 0\n"));
  expect_usage_error({"serve", "--config", path}, "(with the settings of config file '" + path + "')");
  ASSERT_TRUE(write_file(path, "drain-timeout = \"soon\"\n"));
  expect_usage_error({"serve", "--config", path}, "soon");
}

// The example shipped in deploy/ is valid: every key in it is a real flag.
TEST(ConfigFile, ShippedExampleParses) {
  std::vector<std::string> extra{"--config", ECO_SOURCE_DIR "/deploy/eco.toml", "--metrics", "127.0.0.1:0",
                                  "--threads", "1"};
#if defined(__SANITIZE_ADDRESS__)
  extra.push_back("--seccomp=false");  // LeakSanitizer's exit check cannot run under the filter
#endif
  Server s({.extra = extra});
  ASSERT_TRUE(s.start());
  Fd fd = tcp_connect("127.0.0.1", s.port());
  EXPECT_TRUE(echo_once(fd.get(), "example"));
  EXPECT_TRUE(s.stop());
}

}  // namespace
}  // namespace eco::itest
