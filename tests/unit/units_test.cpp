#include "util/units.h"

#include <gtest/gtest.h>

using namespace eco;

TEST(ParseSize, UnitsAreBinary) {
  EXPECT_EQ(*parse_size("65536"), 65536u);
  EXPECT_EQ(*parse_size("64K"), 65536u);
  EXPECT_EQ(*parse_size("64KiB"), 65536u);
  EXPECT_EQ(*parse_size("1m"), 1u << 20);
  EXPECT_EQ(*parse_size("2G"), 2ull << 30);
  EXPECT_EQ(*parse_size("7b"), 7u);
}

TEST(ParseSize, RejectsGarbageWithAMessage) {
  for (const char* s : {"", "K", "-1", "12Q", "1.5K", "99999999999999999999"}) {
    auto r = parse_size(s);
    EXPECT_FALSE(r.ok()) << s;
    if (!r.ok()) {
      EXPECT_NE(r.error().message.find("invalid size"), std::string::npos);
    }
  }
}

TEST(ParseDuration, Units) {
  EXPECT_DOUBLE_EQ(*parse_duration("5"), 5.0);
  EXPECT_DOUBLE_EQ(*parse_duration("2.5s"), 2.5);
  EXPECT_DOUBLE_EQ(*parse_duration("500ms"), 0.5);
  EXPECT_DOUBLE_EQ(*parse_duration("1m"), 60.0);
  EXPECT_FALSE(parse_duration("-1").ok());
  EXPECT_FALSE(parse_duration("soon").ok());
  EXPECT_FALSE(parse_duration("5 days").ok());
}

TEST(FormatBytes, PicksAUnit) {
  EXPECT_EQ(format_bytes(512), "512 B");
  EXPECT_EQ(format_bytes(1536), "1.5 KiB");
  EXPECT_EQ(format_bytes(3.0 * (1 << 20)), "3.0 MiB");
}
