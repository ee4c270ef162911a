#include "session/tcp_session.h"

#include <gtest/gtest.h>

using eco::session::TcpSession;

TEST(TcpSession, BackpressureStopsReadingAtTheLimit) {
  TcpSession s;
  EXPECT_TRUE(s.may_read(100));
  s.received(100);
  EXPECT_EQ(s.pending(), 100u);
  EXPECT_FALSE(s.may_read(100));
  s.sent(1);
  EXPECT_TRUE(s.may_read(100));
}

TEST(TcpSession, HalfCloseFinishesOnlyWhenEverythingIsSent) {
  TcpSession s;
  s.received(10);
  s.eof();
  EXPECT_FALSE(s.may_read(1000));
  EXPECT_FALSE(s.finished());
  s.sent(9);
  EXPECT_FALSE(s.finished());
  s.sent(1);
  EXPECT_TRUE(s.finished());
}

TEST(TcpSession, IdleConnectionIsNotFinished) {
  TcpSession s;
  EXPECT_FALSE(s.finished());
  s.eof();
  EXPECT_TRUE(s.finished());
}
