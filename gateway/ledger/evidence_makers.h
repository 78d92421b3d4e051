// Evidence makers: one evidence record (record.h) per lifecycle event of a
// delivery, built from what each pipeline hook sees, and turned into the
// EvidenceLeaf the store's Lua scripts append in the same round trip as the
// status change they prove.
//
//   hook (who calls)                       records
//   accept   IngestPipeline::set_evidence  SUBMISSION_ACCEPTED (event-level: document id + SHA-256)
//                                          + one CONSENT_RECORDED per delivery (basis, scope, reference)
//   reject   IngestPipeline::set_evidence  SUBMISSION_REJECTED (code, message, topic/partition/offset)
//   outcome  Dispatcher::set_evidence      DISPATCHED + PROVIDER_ACCEPTED (SENT)
//                                          DISPATCHED + DELIVERED (in-app inbox write, SMTP final answer)
//                                          DISPATCHED + DELIVERY_FAILED (verbatim reason)
//   receipt  ReceiptProcessor              DELIVERED / DELIVERY_FAILED (raw receipt hash, provider time,
//                                          gateway receive time)
//   read     DeliveryStore::mark_read      READ (identified by the app inbox API)
//   fallback FallbackTimers                FALLBACK (released or cancelled, from delivery and its status)
//
// Ids are make_evidence_id(subject, type, discriminator) with a discriminator
// that is the same when the same fact is reported again (a replayed Kafka
// message, a resumed send, a repeated receipt), so a replay gives the same id.
// Addresses appear only masked plus HMAC-SHA256(salt, address); verbatim
// provider reasons keep their words but have the raw address masked in them
// (the SHA-256 of the unmasked text is kept beside them). Text that is not
// valid UTF-8 (a GBK reason) is repaired with U+FFFD, its raw bytes hashed.
// Every record passes validate_record; one that would not is dropped (and
// logged) rather than poisoning the log.
//
// Event-level SUBMISSION_ACCEPTED leaves are indexed under the pseudo delivery
// id event_index_id(event_id) = "evt:<event_id>" (list sd:ev:dlv:{evt:<id>}),
// so a proof bundle can find the record that attests the document hash.
//
// Ownership: plain values in and out. Thread-safety: the makers are pure
// functions (no I/O), safe from any thread. install_evidence() wires closures
// that share a thread-safe delivery cache; call it once during start-up.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "channels/channel.h"
#include "gateway/core/event.h"
#include "gateway/dispatch/dispatcher.h"
#include "gateway/dispatch/timers.h"
#include "gateway/evidence/record.h"
#include "gateway/ingest/ingest.h"
#include "gateway/ingest/kafka.h"
#include "gateway/plan/planner.h"
#include "gateway/receipts/receipts.h"
#include "gateway/store/store.h"

namespace songda::ledger {

struct EvidenceContext {
  std::string salt;  // SONGDA_EVIDENCE_SALT: the HMAC key of address hashes; keep it stable for the log's life
};

// Reads SONGDA_EVIDENCE_SALT. Throws StartupError (with a hint) when it is unset or shorter than 16 bytes.
EvidenceContext evidence_context_from_environment(const std::function<const char*(const char*)>& getenv);

// "evt:" + event_id: the pseudo delivery id that indexes event-level records (sd:ev:dlv:{evt:<id>}).
std::string event_index_id(std::string_view event_id);

// RFC 3339 ("2026-11-28T09:00:00+08:00", "…T01:00:00.5Z") → unix ms; nullopt when malformed.
std::optional<std::int64_t> parse_rfc3339_ms(std::string_view text);

// ---- Records (pure). Each returned record passes validate_record. ----

std::vector<evidence::EvidenceRecord> accepted_records(const CaseEvent& event, const Plan& plan, std::int64_t now_ms,
                                                       const EvidenceContext& ctx);
// Event id, court and case are taken from the message when it parses as JSON; otherwise the record names
// the Kafka coordinates ("kafka:<topic>/<partition>/<offset>") and court/case "_".
evidence::EvidenceRecord rejected_record(const KafkaMessage& message, const Error& error, std::int64_t now_ms);
// status: SENT, DELIVERED or FAILED (others give no records).
std::vector<evidence::EvidenceRecord> outcome_records(const Delivery& d, const SendOutcome& o,
                                                      const std::string& status, std::int64_t now_ms,
                                                      const EvidenceContext& ctx);
// provider: the provider that took the delivery ("" → taken from the receipt key's prefix).
evidence::EvidenceRecord receipt_record(const Delivery& d, const std::string& provider, const ReceiptUpdate& u,
                                        std::int64_t now_ms);
evidence::EvidenceRecord read_record(const Delivery& d, std::int64_t now_ms);
// The party pages (gateway/web): the recipient opened the signed link /r/{token} (READ), downloaded the
// document from it (RETRIEVED, with the SHA-256 of the bytes actually served), or pressed 「确认收到」
// (ACKNOWLEDGED). `client` is what the browser said about itself (user agent, truncated), kept as context.
evidence::EvidenceRecord link_read_record(const Delivery& d, std::int64_t now_ms, const std::string& client);
evidence::EvidenceRecord retrieved_record(const Delivery& d, const std::string& served_sha256, std::uint64_t bytes,
                                          std::int64_t now_ms, const std::string& client);
evidence::EvidenceRecord acknowledged_record(const Delivery& d, std::int64_t now_ms, const std::string& client);
// held: the fallback delivery whose timer fired.
evidence::EvidenceRecord fallback_record(const Delivery& held, const TimerOutcome& t, std::int64_t now_ms);

// ---- Leaves: validated, canonical (JCS) bytes and RFC 9162 leaf hash. ----
// A record that fails validation is a bug in its maker: std::logic_error is thrown. Where nothing has happened yet
// (ingest, a party page) that refuses the event (DLQ, internal_error) or the request (500); where the fact has
// already happened (a send, a receipt, a fallback fired) it is recorded without the record, and its timeline says
// so (the dispatcher, ReceiptProcessor, FallbackTimers contain it per delivery).

std::vector<EvidenceLeaf> to_leaves(const std::vector<evidence::EvidenceRecord>& records);

// The hook bodies (same arguments as the hooks, plus the context).
std::vector<EvidenceLeaf> accepted_evidence(const CaseEvent& event, const Plan& plan, std::int64_t now_ms,
                                            const EvidenceContext& ctx);
std::vector<EvidenceLeaf> rejected_evidence(const KafkaMessage& message, const Error& error, std::int64_t now_ms);
std::vector<EvidenceLeaf> outcome_evidence(const Delivery& d, const SendOutcome& o, const std::string& status,
                                           std::int64_t now_ms, const EvidenceContext& ctx);
std::vector<EvidenceLeaf> receipt_evidence(const Delivery& d, const std::string& provider, const ReceiptUpdate& u,
                                           std::int64_t now_ms);
// For DeliveryStore::mark_read(app_user, id, now_ms, read_evidence(delivery, now_ms)).
std::vector<EvidenceLeaf> read_evidence(const Delivery& d, std::int64_t now_ms);
std::vector<EvidenceLeaf> link_read_evidence(const Delivery& d, std::int64_t now_ms, const std::string& client);
std::vector<EvidenceLeaf> retrieved_evidence(const Delivery& d, const std::string& served_sha256, std::uint64_t bytes,
                                             std::int64_t now_ms, const std::string& client);
std::vector<EvidenceLeaf> acknowledged_evidence(const Delivery& d, std::int64_t now_ms, const std::string& client);
std::vector<EvidenceLeaf> fallback_evidence(const Delivery& held, const TimerOutcome& t, std::int64_t now_ms);

// Sets every hook: ingest (accepted + rejected), dispatch outcomes, receipts and fallback timers.
// Receipts and timers name only a delivery id, so those hooks look the delivery up in `store`
// (one round trip per receipt, cached: delivery records never change); when Redis does not answer
// after three tries those hooks return the error, so the receipt push or the timer round is tried again.
// READ is not a hook: pass read_evidence() to DeliveryStore::mark_read where the inbox route calls it.
void install_evidence(IngestPipeline& ingest, Dispatcher& dispatcher, ReceiptProcessor& receipts,
                      FallbackTimers& timers, DeliveryStore& store, const EvidenceContext& ctx);

}  // namespace songda::ledger
