// Unit tests for gateway/core/event: the typed event v1, delivery ids and the
// delivery record format.
#include "gateway/core/event.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "gateway/core/crypto.h"

namespace songda {
namespace {

using nlohmann::json;

const char* kEvent = R"({
  "schema": "songda.case-event/v1",
  "event_id": "evt-1",
  "type": "summons.issued",
  "occurred_at": "2026-11-28T09:00:00+08:00",
  "urgent": true,
  "court": {"id": "HN-SQ-ZY", "name": "商丘市中级人民法院"},
  "case": {"number": "(2026)豫14民初123号", "title": "张三诉李四买卖合同纠纷"},
  "document": {"id": "DOC-1", "title": "传票", "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
               "url": "https://court.example/docs/DOC-1.pdf", "pages": 2},
  "recipients": [
    {"id": "P-001", "role": "party", "name": "张三",
     "contacts": {"mobile": "+8613800000001", "wechat_openid": "oAbc123", "email": "zs@example.cn", "app_user": "u-zs"},
     "consent": {"basis": "confirmed", "scope": ["summons.issued", "*"], "ref": "C-1", "recorded_at": "2026-11-20T10:00:00+08:00"}},
    {"id": "L-007", "role": "lawyer", "name": "王律师", "contacts": {"app_user": "u-wang"}, "consent": {"basis": "none"}}
  ],
  "params": {"courtroom": "第三法庭", "fee": 300, "paid": false, "ratio": 0.5},
  "x_trace": {"span": "abc"}
})";

// The same event, keys in another order at every level and other whitespace.
const char* kEventReordered =
    R"({"x_trace":{"span":"abc"},"params":{"ratio":0.5,"paid":false,"fee":300,"courtroom":"第三法庭"},
  "recipients":[{"consent":{"recorded_at":"2026-11-20T10:00:00+08:00","ref":"C-1","scope":["summons.issued","*"],"basis":"confirmed"},
  "contacts":{"app_user":"u-zs","email":"zs@example.cn","wechat_openid":"oAbc123","mobile":"+8613800000001"},"name":"张三","role":"party","id":"P-001"},
  {"consent":{"basis":"none"},"contacts":{"app_user":"u-wang"},"name":"王律师","role":"lawyer","id":"L-007"}],
  "document":{"pages":2,"url":"https://court.example/docs/DOC-1.pdf","sha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","title":"传票","id":"DOC-1"},
  "case":{"title":"张三诉李四买卖合同纠纷","number":"(2026)豫14民初123号"},"court":{"name":"商丘市中级人民法院","id":"HN-SQ-ZY"},
  "urgent":true,"occurred_at":"2026-11-28T09:00:00+08:00","type":"summons.issued","event_id":"evt-1","schema":"songda.case-event/v1"})";

TEST(DeliveryId, IsDeterministicAndWellFormed) {
  const std::string id = delivery_id("evt-1", "P-001", "sms");
  EXPECT_EQ(id, delivery_id("evt-1", "P-001", "sms"));
  ASSERT_EQ(id.size(), 3u + 32u);
  EXPECT_EQ(id.substr(0, 3), "sd-");
  EXPECT_EQ(id.find_first_not_of("0123456789abcdef", 3), std::string::npos) << id;
  EXPECT_EQ(id, "sd-" + sha256_hex(std::string("evt-1\x1fP-001\x1fsms")).substr(0, 32));
}

TEST(DeliveryId, DistinctPerEventRecipientAndChannel) {
  std::set<std::string> ids;
  for (const char* e : {"evt-1", "evt-2"}) {
    for (const char* r : {"P-001", "P-002", "L-007"}) {
      for (const char* c : {kChannelInApp, kChannelSms, kChannelWechat, kChannelEmail})
        ids.insert(delivery_id(e, r, c));
    }
  }
  EXPECT_EQ(ids.size(), 2u * 3u * 4u);
}

TEST(DeliveryId, FieldBoundariesMatter) {
  // Moving characters between fields must not produce the same id.
  EXPECT_NE(delivery_id("ab", "c", "sms"), delivery_id("a", "bc", "sms"));
  EXPECT_NE(delivery_id("e", "rsm", "s"), delivery_id("e", "r", "sms"));
}

TEST(EventFromJson, ReadsEveryField) {
  const auto r = event_from_json(json::parse(kEvent));
  ASSERT_TRUE(r.ok()) << r.error().message;
  const CaseEvent& e = r.value();
  EXPECT_EQ(e.event_id, "evt-1");
  EXPECT_EQ(e.type, "summons.issued");
  EXPECT_EQ(e.occurred_at, "2026-11-28T09:00:00+08:00");
  EXPECT_EQ(e.court_id, "HN-SQ-ZY");
  EXPECT_EQ(e.court_name, "商丘市中级人民法院");
  EXPECT_EQ(e.case_number, "(2026)豫14民初123号");
  EXPECT_EQ(e.case_title, "张三诉李四买卖合同纠纷");
  EXPECT_TRUE(e.urgent);
  ASSERT_TRUE(e.document.has_value());
  EXPECT_EQ(e.document->id, "DOC-1");
  EXPECT_EQ(e.document->title, "传票");
  EXPECT_EQ(e.document->pages, 2);
  EXPECT_EQ(e.document->url, "https://court.example/docs/DOC-1.pdf");
  ASSERT_EQ(e.recipients.size(), 2u);
  const Recipient& p = e.recipients[0];
  EXPECT_EQ(p.id, "P-001");
  EXPECT_EQ(p.role, "party");
  EXPECT_EQ(p.name, "张三");
  EXPECT_EQ(p.contacts.mobile, "+8613800000001");
  EXPECT_EQ(p.contacts.wechat_openid, "oAbc123");
  EXPECT_EQ(p.contacts.email, "zs@example.cn");
  EXPECT_EQ(p.contacts.app_user, "u-zs");
  EXPECT_EQ(p.consent.basis, "confirmed");
  EXPECT_EQ(p.consent.scope, (std::vector<std::string>{"summons.issued", "*"}));
  EXPECT_EQ(p.consent.ref, "C-1");
  EXPECT_EQ(e.recipients[1].consent.basis, "none");
  EXPECT_TRUE(e.recipients[1].contacts.mobile.empty());
  // Scalar params become text the templates can use.
  EXPECT_EQ(e.params.at("courtroom"), "第三法庭");
  EXPECT_EQ(e.params.at("fee"), "300");
  EXPECT_EQ(e.params.at("paid"), "false");
  EXPECT_EQ(e.params.at("ratio"), "0.5");
  // Unknown fields are kept.
  EXPECT_EQ(e.raw.at("x_trace").at("span"), "abc");
}

TEST(EventFromJson, DocumentIsOptionalAndUrgentDefaultsFalse) {
  json j = json::parse(kEvent);
  j.erase("document");
  j.erase("urgent");
  const auto r = event_from_json(j);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->document.has_value());
  EXPECT_FALSE(r->urgent);
}

TEST(EventFromJson, RefusesNonObject) {
  for (const json& j : {json::array(), json("text"), json(nullptr), json(3)}) {
    const auto r = event_from_json(j);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, "schema");
  }
}

TEST(EventDigest, IndependentOfKeyOrderAndWhitespace) {
  const auto a = event_from_json(json::parse(kEvent));
  const auto b = event_from_json(json::parse(kEventReordered));
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(a->digest.size(), 64u);
  EXPECT_EQ(a->digest, b->digest);
}

TEST(EventDigest, DiffersWhenContentDiffers) {
  const json base = json::parse(kEvent);
  const std::string d0 = event_from_json(base)->digest;
  std::vector<json> changed(5, base);
  changed[0]["params"]["courtroom"] = "第四法庭";
  changed[1]["recipients"][0]["contacts"]["mobile"] = "+8613800000002";
  changed[2]["x_trace"]["span"] = "abd";  // unknown fields count too: they are part of what was received
  changed[3]["recipients"] = json::array({base["recipients"][1], base["recipients"][0]});  // order of recipients
  changed[4]["params"]["fee"] = "300";  // same text, different JSON type
  for (std::size_t i = 0; i < changed.size(); ++i) {
    EXPECT_NE(event_from_json(changed[i])->digest, d0) << "change " << i;
  }
}

Delivery sample_delivery() {
  Delivery d;
  d.id = delivery_id("evt-1", "P-001", kChannelSms);
  d.event_id = "evt-1";
  d.event_type = "summons.issued";
  d.court_id = "HN-SQ-ZY";
  d.court_name = "商丘市中级人民法院";
  d.case_number = "(2026)豫14民初123号";
  d.recipient_id = "P-001";
  d.recipient_role = "party";
  d.recipient_name = "张三";
  d.channel = kChannelSms;
  d.address = "+8613800000001";
  d.consent_basis = "confirmed";
  d.template_name = "summons_party";
  d.title = "商丘市中级人民法院传票";
  d.text = "张三：您好，请于2026-12-10 09:30到第三法庭出庭。";
  d.document = Document{"DOC-1", "传票", std::string(64, 'a'), "https://court.example/docs/DOC-1.pdf", 2};
  d.urgent = true;
  d.params = {{"courtroom", "第三法庭"}, {"hearing_time", "2026-12-10 09:30"}};
  return d;
}

void expect_same(const Delivery& a, const Delivery& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.event_id, b.event_id);
  EXPECT_EQ(a.event_type, b.event_type);
  EXPECT_EQ(a.court_id, b.court_id);
  EXPECT_EQ(a.court_name, b.court_name);
  EXPECT_EQ(a.case_number, b.case_number);
  EXPECT_EQ(a.recipient_id, b.recipient_id);
  EXPECT_EQ(a.recipient_role, b.recipient_role);
  EXPECT_EQ(a.recipient_name, b.recipient_name);
  EXPECT_EQ(a.channel, b.channel);
  EXPECT_EQ(a.address, b.address);
  EXPECT_EQ(a.consent_basis, b.consent_basis);
  EXPECT_EQ(a.template_name, b.template_name);
  EXPECT_EQ(a.title, b.title);
  EXPECT_EQ(a.text, b.text);
  EXPECT_EQ(a.urgent, b.urgent);
  EXPECT_EQ(a.params, b.params);
  ASSERT_EQ(a.document.has_value(), b.document.has_value());
  if (a.document) {
    EXPECT_EQ(a.document->id, b.document->id);
    EXPECT_EQ(a.document->title, b.document->title);
    EXPECT_EQ(a.document->sha256, b.document->sha256);
    EXPECT_EQ(a.document->url, b.document->url);
    EXPECT_EQ(a.document->pages, b.document->pages);
  }
  EXPECT_EQ(a.hold_from, b.hold_from);
  EXPECT_EQ(a.hold_unless, b.hold_unless);
  EXPECT_EQ(a.hold_after_s, b.hold_after_s);
}

TEST(DeliveryJson, RoundTripsThroughText) {
  const Delivery d = sample_delivery();
  const auto back = delivery_from_json(json::parse(to_json(d).dump()));
  ASSERT_TRUE(back.ok()) << back.error().message;
  expect_same(d, back.value());
}

TEST(DeliveryJson, RoundTripsWithoutDocument) {
  Delivery d = sample_delivery();
  d.document.reset();
  d.urgent = false;
  d.params.clear();
  const json j = to_json(d);
  EXPECT_FALSE(j.contains("document"));
  const auto back = delivery_from_json(j);
  ASSERT_TRUE(back.ok());
  expect_same(d, back.value());
}

TEST(DeliveryJson, RecordWithoutIdIsCorrupt) {
  json j = to_json(sample_delivery());
  j.erase("id");
  const auto r = delivery_from_json(j);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "corrupt_record");
  const auto r2 = delivery_from_json(json::array());
  ASSERT_FALSE(r2.ok());
  EXPECT_EQ(r2.error().code, "corrupt_record");
}

// Deliveries whose records exercise every member and every escape: the sample, one without document, params
// or urgency, a held fallback, and one with quotes, backslashes, controls, DEL, CJK, emoji and empty strings.
std::vector<Delivery> record_cases() {
  std::vector<Delivery> out;
  out.push_back(sample_delivery());
  Delivery bare = sample_delivery();
  bare.document.reset();
  bare.params.clear();
  bare.urgent = false;
  out.push_back(bare);
  Delivery held = sample_delivery();
  held.channel = kChannelWechat;
  held.hold_from = delivery_id("evt-1", "P-001", kChannelSms);
  held.hold_unless = "DELIVERED";
  held.hold_after_s = 86400;
  out.push_back(held);
  Delivery odd = sample_delivery();
  odd.text = std::string("say \"hi\" \\ now\n\ttab\r\b\f") + '\x01' + '\x1f' + '\x7f' + " 😀 /path";
  odd.title = "";
  odd.recipient_name = "O'Brien \"张\"";
  odd.params = {{"", "empty name"}, {"a\"b", "q"}, {"z", ""}, {"链接", "https://x.example/?a=1&b=2"}};
  odd.document->pages = -3;
  odd.document->url = "";
  out.push_back(odd);
  return out;
}

TEST(DeliveryRecordText, IsTheSameBytesAsTheTreeDumped) {
  for (const Delivery& d : record_cases()) {
    const auto text = delivery_record_text(d);
    ASSERT_TRUE(text.ok()) << text.error().message;
    EXPECT_EQ(text.value(), to_json(d).dump());
  }
}

TEST(DeliveryRecordText, RefusesAFieldThatIsNotUtf8) {
  Delivery d = sample_delivery();
  d.recipient_name = "\xE5\xBC";  // a truncated 张
  EXPECT_THROW((void)to_json(d).dump(), json::exception);
  const auto text = delivery_record_text(d);
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.error().code, "invalid_utf8");
  d = sample_delivery();
  d.params["\xFF"] = "x";
  EXPECT_FALSE(delivery_record_text(d).ok());
}

TEST(DeliveryFromRecordText, ReadsWhatTheWriterWrote) {
  for (const Delivery& d : record_cases()) {
    const auto back = delivery_from_record_text(delivery_record_text(d).value());
    ASSERT_TRUE(back.ok()) << back.error().message;
    expect_same(d, back.value());
  }
}

// Whatever the text, the fast reader's answer is the tree reader's.
TEST(DeliveryFromRecordText, AgreesWithTheTreeReaderOnAnyText) {
  const std::string good = delivery_record_text(record_cases()[2]).value();
  const std::string head = good.substr(0, good.size() - 1);  // without the closing brace
  const std::vector<std::string> texts = {
      good,
      delivery_record_text(record_cases()[3]).value(),
      R"({"id":"sd-1"})",
      R"({"i\u0064":"sd-1","te\u0078t":"x\u4e2d"})",  // escaped names and values
      " \n" + good + " \t",
      head + R"(,"extra":1,"extra2":null,"extra3":1.5,"extra4":"s","extra5":false})",
      head + R"(,"extra":{"a":1}})",
      head + R"(,"extra":[1,2]})",
      head + R"(,"id":"sd-other"})",  // a member twice: the tree keeps the last
      head + R"(,"urgent":false})",
      head + R"(,"params":{"x":"y"}})",
      head + R"(,"document":{"id":"D2"}})",
      R"({"id":"sd-1","urgent":"yes"})",  // a known member of another type
      R"({"id":5})",
      R"({"id":"sd-1","title":null})",
      R"({"id":"sd-1","params":"p"})",
      R"({"id":"sd-1","params":{"n":3,"b":true,"z":null,"f":2.5,"s":"t"}})",
      R"({"id":"sd-1","params":{"o":{"x":1}}})",
      R"({"id":"sd-1","params":{"k":"1","k":"2"}})",
      R"({"id":"sd-1","document":"D"})",
      R"({"id":"sd-1","document":{"pages":"2"}})",
      R"({"id":"sd-1","document":{"pages":2.0}})",
      R"({"id":"sd-1","document":{"pages":99999999999}})",
      R"({"id":"sd-1","document":{"pages":-2,"note":"n","n2":3}})",
      R"({"id":"sd-1","document":{"id":"a","id":"b"}})",
      R"({"id":"sd-1","document":{"sub":{}}})",
      R"({"id":"sd-1","hold":{"from":"sd-0","unless":"READ","after_s":60}})",
      R"({"id":"sd-1","hold":{"from":"sd-0","after_s":"60"}})",
      R"({"id":"sd-1","hold":{"from":"sd-0","from":"sd-2"}})",
      R"({"id":"sd-1","hold":[]})",
      R"({"title":"no id"})",
      R"({"id":""})",
      "[]",
      R"("sd-1")",
      "42",
      "null",
      "",
      "{",
      R"({"id":"sd-1"} trailing)",
      R"({"id":"sd-1",})",
      "{\"id\":\"\xFF\"}",
  };
  for (const auto& text : texts) {
    SCOPED_TRACE(text);
    const auto fast = delivery_from_record_text(text);
    const auto tree = delivery_from_json(json::parse(text, nullptr, false));
    ASSERT_EQ(fast.ok(), tree.ok());
    if (fast.ok()) {
      expect_same(fast.value(), tree.value());
    } else {
      EXPECT_EQ(fast.error().code, tree.error().code);
      EXPECT_EQ(fast.error().message, tree.error().message);
    }
  }
}

TEST(Channels, KnownNames) {
  for (const char* c : {"inapp", "sms", "wechat", "email"}) EXPECT_TRUE(is_known_channel(c)) << c;
  for (const char* c : {"", "SMS", "fax", "post"}) EXPECT_FALSE(is_known_channel(c)) << c;
}

}  // namespace
}  // namespace songda
