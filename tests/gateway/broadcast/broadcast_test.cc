// Unit tier for broadcasts: member checks and imports (CSV and JSON, a bad row never blocks the good ones),
// masking, the broadcast request and its checks against the shipped config, page planning (deterministic
// delivery ids, per-page dedup key, unreachable members) and the progress view. No services.
#include <gtest/gtest.h>

#include "gateway/broadcast/members.h"
#include "gateway/broadcast/repository.h"
#include "gateway/broadcast/spec.h"

namespace songda::broadcast {
namespace {

using Json = nlohmann::json;

Config shipped() {
  auto loaded = load_config_file(std::string(SONGDA_SOURCE_DIR) + "/config/gateway.yaml");
  EXPECT_TRUE(loaded.config.has_value());
  return *loaded.config;
}

Json member(const std::string& id, const std::string& mobile = "+8613800000001") {
  return {{"id", id},
          {"name", "王律师"},
          {"firm", "河南某某律师事务所"},
          {"contacts", {{"mobile", mobile}, {"app_user", "law-" + id}}},
          {"consent", {{"basis", "confirmed"}, {"scope", {"notice.broadcast"}}, {"ref", "REG-1"}}}};
}

TEST(Csv, QuotesCommasNewlinesAndBom) {
  auto rows = parse_csv("\xEF\xBB\xBFid,name\r\nL1,\"张, 三\"\r\nL2,\"说\"\"好\"\"\nof two lines\"\n\n");
  ASSERT_TRUE(rows.ok()) << rows.error().message;
  ASSERT_EQ(rows->size(), 3u);
  EXPECT_EQ((*rows)[0][0], "id");
  EXPECT_EQ((*rows)[1][1], "张, 三");
  EXPECT_EQ((*rows)[2][1], "说\"好\"\nof two lines");
}

TEST(Csv, UnterminatedQuoteIsAnErrorNamingTheLine) {
  auto rows = parse_csv("id,name\nL1,\"open\n");
  ASSERT_FALSE(rows.ok());
  EXPECT_EQ(rows.error().code, "invalid_csv");
  EXPECT_NE(rows.error().message.find("line"), std::string::npos);
  EXPECT_FALSE(parse_csv("id,name\nL1,\"a\"b\n").ok());
}

TEST(Import, BadCsvRowsAreReportedAndGoodRowsKept) {
  const std::string csv =
      "id,name,firm,mobile,email,consent_basis,consent_scope\n"
      "L001,李律师,甲律所,+8613800000001,,confirmed,notice.broadcast;summons.issued\n"
      "L002,,乙律所,+8613800000002,,confirmed,\n"  // no name
      "L003,赵律师,丙律所,12ab,,provided,\n"       // bad mobile
      "L004,钱律师,丁律所,,qian@law.cn,maybe,\n"   // bad basis
      "L005,孙律师,戊律所,,sun@law.cn,obtained,*\n"
      "L001,李律师又一次,甲律所,+8613800000009,,confirmed,*\n"          // repeated id
      "L006,周律师,己律所,,,confirmed,*\n"                              // no contact
      "L007,吴律师,庚律所,+8613800000007,,confirmed,summons.issued\n";  // consent does not cover broadcasts
  auto parsed = parse_members_csv(csv);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  ASSERT_EQ(parsed->members.size(), 2u);
  EXPECT_EQ(parsed->members[0].recipient.id, "L001");
  EXPECT_EQ(parsed->members[0].recipient.consent.scope,
            (std::vector<std::string>{"notice.broadcast", "summons.issued"}));
  EXPECT_EQ(parsed->members[0].recipient.role, "lawyer");
  EXPECT_EQ(parsed->members[1].recipient.id, "L005");
  ASSERT_EQ(parsed->errors.size(), 6u);
  EXPECT_EQ(parsed->errors[0].row, 2u);
  EXPECT_EQ(parsed->errors[0].field, "name");
  EXPECT_EQ(parsed->errors[1].field, "contacts.mobile");
  EXPECT_EQ(parsed->errors[1].id, "L003");
  EXPECT_EQ(parsed->errors[2].field, "consent.basis");
  EXPECT_EQ(parsed->errors[3].code, "duplicate_member");
  EXPECT_EQ(parsed->errors[4].field, "contacts");
  EXPECT_EQ(parsed->errors[5].field, "consent.scope");
}

TEST(Import, WholeFileProblemsAreErrors) {
  EXPECT_EQ(parse_members_csv("").error().code, "invalid_csv");
  EXPECT_EQ(parse_members_csv("id,name,phone\n").error().code, "invalid_csv");  // unknown column
  EXPECT_EQ(parse_members_csv("id,mobile\n").error().code, "invalid_csv");      // name missing
  EXPECT_EQ(parse_members_csv("id,name,consent_basis\n\xff\xfe,x,none\n").error().code, "invalid_utf8");
  EXPECT_EQ(parse_members_json("{\"members\": [").error().code, "invalid_json");
  EXPECT_EQ(parse_members_json("\"x\xc3\"").error().code, "invalid_utf8");
  EXPECT_EQ(parse_members_json("{\"people\": []}").error().code, "invalid_json");
}

// An import is refused while it is parsed, before it takes memory out of proportion to its size: a line of 8 MiB of
// commas was millions of strings first; and a huge value never reaches a regex (std::regex recurses per character).
TEST(Import, OversizedInputIsRefusedWhileParsing) {
  EXPECT_EQ(parse_csv("id,name\n" + std::string(8 * 1024 * 1024, ',') + "\n").error().code, "invalid_csv");
  std::string rows = "id,name,consent_basis\n";
  for (std::size_t i = 0; i <= kMaxImportRows; ++i) rows += "L" + std::to_string(i) + ",x,none\n";
  EXPECT_EQ(parse_members_csv(rows).error().code, "too_large");
  Json m = member("L1");
  m["contacts"]["email"] = std::string(500'000, 'a') + "@x.cn";
  auto parsed = parse_members_json(Json{{"members", {m}}}.dump());
  ASSERT_TRUE(parsed.ok());
  ASSERT_EQ(parsed->errors.size(), 1u);
  EXPECT_EQ(parsed->errors[0].field, "contacts.email");
}

TEST(Import, JsonRowsCheckedOneByOne) {
  Json bad = member("L2");
  bad["contacts"]["fax"] = "123";
  Json body = {{"members", {member("L1"), bad, 42, member("L3", "+8613800000003")}}};
  auto parsed = parse_members_json(body.dump());
  ASSERT_TRUE(parsed.ok());
  ASSERT_EQ(parsed->members.size(), 2u);
  ASSERT_EQ(parsed->errors.size(), 2u);
  EXPECT_EQ(parsed->errors[0].row, 2u);
  EXPECT_EQ(parsed->errors[0].field, "contacts.fax");
  EXPECT_EQ(parsed->errors[1].row, 3u);
}

TEST(Members, MaskedViewShowsNoRawContact) {
  auto m = member_from_json(
      {{"id", "L1"},
       {"name", "王律师"},
       {"contacts", {{"mobile", "+8613812345678"}, {"email", "wang.lawyer@law.cn"}, {"wechat_openid", "oABCDEF123"}}},
       {"consent", {{"basis", "provided"}, {"scope", {"*"}}}}});
  ASSERT_TRUE(m.ok()) << m.error().message;
  const std::string shown = member_to_masked_json(m.value()).dump();
  EXPECT_EQ(shown.find("13812345678"), std::string::npos);
  EXPECT_EQ(shown.find("wang.lawyer"), std::string::npos);
  EXPECT_EQ(shown.find("oABCDEF123"), std::string::npos);
  const std::string stored = member_to_json(m.value()).dump();
  EXPECT_NE(stored.find("+8613812345678"), std::string::npos) << "the stored form keeps what sending needs";
}

Json request() {
  return {{"id", "bc-2026-001"},
          {"group_id", "sq-lawyers"},
          {"params", {{"notice_title", "网上立案操作指引"}, {"notice_text", "自12月1日起……"}}},
          {"channels", {"inapp", "sms"}}};
}

TEST(Spec, DefaultsComeFromTheBroadcastRoute) {
  const Config c = shipped();
  Json body = request();
  body.erase("channels");
  auto s = spec_from_request(body, c);
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->template_name, "lawyer_broadcast");
  EXPECT_EQ(s->channels, (std::vector<std::string>{"inapp", "wechat", "email", "sms"}));
  EXPECT_EQ(s->event_id, "broadcast:bc-2026-001");
  EXPECT_EQ(s->reference, "broadcast:bc-2026-001");
  EXPECT_EQ(s->title, "网上立案操作指引");
  EXPECT_TRUE(check_spec(s.value(), c, nullptr).ok());
}

TEST(Spec, BadRequestsNameTheField) {
  const Config c = shipped();
  auto expect_bad = [&](Json body, const std::string& field) {
    auto s = spec_from_request(body, c);
    ASSERT_FALSE(s.ok()) << body.dump();
    EXPECT_EQ(s.error().code, "invalid_request");
    EXPECT_EQ(s.error().message.rfind(field, 0), 0u) << s.error().message;
  };
  Json b = request();
  b.erase("id");
  expect_bad(b, "id");
  b = request();
  b["channels"] = {"fax"};
  expect_bad(b, "channels");
  b = request();
  b["params"] = {{"x", {{"nested", 1}}}};
  expect_bad(b, "params.x");
  b = request();
  b["colour"] = "red";
  expect_bad(b, "colour");
  b = request();
  b["fallback"] = {{{"from", "inapp"}, {"to", "sms"}, {"unless", "READ"}}};
  expect_bad(b, "fallback.after_s");
  b = request();
  b["document"] = {{"id", "D"}, {"title", "t"}, {"sha256", "XYZ"}};
  expect_bad(b, "document.sha256");
}

TEST(Spec, MissingTemplateParamOrUnconfiguredChannelIsRefused) {
  const Config c = shipped();
  Json b = request();
  b["params"].erase("notice_text");
  auto s = spec_from_request(b, c);
  ASSERT_TRUE(s.ok());
  auto checked = check_spec(s.value(), c, nullptr);
  ASSERT_FALSE(checked.ok());
  EXPECT_EQ(checked.error().code, "template_param_missing");

  auto s2 = spec_from_request(request(), c);
  ASSERT_TRUE(s2.ok());
  auto no_sms = check_spec(s2.value(), c, [](const std::string& ch) { return ch != "sms"; });
  ASSERT_FALSE(no_sms.ok());
  EXPECT_NE(no_sms.error().message.find("sms"), std::string::npos);
}

TEST(Spec, DigestFollowsContentAndJsonRoundTrips) {
  const Config c = shipped();
  auto a = spec_from_request(request(), c).value();
  auto b = spec_from_request(request(), c).value();
  EXPECT_EQ(spec_digest(a), spec_digest(b));
  b.params["notice_title"] = "另一份通知";
  EXPECT_NE(spec_digest(a), spec_digest(b));
  a.court_id = "HN-SQ-ZY";
  a.court_name = "商丘市中级人民法院";
  auto back = spec_from_json(spec_to_json(a));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(spec_digest(back.value()), spec_digest(a));
}

// A notice.broadcast event naming the group sq-lawyers.
CaseEvent broadcast_event(const std::string& event_id) {
  CaseEvent e;
  e.event_id = event_id;
  e.type = "notice.broadcast";
  e.court_id = "HN-SQ-ZY";
  e.court_name = "商丘市中级人民法院";
  e.case_number = "商中法〔2026〕12号";
  e.params = {{"notice_title", "t"}, {"notice_text", "x"}};
  e.raw = {{"broadcast", {{"group_id", "sq-lawyers"}}}};
  return e;
}

TEST(Spec, EventNamingAGroupBecomesABroadcast) {
  const Config c = shipped();
  CaseEvent e = broadcast_event("evt-42");
  auto s = spec_from_event(e, c);
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE(s->has_value());
  EXPECT_EQ((*s)->event_id, "evt-42");
  EXPECT_EQ((*s)->id, "evt-42");
  EXPECT_EQ((*s)->reference, "商中法〔2026〕12号");
  EXPECT_EQ((*s)->origin, "kafka");
  e.raw = Json::object();
  EXPECT_FALSE(spec_from_event(e, c)->has_value()) << "no group: an ordinary notice";
  e.type = "notice.general";
  e.raw = {{"broadcast", {{"group_id", "sq-lawyers"}}}};
  EXPECT_FALSE(spec_from_event(e, c)->has_value());
}

// The event schema sets no upper bound on document.pages, and a stored broadcast is read back with one: before, an
// event saying 150000 pages was stored and then could not be read, which stopped every broadcast's fan-out.
TEST(Spec, AnEventDocumentOfMorePagesThanABroadcastReadsBackIsRefusedAtTheStart) {
  const Config c = shipped();
  CaseEvent e = broadcast_event("evt-43");
  e.document = Document{"DOC-1", "通知", std::string(64, 'a'), "", 150000};
  auto s = spec_from_event(e, c);
  ASSERT_TRUE(s.ok() && s->has_value());
  const auto checked = check_spec(**s, c, nullptr);
  ASSERT_FALSE(checked.ok());
  EXPECT_NE(checked.error().message.find("document.pages"), std::string::npos) << checked.error().message;
  e.document->pages = 12;
  EXPECT_TRUE(check_spec(**spec_from_event(e, c), c, nullptr).ok());
}

std::vector<Recipient> members(int from, int n, bool with_contact = true) {
  std::vector<Recipient> out;
  for (int i = from; i < from + n; ++i) {
    Json j = member("L" + std::to_string(1000 + i), "+86138" + std::to_string(10000000 + i));
    if (!with_contact) j["contacts"] = {{"wechat_openid", "oX" + std::to_string(i)}};
    out.push_back(member_from_json(j).value().recipient);
  }
  return out;
}

TEST(PagePlan, OneDeliveryPerMemberAndChannelWithDeterministicIds) {
  const Config c = shipped();
  auto spec = spec_from_request(request(), c).value();
  spec.court_id = "HN-SQ-ZY";
  spec.court_name = "商丘市中级人民法院";
  const std::string digest = spec_digest(spec);
  const Config routes = route_config(c, spec);
  auto page = plan_page(spec, digest, routes, {}, members(0, 3), 500);
  ASSERT_TRUE(page.ok()) << page.error().message;
  ASSERT_EQ(page->plan.deliveries.size(), 6u);  // 3 members × (inapp, sms)
  EXPECT_EQ(page->plan.deliveries[0].id, delivery_id("broadcast:bc-2026-001", "L1000", "inapp"));
  EXPECT_EQ(page->plan.deliveries[1].id, delivery_id("broadcast:bc-2026-001", "L1000", "sms"));
  EXPECT_EQ(page->plan.deliveries[1].text.find("王律师律师"), 0u);
  EXPECT_EQ(page->plan.deliveries[0].case_number, "broadcast:bc-2026-001");
  EXPECT_EQ(page->record.event_id, "broadcast:bc-2026-001#p500");
  EXPECT_EQ(page->record.broadcast_id, "bc-2026-001");
  // The same page again (a resume) has the same dedup key and digest: record_batch calls it a duplicate.
  auto again = plan_page(spec, digest, routes, {}, members(0, 3), 500);
  EXPECT_EQ(again->record.digest, page->record.digest);
  auto other = plan_page(spec, digest, routes, {}, members(1, 3), 500);
  EXPECT_NE(other->record.digest, page->record.digest);
}

TEST(PagePlan, MembersWithoutAContactOnTheChannelsAreUnreachableNotAnError) {
  const Config c = shipped();
  auto spec = spec_from_request(request(), c).value();  // inapp + sms; these members have only WeChat
  auto page = plan_page(spec, spec_digest(spec), route_config(c, spec), {}, members(0, 4, false), 0);
  ASSERT_TRUE(page.ok()) << page.error().message;
  EXPECT_TRUE(page->plan.deliveries.empty());
  EXPECT_EQ(page->plan.unreachable.size(), 4u);
}

TEST(Progress, CountsTimesAndRate) {
  BroadcastRecord r;
  r.spec.id = "bc-1";
  r.state = "dispatching";
  r.members = 10;
  r.cursor = 10;
  r.planned = 20;
  r.created_ms = 1'000'000;
  r.counts = {{"ACCEPTED", 4}, {"SENT", 6}, {"DELIVERED", 8}, {"FAILED", 1}, {"CANCELLED", 1}};
  const Json p = progress_json(r, 1'002'000);
  EXPECT_EQ(p["counts"]["DELIVERED"], 8);
  EXPECT_EQ(p["counts"]["READ"], 0);
  EXPECT_EQ(p["deliveries"], 20);
  EXPECT_EQ(p["waiting"], 4);
  EXPECT_EQ(p["dispatched"], 15);
  EXPECT_DOUBLE_EQ(p["rate_per_s"].get<double>(), 7.5);
  EXPECT_TRUE(p["fanout"]["complete"].get<bool>());
  EXPECT_EQ(p["finished_at"], "");
  EXPECT_FALSE(is_final_state("dispatching"));
  EXPECT_TRUE(is_final_state("cancelled"));
}

}  // namespace
}  // namespace songda::broadcast
