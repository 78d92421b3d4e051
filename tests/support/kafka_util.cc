#include "tests/support/kafka_util.h"

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstdlib>
#include <random>
#include <stdexcept>
#include <thread>

namespace songda::testing {
namespace {

rd_kafka_t* make(rd_kafka_type_t type, const std::string& brokers, const std::string& group = "") {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", brokers.c_str(), err, sizeof err);
  rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err);
  if (!group.empty()) {
    rd_kafka_conf_set(conf, "group.id", group.c_str(), err, sizeof err);
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof err);
    rd_kafka_conf_set(conf, "enable.partition.eof", "true", err, sizeof err);
    rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", err, sizeof err);
  }
  rd_kafka_t* rk = rd_kafka_new(type, conf, err, sizeof err);
  if (rk == nullptr) throw std::runtime_error(err);
  return rk;
}

int partition_count(rd_kafka_t* rk, const std::string& topic) {
  rd_kafka_topic_t* t = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
  const struct rd_kafka_metadata* md = nullptr;
  int n = 0;
  if (rd_kafka_metadata(rk, 0, t, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1 &&
      md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    n = md->topics[0].partition_cnt;
  }
  if (md != nullptr) rd_kafka_metadata_destroy(md);
  rd_kafka_topic_destroy(t);
  return n;
}

}  // namespace

std::string require_env(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') {
    throw std::runtime_error(std::string(name) +
                             " is not set: run this tier through tests/services/with-services "
                             "(scripts/test does)");
  }
  return v;
}

std::string unique_name(const std::string& prefix) {
  static std::mt19937_64 rng{std::random_device{}()};
  return prefix + "-" + std::to_string(rng() % 1000000000ULL);
}

void create_topic(const std::string& brokers, const std::string& topic, int partitions) {
  rd_kafka_t* rk = make(RD_KAFKA_PRODUCER, brokers);
  char err[256];
  rd_kafka_NewTopic_t* nt = rd_kafka_NewTopic_new(topic.c_str(), partitions, 1, err, sizeof err);
  rd_kafka_queue_t* q = rd_kafka_queue_new(rk);
  rd_kafka_CreateTopics(rk, &nt, 1, nullptr, q);
  rd_kafka_event_t* ev = rd_kafka_queue_poll(q, 15000);
  if (ev != nullptr) rd_kafka_event_destroy(ev);
  rd_kafka_queue_destroy(q);
  rd_kafka_NewTopic_destroy(nt);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (partition_count(rk, topic) != partitions) {
    if (std::chrono::steady_clock::now() > deadline) {
      rd_kafka_destroy(rk);
      throw std::runtime_error("topic " + topic + " did not appear");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  rd_kafka_destroy(rk);
}

std::vector<KafkaMessage> read_all(const std::string& brokers, const std::string& topic, int timeout_ms) {
  rd_kafka_t* rk = make(RD_KAFKA_CONSUMER, brokers, unique_name("reader"));
  rd_kafka_poll_set_consumer(rk);
  const int parts = partition_count(rk, topic);
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(parts);
  int open = 0;
  for (int p = 0; p < parts; ++p) {
    std::int64_t lo = 0;
    std::int64_t hi = 0;
    rd_kafka_query_watermark_offsets(rk, topic.c_str(), p, &lo, &hi, 5000);
    if (hi > lo) {
      rd_kafka_topic_partition_list_add(list, topic.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
      ++open;
    }
  }
  rd_kafka_assign(rk, list);
  rd_kafka_topic_partition_list_destroy(list);
  std::vector<KafkaMessage> out;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (open > 0 && std::chrono::steady_clock::now() < deadline) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 200);
    if (m == nullptr) continue;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      --open;
    } else if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      KafkaMessage km;
      km.topic = topic;
      km.partition = m->partition;
      km.offset = m->offset;
      if (m->key != nullptr) km.key.assign(static_cast<const char*>(m->key), m->key_len);
      if (m->payload != nullptr) km.value.assign(static_cast<const char*>(m->payload), m->len);
      rd_kafka_headers_t* hdrs = nullptr;
      if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char* name = nullptr;
        const void* val = nullptr;
        std::size_t size = 0;
        for (std::size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &val, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
             ++i) {
          km.headers.emplace_back(name, std::string(static_cast<const char*>(val), size));
        }
      }
      out.push_back(std::move(km));
    }
    rd_kafka_message_destroy(m);
  }
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  return out;
}

std::map<int, std::pair<std::int64_t, std::int64_t>> committed_vs_end(const std::string& brokers,
                                                                      const std::string& group,
                                                                      const std::string& topic, int partitions) {
  rd_kafka_t* rk = make(RD_KAFKA_CONSUMER, brokers, group);
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(partitions);
  for (int p = 0; p < partitions; ++p) rd_kafka_topic_partition_list_add(list, topic.c_str(), p);
  rd_kafka_committed(rk, list, 10000);
  std::map<int, std::pair<std::int64_t, std::int64_t>> out;
  for (int i = 0; i < list->cnt; ++i) {
    std::int64_t lo = 0;
    std::int64_t hi = 0;
    rd_kafka_query_watermark_offsets(rk, topic.c_str(), list->elems[i].partition, &lo, &hi, 5000);
    out[list->elems[i].partition] = {list->elems[i].offset, hi};
  }
  rd_kafka_topic_partition_list_destroy(list);
  rd_kafka_destroy(rk);
  return out;
}

}  // namespace songda::testing
