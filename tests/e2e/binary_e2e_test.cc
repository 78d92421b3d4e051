// The end-to-end tier: the real `songda` binary, started as a child process
// (`songda run --config FILE`) against a real Apache Kafka broker and a real
// redis-server (addresses from SONGDA_TEST_KAFKA_BROKERS / SONGDA_TEST_REDIS_URL,
// set by tests/services/with-services). The tests talk to it only from the
// outside: Kafka in, Redis keys and HTTP out, signals, exit codes, stderr.
//
// Each test writes its own copy of config/gateway.yaml (own topic, DLQ and
// group, own HTTP port, short dispatch poll and lease, 6 s Kafka session so a
// SIGKILLed member leaves the group quickly), uses its own Redis database (or a
// private redis-server) and prints the children's output when it fails.
#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <yaml-cpp/yaml.h>
#include <nlohmann/json.hpp>

#include "gateway/config/config.h"
#include "gateway/core/event.h"
#include "gateway/core/text.h"
#include "gateway/ingest/kafka.h"
#include "gateway/store/redis.h"
#include "tests/e2e/e2e_support.h"
#include "tests/support/kafka_util.h"
#include "tests/support/service_config.h"

#if !defined(SONGDA_BINARY) || !defined(SONGDA_SIM_BINARY)
#error "SONGDA_BINARY and SONGDA_SIM_BINARY (paths of songda and songda-provider-sim) must be defined by the build"
#endif

namespace songda {
namespace {

using namespace std::chrono_literals;
using e2e::ChildProcess;
using e2e::provider_env;
using e2e::wait_until;
using testing::committed_vs_end;
using testing::redis_url_with_db;
using testing::require_env;
using testing::unique_name;

constexpr int kPartitions = 4;
constexpr const char* kCourt = "HN-SQ-ZY";

// ---------------------------------------------------------------------------------------------
// Redis probes (the test's own connection; errors throw, which fails the test with the message)

RedisReply must(Result<RedisReply> r, const std::string& what) {
  if (!r.ok()) throw std::runtime_error("redis " + what + ": " + r.error().message);
  if (r->type == RedisReply::Type::kError) throw std::runtime_error("redis " + what + ": " + r->str);
  return std::move(r.value());
}

std::unique_ptr<RedisConnection> connect_redis(const std::string& url) {
  auto ep = parse_redis_url(url);
  if (!ep.ok()) throw std::runtime_error(ep.error().message);
  auto c = RedisConnection::connect(ep.value(), 5000);
  if (!c.ok()) throw std::runtime_error("cannot connect to " + url + ": " + c.error().message);
  return std::move(c.value());
}

std::vector<std::string> scan_keys(RedisConnection& r, const std::string& pattern) {
  std::vector<std::string> out;
  std::string cursor = "0";
  do {
    auto rep = must(r.command({"SCAN", cursor, "MATCH", pattern, "COUNT", "2000"}), "SCAN");
    if (rep.elements.size() != 2) throw std::runtime_error("unexpected SCAN reply");
    cursor = rep.elements[0].str;
    for (const auto& k : rep.elements[1].elements) out.push_back(k.str);
  } while (cursor != "0");
  return out;
}

// Runs `cmds` in pipelines of at most 1000 commands.
std::vector<RedisReply> pipelined(RedisConnection& r, const std::vector<std::vector<std::string>>& cmds) {
  std::vector<RedisReply> out;
  out.reserve(cmds.size());
  for (std::size_t i = 0; i < cmds.size(); i += 1000) {
    std::vector<std::vector<std::string>> chunk(cmds.begin() + static_cast<long>(i),
                                                cmds.begin() + static_cast<long>(std::min(cmds.size(), i + 1000)));
    auto rep = r.pipeline(chunk);
    if (!rep.ok()) throw std::runtime_error("redis pipeline: " + rep.error().message);
    for (auto& x : rep.value()) out.push_back(std::move(x));
  }
  return out;
}

// Event ids among `ids` whose event key sd:evt:{id} exists.
std::set<std::string> recorded_events(RedisConnection& r, const std::vector<std::string>& ids) {
  std::vector<std::vector<std::string>> cmds;
  cmds.reserve(ids.size());
  for (const auto& id : ids) cmds.push_back({"EXISTS", "sd:evt:{" + id + "}"});
  const auto reps = pipelined(r, cmds);
  std::set<std::string> out;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (reps[i].integer == 1) out.insert(ids[i]);
  }
  return out;
}

long long zcard(RedisConnection& r, const std::string& key) { return must(r.command({"ZCARD", key}), "ZCARD").integer; }

// ---------------------------------------------------------------------------------------------
// Events and what the shipped routes make of them

nlohmann::json make_event(const std::string& prefix, int i) {
  static const char* kTypes[] = {"summons.issued", "hearing.scheduled", "notice.general", "judgment.issued"};
  const int recipients = 1 + i % 3;
  nlohmann::json rs = nlohmann::json::array();
  for (int r = 0; r < recipients; ++r) {
    // Users recur across events, so inboxes hold many messages.
    nlohmann::json contacts = {{"app_user", "u-" + std::to_string((i * 7 + r) % 400)}};
    if (r == 1) contacts["mobile"] = "+86139" + std::to_string(10000000 + i);
    rs.push_back({{"id", "R" + std::to_string(r)},
                  {"role", r == 2 ? "lawyer" : "party"},
                  {"name", "当事人" + std::to_string(r)},
                  {"contacts", contacts},
                  {"consent", {{"basis", "confirmed"}, {"scope", {"*"}}, {"ref", "C-" + std::to_string(i)}}}});
  }
  return {
      {"schema", "songda.case-event/v1"},
      {"event_id", prefix + "-" + std::to_string(i)},
      {"type", kTypes[i % 4]},
      {"occurred_at", "2026-11-28T09:00:00+08:00"},
      {"court", {{"id", kCourt}, {"name", "商丘市中级人民法院"}}},
      {"case", {{"number", "(2026)豫14民初" + std::to_string(i % 200) + "号"}, {"title", "案件" + std::to_string(i)}}},
      {"document", {{"id", "DOC-" + std::to_string(i)}, {"title", "传票"}, {"sha256", std::string(64, 'a')}}},
      {"recipients", rs},
      {"params",
       {{"hearing_time", "2026-12-10 09:30"},
        {"courtroom", "第三法庭"},
        {"notice_title", "通知"},
        {"notice_text", "请按时到庭"}}}};
}

OutgoingMessage to_message(const std::string& topic, const nlohmann::json& e) {
  return {topic, e["case"]["number"].get<std::string>(), e.dump(), {}};
}

struct Expected {
  std::set<std::string> all;
  std::set<std::string> inapp;
  std::set<std::string> other;                         // sms, wechat, email
  std::map<std::string, std::string> channel_of;       // delivery id -> channel
  std::set<std::string> held;                          // fallbacks waiting on their timer (sd:timers), not queued
  std::map<std::string, long long> queued;             // channel -> deliveries queued (not held)
  std::map<std::string, std::set<std::string>> inbox;  // app_user -> in-app delivery ids
  std::vector<std::string> event_ids;
};

// Route channels the recipient has a contact on (first route matching type and role), as in routes.yaml.
void add_expected(const Config& config, const nlohmann::json& e, Expected& x) {
  x.event_ids.push_back(e["event_id"]);
  for (const auto& r : e["recipients"]) {
    for (const auto& route : config.routes) {
      if (route.event_type != e["type"].get<std::string>()) continue;
      if (!route.roles.empty() &&
          std::find(route.roles.begin(), route.roles.end(), r["role"].get<std::string>()) == route.roles.end()) {
        continue;
      }
      for (const auto& ch : route.channels) {
        const char* field = ch == "inapp"    ? "app_user"
                            : ch == "sms"    ? "mobile"
                            : ch == "wechat" ? "wechat_openid"
                                             : "email";
        if (!r["contacts"].contains(field)) continue;
        const std::string id = delivery_id(e["event_id"], r["id"], ch);
        x.all.insert(id);
        x.channel_of[id] = ch;
        if (ch == "inapp") {
          x.inapp.insert(id);
          x.inbox[r["contacts"]["app_user"]].insert(id);
        } else {
          x.other.insert(id);
        }
      }
      // Receipt-driven fallback: a `to` delivery whose `from` delivery exists waits on a timer (first rule wins).
      for (const auto& fb : route.fallback) {
        const std::string from = delivery_id(e["event_id"], r["id"], fb.from);
        const std::string to = delivery_id(e["event_id"], r["id"], fb.to);
        if (x.all.count(from) != 0 && x.all.count(to) != 0) x.held.insert(to);
      }
      for (const auto& ch : route.channels) {
        const std::string id = delivery_id(e["event_id"], r["id"], ch);
        if (x.all.count(id) != 0 && x.held.count(id) == 0) x.queued[ch]++;
      }
      break;
    }
  }
}

std::string sample(const std::vector<std::string>& v, std::size_t n = 5) {
  std::string s;
  for (std::size_t i = 0; i < v.size() && i < n; ++i) s += "\n  " + v[i];
  if (v.size() > n) s += "\n  ... (" + std::to_string(v.size()) + " in all)";
  return s;
}

// Channels the process dispatches: it exports a queue gauge for each.
std::set<std::string> dispatched_channels(const std::string& metrics_text) {
  std::set<std::string> out;
  for (const char* ch : {"inapp", "sms", "wechat", "email"}) {
    if (e2e::metric_value(metrics_text, std::string("songda_queue_") + ch + "_length")) out.insert(ch);
  }
  return out;
}

// Every channel of the shipped config, all dispatched: the tests assert it (a channel the process did not start
// would leave its deliveries ACCEPTED, and every check below would be about nothing).
const std::set<std::string> kAllChannels{"email", "inapp", "sms", "wechat"};

// Deliveries not held as fallbacks that are not DELIVERED (yet). Every one must get there: in-app at once, SMS and
// WeChat by the simulator's receipts, email when the SMTP server takes it (the e2e tier runs under with-services
// --smtp).
std::vector<std::string> undelivered(RedisConnection& r, const Expected& x) {
  std::vector<std::string> ids;
  for (const auto& [id, _] : x.channel_of) {
    if (x.held.count(id) == 0) ids.push_back(id);
  }
  std::vector<std::vector<std::string>> cmds;
  for (const auto& id : ids) cmds.push_back({"HGET", "sd:dlv:{" + id + "}", "status"});
  const auto reps = pipelined(r, cmds);
  std::vector<std::string> out;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (reps[i].str != "DELIVERED") out.push_back(ids[i] + " (" + x.channel_of.at(ids[i]) + ") " + reps[i].str);
  }
  return out;
}

// Every expected delivery exists exactly once with the right history; nothing else exists; inboxes
// hold each of their messages once. A fallback delivery stays ACCEPTED, HELD on its timer; every other
// delivery is DELIVERED exactly once. No status is ever recorded twice (retries aside).
void verify_store(RedisConnection& r, const Expected& x) {
  std::set<std::string> found;
  for (const auto& k : scan_keys(r, "sd:dlv:{*}")) found.insert(k.substr(8, k.size() - 9));
  std::vector<std::string> missing;
  std::vector<std::string> unexpected;
  std::set_difference(x.all.begin(), x.all.end(), found.begin(), found.end(), std::back_inserter(missing));
  std::set_difference(found.begin(), found.end(), x.all.begin(), x.all.end(), std::back_inserter(unexpected));
  EXPECT_TRUE(missing.empty()) << missing.size() << " deliveries missing:" << sample(missing);
  EXPECT_TRUE(unexpected.empty()) << unexpected.size() << " unexpected deliveries:" << sample(unexpected);
  EXPECT_EQ(found.size(), x.all.size());

  std::set<std::string> events;
  for (const auto& k : scan_keys(r, "sd:evt:{*}")) events.insert(k.substr(8, k.size() - 9));
  EXPECT_EQ(events, std::set<std::string>(x.event_ids.begin(), x.event_ids.end()));

  std::vector<std::string> ids(x.all.begin(), x.all.end());
  std::vector<std::vector<std::string>> cmds;
  for (const auto& id : ids) {
    cmds.push_back({"LRANGE", "sd:dlv:{" + id + "}:hist", "0", "-1"});
    cmds.push_back({"HGET", "sd:dlv:{" + id + "}", "status"});
    cmds.push_back({"ZSCORE", "sd:timers", id});
  }
  const auto reps = pipelined(r, cmds);
  std::vector<std::string> bad;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    std::map<std::string, int> n;
    std::string statuses;
    const auto& hist = reps[3 * i].elements;
    std::vector<std::string> seq;
    for (const auto& e : hist) {
      const auto j = nlohmann::json::parse(e.str, nullptr, false);
      const std::string s = j.is_object() ? j.value("status", "?") : "unparsable";
      n[s]++;
      seq.push_back(s);
      statuses += s + " ";
    }
    const std::string& status = reps[3 * i + 1].str;
    const bool on_timer = !reps[3 * i + 2].is_nil();
    const std::string& ch = x.channel_of.at(ids[i]);
    bool ok = n["ACCEPTED"] == 1;
    for (const auto& [st, count] : n) ok = ok && (count == 1 || st == "RETRY_SCHEDULED");
    if (x.held.count(ids[i]) != 0) {
      ok = ok && seq == std::vector<std::string>{"ACCEPTED", "HELD"} && status == "ACCEPTED" && on_timer;
    } else {
      ok = ok && n["DELIVERED"] == 1 && status == "DELIVERED" && !on_timer;
    }
    if (!ok) bad.push_back(ids[i] + " (" + ch + ") status " + status + ", history " + statuses);
  }
  EXPECT_TRUE(bad.empty()) << bad.size() << " deliveries with a wrong history:" << sample(bad);

  // Inboxes: exactly the expected messages, each once (zset members and message hash agree).
  std::vector<std::string> users;
  cmds.clear();
  for (const auto& [user, _] : x.inbox) {
    users.push_back(user);
    cmds.push_back({"ZRANGE", "sd:inbox:{" + user + "}", "0", "-1"});
    cmds.push_back({"HKEYS", "sd:inbox:{" + user + "}:msg"});
  }
  const auto inbox_reps = pipelined(r, cmds);
  std::vector<std::string> bad_inboxes;
  for (std::size_t i = 0; i < users.size(); ++i) {
    std::vector<std::string> members;
    for (const auto& e : inbox_reps[2 * i].elements) members.push_back(e.str);
    std::vector<std::string> fields;
    for (const auto& e : inbox_reps[2 * i + 1].elements) fields.push_back(e.str);
    std::sort(members.begin(), members.end());
    std::sort(fields.begin(), fields.end());
    const auto& want = x.inbox.at(users[i]);
    const std::vector<std::string> want_v(want.begin(), want.end());
    if (members != want_v || fields != want_v) {
      bad_inboxes.push_back(users[i] + ": " + std::to_string(members.size()) + " listed, " +
                            std::to_string(fields.size()) + " messages, " + std::to_string(want.size()) + " expected");
    }
  }
  EXPECT_TRUE(bad_inboxes.empty()) << bad_inboxes.size() << " inboxes wrong:" << sample(bad_inboxes);
  EXPECT_EQ(scan_keys(r, "sd:inbox:{*}").size(), x.inbox.size()) << "inboxes of unknown users exist";

  for (const auto& [ch, n] : x.queued) {
    EXPECT_EQ(zcard(r, "sd:q:" + ch), 0) << "queue " << ch << " still holds deliveries (" << n << " were queued)";
  }
  EXPECT_EQ(zcard(r, "sd:timers"), static_cast<long long>(x.held.size())) << "fallbacks waiting on a timer";
}

void expect_committed_to_end(const std::string& brokers, const std::string& group, const std::string& topic) {
  for (const auto& [p, co] : committed_vs_end(brokers, group, topic, kPartitions)) {
    if (co.second == 0) continue;  // an empty partition has nothing to commit
    EXPECT_EQ(co.first, co.second) << "partition " << p << ": committed offset short of the end";
  }
}

std::string url_encode(const std::string& s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (const unsigned char c : s) {
    if (std::isalnum(c) != 0 || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

// One deployment of songda: its config file and names, and the provider simulator playing its SMS and
// WeChat providers.
struct Instance {
  std::string name;
  std::string topic;
  std::string group;
  std::string config_path;
  std::string redis_url;
  int port = 0;
  int sim_port = 0;
  Config config;  // the config file as loaded (routes for the expected deliveries)
};

class BinaryE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    brokers_ = require_env("SONGDA_TEST_KAFKA_BROKERS");
    redis_base_ = require_env("SONGDA_TEST_REDIS_URL");
  }

  void TearDown() override {
    if (HasFailure()) {
      for (const auto& c : children_) {
        std::fprintf(stderr, "\n----- %s (pid %d) -----\n%s", c->describe().c_str(), c->pid(),
                     e2e::file_tail(c->out_path()).c_str());
        if (c->err_path() != c->out_path()) {
          std::fprintf(stderr, "----- its stderr -----\n%s", e2e::file_tail(c->err_path()).c_str());
        }
      }
      std::fprintf(stderr, "----- end of child output -----\n");
    }
    children_.clear();  // SIGKILLs whatever still runs
  }

  // A fresh deployment: the shipped gateway.yaml with its own topics, group and HTTP port, a short
  // dispatch poll and lease, a short Kafka session, no quiet hours (the tests run at any hour), SMS and
  // WeChat providers played by a provider simulator (started here), email to the test SMTP sink when
  // there is one (with-services --smtp; else to a closed port: no test event has an email contact
  // except one example). Creates the topics and empties the Redis database. Kafka brokers and Redis URL
  // reach songda through the environment.
  // `tweak`, when given, edits the test's copy of the config before it is written.
  Instance make_instance(const std::string& name, const std::string& redis_url,
                         const std::function<void(YAML::Node&)>& tweak = {}) {
    Instance in;
    in.name = name;
    in.topic = unique_name("e2e-" + name);
    in.group = unique_name("songda-e2e-" + name);
    in.port = e2e::free_port();
    in.sim_port = e2e::free_port();
    in.redis_url = redis_url;
    const std::string sim_url = "http://127.0.0.1:" + std::to_string(in.sim_port);
    YAML::Node y = YAML::LoadFile(std::string(SONGDA_SOURCE_DIR) + "/config/gateway.yaml");
    y["kafka"]["topic"] = in.topic;
    y["kafka"]["dlq_topic"] = in.topic + ".dlq";
    y["kafka"]["checkpoint_topic"] = in.topic + ".checkpoints";
    y["kafka"]["group_id"] = in.group;
    // A SIGKILLed member leaves the group after 6 s (the broker's minimum) instead of 45 s.
    y["kafka"]["properties"]["session.timeout.ms"] = "6000";
    y["http"]["listen"] = "127.0.0.1:" + std::to_string(in.port);
    y["http"]["public_base_url"] = "http://127.0.0.1:" + std::to_string(in.port);
    y["dispatch"]["poll_ms"] = 10;
    y["dispatch"]["lease_ms"] = 3000;  // a SIGKILLed process's claims come back after 3 s
    // An attempt cut off by the SIGKILL: ask the provider 2 s later (its receipts come after ~0.2 s here).
    y["dispatch"]["in_doubt_wait_ms"] = 2000;
    if (y["quiet_hours"]) y["quiet_hours"]["enabled"] = false;
    if (auto ch = y["channels"]) {
      if (auto sms = ch["sms"]; sms && sms["providers"]) {
        for (auto p : sms["providers"]) p["endpoint"] = sim_url;
      }
      if (auto wx = ch["wechat"]) wx["endpoint"] = sim_url;
      if (auto mail = ch["email"]) {
        const char* host = std::getenv("SONGDA_TEST_SMTP_HOST");
        const char* port = std::getenv("SONGDA_TEST_SMTP_PORT");
        mail["smtp_url"] = host != nullptr && port != nullptr ? "smtp://" + std::string(host) + ":" + port
                                                              : "smtp://127.0.0.1:" + std::to_string(e2e::free_port());
        mail["starttls"] = "none";
      }
    }
    if (tweak) tweak(y);
    YAML::Emitter out;
    out << y;
    in.config_path = dir_.file(name + ".yaml");
    e2e::write_file(in.config_path, std::string(out.c_str()) + "\n");
    auto loaded = load_config_file(in.config_path);
    if (!loaded.config) {
      std::string issues;
      for (const auto& i : loaded.issues) issues += "\n  " + i.to_string();
      throw std::runtime_error("the test's config is invalid:" + issues);
    }
    in.config = *loaded.config;
    testing::create_topic(brokers_, in.topic, kPartitions);
    testing::create_topic(brokers_, in.topic + ".dlq", 1);
    must(connect_redis(redis_url)->command({"FLUSHDB"}), "FLUSHDB");

    ChildProcess& sim = spawn({SONGDA_SIM_BINARY, "--listen", "127.0.0.1:" + std::to_string(in.sim_port),
                               "--callback-base", "http://127.0.0.1:" + std::to_string(in.port)},
                              provider_env(), "provider-sim-" + name);
    httplib::Client cli("127.0.0.1", in.sim_port);
    cli.set_connection_timeout(1);
    const bool up = wait_until(
        [&] {
          auto r = cli.Get("/_sim/healthz");
          return !sim.running() || (r && r->status == 200);
        },
        20s);
    if (!up || !sim.running()) throw std::runtime_error("the provider simulator did not start");
    return in;
  }

  // POST /_sim/config; throws unless the simulator answers 200.
  static void sim_config(const Instance& in, const nlohmann::json& body) {
    httplib::Client cli("127.0.0.1", in.sim_port);
    cli.set_connection_timeout(2);
    auto r = cli.Post("/_sim/config", body.dump(), "application/json");
    if (!r || r->status != 200) {
      throw std::runtime_error("POST /_sim/config " + body.dump() + " -> " +
                               (r ? std::to_string(r->status) + " " + r->body : std::string("no answer")));
    }
  }

  // What the simulator accepted from one provider: {"messages": [{provider, to, key, id, ...}]}.
  static nlohmann::json sim_messages(const Instance& in, const std::string& provider) {
    httplib::Client cli("127.0.0.1", in.sim_port);
    auto r = cli.Get("/_sim/messages?provider=" + provider);
    if (!r || r->status != 200) throw std::runtime_error("GET /_sim/messages failed");
    return nlohmann::json::parse(r->body);
  }

  // The simulator's counters: {"aliyun": {...}, "tencent": {...}, "wechat": {...}}.
  static nlohmann::json sim_stats(const Instance& in) {
    httplib::Client cli("127.0.0.1", in.sim_port);
    auto r = cli.Get("/_sim/stats");
    if (!r || r->status != 200) throw std::runtime_error("GET /_sim/stats failed");
    return nlohmann::json::parse(r->body);
  }

  // What the simulator saw of the SMS: sends accepted against deliveries expected, numbers sent twice.
  static void print_sim_stats(const Instance& in, const Expected& x) {
    const auto st = sim_stats(in);
    std::printf("[ info ] provider simulator: %lld SMS accepted for %lld SMS deliveries sent; %lld sent twice\n",
                st["aliyun"]["accepted"].get<long long>() + st["tencent"]["accepted"].get<long long>(),
                x.queued.count("sms") != 0 ? x.queued.at("sms") : 0LL,
                st["aliyun"]["duplicate_count"].get<long long>() + st["tencent"]["duplicate_count"].get<long long>());
  }

  ChildProcess& spawn(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
                      const std::string& label, bool split_stderr = false) {
    const std::string base = dir_.file(label + "-" + std::to_string(++seq_));
    children_.push_back(std::make_unique<ChildProcess>(argv, env, base + ".out", split_stderr ? base + ".err" : ""));
    return *children_.back();
  }

  // The court's evidence signing key, made once per test with `songda keygen`.
  std::string evidence_key_file() {
    const std::string keydir = dir_.file("keys");
    if (!std::filesystem::exists(keydir + "/court.key")) {
      const std::string cmd = std::string(SONGDA_BINARY) + " keygen --out " + keydir + " > /dev/null";
      EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;  // NOLINT(cert-env33-c): test setup
    }
    return keydir + "/court.key";
  }

  ChildProcess& start_songda(const Instance& in, std::map<std::string, std::string> env = {}) {
    env["SONGDA_KAFKA_BROKERS"] = brokers_;
    env["SONGDA_REDIS_URL"] = in.redis_url;
    for (const auto& [k, v] : provider_env()) env.emplace(k, v);
    env.emplace("SONGDA_LINK_SECRET", "e2e-link-secret-0123456789abcdef");
    env.emplace("SONGDA_EVIDENCE_SALT", "e2e-evidence-salt-0123456789");
    env.emplace("SONGDA_EVIDENCE_KEY_FILE", evidence_key_file());
    return spawn({SONGDA_BINARY, "run", "--config", in.config_path}, env, "songda-" + in.name);
  }

  // Waits until GET /healthz answers 200 (false when the child exits first or 30 s pass).
  static bool wait_healthy(ChildProcess& child, int port) {
    httplib::Client cli("127.0.0.1", port);
    cli.set_connection_timeout(1);
    return wait_until(
               [&] {
                 if (!child.running()) return true;
                 auto r = cli.Get("/healthz");
                 return r && r->status == 200;
               },
               30s) &&
           child.running();
  }

  static std::string metrics(int port) {
    httplib::Client cli("127.0.0.1", port);
    cli.set_connection_timeout(1);
    auto r = cli.Get("/metrics");
    return r && r->status == 200 ? r->body : std::string();
  }

  // SIGTERM, then the exit code within 30 s (-1 when it did not exit in time, -2 on death by signal).
  static int terminate(ChildProcess& child, double* seconds = nullptr) {
    const auto t0 = std::chrono::steady_clock::now();
    child.signal(SIGTERM);
    const auto st = child.wait_exit(30s);
    if (seconds != nullptr) *seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!st) return -1;
    if (!WIFEXITED(*st)) {
      ADD_FAILURE() << child.describe() << " ended by " << e2e::describe_wait_status(*st);
      return -2;
    }
    return WEXITSTATUS(*st);
  }

  std::string brokers_;
  std::string redis_base_;
  e2e::TempDir dir_;
  std::vector<std::unique_ptr<ChildProcess>> children_;
  int seq_ = 0;
};

// ---------------------------------------------------------------------------------------------

TEST_F(BinaryE2eTest, KillNineMidRunLosesNothingAndDuplicatesNothing) {
  constexpr int kEvents = 3000;
  constexpr int kFirstWave = 2000;  // published before the SIGKILL; the rest while it is down
  const Instance in = make_instance("kill9", redis_url_with_db(redis_base_, 11));
  Expected x;
  std::vector<OutgoingMessage> first_wave;
  std::vector<OutgoingMessage> second_wave;
  for (int i = 0; i < kEvents; ++i) {
    const auto e = make_event("k9", i);
    add_expected(in.config, e, x);
    (i < kFirstWave ? first_wave : second_wave).push_back(to_message(in.topic, e));
  }
  ASSERT_GT(x.other.size(), 0u);
  std::printf("[ info ] %zu deliveries expected: %zu in-app, %zu held as fallbacks, %zu queued on other channels\n",
              x.all.size(), x.inapp.size(), x.held.size(), x.other.size() - x.held.size());
  auto redis = connect_redis(in.redis_url);

  ChildProcess& first = start_songda(in);
  ASSERT_TRUE(wait_healthy(first, in.port)) << "songda did not come up";
  KafkaConfig kc;
  kc.brokers = brokers_;
  KafkaProducer producer(kc);
  ASSERT_TRUE(producer.produce_all(first_wave).ok());

  // Some, not all, recorded: then SIGKILL in the middle of the run.
  const bool some = wait_until(
      [&] {
        return e2e::metric_value(metrics(in.port), "songda_ingest_events_accepted_total").value_or(0) >= 300 ||
               !first.running();
      },
      60s, 5ms);
  ASSERT_TRUE(some && first.running()) << "songda recorded too little (or died) before the kill";
  first.signal(SIGKILL);
  const auto killed = first.wait_exit(10s);
  ASSERT_TRUE(killed.has_value());
  ASSERT_TRUE(WIFSIGNALED(*killed) && WTERMSIG(*killed) == SIGKILL) << e2e::describe_wait_status(*killed);
  const std::size_t at_kill = recorded_events(*redis, x.event_ids).size();
  std::printf("[ info ] SIGKILL after %zu of %d events were recorded\n", at_kill, kEvents);
  EXPECT_GT(at_kill, 0u);
  EXPECT_LT(at_kill, static_cast<std::size_t>(kEvents));

  // A new process with the same config finishes the job; the rest is published meanwhile.
  ChildProcess& second = start_songda(in);
  ASSERT_TRUE(producer.produce_all(second_wave).ok());
  ASSERT_TRUE(wait_healthy(second, in.port)) << "songda did not come up again";
  ASSERT_EQ(dispatched_channels(metrics(in.port)), kAllChannels) << metrics(in.port);
  std::size_t recorded = 0;
  std::vector<std::string> pending;
  const bool done = wait_until(
      [&] {
        if (!second.running()) return true;
        recorded = recorded_events(*redis, x.event_ids).size();
        if (recorded != static_cast<std::size_t>(kEvents)) return false;
        pending = undelivered(*redis, x);
        return pending.empty();
      },
      150s, 200ms);
  ASSERT_TRUE(done && second.running()) << "after restart: " << recorded << " of " << kEvents << " events recorded, "
                                        << pending.size() << " deliveries not DELIVERED:" << sample(pending);
  const std::string m = metrics(in.port);
  std::printf("[ info ] restarted process: %.0f new events, %.0f redelivered duplicates\n",
              e2e::metric_value(m, "songda_ingest_events_accepted_total").value_or(-1),
              e2e::metric_value(m, "songda_ingest_events_duplicate_total").value_or(-1));
  EXPECT_EQ(e2e::metric_value(m, "songda_ingest_events_rejected_total").value_or(-1), 0);
  EXPECT_EQ(e2e::metric_value(m, "songda_internal_errors_total").value_or(-1), 0) << "an exception was contained";
  // A signer taking the lease after the restart reads the witness topic: the history it continues is the one the
  // killed process published.
  EXPECT_EQ(e2e::metric_value(m, "songda_evidence_witness_conflicts_total").value_or(-1), 0) << m;
  print_sim_stats(in, x);

  ASSERT_EQ(terminate(second), 0) << "exit code after SIGTERM (-1: still running after 30 s)";
  expect_committed_to_end(brokers_, in.group, in.topic);
  verify_store(*redis, x);
}

TEST_F(BinaryE2eTest, SigtermIsGraceful) {
  constexpr int kFirst = 2000;
  constexpr int kSecond = 3000;
  const Instance in = make_instance("sigterm", redis_url_with_db(redis_base_, 12));
  auto redis = connect_redis(in.redis_url);
  KafkaConfig kc;
  kc.brokers = brokers_;
  KafkaProducer producer(kc);

  // Phase 1: everything processed, then SIGTERM: exit 0, every partition committed to its end.
  Expected x;
  std::vector<OutgoingMessage> wave;
  for (int i = 0; i < kFirst; ++i) {
    const auto e = make_event("st", i);
    add_expected(in.config, e, x);
    wave.push_back(to_message(in.topic, e));
  }
  ChildProcess& first = start_songda(in);
  ASSERT_TRUE(wait_healthy(first, in.port));
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(producer.produce_all(wave).ok());
  const double publish_secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::size_t recorded = 0;
  ASSERT_TRUE(wait_until(
      [&] {
        recorded = recorded_events(*redis, x.event_ids).size();
        return recorded == static_cast<std::size_t>(kFirst) || !first.running();
      },
      60s, 20ms))
      << recorded << " of " << kFirst << " recorded";
  ASSERT_EQ(recorded, static_cast<std::size_t>(kFirst));
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("[ info ] binary: %d events published (%.2f s) and recorded in %.2f s = %.0f events/s (informational)\n",
              kFirst, publish_secs, secs, kFirst / secs);
  ASSERT_EQ(dispatched_channels(metrics(in.port)), kAllChannels) << metrics(in.port);
  std::vector<std::string> pending;
  ASSERT_TRUE(wait_until(
      [&] {
        pending = undelivered(*redis, x);
        return pending.empty();
      },
      90s, 200ms))
      << pending.size() << " deliveries not DELIVERED:" << sample(pending);
  {  // no crash: every SMS reached the provider exactly once
    const auto st = sim_stats(in);
    EXPECT_GT(x.queued["sms"], 0);
    EXPECT_EQ(st["aliyun"]["accepted"].get<long long>() + st["tencent"]["accepted"].get<long long>(), x.queued["sms"])
        << st.dump();
    EXPECT_EQ(st["aliyun"]["duplicate_count"], 0) << st.dump();
    EXPECT_EQ(st["tencent"]["duplicate_count"], 0) << st.dump();
  }
  double stop_secs = 0;
  ASSERT_EQ(terminate(first, &stop_secs), 0) << "SIGTERM must end songda with exit code 0 within 30 s";
  std::printf("[ info ] graceful stop took %.2f s\n", stop_secs);
  expect_committed_to_end(brokers_, in.group, in.topic);
  verify_store(*redis, x);

  // Phase 2: SIGTERM while events still flow. Exit 0, and the committed offsets cover exactly the
  // recorded messages: nothing recorded left uncommitted, nothing committed left unrecorded.
  std::vector<OutgoingMessage> wave2;
  std::vector<std::string> ids2;
  for (int i = 0; i < kSecond; ++i) {
    const auto e = make_event("st2", i);
    ids2.push_back(e["event_id"]);
    wave2.push_back(to_message(in.topic, e));
  }
  ChildProcess& second = start_songda(in);
  ASSERT_TRUE(wait_healthy(second, in.port));
  ASSERT_TRUE(producer.produce_all(wave2).ok());
  ASSERT_TRUE(wait_until([&] { return !recorded_events(*redis, ids2).empty() || !second.running(); }, 60s, 5ms));
  ASSERT_EQ(terminate(second, &stop_secs), 0) << "SIGTERM under load must end songda with exit code 0 within 30 s";
  const auto recorded2 = recorded_events(*redis, ids2);
  std::printf("[ info ] SIGTERM under load: %zu of %d events recorded; stop took %.2f s\n", recorded2.size(), kSecond,
              stop_secs);
  const auto committed = committed_vs_end(brokers_, in.group, in.topic, kPartitions);
  const std::set<std::string> first_ids(x.event_ids.begin(), x.event_ids.end());
  std::vector<std::string> lost;
  std::vector<std::string> uncommitted;
  for (const auto& msg : testing::read_all(brokers_, in.topic)) {
    const auto j = nlohmann::json::parse(msg.value);
    const std::string id = j["event_id"];
    const bool is_recorded = recorded2.count(id) != 0 || first_ids.count(id) != 0;
    const bool is_committed = msg.offset < committed.at(msg.partition).first;
    const std::string where = id + " at " + std::to_string(msg.partition) + "/" + std::to_string(msg.offset);
    if (is_committed && !is_recorded) lost.push_back(where);
    if (is_recorded && !is_committed) uncommitted.push_back(where);
  }
  EXPECT_TRUE(lost.empty()) << lost.size() << " messages committed but never recorded (lost):" << sample(lost);
  EXPECT_TRUE(uncommitted.empty()) << uncommitted.size()
                                   << " recorded messages left uncommitted:" << sample(uncommitted);
}

TEST_F(BinaryE2eTest, EndToEndOverHttp) {
  const std::string sq_key = "key-for-shangqiu-court-0001";
  const std::string js_key = "key-for-jinshui-court-00002";
  const std::string admin = "operator-token-0123456789";
  const Instance in = make_instance("http", redis_url_with_db(redis_base_, 13));
  ChildProcess& child = start_songda(
      in, {{"SONGDA_API_KEYS", "HN-SQ-ZY=" + sq_key + ",HN-ZZ-JS=" + js_key}, {"SONGDA_ADMIN_TOKEN", admin}});
  ASSERT_TRUE(wait_healthy(child, in.port));

  // The shipped examples, as a case system would publish them.
  std::vector<std::filesystem::path> files;
  for (const auto& f : std::filesystem::directory_iterator(std::string(SONGDA_SOURCE_DIR) + "/schemas/examples")) {
    if (f.path().extension() == ".json") files.push_back(f.path());
  }
  std::sort(files.begin(), files.end());
  ASSERT_FALSE(files.empty());
  Expected x;
  std::vector<OutgoingMessage> msgs;
  std::map<std::string, nlohmann::json> by_type;
  for (const auto& f : files) {
    const auto e = nlohmann::json::parse(e2e::read_file(f.string()));
    add_expected(in.config, e, x);
    msgs.push_back(to_message(in.topic, e));
    by_type[e["type"]] = e;
  }
  ASSERT_EQ(by_type.count("summons.issued"), 1u) << "schemas/examples/summons.json is the one this test reads";
  KafkaConfig kc;
  kc.brokers = brokers_;
  ASSERT_TRUE(KafkaProducer(kc).produce_all(msgs).ok());

  httplib::Client cli("127.0.0.1", in.port);
  cli.set_connection_timeout(2);
  const httplib::Headers sq{{"Authorization", "Bearer " + sq_key}};
  const httplib::Headers js{{"Authorization", "Bearer " + js_key}};
  const httplib::Headers op{{"Authorization", "Bearer " + admin}};

  // Every delivery of every example not held as a fallback reaches DELIVERED, as the case API reports it.
  std::map<std::string, std::string> status;  // delivery id -> status, as the API reports it
  std::string last_answer;
  ASSERT_EQ(dispatched_channels(metrics(in.port)), kAllChannels) << metrics(in.port);
  const auto poll_cases = [&] {
    status.clear();
    for (const auto& [type, e] : by_type) {
      const std::string court = e["court"]["id"];
      const std::string path = "/v1/cases/" + url_encode(e["case"]["number"]) + "/deliveries";
      auto r = cli.Get(path, court == kCourt ? sq : js);
      last_answer = "GET " + path + " -> " + (r ? std::to_string(r->status) + " " + r->body : "no answer");
      if (!r || r->status != 200) return false;
      const auto body = nlohmann::json::parse(r->body);
      for (const auto& d : body["deliveries"]) status[d["id"].get<std::string>()] = d["status"].get<std::string>();
    }
    // Every delivery not held as a fallback is DELIVERED.
    for (const auto& [id, ch] : x.channel_of) {
      if (x.held.count(id) == 0 && (status.count(id) == 0 || status[id] != "DELIVERED")) {
        return false;
      }
    }
    return status.size() == x.all.size();
  };
  ASSERT_TRUE(wait_until(poll_cases, 30s, 50ms))
      << "deliveries seen: " << nlohmann::json(status).dump() << "\nlast: " << last_answer << "\nmetrics:\n"
      << metrics(in.port);
  for (const auto& id : x.held) {  // a fallback shows why it waits
    auto r = cli.Get("/v1/deliveries/" + id, op);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    const auto body = nlohmann::json::parse(r->body);
    std::vector<std::string> hist;
    for (const auto& h : body["history"]) hist.push_back(h["status"]);
    EXPECT_EQ(hist, (std::vector<std::string>{"ACCEPTED", "HELD"})) << r->body;
  }

  // The summons to 张三 in the app: read it.
  const auto& summons = by_type["summons.issued"];
  const std::string user = summons["recipients"][0]["contacts"]["app_user"];
  const std::string id = delivery_id(summons["event_id"], summons["recipients"][0]["id"], "inapp");
  auto inbox = cli.Get("/v1/inbox/" + user, sq);
  ASSERT_TRUE(inbox);
  ASSERT_EQ(inbox->status, 200) << inbox->body;
  const auto ij = nlohmann::json::parse(inbox->body);
  ASSERT_EQ(ij["messages"].size(), 1u) << inbox->body;
  EXPECT_EQ(ij["messages"][0]["id"], id);
  EXPECT_EQ(ij["unread"], 1);

  auto forbidden_read = cli.Post("/v1/inbox/" + user + "/messages/" + id + "/read", js, "", "application/json");
  ASSERT_TRUE(forbidden_read);
  EXPECT_EQ(forbidden_read->status, 403) << forbidden_read->body;
  auto by_court = cli.Post("/v1/inbox/" + user + "/messages/" + id + "/read", sq, "", "application/json");
  ASSERT_TRUE(by_court);
  EXPECT_EQ(by_court->status, 403) << "a court key cannot record a READ: " << by_court->body;
  auto read = cli.Post("/v1/inbox/" + user + "/messages/" + id + "/read", op, "", "application/json");
  ASSERT_TRUE(read);
  ASSERT_EQ(read->status, 200) << read->body;

  auto view = cli.Get("/v1/deliveries/" + id, sq);
  ASSERT_TRUE(view);
  ASSERT_EQ(view->status, 200) << view->body;
  const auto vj = nlohmann::json::parse(view->body);
  EXPECT_EQ(vj["status"], "READ");
  std::vector<std::string> timeline;
  std::string previous;
  for (const auto& h : vj["history"]) {
    timeline.push_back(h["status"]);
    const std::string at = h["at"];
    EXPECT_TRUE(e2e::is_rfc3339(at)) << "history time not RFC 3339: " << at;
    EXPECT_LE(previous, at) << "history out of order";
    previous = at;
  }
  EXPECT_EQ(timeline, (std::vector<std::string>{"ACCEPTED", "DELIVERED", "READ"})) << view->body;
  EXPECT_TRUE(e2e::is_rfc3339(vj.value("created_at", ""))) << view->body;
  EXPECT_TRUE(e2e::is_rfc3339(vj.value("updated_at", ""))) << view->body;
  EXPECT_EQ(vj["address_masked"].get<std::string>().find(user), std::string::npos) << "address not masked";

  // Authentication and court scope.
  auto no_key = cli.Get("/v1/deliveries/" + id);
  ASSERT_TRUE(no_key);
  EXPECT_EQ(no_key->status, 401);
  EXPECT_EQ(nlohmann::json::parse(no_key->body)["error"]["code"], "unauthenticated");
  auto wrong_key = cli.Get("/v1/deliveries/" + id, {{"Authorization", "Bearer not-a-key-at-all-000000"}});
  ASSERT_TRUE(wrong_key);
  EXPECT_EQ(wrong_key->status, 401);
  auto other_court = cli.Get("/v1/deliveries/" + id, js);
  ASSERT_TRUE(other_court);
  EXPECT_EQ(other_court->status, 403);
  EXPECT_EQ(nlohmann::json::parse(other_court->body)["error"]["code"], "forbidden");
  const std::string case_path = "/v1/cases/" + url_encode(summons["case"]["number"]) + "/deliveries";
  auto other_case = cli.Get(case_path, js);
  ASSERT_TRUE(other_case);
  EXPECT_EQ(other_case->status, 403);
  auto operator_case = cli.Get(case_path, op);
  ASSERT_TRUE(operator_case);
  EXPECT_EQ(operator_case->status, 200);
  auto unknown = cli.Get("/v1/no-such-thing", sq);
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404);
  EXPECT_TRUE(nlohmann::json::parse(unknown->body, nullptr, false).contains("error")) << unknown->body;

  // Operations endpoints.
  auto health = cli.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_TRUE(wait_until(
      [&] {
        auto r = cli.Get("/readyz");
        return r && r->status == 200;
      },
      10s))
      << "/readyz did not answer 200";
  // `songda healthcheck`, as the image's HEALTHCHECK runs it: 0 against this process, 1 where nothing listens.
  for (const auto& [port, want] : {std::pair{in.port, 0}, std::pair{1, 1}}) {
    ChildProcess& hc = spawn({SONGDA_BINARY, "healthcheck", "--url", "http://127.0.0.1:" + std::to_string(port)}, {},
                             "healthcheck", true);
    const auto hst = hc.wait_exit(15s);
    ASSERT_TRUE(hst.has_value()) << "songda healthcheck did not end";
    EXPECT_TRUE(WIFEXITED(*hst) && WEXITSTATUS(*hst) == want)
        << "port " << port << ": " << e2e::describe_wait_status(*hst) << "\n"
        << e2e::read_file(hc.err_path());
  }
  const std::string m = metrics(in.port);
  EXPECT_EQ(e2e::metric_value(m, "songda_ingest_events_accepted_total"), static_cast<double>(files.size())) << m;
  EXPECT_EQ(e2e::metric_value(m, "songda_ingest_events_rejected_total"), 0.0) << m;
  EXPECT_EQ(e2e::metric_value(m, "songda_deliveries_planned_total"), static_cast<double>(x.all.size())) << m;
  // Delivered at the send: every in-app and email delivery not held as a fallback, once (SMS and WeChat arrive by
  // receipts, counted as such).
  long long delivered_at_send = 0;
  for (const auto& [did, ch] : x.channel_of) {
    if ((ch == "inapp" || ch == "email") && x.held.count(did) == 0) ++delivered_at_send;
  }
  EXPECT_EQ(e2e::metric_value(m, "songda_dispatch_delivered_total"), static_cast<double>(delivered_at_send)) << m;

  // The SMS providers' own counters (per provider): the simulator took every SMS request; no circuit is open.
  EXPECT_GT(e2e::metric_value(m, "songda_sms_provider_requests_total{provider=\"aliyun-main\"}").value_or(0) +
                e2e::metric_value(m, "songda_sms_provider_requests_total{provider=\"tencent-backup\"}").value_or(0),
            0.0)
      << m;
  EXPECT_EQ(e2e::metric_value(m, "songda_sms_provider_circuit_open{provider=\"aliyun-main\"}"), 0.0) << m;
  EXPECT_EQ(e2e::metric_value(m, "songda_queue_inapp_length"), 0.0) << m;
  EXPECT_EQ(e2e::metric_value(m, "songda_internal_errors_total"), 0.0) << m;
  EXPECT_NE(m.find("# TYPE songda_ingest_events_accepted_total counter"), std::string::npos) << m;

  ASSERT_EQ(terminate(child), 0) << "exit code after SIGTERM (-1: still running after 30 s)";
  expect_committed_to_end(brokers_, in.group, in.topic);
}

TEST_F(BinaryE2eTest, BadConfigFailsFastWithPosition) {
  // The shipped file with two mistakes: an unknown key and a value of the wrong type.
  std::string yaml = e2e::read_file(std::string(SONGDA_SOURCE_DIR) + "/config/gateway.yaml");
  e2e::replace_once(yaml, "\nhttp:\n", "\nhttp:\n  listen_backlog: 64\n");
  e2e::replace_once(yaml, "\n  batch_max: 500\n", "\n  batch_max: lots\n");
  const auto line_of = [&](const std::string& needle) {
    const auto at = yaml.find(needle);
    return 1 + static_cast<int>(std::count(yaml.begin(), yaml.begin() + static_cast<long>(at), '\n'));
  };
  const int unknown_line = line_of("  listen_backlog: 64");
  const int type_line = line_of("  batch_max: lots");
  const std::string bad = dir_.file("bad.yaml");
  e2e::write_file(bad, yaml);
  const std::string unknown_pos = bad + ":" + std::to_string(unknown_line) + ":3";
  const std::string type_pos = bad + ":" + std::to_string(type_line) + ":";

  // `run` refuses to start, quickly, and says where.
  ChildProcess& run = spawn(
      {SONGDA_BINARY, "run", "--config", bad},
      {{"SONGDA_KAFKA_BROKERS", brokers_}, {"SONGDA_REDIS_URL", redis_url_with_db(redis_base_, 14)}}, "run-bad", true);
  const auto st = run.wait_exit(15s);
  ASSERT_TRUE(st.has_value()) << "songda run with a bad config kept running";
  ASSERT_TRUE(WIFEXITED(*st)) << e2e::describe_wait_status(*st);
  EXPECT_NE(WEXITSTATUS(*st), 0);
  const std::string run_err = e2e::read_file(run.err_path());
  EXPECT_NE(run_err.find(unknown_pos), std::string::npos) << "stderr does not name " << unknown_pos << ":\n" << run_err;
  EXPECT_NE(run_err.find("listen_backlog"), std::string::npos) << run_err;

  // An argument `run` does not know (here `--config=FILE`) is refused, not ignored for the default config.
  ChildProcess& misspelt = spawn({SONGDA_BINARY, "run", "--config=" + bad}, {}, "run-misspelt", true);
  const auto unknown_st = misspelt.wait_exit(15s);
  ASSERT_TRUE(unknown_st.has_value()) << "songda run with an unknown argument kept running";
  EXPECT_TRUE(WIFEXITED(*unknown_st) && WEXITSTATUS(*unknown_st) == 2) << e2e::describe_wait_status(*unknown_st);
  EXPECT_NE(e2e::read_file(misspelt.err_path()).find("unexpected argument '--config="), std::string::npos)
      << e2e::read_file(misspelt.err_path());

  // The shipped file as it is names the real providers with the example's placeholders: `run` refuses it and says
  // which (before it needs any secret).
  ChildProcess& example =
      spawn({SONGDA_BINARY, "run", "--config", std::string(SONGDA_SOURCE_DIR) + "/config/gateway.yaml"}, {},
            "run-example", true);
  const auto est = example.wait_exit(15s);
  ASSERT_TRUE(est.has_value()) << "songda run with the example's placeholders kept running";
  EXPECT_TRUE(WIFEXITED(*est) && WEXITSTATUS(*est) == 2) << e2e::describe_wait_status(*est);
  EXPECT_NE(e2e::read_file(example.err_path()).find("channels.wechat.app_id: wx0123456789abcdef"), std::string::npos)
      << e2e::read_file(example.err_path());

  // `config check` on the shipped file: exit 0.
  ChildProcess& good =
      spawn({SONGDA_BINARY, "config", "check", std::string(SONGDA_SOURCE_DIR) + "/config/gateway.yaml"}, {},
            "check-good", true);
  const auto gst = good.wait_exit(15s);
  ASSERT_TRUE(gst.has_value());
  EXPECT_TRUE(WIFEXITED(*gst) && WEXITSTATUS(*gst) == 0) << e2e::describe_wait_status(*gst) << "\n"
                                                         << e2e::read_file(good.err_path());

  // `config check` on the bad file: exit 1, every problem with its position.
  ChildProcess& check = spawn({SONGDA_BINARY, "config", "check", bad}, {}, "check-bad", true);
  const auto cst = check.wait_exit(15s);
  ASSERT_TRUE(cst.has_value());
  EXPECT_TRUE(WIFEXITED(*cst) && WEXITSTATUS(*cst) == 1) << e2e::describe_wait_status(*cst);
  const std::string check_err = e2e::read_file(check.err_path());
  EXPECT_NE(check_err.find(unknown_pos), std::string::npos) << check_err;
  EXPECT_NE(check_err.find(type_pos), std::string::npos) << "the second problem is not reported:\n" << check_err;

  // A missing file: non-zero, and the file is named.
  const std::string missing = dir_.file("no-such.yaml");
  ChildProcess& gone = spawn({SONGDA_BINARY, "run", "--config", missing}, {}, "run-missing", true);
  const auto mst = gone.wait_exit(15s);
  ASSERT_TRUE(mst.has_value());
  EXPECT_TRUE(WIFEXITED(*mst) && WEXITSTATUS(*mst) != 0) << e2e::describe_wait_status(*mst);
  EXPECT_NE(e2e::read_file(gone.err_path()).find(missing), std::string::npos) << e2e::read_file(gone.err_path());

  // `songda run` with the shipped file (its providers on loopback, where a simulator would be: the placeholders are
  // refused otherwise, above) and this environment stops at once, naming what is wrong.
  std::string on_loopback = e2e::read_file(std::string(SONGDA_SOURCE_DIR) + "/config/gateway.yaml");
  for (const std::string real :
       {"https://dysmsapi.aliyuncs.com", "https://sms.tencentcloudapi.com", "https://api.weixin.qq.com"}) {
    const auto at = on_loopback.find('"' + real + '"');
    ASSERT_NE(at, std::string::npos) << real;
    on_loopback.replace(at + 1, real.size(), "http://127.0.0.1:9");
  }
  const std::string shipped_on_loopback = dir_.file("shipped-on-loopback.yaml");
  e2e::write_file(shipped_on_loopback, on_loopback);
  const auto refused = [&](const std::map<std::string, std::string>& env, const std::string& name,
                           const std::string& says) {
    ChildProcess& p = spawn({SONGDA_BINARY, "run", "--config", shipped_on_loopback}, env, name, true);
    const auto exit = p.wait_exit(15s);
    ASSERT_TRUE(exit.has_value()) << name << ": songda run kept running";
    EXPECT_TRUE(WIFEXITED(*exit) && WEXITSTATUS(*exit) != 0) << name << ": " << e2e::describe_wait_status(*exit);
    EXPECT_NE(e2e::read_file(p.err_path()).find(says), std::string::npos) << e2e::read_file(p.err_path());
  };
  const std::map<std::string, std::string> services = {{"SONGDA_KAFKA_BROKERS", brokers_},
                                                       {"SONGDA_REDIS_URL", redis_url_with_db(redis_base_, 14)}};
  // No SONGDA_LINK_SECRET: refused with the hint, rather than signing links with a key that dies with the process.
  refused(services, "run-no-link", "SONGDA_LINK_SECRET is unset");
  // A log level spdlog does not know would silence every line, the reason a start failed among them.
  refused({{"SONGDA_LOG_LEVEL", "verbose"}}, "run-log-level", "SONGDA_LOG_LEVEL=verbose is not a log level");
  // No public base URL (the shipped file leaves it empty), rather than sending parties links to
  // http://<listen address>/r/… that their phones cannot open.
  auto no_base = services;
  no_base["SONGDA_HTTP_LISTEN"] = "0.0.0.0:0";
  no_base["SONGDA_LINK_SECRET"] = "e2e-link-secret-0123456789abcdef";
  refused(no_base, "run-no-base", "SONGDA_PUBLIC_BASE_URL");
}

TEST_F(BinaryE2eTest, RedisDownThenBackLosesNothing) {
  constexpr int kEvents = 200;
  constexpr int kBefore = 50;  // recorded before the outage; the rest published in small chunks across it
  const int redis_port = e2e::free_port();
  const std::string redis_dir = dir_.file("redis-data");
  std::filesystem::create_directories(redis_dir);
  const std::string redis_url = "redis://127.0.0.1:" + std::to_string(redis_port) + "/0";
  const auto start_redis = [&]() -> ChildProcess& {
    ChildProcess& r =
        spawn({"redis-server", "--port", std::to_string(redis_port), "--bind", "127.0.0.1", "--dir", redis_dir,
               "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--protected-mode", "yes"},
              {}, "redis");
    const bool up = wait_until(
        [&] {
          if (!r.running()) return true;
          auto ep = parse_redis_url(redis_url);
          auto c = RedisConnection::connect(ep.value(), 500);
          return c.ok() && c.value()->command({"PING"}).ok();
        },
        20s);
    if (!up || !r.running()) throw std::runtime_error("private redis-server did not start");
    return r;
  };
  ChildProcess* redis_proc = &start_redis();
  const Instance in = make_instance("redisdown", redis_url);

  Expected x;
  std::vector<OutgoingMessage> msgs;
  for (int i = 0; i < kEvents; ++i) {
    const auto e = make_event("rd", i);
    add_expected(in.config, e, x);
    msgs.push_back(to_message(in.topic, e));
  }
  ChildProcess& child = start_songda(in);
  ASSERT_TRUE(wait_healthy(child, in.port));
  KafkaConfig kc;
  kc.brokers = brokers_;
  KafkaProducer producer(kc);
  ASSERT_TRUE(producer.produce_all({msgs.begin(), msgs.begin() + kBefore}).ok());
  const std::vector<std::string> before_ids(x.event_ids.begin(), x.event_ids.begin() + kBefore);
  ASSERT_TRUE(
      wait_until([&] { return recorded_events(*connect_redis(redis_url), before_ids).size() == kBefore; }, 60s));

  // The rest flows in 10-event chunks every 250 ms (~4 s) while Redis goes away for ~3 s.
  std::atomic<bool> publish_ok{true};
  std::thread publisher([&] {
    for (int i = kBefore; i < kEvents; i += 10) {
      if (!producer.produce_all({msgs.begin() + i, msgs.begin() + std::min(i + 10, kEvents)}).ok()) publish_ok = false;
      std::this_thread::sleep_for(250ms);
    }
  });
  std::this_thread::sleep_for(500ms);
  redis_proc->signal(SIGKILL);
  redis_proc->wait_exit(10s);
  httplib::Client cli("127.0.0.1", in.port);
  cli.set_connection_timeout(2);
  cli.set_read_timeout(10);
  std::string ready = "no answer";
  EXPECT_TRUE(wait_until(
      [&] {
        auto r = cli.Get("/readyz");
        ready = r ? std::to_string(r->status) + " " + r->body : "no answer";
        return r && r->status == 503;
      },
      10s, 100ms))
      << "/readyz should report not ready while Redis is down: " << ready;
  auto health = cli.Get("/healthz");
  EXPECT_TRUE(health && health->status == 200) << "/healthz (liveness) should stay 200 while Redis is down";
  std::this_thread::sleep_for(2s);
  EXPECT_TRUE(child.running()) << "songda died while Redis was down";
  redis_proc = &start_redis();
  publisher.join();
  ASSERT_TRUE(publish_ok.load());

  auto redis = connect_redis(redis_url);
  ASSERT_EQ(dispatched_channels(metrics(in.port)), kAllChannels) << metrics(in.port);
  std::size_t recorded = 0;
  std::vector<std::string> pending;
  const bool done = wait_until(
      [&] {
        if (!child.running()) return true;
        recorded = recorded_events(*redis, x.event_ids).size();
        if (recorded != static_cast<std::size_t>(kEvents)) return false;
        pending = undelivered(*redis, x);
        return pending.empty();
      },
      90s, 200ms);
  ASSERT_TRUE(done) << recorded << " of " << kEvents << " recorded, " << pending.size()
                    << " deliveries not DELIVERED:" << sample(pending);
  print_sim_stats(in, x);
  ASSERT_TRUE(child.running()) << "songda crashed: it must ride out a Redis outage";
  auto ready_again = cli.Get("/readyz");
  EXPECT_TRUE(ready_again && ready_again->status == 200) << "/readyz should be 200 again";
  ASSERT_EQ(terminate(child), 0) << "exit code after SIGTERM (-1: still running after 30 s)";
  expect_committed_to_end(brokers_, in.group, in.topic);
  verify_store(*redis, x);
}

// Both SMS providers answer 40% of sends with HTTP 500 (so failover alone cannot hide them) and WeChat
// 40% with errcode -1 (system busy) while 300 summons go out by SMS and WeChat. Once errors were
// injected, some deliveries are DELIVERED and retries wait in Redis, songda is SIGKILLed, started again
// ~1 s later with the same config, and the providers recover. Every delivery must end DELIVERED exactly
// once, and no provider may have been given any message twice: an SMS attempt the SIGKILL cut off is
// looked up at the provider (QuerySendDetails / PullSmsSendStatusByPhoneNumber) instead of being sent again,
// and a receipt that came while its send was unrecorded is parked and applied once the send is recorded.
TEST_F(BinaryE2eTest, KilledDuringProviderRetriesLosesNothingAndSendsNothingTwice) {
  constexpr int kEvents = 300;
  const Instance in = make_instance("retrykill", redis_url_with_db(redis_base_, 10), [](YAML::Node& y) {
    // Every recipient here has a mobile and a WeChat openid: with the shipped fallbacks the SMS would wait
    // on a timer for the WeChat receipt. Without them, SMS and WeChat both go out at once.
    for (auto route : y["routes"]) {
      if (route["event"].as<std::string>() == "summons.issued") route.remove("fallback");
    }
  });
  Expected x;
  std::vector<OutgoingMessage> msgs;
  std::map<std::string, std::string> address_of;  // delivery id -> the number (11 digits) or openid it must reach
  for (int i = 0; i < kEvents; ++i) {
    nlohmann::json e = make_event("rk", i);
    e["type"] = "summons.issued";
    e["case"]["number"] = "(2026)豫14民初" + std::to_string(1000 + i) + "号";
    const std::string mobile = std::to_string(13720000000LL + i);
    const std::string openid = "oRetryKillE2e" + std::to_string(100000 + i);
    e["recipients"] = nlohmann::json::array(
        {{{"id", "P1"},
          {"role", "party"},
          {"name", "当事人" + std::to_string(i)},
          {"contacts", {{"mobile", "+86" + mobile}, {"wechat_openid", openid}}},
          {"consent", {{"basis", "confirmed"}, {"scope", {"*"}}, {"ref", "C-" + std::to_string(i)}}}}});
    add_expected(in.config, e, x);
    address_of[delivery_id(e["event_id"], "P1", "sms")] = mobile;
    address_of[delivery_id(e["event_id"], "P1", "wechat")] = openid;
    msgs.push_back(to_message(in.topic, e));
  }
  ASSERT_TRUE(x.held.empty()) << "a delivery is held as a fallback: the summons route still has fallbacks";
  ASSERT_EQ(x.queued["sms"], kEvents);
  ASSERT_EQ(x.queued["wechat"], kEvents);
  ASSERT_EQ(x.all.size(), 2u * kEvents);
  std::vector<std::string> ids(x.all.begin(), x.all.end());
  auto redis = connect_redis(in.redis_url);

  sim_config(in, {{"provider", "aliyun"}, {"error_rate", 0.4}, {"http_status", 500}});
  sim_config(in, {{"provider", "tencent"}, {"error_rate", 0.4}, {"http_status", 500}});
  sim_config(in, {{"provider", "wechat"}, {"error_rate", 0.4}, {"http_status", 0}, {"error_code", -1}});

  ChildProcess& first = start_songda(in);
  ASSERT_TRUE(wait_healthy(first, in.port)) << "songda did not come up";
  ASSERT_EQ(dispatched_channels(metrics(in.port)), kAllChannels) << metrics(in.port);
  KafkaConfig kc;
  kc.brokers = brokers_;
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(KafkaProducer(kc).produce_all(msgs).ok());

  // Where the deliveries stand: DELIVERED ones, and per channel those waiting for a retry (the last
  // history entry is RETRY_SCHEDULED).
  struct Progress {
    std::size_t delivered = 0;
    std::map<std::string, std::size_t> retry_pending;
  };
  const auto progress = [&] {
    std::vector<std::vector<std::string>> cmds;
    for (const auto& id : ids) {
      cmds.push_back({"HGET", "sd:dlv:{" + id + "}", "status"});
      cmds.push_back({"LINDEX", "sd:dlv:{" + id + "}:hist", "-1"});
    }
    const auto reps = pipelined(*redis, cmds);
    Progress p;
    for (std::size_t i = 0; i < ids.size(); ++i) {
      if (reps[2 * i].str == "DELIVERED") {
        ++p.delivered;
      } else if (!reps[2 * i + 1].is_nil()) {
        const auto h = nlohmann::json::parse(reps[2 * i + 1].str, nullptr, false);
        if (h.is_object() && h.value("status", "") == "RETRY_SCHEDULED") ++p.retry_pending[x.channel_of.at(ids[i])];
      }
    }
    return p;
  };

  // Errors injected by all three providers, some deliveries DELIVERED, retries waiting on both channels.
  Progress before;
  nlohmann::json st_before;
  const bool ready_to_kill = wait_until(
      [&] {
        if (!first.running()) return true;
        st_before = sim_stats(in);
        if (st_before["aliyun"]["errors_injected"].get<long long>() == 0 ||
            st_before["tencent"]["errors_injected"].get<long long>() == 0 ||
            st_before["wechat"]["errors_injected"].get<long long>() == 0) {
          return false;
        }
        before = progress();
        return before.delivered >= 50 && before.retry_pending["sms"] > 0 && before.retry_pending["wechat"] > 0;
      },
      30s, 20ms);
  ASSERT_TRUE(ready_to_kill && first.running())
      << "no point to kill at: " << before.delivered << " delivered, retries pending: sms "
      << before.retry_pending["sms"] << ", wechat " << before.retry_pending["wechat"] << "; simulator "
      << st_before.dump();
  const std::int64_t killed_at_ms = now_unix_ms();
  first.signal(SIGKILL);
  const auto killed = first.wait_exit(10s);
  ASSERT_TRUE(killed.has_value());
  ASSERT_TRUE(WIFSIGNALED(*killed) && WTERMSIG(*killed) == SIGKILL) << e2e::describe_wait_status(*killed);
  const Progress at_kill = progress();
  const auto st_kill = sim_stats(in);
  std::printf(
      "[ info ] SIGKILL %.1f s after publishing: %zu of %zu delivered, retries pending: %zu SMS, %zu WeChat; "
      "errors injected: aliyun %lld, tencent %lld, wechat %lld\n",
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), at_kill.delivered, ids.size(),
      at_kill.retry_pending.count("sms") != 0 ? at_kill.retry_pending.at("sms") : 0,
      at_kill.retry_pending.count("wechat") != 0 ? at_kill.retry_pending.at("wechat") : 0,
      st_kill["aliyun"]["errors_injected"].get<long long>(), st_kill["tencent"]["errors_injected"].get<long long>(),
      st_kill["wechat"]["errors_injected"].get<long long>());
  ASSERT_LT(at_kill.delivered, ids.size()) << "everything was delivered before the kill: nothing was tested";

  // ~1 s later a new process with the same config; the providers recover.
  std::this_thread::sleep_for(1s);
  ChildProcess& second = start_songda(in);
  sim_config(in, {{"provider", "all"}, {"error_rate", 0.0}});
  ASSERT_TRUE(wait_healthy(second, in.port)) << "songda did not come up again";
  std::vector<std::string> pending;
  const bool done = wait_until(
      [&] {
        if (!second.running()) return true;
        pending = undelivered(*redis, x);
        return pending.empty();
      },
      30s, 100ms);
  ASSERT_TRUE(second.running()) << "songda died after the restart";
  if (!done) {
    // What the stuck ones went through, and what the providers saw.
    std::string why;
    for (std::size_t i = 0; i < pending.size() && i < 5; ++i) {
      const std::string id = pending[i].substr(0, pending[i].find(' '));
      why += "\n  " + id + ":";
      for (const auto& h : must(redis->command({"LRANGE", "sd:dlv:{" + id + "}:hist", "0", "-1"}), "LRANGE").elements) {
        why += "\n    " + h.str;
      }
    }
    httplib::Client sim("127.0.0.1", in.sim_port);
    auto brief = sim.Get("/_sim/stats?brief=1");
    // Not fatal: what the providers were sent is checked all the same.
    ADD_FAILURE() << "after restart: " << pending.size() << " deliveries not DELIVERED:" << sample(pending, 10)
                  << "\nhistories:" << why << "\nsimulator: " << (brief ? brief->body : std::string("no answer"));
  } else {
    std::printf("[ info ] everything DELIVERED %.1f s after publishing\n",
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  // The first process may have recorded every event before the SIGKILL without committing: the second gets
  // the partitions once the dead member's session ends (6 s), reads them again (duplicates) and commits.
  wait_until(
      [&] {
        for (const auto& [p, co] : committed_vs_end(brokers_, in.group, in.topic, kPartitions)) {
          if (co.second != 0 && co.first != co.second) return false;
        }
        return true;
      },
      30s, 200ms);
  const std::string m = metrics(in.port);
  ASSERT_EQ(terminate(second), 0) << "exit code after SIGTERM (-1: still running after 30 s)";
  expect_committed_to_end(brokers_, in.group, in.topic);

  // The store: each delivery once, DELIVERED, one ACCEPTED and one DELIVERED in its history.
  verify_store(*redis, x);
  std::vector<std::vector<std::string>> cmds;
  for (const auto& id : ids) cmds.push_back({"LRANGE", "sd:dlv:{" + id + "}:hist", "0", "-1"});
  const auto hists = pipelined(*redis, cmds);
  std::size_t with_retries = 0;
  std::vector<std::string> bad_history;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    std::map<std::string, int> n;
    std::string seq;
    for (const auto& h : hists[i].elements) {
      const auto j = nlohmann::json::parse(h.str, nullptr, false);
      const std::string s = j.is_object() ? j.value("status", "?") : "unparsable";
      n[s]++;
      seq += s + " ";
    }
    if (n["RETRY_SCHEDULED"] > 0) ++with_retries;
    if (n["ACCEPTED"] != 1 || n["DELIVERED"] != 1) bad_history.push_back(ids[i] + ": " + seq);
  }
  EXPECT_TRUE(bad_history.empty()) << bad_history.size() << " histories without exactly one ACCEPTED and one DELIVERED:"
                                   << sample(bad_history);
  EXPECT_GT(with_retries, 0u) << "no delivery was ever retried: the faults did not bite";
  std::printf("[ info ] %zu of %zu deliveries were retried at least once\n", with_retries, ids.size());

  // The providers: each number and openid reached exactly once, nothing accepted twice.
  const auto st = sim_stats(in);
  for (const char* p : {"aliyun", "tencent", "wechat"}) {
    EXPECT_EQ(st[p]["duplicate_count"].get<long long>(), 0)
        << p << " accepted a message twice: " << st[p]["duplicates"].dump();
  }
  const long long sms_accepted = st["aliyun"]["accepted"].get<long long>() + st["tencent"]["accepted"].get<long long>();
  const long long wechat_accepted = st["wechat"]["accepted"].get<long long>();
  EXPECT_EQ(sms_accepted + wechat_accepted, x.queued["sms"] + x.queued["wechat"]);
  EXPECT_EQ(sms_accepted, x.queued["sms"]);
  EXPECT_EQ(wechat_accepted, x.queued["wechat"]);
  // number (last 11 digits) or openid -> the messages accepted for it ("aliyun at 120 ms" after the SIGKILL)
  std::map<std::string, std::vector<std::string>> reached;
  for (const char* p : {"aliyun", "tencent", "wechat"}) {
    const auto accepted = sim_messages(in, p);
    for (const auto& msg : accepted["messages"]) {
      std::string to = msg.value("to", "");
      if (std::string(p) != "wechat" && to.size() > 11) to = to.substr(to.size() - 11);
      reached[to].push_back(std::string(p) + " at " + std::to_string(msg.value("time_ms", 0LL) - killed_at_ms) + " ms");
    }
  }
  std::vector<std::string> not_once;
  for (const auto& [id, address] : address_of) {
    const auto it = reached.find(address);
    if (it != reached.end() && it->second.size() == 1) continue;
    std::string where;
    for (const auto& w : it == reached.end() ? std::vector<std::string>{} : it->second) where += " [" + w + "]";
    not_once.push_back(id + " -> " + address + ": " + std::to_string(it == reached.end() ? 0 : it->second.size()) +
                       " messages (times from the SIGKILL)" + where);
  }
  EXPECT_TRUE(not_once.empty()) << not_once.size() << " recipients not reached exactly once:" << sample(not_once, 30);
  EXPECT_EQ(reached.size(), address_of.size()) << "the providers got messages for unknown recipients";
  std::printf(
      "[ info ] simulator: %lld SMS (aliyun %lld, tencent %lld) and %lld WeChat accepted; errors injected: aliyun "
      "%lld, tencent %lld, wechat %lld; WeChat client_msg_id repeats %lld; songda (2nd process): %.0f retries, "
      "%.0f attempts in doubt asked of the provider (%.0f found there, not resent), %.0f receipts parked\n",
      sms_accepted, st["aliyun"]["accepted"].get<long long>(), st["tencent"]["accepted"].get<long long>(),
      wechat_accepted, st["aliyun"]["errors_injected"].get<long long>(),
      st["tencent"]["errors_injected"].get<long long>(), st["wechat"]["errors_injected"].get<long long>(),
      st["wechat"].value("deduplicated", 0LL), e2e::metric_value(m, "songda_dispatch_retries_total").value_or(-1),
      e2e::metric_value(m, "songda_dispatch_in_doubt_asked_total").value_or(-1),
      e2e::metric_value(m, "songda_dispatch_in_doubt_found_total").value_or(-1),
      e2e::metric_value(m, "songda_receipts_unknown_total").value_or(-1));
}

}  // namespace
}  // namespace songda
