// eco bench's option parsers and the checks that refuse contradictory requests.
#include <gtest/gtest.h>

#include <string>

#include "bench/options.h"

using namespace eco::bench;

TEST(BenchOptions, RatesTakeDecimalSuffixes) {
  EXPECT_DOUBLE_EQ(*parse_rate("2000"), 2000);
  EXPECT_DOUBLE_EQ(*parse_rate("2.5k"), 2500);
  EXPECT_DOUBLE_EQ(*parse_rate("50M"), 50e6);
  EXPECT_DOUBLE_EQ(*parse_rate("1G/s"), 1e9);
  EXPECT_DOUBLE_EQ(*parse_rate("300/s"), 300);
  for (const char* bad : {"", "0", "-5", "fast", "5MB", "inf", "1e999", "10 k"}) {
    auto r = parse_rate(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.error().message.find("invalid rate"), std::string::npos) << r.error().message;
  }
}

TEST(BenchOptions, PercentilesAreAListInZeroToHundred) {
  EXPECT_EQ(*parse_percentiles("50,90,99,99.9,99.99"), (std::vector<double>{50, 90, 99, 99.9, 99.99}));
  EXPECT_EQ(*parse_percentiles("100"), (std::vector<double>{100}));
  for (const char* bad : {"", "0", "50,", ",50", "101", "50;99", "p99"}) EXPECT_FALSE(parse_percentiles(bad).ok()) << bad;
  EXPECT_FALSE(parse_percentiles("1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17").ok());
  EXPECT_EQ(percentile_label(99.9), "99.9");
  EXPECT_EQ(percentile_label(50), "50");
}

TEST(BenchOptions, RateUnitsFollowTheMode) {
  BenchOptions o;
  o.size = 1000;
  EXPECT_STREQ(rate_unit(Mode::rr), "msg/s");
  EXPECT_STREQ(rate_unit(Mode::crr), "conn/s");
  EXPECT_STREQ(rate_unit(Mode::stream), "B/s");
  o.mode = Mode::stream;
  EXPECT_DOUBLE_EQ(schedule_rate(o, 1e6), 1000) << "stream: bytes/s become messages/s";
  o.mode = Mode::crr;
  EXPECT_DOUBLE_EQ(schedule_rate(o, 500), 500);
}

TEST(BenchOptions, ContradictionsAreRefusedWithTheReason) {
  auto refused = [](BenchOptions o, bool udp, const char* says) {
    auto why = validate(o, udp);
    ASSERT_TRUE(why.has_value()) << says;
    EXPECT_NE(why->find(says), std::string::npos) << *why;
  };
  BenchOptions base;
  EXPECT_FALSE(validate(base, false).has_value());
  BenchOptions o = base;
  o.find_rate = "p99<1ms";
  EXPECT_FALSE(validate(o, false).has_value());
  o.rate = 100;
  refused(o, false, "cannot be combined with --rate");
  o = base;
  o.find_rate = "p99<1ms";
  o.reps = 3;
  refused(o, false, "--find-rate and --reps");
  o = base;
  o.reps = 0;
  refused(o, false, "--reps must be at least 1");
  o = base;
  o.cooldown_s = 1;
  refused(o, false, "--cooldown is the pause");
  o.reps = 2;
  EXPECT_FALSE(validate(o, false).has_value());
  o = base;
  o.rate = 100;
  o.depth = 2;
  refused(o, false, "--depth is for the closed loop");
  o = base;
  o.mode = Mode::crr;
  o.rate = 100;
  o.connect_rate = 10;
  refused(o, false, "--connect-rate ramps");
  o = base;
  o.mode = Mode::stream;
  o.size = 65536;
  o.rate = 1000;
  refused(o, false, "less than one message");
  o = base;
  o.source_ips = {"127.0.0.2"};
  o.conns_per_source_given = true;
  refused(o, false, "--conns-per-source");
  o = base;
  o.mode = Mode::crr;
  refused(o, true, "TCP only");
  o = base;
  o.confidence = 50;
  refused(o, false, "--confidence");
}
