#include "gateway/dispatch/quiet_hours.h"
#include "gateway/dispatch/dispatcher.h"

#include <gtest/gtest.h>

namespace songda {
namespace {

// 2026-11-28T00:00:00+08:00 = 2026-11-27T16:00:00Z
constexpr std::int64_t kMidnightCst = 1795795200000LL;
constexpr std::int64_t kHour = 3600'000LL;

QuietHoursConfig night() {
  QuietHoursConfig q;
  q.enabled = true;
  q.start = "22:00";
  q.end = "08:00";
  q.utc_offset_minutes = 480;
  q.channels = {"sms"};
  return q;
}

TEST(QuietHours, NonUrgentSmsAt2300WaitsUntilEightNextMorning) {
  const std::int64_t at_2300 = kMidnightCst + 23 * kHour;
  EXPECT_EQ(quiet_hours_release(night(), "sms", false, at_2300), kMidnightCst + 32 * kHour);
}

TEST(QuietHours, AfterMidnightWaitsUntilEightTheSameMorning) {
  const std::int64_t at_0130 = kMidnightCst + kHour + kHour / 2;
  EXPECT_EQ(quiet_hours_release(night(), "sms", false, at_0130), kMidnightCst + 8 * kHour);
}

TEST(QuietHours, DaytimeGoesAtOnce) {
  const std::int64_t at_1000 = kMidnightCst + 10 * kHour;
  EXPECT_EQ(quiet_hours_release(night(), "sms", false, at_1000), at_1000);
  const std::int64_t at_0800 = kMidnightCst + 8 * kHour;  // the window's end is not quiet
  EXPECT_EQ(quiet_hours_release(night(), "sms", false, at_0800), at_0800);
  const std::int64_t at_2159 = kMidnightCst + 22 * kHour - 60'000;
  EXPECT_EQ(quiet_hours_release(night(), "sms", false, at_2159), at_2159);
}

TEST(QuietHours, UrgentRouteNeverWaits) {
  const std::int64_t at_2300 = kMidnightCst + 23 * kHour;
  EXPECT_EQ(quiet_hours_release(night(), "sms", true, at_2300), at_2300);
}

TEST(QuietHours, OtherChannelsAndDisabledConfigDoNotWait) {
  const std::int64_t at_2300 = kMidnightCst + 23 * kHour;
  EXPECT_EQ(quiet_hours_release(night(), "inapp", false, at_2300), at_2300);
  auto off = night();
  off.enabled = false;
  EXPECT_EQ(quiet_hours_release(off, "sms", false, at_2300), at_2300);
}

TEST(QuietHours, WindowWithinOneDay) {
  auto lunch = night();
  lunch.start = "12:00";
  lunch.end = "14:00";
  EXPECT_EQ(quiet_hours_release(lunch, "sms", false, kMidnightCst + 13 * kHour), kMidnightCst + 14 * kHour);
  EXPECT_EQ(quiet_hours_release(lunch, "sms", false, kMidnightCst + 15 * kHour), kMidnightCst + 15 * kHour);
}

TEST(QuietHours, ParsesClockTimes) {
  EXPECT_EQ(parse_hhmm("08:30"), 510);
  EXPECT_EQ(parse_hhmm("23:59"), 1439);
  EXPECT_EQ(parse_hhmm("24:00"), -1);
  EXPECT_EQ(parse_hhmm("8:30"), -1);
  EXPECT_EQ(parse_hhmm("ab:cd"), -1);
}

TEST(RetryPolicy, DelayGrowsExponentiallyWithJitterAndIsCapped) {
  RetryPolicy p;
  p.base_ms = 1000;
  p.max_ms = 8000;
  std::mt19937_64 rng(42);
  for (int i = 0; i < 100; ++i) {
    const auto d1 = p.delay_ms(1, rng);
    EXPECT_GE(d1, 500);
    EXPECT_LE(d1, 1000);
    const auto d3 = p.delay_ms(3, rng);
    EXPECT_GE(d3, 2000);
    EXPECT_LE(d3, 4000);
    const auto d10 = p.delay_ms(10, rng);
    EXPECT_GE(d10, 4000);
    EXPECT_LE(d10, 8000);
  }
}

}  // namespace
}  // namespace songda
