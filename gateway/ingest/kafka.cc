#include "gateway/ingest/kafka.h"

#include <librdkafka/rdkafka.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

namespace songda {
namespace {

template <typename T, void (*Destroy)(T*)>
struct Deleter {
  void operator()(T* p) const {
    if (p != nullptr) Destroy(p);
  }
};
using ConfPtr = std::unique_ptr<rd_kafka_conf_t, Deleter<rd_kafka_conf_t, rd_kafka_conf_destroy>>;
using KafkaPtr = std::unique_ptr<rd_kafka_t, Deleter<rd_kafka_t, rd_kafka_destroy>>;
using PartitionsPtr = std::unique_ptr<rd_kafka_topic_partition_list_t,
                                      Deleter<rd_kafka_topic_partition_list_t, rd_kafka_topic_partition_list_destroy>>;
using MessagePtr = std::unique_ptr<rd_kafka_message_t, Deleter<rd_kafka_message_t, rd_kafka_message_destroy>>;

void set(rd_kafka_conf_t* conf, const std::string& key, const std::string& value) {
  char err[512];
  if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
    const bool secret = is_kafka_secret(key);
    throw StartupError("Kafka setting " + key + "=" +
                       (secret ? std::string("(from the environment, not shown)") : value) + " refused: " + err);
  }
}

ConfPtr base_conf(const KafkaConfig& config) {
  ConfPtr conf(rd_kafka_conf_new());
  set(conf.get(), "bootstrap.servers", config.brokers);
  set(conf.get(), "client.id", "songda");
  set(conf.get(), "log_level", "4");
  for (const auto& [k, v] : config.properties) set(conf.get(), k, v);
  return conf;
}

void log_cb(const rd_kafka_t* /*rk*/, int level, const char* fac, const char* buf) {
  if (level <= 3) {
    spdlog::error("kafka {}: {}", fac, buf);
  } else {
    spdlog::debug("kafka {}: {}", fac, buf);
  }
}

// What the rebalance callback tells close(); the consumer's opaque.
struct GroupState {
  std::atomic<bool> assigned{false};  // a first assignment arrived (the sticky assignor has its state)
};

bool cooperative_protocol(rd_kafka_t* rk) {
  const char* p = rd_kafka_rebalance_protocol(rk);  // "NONE" until the group chose its assignor
  return p != nullptr && std::strcmp(p, "COOPERATIVE") == 0;
}

void rebalance_cb(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts, void* opaque) {
  const bool cooperative = cooperative_protocol(rk);
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    if (opaque != nullptr) static_cast<GroupState*>(opaque)->assigned = true;
    spdlog::info("kafka: assigned {} partition(s)", parts->cnt);
    if (cooperative) {
      if (rd_kafka_error_t* e = rd_kafka_incremental_assign(rk, parts)) {
        spdlog::error("kafka: incremental assign failed: {}", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
      }
    } else {
      rd_kafka_assign(rk, parts);
    }
  } else {
    spdlog::info("kafka: revoking {} partition(s); committing stored offsets first", parts->cnt);
    const rd_kafka_resp_err_t c = rd_kafka_commit(rk, nullptr, 0);
    if (c != RD_KAFKA_RESP_ERR_NO_ERROR && c != RD_KAFKA_RESP_ERR__NO_OFFSET) {
      spdlog::warn("kafka: commit on revoke: {}", rd_kafka_err2str(c));
    }
    if (cooperative) {
      if (rd_kafka_error_t* e = rd_kafka_incremental_unassign(rk, parts)) {
        spdlog::error("kafka: incremental unassign failed: {}", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
      }
    } else {
      rd_kafka_assign(rk, nullptr);
    }
  }
}

KafkaMessage copy_message(const rd_kafka_message_t* m) {
  KafkaMessage out;
  out.topic = rd_kafka_topic_name(m->rkt);
  out.partition = m->partition;
  out.offset = m->offset;
  if (m->key != nullptr) out.key.assign(static_cast<const char*>(m->key), m->key_len);
  if (m->payload != nullptr) out.value.assign(static_cast<const char*>(m->payload), m->len);
  rd_kafka_headers_t* hdrs = nullptr;
  if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR && hdrs != nullptr) {
    const char* name = nullptr;
    const void* val = nullptr;
    std::size_t size = 0;
    for (std::size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &val, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i) {
      out.headers.emplace_back(name, val != nullptr ? std::string(static_cast<const char*>(val), size) : std::string());
    }
  }
  return out;
}

}  // namespace

struct KafkaConsumer::Impl {
  GroupState group;  // before rk: the callbacks of rk's threads use it until rk is destroyed
  KafkaPtr rk;
  bool closed = false;
};

KafkaConsumer::KafkaConsumer(const KafkaConfig& config) : impl_(std::make_unique<Impl>()) {
  ConfPtr conf = base_conf(config);
  set(conf.get(), "group.id", config.group_id);
  set(conf.get(), "partition.assignment.strategy", "cooperative-sticky");
  set(conf.get(), "enable.auto.offset.store", "false");
  set(conf.get(), "enable.auto.commit", "true");
  set(conf.get(), "auto.commit.interval.ms", "1000");
  set(conf.get(), "auto.offset.reset", "earliest");
  rd_kafka_conf_set_rebalance_cb(conf.get(), rebalance_cb);
  rd_kafka_conf_set_log_cb(conf.get(), log_cb);
  rd_kafka_conf_set_opaque(conf.get(), &impl_->group);
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf.get(), err, sizeof err);
  if (rk == nullptr) throw StartupError(std::string("cannot create Kafka consumer: ") + err);
  (void)conf.release();  // owned by rk now
  impl_->rk.reset(rk);
  rd_kafka_poll_set_consumer(rk);
  PartitionsPtr topics(rd_kafka_topic_partition_list_new(1));
  rd_kafka_topic_partition_list_add(topics.get(), config.topic.c_str(), RD_KAFKA_PARTITION_UA);
  if (const auto e = rd_kafka_subscribe(rk, topics.get()); e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw StartupError("cannot subscribe to " + config.topic + ": " + rd_kafka_err2str(e));
  }
}

KafkaConsumer::~KafkaConsumer() { close(); }

std::vector<KafkaMessage> KafkaConsumer::poll_batch(int max_messages, int wait_ms) {
  std::vector<KafkaMessage> out;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
  while (static_cast<int>(out.size()) < max_messages) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    const int timeout = out.empty() ? static_cast<int>(std::max<long long>(left.count(), 0)) : 0;
    MessagePtr m(rd_kafka_consumer_poll(impl_->rk.get(), timeout));
    if (!m) {
      if (!out.empty() || left.count() <= 0) break;
      continue;
    }
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) continue;
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      spdlog::warn("kafka consumer: {}", rd_kafka_message_errstr(m.get()));
      continue;
    }
    out.push_back(copy_message(m.get()));
  }
  return out;
}

Status KafkaConsumer::store_offsets(const std::vector<KafkaMessage>& done) {
  if (done.empty()) return ok_status();
  std::map<std::pair<std::string, std::int32_t>, std::int64_t> next;
  for (const auto& m : done) {
    auto& v = next[{m.topic, m.partition}];
    v = std::max(v, m.offset + 1);
  }
  PartitionsPtr parts(rd_kafka_topic_partition_list_new(static_cast<int>(next.size())));
  for (const auto& [tp, off] : next) {
    rd_kafka_topic_partition_list_add(parts.get(), tp.first.c_str(), tp.second)->offset = off;
  }
  const auto e = rd_kafka_offsets_store(impl_->rk.get(), parts.get());
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    // Typically the partition was revoked meanwhile: the new owner will see these messages again (dedup).
    return Error::transient("kafka_offset_store", std::string("cannot store offsets: ") + rd_kafka_err2str(e));
  }
  return ok_status();
}

Status KafkaConsumer::commit() {
  const auto e = rd_kafka_commit(impl_->rk.get(), nullptr, 0);
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR && e != RD_KAFKA_RESP_ERR__NO_OFFSET) {
    return Error::transient("kafka_commit", std::string("commit failed: ") + rd_kafka_err2str(e));
  }
  return ok_status();
}

bool KafkaConsumer::has_been_assigned() const { return impl_->group.assigned.load(); }

void KafkaConsumer::close() {
  if (impl_ == nullptr || impl_->closed || !impl_->rk) return;
  impl_->closed = true;
  await_first_assignment();
  (void)commit();
  rd_kafka_consumer_close(impl_->rk.get());
}

// librdkafka before 2.3 (Debian 12 ships 2.0.2) aborts the process when a cooperative-sticky consumer is destroyed
// after its group chose the assignor but before the first assignment arrived (confluentinc/librdkafka#4312, fixed
// upstream by #4381), e.g. when its SyncGroup was refused because another member joined meanwhile: Songda stopped
// soon after another instance started died on SIGABRT. So a consumer in that state waits for its assignment first
// (at most 10 s). One whose group has not chosen the assignor yet ("NONE": the broker is still gathering members, or
// does not answer) is closed at once. Messages fetched meanwhile are dropped; their offsets are not stored, so they
// come again.
void KafkaConsumer::await_first_assignment() {
  rd_kafka_t* rk = impl_->rk.get();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!impl_->group.assigned.load() && cooperative_protocol(rk)) {
    if (std::chrono::steady_clock::now() > deadline) {
      spdlog::warn("kafka: closing a consumer whose first assignment did not come within 10 s");
      return;
    }
    MessagePtr m(rd_kafka_consumer_poll(rk, 100));
  }
}

struct KafkaProducer::Impl {
  KafkaPtr rk;
  std::mutex mu;  // serialises produce_all so each call waits for its own acks
};

namespace {
// What one produce_all call waits for. Each message holds a reference (its opaque) until its delivery report: a
// call that gives up waiting (flush timed out) returns while its messages may still be reported, and they must not
// write into a stack frame that is gone (the checkpointer shares this producer, so that could be another thread's).
struct ProduceCall {
  std::atomic<int> failures{0};
  std::mutex mu;
  std::string first_error;  // guarded by mu
};
using CallRef = std::shared_ptr<ProduceCall>;

void dr_cb(rd_kafka_t* /*rk*/, const rd_kafka_message_t* m, void* /*opaque*/) {
  const std::unique_ptr<CallRef> call(static_cast<CallRef*>(m->_private));
  if (call == nullptr || m->err == RD_KAFKA_RESP_ERR_NO_ERROR) return;
  spdlog::error("kafka produce to {} failed: {}", rd_kafka_topic_name(m->rkt), rd_kafka_err2str(m->err));
  if ((*call)->failures.fetch_add(1) == 0) {
    const std::lock_guard lock((*call)->mu);
    (*call)->first_error = rd_kafka_err2str(m->err);
  }
}
}  // namespace

KafkaProducer::KafkaProducer(const KafkaConfig& config) : impl_(std::make_unique<Impl>()) {
  ConfPtr conf = base_conf(config);
  set(conf.get(), "enable.idempotence", "true");
  set(conf.get(), "acks", "all");
  set(conf.get(), "linger.ms", "5");
  rd_kafka_conf_set_dr_msg_cb(conf.get(), dr_cb);
  rd_kafka_conf_set_log_cb(conf.get(), log_cb);
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf.get(), err, sizeof err);
  if (rk == nullptr) throw StartupError(std::string("cannot create Kafka producer: ") + err);
  (void)conf.release();  // owned by rk now
  impl_->rk.reset(rk);
}

KafkaProducer::~KafkaProducer() {
  if (impl_ && impl_->rk) rd_kafka_flush(impl_->rk.get(), 10000);
}

Status KafkaProducer::produce_all(const std::vector<OutgoingMessage>& messages, int timeout_ms) {
  if (messages.empty()) return ok_status();
  std::lock_guard lock(impl_->mu);
  const auto call = std::make_shared<ProduceCall>();
  for (const auto& m : messages) {
    rd_kafka_headers_t* hdrs = rd_kafka_headers_new(m.headers.size());
    for (const auto& [k, v] : m.headers) {
      rd_kafka_header_add(hdrs, k.data(), static_cast<ssize_t>(k.size()), v.data(), static_cast<ssize_t>(v.size()));
    }
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;
    for (int tries = 0; tries < 100; ++tries) {
      rd_kafka_vu_t vus[6];
      vus[0].vtype = RD_KAFKA_VTYPE_TOPIC;
      vus[0].u.cstr = m.topic.c_str();
      vus[1].vtype = RD_KAFKA_VTYPE_KEY;
      vus[1].u.mem.ptr = const_cast<char*>(m.key.data());
      vus[1].u.mem.size = m.key.size();
      vus[2].vtype = RD_KAFKA_VTYPE_VALUE;
      vus[2].u.mem.ptr = const_cast<char*>(m.value.data());
      vus[2].u.mem.size = m.value.size();
      vus[3].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
      vus[3].u.i = RD_KAFKA_MSG_F_COPY;
      vus[4].vtype = RD_KAFKA_VTYPE_HEADERS;
      vus[4].u.headers = hdrs;
      auto ref = std::make_unique<CallRef>(call);  // released to the delivery report once queued
      vus[5].vtype = RD_KAFKA_VTYPE_OPAQUE;
      vus[5].u.ptr = ref.get();
      rd_kafka_error_t* err = rd_kafka_produceva(impl_->rk.get(), vus, 6);
      e = RD_KAFKA_RESP_ERR_NO_ERROR;
      if (err != nullptr) {
        e = rd_kafka_error_code(err);
        rd_kafka_error_destroy(err);
      } else {
        (void)ref.release();
      }
      if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) break;
      rd_kafka_poll(impl_->rk.get(), 50);
    }
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
      rd_kafka_headers_destroy(hdrs);  // not taken over on failure
      rd_kafka_flush(impl_->rk.get(), timeout_ms);
      return Error::transient("kafka_produce", "cannot produce to " + m.topic + ": " + rd_kafka_err2str(e));
    }
  }
  if (rd_kafka_flush(impl_->rk.get(), timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return Error::transient("kafka_produce", "broker did not acknowledge within " + std::to_string(timeout_ms) + " ms");
  }
  if (const int failed = call->failures.load(); failed > 0) {
    const std::lock_guard guard(call->mu);
    return Error::transient("kafka_produce",
                            std::to_string(failed) + " message(s) were not acknowledged (" + call->first_error + ")");
  }
  return ok_status();
}

namespace {
using TopicPtr = std::unique_ptr<rd_kafka_topic_t, Deleter<rd_kafka_topic_t, rd_kafka_topic_destroy>>;

struct MetadataDeleter {
  void operator()(const struct rd_kafka_metadata* md) const {
    if (md != nullptr) rd_kafka_metadata_destroy(md);
  }
};
using MetadataPtr = std::unique_ptr<const struct rd_kafka_metadata, MetadataDeleter>;

Error unavailable(const std::string& what, rd_kafka_resp_err_t e) {
  return Error::transient("kafka_unavailable", what + ": " + rd_kafka_err2str(e));
}
}  // namespace

Result<std::vector<KafkaMessage>> read_topic_tail(const KafkaConfig& config, const std::string& topic,
                                                  int per_partition, int timeout_ms) {
  ConfPtr conf = base_conf(config);
  set(conf.get(), "group.id", "songda-tail-reader");  // never joined: partitions are assigned by hand
  set(conf.get(), "enable.auto.commit", "false");
  set(conf.get(), "enable.auto.offset.store", "false");
  set(conf.get(), "enable.partition.eof", "true");
  set(conf.get(), "allow.auto.create.topics", "false");
  rd_kafka_conf_set_log_cb(conf.get(), log_cb);
  char err[512];
  rd_kafka_t* raw = rd_kafka_new(RD_KAFKA_CONSUMER, conf.get(), err, sizeof err);
  if (raw == nullptr) throw StartupError(std::string("cannot create Kafka consumer: ") + err);
  (void)conf.release();  // owned by rk now
  const KafkaPtr rk(raw);
  rd_kafka_poll_set_consumer(raw);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  const auto left = [&] {
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    return static_cast<int>(std::max<long long>(ms, 1));
  };

  std::vector<std::int32_t> partitions;
  {
    const TopicPtr rkt(rd_kafka_topic_new(raw, topic.c_str(), nullptr));
    const struct rd_kafka_metadata* md = nullptr;
    const auto e = rd_kafka_metadata(raw, 0, rkt.get(), &md, left());
    const MetadataPtr held(md);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) return unavailable("metadata of " + topic, e);
    if (md->topic_cnt != 1) return std::vector<KafkaMessage>{};
    const auto& t = md->topics[0];
    if (t.err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) return std::vector<KafkaMessage>{};
    if (t.err != RD_KAFKA_RESP_ERR_NO_ERROR) return unavailable("metadata of " + topic, t.err);
    for (int i = 0; i < t.partition_cnt; ++i) partitions.push_back(t.partitions[i].id);
  }

  std::map<std::int32_t, std::int64_t> end;  // partition -> high watermark, for those with messages
  PartitionsPtr assignment(rd_kafka_topic_partition_list_new(static_cast<int>(partitions.size())));
  for (const std::int32_t p : partitions) {
    std::int64_t low = 0;
    std::int64_t high = 0;
    const auto e = rd_kafka_query_watermark_offsets(raw, topic.c_str(), p, &low, &high, left());
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) return unavailable("offsets of " + topic, e);
    if (high <= low) continue;
    end[p] = high;
    rd_kafka_topic_partition_list_add(assignment.get(), topic.c_str(), p)->offset =
        std::max(low, high - std::max(per_partition, 1));
  }
  std::vector<KafkaMessage> out;
  if (end.empty()) return out;
  if (const auto e = rd_kafka_assign(raw, assignment.get()); e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return unavailable("assigning " + topic, e);
  }
  while (!end.empty()) {
    if (std::chrono::steady_clock::now() >= deadline) {
      rd_kafka_assign(raw, nullptr);
      return Error::transient("kafka_unavailable", "the newest messages of " + topic + " did not arrive within " +
                                                       std::to_string(timeout_ms) + " ms");
    }
    const MessagePtr m(rd_kafka_consumer_poll(raw, std::min(left(), 100)));
    if (!m) continue;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      end.erase(m->partition);
      continue;
    }
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      spdlog::warn("kafka: reading the end of {}: {}", topic, rd_kafka_message_errstr(m.get()));
      continue;
    }
    out.push_back(copy_message(m.get()));
    if (const auto it = end.find(m->partition); it != end.end() && m->offset + 1 >= it->second) end.erase(it);
  }
  rd_kafka_assign(raw, nullptr);
  rd_kafka_consumer_close(raw);
  return out;
}

bool KafkaProducer::reachable(int timeout_ms) {
  const struct rd_kafka_metadata* md = nullptr;
  const auto e = rd_kafka_metadata(impl_->rk.get(), 0, nullptr, &md, timeout_ms);
  const MetadataPtr held(md);
  return e == RD_KAFKA_RESP_ERR_NO_ERROR;
}

}  // namespace songda
