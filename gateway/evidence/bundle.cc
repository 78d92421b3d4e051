#include "gateway/evidence/bundle.h"

#include <algorithm>
#include <set>

#include "gateway/core/crypto.h"
#include "gateway/core/event.h"
#include "gateway/core/json_parse.h"
#include "gateway/core/text.h"
#include "gateway/evidence/jcs.h"
#include "gateway/evidence/json_fields.h"
#include "gateway/evidence/rules.h"

namespace songda::evidence {
namespace {

using Json = nlohmann::json;

Json to_json(const DeliveryRef& d) {
  return {{"delivery_id", d.delivery_id}, {"event_id", d.event_id}, {"recipient_id", d.recipient_id},
          {"channel", d.channel},         {"court_id", d.court_id}, {"case_number", d.case_number}};
}

Result<DeliveryRef> delivery_from_json(const Json& j) {
  const detail::FieldReader f(j, "delivery");
  if (auto s = f.expect_members({"delivery_id", "event_id", "recipient_id", "channel", "court_id", "case_number"});
      !s) {
    return s.error();
  }
  DeliveryRef d;
  for (auto [key, out] : {std::pair{"delivery_id", &d.delivery_id}, std::pair{"event_id", &d.event_id},
                          std::pair{"recipient_id", &d.recipient_id}, std::pair{"channel", &d.channel},
                          std::pair{"court_id", &d.court_id}, std::pair{"case_number", &d.case_number}}) {
    auto v = f.nonempty_string(key);
    if (!v) return v.error();
    *out = std::move(*v);
  }
  return d;
}

Json hex_array(const std::vector<std::string>& raw) {
  Json out = Json::array();
  for (const auto& h : raw) out.push_back(to_hex(h));
  return out;
}

struct Leaf {
  std::uint64_t index = 0;
  std::string leaf_hash;                     // raw
  std::vector<std::string> inclusion_proof;  // raw
};

Result<Leaf> leaf_from_json(const Json& j, std::size_t i) {
  const detail::FieldReader f(j, "leaves[" + std::to_string(i) + "]");
  if (auto s = f.expect_members({"index", "leaf_hash", "inclusion_proof"}); !s) return s.error();
  Leaf leaf;
  auto index = f.uint("index");
  if (!index) return index.error();
  auto hash = f.hex_bytes("leaf_hash", kHashSize);
  if (!hash) return hash.error();
  auto proof = f.string_array("inclusion_proof");
  if (!proof) return proof.error();
  leaf.index = *index;
  leaf.leaf_hash = std::move(*hash);
  for (const auto& h : *proof) {
    auto raw = detail::strict_hex(h, kHashSize);
    if (!raw) return f.error("inclusion_proof holds a value that is not 64 lowercase hex digits");
    leaf.inclusion_proof.push_back(std::move(*raw));
  }
  return leaf;
}

std::string short_hex(std::string_view raw) { return to_hex(raw).substr(0, 16) + "…"; }

struct Attestation {
  std::string key_id;
  std::int64_t attested_at_ms = 0;
  std::string signature;  // raw
};

Result<Attestation> attestation_from_json(const Json& j) {
  const detail::FieldReader f(j, "attestation");
  if (auto s = f.expect_members({"key_id", "attested_at", "signature"}); !s) return s.error();
  Attestation a;
  auto key_id = f.nonempty_string("key_id");
  if (!key_id) return key_id.error();
  auto at = f.int64("attested_at");
  if (!at) return at.error();
  auto signature = f.base64_bytes("signature");
  if (!signature) return signature.error();
  a.key_id = std::move(*key_id);
  a.attested_at_ms = *at;
  a.signature = std::move(*signature);
  return a;
}

// The parts of a bundle once its shape is known good.
struct Parsed {
  std::string version;
  std::optional<Attestation> attestation;  // v2
  DeliveryRef delivery;
  std::vector<const Json*> record_json;  // into the bundle being verified
  std::vector<EvidenceRecord> records;
  std::vector<Leaf> leaves;
  Checkpoint checkpoint;
  std::string key_id;
  const Json* service = nullptr;               // into the bundle being verified
  std::optional<std::string> document_sha256;  // hex
};

// Runs the checks one by one; each appends to the report.
class Verifier {
 public:
  Verifier(std::string_view public_key_pem, const VerifyOptions& options)
      : public_key_pem_(public_key_pem), options_(options) {}

  VerifyReport run(const Json& bundle) {
    auto parsed = parse(bundle);
    add("bundle format 格式", parsed.ok(),
        parsed.ok() ? "version " + parsed->version + ", " + std::to_string(parsed->records.size()) +
                          " records, all members well-formed"
                    : parsed.error().message);
    if (parsed.ok()) {
      p_ = std::move(*parsed);
      check_key_and_signature();
      check_attestation(bundle);
      check_records();
      check_delivery();
      check_document();
      check_tsa();
      check_consistency();
      check_service();
    }
    report_.ok = !report_.checks.empty() &&
                 std::all_of(report_.checks.begin(), report_.checks.end(), [](const Check& c) { return c.ok; });
    return std::move(report_);
  }

 private:
  void add(std::string name, bool ok, std::string detail) {
    report_.checks.push_back(Check{std::move(name), ok, std::move(detail)});
  }

  static Result<Parsed> parse(const Json& j) {
    const detail::FieldReader f(j, "bundle");
    auto version = f.string("version");
    if (!version) return version.error();
    const bool v1 = *version == kBundleVersionV1;
    if (!v1 && *version != kBundleVersion) {
      return f.error("unsupported version \"" + *version + "\"; this verifier reads " + kBundleVersionV1 + " and " +
                     kBundleVersion);
    }
    if (auto s = v1 ? f.expect_members({"version", "delivery", "records", "leaves", "checkpoint", "key_id", "service"},
                                       {"document_sha256"})
                    : f.expect_members({"version", "delivery", "records", "leaves", "checkpoint", "key_id", "service",
                                        "attestation"},
                                       {"document_sha256"});
        !s) {
      return s.error();
    }
    Parsed p;
    p.version = *version;
    if (!v1) {
      auto a = attestation_from_json(j.at("attestation"));
      if (!a) return a.error();
      p.attestation = std::move(*a);
    }
    auto delivery = delivery_from_json(j.at("delivery"));
    if (!delivery) return delivery.error();
    p.delivery = std::move(*delivery);
    if (auto s = parse_records(j, p); !s) return s.error();
    auto checkpoint = checkpoint_from_json(j.at("checkpoint"));
    if (!checkpoint) return checkpoint.error();
    p.checkpoint = std::move(*checkpoint);
    auto key_id = f.string("key_id");
    if (!key_id) return key_id.error();
    p.key_id = std::move(*key_id);
    p.service = &j.at("service");
    if (auto s = service_decision_from_json(*p.service); !s) return s.error();
    if (f.has("document_sha256")) {
      auto doc = f.hex_bytes("document_sha256", kHashSize);
      if (!doc) return doc.error();
      p.document_sha256 = to_hex(*doc);
    }
    return p;
  }

  static Status parse_records(const Json& j, Parsed& p) {
    const Json& records = j.at("records");
    const Json& leaves = j.at("leaves");
    if (!records.is_array() || !leaves.is_array() || records.size() != leaves.size() || records.empty()) {
      return Error::permanent("schema", "bundle: records and leaves must be non-empty arrays of equal length");
    }
    for (std::size_t i = 0; i < records.size(); ++i) {
      auto r = record_from_json(records[i]);
      if (!r) return r.error();
      auto leaf = leaf_from_json(leaves[i], i);
      if (!leaf) return leaf.error();
      p.record_json.push_back(&records[i]);
      p.records.push_back(std::move(*r));
      p.leaves.push_back(std::move(*leaf));
    }
    return ok_status();
  }

  void check_key_and_signature() {
    auto key = load_public_key_pem(public_key_pem_);
    if (!key) {
      add("public key 公钥", false, key.error().message);
      return;
    }
    const bool same = p_.key_id == p_.checkpoint.key_id && p_.key_id == key->key_id();
    add("key id 密钥标识", same,
        same ? "bundle, checkpoint and the given public key all name key " + p_.key_id
             : "bundle names key " + p_.key_id + ", checkpoint " + p_.checkpoint.key_id + ", the given key is " +
                   key->key_id() + "; hint: use the log's published public key");
    auto signature = verify_checkpoint(p_.checkpoint, *key);
    add("checkpoint signature 签名", signature.ok(),
        signature.ok() ? "Ed25519 signature over \"" + p_.checkpoint.origin + "\" tree of " +
                             std::to_string(p_.checkpoint.tree_size) + " leaves at " +
                             rfc3339_utc(p_.checkpoint.timestamp_ms) + " is valid 签名有效"
                       : "signature invalid 签名无效: " + signature.error().message);
    key_ = std::move(*key);
  }

  // Whether the log's key vouches that no record was left out and the conclusion is the records'.
  void check_attestation(const Json& bundle) {
    const std::string name = "completeness 完整性";
    if (!p_.attestation) {
      report_.checks.push_back(Check{name + "（未核验 not checked）", true,
                                     "a " + std::string(kBundleVersionV1) +
                                         " bundle is not signed as a whole: each record below can be genuine, but "
                                         "nothing shows that none of the recipient's records was left out. Hint: ask "
                                         "the court for a current bundle (" +
                                         kBundleVersion + ")",
                                     false});
      return;
    }
    const Attestation& a = *p_.attestation;
    if (!key_) return add(name, false, "no usable public key to check the attestation");
    if (a.key_id != key_->key_id()) {
      return add(name, false, "the attestation names key " + a.key_id + ", the given key is " + key_->key_id());
    }
    auto message = attestation_message(bundle);
    const Status signature = message ? key_->verify(*message, a.signature) : Status(message.error());
    const std::size_t n = p_.records.size();
    add(name, signature.ok(),
        signature.ok()
            ? "the log's key attests that these " + std::to_string(n) + " records are all the log held on recipient " +
                  p_.delivery.recipient_id + " for event " + p_.delivery.event_id + " on " +
                  rfc3339_utc(a.attested_at_ms) + ", and that the conclusion is theirs 记录完整、结论未被改写"
            : "the bundle was changed after the log's key signed it 凭证签名后被改动: a record was left out, added "
              "or changed, or the conclusion rewritten (" +
                  (message ? signature.error().message : message.error().message) + ")");
  }

  void check_records() {
    std::set<std::string> ids;
    std::set<std::uint64_t> indexes;
    for (std::size_t i = 0; i < p_.records.size(); ++i) {
      const EvidenceRecord& r = p_.records[i];
      const Leaf& leaf = p_.leaves[i];
      const std::string name =
          "record " + std::to_string(i) + " " + r.evidence_id + " " + std::string(to_string(r.type));
      if (!ids.insert(r.evidence_id).second || !indexes.insert(leaf.index).second) {
        add(name + " 记录", false, "evidence id or leaf index appears twice in the bundle");
      }
      check_leaf(name, *p_.record_json[i], leaf);
      auto proof = verify_inclusion(leaf.leaf_hash, leaf.index, p_.checkpoint.tree_size, leaf.inclusion_proof,
                                    p_.checkpoint.root_hash);
      add(name + " inclusion 包含证明", proof.ok(),
          proof.ok() ? "leaf #" + std::to_string(leaf.index) + " is in the signed log of " +
                           std::to_string(p_.checkpoint.tree_size) + " leaves 已记入日志"
                     : "inclusion proof fails 包含证明不成立: " + proof.error().message);
    }
  }

  void check_leaf(const std::string& name, const Json& record_json, const Leaf& leaf) {
    auto hash = record_json_leaf_hash(record_json);
    if (!hash) {
      add(name + " leaf hash 叶哈希", false, hash.error().message);
      return;
    }
    const bool same = *hash == leaf.leaf_hash;
    add(name + " leaf hash 叶哈希", same,
        same ? "canonical (RFC 8785) bytes hash to " + short_hex(*hash)
             : "record content changed 记录被改动: its bytes hash to " + short_hex(*hash) + ", the bundle says " +
                   short_hex(leaf.leaf_hash));
  }

  void check_delivery() {
    const DeliveryRef& d = p_.delivery;
    std::string problem;
    if (songda::delivery_id(d.event_id, d.recipient_id, d.channel) != d.delivery_id) {
      problem = "delivery id " + d.delivery_id + " is not the id of recipient " + d.recipient_id + " on " + d.channel;
    }
    bool named = false;
    for (const EvidenceRecord& r : p_.records) {
      if (!problem.empty()) break;
      named = named || r.delivery_id == d.delivery_id;
      if (r.event_id != d.event_id || r.court_id != d.court_id || r.case_number != d.case_number) {
        problem = "record " + r.evidence_id + " belongs to another event, court or case";
      } else if (!r.delivery_id.empty() &&
                 r.delivery_id != songda::delivery_id(d.event_id, d.recipient_id, r.channel)) {
        problem =
            "record " + r.evidence_id + " is for delivery " + r.delivery_id + ", not to recipient " + d.recipient_id;
      }
    }
    if (problem.empty() && !named) problem = "no record is about delivery " + d.delivery_id;
    add("delivery 送达对象", problem.empty(),
        problem.empty() ? "all records are about recipient " + d.recipient_id + " of event " + d.event_id + ", case " +
                              d.case_number + " (" + d.court_id + ")"
                        : problem);
  }

  void check_document() {
    if (!p_.document_sha256 && !options_.document_bytes) return;
    if (!p_.document_sha256) {
      add("document 文书 SHA-256", false, "a document was given but the bundle names no document hash");
      return;
    }
    const std::string& claimed = *p_.document_sha256;
    bool attested = false;
    for (const EvidenceRecord& r : p_.records) {
      if (r.type != EvidenceType::kSubmissionAccepted) continue;
      const auto it = r.details.find("document_sha256");
      if (it == r.details.end()) continue;
      if (*it != claimed) {
        add("document 文书 SHA-256", false, "record " + r.evidence_id + " attests another document hash");
        return;
      }
      attested = true;
    }
    if (!attested) {
      add("document 文书 SHA-256", false, "no SUBMISSION_ACCEPTED record in the log attests document " + claimed);
      return;
    }
    if (!options_.document_bytes) {
      add("document 文书 SHA-256", true, "the log attests document SHA-256 " + claimed + " (no file given to compare)");
      return;
    }
    const std::string actual = sha256_hex(*options_.document_bytes);
    add("document 文书 SHA-256", actual == claimed,
        actual == claimed
            ? "the given file is the served document 文书一致 (SHA-256 " + claimed + ")"
            : "the given file differs from the served document 文书不一致: SHA-256 " + actual + ", served " + claimed);
  }

  void check_tsa() {
    if (!p_.checkpoint.tsa_token) return;
    const std::string body = signed_body(p_.checkpoint);
    if (options_.tsa_ca_pem) {
      auto t = verify_tsa_token(*p_.checkpoint.tsa_token, body, *options_.tsa_ca_pem);
      add("TSA timestamp 可信时间戳", t.ok(),
          t.ok() ? "RFC 3161 token from the trusted TSA stamps this checkpoint at " + rfc3339_utc(t->gen_time_ms)
                 : t.error().message);
      return;
    }
    // Without the TSA's certificate anyone could have made the token, and its time could say anything: it is
    // not shown as a trusted time. A token that is not even for this checkpoint still fails.
    auto t = inspect_tsa_token(*p_.checkpoint.tsa_token, body);
    if (!t.ok()) return add("TSA timestamp 可信时间戳", false, t.error().message);
    report_.checks.push_back(Check{"TSA timestamp 时间戳（未核验 not checked）", true,
                                   "an RFC 3161 token for this checkpoint is attached; its TSA signature was not "
                                   "checked, so the time it names is not evidence here. Hint: pass --tsa-ca with "
                                   "the certificate of the court's time-stamping authority",
                                   false});
  }

  void check_consistency() {
    if (!options_.earlier) return;
    const std::string name = "consistency 一致性证明";
    const Json earlier_json = parse_json(options_.earlier->checkpoint_json);
    auto earlier = checkpoint_from_json(earlier_json);
    if (!earlier) {
      add(name, false, "earlier checkpoint: " + earlier.error().message);
      return;
    }
    if (!key_) {
      add(name, false, "no usable public key to check the earlier checkpoint");
      return;
    }
    if (auto s = verify_checkpoint(*earlier, *key_); !s) {
      add(name, false, "earlier checkpoint: " + s.error().message);
      return;
    }
    std::vector<std::string> proof;
    for (const auto& h : options_.earlier->consistency_proof_hex) {
      auto raw = detail::strict_hex(h, kHashSize);
      if (!raw) {
        add(name, false, "consistency proof holds a value that is not 64 lowercase hex digits");
        return;
      }
      proof.push_back(std::move(*raw));
    }
    const bool same_log = earlier->origin == p_.checkpoint.origin;
    auto s = verify_consistency(earlier->tree_size, p_.checkpoint.tree_size, proof, earlier->root_hash,
                                p_.checkpoint.root_hash);
    add(name, same_log && s.ok(),
        !same_log ? "the earlier checkpoint is of another log (" + earlier->origin + ")"
        : s.ok()  ? "the log of " + std::to_string(p_.checkpoint.tree_size) + " leaves extends the earlier one of " +
                       std::to_string(earlier->tree_size) + " leaves; nothing was rewritten 未被篡改"
                 : "the log was rewritten or the proof is wrong 日志不一致: " + s.error().message);
  }

  void check_service() {
    auto deliveries = deliveries_from_records(p_.records);
    if (!deliveries) {
      add("service date 送达日期", false, deliveries.error().message);
      return;
    }
    const Json& claimed = *p_.service;
    // A bundle decided with an earlier rules version (printed before an upgrade) is recomputed with that version.
    const auto* claimed_version =
        claimed.contains("rule_version") ? claimed["rule_version"].get_ptr<const std::string*>() : nullptr;
    const std::string version =
        claimed_version != nullptr && known_rules_version(*claimed_version) ? *claimed_version : kRulesVersion;
    const ServiceDecision recomputed = decide_service(*deliveries, version);
    const Json expected = evidence::to_json(recomputed);
    const bool same = expected == claimed;
    std::string detail;
    if (same) {
      detail =
          std::string(to_string(recomputed.status)) +
          (recomputed.service_time_ms ? " at " + rfc3339_utc(*recomputed.service_time_ms) + " via " + recomputed.channel
                                      : std::string()) +
          " — " + recomputed.rule + "; recomputed with rules " + version + " 送达日期复核一致";
    } else if (claimed_version == nullptr || *claimed_version != version) {
      detail = "the bundle was decided with rules " + (claimed_version != nullptr ? *claimed_version : "?") +
               ", this verifier knows " + kRulesVersion2021_1 + " and " + kRulesVersion +
               "; hint: verify with a verifier of that rules version";
    } else {
      detail = "the claimed service differs from the records 送达结论与记录不符: records give " +
               std::string(to_string(recomputed.status)) +
               (recomputed.service_time_ms ? " at " + rfc3339_utc(*recomputed.service_time_ms) : std::string()) + " (" +
               recomputed.rule + "), the bundle claims " + claimed.dump(-1, ' ', false, Json::error_handler_t::replace);
    }
    add("service date 送达日期", same, detail);
  }

  std::string_view public_key_pem_;
  const VerifyOptions& options_;
  VerifyReport report_;
  Parsed p_;
  std::optional<VerifyKey> key_;
};

}  // namespace

Result<std::vector<ProvenRecord>> prove_records(const NodeSource& source,
                                                const std::vector<std::pair<EvidenceRecord, std::uint64_t>>& records,
                                                std::uint64_t tree_size) {
  std::vector<NodeId> ids;
  for (const auto& [record, index] : records) {
    for (const NodeId& id : needed_nodes_for_inclusion(index, tree_size)) ids.push_back(id);
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  if (auto size = source.tree_size(); !size) {
    return size.error();
  } else if (tree_size > *size) {
    return Error::permanent("out_of_range", "tree size " + std::to_string(tree_size) + " is beyond the log");
  }
  auto nodes = source.subtree_hashes(ids);
  if (!nodes) return nodes.error();
  std::vector<ProvenRecord> out;
  out.reserve(records.size());
  for (const auto& [record, index] : records) {
    auto proof = inclusion_proof_from(*nodes, index, tree_size);
    if (!proof) return proof.error();
    out.push_back(ProvenRecord{record, index, std::move(*proof)});
  }
  return out;
}

namespace {

Result<nlohmann::json> assemble(const BundleInput& in, const SigningKey& key) {
  Json records = Json::array();
  Json leaves = Json::array();
  std::vector<EvidenceRecord> plain;
  for (const ProvenRecord& p : in.records) {
    if (auto s = validate_record(p.record); !s) return s.error();
    auto hash = p.record.leaf_hash();
    if (!hash) return hash.error();
    records.push_back(to_json(p.record));
    leaves.push_back(
        {{"index", p.index}, {"leaf_hash", to_hex(*hash)}, {"inclusion_proof", hex_array(p.inclusion_proof)}});
    plain.push_back(p.record);
  }
  auto deliveries = deliveries_from_records(plain);
  if (!deliveries) return deliveries.error();
  Json bundle = {{"version", kBundleVersion},
                 {"delivery", to_json(in.delivery)},
                 {"records", std::move(records)},
                 {"leaves", std::move(leaves)},
                 {"checkpoint", to_json(in.checkpoint)},
                 {"key_id", in.checkpoint.key_id},
                 {"service", to_json(decide_service(*deliveries))}};
  if (in.document_sha256) bundle["document_sha256"] = *in.document_sha256;
  bundle["attestation"] = {{"key_id", key.key_id()}, {"attested_at", in.attested_at_ms}};
  auto message = attestation_message(bundle);
  if (!message) return message.error();
  auto signature = key.sign(*message);
  if (!signature) return signature.error();
  bundle["attestation"]["signature"] = base64_encode(*signature);
  return bundle;
}

}  // namespace

Result<std::string> attestation_message(const nlohmann::json& bundle) {
  Json unsigned_part = bundle;
  if (auto it = unsigned_part.find("attestation"); it != unsigned_part.end() && it->is_object()) {
    it->erase("signature");
  }
  auto canonical = canonicalize(unsigned_part);
  if (!canonical) return canonical.error();
  return kAttestationContext + *canonical;
}

Result<nlohmann::json> build_bundle(const BundleInput& in, const SigningKey& key) {
  try {
    return assemble(in, key);
  } catch (const std::exception& e) {  // a safety net: assemble() is written not to throw
    return Error::permanent("schema", std::string("cannot build the bundle: ") + e.what());
  }
}

std::string VerifyReport::text() const {
  const auto unchecked = std::count_if(checks.begin(), checks.end(), [](const Check& c) { return !c.checked; });
  std::string out = !ok              ? "NOT VERIFIED 核验未通过\n"
                    : unchecked == 0 ? "VERIFIED 核验通过\n"
                                     : "VERIFIED 核验通过, except " + std::to_string(unchecked) +
                                           " item(s) marked [--], which could not be checked 有未核验项\n";
  for (const Check& c : checks) {
    out += (!c.checked ? "[--]   " : c.ok ? "[OK]   " : "[FAIL] ") + c.name + ": " + c.detail + "\n";
  }
  return out;
}

nlohmann::json VerifyReport::to_json() const {
  Json list = Json::array();
  for (const Check& c : checks) {
    list.push_back({{"name", c.name}, {"ok", c.ok}, {"detail", c.detail}});
    if (!c.checked) list.back()["checked"] = false;
  }
  return {{"ok", ok}, {"checks", std::move(list)}};
}

VerifyReport verify_parsed_bundle(const nlohmann::json& bundle, std::string_view public_key_pem,
                                  const VerifyOptions& options) {
  try {
    return Verifier(public_key_pem, options).run(bundle);
  } catch (const std::exception& e) {  // a safety net: the checks above are written not to throw
    VerifyReport report;
    report.checks.push_back(Check{"bundle format 格式", false, std::string("cannot be examined: ") + e.what()});
    return report;
  }
}

VerifyReport verify_bundle(std::string_view bundle_json, std::string_view public_key_pem,
                           const VerifyOptions& options) {
  const Json bundle = parse_json(bundle_json);
  if (bundle.is_discarded()) {
    VerifyReport report;
    report.checks.push_back(Check{"bundle format 格式", false, "not valid JSON (UTF-8); the file is damaged"});
    return report;
  }
  return verify_parsed_bundle(bundle, public_key_pem, options);
}

}  // namespace songda::evidence
