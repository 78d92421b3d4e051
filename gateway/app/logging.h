// JSON logs on stderr (one object a line: time, level, msg) via spdlog, so an
// operator's log pipeline can parse them. Personal data is masked by the
// callers (see core/text.h) before it reaches a log line.
#pragma once

#include <string>

namespace songda {
// level: trace, debug, info, warn (or warning), error, critical, off, in any case; anything else throws
// StartupError naming the valid ones. json=false gives a human format (the demo).
void setup_logging(const std::string& level, bool json);
}  // namespace songda
