#include "gateway/evidence/rules.h"

#include <algorithm>
#include <iterator>
#include <map>
#include <set>
#include <tuple>
#include <utility>

#include "gateway/core/text.h"
#include "gateway/evidence/json_fields.h"

namespace songda::evidence {
namespace {

enum class Outcome { kServed, kPending, kFailed, kInformational };

// What one channel's evidence amounts to.
struct ChannelResult {
  Outcome outcome = Outcome::kPending;
  std::int64_t time_ms = 0;  // service time when kServed
  std::string rule;
  std::string deciding_type;  // e.g. "DELIVERED"
  std::vector<std::string> evidence_ids;
  const ChannelDelivery* delivery = nullptr;
};

std::set<std::string> voided_ids(std::span<const EvidenceRecord> records) {
  std::set<std::string> out;
  for (const auto& r : records) {
    if (r.type != EvidenceType::kCorrection) continue;
    const auto it = r.details.find("corrects");
    if (it != r.details.end() && it->is_string()) out.insert(it->get<std::string>());
  }
  return out;
}

// The records the rules look at: not voided, not earlier rule outputs, not corrections.
std::vector<const EvidenceRecord*> effective(std::span<const EvidenceRecord> records) {
  const std::set<std::string> voided = voided_ids(records);
  std::vector<const EvidenceRecord*> out;
  for (const auto& r : records) {
    if (voided.contains(r.evidence_id)) continue;
    if (r.type == EvidenceType::kCorrection || r.type == EvidenceType::kServiceDeemedComplete) continue;
    out.push_back(&r);
  }
  return out;
}

// Earliest record of the given types (ties broken by evidence id).
const EvidenceRecord* earliest(const std::vector<const EvidenceRecord*>& records,
                               std::initializer_list<EvidenceType> types) {
  const EvidenceRecord* best = nullptr;
  for (const EvidenceRecord* r : records) {
    if (std::find(types.begin(), types.end(), r->type) == types.end()) continue;
    if (best == nullptr ||
        std::tie(r->event_time_ms, r->evidence_id) < std::tie(best->event_time_ms, best->evidence_id)) {
      best = r;
    }
  }
  return best;
}

// Ids of the records of one type, in (event time, id) order so input order never matters.
std::vector<std::string> ids_of_type(const std::vector<const EvidenceRecord*>& records, EvidenceType type) {
  std::vector<const EvidenceRecord*> matching;
  std::copy_if(records.begin(), records.end(), std::back_inserter(matching),
               [type](const EvidenceRecord* r) { return r->type == type; });
  std::sort(matching.begin(), matching.end(), [](const EvidenceRecord* a, const EvidenceRecord* b) {
    return std::tie(a->event_time_ms, a->evidence_id) < std::tie(b->event_time_ms, b->evidence_id);
  });
  std::vector<std::string> out;
  out.reserve(matching.size());
  for (const EvidenceRecord* r : matching) out.push_back(r->evidence_id);
  return out;
}

ChannelResult served(const ChannelDelivery& d, const std::vector<const EvidenceRecord*>& records,
                     const EvidenceRecord& deciding, const char* rule) {
  ChannelResult out{Outcome::kServed,
                    deciding.event_time_ms,
                    rule,
                    std::string(to_string(deciding.type)),
                    ids_of_type(records, EvidenceType::kConsentRecorded),
                    &d};
  out.evidence_ids.push_back(deciding.evidence_id);
  return out;
}

ChannelResult evaluate(const ChannelDelivery& d) {
  const auto records = effective(d.records);
  const std::string& basis = d.consent_basis;
  if (basis != "provided" && basis != "confirmed" && basis != "obtained") {
    return ChannelResult{Outcome::kInformational, 0, kRuleNoConsent, "", {}, &d};
  }
  if (basis == "obtained") {
    if (const auto* ack = earliest(records, {EvidenceType::kAcknowledged})) return served(d, records, *ack, kRuleReply);
    if (const auto* read = earliest(records, {EvidenceType::kRead, EvidenceType::kRetrieved})) {
      return served(d, records, *read, kRulePresumedRead);
    }
  } else {
    if (const auto* arrived = earliest(records, {EvidenceType::kDelivered})) {
      return served(d, records, *arrived, kRuleArrival);
    }
    const auto* access =
        earliest(records, {EvidenceType::kRead, EvidenceType::kRetrieved, EvidenceType::kAcknowledged});
    if (access != nullptr) return served(d, records, *access, kRuleArrivalByAccess);
  }
  auto failures = ids_of_type(records, EvidenceType::kDeliveryFailed);
  if (!failures.empty()) return ChannelResult{Outcome::kFailed, 0, kRuleAllFailed, "", std::move(failures), &d};
  return ChannelResult{
      Outcome::kPending, 0, kRulePending, "", ids_of_type(records, EvidenceType::kConsentRecorded), &d};
}

std::string outcome_text(const ChannelResult& r) {
  switch (r.outcome) {
    case Outcome::kServed:
      return "served " + rfc3339_utc(r.time_ms) + " (" + r.deciding_type + ")";
    case Outcome::kPending:
      return "pending";
    case Outcome::kFailed:
      return "failed";
    case Outcome::kInformational:
      return "no consent, informational only";
  }
  return "";
}

// "earliest effective service 最早有效送达: sms served … ; email pending; …"
std::string note_for(const std::vector<ChannelResult>& results) {
  std::string out = results.size() > 1
                        ? "earliest effective service 最早有效送达 of " + std::to_string(results.size()) + " channels: "
                        : "one channel: ";
  for (std::size_t i = 0; i < results.size(); ++i) {
    if (i > 0) out += "; ";
    out += results[i].delivery->channel + " " + outcome_text(results[i]);
  }
  return out;
}

// Served first (earliest), then pending, failed, informational; ties by delivery id.
bool before(const ChannelResult& a, const ChannelResult& b) {
  const auto key = [](const ChannelResult& r) {
    return std::tuple(static_cast<int>(r.outcome), r.outcome == Outcome::kServed ? r.time_ms : 0,
                      std::string_view(r.delivery->delivery_id));
  };
  return key(a) < key(b);
}

std::vector<std::string> ids_with(const std::vector<ChannelResult>& results, Outcome outcome) {
  std::vector<std::string> out;
  for (const auto& r : results) {
    if (r.outcome == outcome) out.insert(out.end(), r.evidence_ids.begin(), r.evidence_ids.end());
  }
  return out;
}

std::string basis_of(const EvidenceRecord& consent) {
  const auto it = consent.details.find("basis");
  return it != consent.details.end() && it->is_string() ? it->get<std::string>() : "none";
}

bool any(const std::vector<ChannelResult>& results, Outcome outcome) {
  return std::any_of(results.begin(), results.end(), [outcome](const auto& r) { return r.outcome == outcome; });
}

// What the open channels await: arrival (provided/confirmed), a reply or read (obtained), or both.
const char* pending_rule(const std::vector<ChannelResult>& results, std::string_view rules_version) {
  if (rules_version == kRulesVersion2021_1) return kRulePending;
  bool obtained = false;
  bool other = false;
  for (const auto& r : results) {
    if (r.outcome != Outcome::kPending) continue;
    (r.delivery->consent_basis == "obtained" ? obtained : other) = true;
  }
  if (obtained && other) return kRulePendingMixed;
  return obtained ? kRulePendingObtained : kRulePending;
}

}  // namespace

std::string_view to_string(ServiceStatus s) {
  switch (s) {
    case ServiceStatus::kServed:
      return "SERVED";
    case ServiceStatus::kPending:
      return "PENDING";
    case ServiceStatus::kInformationalOnly:
      return "INFORMATIONAL_ONLY";
    case ServiceStatus::kNotServed:
      return "NOT_SERVED";
  }
  return "UNKNOWN";
}

std::optional<ServiceStatus> service_status_from_string(std::string_view s) {
  for (const auto status : {ServiceStatus::kServed, ServiceStatus::kPending, ServiceStatus::kInformationalOnly,
                            ServiceStatus::kNotServed}) {
    if (to_string(status) == s) return status;
  }
  return std::nullopt;
}

bool known_rules_version(std::string_view version) {
  return version == kRulesVersion || version == kRulesVersion2021_1;
}

ServiceDecision decide_service(std::span<const ChannelDelivery> deliveries, std::string_view rules_version) {
  ServiceDecision out;
  out.rule_version = std::string(rules_version);
  if (deliveries.empty()) {
    out.status = ServiceStatus::kNotServed;
    out.rule = kRuleNoDelivery;
    out.note = "no delivery";
    return out;
  }
  std::vector<ChannelResult> results;
  for (const auto& d : deliveries) results.push_back(evaluate(d));
  std::sort(results.begin(), results.end(), before);
  out.note = note_for(results);
  const ChannelResult& first = results.front();
  if (first.outcome == Outcome::kServed) {
    out.status = ServiceStatus::kServed;
    out.service_time_ms = first.time_ms;
    out.rule = first.rule;
    out.evidence_ids = first.evidence_ids;
    out.delivery_id = first.delivery->delivery_id;
    out.channel = first.delivery->channel;
  } else if (any(results, Outcome::kPending)) {
    out.status = ServiceStatus::kPending;
    out.rule = pending_rule(results, rules_version);
    out.evidence_ids = ids_with(results, Outcome::kPending);
  } else if (any(results, Outcome::kFailed)) {
    out.status = ServiceStatus::kNotServed;
    out.rule = kRuleAllFailed;
    out.evidence_ids = ids_with(results, Outcome::kFailed);
  } else {
    out.status = ServiceStatus::kInformationalOnly;
    out.rule = kRuleNoConsent;
  }
  return out;
}

Result<std::vector<ChannelDelivery>> deliveries_from_records(std::span<const EvidenceRecord> records) {
  std::map<std::string, ChannelDelivery> by_id;
  for (const auto& r : records) {
    if (r.delivery_id.empty()) continue;
    auto& d = by_id[r.delivery_id];
    if (d.delivery_id.empty()) {
      d.delivery_id = r.delivery_id;
      d.channel = r.channel;
    } else if (d.channel != r.channel) {
      return Error::permanent("schema", "delivery " + r.delivery_id + " has records on two channels (" + d.channel +
                                            ", " + r.channel + ")");
    }
    d.records.push_back(r);
  }
  std::vector<ChannelDelivery> out;
  for (auto& [id, d] : by_id) {
    const auto consent = effective(d.records);
    const EvidenceRecord* latest = nullptr;
    for (const EvidenceRecord* r : consent) {
      if (r->type != EvidenceType::kConsentRecorded) continue;
      if (latest == nullptr ||
          std::tie(r->event_time_ms, r->evidence_id) > std::tie(latest->event_time_ms, latest->evidence_id)) {
        latest = r;
      }
    }
    d.consent_basis = latest != nullptr ? basis_of(*latest) : "none";
    out.push_back(std::move(d));
  }
  return out;
}

nlohmann::json to_json(const ServiceDecision& d) {
  nlohmann::json j = {{"status", to_string(d.status)},
                      {"rule", d.rule},
                      {"rule_version", d.rule_version},
                      {"evidence_ids", d.evidence_ids},
                      {"delivery_id", d.delivery_id},
                      {"channel", d.channel},
                      {"note", d.note}};
  if (d.service_time_ms) j["service_time"] = *d.service_time_ms;
  return j;
}

Result<ServiceDecision> service_decision_from_json(const nlohmann::json& j) {
  const detail::FieldReader f(j, "service");
  if (auto s = f.expect_members({"status", "rule", "rule_version", "evidence_ids", "delivery_id", "channel", "note"},
                                {"service_time"});
      !s) {
    return s.error();
  }
  ServiceDecision d;
  auto status_text = f.string("status");
  if (!status_text) return status_text.error();
  const auto status = service_status_from_string(*status_text);
  if (!status) return f.error("unknown status \"" + *status_text + "\"");
  d.status = *status;
  for (auto [key, out] :
       {std::pair{"rule", &d.rule}, std::pair{"rule_version", &d.rule_version},
        std::pair{"delivery_id", &d.delivery_id}, std::pair{"channel", &d.channel}, std::pair{"note", &d.note}}) {
    auto v = f.string(key);
    if (!v) return v.error();
    *out = std::move(*v);
  }
  auto ids = f.string_array("evidence_ids");
  if (!ids) return ids.error();
  d.evidence_ids = std::move(*ids);
  if (f.has("service_time")) {
    auto t = f.int64("service_time");
    if (!t) return t.error();
    d.service_time_ms = *t;
  }
  if (d.service_time_ms.has_value() != (d.status == ServiceStatus::kServed)) {
    return f.error("service_time must be present exactly when the status is SERVED");
  }
  return d;
}

}  // namespace songda::evidence
