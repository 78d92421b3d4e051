// Test helpers over a real Kafka broker (librdkafka C API): create topics, read
// a whole topic, compare a group's committed offsets with the end of the log.
// For tests only; not thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "gateway/ingest/kafka.h"

namespace songda::testing {

// Reads a required environment variable; throws std::runtime_error naming how to set it.
std::string require_env(const char* name);

// Creates the topic (ok if it exists) and waits until its metadata shows all partitions.
void create_topic(const std::string& brokers, const std::string& topic, int partitions);

// Reads every message currently in the topic (all partitions, from the beginning).
std::vector<KafkaMessage> read_all(const std::string& brokers, const std::string& topic, int timeout_ms = 20000);

// partition -> (committed offset of group, high watermark).
std::map<int, std::pair<std::int64_t, std::int64_t>> committed_vs_end(const std::string& brokers,
                                                                      const std::string& group,
                                                                      const std::string& topic, int partitions);

std::string unique_name(const std::string& prefix);

}  // namespace songda::testing
