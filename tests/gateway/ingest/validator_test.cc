// Unit tests for gateway/ingest/validator: what the ingest gate lets through,
// and the DLQ reason code for everything it refuses.
#include "gateway/ingest/validator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>

namespace songda {
namespace {

using nlohmann::json;
using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr std::size_t kMaxBytes = 64 * 1024;

json valid_event() {
  return json::parse(R"({
    "schema": "songda.case-event/v1",
    "event_id": "2f6c1b0e-6d1a-4d0b-9a51-0000000000aa",
    "type": "summons.issued",
    "occurred_at": "2026-11-28T09:00:00+08:00",
    "court": {"id": "HN-SQ-ZY", "name": "商丘市中级人民法院"},
    "case": {"number": "(2026)豫14民初123号", "title": "张三诉李四买卖合同纠纷"},
    "document": {"id": "DOC-1", "title": "传票",
                 "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "pages": 2},
    "recipients": [
      {"id": "P-001", "role": "party", "name": "张三",
       "contacts": {"mobile": "+8613800000001", "app_user": "u-zhangsan"},
       "consent": {"basis": "confirmed", "scope": ["summons.issued"], "ref": "CONSENT-1"}},
      {"id": "L-007", "role": "lawyer", "name": "王律师",
       "contacts": {"email": "wang@lawfirm.cn"},
       "consent": {"basis": "provided", "scope": ["*"], "ref": "LAWYER-REG-88"}}
    ],
    "params": {"hearing_time": "2026-12-10 09:30", "courtroom": "第三法庭"}
  })");
}

class ValidatorTest : public ::testing::Test {
 protected:
  EventValidator validator_{EventValidator::default_schema_path(), kMaxBytes};

  Result<CaseEvent> check(const json& j) const { return validator_.validate(j.dump()); }

  static void expect_error(const Result<CaseEvent>& r, const std::string& code) {
    ASSERT_FALSE(r.ok()) << "expected " << code;
    EXPECT_EQ(r.error().code, code) << r.error().message;
    EXPECT_FALSE(r.error().retryable) << "bad input never gets better by retrying";
    EXPECT_FALSE(r.error().message.empty());
  }
};

TEST_F(ValidatorTest, BaselineEventIsValid) {
  const auto r = check(valid_event());
  ASSERT_TRUE(r.ok()) << r.error().code << ": " << r.error().message;
  EXPECT_EQ(r->event_id, "2f6c1b0e-6d1a-4d0b-9a51-0000000000aa");
  EXPECT_EQ(r->recipients.size(), 2u);
  EXPECT_EQ(r->digest.size(), 64u);
}

TEST_F(ValidatorTest, EveryShippedExampleValidates) {
  const std::filesystem::path dir = std::filesystem::path(SONGDA_SOURCE_DIR) / "schemas" / "examples";
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".json") continue;
    std::ifstream in(entry.path());
    std::stringstream ss;
    ss << in.rdbuf();
    const auto r = validator_.validate(ss.str());
    EXPECT_TRUE(r.ok()) << entry.path() << ": " << (r.ok() ? "" : r.error().code + ": " + r.error().message);
    ++count;
  }
  EXPECT_GE(count, 3) << "examples missing from " << dir;
}

TEST_F(ValidatorTest, SizeLimitIsRespectedExactlyAtTheBoundary) {
  const std::string bytes = valid_event().dump();
  EventValidator exact(EventValidator::default_schema_path(), bytes.size());
  EXPECT_TRUE(exact.validate(bytes).ok());
  EventValidator one_less(EventValidator::default_schema_path(), bytes.size() - 1);
  const auto r = one_less.validate(bytes);
  expect_error(r, "too_large");
  EXPECT_THAT(r.error().message,
              AllOf(HasSubstr(std::to_string(bytes.size())), HasSubstr(std::to_string(bytes.size() - 1))));
}

TEST_F(ValidatorTest, SizeIsCheckedBeforeAnythingElse) {
  EventValidator tiny(EventValidator::default_schema_path(), 4);
  expect_error(tiny.validate("\xC0\xAF not json"), "too_large");
}

TEST_F(ValidatorTest, InvalidUtf8IsRefused) {
  std::string bytes = valid_event().dump();
  const auto pos = bytes.find("张三");
  ASSERT_NE(pos, std::string::npos);
  bytes.replace(pos, 3, "\xC0\xAF\x20");  // overlong '/' where the name starts
  expect_error(validator_.validate(bytes), "invalid_utf8");
  expect_error(validator_.validate("{\"type\":\"\xED\xA0\x80\"}"), "invalid_utf8");  // surrogate
}

TEST_F(ValidatorTest, InvalidJsonIsRefused) {
  for (const std::string& bad : {std::string(), std::string("{"), std::string("{\"type\": }"),
                                 valid_event().dump() + "}", std::string("{'type':'x'}")}) {
    expect_error(validator_.validate(bad), "invalid_json");
  }
}

// 100,000 nested arrays in a field the schema does not look at (200 KB, under the size limit): before, the
// event passed validation and the digest's dump() overflowed the stack, ending the process at every restart.
TEST_F(ValidatorTest, AnEventNestedTooDeepIsRefusedNotACrash) {
  std::string bytes = valid_event().dump();
  bytes.pop_back();
  bytes += ",\"x\":" + std::string(100000, '[') + std::string(100000, ']') + "}";
  const EventValidator one_mib(EventValidator::default_schema_path(), 1 << 20);  // the shipped limit
  const auto r = one_mib.validate(bytes);
  expect_error(r, "invalid_json");
  EXPECT_THAT(r.error().message, HasSubstr("nested deeper than 64"));
}

// Before, the second recipient with the same id mapped to the first one's delivery ids and was never served, while
// the event was accepted.
TEST_F(ValidatorTest, TwoRecipientsWithOneIdAreRefused) {
  json j = valid_event();
  json second = j["recipients"][0];
  second["name"] = "李四";
  second["contacts"] = {{"mobile", "+8613900000002"}};
  j["recipients"].push_back(second);
  const auto r = check(j);
  expect_error(r, "duplicate_recipient");
  EXPECT_THAT(r.error().message, HasSubstr(j["recipients"][0]["id"].get<std::string>()));
}

TEST_F(ValidatorTest, JsonThatIsNotAnObjectIsRefused) {
  expect_error(validator_.validate("[1,2,3]"), "invalid_json");
  expect_error(validator_.validate("\"summons.issued\""), "invalid_json");
  expect_error(validator_.validate("null"), "invalid_json");
}

TEST_F(ValidatorTest, UnknownTypeIsRefusedAndNamed) {
  json j = valid_event();
  j["type"] = "summons.recalled";
  const auto r = check(j);
  expect_error(r, "unknown_type");
  EXPECT_THAT(r.error().message, HasSubstr("summons.recalled"));
}

TEST_F(ValidatorTest, EveryDocumentedTypeIsKnown) {
  for (const char* type :
       {"case.filed", "summons.issued", "hearing.scheduled", "hearing.rescheduled", "hearing.cancelled",
        "document.served", "judgment.issued", "payment.due", "mediation.invited", "notice.general"}) {
    json j = valid_event();
    j["type"] = type;
    j["recipients"][0]["consent"]["scope"] = json::array({type});
    const auto r = check(j);
    EXPECT_TRUE(r.ok()) << type << ": " << (r.ok() ? "" : r.error().code + " " + r.error().message);
  }
}

TEST_F(ValidatorTest, NoRecipientsIsRefused) {
  json missing = valid_event();
  missing.erase("recipients");
  expect_error(check(missing), "no_recipients");
  json empty = valid_event();
  empty["recipients"] = json::array();
  expect_error(check(empty), "no_recipients");
  json wrong = valid_event();
  wrong["recipients"] = json::object();
  expect_error(check(wrong), "no_recipients");
}

TEST_F(ValidatorTest, BadDocumentDigestIsASchemaErrorNamingThePath) {
  json j = valid_event();
  j["document"]["sha256"] = "not-a-digest";
  const auto r = check(j);
  expect_error(r, "schema");
  EXPECT_THAT(r.error().message, HasSubstr("[document][sha256]"));
  // Uppercase hex is refused too: the schema says lowercase.
  j["document"]["sha256"] = "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08";
  expect_error(check(j), "schema");
  // 63 hex digits.
  j["document"]["sha256"] = std::string(63, 'a');
  expect_error(check(j), "schema");
}

// valijson tries a "pattern" with std::regex, which libstdc++ runs one stack frame per character: a patterned field
// of some tens of thousands of characters overflowed the stack, and the crash came back on every instance that took
// the partition. Within the 1 MiB event limit, each such field is now refused by its length, by name.
TEST_F(ValidatorTest, AHugeValueInAPatternedFieldIsRefusedNotACrash) {
  const EventValidator production(EventValidator::default_schema_path(), 1024 * 1024);
  const std::string huge(500'000, 'a');
  const std::string digits(500'000, '1');
  struct Case {
    std::function<void(json&)> set;
    std::string path;
  };
  const std::vector<Case> cases = {
      {[&](json& j) { j["event_id"] = huge; }, "[event_id]"},
      {[&](json& j) { j["occurred_at"] = digits; }, "[occurred_at]"},
      {[&](json& j) { j["document"]["sha256"] = huge; }, "[document][sha256]"},
      {[&](json& j) { j["recipients"][1]["contacts"]["mobile"] = digits; }, "[recipients][1][contacts][mobile]"},
      {[&](json& j) { j["recipients"][0]["contacts"]["app_user"] = huge; }, "[recipients][0][contacts][app_user]"},
      {[&](json& j) { j["recipients"][1]["contacts"]["email"] = huge + "@x.cn"; }, "[recipients][1][contacts][email]"},
  };
  for (const auto& c : cases) {
    json j = valid_event();
    c.set(j);
    const auto r = production.validate(j.dump());
    expect_error(r, "schema");
    EXPECT_THAT(r.error().message, HasSubstr(c.path));
  }
  // Long text where no pattern applies is still taken (a template parameter, within the event limit).
  json j = valid_event();
  j["params"]["notice_text"] = std::string(300'000, 'x');
  EXPECT_TRUE(production.validate(j.dump()).ok());
}

TEST_F(ValidatorTest, MissingCourtIsASchemaErrorNamingCourt) {
  json j = valid_event();
  j.erase("court");
  const auto r = check(j);
  expect_error(r, "schema");
  EXPECT_THAT(r.error().message, HasSubstr("court"));
  json no_name = valid_event();
  no_name["court"].erase("name");
  const auto r2 = check(no_name);
  expect_error(r2, "schema");
  EXPECT_THAT(r2.error().message, AllOf(HasSubstr("court"), HasSubstr("name")));
}

TEST_F(ValidatorTest, BadRoleIsASchemaErrorNamingTheRecipientPath) {
  json j = valid_event();
  j["recipients"][1]["role"] = "judge";
  const auto r = check(j);
  expect_error(r, "schema");
  EXPECT_THAT(r.error().message, HasSubstr("[recipients][1][role]"));
}

TEST_F(ValidatorTest, OtherSchemaViolations) {
  const auto mutate = [&](auto&& f) {
    json j = valid_event();
    f(j);
    return check(j);
  };
  expect_error(mutate([](json& j) { j["schema"] = "songda.case-event/v2"; }), "schema");
  expect_error(mutate([](json& j) { j.erase("event_id"); }), "schema");
  expect_error(mutate([](json& j) { j["event_id"] = "has space"; }), "schema");
  expect_error(mutate([](json& j) { j["occurred_at"] = "28/11/2026 09:00"; }), "schema");
  expect_error(mutate([](json& j) { j["case"] = json::object(); }), "schema");
  expect_error(mutate([](json& j) { j["urgent"] = "yes"; }), "schema");
  expect_error(mutate([](json& j) { j["recipients"][0]["contacts"]["mobile"] = "call me"; }), "schema");
  expect_error(mutate([](json& j) { j["recipients"][0]["contacts"]["email"] = "no-at-sign"; }), "schema");
  expect_error(mutate([](json& j) { j["recipients"][0]["contacts"] = json::object(); }), "schema");
  expect_error(mutate([](json& j) { j["recipients"][0].erase("consent"); }), "schema");
  expect_error(mutate([](json& j) { j["recipients"][0]["consent"]["basis"] = "assumed"; }), "schema");
  expect_error(mutate([](json& j) { j["params"]["nested"] = json::object({{"a", 1}}); }), "schema");
  expect_error(mutate([](json& j) { j["type"] = 7; }), "schema");
}

TEST_F(ValidatorTest, ConsentScopeMustCoverTheEventType) {
  json j = valid_event();
  j["recipients"][0]["consent"]["scope"] = json::array({"hearing.scheduled"});
  const auto r = check(j);
  expect_error(r, "consent_scope");
  EXPECT_THAT(r.error().message, AllOf(HasSubstr("P-001"), HasSubstr("summons.issued")));
}

TEST_F(ValidatorTest, ConsentWithoutScopeDoesNotCoverAnything) {
  json j = valid_event();
  j["recipients"][1]["consent"].erase("scope");
  const auto r = check(j);
  expect_error(r, "consent_scope");
  EXPECT_THAT(r.error().message, HasSubstr("L-007"));
}

TEST_F(ValidatorTest, WildcardScopeIsAccepted) {
  json j = valid_event();
  j["recipients"][0]["consent"]["scope"] = json::array({"*"});
  EXPECT_TRUE(check(j).ok());
}

TEST_F(ValidatorTest, BasisNoneNeedsNoScope) {
  json j = valid_event();
  j["recipients"][0]["consent"] = json::object({{"basis", "none"}});
  const auto r = check(j);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->recipients[0].consent.basis, "none");
}

TEST_F(ValidatorTest, RecipientWithoutAnyUsableContactIsRefused) {
  json j = valid_event();
  j["recipients"][1]["contacts"] = json::object({{"fax", "0371-12345678"}});
  const auto r = check(j);
  expect_error(r, "no_contact");
  EXPECT_THAT(r.error().message, HasSubstr("L-007"));
}

TEST_F(ValidatorTest, UnknownExtraFieldsAreAcceptedAndKept) {
  json j = valid_event();
  j["x_source"] = {{"system", "CMS-3"}, {"trace", "abc"}};
  j["recipients"][0]["x_note"] = "prefers SMS";
  j["court"]["region"] = "豫";
  j["recipients"][0]["contacts"]["fax"] = "0371-12345678";
  const auto r = check(j);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->raw.at("x_source").at("system"), "CMS-3");
  EXPECT_EQ(r->raw.at("recipients").at(0).at("x_note"), "prefers SMS");
  EXPECT_EQ(r->raw.at("court").at("region"), "豫");
}

TEST_F(ValidatorTest, SameEventInAnotherKeyOrderHasTheSameDigest) {
  const json j = valid_event();
  // Hand-written with a different key order at the top level.
  std::string reordered = "{";
  bool first = true;
  std::vector<std::string> keys;
  for (const auto& [k, v] : j.items()) keys.push_back(k);
  for (auto k = keys.rbegin(); k != keys.rend(); ++k) {
    reordered += (first ? "" : ",") + json(*k).dump() + ":" + j.at(*k).dump();
    first = false;
  }
  reordered += "}";
  const auto a = validator_.validate(j.dump());
  const auto b = validator_.validate(reordered);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(a->digest, b->digest);
}

TEST(ValidatorStartup, MissingSchemaFileIsAStartupErrorNamingIt) {
  try {
    EventValidator v("/nonexistent/songda/schema.json", 1024);
    FAIL() << "expected StartupError";
  } catch (const StartupError& e) {
    EXPECT_THAT(e.what(), HasSubstr("/nonexistent/songda/schema.json"));
  }
}

}  // namespace
}  // namespace songda
