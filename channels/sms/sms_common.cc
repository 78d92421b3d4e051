#include "channels/sms/sms_common.h"

#include <cstdio>

namespace songda::sms {
namespace {

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
std::int64_t days_from_civil(std::int64_t y, int m, int d) {
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const std::int64_t yoe = y - era * 400;
  const std::int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const std::int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

struct Civil {
  std::int64_t year;
  int month;
  int day;
};

Civil civil_from_days(std::int64_t z) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const std::int64_t doe = z - era * 146097;
  const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const std::int64_t mp = (5 * doy + 2) / 153;
  const int d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  const int m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  return Civil{yoe + era * 400 + (m <= 2 ? 1 : 0), m, d};
}

bool is_leap(std::int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int days_in_month(std::int64_t y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : kDays[m - 1];
}

// Reads `n` ASCII digits at `pos`; -1 when any is not a digit.
int read_digits(std::string_view s, std::size_t pos, std::size_t n) {
  int v = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return -1;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

Civil split_days(std::int64_t unix_seconds, std::int64_t* seconds_of_day) {
  std::int64_t days = unix_seconds / 86400;
  std::int64_t rem = unix_seconds % 86400;
  if (rem < 0) {
    rem += 86400;
    days -= 1;
  }
  *seconds_of_day = rem;
  return civil_from_days(days);
}

}  // namespace

CodeClass classify_http(int http_status) {
  using Kind = SendOutcome::Kind;
  const std::string code = http_status == 0 ? "no_response" : "http_" + std::to_string(http_status);
  if (http_status == 0) {
    return {Kind::kRetryable, false, code, "no answer (connect failure, timeout or reset): retry; may duplicate"};
  }
  if (http_status == 408 || http_status == 429) {
    return {Kind::kRetryable, false, code, "request timeout or rate limited by the provider: retry later"};
  }
  if (http_status >= 500 && http_status <= 599) {
    return {Kind::kRetryable, false, code, "provider server error: retry later"};
  }
  if (http_status >= 200 && http_status <= 299) {
    return {Kind::kPermanent, false, code, "success status without a readable provider code: not resent"};
  }
  return {Kind::kPermanent, false, code, "request refused by the provider: resending the same request cannot help"};
}

std::optional<std::int64_t> beijing_time_to_unix_ms(std::string_view text) {
  // Exactly "YYYY-MM-DD HH:MM:SS".
  if (text.size() != 19 || text[4] != '-' || text[7] != '-' || text[10] != ' ' || text[13] != ':' || text[16] != ':') {
    return std::nullopt;
  }
  const int year = read_digits(text, 0, 4);
  const int month = read_digits(text, 5, 2);
  const int day = read_digits(text, 8, 2);
  const int hour = read_digits(text, 11, 2);
  const int minute = read_digits(text, 14, 2);
  const int second = read_digits(text, 17, 2);
  if (year < 1970 || month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23 || minute < 0 || minute > 59 ||
      second < 0 || second > 59) {
    return std::nullopt;
  }
  if (day > days_in_month(year, month)) return std::nullopt;
  constexpr std::int64_t kBeijingOffsetSeconds = 8 * 3600;
  const std::int64_t local_seconds =
      days_from_civil(year, month, day) * 86400 + std::int64_t{hour} * 3600 + std::int64_t{minute} * 60 + second;
  return (local_seconds - kBeijingOffsetSeconds) * 1000;
}

std::string iso8601_utc_seconds(std::int64_t unix_ms) {
  std::int64_t secs = unix_ms / 1000;
  if (unix_ms % 1000 < 0) secs -= 1;
  std::int64_t sod = 0;
  const Civil c = split_days(secs, &sod);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04lld-%02d-%02dT%02d:%02d:%02dZ", static_cast<long long>(c.year), c.month, c.day,
                static_cast<int>(sod / 3600), static_cast<int>(sod / 60 % 60), static_cast<int>(sod % 60));
  return buf;
}

std::string utc_date(std::int64_t unix_seconds) {
  std::int64_t sod = 0;
  const Civil c = split_days(unix_seconds, &sod);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04lld-%02d-%02d", static_cast<long long>(c.year), c.month, c.day);
  return buf;
}

}  // namespace songda::sms
