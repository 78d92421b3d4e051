// Unit tests for gateway/plan/planner: event + routes -> deliveries. The planner
// is pure, so the config is built directly as structs.
#include "gateway/plan/planner.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace songda {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

Config make_config() {
  Config c;
  c.templates["summons_party"] =
      TemplateConfig{"summons_party", "{{court_name}}传票",
                     "{{recipient_name}}：您好。请于{{hearing_time}}到{{courtroom}}出庭。"
                     "案号{{case_number}}（{{case_title}}），文书《{{document_title}}》：{{link}}",
                     "【{{court_name}}】{{recipient_name}}，请查收传票：{{link}}"};
  c.templates["summons_lawyer"] = TemplateConfig{"summons_lawyer", "{{case_number}}传票（代理人）",
                                                 "{{recipient_name}}律师：{{case_number}} {{link}}", ""};
  c.templates["hearing"] = TemplateConfig{"hearing", "开庭通知", "{{recipient_name}}：{{hearing_time}}开庭", ""};
  c.templates["judgment"] = TemplateConfig{"judgment", "判决", "{{recipient_name}}：判决书已送达", ""};

  RouteConfig party;
  party.event_type = "summons.issued";
  party.roles = {"party"};
  party.channels = {"inapp", "sms", "wechat", "email"};
  party.template_name = "summons_party";
  RouteConfig lawyer;
  lawyer.event_type = "summons.issued";
  lawyer.roles = {"lawyer", "agent"};
  lawyer.channels = {"email", "inapp"};
  lawyer.template_name = "summons_lawyer";
  RouteConfig hearing;
  hearing.event_type = "hearing.scheduled";
  hearing.channels = {"inapp", "sms"};  // every role
  hearing.template_name = "hearing";
  hearing.urgent = true;
  RouteConfig judgment;
  judgment.event_type = "judgment.issued";
  judgment.roles = {"party"};
  judgment.channels = {"inapp"};
  judgment.template_name = "judgment";
  c.routes = {party, lawyer, hearing, judgment};
  return c;
}

Recipient recipient(std::string id, std::string role, std::string name, Contacts contacts) {
  Recipient r;
  r.id = std::move(id);
  r.role = std::move(role);
  r.name = std::move(name);
  r.contacts = std::move(contacts);
  r.consent.basis = "confirmed";
  r.consent.scope = {"*"};
  return r;
}

CaseEvent make_event() {
  CaseEvent e;
  e.event_id = "evt-0001";
  e.type = "summons.issued";
  e.occurred_at = "2026-11-28T09:00:00+08:00";
  e.court_id = "HN-SQ-ZY";
  e.court_name = "商丘市中级人民法院";
  e.case_number = "(2026)豫14民初123号";
  e.case_title = "张三诉李四买卖合同纠纷";
  e.document = Document{"DOC-1", "传票", std::string(64, 'a'), "https://court.example/docs/DOC-1.pdf", 2};
  e.params = {{"hearing_time", "2026-12-10 09:30"}, {"courtroom", "第三法庭"}};
  // Party: app_user and mobile, no wechat, no email.
  e.recipients.push_back(recipient("P-001", "party", "张三", Contacts{"+8613800000001", "", "", "u-zhangsan"}));
  // Lawyer: email only.
  e.recipients.push_back(recipient("L-007", "lawyer", "王律师", Contacts{"", "", "wang@lawfirm.cn", ""}));
  return e;
}

std::vector<std::string> channels_of(const Plan& p, const std::string& recipient_id) {
  std::vector<std::string> out;
  for (const auto& d : p.deliveries) {
    if (d.recipient_id == recipient_id) out.push_back(d.channel);
  }
  return out;
}

const Delivery* find(const Plan& p, const std::string& recipient_id, const std::string& channel) {
  for (const auto& d : p.deliveries) {
    if (d.recipient_id == recipient_id && d.channel == channel) return &d;
  }
  return nullptr;
}

// A valid event of 750 KB (300 recipients with four contacts each, a 700 KB param) made 1,200 deliveries that
// each carried the param and a text rendered from it: 1.4 GB of records, more than Redis takes in one command.
// The planner stops as soon as the deliveries pass the limit, not after making them all.
TEST(Planner, AnEventWhoseDeliveriesWouldBeTooLargeIsRefusedWithinOneOfTheLimit) {
  CaseEvent e = make_event();
  e.recipients.clear();
  for (int i = 0; i < 300; ++i) {
    const std::string n = std::to_string(1000 + i);
    e.recipients.push_back(recipient("P-" + n, "party", "当事人" + n,
                                     Contacts{"+861380000" + n, "o" + n, "p" + n + "@example.cn", "u-" + n}));
  }
  e.params["courtroom"] = std::string(700 * 1024, 'x');  // rendered into every text
  auto p = plan_event(e, make_config());
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().code, "too_large");
  EXPECT_THAT(p.error().message, HasSubstr("64 MiB"));
  EXPECT_THAT(p.error().message, HasSubstr("700 KiB of params"));
  // The same recipients with an ordinary text are planned, and the plan says about how large its records are.
  e.params["courtroom"] = "第三法庭";
  auto ok = plan_event(e, make_config());
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ok->deliveries.size(), 1200u);
  EXPECT_GT(ok->planned_bytes, 1200u * 512);
  EXPECT_LT(ok->planned_bytes, 1200u * 2048);
}

TEST(Planner, RoutesByTypeAndRole) {
  const auto r = plan_event(make_event(), make_config());
  ASSERT_TRUE(r.ok()) << r.error().message;
  const Delivery* party = find(r.value(), "P-001", "inapp");
  const Delivery* lawyer = find(r.value(), "L-007", "email");
  ASSERT_NE(party, nullptr);
  ASSERT_NE(lawyer, nullptr);
  EXPECT_EQ(party->template_name, "summons_party");
  EXPECT_EQ(party->title, "商丘市中级人民法院传票");
  EXPECT_EQ(lawyer->template_name, "summons_lawyer");
  EXPECT_EQ(lawyer->title, "(2026)豫14民初123号传票（代理人）");
}

TEST(Planner, RouteWithoutRolesCoversEveryRole) {
  CaseEvent e = make_event();
  e.type = "hearing.scheduled";
  e.recipients.push_back(recipient("O-1", "other", "赵六", Contacts{"", "", "", "u-zhaoliu"}));
  e.recipients.push_back(recipient("A-1", "agent", "钱七", Contacts{"13900000000", "", "", ""}));
  const auto r = plan_event(e, make_config());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_THAT(channels_of(r.value(), "P-001"), ElementsAre("inapp", "sms"));
  EXPECT_THAT(channels_of(r.value(), "O-1"), ElementsAre("inapp"));
  EXPECT_THAT(channels_of(r.value(), "A-1"), ElementsAre("sms"));
  EXPECT_THAT(r->unreachable, ElementsAre("L-007"));  // email only, route has inapp and sms
}

TEST(Planner, SkipsChannelsTheRecipientHasNoContactFor) {
  const auto r = plan_event(make_event(), make_config());
  ASSERT_TRUE(r.ok());
  // Route order is kept; wechat and email are skipped for a party without them.
  EXPECT_THAT(channels_of(r.value(), "P-001"), ElementsAre("inapp", "sms"));
  EXPECT_THAT(channels_of(r.value(), "L-007"), ElementsAre("email"));
  EXPECT_EQ(r->deliveries.size(), 3u);
  EXPECT_THAT(r->unreachable, IsEmpty());
}

TEST(Planner, UsesTheRightAddressPerChannel) {
  CaseEvent e = make_event();
  e.recipients[0].contacts = Contacts{"+8613800000001", "oAbcOpenId", "zs@example.cn", "u-zhangsan"};
  const auto r = plan_event(e, make_config());
  ASSERT_TRUE(r.ok());
  EXPECT_THAT(channels_of(r.value(), "P-001"), ElementsAre("inapp", "sms", "wechat", "email"));
  EXPECT_EQ(find(r.value(), "P-001", "inapp")->address, "u-zhangsan");
  EXPECT_EQ(find(r.value(), "P-001", "sms")->address, "+8613800000001");
  EXPECT_EQ(find(r.value(), "P-001", "wechat")->address, "oAbcOpenId");
  EXPECT_EQ(find(r.value(), "P-001", "email")->address, "zs@example.cn");
}

TEST(Planner, ListsUnreachableRecipients) {
  CaseEvent e = make_event();
  e.recipients.push_back(recipient("P-002", "party", "李四", Contacts{"", "", "", ""}));
  e.recipients.push_back(
      recipient("L-008", "lawyer", "赵律师", Contacts{"13900000000", "", "", ""}));  // sms not routed
  const auto r = plan_event(e, make_config());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_THAT(r->unreachable, ElementsAre("P-002", "L-008"));
  EXPECT_THAT(channels_of(r.value(), "P-002"), IsEmpty());
  EXPECT_THAT(channels_of(r.value(), "L-008"), IsEmpty());
}

TEST(Planner, NoRouteForTheType) {
  CaseEvent e = make_event();
  e.type = "payment.due";
  const auto r = plan_event(e, make_config());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "no_route");
  EXPECT_THAT(r.error().message, HasSubstr("payment.due"));
}

TEST(Planner, NoRouteForAnyRecipientsRole) {
  CaseEvent e = make_event();
  e.type = "judgment.issued";  // routed for parties only
  e.recipients.erase(e.recipients.begin());
  const auto r = plan_event(e, make_config());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "no_route");
}

TEST(Planner, NoReachableRecipient) {
  CaseEvent e = make_event();
  e.type = "judgment.issued";  // parties, inapp only
  e.recipients[0].contacts = Contacts{"+8613800000001", "", "zs@example.cn", ""};
  const auto r = plan_event(e, make_config());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "no_reachable_recipient");
  EXPECT_THAT(r.error().message, HasSubstr("judgment.issued"));
}

TEST(Planner, SmsUsesTheShortTextWhenSet) {
  const auto r = plan_event(make_event(), make_config());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(find(r.value(), "P-001", "sms")->text, "【商丘市中级人民法院】张三，请查收传票：");
  EXPECT_EQ(find(r.value(), "P-001", "inapp")->text,
            "张三：您好。请于2026-12-10 09:30到第三法庭出庭。案号(2026)豫14民初123号（张三诉李四买卖合同纠纷），"
            "文书《传票》：");
  // The SMS keeps the same title.
  EXPECT_EQ(find(r.value(), "P-001", "sms")->title, "商丘市中级人民法院传票");
}

TEST(Planner, SmsFallsBackToTheBodyWhenNoShortText) {
  CaseEvent e = make_event();
  e.type = "hearing.scheduled";
  const auto r = plan_event(e, make_config());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(find(r.value(), "P-001", "sms")->text, "张三：2026-12-10 09:30开庭");
}

TEST(Planner, LinkForIsCalledWithEachDeliveryId) {
  PlanOptions opts;
  std::vector<std::string> asked;
  opts.link_for = [&asked](const std::string& id) {
    asked.push_back(id);
    return "https://sd.court.example/r/" + id;
  };
  const auto r = plan_event(make_event(), make_config(), opts);
  ASSERT_TRUE(r.ok());
  for (const auto& d : r->deliveries) {
    EXPECT_THAT(d.text, HasSubstr("https://sd.court.example/r/" + d.id)) << d.channel;
    EXPECT_NE(std::find(asked.begin(), asked.end(), d.id), asked.end()) << d.id;
  }
}

TEST(Planner, LinkIsEmptyWithoutLinkFor) {
  const auto r = plan_event(make_event(), make_config());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(find(r.value(), "L-007", "email")->text, "王律师律师：(2026)豫14民初123号 ");
}

TEST(Planner, UrgentFromRouteOrEvent) {
  CaseEvent e = make_event();
  auto r = plan_event(e, make_config());
  ASSERT_TRUE(r.ok());
  for (const auto& d : r->deliveries) EXPECT_FALSE(d.urgent) << d.id;

  e.urgent = true;
  r = plan_event(e, make_config());
  ASSERT_TRUE(r.ok());
  for (const auto& d : r->deliveries) EXPECT_TRUE(d.urgent) << d.id;

  e.urgent = false;
  e.type = "hearing.scheduled";  // urgent route
  r = plan_event(e, make_config());
  ASSERT_TRUE(r.ok());
  ASSERT_FALSE(r->deliveries.empty());
  for (const auto& d : r->deliveries) EXPECT_TRUE(d.urgent) << d.id;
}

TEST(Planner, IdsAreTheDeterministicDeliveryIds) {
  const CaseEvent e = make_event();
  const auto r = plan_event(e, make_config());
  ASSERT_TRUE(r.ok());
  for (const auto& d : r->deliveries) {
    EXPECT_EQ(d.id, delivery_id(e.event_id, d.recipient_id, d.channel));
  }
  EXPECT_EQ(find(r.value(), "P-001", "sms")->id, delivery_id("evt-0001", "P-001", "sms"));
}

TEST(Planner, CopiesEventFactsIntoEachDelivery) {
  const CaseEvent e = make_event();
  const auto r = plan_event(e, make_config());
  ASSERT_TRUE(r.ok());
  const Delivery* d = find(r.value(), "P-001", "sms");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->event_id, "evt-0001");
  EXPECT_EQ(d->event_type, "summons.issued");
  EXPECT_EQ(d->court_id, "HN-SQ-ZY");
  EXPECT_EQ(d->court_name, "商丘市中级人民法院");
  EXPECT_EQ(d->case_number, "(2026)豫14民初123号");
  EXPECT_EQ(d->recipient_role, "party");
  EXPECT_EQ(d->recipient_name, "张三");
  EXPECT_EQ(d->consent_basis, "confirmed");
  ASSERT_TRUE(d->document.has_value());
  EXPECT_EQ(d->document->id, "DOC-1");
  EXPECT_EQ(d->params, e.params);
}

TEST(Planner, SameInputGivesTheSamePlan) {
  const CaseEvent e = make_event();
  const Config c = make_config();
  PlanOptions opts;
  opts.link_for = [](const std::string& id) { return "https://x/r/" + id; };
  const auto a = plan_event(e, c, opts);
  const auto b = plan_event(e, c, opts);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b.ok());
  ASSERT_EQ(a->deliveries.size(), b->deliveries.size());
  for (std::size_t i = 0; i < a->deliveries.size(); ++i) {
    EXPECT_EQ(to_json(a->deliveries[i]), to_json(b->deliveries[i])) << i;
  }
  EXPECT_EQ(a->unreachable, b->unreachable);
}

TEST(Planner, MissingTemplateParamIsAnError) {
  CaseEvent e = make_event();
  e.params.erase("courtroom");
  e.params.erase("hearing_time");
  const auto r = plan_event(e, make_config());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "template_param_missing");
  EXPECT_THAT(r.error().message, HasSubstr("hearing_time, courtroom"));
}

TEST(Planner, RouteNamingAnUnconfiguredTemplateIsAnError) {
  Config c = make_config();
  c.templates.erase("summons_lawyer");
  const auto r = plan_event(make_event(), c);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "template_invalid");
  EXPECT_THAT(r.error().message, HasSubstr("summons_lawyer"));
}

TEST(Planner, EventParamsCannotOverrideBuiltInFacts) {
  CaseEvent e = make_event();
  e.params["court_name"] = "假法院";
  e.params["recipient_name"] = "冒名";
  const auto r = plan_event(e, make_config());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(find(r.value(), "P-001", "inapp")->title, "商丘市中级人民法院传票");
  EXPECT_THAT(find(r.value(), "P-001", "inapp")->text, ::testing::StartsWith("张三："));
}

TEST(AddressFor, MapsChannelToContact) {
  const Recipient r = recipient("P", "party", "n", Contacts{"m", "w", "e", "a"});
  EXPECT_EQ(address_for(r, "sms"), "m");
  EXPECT_EQ(address_for(r, "wechat"), "w");
  EXPECT_EQ(address_for(r, "email"), "e");
  EXPECT_EQ(address_for(r, "inapp"), "a");
  EXPECT_EQ(address_for(r, "fax"), "");
}

}  // namespace
}  // namespace songda
