// Shared SMS helpers: transport-level classification and the time formats.
#include "channels/sms/sms_common.h"

#include <gtest/gtest.h>

namespace songda::sms {
namespace {

using Kind = SendOutcome::Kind;

TEST(ClassifyHttp, TimeoutsAnd5xxAreRetryable) {
  EXPECT_EQ(classify_http(0).kind, Kind::kRetryable);
  EXPECT_EQ(classify_http(0).code, "no_response");
  EXPECT_EQ(classify_http(500).kind, Kind::kRetryable);
  EXPECT_EQ(classify_http(502).kind, Kind::kRetryable);
  EXPECT_EQ(classify_http(503).code, "http_503");
  EXPECT_EQ(classify_http(504).kind, Kind::kRetryable);
  EXPECT_EQ(classify_http(408).kind, Kind::kRetryable);
  EXPECT_EQ(classify_http(429).kind, Kind::kRetryable);
}

TEST(ClassifyHttp, OtherStatusesArePermanent) {
  EXPECT_EQ(classify_http(400).kind, Kind::kPermanent);
  EXPECT_EQ(classify_http(403).kind, Kind::kPermanent);
  EXPECT_EQ(classify_http(404).kind, Kind::kPermanent);
  EXPECT_EQ(classify_http(200).kind, Kind::kPermanent);  // 200 without a readable code
}

TEST(BeijingTime, ConvertsToUtcMilliseconds) {
  EXPECT_EQ(beijing_time_to_unix_ms("2017-01-01 00:00:00"), 1483200000000);
  EXPECT_EQ(beijing_time_to_unix_ms("1970-01-01 08:00:00"), 0);
  EXPECT_EQ(beijing_time_to_unix_ms("2024-02-29 23:59:59"), 1709222399000);
  EXPECT_EQ(beijing_time_to_unix_ms("2015-10-17 08:03:04"), 1445040184000);
}

TEST(BeijingTime, RefusesMalformedText) {
  EXPECT_FALSE(beijing_time_to_unix_ms(""));
  EXPECT_FALSE(beijing_time_to_unix_ms("2017-01-01T00:00:00"));
  EXPECT_FALSE(beijing_time_to_unix_ms("2017-01-01 00:00:00Z"));
  EXPECT_FALSE(beijing_time_to_unix_ms("2017-13-01 00:00:00"));
  EXPECT_FALSE(beijing_time_to_unix_ms("2023-02-29 00:00:00"));
  EXPECT_FALSE(beijing_time_to_unix_ms("2017-01-01 24:00:00"));
  EXPECT_FALSE(beijing_time_to_unix_ms("2017-01-01 00:60:00"));
  EXPECT_FALSE(beijing_time_to_unix_ms("2017-0a-01 00:00:00"));
  EXPECT_FALSE(beijing_time_to_unix_ms("+017-01-01 00:00:00"));
}

TEST(UtcFormats, IsoSecondsAndDate) {
  EXPECT_EQ(iso8601_utc_seconds(1499827339000), "2017-07-12T02:42:19Z");
  EXPECT_EQ(iso8601_utc_seconds(1499827339999), "2017-07-12T02:42:19Z");
  EXPECT_EQ(iso8601_utc_seconds(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(utc_date(1551113065), "2019-02-25");
  EXPECT_EQ(utc_date(951782400), "2000-02-29");
}

}  // namespace
}  // namespace songda::sms
