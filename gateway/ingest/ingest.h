// The ingest pipeline: one batch of Kafka messages in, and for each message
// either its deliveries durably recorded (one Redis round trip for the whole
// batch) or the message in the DLQ with the reason. Only when process()
// returns ok may the caller store the batch's offsets.
//
// A transient failure (Redis or the DLQ producer unavailable) returns an error
// and changes nothing that matters: the caller retries the same batch, and the
// dedup in record_batch makes the retry safe.
//
// Thread-safety: one IngestPipeline per consumer thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "gateway/config/config.h"
#include "gateway/ingest/kafka.h"
#include "gateway/ingest/validator.h"
#include "gateway/plan/planner.h"
#include "gateway/store/store.h"

namespace songda {

// Where refused messages go. KafkaDeadLetters is the real one; tests may use a fake.
class DeadLetterSink {
 public:
  virtual ~DeadLetterSink() = default;
  virtual Status send(const std::vector<OutgoingMessage>& messages) = 0;
};

class KafkaDeadLetters final : public DeadLetterSink {
 public:
  explicit KafkaDeadLetters(KafkaProducer& producer) : producer_(producer) {}
  Status send(const std::vector<OutgoingMessage>& messages) override { return producer_.produce_all(messages); }

 private:
  KafkaProducer& producer_;
};

// Builds the evidence leaves recorded with an accepted event (consent, submission accepted).
using EvidenceMaker = std::function<std::vector<EvidenceLeaf>(const CaseEvent&, const Plan&, std::int64_t now_ms)>;
// Builds the evidence leaf of a refused message (submission rejected).
using RejectionEvidenceMaker =
    std::function<std::vector<EvidenceLeaf>(const KafkaMessage&, const Error&, std::int64_t now_ms)>;

struct IngestCounters {
  std::atomic<std::uint64_t> messages{0};
  std::atomic<std::uint64_t> accepted{0};
  std::atomic<std::uint64_t> duplicates{0};
  std::atomic<std::uint64_t> rejected{0};
  std::atomic<std::uint64_t> deliveries{0};
  std::atomic<std::uint64_t> batches{0};
};

// Above this many planned bytes of delivery records, a batch is recorded in more than one call.
inline constexpr std::size_t kMaxRecordBytesPerCall = 128ULL * 1024 * 1024;

inline constexpr const char* kDeadLetterSchema = "songda.dead-letter/v1";
// Kafka's default record limit (librdkafka's message.max.bytes and the broker's) is ~1,000,000 bytes.
inline constexpr std::size_t kMaxDeadLetterBytes = 900'000;

// The DLQ message for a refused input (schemas/dead-letter.v1.schema.json), the reason in headers and body:
// - key and headers: the original's, plus songda.error.code, songda.error.message,
//   songda.source.topic/partition/offset and songda.dead-letter (the body's schema);
// - body: {"schema", "error": {code, message}, "source": {topic, partition, offset}, "refused_at",
//   "original": {bytes, sha256, encoding: "utf-8"|"base64", value}}; when the whole record would exceed
//   kMaxDeadLetterBytes, "value" and "encoding" are left out and "omitted" says where the original is.
OutgoingMessage dead_letter(const KafkaMessage& m, const Error& e, const std::string& dlq_topic, std::int64_t now_ms);

class IngestPipeline {
 public:
  IngestPipeline(const Config& config, const EventValidator& validator, DeliveryStore& store, DeadLetterSink& dlq,
                 PlanOptions plan_options, IngestCounters& counters);

  void set_evidence(EvidenceMaker accepted, RejectionEvidenceMaker rejected);
  // Decides when dispatch of a delivery may start (quiet hours); default: now.
  void set_due_policy(std::function<std::int64_t(const Delivery&, std::int64_t now_ms)> policy);
  // Called with every valid event before it is recorded: starts the group fan-out of a notice.broadcast event
  // that names a group (idempotent). A permanent error refuses the message to the DLQ; a retryable one fails
  // the batch (retried).
  void set_broadcast_starter(std::function<Status(const CaseEvent&, std::int64_t now_ms)> starter);

  // Called once a batch is recorded, with each channel a new delivery of it is queued on (the dispatcher wakes
  // for them rather than at its next poll).
  void set_on_queued(std::function<void(const std::string& channel)> on_queued) { on_queued_ = std::move(on_queued); }
  // Planned record bytes above which a batch is recorded in more than one call (default kMaxRecordBytesPerCall).
  void set_record_bytes_per_call(std::size_t bytes) { record_bytes_per_call_ = bytes; }

  // Validates, plans and records a batch in one round trip; refused messages go to the DLQ with their reason,
  // including one that made Songda throw (code internal_error). A retryable error fails the whole batch.
  Status process(const std::vector<KafkaMessage>& batch, std::int64_t now_ms);

 private:
  // One message: validated, its broadcast started, planned, with its evidence and due times (no recording).
  // `earlier`: event_id -> digest of the events before m in its batch (recorded with it, first one first).
  Result<EventToRecord> to_record_from(const KafkaMessage& m, std::int64_t now_ms,
                                       const std::unordered_map<std::string, std::string>& earlier) const;

  const Config& config_;
  const EventValidator& validator_;
  DeliveryStore& store_;
  DeadLetterSink& dlq_;
  PlanOptions plan_options_;
  IngestCounters& counters_;
  EvidenceMaker accepted_evidence_;
  RejectionEvidenceMaker rejected_evidence_;
  std::function<std::int64_t(const Delivery&, std::int64_t)> due_policy_;
  std::function<Status(const CaseEvent&, std::int64_t)> broadcast_starter_;
  std::function<void(const std::string&)> on_queued_;
  std::size_t record_bytes_per_call_ = kMaxRecordBytesPerCall;
};

// Polls, processes and stores offsets until `stop` is set, then commits and returns.
// A failed batch is retried (with backoff) until it succeeds or stop is set; it is never skipped.
void run_ingest_loop(KafkaConsumer& consumer, IngestPipeline& pipeline, const KafkaConfig& config,
                     const std::atomic<bool>& stop);

}  // namespace songda
