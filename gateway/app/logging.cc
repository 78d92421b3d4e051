#include "gateway/app/logging.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <set>

#include <nlohmann/json.hpp>

#include "gateway/core/result.h"
#include "gateway/core/text.h"

namespace songda {
namespace {

class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(msg.time.time_since_epoch()).count();
    nlohmann::json j = {{"time", rfc3339_utc(ms)},
                        {"level", std::string(spdlog::level::to_string_view(msg.level).data(),
                                              spdlog::level::to_string_view(msg.level).size())},
                        {"msg", std::string(msg.payload.data(), msg.payload.size())}};
    const std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    dest.append(line.data(), line.data() + line.size());
  }
  [[nodiscard]] std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<JsonFormatter>(); }
};

}  // namespace

void setup_logging(const std::string& level, bool json) {
  // spdlog reads any name it does not know as "off": SONGDA_LOG_LEVEL=INFO would silence even the reason a start
  // failed. Lowercase is accepted; anything else is refused by name.
  std::string name = level;
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (name == "warning") name = "warn";
  static const std::set<std::string> kKnown = {"trace", "debug", "info", "warn", "error", "critical", "off"};
  if (!kKnown.contains(name)) {
    throw StartupError("SONGDA_LOG_LEVEL=" + level +
                       " is not a log level; use one of trace, debug, info, warn, error, critical, off");
  }
  auto logger = spdlog::stderr_color_mt("songda");
  if (json)
    logger->set_formatter(std::make_unique<JsonFormatter>());
  else
    logger->set_pattern("%H:%M:%S.%e %^%l%$ %v");
  logger->set_level(spdlog::level::from_str(name));
  spdlog::set_default_logger(logger);
}

}  // namespace songda
