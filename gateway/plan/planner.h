// The planner: a pure function from a validated event and the routes to the
// deliveries it calls for (recipient × channel), with deterministic ids and
// rendered texts. No I/O; thread-safe.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "gateway/config/config.h"
#include "gateway/core/event.h"
#include "gateway/core/result.h"

namespace songda {

struct PlanOptions {
  // Makes the link a recipient follows for one delivery (a signed /r/{token} URL).
  // Empty function: the {{link}} placeholder renders as an empty string.
  std::function<std::string(const std::string& delivery_id)> link_for;
  // Every delivery carries the event's params and its own rendered text: a valid 750 KB event (300 recipients,
  // a 700 KB notice_text) made 1.4 GB of records. A plan whose deliveries would take more is refused.
  std::size_t max_planned_bytes = 64ULL * 1024 * 1024;
};

struct Plan {
  std::vector<Delivery> deliveries;
  std::vector<std::string> unreachable;  // recipient ids with no route for their role, or no contact on its channels
  std::size_t planned_bytes = 0;         // about what the deliveries' records take (texts, params, addresses)
};

// Error codes: no_route (no route for the type), no_reachable_recipient (nobody
// has a contact on the route's channels), template_param_missing, template_invalid,
// too_large (the deliveries would take more than options.max_planned_bytes).
Result<Plan> plan_event(const CaseEvent& event, const Config& config, const PlanOptions& options = {});

// The contact a channel uses, or "" when the recipient has none for it.
std::string address_for(const Recipient& r, const std::string& channel);

}  // namespace songda
