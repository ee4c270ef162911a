// Many tiny writes sent back to back without waiting for their echo: the server
// sees them split and merged at arbitrary points and must return the exact stream.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <thread>

#include "harness.h"

namespace eco::itest {
namespace {

using PipelinedWrites = EngineTest;

TEST_P(PipelinedWrites, TenThousandTinyWritesComeBackInOrder) {
  Server* srv = start_server();
  ASSERT_TRUE(srv);
  Fd fd = tcp_connect("127.0.0.1", srv->port());
  ASSERT_TRUE(fd.valid());
  int one = 1;
  ASSERT_EQ(setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one), 0);  // one segment per write

  // Writes of 1..7 bytes, each numbered, so a lost, repeated or reordered write shows.
  std::vector<std::string> writes;
  std::string expected;
  for (int i = 0; i < 10000; ++i) {
    std::string w = std::to_string(i % 1000000);
    w.resize(size_t(1 + i % 7), char('a' + i % 26));
    writes.push_back(w);
    expected += w;
  }
  std::string back;
  std::thread reader([&] { back = read_exact(fd.get(), expected.size(), 20000); });
  int sent_writes = 0;
  for (const auto& w : writes) {
    if (!send_all(fd.get(), w, 10000)) break;
    ++sent_writes;
  }
  reader.join();
  EXPECT_EQ(sent_writes, 10000);
  ASSERT_EQ(back.size(), expected.size());
  EXPECT_TRUE(back == expected);
  ASSERT_EQ(::shutdown(fd.get(), SHUT_WR), 0);
  EXPECT_TRUE(expect_eof(fd.get(), 5000));
}

TEST_P(PipelinedWrites, RequestResponseLockstepOnOneConnection) {
  // The tutorial's pattern repeated: one small message, wait for its echo, again.
  Server* srv = start_server();
  ASSERT_TRUE(srv);
  Fd fd = tcp_connect("127.0.0.1", srv->port());
  ASSERT_TRUE(fd.valid());
  int ok = 0;
  for (int i = 0; i < 2000; ++i)
    if (echo_once(fd.get(), "ping " + std::to_string(i))) ++ok;
  EXPECT_EQ(ok, 2000);
}

ECO_ENGINE_SUITE(PipelinedWrites);

}  // namespace
}  // namespace eco::itest
