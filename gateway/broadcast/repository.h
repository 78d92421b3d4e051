// Groups and broadcasts in Redis. Every multi-key change is one Lua script.
// Nothing here has a TTL: a broadcast's snapshot is what proves whom it was
// addressed to.
//
// Keys (hash tags keep one group's, one broadcast's keys in one cluster slot):
//   sd:grp:{<gid>}:meta       hash   name, court_id, court_name, created_at, updated_at
//   sd:grp:{<gid>}:ids        zset   member ids (score 0: ordered by id, paged by index)
//   sd:grp:{<gid>}:m          hash   member id -> member JSON (raw contacts)
//   sd:grps:{<court>}         set    the court's group ids
//   sd:bc:{<bid>}             hash   spec, digest, state, members, cursor, planned, unreachable, times ...
//   sd:bc:{<bid>}:ids / :m    the membership snapshot (COPY of the group's :ids and :m when it started)
//   sd:bc:{<bid>}:counts      hash   status -> deliveries (kept by DeliveryStore's status scripts)
//   sd:bc:{<bid>}:unreachable zset   member ids no delivery could be planned for (score 0: ordered by id)
//   sd:bcs:{<court>}          zset   the court's broadcast ids by start time
//   sd:bc:active              set    broadcasts the fan-out worker still has to look at
//   sd:bc:lease               string the fan-out worker's lease (one instance at a time)
// The snapshot is taken with COPY in the same script that creates the broadcast, so the membership a broadcast
// serves is exactly the group's at that instant. (On Redis Cluster COPY needs both keys in one slot; run the
// groups and broadcasts on one shard or replace COPY by a paged copy.)
//
// States: running (fan-out in progress) → dispatching (every member planned; deliveries in the queues) →
// finished (no delivery left ACCEPTED); running|dispatching → cancelling (cancel asked) → cancelled; failed.
//
// Thread-safety: thread-safe (pooled connections).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "gateway/broadcast/members.h"
#include "gateway/broadcast/spec.h"
#include "gateway/store/redis.h"

namespace songda::broadcast {

struct GroupInfo {
  std::string id;
  std::string name;
  std::string court_id;
  std::string court_name;
  std::int64_t created_ms = 0;
  std::int64_t updated_ms = 0;
  long long members = 0;
};

struct ImportCounts {
  long long added = 0;
  long long updated = 0;
  long long total = 0;  // members of the group afterwards
};

class GroupStore {
 public:
  explicit GroupStore(RedisPool& pool) : pool_(pool) {}

  Result<std::optional<GroupInfo>> get(const std::string& group_id);
  // Creates or updates a group's name and court; with members, replaces its membership (atomically).
  // Errors: forbidden (the group belongs to another court), too_large.
  Result<ImportCounts> put(const GroupInfo& info, const std::optional<std::vector<Member>>& members,
                           std::int64_t now_ms);
  // Adds or replaces members by id. Errors: not_found (no such group), too_large (the group would pass
  // kMaxMembersPerGroup; nothing is changed).
  Result<ImportCounts> upsert(const std::string& group_id, const std::vector<Member>& members, std::int64_t now_ms);
  // Members in id order, [offset, offset + limit). Unreadable stored members are skipped.
  Result<std::vector<Member>> page(const std::string& group_id, long long offset, int limit);

 private:
  RedisPool& pool_;
};

struct BroadcastRecord {
  BroadcastSpec spec;
  std::string digest;
  std::string state;
  long long members = 0;
  long long cursor = 0;   // members planned and recorded so far (snapshot index)
  long long planned = 0;  // deliveries recorded
  long long unreachable = 0;
  long long cancelled = 0;  // deliveries the cancel took off the queues
  std::int64_t created_ms = 0;
  std::int64_t fanned_out_ms = 0;
  std::int64_t finished_ms = 0;
  std::int64_t cancel_requested_ms = 0;
  std::string error;                        // why it failed
  std::map<std::string, long long> counts;  // delivery status -> count
};

enum class StartOutcome { kNew, kDuplicate, kConflict, kNoGroup, kForbidden, kEmptyGroup };

class BroadcastStore {
 public:
  explicit BroadcastStore(RedisPool& pool) : pool_(pool) {}

  // Creates the broadcast and snapshots the group's membership, in one script; idempotent on the id.
  // kForbidden: the group belongs to another court than spec.court_id. On kNew the spec's court name is the
  // group's (when the spec has none). Returns the outcome and the members count.
  Result<std::pair<StartOutcome, long long>> start(BroadcastSpec spec, const std::string& digest, std::int64_t now_ms);
  Result<std::optional<BroadcastRecord>> get(const std::string& broadcast_id);
  // Its state alone ("" when there is no such broadcast): what the fan-out checks before each page.
  Result<std::string> state(const std::string& broadcast_id);
  // Broadcasts with work left (fan-out, cancel, waiting to finish).
  Result<std::vector<std::string>> active();
  // The court's broadcasts, newest first.
  Result<std::vector<std::string>> of_court(const std::string& court_id, int limit);

  // Snapshot members [from, from + n): (id, member JSON) in id order, one round trip.
  Result<std::vector<std::pair<std::string, std::string>>> read_page(const std::string& broadcast_id, long long from,
                                                                     int n);
  // Moves the cursor from `from` to `to` (only if it is at `from` and `holder` holds the lease), adds the page's
  // counts and names its unreachable members; the last page moves the state to dispatching. false: not moved
  // (lease lost or already moved).
  Result<bool> advance_cursor(const std::string& broadcast_id, long long from, long long to, long long planned,
                              const std::vector<std::string>& unreachable, const std::string& holder,
                              std::int64_t now_ms);
  // The unreachable members [from, from + n) in id order: (id, snapshot member JSON, "" if it is missing), and how
  // many there are. Two round trips.
  struct Unreachable {
    long long total = 0;
    std::vector<std::pair<std::string, std::string>> members;
  };
  Result<Unreachable> unreachable(const std::string& broadcast_id, long long from, int n);
  // running|dispatching → cancelling. Returns the state before (so "finished" means too late).
  Result<std::string> request_cancel(const std::string& broadcast_id, std::int64_t now_ms);
  // cancelling → cancelled, with how many deliveries were taken off the queues.
  Status finish_cancel(const std::string& broadcast_id, long long cancelled, std::int64_t now_ms);
  // dispatching → finished when no delivery is left ACCEPTED. true when it finished now.
  Result<bool> finish_if_done(const std::string& broadcast_id, std::int64_t now_ms);
  Status fail(const std::string& broadcast_id, const std::string& reason, std::int64_t now_ms);

  // The fan-out lease: taken when free, renewed when ours. true while `holder` holds it.
  Result<bool> hold_lease(const std::string& holder, int ttl_ms);
  void release_lease(const std::string& holder);

 private:
  RedisPool& pool_;
};

// What GET /v1/broadcasts/{id} and the SSE stream show (no addresses in it).
nlohmann::json progress_json(const BroadcastRecord& r, std::int64_t now_ms);
// A state from which nothing will change any more.
bool is_final_state(const std::string& state);

}  // namespace songda::broadcast
