// session::DeadlineList / ConnTimers: O(1) ordered lists of connection slots; expiry
// walks only the front.
#include "session/deadline_list.h"

#include <gtest/gtest.h>

#include <vector>

namespace eco::session {
namespace {

TEST(DeadlineList, KeepsOrderAndTouchMovesToTheBack) {
  DeadlineList l;
  EXPECT_TRUE(l.empty());
  l.push_back(3, 10);
  l.push_back(7, 20);
  l.push_back(1, 30);
  EXPECT_EQ(l.front(), 3u);
  l.touch(3, 40);
  EXPECT_EQ(l.front(), 7u);
  l.remove(7);
  EXPECT_EQ(l.front(), 1u);
  EXPECT_EQ(l.front_stamp(), 30u);
  l.remove(1);
  l.remove(1);  // twice is harmless
  EXPECT_EQ(l.front(), 3u);
  l.remove(3);
  EXPECT_TRUE(l.empty());
  EXPECT_FALSE(l.contains(3));
}

TEST(ConnTimers, ExpiresEachKindAtItsDeadline) {
  ConnTimers t(/*idle*/ 100, /*duration*/ 1000, /*proxy*/ 50);
  t.opened(0, 0);
  t.opened(1, 0);
  t.await_proxy(1, 0);
  t.opened(2, 0);
  std::vector<std::pair<uint32_t, Reject>> out;
  auto collect = [&](uint32_t s, Reject r) { out.push_back({s, r}); };
  EXPECT_EQ(t.next_deadline(), 50u);
  t.expire(49, collect);
  EXPECT_TRUE(out.empty());
  t.expire(50, collect);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0], std::make_pair(1u, Reject::proxy_timeout));
  t.activity(0, 90);  // slot 0 stays busy; slot 2 goes idle
  t.expire(100, collect);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1], std::make_pair(2u, Reject::idle_timeout));
  t.activity(0, 950);
  t.expire(1000, collect);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[2], std::make_pair(0u, Reject::max_duration));
  EXPECT_EQ(t.next_deadline(), UINT64_MAX);
}

TEST(ConnTimers, ClosedSlotsLeaveEveryList) {
  ConnTimers t(100, 100, 100);
  t.opened(5, 0);
  t.await_proxy(5, 0);
  t.closed(5);
  int n = 0;
  t.expire(1000, [&](uint32_t, Reject) { ++n; });
  EXPECT_EQ(n, 0);
}

}  // namespace
}  // namespace eco::session
