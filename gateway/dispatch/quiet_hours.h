// Quiet hours: a non-urgent delivery on a quiet channel (by default SMS) that
// falls due inside the court's quiet window waits until the window ends. An
// urgent route never waits. Pure; thread-safe.
#pragma once

#include <cstdint>
#include <string>

#include "gateway/config/config.h"

namespace songda {

// The earliest time >= now_ms at which this delivery may be sent.
std::int64_t quiet_hours_release(const QuietHoursConfig& q, const std::string& channel, bool urgent,
                                 std::int64_t now_ms);

// "HH:MM" -> minutes after midnight, or -1 when malformed.
int parse_hhmm(const std::string& text);

}  // namespace songda
