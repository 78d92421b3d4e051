// Lawyer-group broadcasts, put together: the group and broadcast stores, the
// fan-out worker, the start path shared by HTTP and Kafka, and the HTTP routes:
//
//   PUT  /v1/groups/{id}                     create/update a group (name, court, members?)
//   POST /v1/groups/{id}/members:import      add/replace members from CSV or JSON; bad rows reported, good kept
//   GET  /v1/groups/{id}?offset=&limit=      the group and a page of its members (contacts masked)
//   POST /v1/broadcasts                      start one (idempotent on its id)
//   GET  /v1/broadcasts                      the court's latest broadcasts (operator: ?court=)
//   GET  /v1/broadcasts/{id}                 progress: counts per status, times, rate
//   GET  /v1/broadcasts/{id}/events          the same as server-sent events until it is over
//   POST /v1/broadcasts/{id}/cancel          stop: nothing more is sent; what was sent stays recorded
//
// Every route authenticates like the other /v1 routes (401 without a key, 403 for another court's group or
// broadcast) and answers errors as {"error":{"code","message"}}. Contacts never leave in clear: GET shows them
// masked to everyone (clerks correct a contact by importing the row again), and logs mask them too.
//
// Thread-safety: routes run on the HTTP pool; start() is thread-safe; the fan-out runs on one thread.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "gateway/broadcast/fanout.h"
#include "gateway/broadcast/repository.h"
#include "gateway/broadcast/spec.h"
#include "gateway/http/server.h"

namespace songda::broadcast {

struct StartResult {
  StartOutcome outcome = StartOutcome::kNew;
  long long members = 0;
};

class BroadcastService {
 public:
  BroadcastService(RedisPool& pool, DeliveryStore& store, const Config& config, PlanOptions plan_options,
                   FanoutOptions fanout_options, std::function<bool(const std::string&)> has_channel);

  // Checks the spec and starts the broadcast (snapshot of the group). Errors: invalid_request,
  // template_param_missing, not_found (no group), forbidden (another court's group), empty_group, conflict
  // (the id was used with other content), and transient Redis errors.
  Result<StartResult> start(const BroadcastSpec& spec, std::int64_t now_ms);
  // The ingest hook for notice.broadcast events that name a group (no-op for other events). Idempotent.
  Status start_from_event(const CaseEvent& event, std::int64_t now_ms);

  void register_routes(ApiServer& http);
  // Ends open SSE streams (call before stopping the HTTP server).
  void stop() { stopping_.store(true); }

  GroupStore& groups() { return groups_; }
  BroadcastStore& broadcasts() { return broadcasts_; }
  Fanout& fanout() { return fanout_; }

 private:
  const Config& config_;
  std::function<bool(const std::string&)> has_channel_;
  GroupStore groups_;
  BroadcastStore broadcasts_;
  Fanout fanout_;
  std::atomic<bool> stopping_{false};
};

}  // namespace songda::broadcast
