// Payloads of every awkward size come back byte for byte: empty, one byte, around
// 1 KiB (the tutorial's recv(1024) boundary), the default --buffer size, and 16 MiB
// (far beyond every socket and server buffer, so echo and backpressure interleave).
#include <thread>

#include "harness.h"

namespace eco::itest {
namespace {

class PayloadSizes : public EngineTest {};

// gtest cannot mix a plain engine parameter with a size, so the sizes run as a loop
// per engine, each on its own connection, with the size in every failure message.
TEST_P(PayloadSizes, EveryByteComesBackThenEof) {
  Server* srv = start_server();
  ASSERT_TRUE(srv);
  const size_t sizes[] = {0, 1, 2, 1023, 1024, 1025, 65535, 65536, 65537, 16u << 20};
  uint32_t seed = 1;
  for (size_t n : sizes) {
    SCOPED_TRACE("payload of " + std::to_string(n) + " bytes");
    std::string data = random_bytes(n, seed++);
    Fd fd = tcp_connect("127.0.0.1", srv->port());
    ASSERT_TRUE(fd.valid());
    bool eof;
    std::string back = echo_roundtrip(fd.get(), data, 30000, eof);
    EXPECT_TRUE(eof) << "no EOF after the echo";
    ASSERT_EQ(back.size(), data.size());
    EXPECT_TRUE(back == data) << "echoed bytes differ";
  }
  // Each connection's close line reports its byte count.
  EXPECT_TRUE(srv->wait_log("echoed 16777216 bytes", 2000)) << srv->log();
  EXPECT_TRUE(srv->wait_log("echoed 0 bytes", 2000)) << srv->log();
}

TEST_P(PayloadSizes, SmallBufferStillEchoesEverything) {
  // --buffer 1 makes every byte wait on backpressure: the slowest, most careful path.
  Server* srv = start_server({.extra = {"--buffer", "1"}});
  ASSERT_TRUE(srv);
  std::string data = random_bytes(256 * 1024, 7);
  Fd fd = tcp_connect("127.0.0.1", srv->port());
  ASSERT_TRUE(fd.valid());
  bool eof;
  std::string back = echo_roundtrip(fd.get(), data, 30000, eof);
  EXPECT_TRUE(eof);
  ASSERT_EQ(back.size(), data.size());
  EXPECT_TRUE(back == data);
}

TEST_P(PayloadSizes, ConcurrentLargeEchoesStaySeparate) {
  // Two 4 MiB streams at once on one loop: bytes of one never show up in the other.
  Server* srv = start_server({.extra = {"--threads", "1"}});
  ASSERT_TRUE(srv);
  std::string a = random_bytes(4u << 20, 11), b = random_bytes(4u << 20, 12);
  std::string back_a, back_b;
  bool eof_a = false, eof_b = false;
  std::thread ta([&] {
    Fd fd = tcp_connect("127.0.0.1", srv->port());
    if (fd.valid()) back_a = echo_roundtrip(fd.get(), a, 30000, eof_a);
  });
  std::thread tb([&] {
    Fd fd = tcp_connect("127.0.0.1", srv->port());
    if (fd.valid()) back_b = echo_roundtrip(fd.get(), b, 30000, eof_b);
  });
  ta.join();
  tb.join();
  EXPECT_TRUE(eof_a && eof_b);
  EXPECT_TRUE(back_a == a);
  EXPECT_TRUE(back_b == b);
}

ECO_ENGINE_SUITE(PayloadSizes);

}  // namespace
}  // namespace eco::itest
