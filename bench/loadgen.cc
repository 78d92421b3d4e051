// songda-bench-load: the load side of bench/run (not a test). Two subcommands:
//
//   songda-bench-load publish --brokers B --topic T --run-id ID --events N [--rate R] [--partitions P]
//                             [--out events.jsonl]
//     Creates the topic (P partitions, default 4) and publishes N case events (event v1) as fast as
//     the producer goes, or paced at R events/s. Each event has 1-3 recipients, each with exactly one
//     contact (in-app, SMS or WeChat: weights 40/35/25), so each recipient makes one delivery and no
//     fallback holds. The publish time (µs since the epoch, taken just before produce()) is carried in
//     the event id itself ("bench-<run>-<seq>-<us>"), so latency needs nothing from the gateway but
//     the delivery records it keeps anyway. Prints one JSON line: events, deliveries expected (per
//     channel), seconds, rate. --out also writes the raw messages (for kcat's consume baseline).
//
//   songda-bench-load config --base config/gateway.yaml --overlay bench/bench.yaml --sim URL --out FILE
//     Writes the benchmark's config: the overlay merged over the base (maps key by key, lists of maps
//     item by item, anything else replaced), with @SIM_URL@ replaced by the simulator's URL.
//
//   songda-bench-load collect --redis redis://H:P/DB --run-id ID
//     Reads every delivery record of that run from Redis (SCAN sd:dlv:{*}, pipelined HGET record +
//     LRANGE :hist) after the run, and prints one JSON object: counts per channel and final status,
//     latency publish -> provider accepted (SENT; in-app: DELIVERED to the inbox) p50/p95/p99/max,
//     publish -> final (DELIVERED by receipt) percentiles, the first publish and last final time, and
//     the end-to-end and steady (10th-90th percentile of completions) delivery rates.
#include <hiredis/hiredis.h>
#include <librdkafka/rdkafka.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::system_clock;

std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now().time_since_epoch()).count();
}

[[noreturn]] void die(const std::string& msg) {
  std::fprintf(stderr, "songda-bench-load: %s\n", msg.c_str());
  std::exit(1);
}

std::map<std::string, std::string> parse_flags(int argc, char** argv, int from) {
  std::map<std::string, std::string> f;
  for (int i = from; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--", 0) != 0 || i + 1 >= argc) die("bad argument '" + a + "' (flags are --name value)");
    f[a.substr(2)] = argv[++i];
  }
  return f;
}

std::string need(const std::map<std::string, std::string>& f, const std::string& k) {
  auto it = f.find(k);
  if (it == f.end() || it->second.empty()) die("--" + k + " is required");
  return it->second;
}

// ------------------------------------------------------------------------------------------------
// publish

const std::array<const char*, 3> kTypes = {"hearing.scheduled", "payment.due", "document.served"};
const std::array<const char*, 3> kRoles = {"party", "lawyer", "agent"};
const std::array<const char*, 6> kNames = {"张三", "李四", "王五", "赵六", "钱七", "孙八"};

struct Mix {
  long long inapp = 0, sms = 0, wechat = 0;
};

std::string make_event(const std::string& run_id, long long seq, std::int64_t pub_us, std::mt19937_64& rng, Mix& mix,
                       std::string& key) {
  const char* type = kTypes[seq % kTypes.size()];
  const int nrec = 1 + static_cast<int>(rng() % 3);
  nlohmann::json recipients = nlohmann::json::array();
  for (int r = 0; r < nrec; ++r) {
    const unsigned pick = rng() % 100;
    nlohmann::json contacts;
    const long long uid = seq * 3 + r;
    if (pick < 40) {
      contacts["app_user"] = "u-" + std::to_string(uid % 200000);
      ++mix.inapp;
    } else if (pick < 75) {
      char mobile[32];
      std::snprintf(mobile, sizeof mobile, "+86139%08lld", uid % 100000000LL);
      contacts["mobile"] = mobile;
      ++mix.sms;
    } else {
      char openid[40];
      std::snprintf(openid, sizeof openid, "oBench%022lld", uid);
      contacts["wechat_openid"] = openid;
      ++mix.wechat;
    }
    recipients.push_back({{"id", "P-" + std::to_string(r + 1)},
                          {"role", kRoles[r % kRoles.size()]},
                          {"name", kNames[(seq + r) % kNames.size()]},
                          {"contacts", contacts},
                          {"consent", {{"basis", "provided"}, {"scope", {type}}, {"ref", "BENCH"}}}});
  }
  key = "(2026)豫14民初" + std::to_string(seq + 1) + "号";
  nlohmann::json e = {{"schema", "songda.case-event/v1"},
                      {"event_id", "bench-" + run_id + "-" + std::to_string(seq) + "-" + std::to_string(pub_us)},
                      {"type", type},
                      {"occurred_at", "2026-11-28T09:00:00+08:00"},
                      {"court", {{"id", "HN-SQ-ZY"}, {"name", "商丘市中级人民法院"}}},
                      {"case", {{"number", key}, {"title", "基准测试诉讼案"}}},
                      {"recipients", recipients}};
  if (std::strcmp(type, "hearing.scheduled") == 0) {
    e["params"] = {{"hearing_time", "2026-12-15 14:00"}, {"courtroom", "第一法庭"}};
  } else if (std::strcmp(type, "payment.due") == 0) {
    e["params"] = {{"amount", "1250"}, {"due_date", "2026-12-20"}};
  } else {
    char sha[65];
    std::snprintf(sha, sizeof sha, "%064lld", seq);
    e["document"] = {{"id", "DOC-" + std::to_string(seq)},
                     {"title", "民事裁定书"},
                     {"sha256", sha},
                     {"url", "https://court.example/doc/" + std::to_string(seq)},
                     {"pages", 2}};
  }
  return e.dump();
}

void create_topic(rd_kafka_t* rk, const std::string& topic, int partitions) {
  char err[512];
  rd_kafka_NewTopic_t* nt = rd_kafka_NewTopic_new(topic.c_str(), partitions, 1, err, sizeof err);
  if (nt == nullptr) die(std::string("NewTopic: ") + err);
  rd_kafka_queue_t* q = rd_kafka_queue_new(rk);
  rd_kafka_CreateTopics(rk, &nt, 1, nullptr, q);
  rd_kafka_event_t* ev = rd_kafka_queue_poll(q, 30000);
  if (ev == nullptr) die("CreateTopics timed out");
  const rd_kafka_CreateTopics_result_t* res = rd_kafka_event_CreateTopics_result(ev);
  size_t n = 0;
  const rd_kafka_topic_result_t** tr = rd_kafka_CreateTopics_result_topics(res, &n);
  for (size_t i = 0; i < n; ++i) {
    const auto code = rd_kafka_topic_result_error(tr[i]);
    if (code != RD_KAFKA_RESP_ERR_NO_ERROR && code != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
      die(std::string("CreateTopics ") + topic + ": " + rd_kafka_err2str(code));
    }
  }
  rd_kafka_event_destroy(ev);
  rd_kafka_queue_destroy(q);
  rd_kafka_NewTopic_destroy(nt);
}

int publish(const std::map<std::string, std::string>& f) {
  const std::string brokers = need(f, "brokers");
  const std::string topic = need(f, "topic");
  const std::string run_id = need(f, "run-id");
  const long long events = std::stoll(need(f, "events"));
  const double rate = f.count("rate") != 0 ? std::stod(f.at("rate")) : 0.0;
  const int partitions = f.count("partitions") != 0 ? std::stoi(f.at("partitions")) : 4;
  const std::string create_only = f.count("create-only") != 0 ? f.at("create-only") : "0";

  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  auto set = [&](const char* k, const std::string& v) {
    if (rd_kafka_conf_set(conf, k, v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) die(err);
  };
  set("bootstrap.servers", brokers);
  // Paced: librdkafka's own default (5 ms), as a case system's producer would run. At 1 ms the broker took
  // 240 µs of CPU per delivery at 1,000 events/s (bench/README.md); the wait is inside the measured latency.
  set("linger.ms", rate > 0 ? "5" : "10");
  set("batch.num.messages", "10000");
  set("queue.buffering.max.messages", "1000000");
  set("queue.buffering.max.kbytes", "1048576");
  set("enable.idempotence", "true");
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (rk == nullptr) die(std::string("producer: ") + err);
  create_topic(rk, topic, partitions);
  if (create_only == "1") {
    rd_kafka_destroy(rk);
    std::printf("{\"created\":\"%s\"}\n", topic.c_str());
    return 0;
  }

  std::unique_ptr<std::ofstream> raw;
  if (f.count("out") != 0) raw = std::make_unique<std::ofstream>(f.at("out"));

  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
  if (rkt == nullptr) die("topic handle: " + std::string(rd_kafka_err2str(rd_kafka_last_error())));
  std::mt19937_64 rng(42);
  Mix mix;
  std::string key;
  const std::int64_t t0 = now_us();
  for (long long i = 0; i < events; ++i) {
    if (rate > 0) {
      const auto due = t0 + static_cast<std::int64_t>(static_cast<double>(i) * 1e6 / rate);
      const auto wait = due - now_us();
      if (wait > 0) std::this_thread::sleep_for(std::chrono::microseconds(wait));
    }
    const std::int64_t pub = now_us();
    std::string value = make_event(run_id, i, pub, rng, mix, key);
    while (rd_kafka_produce(rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, value.data(), value.size(), key.data(),
                            key.size(), nullptr) != 0) {
      const auto e = rd_kafka_last_error();
      if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) die(std::string("produce: ") + rd_kafka_err2str(e));
      rd_kafka_poll(rk, 10);
    }
    if (raw) *raw << value << '\n';
    rd_kafka_poll(rk, 0);
  }
  if (rd_kafka_flush(rk, 120000) != RD_KAFKA_RESP_ERR_NO_ERROR) die("flush timed out");
  const double secs = static_cast<double>(now_us() - t0) / 1e6;
  rd_kafka_topic_destroy(rkt);
  rd_kafka_destroy(rk);
  nlohmann::json out = {{"events", events},
                        {"deliveries", mix.inapp + mix.sms + mix.wechat},
                        {"per_channel", {{"inapp", mix.inapp}, {"sms", mix.sms}, {"wechat", mix.wechat}}},
                        {"seconds", secs},
                        {"events_per_s", static_cast<double>(events) / secs},
                        {"first_publish_us", t0}};
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

// ------------------------------------------------------------------------------------------------
// config

void merge(YAML::Node base, const YAML::Node& over, const std::string& sim_url) {
  for (const auto& kv : over) {
    const auto key = kv.first.as<std::string>();
    const YAML::Node& v = kv.second;
    YAML::Node b = base[key];
    if (v.IsMap() && b.IsMap()) {
      merge(b, v, sim_url);
    } else if (v.IsSequence() && b.IsSequence() && v.size() > 0 && v[0].IsMap()) {
      for (std::size_t i = 0; i < v.size() && i < b.size(); ++i) merge(b[i], v[i], sim_url);
    } else if (v.IsScalar() && v.as<std::string>() == "@SIM_URL@") {
      base[key] = sim_url;
    } else {
      base[key] = v;
    }
  }
}

int write_config(const std::map<std::string, std::string>& f) {
  YAML::Node base = YAML::LoadFile(need(f, "base"));
  merge(base, YAML::LoadFile(need(f, "overlay")), need(f, "sim"));
  YAML::Emitter out;
  out << base;
  std::ofstream file(need(f, "out"));
  file << out.c_str() << "\n";
  if (!file) die("cannot write " + f.at("out"));
  return 0;
}

// ------------------------------------------------------------------------------------------------
// collect

struct Redis {
  redisContext* c = nullptr;
  explicit Redis(const std::string& url) {
    // redis://host:port/db
    std::string rest = url.rfind("redis://", 0) == 0 ? url.substr(8) : url;
    int db = 0;
    if (auto slash = rest.find('/'); slash != std::string::npos) {
      db = std::atoi(rest.substr(slash + 1).c_str());
      rest = rest.substr(0, slash);
    }
    const auto colon = rest.rfind(':');
    const std::string host = rest.substr(0, colon);
    const int port = colon == std::string::npos ? 6379 : std::atoi(rest.substr(colon + 1).c_str());
    c = redisConnect(host.c_str(), port);
    if (c == nullptr || c->err != 0) die("cannot connect to Redis at " + url);
    auto* r = static_cast<redisReply*>(redisCommand(c, "SELECT %d", db));
    if (r == nullptr) die("SELECT failed");
    freeReplyObject(r);
  }
  ~Redis() { redisFree(c); }
  Redis(const Redis&) = delete;
  Redis& operator=(const Redis&) = delete;
  redisReply* get() {
    void* r = nullptr;
    if (redisGetReply(c, &r) != REDIS_OK || r == nullptr) die("Redis read failed");
    return static_cast<redisReply*>(r);
  }
};

double pct(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  const auto k = static_cast<std::size_t>(p / 100.0 * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(k, v.size() - 1)];
}

nlohmann::json summary(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return {{"n", v.size()},
          {"p50", pct(v, 50)},
          {"p95", pct(v, 95)},
          {"p99", pct(v, 99)},
          {"max", v.empty() ? 0.0 : v.back()}};
}

int collect(const std::map<std::string, std::string>& f) {
  Redis redis(need(f, "redis"));
  const std::string prefix = "bench-" + need(f, "run-id") + "-";
  std::vector<std::string> keys;
  std::string cursor = "0";
  do {
    auto* r = static_cast<redisReply*>(
        redisCommand(redis.c, "SCAN %s MATCH sd:dlv:{sd-*} COUNT 5000 TYPE hash", cursor.c_str()));
    if (r == nullptr || r->type != REDIS_REPLY_ARRAY || r->elements != 2) die("SCAN failed");
    cursor = r->element[0]->str;
    for (size_t i = 0; i < r->element[1]->elements; ++i) {
      std::string k = r->element[1]->element[i]->str;
      if (!k.empty() && k.back() == '}') keys.push_back(std::move(k));
    }
    freeReplyObject(r);
  } while (cursor != "0");

  std::vector<double> accept_ms, final_ms;
  std::map<std::string, std::vector<double>> accept_by_channel;
  std::map<std::string, std::map<std::string, long long>> counts;
  std::vector<std::int64_t> final_at;
  std::int64_t first_pub_us = INT64_MAX, last_pub_us = 0;
  constexpr std::size_t kChunk = 2000;
  for (std::size_t off = 0; off < keys.size(); off += kChunk) {
    const std::size_t end = std::min(keys.size(), off + kChunk);
    for (std::size_t i = off; i < end; ++i) {
      redisAppendCommand(redis.c, "HMGET %s record status channel", keys[i].c_str());
      redisAppendCommand(redis.c, "LRANGE %s:hist 0 -1", keys[i].c_str());
    }
    for (std::size_t i = off; i < end; ++i) {
      redisReply* h = redis.get();
      redisReply* hist = redis.get();
      if (h->type == REDIS_REPLY_ARRAY && h->elements == 3 && h->element[0]->type == REDIS_REPLY_STRING) {
        const auto rec = nlohmann::json::parse(h->element[0]->str, nullptr, false);
        const std::string eid = rec.is_object() ? rec.value("event_id", "") : "";
        if (eid.rfind(prefix, 0) == 0) {
          const std::int64_t pub_us = std::stoll(eid.substr(eid.rfind('-') + 1));
          first_pub_us = std::min(first_pub_us, pub_us);
          last_pub_us = std::max(last_pub_us, pub_us);
          const std::string status = h->element[1]->type == REDIS_REPLY_STRING ? h->element[1]->str : "";
          const std::string channel = h->element[2]->type == REDIS_REPLY_STRING ? h->element[2]->str : "";
          counts[channel][status]++;
          std::optional<std::int64_t> accepted, delivered;
          for (size_t j = 0; j < hist->elements; ++j) {
            const auto e = nlohmann::json::parse(hist->element[j]->str, nullptr, false);
            if (!e.is_object()) continue;
            const std::string s = e.value("status", "");
            const std::int64_t at = e.value("at", static_cast<std::int64_t>(0));
            if ((s == "SENT" || s == "DELIVERED") && !accepted) accepted = at;
            if (s == "DELIVERED" && !delivered) delivered = at;
          }
          if (accepted) {
            const double ms = static_cast<double>(*accepted) - static_cast<double>(pub_us) / 1000.0;
            accept_ms.push_back(ms);
            accept_by_channel[channel].push_back(ms);
          }
          if (delivered) {
            final_ms.push_back(static_cast<double>(*delivered) - static_cast<double>(pub_us) / 1000.0);
            final_at.push_back(*delivered);
          }
        }
      }
      freeReplyObject(h);
      freeReplyObject(hist);
    }
  }
  std::sort(final_at.begin(), final_at.end());
  nlohmann::json out;
  long long total = 0;
  for (const auto& [ch, m] : counts) {
    for (const auto& [st, n] : m) {
      out["counts"][ch][st] = n;
      total += n;
    }
  }
  out["deliveries"] = total;
  out["delivered"] = final_at.size();
  out["latency_accept_ms"] = summary(accept_ms);
  for (auto& [ch, v] : accept_by_channel) out["latency_accept_ms_by_channel"][ch] = summary(v);
  out["latency_final_ms"] = summary(final_ms);
  if (!final_at.empty() && first_pub_us != INT64_MAX) {
    const double first_ms = static_cast<double>(first_pub_us) / 1000.0;
    const double span_s = (static_cast<double>(final_at.back()) - first_ms) / 1000.0;
    out["first_publish_ms"] = static_cast<std::int64_t>(first_ms);
    out["last_publish_ms"] = last_pub_us / 1000;
    out["last_final_ms"] = final_at.back();
    out["e2e_seconds"] = span_s;
    out["e2e_deliveries_per_s"] = span_s > 0 ? static_cast<double>(final_at.size()) / span_s : 0.0;
    const std::size_t a = final_at.size() / 10;
    const std::size_t b = final_at.size() * 9 / 10;
    const double steady_s = static_cast<double>(final_at[b == 0 ? 0 : b - 1] - final_at[a]) / 1000.0;
    out["steady_deliveries_per_s"] = steady_s > 0 ? static_cast<double>(b - a) / steady_s : 0.0;
  }
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) die("usage: songda-bench-load publish|collect|config --flag value ...");
  const std::string cmd = argv[1];
  const auto flags = parse_flags(argc, argv, 2);
  try {
    if (cmd == "publish") return publish(flags);
    if (cmd == "collect") return collect(flags);
    if (cmd == "config") return write_config(flags);
  } catch (const std::exception& e) {
    die(e.what());
  }
  die("unknown subcommand '" + cmd + "' (publish | collect | config)");
}
