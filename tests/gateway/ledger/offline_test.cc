// Offline parts of the ledger: the compact in-memory tree agrees with the
// reference tree, the certificate is complete and escaped, and the verify /
// keygen commands exit 0 / 1 / 2 as documented.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "gateway/core/crypto.h"
#include "gateway/evidence/bundle.h"
#include "gateway/evidence/rules.h"
#include "gateway/ledger/certificate.h"
#include "gateway/ledger/compact_tree.h"
#include "gateway/ledger/evidence_makers.h"
#include "gateway/ledger/verify_cli.h"
#include "tests/gateway/evidence/support.h"

namespace songda::ledger {
namespace {

using Json = nlohmann::json;
namespace fs = std::filesystem;
constexpr std::int64_t kNow = 1795827600000;  // 2026-11-28T01:00:00Z = 09:00 Beijing

TEST(CompactTree, AgreesWithTheReferenceTreeOnRootsAndProofs) {
  evidence::InMemoryTree ref;
  CompactTree tree;
  for (int n = 1; n <= 70; ++n) {
    const std::string leaf = evidence::leaf_hash("leaf " + std::to_string(n));
    ref.append_leaf_hash(leaf);
    ASSERT_TRUE(tree.append_leaf_hash(leaf));
    ASSERT_EQ(tree.size(), static_cast<std::uint64_t>(n));
    EXPECT_EQ(*evidence::root(tree, static_cast<std::uint64_t>(n)),
              *evidence::root(ref, static_cast<std::uint64_t>(n)));
    for (std::uint64_t m = 1; m <= static_cast<std::uint64_t>(n); m += 7) {
      EXPECT_EQ(*evidence::consistency_proof(tree, m, static_cast<std::uint64_t>(n)),
                *evidence::consistency_proof(ref, m, static_cast<std::uint64_t>(n)));
      EXPECT_EQ(*evidence::inclusion_proof(tree, m - 1, static_cast<std::uint64_t>(n)),
                *evidence::inclusion_proof(ref, m - 1, static_cast<std::uint64_t>(n)));
    }
  }
  EXPECT_FALSE(tree.append_leaf_hash("short"));
  EXPECT_FALSE(tree.subtree_hash(7, 0).ok());  // 128 leaves needed
}

// A genuine bundle for recipient P-001 made from the makers' records, proven in memory.
struct Fixture {
  evidence::KeyPairPem pem;
  Json bundle;
  CertificateFacts facts;
};

// SMS delivered (with its receipt), in-app not yet; `basis` is the consent basis of both.
Fixture make_fixture(const std::string& recipient_name = "张三", const std::string& basis = "provided") {
  Fixture f;
  f.pem = *evidence::generate_key_pair();
  auto key = *evidence::load_private_key_pem(f.pem.private_pem);
  const EvidenceContext ctx{"salt-salt-salt-salt"};

  CaseEvent e;
  e.event_id = "EVT-1";
  e.type = "summons.issued";
  e.court_id = "HN-SQ-ZY";
  e.court_name = "商丘市中级人民法院";
  e.case_number = "(2026)豫14民初123号";
  e.document = Document{"DOC-1", "传票", sha256_hex("the document"), "", 2};
  Recipient r{"P-001", "party", recipient_name, Contacts{"+8613812345678", "", "", "u1"},
              Consent{basis, {"summons.issued"}, "C-1", ""}};
  e.recipients.push_back(r);
  e.digest = sha256_hex("e");
  Plan plan;
  for (const char* ch : {"inapp", "sms"}) {
    Delivery d;
    d.id = delivery_id(e.event_id, r.id, ch);
    d.event_id = e.event_id;
    d.event_type = e.type;
    d.court_id = e.court_id;
    d.court_name = e.court_name;
    d.case_number = e.case_number;
    d.recipient_id = r.id;
    d.recipient_role = r.role;
    d.recipient_name = r.name;
    d.channel = ch;
    d.address = std::string(ch) == "sms" ? r.contacts.mobile : r.contacts.app_user;
    d.consent_basis = basis;
    d.title = "传票 <b>";
    d.text = "text";
    d.document = e.document;
    plan.deliveries.push_back(d);
  }
  std::vector<evidence::EvidenceRecord> records = accepted_records(e, plan, kNow, ctx);
  for (auto& x :
       outcome_records(plan.deliveries[1], {SendOutcome::Kind::kAccepted, "aliyun", "BIZ-9", "OK", "OK", "raw", 1},
                       "SENT", kNow + 1000, ctx)) {
    records.push_back(x);
  }
  records.push_back(receipt_record(plan.deliveries[1], "aliyun",
                                   {"aliyun:BIZ-9:x", "sms", true, "DELIVRD", kNow + 30000, "<report/>"},
                                   kNow + 31000));

  evidence::InMemoryTree tree;
  tree.append_leaf("some earlier record");
  std::vector<std::pair<evidence::EvidenceRecord, std::uint64_t>> indexed;
  for (auto& rec : records) {
    indexed.emplace_back(rec, tree.size());
    tree.append_leaf_hash(*rec.leaf_hash());
  }
  tree.append_leaf("a later record");
  auto cp =
      *evidence::sign_checkpoint("songda/test", tree.size(), *evidence::root(tree, tree.size()), kNow + 40000, key);
  evidence::BundleInput in;
  in.delivery = {plan.deliveries[1].id, e.event_id, r.id, "sms", e.court_id, e.case_number};
  in.records = *evidence::prove_records(tree, indexed, tree.size());
  in.checkpoint = cp;
  in.document_sha256 = e.document->sha256;
  in.attested_at_ms = kNow + 41000;
  f.bundle = *evidence::build_bundle(in, key);

  f.facts.court_id = e.court_id;
  f.facts.court_name = e.court_name;
  f.facts.case_number = e.case_number;
  f.facts.event_id = e.event_id;
  f.facts.event_type = e.type;
  f.facts.title = "传票 <b>";
  f.facts.recipient_id = r.id;
  f.facts.recipient_name = r.name;
  f.facts.recipient_role = r.role;
  f.facts.document = e.document;
  for (const auto& d : plan.deliveries) {
    f.facts.channels.push_back({d.id, d.channel, "DELIVERED", "+86138****5678", "provided", "aliyun", "BIZ-9", {}});
  }
  return f;
}

void write(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary);
  out << text;
}

// An address obtained by the court is served on a reply or read, not on arrival: a certificate for an SMS that
// arrived but was not read says so, where before (rules cn-olr-2021.1) it said there was no arrival evidence.
TEST(Certificate, APendingServiceOnAnObtainedAddressSaysArrivalAloneDoesNotServe) {
  const Fixture f = make_fixture("张三", "obtained");
  const auto report = evidence::verify_parsed_bundle(f.bundle, f.pem.public_pem);
  ASSERT_TRUE(report.ok) << report.text();
  ASSERT_EQ(f.bundle["service"]["status"], "PENDING");
  const std::string html = render_certificate_html(f.bundle, f.facts);
  for (const char* must : {"送达中（尚未完成）", "第三十一条第二款", "送达信息到达本身不构成送达",
                           "尚无回复或阅知的证据", evidence::kRulePendingObtained, evidence::kRulesVersion}) {
    EXPECT_NE(html.find(must), std::string::npos) << "missing: " << must;
  }
  EXPECT_EQ(html.find("尚无到达"), std::string::npos) << "the SMS did arrive";
  // Before, the channel table called the arrived SMS 已送达 (served) under a verdict of not yet served.
  EXPECT_NE(html.find("已到达"), std::string::npos);
  EXPECT_EQ(html.find("已送达"), std::string::npos) << "served, next to a verdict that it is not";
}

TEST(Certificate, ShowsEverythingAClerkNeedsAndEscapes) {
  const Fixture f = make_fixture("张三<script>alert(1)</script>");
  ASSERT_EQ(evidence::verify_parsed_bundle(f.bundle, f.pem.public_pem).ok, true);
  const std::string html = render_certificate_html(f.bundle, f.facts);
  for (const char* must : {"<!DOCTYPE html>",
                           "电子送达凭证",
                           "商丘市中级人民法院",
                           "(2026)豫14民初123号",
                           "传票",
                           "当事人",
                           "+86138****5678",
                           "受送达人主动提供的地址",
                           "C-1",
                           "到达受送达人系统",
                           "2026-11-28 09:00:30（北京时间 UTC+8）",
                           "已送达",
                           "第三十一条第一款",
                           evidence::kRulesVersion,
                           "如何核验",
                           "songda verify bundle.json --pubkey court.pub",
                           "size: A4",
                           "SHA-256",
                           "完整性声明",
                           "2026-11-28 09:00:41（北京时间 UTC+8）"}) {
    EXPECT_NE(html.find(must), std::string::npos) << "missing: " << must;
  }
  EXPECT_EQ(html.find("<script>"), std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
  EXPECT_EQ(html.find("传票 <b>"), std::string::npos);
  EXPECT_NE(html.find(f.bundle["checkpoint"]["root_hash"].get<std::string>()), std::string::npos);
  for (const auto& r : f.bundle["records"]) {
    EXPECT_NE(html.find(r["evidence_id"].get<std::string>()), std::string::npos);
  }
  const std::string pending = render_pending_html(f.facts, 3);
  EXPECT_NE(pending.find("http-equiv=\"refresh\" content=\"3\""), std::string::npos);
  EXPECT_EQ(pending.find("<script>"), std::string::npos);
}

TEST(Certificate, Helpers) {
  EXPECT_EQ(html_escape("<a href=\"x\">'&'</a>"), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
  EXPECT_EQ(beijing_time(0), "1970-01-01 08:00:00（北京时间 UTC+8）");
  EXPECT_EQ(beijing_time(1500), "1970-01-01 08:00:01.500（北京时间 UTC+8）");
  EXPECT_EQ(channel_name_zh("sms"), "短信");
  EXPECT_EQ(event_type_zh("judgment.issued"), "裁判文书");
  EXPECT_EQ(event_type_zh("x.y"), "x.y");
}

class Cli : public ::testing::Test {
 protected:
  evidence::testing::TempDir dir_;
  fs::path path(const std::string& name) { return dir_.path() / name; }
  int verify(const std::vector<std::string>& args, std::string* out = nullptr) {
    std::ostringstream s;
    const int rc = run_verify(args, s);
    if (out) *out = s.str();
    return rc;
  }
};

TEST_F(Cli, VerifyPassesAGenuineBundleAndFailsATamperedOne) {
  const Fixture f = make_fixture();
  write(path("bundle.json"), f.bundle.dump(2));
  write(path("court.pub"), f.pem.public_pem);
  write(path("doc.pdf"), "the document");
  write(path("other.pdf"), "another document");
  std::string out;
  EXPECT_EQ(verify({path("bundle.json"), "--pubkey", path("court.pub"), "--document", path("doc.pdf")}, &out), 0)
      << out;
  EXPECT_NE(out.find("VERIFIED 核验通过"), std::string::npos);
  EXPECT_NE(out.find("送达日期 2026-11-28 09:00:30"), std::string::npos) << out;
  EXPECT_EQ(verify({path("bundle.json"), "--pubkey", path("court.pub"), "--document", path("other.pdf")}, &out), 1);
  EXPECT_NE(out.find("文书不一致"), std::string::npos) << out;

  Json tampered = f.bundle;
  tampered["records"][3]["event_time"] = tampered["records"][3]["event_time"].get<std::int64_t>() - 86400000;
  write(path("tampered.json"), tampered.dump(2));
  EXPECT_EQ(verify({path("tampered.json"), "--pubkey", path("court.pub")}, &out), 1);
  EXPECT_NE(out.find("[FAIL]"), std::string::npos);
  EXPECT_NE(out.find("NOT VERIFIED"), std::string::npos);

  std::string bytes = f.bundle.dump();  // one byte of one record changed: BIZ-9 -> BIZ-8
  const auto at = bytes.find("BIZ-9");
  ASSERT_NE(at, std::string::npos);
  bytes[at + 4] = '8';
  write(path("bytes.json"), bytes);
  EXPECT_EQ(verify({path("bytes.json"), "--pubkey", path("court.pub")}, &out), 1) << out;

  // A record left out (the SMS receipt) with the conclusion rewritten to match what is left: only the attestation
  // catches it. Without attestation (the v1 form) the same cut passes, and the result line says what was not checked.
  Json cut = f.bundle;
  for (std::size_t i = 0; i < cut["records"].size(); ++i) {
    if (cut["records"][i]["type"] == "DELIVERED" && cut["records"][i]["channel"] == "sms") {
      cut["records"].erase(i);
      cut["leaves"].erase(i);
      break;
    }
  }
  ASSERT_EQ(cut["records"].size() + 1, f.bundle["records"].size());
  std::vector<evidence::EvidenceRecord> left;
  for (const auto& r : cut["records"]) left.push_back(*evidence::record_from_json(r));
  cut["service"] = evidence::to_json(evidence::decide_service(*evidence::deliveries_from_records(left)));
  ASSERT_NE(cut["service"], f.bundle["service"]);
  write(path("cut.json"), cut.dump(2));
  EXPECT_EQ(verify({path("cut.json"), "--pubkey", path("court.pub")}, &out), 1) << out;
  EXPECT_NE(out.find("[FAIL] completeness 完整性: the bundle was changed after the log's key signed it"),
            std::string::npos)
      << out;
  cut.erase("attestation");
  cut["version"] = evidence::kBundleVersionV1;
  write(path("cut-v1.json"), cut.dump(2));
  EXPECT_EQ(verify({path("cut-v1.json"), "--pubkey", path("court.pub")}, &out), 0) << out;
  EXPECT_NE(out.find("(1 not checked 未核验)"), std::string::npos) << out;

  const auto other = *evidence::generate_key_pair();
  write(path("other.pub"), other.public_pem);
  EXPECT_EQ(verify({path("bundle.json"), "--pubkey", path("other.pub")}, &out), 1);
  EXPECT_NE(out.find("key id"), std::string::npos);
  EXPECT_EQ(verify({path("bundle.json"), "--pubkey", path("court.pub"), "--json"}, &out), 0);
  EXPECT_TRUE(Json::parse(out)["ok"].get<bool>());
}

// The bundle is anyone's file. Before, a delivery_id that was not a string (or a null case_number) made
// `songda verify` abort (an uncaught nlohmann type_error) before it printed any check.
TEST_F(Cli, VerifyReportsABundleWithFieldsOfTheWrongTypeInsteadOfAborting) {
  const Fixture f = make_fixture();
  write(path("court.pub"), f.pem.public_pem);
  Json odd = f.bundle;
  odd["delivery"]["delivery_id"] = 5;
  odd["delivery"]["case_number"] = nullptr;
  odd["service"]["status"] = Json::array();
  write(path("odd.json"), odd.dump());
  std::string out;
  EXPECT_EQ(verify({path("odd.json"), "--pubkey", path("court.pub")}, &out), 1) << out;
  EXPECT_NE(out.find("delivery 送达: ? · case 案号 ?"), std::string::npos) << out;
  EXPECT_NE(out.find("NOT VERIFIED"), std::string::npos) << out;
}

TEST_F(Cli, VerifyUsageAndUnreadableFilesExit2) {
  write(path("court.pub"), "x");
  EXPECT_EQ(verify({}), 2);
  EXPECT_EQ(verify({path("bundle.json")}), 2);                                  // no --pubkey
  EXPECT_EQ(verify({path("missing.json"), "--pubkey", path("court.pub")}), 2);  // unreadable
  EXPECT_EQ(verify({path("court.pub"), "--pubkey", path("nope.pub")}), 2);
  EXPECT_EQ(verify({path("court.pub"), "--pubkey", path("court.pub"), "--since", "x"}), 2);  // half a pair
  EXPECT_EQ(verify({path("court.pub"), "--pubkey", path("court.pub"), "--bogus"}), 2);
  EXPECT_EQ(verify({path("court.pub"), "--pubkey"}), 2);
  std::string out;
  EXPECT_EQ(verify({"--help"}, &out), 0);
  EXPECT_NE(out.find("usage: songda verify"), std::string::npos);
  // Readable but not a bundle: a failed check, not a usage error.
  EXPECT_EQ(verify({path("court.pub"), "--pubkey", path("court.pub")}), 1);
}

TEST_F(Cli, KeygenWritesAPairOnceWithAPrivateMode) {
  std::ostringstream out;
  EXPECT_EQ(run_keygen({"--out", path("keys")}, out), 0) << out.str();
  struct stat st {};
  ASSERT_EQ(stat(path("keys/court.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto priv = evidence::load_private_key_file(path("keys/court.key"));
  auto pub = evidence::load_public_key_file(path("keys/court.pub"));
  ASSERT_TRUE(priv.ok() && pub.ok());
  EXPECT_EQ(priv->key_id(), pub->key_id());
  EXPECT_NE(out.str().find(pub->key_id()), std::string::npos);
  std::ostringstream again;
  EXPECT_EQ(run_keygen({"--out", path("keys")}, again), 1);  // never overwrites
  EXPECT_EQ(*evidence::load_public_key_file(path("keys/court.pub"))->public_pem(), *pub->public_pem());
  std::ostringstream usage;
  EXPECT_EQ(run_keygen({}, usage), 2);
  EXPECT_EQ(run_keygen({"--out"}, usage), 2);
}

TEST_F(Cli, LedgerCheckUsage) {
  std::ostringstream out;
  EXPECT_EQ(run_ledger_check({"--nope"}, out), 2);
  EXPECT_EQ(run_ledger_check({"--redis", "http://x"}, out), 2);
  // A URL it cannot use is named without its password (a TLS URL, a typo in the port).
  for (const std::string url :
       {"rediss://:hunter2@redis.court.example:6380/0", "redis://app:hunter2@h:63x9/0", "redis://:hunter2@h:6379/x"}) {
    std::ostringstream refused;
    EXPECT_EQ(run_ledger_check({"--redis", url}, refused), 2);
    EXPECT_EQ(refused.str().find("hunter2"), std::string::npos) << refused.str();
    EXPECT_NE(refused.str().find("***@"), std::string::npos) << refused.str();
  }
}

}  // namespace
}  // namespace songda::ledger
