// Evidence makers (pure): every record validates, ids are deterministic so a
// replay gives the same id, addresses appear only masked and hashed, provider
// words are kept verbatim (address masked, bad UTF-8 repaired), and the rules
// decide service from what the makers write.
#include "gateway/ledger/evidence_makers.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <stdexcept>

#include "gateway/core/crypto.h"
#include "gateway/evidence/jcs.h"
#include "gateway/evidence/merkle.h"
#include "gateway/evidence/rules.h"

namespace songda::ledger {
namespace {

using evidence::EvidenceRecord;
using evidence::EvidenceType;
using Json = nlohmann::json;

constexpr std::int64_t kNow = 1795827600000;  // 2026-11-28T01:00:00Z
const EvidenceContext kCtx{"test-salt-0123456789abcdef"};
const std::string kMobile = "+8613812345678";
const std::string kEmail = "zhang.san@example.cn";
const std::string kOpenId = "oAbCdEfGhIjKlMnOp";

CaseEvent make_event() {
  CaseEvent e;
  e.event_id = "b3c1e0de-0000-4000-8000-000000000001";
  e.type = "summons.issued";
  e.occurred_at = "2026-11-28T09:00:00+08:00";
  e.court_id = "HN-SQ-ZY";
  e.court_name = "商丘市中级人民法院";
  e.case_number = "(2026)豫14民初123号";
  e.document = Document{"DOC-1", "传票", std::string(64, 'A'), "https://x", 2};
  Recipient r;
  r.id = "P-001";
  r.role = "party";
  r.name = "张三";
  r.contacts = Contacts{kMobile, kOpenId, kEmail, "u123"};
  r.consent = Consent{"confirmed", {"summons.issued"}, "CONSENT-77", "2026-11-01T10:00:00+08:00"};
  e.recipients.push_back(r);
  e.digest = sha256_hex("event");
  return e;
}

Delivery make_delivery(const std::string& channel) {
  const CaseEvent e = make_event();
  Delivery d;
  d.id = delivery_id(e.event_id, "P-001", channel);
  d.event_id = e.event_id;
  d.event_type = e.type;
  d.court_id = e.court_id;
  d.court_name = e.court_name;
  d.case_number = e.case_number;
  d.recipient_id = "P-001";
  d.recipient_role = "party";
  d.recipient_name = "张三";
  d.channel = channel;
  d.address = channel == "sms" ? kMobile : channel == "email" ? kEmail : channel == "wechat" ? kOpenId : "u123";
  d.consent_basis = "confirmed";
  d.template_name = "summons";
  d.title = "传票";
  d.text = "张三：您好，请于2026-12-10到庭。";
  d.document = e.document;
  return d;
}

Plan make_plan() {
  Plan p;
  for (const char* ch : {"inapp", "sms", "email"}) p.deliveries.push_back(make_delivery(ch));
  return p;
}

void expect_valid(const std::vector<EvidenceRecord>& records) {
  for (const auto& r : records) {
    auto s = evidence::validate_record(r);
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
    auto bytes = r.canonical();
    ASSERT_TRUE(bytes.ok());
    // The bytes are a valid record that parses back to the same canonical bytes.
    auto back = evidence::record_from_json(Json::parse(*bytes));
    ASSERT_TRUE(back.ok()) << back.error().message;
    EXPECT_EQ(*back->canonical(), *bytes);
  }
}

void expect_no_raw_address(const std::vector<EvidenceLeaf>& leaves) {
  for (const auto& l : leaves) {
    for (const std::string& raw : {kMobile, kMobile.substr(3), kEmail, kOpenId}) {
      EXPECT_EQ(l.canonical.find(raw), std::string::npos) << "raw address " << raw << " in " << l.canonical;
    }
  }
}

std::vector<std::string> ids_of(const std::vector<EvidenceRecord>& records) {
  std::vector<std::string> out;
  for (const auto& r : records) out.push_back(r.evidence_id);
  return out;
}

TEST(Makers, AcceptedGivesSubmissionAndOneConsentPerDelivery) {
  const auto records = accepted_records(make_event(), make_plan(), kNow, kCtx);
  ASSERT_EQ(records.size(), 4u);
  expect_valid(records);
  EXPECT_EQ(records[0].type, EvidenceType::kSubmissionAccepted);
  EXPECT_TRUE(records[0].delivery_id.empty());
  EXPECT_EQ(records[0].details["document_id"], "DOC-1");
  EXPECT_EQ(records[0].details["document_sha256"], std::string(64, 'a'));  // lowercased
  for (std::size_t i = 1; i < records.size(); ++i) {
    EXPECT_EQ(records[i].type, EvidenceType::kConsentRecorded);
    EXPECT_EQ(records[i].details["basis"], "confirmed");
    EXPECT_EQ(records[i].details["scope"], Json::array({"summons.issued"}));
    EXPECT_EQ(records[i].details["reference"], "CONSENT-77");
    EXPECT_EQ(records[i].details["scope_covers_event"], true);
    EXPECT_EQ(records[i].event_time_ms, *parse_rfc3339_ms("2026-11-01T10:00:00+08:00"));
    EXPECT_EQ(records[i].details["address_hash"],
              evidence::address_hash(kCtx.salt, make_plan().deliveries[i - 1].address));
  }
  const auto leaves = to_leaves(records);
  ASSERT_EQ(leaves.size(), 4u);
  EXPECT_EQ(leaves[0].delivery_id, event_index_id(make_event().event_id));  // findable by proofs
  EXPECT_EQ(leaves[1].delivery_id, make_plan().deliveries[0].id);
  for (const auto& l : leaves) EXPECT_EQ(l.leaf_hash_hex, to_hex(evidence::leaf_hash(l.canonical)));
  expect_no_raw_address(leaves);
}

// The validator accepts a consent scope of "*" (every type). Before, the consent record matched the scope against
// the event type exactly and said the consent did not cover the document a bundle then showed as served.
TEST(Makers, AWildcardConsentScopeCoversTheEventInItsRecord) {
  CaseEvent event = make_event();
  for (auto& r : event.recipients) r.consent.scope = {"*"};
  const auto wildcard = accepted_records(event, make_plan(), kNow, kCtx);
  for (auto& r : event.recipients) r.consent.scope = {"hearing.scheduled"};
  const auto other = accepted_records(event, make_plan(), kNow, kCtx);
  ASSERT_EQ(wildcard.size(), 4u);
  for (std::size_t i = 1; i < wildcard.size(); ++i) {
    EXPECT_EQ(wildcard[i].details["scope_covers_event"], true);
    EXPECT_EQ(other[i].details["scope_covers_event"], false);
  }
}

// A record that fails validation is a maker's bug. Before, it was dropped with a log line and what it recorded (a
// send, a receipt) went on as if it had its evidence; now it is thrown, for the caller to refuse or to record the
// fact with the reason (contain_integration_test, store_integration_test).
TEST(Makers, AnInvalidRecordIsThrownNotDropped) {
  auto records = accepted_records(make_event(), make_plan(), kNow, kCtx);
  ASSERT_EQ(records.size(), 4u);
  records[2].channel.clear();
  try {
    (void)to_leaves(records);
    FAIL() << "an invalid record was turned into leaves";
  } catch (const std::logic_error& e) {
    EXPECT_NE(std::string(e.what()).find("evidence record CONSENT_RECORDED is invalid"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("delivery_id and channel must not be empty"), std::string::npos) << e.what();
  }
}

TEST(Makers, IdsAreDeterministicAcrossReplays) {
  // A replay happens later: other times, same facts, same ids.
  EXPECT_EQ(ids_of(accepted_records(make_event(), make_plan(), kNow, kCtx)),
            ids_of(accepted_records(make_event(), make_plan(), kNow + 99999, kCtx)));
  const Delivery sms = make_delivery("sms");
  SendOutcome accepted{SendOutcome::Kind::kAccepted, "aliyun", "BIZ-1", "OK", "OK", "{\"Code\":\"OK\"}", 1};
  EXPECT_EQ(ids_of(outcome_records(sms, accepted, "SENT", kNow, kCtx)),
            ids_of(outcome_records(sms, accepted, "SENT", kNow + 5000, kCtx)));
  ReceiptUpdate u{"aliyun:BIZ-1:13812345678", "sms", true, "DELIVRD", kNow + 1000, "<report>1</report>"};
  EXPECT_EQ(receipt_record(sms, "aliyun", u, kNow).evidence_id, receipt_record(sms, "aliyun", u, kNow + 7).evidence_id);
  KafkaMessage m{"court.case-events", 3, 42, "k", "{not json", {}};
  const Error e = Error::permanent("invalid_json", "bad");
  EXPECT_EQ(rejected_record(m, e, kNow).evidence_id, rejected_record(m, e, kNow + 1).evidence_id);
  // Different facts, different ids.
  ReceiptUpdate u2 = u;
  u2.raw = "<report>2</report>";
  EXPECT_NE(receipt_record(sms, "aliyun", u, kNow).evidence_id, receipt_record(sms, "aliyun", u2, kNow).evidence_id);
  m.offset = 43;
  EXPECT_NE(rejected_record(m, e, kNow).evidence_id,
            rejected_record({m.topic, 3, 42, "k", m.value, {}}, e, kNow).evidence_id);
}

TEST(Makers, RejectedNamesTheSourceAndTheEventWhenParseable) {
  KafkaMessage bad{"court.case-events", 1, 7, "key", "{oops", {}};
  auto r = rejected_record(bad, Error::permanent("invalid_json", "not JSON at byte 1"), kNow);
  expect_valid({r});
  EXPECT_EQ(r.type, EvidenceType::kSubmissionRejected);
  EXPECT_EQ(r.event_id, "kafka:court.case-events/1/7");
  EXPECT_EQ(r.details["code"], "invalid_json");
  EXPECT_EQ(r.details["reason"], "not JSON at byte 1");
  EXPECT_EQ(r.details["source_partition"], 1);
  EXPECT_EQ(r.details["source_offset"], 7);
  EXPECT_EQ(r.details["payload_sha256"], sha256_hex("{oops"));

  KafkaMessage parseable{"t", 0, 1, "", R"({"event_id":"E-9","court":{"id":"HN-1"},"case":{"number":"(2026)1号"}})",
                         {}};
  auto r2 = rejected_record(parseable, Error::permanent("schema", "recipients missing"), kNow);
  expect_valid({r2});
  EXPECT_EQ(r2.event_id, "E-9");
  EXPECT_EQ(r2.court_id, "HN-1");
  EXPECT_EQ(r2.case_number, "(2026)1号");
  EXPECT_EQ(rejected_evidence(parseable, Error::permanent("schema", "x"), kNow).size(), 1u);
}

TEST(Makers, SentGivesDispatchedAndProviderAccepted) {
  const Delivery sms = make_delivery("sms");
  SendOutcome o{SendOutcome::Kind::kAccepted, "aliyun", "BIZ-1", "OK", "OK", "{\"BizId\":\"BIZ-1\"}", 1};
  const auto records = outcome_records(sms, o, "SENT", kNow, kCtx);
  ASSERT_EQ(records.size(), 2u);
  expect_valid(records);
  EXPECT_EQ(records[0].type, EvidenceType::kDispatched);
  EXPECT_EQ(records[0].details["provider"], "aliyun");
  EXPECT_EQ(records[0].details["address_masked"], "+86138****5678");
  EXPECT_EQ(records[0].details["address_hash"], evidence::address_hash(kCtx.salt, kMobile));
  EXPECT_EQ(records[0].details["idempotency_key"], sms.id);
  EXPECT_EQ(records[0].details["text_sha256"], sha256_hex(sms.text));
  EXPECT_EQ(records[1].type, EvidenceType::kProviderAccepted);
  EXPECT_EQ(records[1].details["provider_message_id"], "BIZ-1");
  expect_no_raw_address(to_leaves(records));
  EXPECT_TRUE(outcome_records(sms, o, "RETRY", kNow, kCtx).empty());
}

// Aliyun's message id is Songda's "<BizId>:<number>" (one request, many numbers): the record keeps it with the
// number masked, as every other address in a record is.
TEST(Makers, AnAliyunMessageIdIsRecordedWithItsNumberMasked) {
  const Delivery sms = make_delivery("sms");
  SendOutcome o{SendOutcome::Kind::kAccepted, "aliyun", "BIZ-2:" + kMobile.substr(3), "OK", "OK", "{}", 1};
  const auto records = outcome_records(sms, o, "SENT", kNow, kCtx);
  ASSERT_EQ(records.size(), 2u);
  expect_valid(records);
  EXPECT_EQ(records[1].details["provider_message_id"], "BIZ-2:138****5678");
  expect_no_raw_address(to_leaves(records));
  o.kind = SendOutcome::Kind::kDelivered;
  const auto delivered = outcome_records(sms, o, "DELIVERED", kNow, kCtx);
  expect_no_raw_address(to_leaves(delivered));
}

TEST(Makers, InAppAndEmailDeliveredAtOnce) {
  const Delivery inapp = make_delivery("inapp");
  SendOutcome written{SendOutcome::Kind::kDelivered, "inapp", inapp.id, "OK", "written to inbox of u123", "", 0};
  auto r = outcome_records(inapp, written, "DELIVERED", kNow, kCtx);
  ASSERT_EQ(r.size(), 2u);
  expect_valid(r);
  EXPECT_EQ(r[1].type, EvidenceType::kDelivered);
  EXPECT_EQ(r[1].event_time_ms, kNow);
  EXPECT_NE(r[1].details["identified_by"].get<std::string>().find("inbox"), std::string::npos);

  const Delivery email = make_delivery("email");
  const std::string answer = "250 2.0.0 Ok: queued as 4ABC";
  SendOutcome smtp{SendOutcome::Kind::kDelivered, "smtp", "<sd-1@court.example>", "250", answer, answer, 0};
  auto e = outcome_records(email, smtp, "DELIVERED", kNow, kCtx);
  ASSERT_EQ(e.size(), 2u);
  expect_valid(e);
  EXPECT_EQ(e[1].details["receipt_sha256"], sha256_hex(answer));
  EXPECT_EQ(e[1].details["provider_message_id"], "<sd-1@court.example>");
  EXPECT_EQ(e[0].details["address_masked"], "z***@example.cn");
  expect_no_raw_address(to_leaves(e));
}

TEST(Makers, FailureKeepsTheProvidersWordsButMasksTheAddress) {
  const Delivery email = make_delivery("email");
  const std::string said = "550 5.1.1 <" + kEmail + ">: Recipient address rejected: User unknown";
  SendOutcome refused{SendOutcome::Kind::kPermanent, "smtp", "", "550", said.substr(4), said, 0};
  auto r = outcome_records(email, refused, "FAILED", kNow, kCtx);
  ASSERT_EQ(r.size(), 2u);
  expect_valid(r);
  EXPECT_EQ(r[1].type, EvidenceType::kDeliveryFailed);
  EXPECT_EQ(r[1].details["reason"], "550 5.1.1 <z***@example.cn>: Recipient address rejected: User unknown");
  EXPECT_EQ(r[1].details["reason_sha256"], sha256_hex(said));
  EXPECT_EQ(r[1].details["outcome"], "refused");
  expect_no_raw_address(to_leaves(r));
  // A server that writes the address in other case is masked too (the match ignores ASCII case).
  std::string upper = kEmail;
  std::transform(upper.begin(), upper.end(), upper.begin(), [](unsigned char c) { return std::toupper(c); });
  SendOutcome shouted{SendOutcome::Kind::kPermanent, "smtp", "", "550", "5.1.1 <" + upper + ">", "550", 0};
  EXPECT_EQ(outcome_records(email, shouted, "FAILED", kNow, kCtx)[1].details["reason"], "550 5.1.1 <z***@example.cn>");

  // Bad UTF-8 (a GBK reason) is repaired, not dropped.
  const Delivery sms = make_delivery("sms");
  ReceiptUpdate gbk{"tencent:S1", "sms", false, "\xBF\xD5\xBA\xC5 13812345678", kNow - 5, "raw"};
  auto f = receipt_record(sms, "", gbk, kNow);
  expect_valid({f});
  EXPECT_EQ(f.details["provider"], "tencent");
  const std::string reason = f.details["reason"];
  EXPECT_NE(reason.find("\xEF\xBF\xBD"), std::string::npos);
  EXPECT_EQ(reason.find("13812345678"), std::string::npos);
  EXPECT_EQ(receipt_evidence(sms, "", gbk, kNow).size(), 1u);
}

TEST(Makers, ReceiptCarriesRawHashProviderAndGatewayTimes) {
  const Delivery sms = make_delivery("sms");
  ReceiptUpdate u{"aliyun:BIZ-1:13812345678", "sms", true, "DELIVRD", kNow - 60000, "<r phone=13812345678/>"};
  auto r = receipt_record(sms, "aliyun", u, kNow);
  expect_valid({r});
  EXPECT_EQ(r.type, EvidenceType::kDelivered);
  EXPECT_EQ(r.event_time_ms, kNow - 60000);  // the operator's time is the service moment
  EXPECT_EQ(r.recorded_at_ms, kNow);
  EXPECT_EQ(r.details["receipt_sha256"], sha256_hex(u.raw));
  EXPECT_EQ(r.details["provider_time"], kNow - 60000);
  EXPECT_EQ(r.details["gateway_received_at"], kNow);
  expect_no_raw_address(to_leaves({r}));
}

TEST(Makers, ReadAndFallback) {
  const Delivery inapp = make_delivery("inapp");
  auto read = read_record(inapp, kNow);
  expect_valid({read});
  EXPECT_EQ(read.type, EvidenceType::kRead);
  EXPECT_NE(read.details["identified_by"].get<std::string>().find("app inbox API"), std::string::npos);
  EXPECT_EQ(read.evidence_id, read_record(inapp, kNow + 1).evidence_id);

  Delivery held = make_delivery("sms");
  held.hold_from = make_delivery("wechat").id;
  held.hold_unless = "DELIVERED";
  held.hold_after_s = 600;
  auto released = fallback_record(held, TimerOutcome{held.id, true, held.hold_from, "SENT", kNow}, kNow);
  auto cancelled = fallback_record(held, TimerOutcome{held.id, false, held.hold_from, "DELIVERED", kNow}, kNow);
  expect_valid({released, cancelled});
  EXPECT_EQ(released.details["action"], "released");
  EXPECT_EQ(released.details["to_channel"], "sms");
  EXPECT_EQ(released.details["from_status"], "SENT");
  EXPECT_EQ(cancelled.details["action"], "cancelled");
  EXPECT_FALSE(cancelled.details.contains("to_channel"));
  EXPECT_NE(released.evidence_id, cancelled.evidence_id);
  EXPECT_EQ(fallback_evidence(held, TimerOutcome{held.id, true, held.hold_from, "SENT", kNow}, kNow).size(), 1u);
  EXPECT_EQ(read_evidence(inapp, kNow).size(), 1u);
}

TEST(Makers, RulesDecideFromWhatTheMakersWrite) {
  const CaseEvent e = make_event();
  const Plan plan = make_plan();
  std::vector<EvidenceRecord> all = accepted_records(e, plan, kNow, kCtx);
  const Delivery& sms = plan.deliveries[1];
  SendOutcome o{SendOutcome::Kind::kAccepted, "aliyun", "BIZ-1", "OK", "OK", "", 1};
  for (auto& r : outcome_records(sms, o, "SENT", kNow, kCtx)) all.push_back(r);
  all.push_back(
      receipt_record(sms, "aliyun", {"aliyun:BIZ-1:x", "sms", true, "DELIVRD", kNow + 30000, "raw"}, kNow + 40000));
  auto deliveries = evidence::deliveries_from_records(all);
  ASSERT_TRUE(deliveries.ok()) << deliveries.error().message;
  const auto decision = evidence::decide_service(*deliveries);
  EXPECT_EQ(decision.status, evidence::ServiceStatus::kServed);
  EXPECT_EQ(decision.service_time_ms, kNow + 30000);
  EXPECT_EQ(decision.channel, "sms");
  EXPECT_EQ(decision.rule, evidence::kRuleArrival);
}

TEST(Makers, ParsesRfc3339) {
  EXPECT_EQ(parse_rfc3339_ms("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(parse_rfc3339_ms("2026-11-28T09:00:00+08:00"), parse_rfc3339_ms("2026-11-28T01:00:00Z"));
  EXPECT_EQ(parse_rfc3339_ms("2026-11-28T01:00:00.5Z").value() - parse_rfc3339_ms("2026-11-28T01:00:00Z").value(), 500);
  EXPECT_EQ(parse_rfc3339_ms("2026-11-28T01:00:00-01:30").value() - parse_rfc3339_ms("2026-11-28T01:00:00Z").value(),
            90 * 60 * 1000);
  EXPECT_FALSE(parse_rfc3339_ms("2026-02-30T00:00:00Z"));
  EXPECT_FALSE(parse_rfc3339_ms("2026-11-28 09:00"));
  EXPECT_FALSE(parse_rfc3339_ms(""));
  EXPECT_FALSE(parse_rfc3339_ms("2026-11-28T09:00:00"));
}

TEST(Makers, SaltComesFromTheEnvironment) {
  auto env = [](const char* v) { return [v](const char*) { return v; }; };
  EXPECT_THROW(evidence_context_from_environment(env(nullptr)), StartupError);
  EXPECT_THROW(evidence_context_from_environment(env("short")), StartupError);
  EXPECT_EQ(evidence_context_from_environment(env("0123456789abcdef0123")).salt, "0123456789abcdef0123");
}

}  // namespace
}  // namespace songda::ledger
