// Kafka edges of Songda, over librdkafka's C API (rdkafka.h stays out of this
// header): a consumer-group member that hands out batches and stores offsets
// only when told, and an idempotent producer that waits for the broker's ack.
//
// Consumer contract: offsets are stored (and then auto-committed) only for
// messages passed to store_offsets(), which the caller does after the
// messages' deliveries are durably recorded. A crash before that means the
// messages come again, so processing must be idempotent (it is: dedup by
// event id). Rebalancing is cooperative-sticky; on revocation, stored offsets
// are committed synchronously before the partitions go.
//
// Thread-safety: a KafkaConsumer is used by one thread. KafkaProducer is thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gateway/config/config.h"
#include "gateway/core/result.h"

namespace songda {

using KafkaHeaders = std::vector<std::pair<std::string, std::string>>;

struct KafkaMessage {
  std::string topic;
  std::int32_t partition = 0;
  std::int64_t offset = 0;
  std::string key;
  std::string value;
  KafkaHeaders headers;
};

struct OutgoingMessage {
  std::string topic;
  std::string key;
  std::string value;
  KafkaHeaders headers;
};

class KafkaConsumer {
 public:
  // Joins the group and subscribes to config.topic. Throws StartupError on bad configuration.
  explicit KafkaConsumer(const KafkaConfig& config);
  ~KafkaConsumer();
  KafkaConsumer(const KafkaConsumer&) = delete;
  KafkaConsumer& operator=(const KafkaConsumer&) = delete;

  // Up to max_messages, waiting at most wait_ms for the first and then only for what is already there.
  std::vector<KafkaMessage> poll_batch(int max_messages, int wait_ms);
  // Stores offset+1 of each message's partition (the highest per partition).
  Status store_offsets(const std::vector<KafkaMessage>& done);
  // Commits stored offsets now and waits for the answer.
  Status commit();
  // Leaves the group cleanly (commits stored offsets). Idempotent. A consumer whose group has not given it its
  // first assignment yet waits for it first (at most 10 s; see kafka.cc for the librdkafka bug this avoids).
  void close();
  // True once the group has given this consumer its first assignment (possibly of no partition).
  [[nodiscard]] bool has_been_assigned() const;

 private:
  void await_first_assignment();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class KafkaProducer {
 public:
  explicit KafkaProducer(const KafkaConfig& config);  // throws StartupError
  ~KafkaProducer();
  KafkaProducer(const KafkaProducer&) = delete;
  KafkaProducer& operator=(const KafkaProducer&) = delete;

  // Produces all and waits until the broker acknowledged every one (acks=all) or timeout.
  Status produce_all(const std::vector<OutgoingMessage>& messages, int timeout_ms = 30000);
  // True when cluster metadata can be fetched within timeout_ms.
  bool reachable(int timeout_ms);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The newest messages of `topic`: at most `per_partition` from the end of each partition, read by a short-lived
// consumer that joins no group and commits nothing (for a signer that checks what its witnesses last saw).
// Empty when the topic has no message or does not exist. Error "kafka_unavailable" when the cluster does not answer
// (metadata, offsets or the messages) within timeout_ms; StartupError on bad configuration.
Result<std::vector<KafkaMessage>> read_topic_tail(const KafkaConfig& config, const std::string& topic,
                                                  int per_partition, int timeout_ms);

}  // namespace songda
