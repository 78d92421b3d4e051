// The proof bundle (电子送达凭证 in machine form): everything a clerk, a judge or
// a party needs to check, offline and with only the log's public key, that a
// document was served when the bundle says. build_bundle() assembles it;
// verify_bundle() recomputes every claim and reports each check in words.
//
// Bundle JSON (version "songda.proof-bundle/v2"; hashes lowercase hex):
//   {
//     "version": "songda.proof-bundle/v2",
//     "delivery": {"delivery_id","event_id","recipient_id","channel","court_id","case_number"},
//     "records": [ <evidence record JSON, record.h>, ... ],          // every record of the
//                                                                     // recipient's deliveries of the document
//     "leaves": [ {"index": 17, "leaf_hash": "<64 hex>", "inclusion_proof": ["<64 hex>", ...]}, ... ],
//                                                                     // leaves[i] belongs to records[i]
//     "checkpoint": <checkpoint JSON, checkpoint.h>,                 // proofs are against its tree_size
//     "key_id": "<16 hex>",
//     "service": <ServiceDecision JSON, rules.h>,
//     "document_sha256": "<64 hex>",                                 // optional
//     "attestation": {"key_id": "<16 hex>", "attested_at": <unix ms>, "signature": "<base64>"}
//   }
// The attestation is the log key's statement that `records` are every record of
// the recipient's deliveries of this event in the log (and the event's
// acceptance) as of attested_at, all covered by the checkpoint, and that
// `service` is what they decide. Its Ed25519 signature is over
//     "songda.proof-bundle/v2 attestation\n" + JCS(the bundle without attestation.signature)
// so a record left out, added or changed, or a rewritten conclusion, breaks it.
// Without it, leaving out a record (a consent, an arrival) and rewriting
// `service` to match would still verify: every remaining record is genuine.
// Bundles of v1 (the same without attestation) still verify, with completeness
// reported as not checked.
// Parsing is strict (unknown members, uppercase hex, non-canonical base64 are
// refused) so that any changed byte is either refused or changes a checked value.
//
// Ownership: plain values in and out; the verifier keeps nothing and does no
// I/O (the caller reads the bundle, key and document). Thread-safety: pure
// functions on values, safe from any thread. Never throw.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "gateway/core/result.h"
#include "gateway/evidence/checkpoint.h"
#include "gateway/evidence/merkle.h"
#include "gateway/evidence/record.h"

namespace songda::evidence {

inline constexpr const char* kBundleVersion = "songda.proof-bundle/v2";
inline constexpr const char* kBundleVersionV1 = "songda.proof-bundle/v1";  // not attested; still verified
inline constexpr const char* kAttestationContext = "songda.proof-bundle/v2 attestation\n";

// The delivery the bundle was asked for. delivery_id must equal
// songda::delivery_id(event_id, recipient_id, channel); the other deliveries in
// the records must be the same recipient's (same event, other channels).
struct DeliveryRef {
  std::string delivery_id;
  std::string event_id;
  std::string recipient_id;
  std::string channel;
  std::string court_id;
  std::string case_number;
};

// A record with its place in the log and its inclusion proof (raw hashes).
struct ProvenRecord {
  EvidenceRecord record;
  std::uint64_t index = 0;
  std::vector<std::string> inclusion_proof;
};

struct BundleInput {
  DeliveryRef delivery;
  std::vector<ProvenRecord> records;
  Checkpoint checkpoint;
  std::optional<std::string> document_sha256;  // 64 lowercase hex
  std::int64_t attested_at_ms = 0;             // when the records were read: complete as of this time
};

// Inclusion proofs for records at the given leaf indexes, in a tree of
// `tree_size` leaves, fetched in ONE subtree_hashes() call.
Result<std::vector<ProvenRecord>> prove_records(const NodeSource& source,
                                                const std::vector<std::pair<EvidenceRecord, std::uint64_t>>& records,
                                                std::uint64_t tree_size);

// Decides the service from the records, assembles the JSON and signs the
// attestation with `key` (the log's key: the checkpoint's key id). Error "jcs" /
// "schema" if a record cannot be canonicalized or is malformed, "crypto".
Result<nlohmann::json> build_bundle(const BundleInput& in, const SigningKey& key);

// The bytes an attestation signs: kAttestationContext + JCS(bundle without attestation.signature).
Result<std::string> attestation_message(const nlohmann::json& bundle);

struct Check {
  std::string name;  // e.g. "checkpoint signature 签名"
  bool ok = false;
  std::string detail;  // what was compared, and on failure why it differs
  // False for something present that could not be checked with what was given (an RFC 3161 token without the
  // TSA's CA certificate): shown as [--], neither passed nor failed, and its content is not stated as fact.
  bool checked = true;
};

struct VerifyReport {
  bool ok = false;  // every check passed (and there was at least one)
  std::vector<Check> checks;

  [[nodiscard]] std::string text() const;  // one line per check: "[OK] name: detail" / "[FAIL] …"
  [[nodiscard]] nlohmann::json to_json() const;
};

struct EarlierCheckpoint {
  std::string checkpoint_json;                     // a checkpoint someone kept from before
  std::vector<std::string> consistency_proof_hex;  // from its size to the bundle's
};

struct VerifyOptions {
  std::optional<std::string> document_bytes;  // the served document, to compare with document_sha256
  std::optional<EarlierCheckpoint> earlier;   // to show the log only grew since
  std::optional<std::string> tsa_ca_pem;      // trust anchor for the checkpoint's RFC 3161 token
};

// Checks, each reported: format; public key and key id; checkpoint signature;
// completeness (the attestation; v1: not checked); per record: canonical bytes → leaf hash, inclusion proof → signed
// root; delivery ids ↔ recipient; document hash (claimed, attested by a record, and the given bytes); TSA token
// (imprint; signature when a CA is given); consistency with an earlier checkpoint; the service decision recomputed with
// the rules equals the claim.
VerifyReport verify_bundle(std::string_view bundle_json, std::string_view public_key_pem,
                           const VerifyOptions& options = {});
// The same for a bundle already parsed.
VerifyReport verify_parsed_bundle(const nlohmann::json& bundle, std::string_view public_key_pem,
                                  const VerifyOptions& options = {});

}  // namespace songda::evidence
