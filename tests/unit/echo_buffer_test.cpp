#include "session/echo_buffer.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "session/buffer_pool.h"

using namespace eco::session;

TEST(EchoBuffer, StartsDetachedAndHoldsNothing) {
  EchoBuffer b;
  EXPECT_FALSE(b.attached());
  EXPECT_EQ(b.pending(), 0u);
}

TEST(EchoBuffer, AppendConsumeKeepsOrder) {
  std::vector<char> storage(8);
  EchoBuffer b;
  b.attach(storage.data(), 8);
  b.append("abcdef", 6);
  EXPECT_EQ(b.pending(), 6u);
  EXPECT_EQ(std::string(b.pending_data(), 3), "abc");
  b.consumed(4);
  EXPECT_EQ(std::string(b.pending_data(), b.pending()), "ef");
  uint32_t room;
  b.free_space(room);
  EXPECT_EQ(room, 2u);  // tail not at the end yet: no compaction
  b.append("gh", 2);
  b.free_space(room);   // tail at the end with head > 0: slides pending to the front
  EXPECT_EQ(room, 4u);
  EXPECT_EQ(std::string(b.pending_data(), b.pending()), "efgh");
}

TEST(EchoBuffer, BoundedByCapacity) {
  std::vector<char> storage(4);
  EchoBuffer b;
  b.attach(storage.data(), 4);
  b.append("wxyz", 4);
  uint32_t room;
  b.free_space(room);
  EXPECT_EQ(room, 0u);  // full: the engine stops reading this connection
  b.consumed(4);
  b.free_space(room);
  EXPECT_EQ(room, 4u);
  EXPECT_EQ(b.detach(), storage.data());
}

TEST(BufferPool, ReusesUpToKeepAndCountsInUse) {
  BufferPool pool(1024, 1);
  char* a = pool.acquire();
  char* b = pool.acquire();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(pool.in_use(), 2u);
  pool.release(a);
  pool.release(b);  // beyond `keep`: freed, not kept
  EXPECT_EQ(pool.in_use(), 0u);
  char* c = pool.acquire();
  EXPECT_EQ(c, a);
  pool.release(c);
}
