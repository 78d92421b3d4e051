// DeliveryStore: the durable record of events, deliveries, their status
// histories, the dispatch queues, the in-app inboxes and the evidence leaves,
// all in Redis. Every multi-key update is one Lua script, and every batch is
// one round trip (record_batch, claim_due, complete_batch).
//
// Keys (prefix sd:, hash tags keep one delivery's keys in one cluster slot):
//   sd:evt:{<event_id>}            hash   digest, at, case, deliveries        (dedup + conflict; no TTL)
//   sd:dlv:{<id>}                  hash   record, status, attempts, ...       (no TTL: legal record)
//   sd:dlv:{<id>}:hist             list   status history, JSON entries
//   sd:case:{<court>|<case>}       zset   delivery ids of one case
//   sd:case:{<court>|<case>}:unreachable  hash  "<event id>|<recipient id>" -> {event_id, recipient_id, name, role,
//                                  at}: recipients of the case's events no delivery could be planned for
//   sd:q:<channel>                 zset   delivery id -> due time (ms); a claim leases it by moving it ahead
//   sd:inbox:{<user>}              zset   delivery id -> time;  sd:inbox:{<user>}:msg hash id -> message JSON;
//                                  :unread zset (not read yet); :court:<court> and :court:<court>:unread zsets, the
//                                  same for one court's messages (written once with the message, read removes);
//                                  :indexed string, set once the lists were filled for messages older than them
//   sd:ev:leaves / sd:ev:hashes    list   evidence records (canonical JSON) and their leaf hashes (hex)
//   sd:ev:dlv:{<id>}               list   evidence leaf indexes of one delivery
//   sd:bc:{<broadcast>}:counts     hash   status -> deliveries of a broadcast (its deliveries carry field bcast)
//   sd:cb:{<provider>:<ts>:<nonce>} string SHA-256 of the body a signed callback first came with (TTL 15 min)
//   sd:rcpt:parked / :parked:at / :parked:tried   receipts naming no known delivery yet (JSON / parked at / next
//                                  try); sd:rcpt:unmatched (+ :at, :dated): those given up on after 7 days, kept
//                                  30 days for an operator, then deleted
//
// Statuses only move forward: ACCEPTED < SENT < DELIVERED < READ < ACKNOWLEDGED;
// FAILED only from ACCEPTED or SENT; from FAILED only to DELIVERED, READ or ACKNOWLEDGED (the operator
// reported its arrival after all, or the recipient opened or acknowledged it: a carrier's failure report is not
// the last word over that). A repeated update is a no-op. A receipt that does not move the status is still kept,
// once, with its evidence, when it is a fact the proof needs: an arrival reported after the recipient read it,
// or a failure reported after the arrival (complete_batch; the status stays).
//
// Thread-safety: all methods are thread-safe (each uses its own pooled connection).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "gateway/core/event.h"
#include "gateway/core/result.h"
#include "gateway/store/redis.h"

namespace songda {

// One evidence leaf to append with a batch.
struct EvidenceLeaf {
  std::string delivery_id;  // "" for event-level evidence
  std::string canonical;    // the record's canonical bytes
  std::string leaf_hash_hex;
};

struct ParkedReceipts {
  std::vector<std::pair<std::string, std::string>> receipts;  // receipt key, receipt JSON
  long long given_up = 0;                                     // moved to sd:rcpt:unmatched by this call
  long long forgotten = 0;  // unmatched receipts deleted by this call (kept long enough; they hold phone numbers)
};

// A recipient of an event no delivery could be planned for (no route for the role, no contact on its channels).
struct UnreachableRecipient {
  std::string id;
  std::string name;
  std::string role;
};

struct EventToRecord {
  std::string event_id;
  std::string digest;
  std::string court_id;
  std::string case_number;
  std::vector<Delivery> deliveries;
  std::vector<std::int64_t> due_ms;  // per delivery: when dispatch may start (quiet hours push it later); 0 = now
  std::vector<EvidenceLeaf> evidence;
  // Set by a broadcast's fan-out: each new delivery is tagged with it, and the status counts in
  // broadcast_counts_key(broadcast_id) follow every status change of the delivery.
  std::string broadcast_id;
  // Named in the case's unreachable list (case_unreachable) when the event is new, for the clerk to serve them by
  // other means. (A broadcast's members have their own list.)
  std::vector<UnreachableRecipient> unreachable;
  std::size_t planned_bytes = 0;  // about what its delivery records take (Plan::planned_bytes); not stored
};

enum class RecordOutcome { kNew, kDuplicate, kConflict };

struct ClaimedDelivery {
  Delivery delivery;
  std::string status;
  int attempts = 0;
  // > 0: an earlier attempt, claimed then, has no recorded outcome (the process died mid-send); the
  // provider may have the message already. Cleared by the first completion that settles it.
  std::int64_t in_doubt_since_ms = 0;
  // Not empty: the stored record does not read (why), and only delivery.id is set. Songda wrote it, so this is
  // a bug, or a record written by a newer version during a roll-out. It must not be sent or failed: it stays
  // in the queue, under the lease of this claim, for an instance that can read it.
  std::string unreadable;
};

struct Completion {
  std::string id;
  std::string channel;
  std::string status;            // SENT, DELIVERED, FAILED; ignored when retry_at_ms > 0
  std::string detail;            // shown in the timeline (provider's verbatim reason on failure)
  std::int64_t retry_at_ms = 0;  // > 0: keep queued and try again then
  bool still_in_doubt = false;   // with retry_at_ms: the earlier attempt's outcome is still unknown
  std::string provider;
  std::string provider_message_id;
  int segments = 0;         // SMS billed segments, recorded with the delivery
  std::string receipt_key;  // how the provider's receipt will name it: "aliyun:<BizId>:<phone>", "tencent:<sid>",
                            // "wechat:<MsgID>"
  std::int64_t event_time_ms = 0;  // provider's time where known, else now
  std::vector<EvidenceLeaf> evidence;
};

struct TimerOutcome {
  std::string delivery_id;  // the held (fallback) delivery
  bool released = false;    // true: sent now; false: cancelled
  std::string from_id;
  std::string from_status;
  std::int64_t fired_ms = 0;
};

struct StatusEntry {
  std::string status;
  std::int64_t at_ms = 0;
  std::string detail;
};

struct DeliveryView {
  Delivery delivery;
  std::string status;
  int attempts = 0;
  std::int64_t created_ms = 0;
  std::int64_t updated_ms = 0;
  std::string provider;
  std::string provider_message_id;
  int segments = 0;  // SMS billed segments (0 elsewhere)
  std::vector<StatusEntry> history;
  std::vector<std::int64_t> evidence_indexes;
};

struct InboxMessage {
  std::string id;  // the delivery id
  nlohmann::json json;
};

// One page of an inbox, newest first, with the counts of the whole list it was taken from.
struct InboxPage {
  std::vector<InboxMessage> messages;
  long long total = 0;   // messages in the list
  long long unread = 0;  // of those, not read yet
};

class DeliveryStore {
 public:
  explicit DeliveryStore(RedisPool& pool) : pool_(pool) {}

  // One round trip for the whole batch. Returns one outcome per event, in order.
  Result<std::vector<RecordOutcome>> record_batch(const std::vector<EventToRecord>& events, std::int64_t now_ms);

  // The digest event_id was recorded with; nullopt when it was not recorded.
  Result<std::optional<std::string>> recorded_digest(const std::string& event_id);
  // Leases up to `limit` due deliveries of one channel for `lease_ms`. With rate_per_sec > 0, a token
  // bucket shared by all instances (sd:rate:<channel>) caps how many it hands out. Only ACCEPTED deliveries are
  // handed out: one found settled (an earlier claimer's attempt was recorded after its lease ran out) leaves the
  // queue. Likewise complete_batch queues a retry only while the delivery is still ACCEPTED.
  Result<std::vector<ClaimedDelivery>> claim_due(const std::string& channel, std::int64_t now_ms, int lease_ms,
                                                 int limit, double rate_per_sec = 0);

  // Up to `wanted` tokens from the token bucket `bucket` (rate_per_sec, burst one second's worth), shared by
  // every instance (sd:rate:<bucket>); used for per-provider rate limits.
  Result<long long> take_tokens(const std::string& bucket, double rate_per_sec, long long wanted);

  // Fires due fallback timers, each exactly once across instances: the held delivery is either
  // released to its queue (its `from` did not get there in time) or CANCELLED (it did).
  Result<std::vector<TimerOutcome>> fire_due_timers(std::int64_t now_ms, int limit);

  // A fired timer stays "unsettled" (sd:timers:fired) until settle_timers appends its FALLBACK evidence: those
  // fired before fired_before_ms and still unsettled (their firer died in between), up to about `limit`.
  Result<std::vector<TimerOutcome>> unsettled_timers(std::int64_t fired_before_ms, int limit);
  // Appends each fired timer's evidence, once: a timer already settled (by another instance) is skipped.
  Status settle_timers(const std::vector<std::pair<std::string, std::vector<EvidenceLeaf>>>& settled);

  // A signed callback's signature (`id`) and the SHA-256 of the body it came with.
  struct CallbackBinding {
    std::string id;
    std::string body_sha256;
  };
  struct ReceiptLookup {
    std::vector<std::string> found;  // "delivery_id|provider" per receipt key ("" where unknown), in order
    std::vector<bool> bound;         // per binding: its signature is new or came with this body before
  };
  // Looks the receipt keys up and, in the same round trip, binds each signature to the body it first came with
  // for ttl_s seconds (WeChat's signature does not cover the body: the same signature with another body is a
  // forgery; with the same one, the provider's retry).
  Result<ReceiptLookup> lookup_receipt_keys(const std::vector<std::string>& keys,
                                            const std::vector<CallbackBinding>& bindings = {}, int ttl_s = 900);

  // Deliveries a provider accepted before older_than_ms (but within as long again before it) that still
  // have no receipt; older ones are dropped from this index (their status stays SENT).
  Result<long long> sent_without_receipt(const std::string& provider, std::int64_t older_than_ms);

  // Receipts that named no known delivery when they came (the provider was faster than our bookkeeping, or a
  // crash lost the send's outcome): kept under their receipt key, with the receipt as JSON, first tried 1 s later.
  Status park_receipts(const std::vector<std::pair<std::string, std::string>>& key_and_json, std::int64_t now_ms);
  // Up to `limit` parked receipts due for a try by now_ms, earliest first; each is next due after as long as it
  // has been parked (1 s to 10 min). Those parked longer than give_up_after_ms are moved to sd:rcpt:unmatched
  // (kept for an operator, no longer tried) and only counted. Unmatched ones older than forget_after_ms are
  // deleted (up to `limit` per call): they are not evidence of any delivery of ours, and they hold phone numbers.
  Result<ParkedReceipts> take_parked_receipts(std::int64_t now_ms, int limit, std::int64_t give_up_after_ms,
                                              std::int64_t forget_after_ms);
  Status unpark_receipts(const std::vector<std::string>& keys);
  Result<long long> parked_receipt_count();
  Result<long long> unmatched_receipt_count();  // given up on (sd:rcpt:unmatched)

  // Appends evidence leaves on their own (e.g. FALLBACK records after a timer fired).
  Status append_evidence(const std::vector<EvidenceLeaf>& leaves);

  // Applies outcomes (status, retry schedule, evidence) in one round trip.
  Status complete_batch(const std::vector<Completion>& completions, std::int64_t now_ms);

  // Writes messages to in-app inboxes (idempotent: an existing message is kept).
  Status write_inbox(const std::vector<Delivery>& deliveries, std::int64_t now_ms);

  // Marks an inbox message read; moves its delivery to READ and appends `evidence` (only the first time).
  // Error not_found.
  Result<nlohmann::json> mark_read(const std::string& app_user, const std::string& delivery_id, std::int64_t now_ms,
                                   const std::vector<EvidenceLeaf>& evidence = {});

  // Moves one delivery forward to `status` (the ranks above; a repeat or a step back changes nothing) and, only
  // when it moved, adds a history entry (`detail`) and appends `evidence` — all in one Lua call. With an empty
  // `status`, records a fact that is not a status (e.g. RETRIEVED) once per delivery: the first call sets the hash
  // field `once_field`, adds a history entry named `history_status` and appends `evidence`; later calls do nothing.
  // Returns true when something was recorded. Error not_found when there is no such delivery.
  Result<bool> advance_status(const std::string& delivery_id, const std::string& status, const std::string& detail,
                              std::int64_t now_ms, const std::vector<EvidenceLeaf>& evidence,
                              const std::string& once_field = "", const std::string& history_status = "");

  // A page of the user's inbox, newest first: every message, or with `court_id` only that court's (the page is
  // taken from the court's own list, so a court's pages are full and its counts its own).
  Result<InboxPage> inbox(const std::string& app_user, const std::string& court_id, int offset, int limit);
  Result<std::optional<DeliveryView>> get_delivery(const std::string& id);
  // Just the delivery record and the provider that took it ("" if none yet) of each id, in one round trip;
  // nullopt for an id with no record. What receipt evidence needs, without the history.
  struct SentRecord {
    Delivery delivery;
    std::string provider;
  };
  Result<std::vector<std::optional<SentRecord>>> sent_records(const std::vector<std::string>& ids);
  Result<std::vector<DeliveryView>> case_deliveries(const std::string& court_id, const std::string& case_number);
  // The case's unreachable recipients ({event_id, recipient_id, name, role, at}), by event and recipient id.
  Result<std::vector<nlohmann::json>> case_unreachable(const std::string& court_id, const std::string& case_number);
  // Courts that have a case with this number (used to scope a lookup by case number alone).
  Result<std::vector<std::string>> courts_of_case(const std::string& case_number);

  // Number of deliveries waiting in a channel's queue (for /metrics and tests).
  Result<long long> queue_length(const std::string& channel);

  // Moves to CANCELLED, in one round trip, those of `ids` that no dispatcher has claimed yet (ACCEPTED with
  // 0 attempts, queued or held for a fallback) and takes them off their queue or timer; a delivery a provider
  // may already have (attempts > 0) or that is past ACCEPTED is left alone. Returns how many were cancelled.
  Result<long long> cancel_unclaimed(const std::vector<std::string>& ids, std::int64_t now_ms,
                                     const std::string& detail);

  // The hash of a broadcast's per-status delivery counts (status -> count), kept by the status scripts.
  static std::string broadcast_counts_key(const std::string& broadcast_id);

  static std::string case_key(const std::string& court_id, const std::string& case_number);

 private:
  RedisPool& pool_;
};

}  // namespace songda
