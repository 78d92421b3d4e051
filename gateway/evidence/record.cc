#include "gateway/evidence/record.h"

#include <algorithm>
#include <array>
#include <utility>

#include "gateway/core/crypto.h"
#include "gateway/evidence/jcs.h"
#include "gateway/evidence/json_fields.h"
#include "gateway/evidence/merkle.h"

namespace songda::evidence {
namespace {

struct TypeName {
  EvidenceType type;
  std::string_view name;
};

constexpr std::array<TypeName, 13> kTypeNames = {{
    {EvidenceType::kConsentRecorded, "CONSENT_RECORDED"},
    {EvidenceType::kSubmissionAccepted, "SUBMISSION_ACCEPTED"},
    {EvidenceType::kSubmissionRejected, "SUBMISSION_REJECTED"},
    {EvidenceType::kDispatched, "DISPATCHED"},
    {EvidenceType::kProviderAccepted, "PROVIDER_ACCEPTED"},
    {EvidenceType::kDelivered, "DELIVERED"},
    {EvidenceType::kDeliveryFailed, "DELIVERY_FAILED"},
    {EvidenceType::kRead, "READ"},
    {EvidenceType::kRetrieved, "RETRIEVED"},
    {EvidenceType::kAcknowledged, "ACKNOWLEDGED"},
    {EvidenceType::kServiceDeemedComplete, "SERVICE_DEEMED_COMPLETE"},
    {EvidenceType::kFallback, "FALLBACK"},
    {EvidenceType::kCorrection, "CORRECTION"},
}};

enum class Kind { kString, kHex64, kStringArray, kBasis };

struct FieldRule {
  std::string_view name;
  Kind kind;
  bool required;
};

// The details each type must (or may) carry; see record.h.
std::vector<FieldRule> detail_rules(EvidenceType t) {
  switch (t) {
    case EvidenceType::kConsentRecorded:
      return {{"basis", Kind::kBasis, true}, {"scope", Kind::kStringArray, true}, {"reference", Kind::kString, true}};
    case EvidenceType::kSubmissionAccepted:
      return {{"document_id", Kind::kString, false}, {"document_sha256", Kind::kHex64, false}};
    case EvidenceType::kSubmissionRejected:
      return {{"reason", Kind::kString, true}, {"code", Kind::kString, false}};
    case EvidenceType::kDispatched:
      return {{"provider", Kind::kString, true},
              {"address_masked", Kind::kString, true},
              {"address_hash", Kind::kHex64, true},
              {"text_sha256", Kind::kHex64, true},
              {"idempotency_key", Kind::kString, true}};
    case EvidenceType::kProviderAccepted:
      return {{"provider", Kind::kString, true}, {"provider_message_id", Kind::kString, true}};
    case EvidenceType::kDelivered:
      return {{"receipt_sha256", Kind::kHex64, true}, {"provider", Kind::kString, false}};
    case EvidenceType::kDeliveryFailed:
      return {{"reason", Kind::kString, true}, {"provider", Kind::kString, false}};
    case EvidenceType::kRead:
      return {{"identified_by", Kind::kString, true}};
    case EvidenceType::kRetrieved:
      return {{"identified_by", Kind::kString, true}, {"served_sha256", Kind::kHex64, true}};
    case EvidenceType::kAcknowledged:
      return {{"method", Kind::kString, true}};
    case EvidenceType::kServiceDeemedComplete:
      return {{"status", Kind::kString, true},
              {"rule", Kind::kString, true},
              {"rule_version", Kind::kString, true},
              {"evidence_ids", Kind::kStringArray, true}};
    case EvidenceType::kFallback:
      return {{"reason", Kind::kString, true}, {"to_channel", Kind::kString, false}};
    case EvidenceType::kCorrection:
      return {{"corrects", Kind::kString, true}, {"reason", Kind::kString, true}};
  }
  return {};
}

bool kind_matches(Kind kind, const nlohmann::json& v) {
  switch (kind) {
    case Kind::kString:
      return v.is_string();
    case Kind::kHex64:
      return v.is_string() && detail::is_strict_hex(v.get_ref<const std::string&>(), 32);
    case Kind::kStringArray:
      return v.is_array() && std::all_of(v.begin(), v.end(), [](const auto& e) { return e.is_string(); });
    case Kind::kBasis: {
      if (!v.is_string()) return false;
      const auto& s = v.get_ref<const std::string&>();
      return s == "provided" || s == "confirmed" || s == "obtained" || s == "none";
    }
  }
  return false;
}

std::string_view kind_text(Kind kind) {
  switch (kind) {
    case Kind::kString:
      return "a string";
    case Kind::kHex64:
      return "64 lowercase hex digits";
    case Kind::kStringArray:
      return "an array of strings";
    case Kind::kBasis:
      return "one of provided|confirmed|obtained|none";
  }
  return "";
}

constexpr std::array<std::string_view, 6> kRawAddressNames = {"address", "mobile", "phone",
                                                              "email",   "openid", "wechat_openid"};

Error record_error(const EvidenceRecord& r, const std::string& message) {
  return Error::permanent("schema",
                          "record " + r.evidence_id + " (" + std::string(to_string(r.type)) + "): " + message);
}

Status validate_details(const EvidenceRecord& r) {
  if (!r.details.is_object()) return record_error(r, "details must be a JSON object");
  for (const std::string_view name : kRawAddressNames) {
    if (r.details.contains(name)) {
      return record_error(r, "details must not hold a raw address (\"" + std::string(name) +
                                 "\"); hint: store address_masked and address_hash");
    }
  }
  for (const FieldRule& rule : detail_rules(r.type)) {
    const auto it = r.details.find(rule.name);
    if (it == r.details.end()) {
      if (rule.required) return record_error(r, "details." + std::string(rule.name) + " is missing");
      continue;
    }
    if (!kind_matches(rule.kind, *it)) {
      return record_error(r, "details." + std::string(rule.name) + " must be " + std::string(kind_text(rule.kind)));
    }
  }
  return ok_status();
}

bool is_event_level(EvidenceType t) {
  return t == EvidenceType::kSubmissionAccepted || t == EvidenceType::kSubmissionRejected;
}

}  // namespace

std::string_view to_string(EvidenceType t) {
  for (const auto& [type, name] : kTypeNames) {
    if (type == t) return name;
  }
  return "UNKNOWN";
}

std::optional<EvidenceType> evidence_type_from_string(std::string_view s) {
  for (const auto& [type, name] : kTypeNames) {
    if (name == s) return type;
  }
  return std::nullopt;
}

std::string make_evidence_id(std::string_view subject, EvidenceType type, std::string_view discriminator) {
  std::string material(subject);
  material.push_back('\x1f');
  material.append(to_string(type));
  material.push_back('\x1f');
  material.append(discriminator);
  return "ev-" + sha256_hex(material).substr(0, 32);
}

std::string address_hash(std::string_view salt, std::string_view address) {
  return to_hex(hmac_sha256_raw(salt, address));
}

// canonicalize(to_json(*this)), written directly: no copy of the details into a new document first (that
// copy and its destruction were a tenth of the gateway's CPU: bench/README.md). The members are in JCS order;
// their names are ASCII, so byte order is UTF-16 order. A unit test holds the two forms equal.
Result<std::string> EvidenceRecord::canonical() const {
  std::string out;
  out.reserve(512);
  Status s = ok_status();
  const auto member = [&out](std::string_view name, bool first) {
    out += first ? "{\"" : ",\"";
    out += name;
    out += "\":";
  };
  const auto text = [&](std::string_view name, std::string_view value, bool first = false) {
    member(name, first);
    if (s) s = append_canonical_string(out, value);
  };
  const auto integer = [&](std::string_view name, std::int64_t value) {
    member(name, false);
    out += std::to_string(value);
  };
  text("case_number", case_number, true);
  text("channel", channel);
  text("court_id", court_id);
  text("delivery_id", delivery_id);
  member("details", false);
  if (s) s = append_canonical(out, details);
  text("event_id", event_id);
  integer("event_time", event_time_ms);
  text("evidence_id", evidence_id);
  integer("recorded_at", recorded_at_ms);
  text("schema", kRecordSchema);
  text("type", to_string(type));
  out.push_back('}');
  if (!s) return s.error();
  return out;
}

Result<std::string> EvidenceRecord::leaf_hash() const {
  auto bytes = canonical();
  if (!bytes) return bytes.error();
  return evidence::leaf_hash(*bytes);
}

nlohmann::json to_json(const EvidenceRecord& r) {
  return {{"schema", kRecordSchema},
          {"evidence_id", r.evidence_id},
          {"type", to_string(r.type)},
          {"event_time", r.event_time_ms},
          {"recorded_at", r.recorded_at_ms},
          {"delivery_id", r.delivery_id},
          {"event_id", r.event_id},
          {"court_id", r.court_id},
          {"case_number", r.case_number},
          {"channel", r.channel},
          {"details", r.details}};
}

Status validate_record(const EvidenceRecord& r) {
  const bool id_ok = r.evidence_id.size() == 35 && r.evidence_id.starts_with("ev-") &&
                     detail::is_strict_hex(std::string_view(r.evidence_id).substr(3), 16);
  if (!id_ok) return record_error(r, "evidence_id must be \"ev-\" and 32 lowercase hex digits");
  if (r.event_id.empty() || r.court_id.empty() || r.case_number.empty()) {
    return record_error(r, "event_id, court_id and case_number must not be empty");
  }
  if (!is_event_level(r.type) && (r.delivery_id.empty() || r.channel.empty())) {
    return record_error(r, "delivery_id and channel must not be empty");
  }
  return validate_details(r);
}

Result<EvidenceRecord> record_from_json(const nlohmann::json& j) {
  const detail::FieldReader f(j, "record");
  if (auto s = f.expect_members({"schema", "evidence_id", "type", "event_time", "recorded_at", "delivery_id",
                                 "event_id", "court_id", "case_number", "channel", "details"});
      !s) {
    return s.error();
  }
  auto schema = f.string("schema");
  if (!schema) return schema.error();
  if (*schema != kRecordSchema) return f.error("unsupported schema \"" + *schema + "\"");
  auto type_name = f.string("type");
  if (!type_name) return type_name.error();
  const auto type = evidence_type_from_string(*type_name);
  if (!type) return f.error("unknown evidence type \"" + *type_name + "\"");

  EvidenceRecord r;
  r.type = *type;
  for (auto [key, out] : {std::pair{"evidence_id", &r.evidence_id}, std::pair{"delivery_id", &r.delivery_id},
                          std::pair{"event_id", &r.event_id}, std::pair{"court_id", &r.court_id},
                          std::pair{"case_number", &r.case_number}, std::pair{"channel", &r.channel}}) {
    auto v = f.string(key);
    if (!v) return v.error();
    *out = std::move(*v);
  }
  auto event_time = f.int64("event_time");
  if (!event_time) return event_time.error();
  auto recorded_at = f.int64("recorded_at");
  if (!recorded_at) return recorded_at.error();
  r.event_time_ms = *event_time;
  r.recorded_at_ms = *recorded_at;
  r.details = j.at("details");
  if (auto s = validate_record(r); !s) return s.error();
  return r;
}

Result<std::string> record_json_leaf_hash(const nlohmann::json& j) {
  auto bytes = canonicalize(j);
  if (!bytes) return bytes.error();
  return leaf_hash(*bytes);
}

}  // namespace songda::evidence
