#include "gateway/dispatch/quiet_hours.h"

#include <algorithm>

namespace songda {

int parse_hhmm(const std::string& t) {
  if (t.size() != 5 || t[2] != ':') return -1;
  auto digit = [](char c) { return c >= '0' && c <= '9' ? c - '0' : -100; };
  const int h = digit(t[0]) * 10 + digit(t[1]);
  const int m = digit(t[3]) * 10 + digit(t[4]);
  if (h < 0 || h > 23 || m < 0 || m > 59) return -1;
  return h * 60 + m;
}

std::int64_t quiet_hours_release(const QuietHoursConfig& q, const std::string& channel, bool urgent,
                                 std::int64_t now_ms) {
  if (!q.enabled || urgent) return now_ms;
  if (std::find(q.channels.begin(), q.channels.end(), channel) == q.channels.end()) return now_ms;
  const int start = parse_hhmm(q.start);
  const int end = parse_hhmm(q.end);
  if (start < 0 || end < 0 || start == end) return now_ms;
  constexpr std::int64_t kMinute = 60'000;
  constexpr std::int64_t kDay = 24 * 60 * kMinute;
  const std::int64_t local_ms = now_ms + q.utc_offset_minutes * kMinute;
  const std::int64_t day_start = local_ms - ((local_ms % kDay) + kDay) % kDay;
  const int minute = static_cast<int>((local_ms - day_start) / kMinute);
  const bool wraps = start > end;  // e.g. 22:00 -> 08:00
  const bool quiet = wraps ? (minute >= start || minute < end) : (minute >= start && minute < end);
  if (!quiet) return now_ms;
  std::int64_t release_local = day_start + end * kMinute;
  if (wraps && minute >= start) release_local += kDay;  // after 22:00: tomorrow's 08:00
  return release_local - q.utc_offset_minutes * kMinute;
}

}  // namespace songda
