// Half-close: after the client shuts down its write side, the server still sends
// back everything pending, and only then closes its side (the client sees EOF).
#include <sys/socket.h>

#include <thread>

#include "harness.h"

namespace eco::itest {
namespace {

using HalfClose = EngineTest;

TEST_P(HalfClose, ShutdownBeforeReadingGetsEverythingThenEof) {
  Server* srv = start_server();
  ASSERT_TRUE(srv);
  Fd fd = tcp_connect("127.0.0.1", srv->port());
  ASSERT_TRUE(fd.valid());
  // Small enough to fit in the socket buffers, so the client can send it all and
  // shut down before reading a single byte.
  std::string data = random_bytes(100 * 1000, 3);
  ASSERT_TRUE(send_all(fd.get(), data));
  ASSERT_EQ(::shutdown(fd.get(), SHUT_WR), 0);
  bool eof;
  std::string back = read_to_eof(fd.get(), 10000, eof);
  EXPECT_TRUE(eof);
  EXPECT_EQ(back.size(), data.size());
  EXPECT_TRUE(back == data);
}

TEST_P(HalfClose, PendingBytesBeyondTheBufferAreFlushedAfterShutdown) {
  // A 256-byte server buffer and a client that reads nothing until it has shut
  // down: most of the bytes are still pending (in the server or the kernel) when the
  // FIN arrives, and all of them must still come back.
  Server* srv = start_server({.extra = {"--buffer", "256"}});
  ASSERT_TRUE(srv);
  Fd fd = tcp_connect("127.0.0.1", srv->port());
  ASSERT_TRUE(fd.valid());
  std::string data = random_bytes(64 * 1024, 4);
  ASSERT_TRUE(send_all(fd.get(), data));
  ASSERT_EQ(::shutdown(fd.get(), SHUT_WR), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // let the FIN land first
  bool eof;
  std::string back = read_to_eof(fd.get(), 10000, eof);
  EXPECT_TRUE(eof);
  EXPECT_TRUE(back == data) << "got " << back.size() << " of " << data.size() << " bytes";
}

TEST_P(HalfClose, ImmediateShutdownGivesEofAndAZeroByteCloseLine) {
  Server* srv = start_server();
  ASSERT_TRUE(srv);
  Fd fd = tcp_connect("127.0.0.1", srv->port());
  ASSERT_TRUE(fd.valid());
  ASSERT_EQ(::shutdown(fd.get(), SHUT_WR), 0);
  EXPECT_TRUE(expect_eof(fd.get(), 5000));
  EXPECT_TRUE(srv->wait_log("echoed 0 bytes", 2000)) << srv->log();
}

TEST_P(HalfClose, ReadSideStaysOpenUntilClientReadsSlowly) {
  // The client shuts down, then reads in small sips with pauses: the server must
  // keep its side open and keep sending until the last byte is taken.
  Server* srv = start_server();
  ASSERT_TRUE(srv);
  Fd fd = tcp_connect("127.0.0.1", srv->port());
  ASSERT_TRUE(fd.valid());
  std::string data = random_bytes(200 * 1000, 5);
  ASSERT_TRUE(send_all(fd.get(), data));
  ASSERT_EQ(::shutdown(fd.get(), SHUT_WR), 0);
  std::string back;
  for (int i = 0; i < 5 && back.size() < data.size(); ++i) {
    back += read_exact(fd.get(), 1000, 5000);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  bool eof;
  back += read_to_eof(fd.get(), 10000, eof);
  EXPECT_TRUE(eof);
  EXPECT_TRUE(back == data) << "got " << back.size() << " of " << data.size() << " bytes";
}

ECO_ENGINE_SUITE(HalfClose);

}  // namespace
}  // namespace eco::itest
