// One evidence record per lifecycle event of a delivery (legal-e-service.md,
// "Evidence lifecycle"): the append-only unit of the evidence log. Its leaf in
// the Merkle tree is leaf_hash(JCS(record JSON)).
//
// Record JSON (schema "songda.evidence/v1"; times are unix milliseconds):
//   {"schema","evidence_id","type","event_time","recorded_at","delivery_id",
//    "event_id","court_id","case_number","channel","details":{...}}
// event_time is the source's time (provider-reported, recipient action);
// recorded_at is the gateway's. `details` holds the type's fields (see
// validate_record); addresses appear only masked plus a salted hash, never raw.
// Event-level records (SUBMISSION_ACCEPTED / _REJECTED) may have an empty
// delivery_id and channel.
//
// Ownership: plain values (copyable); the functions keep nothing.
// Thread-safety: pure values and functions, safe from any thread. Never throw.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "gateway/core/result.h"

namespace songda::evidence {

enum class EvidenceType {
  kConsentRecorded,
  kSubmissionAccepted,
  kSubmissionRejected,
  kDispatched,
  kProviderAccepted,
  kDelivered,
  kDeliveryFailed,
  kRead,
  kRetrieved,
  kAcknowledged,
  kServiceDeemedComplete,
  kFallback,
  kCorrection,
};

std::string_view to_string(EvidenceType t);  // "CONSENT_RECORDED", ...
std::optional<EvidenceType> evidence_type_from_string(std::string_view s);

inline constexpr const char* kRecordSchema = "songda.evidence/v1";

// "ev-" + the first 32 hex digits of SHA-256(subject \x1f TYPE \x1f discriminator).
// subject = the delivery id (the event id for event-level records). The
// discriminator makes the event unique within its delivery, and is the same
// when the same fact is reported twice, so duplicates share one id: e.g. the
// consent ref for CONSENT_RECORDED, the attempt's idempotency key for
// DISPATCHED, the provider message id for PROVIDER_ACCEPTED, the raw receipt's
// SHA-256 for DELIVERED / DELIVERY_FAILED, the source event id or time for
// READ / RETRIEVED / ACKNOWLEDGED, the rule version for SERVICE_DEEMED_COMPLETE.
std::string make_evidence_id(std::string_view subject, EvidenceType type, std::string_view discriminator);

// Salted hash of a raw address (phone, email, openid) for DISPATCHED records:
// lowercase hex HMAC-SHA256(salt, address). The salt stays with the gateway.
std::string address_hash(std::string_view salt, std::string_view address);

struct EvidenceRecord {
  std::string evidence_id;
  EvidenceType type = EvidenceType::kDispatched;
  std::int64_t event_time_ms = 0;
  std::int64_t recorded_at_ms = 0;
  std::string delivery_id;
  std::string event_id;
  std::string court_id;
  std::string case_number;
  std::string channel;
  nlohmann::json details = nlohmann::json::object();

  // JCS bytes of to_json(*this). Error "jcs" if details hold NaN/Inf or bad UTF-8.
  [[nodiscard]] Result<std::string> canonical() const;
  // RFC 9162 leaf hash (32 raw bytes) of canonical().
  [[nodiscard]] Result<std::string> leaf_hash() const;
};

nlohmann::json to_json(const EvidenceRecord& r);
// Strict: unknown members are refused, then validate_record(). Error "schema".
Result<EvidenceRecord> record_from_json(const nlohmann::json& j);

// The type's details, by type (strings unless noted; "?" = optional):
//   CONSENT_RECORDED        basis (provided|confirmed|obtained|none), scope (array of strings), reference
//   SUBMISSION_ACCEPTED     document_id?, document_sha256? (64 hex)
//   SUBMISSION_REJECTED     reason, code?
//   DISPATCHED              provider, address_masked, address_hash (64 hex), text_sha256 (64 hex), idempotency_key
//   PROVIDER_ACCEPTED       provider, provider_message_id
//   DELIVERED               receipt_sha256 (64 hex), provider?
//   DELIVERY_FAILED         reason (verbatim from the provider), provider?
//   READ                    identified_by
//   RETRIEVED               identified_by, served_sha256 (64 hex)
//   ACKNOWLEDGED            method
//   SERVICE_DEEMED_COMPLETE status, rule, rule_version, evidence_ids (array of strings)
//   FALLBACK                reason, to_channel?
//   CORRECTION              corrects (an evidence id), reason
// Other members are allowed, except raw-address names (address, mobile, phone,
// email, openid, wechat_openid). Also checks the id format and non-empty ids.
Status validate_record(const EvidenceRecord& r);

// leaf_hash(JCS(j)) for a record exactly as it appears in a bundle.
Result<std::string> record_json_leaf_hash(const nlohmann::json& j);

}  // namespace songda::evidence
