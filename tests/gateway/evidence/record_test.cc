// Evidence records: ids, JSON, canonical bytes, per-type validation.
#include "gateway/evidence/record.h"

#include <gtest/gtest.h>

#include <limits>
#include <string>

#include "gateway/core/crypto.h"
#include "gateway/evidence/jcs.h"
#include "gateway/evidence/merkle.h"
#include "tests/gateway/evidence/support.h"

namespace songda::evidence {
namespace {

using testing::make_record;

const EvidenceType kAllTypes[] = {EvidenceType::kConsentRecorded,
                                  EvidenceType::kSubmissionAccepted,
                                  EvidenceType::kSubmissionRejected,
                                  EvidenceType::kDispatched,
                                  EvidenceType::kProviderAccepted,
                                  EvidenceType::kDelivered,
                                  EvidenceType::kDeliveryFailed,
                                  EvidenceType::kRead,
                                  EvidenceType::kRetrieved,
                                  EvidenceType::kAcknowledged,
                                  EvidenceType::kServiceDeemedComplete,
                                  EvidenceType::kFallback,
                                  EvidenceType::kCorrection};

TEST(Record, TypeNamesRoundTrip) {
  for (const auto t : kAllTypes) {
    EXPECT_EQ(evidence_type_from_string(to_string(t)), t);
  }
  EXPECT_EQ(to_string(EvidenceType::kServiceDeemedComplete), "SERVICE_DEEMED_COMPLETE");
  EXPECT_FALSE(evidence_type_from_string("delivered").has_value());
}

TEST(Record, EvidenceIdIsDeterministicSoRepeatsDeduplicate) {
  const std::string a = make_evidence_id("sd-1", EvidenceType::kDelivered, "receipt-hash");
  EXPECT_EQ(a, make_evidence_id("sd-1", EvidenceType::kDelivered, "receipt-hash"));
  EXPECT_EQ(a, "ev-" + sha256_hex("sd-1\x1f"
                                  "DELIVERED\x1f"
                                  "receipt-hash")
                           .substr(0, 32));
  EXPECT_NE(a, make_evidence_id("sd-1", EvidenceType::kRead, "receipt-hash"));
  EXPECT_NE(a, make_evidence_id("sd-2", EvidenceType::kDelivered, "receipt-hash"));
  EXPECT_NE(a, make_evidence_id("sd-1", EvidenceType::kDelivered, "other"));
  EXPECT_EQ(a.size(), 35u);
}

TEST(Record, AddressHashIsSaltedHmac) {
  EXPECT_EQ(address_hash("k", "+8613800000000"), to_hex(hmac_sha256_raw("k", "+8613800000000")));
  EXPECT_NE(address_hash("k1", "+8613800000000"), address_hash("k2", "+8613800000000"));
}

TEST(Record, EveryTypeRoundTripsThroughJson) {
  for (const auto t : kAllTypes) {
    const EvidenceRecord r = make_record("sms", t, testing::kT0);
    ASSERT_TRUE(validate_record(r).ok()) << to_string(t) << ": " << validate_record(r).error().message;
    const nlohmann::json j = to_json(r);
    auto back = record_from_json(j);
    ASSERT_TRUE(back.ok()) << back.error().message;
    EXPECT_EQ(to_json(*back), j);
    EXPECT_EQ(*back->canonical(), *r.canonical());
  }
}

TEST(Record, CanonicalBytesArePinned) {
  EvidenceRecord r;
  r.evidence_id = "ev-0123456789abcdef0123456789abcdef";
  r.type = EvidenceType::kDelivered;
  r.event_time_ms = 1764291600000;
  r.recorded_at_ms = 1764291600250;
  r.delivery_id = "sd-1";
  r.event_id = "e-1";
  r.court_id = "HN-SQ-ZY";
  r.case_number = "(2026)豫14民初123号";
  r.channel = "sms";
  r.details = {{"receipt_sha256", std::string(64, 'a')}, {"provider", "aliyun"}};
  const std::string expected =
      R"({"case_number":"(2026)豫14民初123号","channel":"sms","court_id":"HN-SQ-ZY","delivery_id":"sd-1",)"
      R"("details":{"provider":"aliyun","receipt_sha256":")" +
      std::string(64, 'a') +
      R"("},"event_id":"e-1","event_time":1764291600000,"evidence_id":"ev-0123456789abcdef0123456789abcdef",)"
      R"("recorded_at":1764291600250,"schema":"songda.evidence/v1","type":"DELIVERED"})";
  EXPECT_EQ(*r.canonical(), expected);
  EXPECT_EQ(*r.leaf_hash(), leaf_hash(expected));
  EXPECT_EQ(*record_json_leaf_hash(to_json(r)), *r.leaf_hash());
}

// canonical() lays the record out itself; it must give exactly the bytes of the generic JCS of
// to_json(r) (what verifiers recompute), whatever the text holds.
TEST(Record, CanonicalIsTheJcsOfItsJson) {
  for (const auto t : kAllTypes) {
    EvidenceRecord r = make_record("wechat", t, testing::kT0);
    EXPECT_EQ(*r.canonical(), *canonicalize(to_json(r))) << to_string(t);
    r.case_number = "(2026)豫14民初\"1\\23\"号\n\x01";
    r.court_id = "HN-\u2028";
    r.event_time_ms = -1;
    r.details["\xf0\x9f\x98\x80 note"] = {{"\xef\xac\xb3", 1.5}, {"a", {nullptr, true, "\t"}}};
    EXPECT_EQ(*r.canonical(), *canonicalize(to_json(r))) << to_string(t);
  }
  EvidenceRecord bad = make_record("sms", EvidenceType::kRead, testing::kT0);
  bad.case_number = std::string("\xc0\xaf");
  EXPECT_EQ(bad.canonical().error().code, "jcs");
}

TEST(Record, CanonicalFormIgnoresSpelling) {
  const EvidenceRecord r = make_record("email", EvidenceType::kDispatched, testing::kT0);
  const nlohmann::json reparsed = nlohmann::json::parse(to_json(r).dump(2));
  EXPECT_EQ(*record_json_leaf_hash(reparsed), *r.leaf_hash());
}

// For each type, removing any required detail is refused with its name.
TEST(Record, RequiredDetailsPerType) {
  struct Row {
    EvidenceType type;
    std::vector<std::string> required;
  };
  const Row rows[] = {
      {EvidenceType::kConsentRecorded, {"basis", "scope", "reference"}},
      {EvidenceType::kSubmissionAccepted, {}},
      {EvidenceType::kSubmissionRejected, {"reason"}},
      {EvidenceType::kDispatched, {"provider", "address_masked", "address_hash", "text_sha256", "idempotency_key"}},
      {EvidenceType::kProviderAccepted, {"provider", "provider_message_id"}},
      {EvidenceType::kDelivered, {"receipt_sha256"}},
      {EvidenceType::kDeliveryFailed, {"reason"}},
      {EvidenceType::kRead, {"identified_by"}},
      {EvidenceType::kRetrieved, {"identified_by", "served_sha256"}},
      {EvidenceType::kAcknowledged, {"method"}},
      {EvidenceType::kServiceDeemedComplete, {"status", "rule", "rule_version", "evidence_ids"}},
      {EvidenceType::kFallback, {"reason"}},
      {EvidenceType::kCorrection, {"corrects", "reason"}},
  };
  for (const auto& row : rows) {
    for (const auto& field : row.required) {
      EvidenceRecord r = make_record("sms", row.type, testing::kT0);
      r.details.erase(field);
      const Status s = validate_record(r);
      ASSERT_FALSE(s.ok()) << to_string(row.type) << " without " << field;
      EXPECT_NE(s.error().message.find(field), std::string::npos) << s.error().message;
    }
  }
}

TEST(Record, RefusesBadValues) {
  auto refused = [](EvidenceRecord r) { return !validate_record(r).ok(); };
  EvidenceRecord r = make_record("sms", EvidenceType::kConsentRecorded, testing::kT0);
  r.details["basis"] = "implied";
  EXPECT_TRUE(refused(r));
  r = make_record("sms", EvidenceType::kDelivered, testing::kT0);
  r.details["receipt_sha256"] = std::string(64, 'A');
  EXPECT_TRUE(refused(r));
  r = make_record("sms", EvidenceType::kDispatched, testing::kT0);
  r.details["address"] = "+8613800000000";
  EXPECT_TRUE(refused(r)) << "raw addresses must not enter the log";
  r = make_record("sms", EvidenceType::kDispatched, testing::kT0);
  r.details["mobile"] = "+8613800000000";
  EXPECT_TRUE(refused(r));
  r = make_record("sms", EvidenceType::kRead, testing::kT0);
  r.evidence_id = "ev-123";
  EXPECT_TRUE(refused(r));
  r = make_record("sms", EvidenceType::kRead, testing::kT0);
  r.delivery_id.clear();
  EXPECT_TRUE(refused(r));
  r = make_record("sms", EvidenceType::kRead, testing::kT0);
  r.details = nlohmann::json::array();
  EXPECT_TRUE(refused(r));
  // Event-level records need no delivery.
  r = make_record("", EvidenceType::kSubmissionAccepted, testing::kT0);
  r.delivery_id.clear();
  EXPECT_TRUE(validate_record(r).ok());
}

TEST(Record, JsonParsingIsStrict) {
  const nlohmann::json good = to_json(make_record("sms", EvidenceType::kDelivered, testing::kT0));
  auto refused = [](const nlohmann::json& j) { return !record_from_json(j).ok(); };
  nlohmann::json bad = good;
  bad["note"] = "x";
  EXPECT_TRUE(refused(bad));
  bad = good;
  bad.erase("recorded_at");
  EXPECT_TRUE(refused(bad));
  bad = good;
  bad["type"] = "DELIVERD";
  EXPECT_TRUE(refused(bad));
  bad = good;
  bad["schema"] = "songda.evidence/v2";
  EXPECT_TRUE(refused(bad));
  bad = good;
  bad["event_time"] = "1764291600000";
  EXPECT_TRUE(refused(bad));
  EXPECT_TRUE(refused(nlohmann::json::array()));
}

TEST(Record, CanonicalRefusesNonFiniteDetails) {
  EvidenceRecord r = make_record("sms", EvidenceType::kRead, testing::kT0);
  r.details["score"] = std::numeric_limits<double>::quiet_NaN();
  EXPECT_EQ(r.canonical().error().code, "jcs");
  EXPECT_FALSE(r.leaf_hash().ok());
}

}  // namespace
}  // namespace songda::evidence
