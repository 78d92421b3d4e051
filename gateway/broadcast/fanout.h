// The fan-out worker: turns a started broadcast into one delivery per member and
// channel, streaming the membership snapshot a page at a time, so its memory is
// one page whatever the group's size.
//
// Per page: read [cursor, cursor + page) of the snapshot (one round trip), plan it
// with the planner (deterministic ids from the broadcast's event id and the member
// id), record it with DeliveryStore::record_batch (dedup + delivery records + queues
// + CONSENT_RECORDED evidence, one round trip; the page has its own dedup key, so a
// page recorded again after a crash is a duplicate and changes nothing), then move
// the durable cursor (only if this instance still holds the lease). A kill -9
// anywhere in between resumes at the cursor: no member skipped, none served twice.
//
// One instance at a time works (the Redis lease sd:bc:lease); the others stand by.
// The same worker carries out cancels (takes every not-yet-claimed delivery of the
// broadcast off the queues) and marks a broadcast finished when none is left waiting.
//
// Thread-safety: run_once() from one thread at a time; stats() from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "gateway/broadcast/repository.h"
#include "gateway/broadcast/spec.h"
#include "gateway/config/config.h"
#include "gateway/ledger/evidence_makers.h"
#include "gateway/plan/planner.h"
#include "gateway/store/store.h"

namespace songda::broadcast {

struct FanoutOptions {
  int page_size = 500;       // members per page (one record_batch each)
  int lease_ttl_ms = 10000;  // a crashed holder's lease runs out after this
  int poll_ms = 200;         // idle wait between passes
  int pages_per_pass = 16;   // pages of one broadcast before looking at the others
  std::string instance_id;   // default: host:pid:random
};

struct FanoutStats {
  std::atomic<std::uint64_t> pages{0};           // pages recorded as new
  std::atomic<std::uint64_t> pages_resumed{0};   // pages found already recorded (a resumed crash)
  std::atomic<std::uint64_t> members{0};         // members planned
  std::atomic<std::uint64_t> deliveries{0};      // deliveries recorded
  std::atomic<std::uint64_t> cancelled{0};       // deliveries taken off the queues by cancels
  std::atomic<std::uint64_t> peak_in_flight{0};  // most members held in memory at once
  std::atomic<std::uint64_t> redis_calls{0};     // round trips made for fan-out pages
};

// The SUBMISSION_ACCEPTED record of a broadcast started over HTTP (a Kafka-started one has its event's),
// indexed under evt:<event_id> like a case event's, so every member's proof carries it.
std::vector<EvidenceLeaf> submission_evidence(const BroadcastSpec& spec, const std::string& digest, long long members,
                                              std::int64_t now_ms, const ledger::EvidenceContext& ctx);

class Fanout {
 public:
  Fanout(BroadcastStore& broadcasts, DeliveryStore& store, const Config& config, PlanOptions plan_options,
         FanoutOptions options);

  // Evidence with every page (CONSENT_RECORDED per delivery) and the broadcast's SUBMISSION_ACCEPTED.
  void set_evidence(ledger::EvidenceContext ctx) { evidence_ = std::move(ctx); }
  // When dispatch of a delivery may start (quiet hours); default: now.
  void set_due_policy(std::function<std::int64_t(const Delivery&, std::int64_t now_ms)> policy) {
    due_policy_ = std::move(policy);
  }
  // Tests: called after a page was recorded and before the cursor moves; returning false stops the pass
  // there (as a crash would).
  void set_page_hook(std::function<bool(const std::string& broadcast_id, long long from)> hook) {
    page_hook_ = std::move(hook);
  }

  // One pass over the active broadcasts (if this instance holds the lease). Returns pages and actions done.
  Result<int> run_once(std::int64_t now_ms);
  // Loops run_once until stop; gives the lease up on the way out.
  void run(const std::atomic<bool>& stop);

  [[nodiscard]] const FanoutStats& stats() const { return stats_; }
  [[nodiscard]] const std::string& instance_id() const { return options_.instance_id; }

 private:
  Result<int> fan_out(const BroadcastRecord& b, std::int64_t now_ms);
  Result<int> cancel(const BroadcastRecord& b, std::int64_t now_ms);
  const Config& routes_for(const BroadcastSpec& spec);

  BroadcastStore& broadcasts_;
  DeliveryStore& store_;
  const Config& config_;
  PlanOptions plan_options_;
  FanoutOptions options_;
  std::optional<ledger::EvidenceContext> evidence_;
  std::function<std::int64_t(const Delivery&, std::int64_t)> due_policy_;
  std::function<bool(const std::string&, long long)> page_hook_;
  std::map<std::string, Config> routes_;  // per broadcast id (a handful at a time)
  FanoutStats stats_;
};

}  // namespace songda::broadcast
