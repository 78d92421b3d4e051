// Case events for tests that need a valid one: a summons to one party (P-001, 张三, consent confirmed for
// summons.issued) at court HN-SQ-ZY, reaching the contacts given.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace songda::testing {

nlohmann::json summons_event(const std::string& event_id, const nlohmann::json& contacts);

}  // namespace songda::testing
