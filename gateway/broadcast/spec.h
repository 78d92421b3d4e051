// A broadcast: one court notice to every member of a group, each member served
// like the recipient of a case event (own delivery per channel, dedup, receipts,
// evidence, proof). This file is the pure part: the request as a value, its
// checks against the configuration, and the planning of one page of members
// into deliveries with the existing planner. No I/O; thread-safe.
//
// Identity: the broadcast id is the idempotency key (the same id with the same
// content is the same broadcast; with different content a conflict). Its
// deliveries belong to the event `event_id` ("broadcast:<id>" for one started
// over HTTP; the Kafka event's own id for a notice.broadcast event), so delivery
// ids are delivery_id(event_id, member id, channel): deterministic, and a member
// listed in the event itself is not served twice.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "gateway/broadcast/members.h"
#include "gateway/config/config.h"
#include "gateway/core/event.h"
#include "gateway/core/result.h"
#include "gateway/plan/planner.h"
#include "gateway/store/store.h"

namespace songda::broadcast {

using songda::kBroadcastEventType;
// The most pages a broadcast's document may say it has (a stored broadcast is read back with this bound).
inline constexpr long long kMaxDocumentPages = 100000;

struct BroadcastSpec {
  std::string id;
  std::string group_id;
  std::string event_id;  // the deliveries' event id (see above)
  std::string court_id;  // the group's court
  std::string court_name;
  std::string reference;  // stands in for the case number (e.g. a notice number); default "broadcast:<id>"
  std::string title;      // case title in templates; default the notice_title param
  std::string template_name;
  std::map<std::string, std::string> params;
  std::vector<std::string> channels;
  std::vector<FallbackConfig> fallback;
  std::optional<Document> document;
  bool urgent = false;
  std::string origin = "api";        // api | kafka
  bool channels_from_route = false;  // channels are the route's defaults: those this gateway lacks are left out
};

// Parses POST /v1/broadcasts. Defaults (template, channels, fallback, urgent) come from the configured
// notice.broadcast route. Error codes: invalid_request (the message names the field).
Result<BroadcastSpec> spec_from_request(const nlohmann::json& body, const Config& config);

// A notice.broadcast event naming a group ("broadcast": {"id"?, "group_id"}): the spec for its fan-out, with
// the event's id, court, case number (as reference), params and document and the route's channels. nullopt when the
// event names no group. Error invalid_request when broadcast.group_id/id are malformed.
Result<std::optional<BroadcastSpec>> spec_from_event(const CaseEvent& event, const Config& config);

// Checks the spec against what this process can send: the template exists and renders with the params,
// every channel is configured (has_channel), SMS providers have a code for the template, WeChat a template,
// fallback channels are among the channels. Error codes: invalid_request, template_param_missing.
Status check_spec(const BroadcastSpec& spec, const Config& config,
                  const std::function<bool(const std::string&)>& has_channel);

// The canonical JSON (stored with the broadcast) and back; digest = SHA-256 hex of the canonical JSON
// of what the requester chose (not the court name looked up, not the origin).
nlohmann::json spec_to_json(const BroadcastSpec& spec);
Result<BroadcastSpec> spec_from_json(const nlohmann::json& j);
std::string spec_digest(const BroadcastSpec& spec);

// A Config whose only route is the broadcast's (its template, channels, fallback, urgency): the planner's input.
Config route_config(const Config& base, const BroadcastSpec& spec);

// One page of members planned: the page as an event (for the evidence makers), its plan (deliveries and the
// members no channel reaches), and the record for DeliveryStore::record_batch with everything but the
// deliveries and evidence filled in (its own dedup key "<event_id>#p<first index>", tagged with the broadcast id).
struct PagePlan {
  CaseEvent event;
  Plan plan;
  EventToRecord record;
  std::size_t members = 0;
};

// The page event: the broadcast as a case event whose recipients are the page's members.
CaseEvent page_event(const BroadcastSpec& spec, const std::string& digest, std::vector<Recipient> members);

// Plans one page. `first_index` is the page's position in the snapshot (part of its dedup key, so a resumed page
// is recognised). A page whose members have no contact on any channel is not an error (all unreachable).
// Errors: template_param_missing, template_invalid (a bad spec; check_spec catches them first).
Result<PagePlan> plan_page(const BroadcastSpec& spec, const std::string& digest, const Config& routes,
                           const PlanOptions& options, std::vector<Recipient> members, std::int64_t first_index);

}  // namespace songda::broadcast
