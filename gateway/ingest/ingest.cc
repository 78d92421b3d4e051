#include "gateway/ingest/ingest.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <set>
#include <thread>

#include "gateway/core/contain.h"
#include "gateway/core/crypto.h"
#include "gateway/core/text.h"

namespace songda {

OutgoingMessage dead_letter(const KafkaMessage& m, const Error& e, const std::string& dlq_topic, std::int64_t now_ms) {
  OutgoingMessage out;
  out.topic = dlq_topic;
  out.key = m.key;
  out.headers = m.headers;
  out.headers.emplace_back("songda.error.code", e.code);
  out.headers.emplace_back("songda.error.message", e.message);
  out.headers.emplace_back("songda.source.topic", m.topic);
  out.headers.emplace_back("songda.source.partition", std::to_string(m.partition));
  out.headers.emplace_back("songda.source.offset", std::to_string(m.offset));
  out.headers.emplace_back("songda.dead-letter", kDeadLetterSchema);
  std::size_t header_bytes = 0;
  for (const auto& [k, v] : out.headers) header_bytes += k.size() + v.size();

  nlohmann::json body = {{"schema", kDeadLetterSchema},
                         {"error", {{"code", e.code}, {"message", repair_utf8(e.message)}}},
                         {"source", {{"topic", m.topic}, {"partition", m.partition}, {"offset", m.offset}}},
                         {"refused_at", rfc3339_utc(now_ms)},
                         {"original", {{"bytes", m.value.size()}, {"sha256", sha256_hex(m.value)}}}};
  auto& original = body["original"];
  const bool text = is_valid_utf8(m.value);
  original["encoding"] = text ? "utf-8" : "base64";
  original["value"] = text ? m.value : base64_encode(m.value);
  out.value = body.dump();
  if (out.value.size() + header_bytes + out.key.size() > kMaxDeadLetterBytes) {
    // Kafka refuses a record this large (librdkafka's and the broker's default limit is ~1 MB): it would be retried
    // for ever and hold up the partition. The original stays in the source topic, at the position given, for as long
    // as the topic keeps it; its size and SHA-256 identify it.
    original.erase("value");
    original.erase("encoding");
    original["omitted"] = "the original is too large for a dead-letter record; it is at " + m.topic + " partition " +
                          std::to_string(m.partition) + " offset " + std::to_string(m.offset) +
                          " for as long as that topic keeps it";
    out.value = body.dump();
  }
  return out;
}

namespace {
Error conflict(const std::string& event_id) {
  return Error::permanent("conflict", "event_id " + event_id +
                                          " was already recorded with different content; the first version stands. "
                                          "Hint: use a new event_id for a correction");
}
}  // namespace

IngestPipeline::IngestPipeline(const Config& config, const EventValidator& validator, DeliveryStore& store,
                               DeadLetterSink& dlq, PlanOptions plan_options, IngestCounters& counters)
    : config_(config),
      validator_(validator),
      store_(store),
      dlq_(dlq),
      plan_options_(std::move(plan_options)),
      counters_(counters) {}

void IngestPipeline::set_evidence(EvidenceMaker accepted, RejectionEvidenceMaker rejected) {
  accepted_evidence_ = std::move(accepted);
  rejected_evidence_ = std::move(rejected);
}

void IngestPipeline::set_due_policy(std::function<std::int64_t(const Delivery&, std::int64_t)> policy) {
  due_policy_ = std::move(policy);
}

void IngestPipeline::set_broadcast_starter(std::function<Status(const CaseEvent&, std::int64_t)> starter) {
  broadcast_starter_ = std::move(starter);
}

Result<EventToRecord> IngestPipeline::to_record_from(
    const KafkaMessage& m, std::int64_t now_ms, const std::unordered_map<std::string, std::string>& earlier) const {
  auto event = validator_.validate(m.value);
  if (!event.ok()) return event.error();
  auto plan = plan_event(event.value(), config_, plan_options_);
  if (!plan.ok()) return plan.error();
  EventToRecord rec;
  rec.event_id = event->event_id;
  rec.digest = event->digest;
  rec.court_id = event->court_id;
  rec.case_number = event->case_number;
  if (accepted_evidence_) rec.evidence = accepted_evidence_(event.value(), plan.value(), now_ms);
  rec.planned_bytes = plan->planned_bytes;
  for (const std::string& id : plan->unreachable) {
    const auto r = std::find_if(event->recipients.begin(), event->recipients.end(),
                                [&](const Recipient& x) { return x.id == id; });
    if (r != event->recipients.end()) rec.unreachable.push_back(UnreachableRecipient{r->id, r->name, r->role});
  }
  rec.deliveries = std::move(plan->deliveries);
  rec.due_ms.reserve(rec.deliveries.size());
  for (const auto& d : rec.deliveries) rec.due_ms.push_back(due_policy_ ? due_policy_(d, now_ms) : now_ms);
  if (broadcast_starter_ && event->type == kBroadcastEventType) {
    // A broadcast fans out to the whole group as it starts, before this event is recorded: so it starts only once
    // nothing else can refuse the event. It was planned above, and an event_id recorded with other content (a
    // correction, also earlier in this batch) is refused here as record_batch would refuse it. (A read for broadcast
    // events only; they are rare.) A record_batch that fails after the start is retried, and the start again is a
    // duplicate.
    if (const auto e = earlier.find(event->event_id); e != earlier.end()) {
      if (e->second != event->digest) return conflict(event->event_id);
    } else {
      auto recorded = store_.recorded_digest(event->event_id);
      if (!recorded.ok()) return recorded.error();
      if (recorded.value() && *recorded.value() != event->digest) return conflict(event->event_id);
    }
    if (auto s = broadcast_starter_(event.value(), now_ms); !s.ok()) return s.error();
  }
  return rec;
}

Status IngestPipeline::process(const std::vector<KafkaMessage>& batch, std::int64_t now_ms) {
  std::vector<EventToRecord> to_record;
  std::vector<const KafkaMessage*> recorded_from;
  std::vector<OutgoingMessage> dead;
  // The SUBMISSION_REJECTED records, each as a pseudo-event with no deliveries named by its message's position:
  // recorded once per message however often the batch is retried, and whatever batch it is read in next time.
  std::vector<EventToRecord> rejections;
  std::unordered_map<std::string, std::string> digests;  // of the events to record, the first of each event_id

  auto reject = [&](const KafkaMessage& m, const Error& e) {
    spdlog::warn("event refused: topic={} partition={} offset={} code={} reason={}", m.topic, m.partition, m.offset,
                 e.code, e.message);
    dead.push_back(dead_letter(m, e, config_.kafka.dlq_topic, now_ms));
    if (!rejected_evidence_) return;
    // The message goes to the DLQ all the same: a record that cannot be made (a bug) must not hold up the partition.
    auto leaves = contain("rejection evidence",
                          [&]() -> Result<std::vector<EvidenceLeaf>> { return rejected_evidence_(m, e, now_ms); });
    if (!leaves.ok()) {
      spdlog::error("{}: offset {} goes to the DLQ without its evidence record", leaves.error().message, m.offset);
      return;
    }
    EventToRecord carrier;
    carrier.event_id = "rejected:" + m.topic + ":" + std::to_string(m.partition) + ":" + std::to_string(m.offset);
    carrier.digest = carrier.event_id;
    carrier.court_id = "_";
    carrier.case_number = "_rejections";
    carrier.evidence = std::move(leaves.value());
    rejections.push_back(std::move(carrier));
  };

  std::set<std::string> queued;   // channels with new deliveries due now
  std::size_t planned_bytes = 0;  // of the events in to_record

  // Records to_record in one round trip and settles each event's outcome. The batch's rejection records ride
  // with its last call.
  auto record = [&](bool last) -> Status {
    if (last) {
      for (auto& r : rejections) to_record.push_back(std::move(r));
      rejections.clear();  // what follows are conflicts found by this last call
    }
    if (to_record.empty()) return ok_status();
    auto outcomes = store_.record_batch(to_record, now_ms);
    if (!outcomes.ok()) return outcomes.error();
    for (std::size_t i = 0; i < recorded_from.size(); ++i) {
      switch (outcomes.value()[i]) {
        case RecordOutcome::kNew:
          counters_.accepted.fetch_add(1);
          counters_.deliveries.fetch_add(to_record[i].deliveries.size());
          for (std::size_t k = 0; k < to_record[i].deliveries.size(); ++k) {
            const Delivery& d = to_record[i].deliveries[k];
            if (d.hold_from.empty() && to_record[i].due_ms[k] <= now_ms) queued.insert(d.channel);
          }
          break;
        case RecordOutcome::kDuplicate:
          counters_.duplicates.fetch_add(1);
          break;
        case RecordOutcome::kConflict:
          reject(*recorded_from[i], conflict(to_record[i].event_id));
          break;
      }
    }
    to_record.clear();
    recorded_from.clear();
    planned_bytes = 0;
    return ok_status();
  };

  for (const auto& m : batch) {
    // A message that makes Songda throw (a bug) goes to the DLQ with the reason, so the ones after it are not held
    // up behind it, and can be published again once the bug is fixed.
    auto rec = contain("ingest", [&] { return to_record_from(m, now_ms, digests); });
    if (!rec.ok()) {
      if (rec.error().code == "internal_error") {
        spdlog::error("{}: topic={} partition={} offset={}", rec.error().message, m.topic, m.partition, m.offset);
        reject(m, Error::permanent("internal_error", rec.error().message));
        continue;
      }
      if (rec.error().retryable) return rec.error();
      reject(m, rec.error());
      continue;
    }
    digests.emplace(rec->event_id, rec->digest);
    planned_bytes += rec->planned_bytes;
    to_record.push_back(std::move(rec.value()));
    recorded_from.push_back(&m);
    // One round trip per batch, unless its records would make one Redis command too large (Redis refuses a
    // request over 1 GB) or hold too much memory at once: then it is recorded in parts. A failure after a part
    // retries the whole batch, and the parts already recorded are duplicates then.
    if (planned_bytes > record_bytes_per_call_) {
      if (auto st = record(false); !st.ok()) return st;
    }
  }
  if (auto st = record(true); !st.ok()) return st;

  if (on_queued_) {
    for (const auto& channel : queued) on_queued_(channel);
  }
  // A conflict is only known once the batch is recorded: its SUBMISSION_REJECTED follows in a second round trip
  // (before the DLQ write and the offset commit, so a failure here retries the batch, and finds it recorded).
  if (!rejections.empty()) {
    if (auto r = store_.record_batch(rejections, now_ms); !r.ok()) return r.error();
  }
  if (!dead.empty()) {
    auto s = dlq_.send(dead);
    if (!s.ok()) return s.error();
    counters_.rejected.fetch_add(dead.size());
  }
  counters_.messages.fetch_add(batch.size());
  counters_.batches.fetch_add(1);
  return ok_status();
}

void run_ingest_loop(KafkaConsumer& consumer, IngestPipeline& pipeline, const KafkaConfig& config,
                     const std::atomic<bool>& stop) {
  while (!stop.load()) {
    auto batch = consumer.poll_batch(config.batch_max, config.batch_wait_ms);
    if (batch.empty()) continue;
    int backoff_ms = 100;
    while (true) {
      auto s = contain("batch", [&] { return pipeline.process(batch, now_unix_ms()); });
      if (s.ok()) break;
      spdlog::error("ingest batch of {} failed ({}: {}); retrying in {} ms", batch.size(), s.error().code,
                    s.error().message, backoff_ms);
      if (stop.load()) {
        // Not recorded: offsets stay where they are, so these messages come again after restart.
        consumer.close();
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(backoff_ms));
      backoff_ms = std::min(backoff_ms * 2, 5000);
    }
    if (auto s = consumer.store_offsets(batch); !s.ok()) spdlog::warn("{}", s.error().message);
  }
  consumer.close();
}

}  // namespace songda
