// The planner: a pure function from a validated event and the routes to the
// deliveries it calls for (recipient × channel), with deterministic ids and
// rendered texts. No I/O; thread-safe.
#pragma once

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
};

struct Plan {
  std::vector<Delivery> deliveries;
  std::vector<std::string> unreachable;  // recipient ids with no route for their role, or no contact on its channels
};

// Error codes: no_route (no route for the type), no_reachable_recipient (nobody
// has a contact on the route's channels), template_param_missing, template_invalid.
Result<Plan> plan_event(const CaseEvent& event, const Config& config, const PlanOptions& options = {});

// The contact a channel uses, or "" when the recipient has none for it.
std::string address_for(const Recipient& r, const std::string& channel);

}  // namespace songda
