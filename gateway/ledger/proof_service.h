// Proofs of service from the Redis evidence log: the proof bundle of one
// delivery (every record of that recipient for that event, on every channel,
// with inclusion proofs against the latest signed checkpoint), the printable
// certificate, a case's service summary, and the log's public material
// (latest checkpoint, consistency proofs, public key) — as functions and as
// HTTP routes.
//
// A record newer than the latest checkpoint cannot be proven yet; then the
// answer is "pending_checkpoint" (HTTP 202 with Retry-After) rather than a
// bundle that would not verify. The checkpointer signs every couple of
// seconds, so a retry shortly after succeeds.
//
// Round trips for one bundle: the delivery's channels + their leaf indexes +
// the latest checkpoint (1), the leaves by index (1), the inclusion proofs
// (2: log size and all nodes in one batch).
//
// Ownership: keeps references to the pool and store, which must outlive it.
// Thread-safety: all methods are thread-safe (HTTP handlers call them).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "gateway/core/result.h"
#include "gateway/http/server.h"
#include "gateway/ledger/certificate.h"
#include "gateway/ledger/redis_log.h"
#include "gateway/store/redis.h"
#include "gateway/store/store.h"

namespace songda::ledger {

struct ProofOptions {
  int retry_after_s = 3;  // advice on a pending_checkpoint answer
};

struct RecipientProof {
  enum class State { kReady, kPendingCheckpoint };
  State state = State::kPendingCheckpoint;
  std::string delivery_id;            // the delivery asked for
  nlohmann::json bundle;              // kReady: the proof bundle (bundle.h)
  std::uint64_t checkpoint_size = 0;  // the latest checkpoint's tree size (0: none signed yet)
  std::uint64_t newest_leaf = 0;      // the newest record's leaf index
  CertificateFacts facts;
};

class ProofService {
 public:
  // `key` is the log's signing key: bundles are attested with it (bundle.h), and its public half is
  // served at /v1/evidence/public-key. Throws StartupError if the public key cannot be exported.
  ProofService(RedisPool& pool, DeliveryStore& store, evidence::SigningKey key, ProofOptions options);

  // The bundle for `delivery` (as read from the store; the caller has checked access), attested
  // complete as of the moment its records were read.
  // Errors: "no_evidence" (the log holds no record of this recipient), "schema" (a stored record
  // is unreadable), "crypto" (signing failed), the pool's.
  Result<RecipientProof> proof_for(const Delivery& delivery);

  // Every recipient's service state for a case in the given courts, decided from the log's records.
  Result<nlohmann::json> service_summary(const std::vector<std::string>& courts, const std::string& case_number);

  Result<std::optional<StoredCheckpoint>> latest_checkpoint();
  // {"from","to","proof":[hex…],"from_root","to_root","checkpoint"?}: to = 0 means the latest
  // checkpoint's size. Errors: "invalid_argument" (0 < from ≤ to ≤ latest signed size is required),
  // "not_found" (nothing signed yet), the pool's.
  Result<nlohmann::json> consistency(std::uint64_t from, std::uint64_t to);

  [[nodiscard]] const ProofOptions& options() const { return options_; }
  [[nodiscard]] const std::string& public_key_pem() const { return public_key_pem_; }
  DeliveryStore& store() { return store_; }

 private:
  RedisPool& pool_;
  DeliveryStore& store_;
  evidence::SigningKey key_;
  std::string public_key_pem_;
  ProofOptions options_;
};

// Adds, all with the same Bearer authentication as the other /v1 routes (401 without a key,
// 403 for another court's data, 404 when unknown):
//   GET /v1/deliveries/{id}/proof              the JSON bundle (200), or 202 pending_checkpoint
//   GET /v1/deliveries/{id}/proof.html         the 电子送达凭证 (200), or a 202 page that refreshes
//   GET /v1/cases/{case_number}/service-summary
//   GET /v1/evidence/checkpoints/latest        the newest signed checkpoint (404 before the first)
//   GET /v1/evidence/consistency?from=M&to=N   a consistency proof between two signed sizes
//   GET /v1/evidence/public-key                the PEM public key (text)
// Register before ApiServer::start().
void register_proof_routes(ApiServer& server, ProofService& proofs);

}  // namespace songda::ledger
