// The service-date rules (送达日期): from the deliveries of ONE document to ONE
// recipient and their evidence records, decide whether and when the document
// was served, under which rule. Pure and versioned: the same records and
// kRulesVersion always give the same decision, so a verifier recomputes it.
//
// Rules (Online Litigation Rules 2021 Art. 31, CPL 2023 Art. 90):
//  - consent basis provided/confirmed: served when the message reached the
//    recipient's system = the earliest DELIVERED event_time (Art. 31 ¶1). With
//    no DELIVERED record, the recipient's own READ / RETRIEVED / ACKNOWLEDGED
//    proves arrival no later than that (rule "…Art31-1-by-access").
//  - basis obtained: served at the earliest ACKNOWLEDGED (the reply, ¶2); else
//    presumed served at the earliest READ / RETRIEVED (¶2, rebuttable); else pending.
//  - basis none (or no CONSENT_RECORDED): informational only, never served.
//  - a delivery with a DELIVERY_FAILED and no serving evidence has failed.
//  - several channels: the earliest effective service wins (ties: delivery id).
//    None served: PENDING if any consented channel may still serve, NOT_SERVED
//    if every consented channel failed, INFORMATIONAL_ONLY if none had consent.
//    Since cn-olr-2021.2 the PENDING rule says what is awaited: arrival on a
//    provided/confirmed address, a reply or read on an obtained one (2021.1
//    said "no arrival" for both, though an obtained address may have arrived).
//  - a CORRECTION record voids the record it names (details.corrects);
//    SERVICE_DEEMED_COMPLETE records (earlier outputs) are ignored.
//
// Ownership: plain values in and out; nothing is kept between calls.
// Thread-safety: pure functions on values, safe from any thread. Never throw.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "gateway/core/result.h"
#include "gateway/evidence/record.h"

namespace songda::evidence {

// The version new decisions are made with; a verifier also recomputes bundles decided with an earlier one.
inline constexpr const char* kRulesVersion = "cn-olr-2021.2";
inline constexpr const char* kRulesVersion2021_1 = "cn-olr-2021.1";
bool known_rules_version(std::string_view version);

inline constexpr const char* kRuleArrival =
    "OLR-2021-Art31-1 (address provided/confirmed: served on arrival in the recipient's system)";
inline constexpr const char* kRuleArrivalByAccess =
    "OLR-2021-Art31-1-by-access (address provided/confirmed: arrival shown by the recipient's read/reply)";
inline constexpr const char* kRuleReply = "OLR-2021-Art31-2 (address obtained: served on reply/acknowledgement)";
inline constexpr const char* kRulePresumedRead =
    "OLR-2021-Art31-2-presumed (address obtained: presumed served when read)";
inline constexpr const char* kRuleNoConsent = "CPL-2023-Art90 no consent: informational only";
// PENDING when every open channel has a provided/confirmed address (and, in 2021.1, always).
inline constexpr const char* kRulePending = "OLR-2021-Art31 pending (no arrival, reply or read evidence yet)";
// 2021.2: PENDING when every open channel has an obtained address, and when open channels have both.
inline constexpr const char* kRulePendingObtained =
    "OLR-2021-Art31-2 pending (address obtained: no reply or read yet; arrival alone does not serve)";
inline constexpr const char* kRulePendingMixed =
    "OLR-2021-Art31 pending (no arrival on a provided/confirmed address, no reply or read on an obtained one)";
inline constexpr const char* kRuleAllFailed = "OLR-2021-Art31 not served (every consented channel failed)";
inline constexpr const char* kRuleNoDelivery = "OLR-2021-Art31 not served (no delivery)";

enum class ServiceStatus { kServed, kPending, kInformationalOnly, kNotServed };
std::string_view to_string(ServiceStatus s);  // "SERVED", "PENDING", "INFORMATIONAL_ONLY", "NOT_SERVED"
std::optional<ServiceStatus> service_status_from_string(std::string_view s);

// One channel's delivery of the document to the recipient.
struct ChannelDelivery {
  std::string delivery_id;
  std::string channel;
  std::string consent_basis;  // provided | confirmed | obtained | none
  std::vector<EvidenceRecord> records;
};

struct ServiceDecision {
  ServiceStatus status = ServiceStatus::kPending;
  std::optional<std::int64_t> service_time_ms;  // set iff SERVED
  std::string rule;
  std::string rule_version = kRulesVersion;
  std::vector<std::string> evidence_ids;  // the records the decision rests on
  std::string delivery_id;                // the effective delivery (SERVED), else ""
  std::string channel;                    // its channel, else ""
  std::string note;                       // every channel's outcome, earliest first

  bool operator==(const ServiceDecision&) const = default;
};

// rules_version: kRulesVersion, or an earlier known_rules_version() to recompute a decision made with it.
ServiceDecision decide_service(std::span<const ChannelDelivery> deliveries,
                               std::string_view rules_version = kRulesVersion);

// Groups records by delivery id (records without one are skipped); the basis
// is the latest non-voided CONSENT_RECORDED's, "none" when there is none.
// Error "schema" when one delivery's records name different channels.
Result<std::vector<ChannelDelivery>> deliveries_from_records(std::span<const EvidenceRecord> records);

// {"status","service_time"?,"rule","rule_version","evidence_ids","delivery_id","channel","note"}
nlohmann::json to_json(const ServiceDecision& d);
Result<ServiceDecision> service_decision_from_json(const nlohmann::json& j);  // strict; Error "schema"

}  // namespace songda::evidence
