// The evidence log in Redis as an RFC 9162 Merkle tree, its signer and its
// auditor.
//
// Keys (the store's Lua scripts append the leaves; Redis order IS the log):
//   sd:ev:leaves               list   record JCS bytes, index = leaf index
//   sd:ev:hashes               list   leaf hash hex (level 0), same index
//   sd:ev:lvl:<k>              list   k ≥ 1: entry i = hex hash of the complete subtree
//                                     [i·2^k, (i+1)·2^k); extended only by the lease holder
//   sd:ev:checkpoints          list   signed checkpoint JSON (checkpoint.h), index = sequence
//   sd:ev:checkpoint:latest    string the newest of them
//   sd:ev:checkpoint:published string how many checkpoints (from sequence 0) reached the witness topic
//   sd:ev:lease                string the instance id that may extend levels and sign (PX ttl)
//
// RedisNodeSource reads complete subtrees with one pipelined round trip per
// batch (LINDEX per node). Checkpointer: exactly one instance at a time holds
// the lease (SET NX PX, renewed by a compare-and-set script); every write it
// makes (levels, checkpoints, the published mark) is a script that first
// checks the lease is still its own, so a paused instance that lost the lease
// can never write. Publishing to the witness topic runs on its own thread and
// never holds up signing; what failed is published later, in order, by
// whichever instance holds the lease. rebuild_and_check() recomputes
// everything from the record bytes (for `songda ledger check`).
//
// Ownership: the classes keep a reference to a RedisPool that must outlive
// them. Thread-safety: RedisNodeSource is thread-safe; Checkpointer's public
// methods are thread-safe (tick() and publish_pending() may run on different
// threads; start()/stop() from one owner thread). Nothing throws except
// Checkpointer::start() (std::system_error when a thread cannot start).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "gateway/core/result.h"
#include "gateway/evidence/checkpoint.h"
#include "gateway/evidence/merkle.h"
#include "gateway/ingest/kafka.h"
#include "gateway/store/redis.h"

namespace songda::ledger {

inline constexpr const char* kLeavesKey = "sd:ev:leaves";
inline constexpr const char* kHashesKey = "sd:ev:hashes";
inline constexpr const char* kCheckpointsKey = "sd:ev:checkpoints";
inline constexpr const char* kLatestCheckpointKey = "sd:ev:checkpoint:latest";
inline constexpr const char* kPublishedKey = "sd:ev:checkpoint:published";
inline constexpr const char* kLeaseKey = "sd:ev:lease";
inline constexpr unsigned kMaxLevels = 64;

std::string level_key(unsigned level);                         // 0 → sd:ev:hashes, k → sd:ev:lvl:<k>
std::string delivery_index_key(std::string_view delivery_id);  // sd:ev:dlv:{<id>}

// ---- Reading the tree ----

class RedisNodeSource final : public evidence::NodeSource {
 public:
  // A node of an upper level not (yet) in its list is computed from the leaf hashes in a second round
  // trip when it spans at most `fallback_max_leaves` leaves; larger ones are "not_found".
  explicit RedisNodeSource(RedisPool& pool, std::uint64_t fallback_max_leaves = 1u << 16)
      : pool_(pool), fallback_max_leaves_(fallback_max_leaves) {}

  // LLEN sd:ev:hashes. Errors: the pool's (redis_unavailable is retryable).
  [[nodiscard]] Result<std::uint64_t> tree_size() const override;
  [[nodiscard]] Result<std::string> subtree_hash(unsigned level, std::uint64_t index) const override;
  // One pipeline of LINDEX for the whole batch (plus one more only for nodes whose level list is behind).
  // Errors: "not_found" (a node is not complete), "redis_error" (a stored hash is not 64 hex), the pool's.
  [[nodiscard]] Result<evidence::NodeMap> subtree_hashes(std::span<const evidence::NodeId> ids) const override;

 private:
  RedisPool& pool_;
  std::uint64_t fallback_max_leaves_;
};

// ---- Building the upper levels ----

struct Fence {
  std::string lease_key = kLeaseKey;
  std::string holder;    // the instance id that must hold the lease; "" = no fence (tools, tests)
  int renew_ttl_ms = 0;  // > 0: each fenced write also renews the lease
};

struct LevelExtension {
  std::uint64_t built_to = 0;       // every level is complete for a tree of this many leaves
  std::uint64_t log_size = 0;       // LLEN sd:ev:hashes when the step began
  std::uint64_t nodes_written = 0;  // upper-level nodes appended by this step
};

// One step: reads only the leaf hashes not yet covered (at most max_leaves of them) and the one
// unpaired node of each level, computes the new parents, and appends them in one script that
// first checks every level's length (and the fence). Three round trips. Errors: "lease_lost",
// "conflict" (another writer moved the levels; retry), "levels_inconsistent" (a level is longer
// than the one below allows; hint: songda ledger check --repair-levels), the pool's.
Result<LevelExtension> extend_levels(RedisPool& pool, std::uint64_t max_leaves, const Fence& fence = {});
// Steps until the levels cover the whole log as it was when called.
Result<LevelExtension> extend_levels_to_end(RedisPool& pool, std::uint64_t step_leaves, const Fence& fence = {});

// ---- Stored checkpoints ----

struct StoredCheckpoint {
  std::uint64_t sequence = 0;
  std::string json;  // exactly as stored (and published)
  evidence::Checkpoint checkpoint;
};

// nullopt when nothing was signed yet. Errors: "schema" (stored JSON unreadable), the pool's.
Result<std::optional<StoredCheckpoint>> read_latest_checkpoint(RedisPool& pool);
Result<std::vector<StoredCheckpoint>> read_checkpoints(RedisPool& pool, std::uint64_t from, std::uint64_t count);
// Attaches an RFC 3161 token (DER) to stored checkpoint `sequence` (and to latest when it is that one).
// The signature does not cover the token, so this changes nothing the key signed. Error "conflict"
// when the stored checkpoint changed meanwhile, "not_found".
Status attach_tsa_token(RedisPool& pool, std::uint64_t sequence, const std::string& token_der);

// ---- The signer ----

struct CheckpointerConfig {
  std::string origin = "songda";      // the log's name, first line of every signed body
  std::string instance_id;            // unique per process; empty: host name, pid and random
  int interval_ms = 2000;             // how often to look for new leaves (and sign when there are)
  int lease_ttl_ms = 10000;           // a holder that stops renewing loses the lease after this
  std::uint64_t step_leaves = 65536;  // leaves read per level-building round trip
};

// Sends one checkpoint JSON to the witnesses (the Kafka checkpoint topic). ok only when acknowledged.
using CheckpointPublisher = std::function<Status(const std::string& checkpoint_json)>;
// Reads the newest checkpoints the witnesses hold (JSON as published; a few from the end are enough).
using CheckpointWitness = std::function<Result<std::vector<std::string>>()>;
// Asks a TSA for an RFC 3161 token over the signed body (its SHA-256 imprint); returns the DER.
using Timestamper = std::function<Result<std::string>(const std::string& signed_body)>;

struct CheckpointerStats {
  bool leader = false;
  std::uint64_t signed_checkpoints = 0;  // by this instance
  std::uint64_t last_tree_size = 0;      // of the newest checkpoint this instance knows
  std::int64_t last_timestamp_ms = 0;
  std::uint64_t published = 0;  // by this instance
  std::uint64_t publish_failures = 0;
  std::uint64_t leases_acquired = 0;
  std::uint64_t leases_lost = 0;
  std::uint64_t errors = 0;
  std::uint64_t witnessed_tree_size = 0;  // of the newest checkpoint the witnesses held at the last lease taken
  std::uint64_t witness_conflicts = 0;    // leases refused because Redis's log is not the one the witnesses saw
};

class Checkpointer {
 public:
  Checkpointer(RedisPool& pool, evidence::SigningKey key, CheckpointerConfig config, CheckpointPublisher publish,
               std::function<std::int64_t()> clock = {});
  ~Checkpointer();
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  // Optional: RFC 3161 tokens, fetched on the publishing thread before a checkpoint is published.
  void set_timestamper(Timestamper t);
  // Optional (call before start()): the witnesses' newest checkpoints, read each time this instance takes the
  // lease. Redis alone cannot tell that it was restored from an older backup: its newest checkpoint is then older
  // than what was published, and the records after it are gone. Signing on would publish a second history (a
  // fork) under the same key. So a witnessed checkpoint newer than Redis's becomes the one every new checkpoint
  // must extend (logged as critical; the lost records cannot be re-made, so signing stays stopped until an
  // operator restores them), and one that Redis's log contradicts (another root at its size) means the lease is
  // given back (Error "witness_conflict"). Witnesses that cannot be read mean the lease is given back too
  // ("witness_unavailable"), to be tried again at the next tick. Checkpoints not signed by this log's key or of
  // another origin are ignored.
  void set_witness(CheckpointWitness w);

  struct Tick {
    bool leader = false;
    std::optional<StoredCheckpoint> signed_now;  // set when this tick signed a new checkpoint
  };
  // One round: take or renew the lease; while holding it, extend the levels to the end of the log
  // and sign a checkpoint if the log grew since the newest one. Errors: the pool's, "crypto".
  Result<Tick> tick();
  // Publishes, in sequence order, stored checkpoints not yet published (at most 64 per call), only
  // while holding the lease. Returns how many were published; a failed publish stops the call and
  // is retried by the next one. Errors: the publisher's, the pool's.
  Result<int> publish_pending();

  // Runs tick() every interval_ms on one thread and publish_pending() on another. stop() joins both
  // and gives the lease up so another instance takes over at once. Both are idempotent.
  void start();
  void stop();

  [[nodiscard]] CheckpointerStats stats() const;
  [[nodiscard]] bool is_leader() const { return leader_.load(); }
  [[nodiscard]] const std::string& instance_id() const { return config_.instance_id; }

 private:
  Result<bool> hold_lease();
  // With the lease newly taken: the witnessed checkpoint newer than `latest` (Redis's newest), if any.
  Result<std::optional<evidence::Checkpoint>> check_witnesses(const std::optional<StoredCheckpoint>& latest);
  void lost_lease();
  void wait(std::unique_lock<std::mutex>& lock, int ms);

  RedisPool& pool_;
  evidence::SigningKey key_;
  CheckpointerConfig config_;
  CheckpointPublisher publish_;
  std::function<std::int64_t()> clock_;
  Timestamper timestamper_;
  CheckpointWitness witness_;

  std::atomic<bool> leader_{false};
  mutable std::mutex state_mu_;  // guards last_ and stats_
  std::optional<evidence::Checkpoint> last_;
  CheckpointerStats stats_;
  std::mutex tick_mu_;     // one tick at a time
  std::mutex publish_mu_;  // one publish round at a time

  std::mutex run_mu_;
  std::condition_variable run_cv_;
  bool running_ = false;
  bool stopping_ = false;
  bool signed_since_publish_ = false;
  std::thread signer_;
  std::thread publisher_;
};

// A publisher that produces to `topic` (key = the log origin) and waits at most timeout_ms for the ack.
CheckpointPublisher kafka_checkpoint_publisher(KafkaProducer& producer, std::string topic, std::string key,
                                               int timeout_ms = 5000);

// Reads the newest `per_partition` messages of every partition of `topic` whose key is `key` (read_topic_tail).
CheckpointWitness kafka_checkpoint_witness(KafkaConfig config, std::string topic, std::string key,
                                           int timeout_ms = 5000);

// Reads SONGDA_EVIDENCE_KEY_FILE (PEM, required), SONGDA_EVIDENCE_ORIGIN (default "songda") and
// SONGDA_EVIDENCE_CHECKPOINT_MS (default 2000). Throws StartupError naming the variable and the fix.
struct SignerSetup {
  evidence::SigningKey key;
  CheckpointerConfig config;
};
SignerSetup signer_from_environment(const std::function<const char*(const char*)>& getenv);

// ---- The auditor ----

struct LedgerCheckOptions {
  std::optional<evidence::VerifyKey> key;  // also verify every checkpoint's signature
  bool repair_levels = false;              // rewrite sd:ev:lvl:* from the leaf hashes when they differ
  std::uint64_t chunk = 10000;             // leaves per round trip
};

struct LedgerCheckReport {
  std::uint64_t leaves = 0;                  // LLEN sd:ev:leaves
  std::uint64_t hashes = 0;                  // LLEN sd:ev:hashes
  std::uint64_t checked = 0;                 // leaves checked (the smaller, at the start)
  std::uint64_t leaf_mismatches = 0;         // bytes whose leaf hash differs from sd:ev:hashes
  std::vector<std::uint64_t> mismatched;     // the first 100 such indexes
  std::uint64_t records_invalid = 0;         // bytes that are not a valid, canonical record
  std::vector<std::string> record_problems;  // the first 20
  std::uint64_t level_nodes_checked = 0;
  std::uint64_t level_mismatches = 0;
  std::uint64_t level_nodes_missing = 0;  // behind the leaves (a checkpointer will add them)
  bool levels_repaired = false;
  std::uint64_t checkpoints = 0;
  std::uint64_t checkpoints_verified = 0;  // root (and signature, with a key) recomputed and equal
  std::vector<std::string> checkpoint_problems;
  bool ok = false;

  [[nodiscard]] std::string text() const;  // for a clerk or an operator, Chinese and English
  [[nodiscard]] nlohmann::json to_json() const;
};

// Recomputes every leaf hash from sd:ev:leaves (JCS bytes → RFC 9162 leaf hash) and compares it with
// sd:ev:hashes; rebuilds the tree from the leaf hashes and compares every stored level node and every
// stored checkpoint's root at its size (and signature, given a key). Reads in chunks; keeps about
// 64 bytes per leaf in memory. Errors: the pool's (the report is only for a completed check).
Result<LedgerCheckReport> rebuild_and_check(RedisPool& pool, const LedgerCheckOptions& options = {});

}  // namespace songda::ledger
