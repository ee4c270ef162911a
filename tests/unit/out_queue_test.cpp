// A connection's send queue: a circular buffer that must never move bytes (io_uring's
// kernel may be reading its front), must keep them in order across wrap-around, and
// offers its free space contiguously for reading straight into it.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "session/out_queue.h"

namespace eco::session {
namespace {

std::string drain_front(OutQueue& q, uint32_t max) {
  uint32_t n = std::min(q.front_len(), max);
  std::string s(q.front(), n);
  q.consumed(n);
  return s;
}

TEST(OutQueue, KeepsOrderAcrossWrapAround) {
  std::vector<char> storage(8);
  OutQueue q;
  q.attach(storage.data(), 8);
  q.append("abcdef", 6);
  EXPECT_EQ(drain_front(q, 4), "abcd");
  q.append("ghijkl", 6);  // wraps: "ef" at 4..5, "gh" at 6..7, "ijkl" at 0..3
  EXPECT_EQ(q.pending(), 8u);
  EXPECT_EQ(q.room(), 0u);
  std::string out;
  while (q.pending()) out += drain_front(q, 100);
  EXPECT_EQ(out, "efghijkl");
  EXPECT_EQ(q.detach(), storage.data());
}

TEST(OutQueue, FrontStaysPutWhileTheBackFills) {
  std::vector<char> storage(16);
  OutQueue q;
  q.attach(storage.data(), 16);
  q.append("0123456789", 10);
  q.consumed(3);
  const char* in_flight = q.front();  // what a send in flight would be reading
  uint32_t in_flight_len = q.front_len();
  q.append("ABCDEFGHI", 9);  // fills exactly to capacity, wrapping
  EXPECT_EQ(q.front(), in_flight);
  EXPECT_EQ(std::string(in_flight, in_flight_len), "3456789");  // unchanged under the send
  q.consumed(in_flight_len);
  EXPECT_EQ(drain_front(q, 100), "ABCDEF");  // up to the end of the storage
  EXPECT_EQ(drain_front(q, 100), "GHI");     // then from its start
  EXPECT_EQ(q.pending(), 0u);
}

TEST(OutQueue, EmptyQueueRestartsAtTheBeginning) {
  std::vector<char> storage(4);
  OutQueue q;
  q.attach(storage.data(), 4);
  q.append("xyz", 3);
  q.consumed(3);
  q.append("abcd", 4);  // a full contiguous run again, not split
  EXPECT_EQ(q.front_len(), 4u);
  EXPECT_EQ(std::string(q.front(), 4), "abcd");
}

TEST(OutQueue, FreeSpaceIsTheRunAfterThePendingBytes) {
  std::vector<char> storage(8);
  OutQueue q;
  q.attach(storage.data(), 8);
  uint32_t room = 0;
  EXPECT_EQ(q.free_space(room), storage.data());  // empty: all of it
  EXPECT_EQ(room, 8u);
  std::memcpy(q.free_space(room), "abcde", 5);
  q.appended(5);
  EXPECT_EQ(q.free_space(room), storage.data() + 5);
  EXPECT_EQ(room, 3u);  // up to the end of the storage
  q.consumed(4);        // "e" left at 4
  q.append("fgh", 3);   // fills 5..7: the tail wraps to 0
  EXPECT_EQ(q.free_space(room), storage.data());
  EXPECT_EQ(room, 4u);  // up to the front (4)
  std::memcpy(q.free_space(room), "ijkl", 4);
  q.appended(4);
  q.free_space(room);
  EXPECT_EQ(room, 0u);  // full
  EXPECT_EQ(q.pending(), 8u);
  std::string out;
  while (q.pending()) out += drain_front(q, 100);
  EXPECT_EQ(out, "efghijkl");
}

}  // namespace
}  // namespace eco::session
