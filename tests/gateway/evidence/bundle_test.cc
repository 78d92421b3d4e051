// Proof bundles: a genuine one verifies; any changed byte, a wrong key, a
// forked log, a wrong document or a changed claim is caught and explained.
#include "gateway/evidence/bundle.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "gateway/core/crypto.h"
#include "gateway/core/text.h"
#include "gateway/evidence/rules.h"
#include "tests/gateway/evidence/support.h"

namespace songda::evidence {
namespace {

using Json = nlohmann::json;
using T = EvidenceType;
constexpr std::int64_t kMin = 60'000;
constexpr std::int64_t kT0 = testing::kT0;
const std::string kDocument = "%PDF-1.7 传票 (2026)豫14民初123号 …";

EvidenceRecord consent(const std::string& channel, const std::string& basis) {
  return testing::make_record(channel, T::kConsentRecorded, kT0 - kMin,
                              testing::details_for(T::kConsentRecorded, basis));
}

EvidenceRecord submission_accepted() {
  EvidenceRecord r = testing::make_record("", T::kSubmissionAccepted, kT0 - 2 * kMin,
                                          {{"document_id", "DOC-1"}, {"document_sha256", sha256_hex(kDocument)}});
  r.delivery_id.clear();
  r.evidence_id = make_evidence_id(r.event_id, T::kSubmissionAccepted, "accepted");
  return r;
}

// The recipient's records: sms delivered at +5 min, in-app (address obtained) read at +2 min, email failed.
std::vector<EvidenceRecord> recipient_records() {
  return {submission_accepted(),
          consent("sms", "provided"),
          testing::make_record("sms", T::kDispatched, kT0),
          testing::make_record("sms", T::kDelivered, kT0 + 5 * kMin),
          consent("inapp", "obtained"),
          testing::make_record("inapp", T::kRead, kT0 + 2 * kMin),
          testing::make_record("email", T::kDeliveryFailed, kT0 + kMin)};
}

EvidenceRecord other_recipient_record(int i) {
  return testing::make_record("sms", T::kDelivered, kT0 + i, nullptr, "P-" + std::to_string(100 + i));
}

DeliveryRef sms_delivery() {
  return DeliveryRef{
      testing::delivery_of("sms"), testing::kEventId, testing::kRecipient, "sms", testing::kCourt, testing::kCase};
}

class Bundle : public ::testing::Test {
 protected:
  void SetUp() override {
    auto pair = generate_key_pair();
    ASSERT_TRUE(pair.ok());
    public_pem_ = pair->public_pem;
    key_.emplace(*load_private_key_pem(pair->private_pem));
    // Other recipients' records around ours, so indexes and proofs are not trivial.
    const auto ours = recipient_records();
    for (int i = 0; i < 30; ++i) {
      append(other_recipient_record(i));
      const auto k = static_cast<std::size_t>(i / 4);
      if (i % 4 == 1 && k < ours.size()) {
        placed_.emplace_back(ours[k], tree_.size());
        append(ours[k]);
      }
    }
    ASSERT_EQ(placed_.size(), ours.size());
    earlier_size_ = tree_.size();
    earlier_ = sign(earlier_size_);
    for (int i = 30; i < 41; ++i) append(other_recipient_record(i));
    checkpoint_ = sign(tree_.size());
    bundle_ = make_bundle(placed_, checkpoint_);
  }

  void append(const EvidenceRecord& r) { tree_.append_leaf_hash(*r.leaf_hash()); }

  Checkpoint sign(std::uint64_t size) {
    return *sign_checkpoint("songda/HN-SQ-ZY", size, *root(tree_, size), kT0 + 60 * kMin, *key_);
  }

  Json make_bundle(const std::vector<std::pair<EvidenceRecord, std::uint64_t>>& records, const Checkpoint& c) {
    auto proven = prove_records(tree_, records, c.tree_size);
    EXPECT_TRUE(proven.ok()) << proven.error().message;
    auto b = build_bundle(BundleInput{sms_delivery(), *proven, c, sha256_hex(kDocument), kT0 + 61 * kMin}, *key_);
    EXPECT_TRUE(b.ok()) << b.error().message;
    return *b;
  }

  VerifyOptions with_earlier() {
    VerifyOptions o;
    auto proof = consistency_proof(tree_, earlier_size_, checkpoint_.tree_size);
    std::vector<std::string> hex;
    for (const auto& h : *proof) hex.push_back(to_hex(h));
    o.earlier = EarlierCheckpoint{to_json(earlier_).dump(), hex};
    return o;
  }

  static const Check* failed(const VerifyReport& r) {
    const auto it = std::find_if(r.checks.begin(), r.checks.end(), [](const Check& c) { return !c.ok; });
    return it == r.checks.end() ? nullptr : &*it;
  }

  // The names of the failed checks, in report order.
  static std::vector<std::string> failures(const VerifyReport& r) {
    std::vector<std::string> out;
    for (const Check& c : r.checks) {
      if (!c.ok) out.push_back(c.name);
    }
    return out;
  }

  static const Check* check_named(const VerifyReport& r, const std::string& prefix) {
    const auto it =
        std::find_if(r.checks.begin(), r.checks.end(), [&](const Check& c) { return c.name.rfind(prefix, 0) == 0; });
    return it == r.checks.end() ? nullptr : &*it;
  }

  // The bundle as a gateway before attestations wrote it (songda.proof-bundle/v1).
  static Json as_v1(Json b) {
    b.erase("attestation");
    b["version"] = kBundleVersionV1;
    return b;
  }

  // The service the given records decide, as the bundle states it.
  static Json decided(const Json& records) {
    std::vector<EvidenceRecord> plain;
    for (const Json& j : records) plain.push_back(*record_from_json(j));
    return to_json(decide_service(*deliveries_from_records(plain)));
  }

  std::string public_pem_;
  std::optional<SigningKey> key_;
  InMemoryTree tree_;
  std::vector<std::pair<EvidenceRecord, std::uint64_t>> placed_;
  std::uint64_t earlier_size_ = 0;
  Checkpoint earlier_;
  Checkpoint checkpoint_;
  Json bundle_;
};

TEST_F(Bundle, GenuineBundleVerifies) {
  const VerifyReport r = verify_bundle(bundle_.dump(), public_pem_);
  EXPECT_TRUE(r.ok) << r.text();
  EXPECT_GE(r.checks.size(), 2 * placed_.size() + 4);
  EXPECT_NE(r.text().find("VERIFIED 核验通过"), std::string::npos);
  EXPECT_NE(r.text().find("service date 送达日期"), std::string::npos);
  EXPECT_EQ(r.to_json()["ok"], true);
}

TEST_F(Bundle, ShapeAndServiceClaim) {
  for (const char* key : {"version", "delivery", "records", "leaves", "checkpoint", "key_id", "service",
                          "document_sha256", "attestation"}) {
    EXPECT_TRUE(bundle_.contains(key)) << key;
  }
  EXPECT_EQ(bundle_["version"], "songda.proof-bundle/v2");
  EXPECT_EQ(bundle_["attestation"]["key_id"], key_->key_id());
  EXPECT_EQ(bundle_["attestation"]["attested_at"], kT0 + 61 * kMin);
  EXPECT_EQ(bundle_["records"].size(), placed_.size());
  EXPECT_EQ(bundle_["leaves"][0]["index"], placed_[0].second);
  EXPECT_EQ(bundle_["key_id"], key_->key_id());
  // In-app (address obtained) read at +2 min beats the sms arrival at +5 min.
  EXPECT_EQ(bundle_["service"]["status"], "SERVED");
  EXPECT_EQ(bundle_["service"]["service_time"], kT0 + 2 * kMin);
  EXPECT_EQ(bundle_["service"]["rule"], kRulePresumedRead);
  EXPECT_EQ(bundle_["service"]["channel"], "inapp");
}

TEST_F(Bundle, EverythingOptionalVerifiesToo) {
  VerifyOptions o = with_earlier();
  o.document_bytes = kDocument;
  const VerifyReport r = verify_parsed_bundle(bundle_, public_pem_, o);
  EXPECT_TRUE(r.ok) << r.text();
  EXPECT_NE(r.text().find("consistency"), std::string::npos);
  EXPECT_NE(r.text().find("文书一致"), std::string::npos);
}

// Every single-byte change of the serialized bundle that still parses as a
// different JSON value must fail verification, with a reason. Sharded by
// position so ctest runs the shards in parallel.
class BundleTamper : public Bundle, public ::testing::WithParamInterface<int> {};
constexpr int kShards = 8;

TEST_P(BundleTamper, AnyChangedByteFails) {
  const std::string text = bundle_.dump();
  int still_json = 0;
  for (std::size_t i = static_cast<std::size_t>(GetParam()); i < text.size(); i += kShards) {
    // Every byte with its low bit flipped; every 7th also with case (0x20) and 0x02 flipped.
    for (const unsigned char mask : {0x01, 0x20, 0x02}) {
      if (mask != 0x01 && i % 7 != 0) continue;
      std::string bad = text;
      bad[i] = static_cast<char>(bad[i] ^ mask);
      const Json parsed = Json::parse(bad, nullptr, false);
      if (parsed.is_discarded()) {
        EXPECT_FALSE(verify_bundle(bad, public_pem_).ok);
        continue;
      }
      if (parsed == bundle_) continue;  // the same value spelled differently (e.g. "1E+30"): not a change
      ++still_json;
      const VerifyReport r = verify_parsed_bundle(parsed, public_pem_);
      ASSERT_FALSE(r.ok) << "byte " << i << " ^ " << int{mask}
                         << " went unnoticed near: " << text.substr(i < 40 ? 0 : i - 40, 80);
      const Check* why = failed(r);
      ASSERT_NE(why, nullptr);
      EXPECT_FALSE(why->detail.empty());
    }
  }
  EXPECT_GT(still_json, 500 / kShards * 2) << "too few mutations stayed valid JSON to mean much";
}

INSTANTIATE_TEST_SUITE_P(Shards, BundleTamper, ::testing::Range(0, kShards));

TEST_F(Bundle, WrongPublicKeyFails) {
  const std::string other_key = generate_key_pair()->public_pem;
  const VerifyReport r = verify_parsed_bundle(bundle_, other_key);
  EXPECT_FALSE(r.ok);
  const Check* why = failed(r);
  ASSERT_NE(why, nullptr);
  EXPECT_EQ(why->name, "key id 密钥标识");
  EXPECT_FALSE(verify_parsed_bundle(bundle_, "not a key").ok);
}

TEST_F(Bundle, ALogSignedByAnotherKeyFails) {
  const SigningKey impostor = *load_private_key_pem(generate_key_pair()->private_pem);
  const Checkpoint forged =
      *sign_checkpoint("songda/HN-SQ-ZY", tree_.size(), *root(tree_, tree_.size()), checkpoint_.timestamp_ms, impostor);
  const VerifyReport r = verify_parsed_bundle(make_bundle(placed_, forged), public_pem_);
  EXPECT_FALSE(r.ok);
}

TEST_F(Bundle, WrongDocumentFails) {
  VerifyOptions o;
  o.document_bytes = kDocument + " ";
  const VerifyReport r = verify_parsed_bundle(bundle_, public_pem_, o);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(failed(r)->detail.find("文书不一致"), std::string::npos);
}

TEST_F(Bundle, AForkedHistoryFailsConsistency) {
  // A second log with the same key whose first leaf differs: a rewritten history.
  InMemoryTree forked;
  forked.append_leaf("rewritten");
  for (std::uint64_t i = 1; i < tree_.size(); ++i) forked.append_leaf_hash(*tree_.subtree_hash(0, i));
  const Checkpoint forked_earlier =
      *sign_checkpoint("songda/HN-SQ-ZY", earlier_size_, *root(forked, earlier_size_), kT0, *key_);
  VerifyOptions o = with_earlier();
  o.earlier->checkpoint_json = to_json(forked_earlier).dump();
  const VerifyReport r = verify_parsed_bundle(bundle_, public_pem_, o);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(failed(r)->name, "consistency 一致性证明");

  VerifyOptions wrong_proof = with_earlier();
  wrong_proof.earlier->consistency_proof_hex.pop_back();
  EXPECT_FALSE(verify_parsed_bundle(bundle_, public_pem_, wrong_proof).ok);
}

TEST_F(Bundle, AnotherRecipientsRecordFails) {
  auto records = placed_;
  const EvidenceRecord stranger = other_recipient_record(3);  // genuinely in the log, at some index
  std::uint64_t index = 0;
  while (*tree_.subtree_hash(0, index) != *stranger.leaf_hash()) ++index;
  records.emplace_back(stranger, index);
  const VerifyReport r = verify_parsed_bundle(make_bundle(records, checkpoint_), public_pem_);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(failed(r)->name, "delivery 送达对象");
}

TEST_F(Bundle, DroppingTheDecidingRecordFails) {
  Json b = bundle_;
  // Remove the in-app READ (records[5]) and its leaf but keep the claim.
  b["records"].erase(5);
  b["leaves"].erase(5);
  const VerifyReport r = verify_parsed_bundle(b, public_pem_);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(failures(r), (std::vector<std::string>{"completeness 完整性", "service date 送达日期"}));
  EXPECT_NE(check_named(r, "service date")->detail.find("送达结论与记录不符"), std::string::npos);
}

// Every record left in is genuine and the conclusion is rewritten to match them: only the attestation shows
// that the bundle no longer holds all the recipient's records. Here the consent of the SMS channel is taken out,
// and the in-app read, so the bundle would say the SMS arrival at +5 min did not serve (no consent) and nothing did.
TEST_F(Bundle, LeavingOutRecordsAndRewritingTheConclusionFails) {
  Json b = bundle_;
  for (const std::size_t i : {5U, 1U}) {  // READ (in-app), then CONSENT_RECORDED (sms)
    b["records"].erase(i);
    b["leaves"].erase(i);
  }
  b["service"] = decided(b["records"]);
  ASSERT_NE(b["service"], bundle_["service"]);
  ASSERT_EQ(b["service"]["status"], "PENDING");

  const VerifyReport r = verify_parsed_bundle(b, public_pem_);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(failures(r), std::vector<std::string>{"completeness 完整性"}) << r.text();
  EXPECT_NE(check_named(r, "completeness")->detail.find("凭证签名后被改动"), std::string::npos);

  // The same cut in the unsigned v1 form passes every check it has, and says completeness was not checked.
  const VerifyReport old = verify_parsed_bundle(as_v1(b), public_pem_);
  EXPECT_TRUE(old.ok) << old.text();
  const Check* completeness = check_named(old, "completeness");
  ASSERT_NE(completeness, nullptr);
  EXPECT_FALSE(completeness->checked);
  EXPECT_NE(old.text().find("[--]   completeness"), std::string::npos) << old.text();
  EXPECT_NE(old.text().find("except 1 item(s) marked [--]"), std::string::npos) << old.text();
}

TEST_F(Bundle, AnAttestationMissingOrByAnotherKeyFails) {
  Json b = bundle_;
  b.erase("attestation");  // still named v2
  VerifyReport r = verify_parsed_bundle(b, public_pem_);
  EXPECT_EQ(failures(r), std::vector<std::string>{"bundle format 格式"});

  // Signed over the same content, by a key that is not the log's.
  const SigningKey impostor = *load_private_key_pem(generate_key_pair()->private_pem);
  b = bundle_;
  b["attestation"]["key_id"] = impostor.key_id();
  b["attestation"]["signature"] = base64_encode(*impostor.sign(*attestation_message(b)));
  r = verify_parsed_bundle(b, public_pem_);
  EXPECT_EQ(failures(r), std::vector<std::string>{"completeness 完整性"});
  b["attestation"]["key_id"] = key_->key_id();
  b["attestation"]["signature"] = base64_encode(*impostor.sign(*attestation_message(b)));
  r = verify_parsed_bundle(b, public_pem_);
  EXPECT_EQ(failures(r), std::vector<std::string>{"completeness 完整性"});
  EXPECT_NE(check_named(r, "completeness")->detail.find("凭证签名后被改动"), std::string::npos);

  // A later attestation time is a change too.
  b = bundle_;
  b["attestation"]["attested_at"] = kT0 + 90 * kMin;
  EXPECT_EQ(failures(verify_parsed_bundle(b, public_pem_)), std::vector<std::string>{"completeness 完整性"});
}

TEST_F(Bundle, AChangedClaimFails) {
  Json b = bundle_;
  b["service"]["service_time"] = kT0 + 5 * kMin;
  EXPECT_EQ(failures(verify_parsed_bundle(b, public_pem_)),
            (std::vector<std::string>{"completeness 完整性", "service date 送达日期"}));
  b = as_v1(bundle_);
  b["service"]["rule_version"] = "cn-olr-2030.1";
  const VerifyReport r = verify_parsed_bundle(b, public_pem_);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(failed(r)->detail.find("hint"), std::string::npos);
}

// A bundle printed before the rules became cn-olr-2021.2 states cn-olr-2021.1 (and, older than attestations, is v1):
// it still verifies, recomputed with that version; its claim is still held to what that version decides.
TEST_F(Bundle, ABundleDecidedWithAnEarlierRulesVersionStillVerifies) {
  std::vector<std::pair<EvidenceRecord, std::uint64_t>> pending;  // in-app (obtained) not read, SMS not arrived
  for (const auto& [r, index] : placed_) {
    if (r.channel == "inapp" && r.type == T::kRead) continue;
    if (r.channel == "sms" && r.type == T::kDelivered) continue;
    if (r.channel == "email") continue;
    pending.emplace_back(r, index);
  }
  Json b = make_bundle(pending, checkpoint_);
  ASSERT_EQ(b["service"]["status"], "PENDING");
  ASSERT_EQ(b["service"]["rule"], kRulePendingMixed);
  ASSERT_EQ(b["service"]["rule_version"], kRulesVersion);
  EXPECT_TRUE(verify_parsed_bundle(b, public_pem_).ok);

  b = as_v1(b);
  b["service"]["rule_version"] = kRulesVersion2021_1;  // as the 2021.1 gateway wrote it
  b["service"]["rule"] = kRulePending;
  const VerifyReport old = verify_parsed_bundle(b, public_pem_);
  EXPECT_TRUE(old.ok) << old.text();
  EXPECT_NE(old.text().find("recomputed with rules cn-olr-2021.1"), std::string::npos) << old.text();

  b["service"]["rule"] = kRulePendingMixed;  // 2021.2's words under 2021.1's name
  const VerifyReport mixed = verify_parsed_bundle(b, public_pem_);
  EXPECT_FALSE(mixed.ok);
  EXPECT_NE(failed(mixed)->detail.find("送达结论与记录不符"), std::string::npos) << failed(mixed)->detail;
}

TEST_F(Bundle, BrokenJsonIsReported) {
  const VerifyReport r = verify_bundle("{\"version\":", public_pem_);
  EXPECT_FALSE(r.ok);
  ASSERT_EQ(r.checks.size(), 1u);
  EXPECT_NE(r.text().find("NOT VERIFIED"), std::string::npos);
}

TEST_F(Bundle, TimestampedCheckpoint) {
  if (!testing::have_openssl_cli()) GTEST_SKIP() << "the `openssl` command is not installed; skipping RFC 3161 test";
  testing::TempDir dir;
  auto tsa = testing::LocalTsa::create(dir.path());
  ASSERT_TRUE(tsa.ok()) << tsa.error().message;
  Checkpoint stamped = checkpoint_;
  stamped.tsa_token = *tsa->stamp(signed_body(checkpoint_), true);
  const Json b = make_bundle(placed_, stamped);
  VerifyOptions o;
  o.tsa_ca_pem = tsa->ca_pem();
  const VerifyReport trusted = verify_parsed_bundle(b, public_pem_, o);
  EXPECT_TRUE(trusted.ok) << trusted.text();
  EXPECT_NE(trusted.text().find("trusted TSA"), std::string::npos);
  const VerifyReport untrusted = verify_parsed_bundle(b, public_pem_);
  EXPECT_TRUE(untrusted.ok) << untrusted.text();
  // Before, an unchecked token was listed as [OK] 可信时间戳 with its time: a forged one passed as trusted.
  EXPECT_NE(untrusted.text().find("[--]   TSA timestamp 时间戳（未核验 not checked）"), std::string::npos)
      << untrusted.text();
  EXPECT_EQ(untrusted.text().find("可信时间戳"), std::string::npos) << untrusted.text();
  const auto stamped_at = inspect_tsa_token(*stamped.tsa_token, signed_body(stamped));
  ASSERT_TRUE(stamped_at.ok());
  EXPECT_EQ(untrusted.text().find(rfc3339_utc(stamped_at->gen_time_ms)), std::string::npos)
      << "the unchecked time is stated";
  const auto checks = untrusted.to_json()["checks"];
  EXPECT_EQ(std::count_if(checks.begin(), checks.end(), [](const Json& c) { return c.contains("checked"); }), 1);

  Checkpoint wrong = checkpoint_;
  wrong.tsa_token = *tsa->stamp("other data", true);
  EXPECT_FALSE(verify_parsed_bundle(make_bundle(placed_, wrong), public_pem_, o).ok);
  EXPECT_FALSE(verify_parsed_bundle(make_bundle(placed_, wrong), public_pem_).ok);
}

}  // namespace
}  // namespace songda::evidence
