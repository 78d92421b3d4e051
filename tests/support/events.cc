#include "tests/support/events.h"

#include "gateway/core/crypto.h"

namespace songda::testing {

nlohmann::json summons_event(const std::string& event_id, const nlohmann::json& contacts) {
  return {{"schema", "songda.case-event/v1"},
          {"event_id", event_id},
          {"type", "summons.issued"},
          {"occurred_at", "2026-11-28T09:00:00+08:00"},
          {"court", {{"id", "HN-SQ-ZY"}, {"name", "商丘市中级人民法院"}}},
          {"case", {{"number", "(2026)豫14民初123号"}, {"title", "张三诉李四"}}},
          {"document", {{"id", "DOC-1"}, {"title", "传票"}, {"sha256", sha256_hex("the summons")}}},
          {"recipients",
           {{{"id", "P-001"},
             {"role", "party"},
             {"name", "张三"},
             {"contacts", contacts},
             {"consent", {{"basis", "confirmed"}, {"scope", {"summons.issued"}}, {"ref", "CONSENT-1"}}}}}},
          {"params", {{"hearing_time", "2026-12-10 09:30"}, {"courtroom", "第三法庭"}}}};
}

}  // namespace songda::testing
