// config_to_args: TOML keys become "--key=value" arguments for CLI11 to parse.
#include <gtest/gtest.h>

#include "config/config_file.h"

namespace eco::config {
namespace {

const std::vector<std::string> kKeys{"listen", "udp", "threads", "drain-timeout", "max-conns", "quiet", "ratio"};

std::vector<std::string> ok(std::string_view text) {
  auto r = config_to_args(text, "eco.toml", kKeys);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : std::vector<std::string>{};
}

std::string err(std::string_view text) {
  auto r = config_to_args(text, "eco.toml", kKeys);
  EXPECT_FALSE(r.ok());
  return r.ok() ? "" : r.error().message;
}

TEST(ConfigToArgs, EveryValueTypeBecomesOneArgument) {
  auto args = ok(R"(# comment
listen = ["127.0.0.1:5346", "[::1]:5346"]
threads = 2
udp = true
quiet = false
drain-timeout = "5s"
max-conns = 1_000
ratio = 0.5
)");
  // toml++ keeps keys in sorted order; array elements keep theirs.
  EXPECT_EQ(args, (std::vector<std::string>{"--drain-timeout=5s", "--listen=127.0.0.1:5346", "--listen=[::1]:5346",
                                            "--max-conns=1000", "--quiet=false", "--ratio=0.5", "--threads=2",
                                            "--udp=true"}));
}

TEST(ConfigToArgs, EmptyFileAndEmptyArrayGiveNothing) {
  EXPECT_TRUE(ok("").empty());
  EXPECT_TRUE(ok("listen = []\n").empty());
}

TEST(ConfigToArgs, UnknownKeyIsNamedWithItsLine) {
  EXPECT_EQ(err("threads = 2\n\nthread = 3\n"),
            "eco.toml:3: unknown key 'thread' (keys are the long flag names of 'eco serve --help')");
}

TEST(ConfigToArgs, SectionsAndNestedValuesAreRefused) {
  EXPECT_NE(err("[serve]\nthreads = 2\n").find("eco.toml:1: unknown key 'serve'"), std::string::npos);
  EXPECT_NE(err("listen = { a = 1 }\n").find("eco.toml:1: key 'listen' is a table"), std::string::npos);
  EXPECT_NE(err("listen = [[\"a\"]]\n").find("eco.toml:1: key 'listen' holds a nested array"), std::string::npos);
  EXPECT_NE(err("threads = 1979-05-27\n").find("eco.toml:1: key 'threads' has a value of a type"),
            std::string::npos);
}

TEST(ConfigToArgs, SyntaxErrorsNameTheLine) {
  std::string e = err("threads = 2\nudp = \n");
  EXPECT_EQ(e.rfind("eco.toml:2: ", 0), 0u) << e;
  e = err("threads = 2\nthreads = 3\n");  // TOML forbids a key twice
  EXPECT_EQ(e.rfind("eco.toml:2: ", 0), 0u) << e;
}

TEST(ConfigToArgs, ArbitraryBytesNeverCrash) {
  std::string junk;
  for (int i = 0; i < 2000; ++i) {
    junk.push_back(char((i * 7919) % 256));
    (void)config_to_args(junk, "x", kKeys);
  }
  EXPECT_FALSE(config_to_args(std::string_view("\0\xff\xfe", 3), "x", kKeys).ok());
}

TEST(ConfigToArgs, ArgKeyStripsDashesAndValue) {
  EXPECT_EQ(arg_key("--listen=a:1=b"), "listen");
  EXPECT_EQ(arg_key("--udp"), "udp");
}

}  // namespace
}  // namespace eco::config
