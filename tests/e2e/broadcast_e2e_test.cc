// Broadcast end to end on the real binary: a lawyer group imported over HTTP, a broadcast started, `songda run`
// SIGKILLed in the middle of it, a new process with the same config finishing the job. Every member must end up
// with exactly one delivery per channel, DELIVERED, and the SMS providers (the simulator binary) must have taken
// each number once. Run under tests/services/with-services --kafka --redis --smtp.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>

#include <yaml-cpp/yaml.h>
#include <nlohmann/json.hpp>

#include "gateway/config/config.h"
#include "gateway/core/event.h"
#include "gateway/store/redis.h"
#include "tests/e2e/e2e_support.h"
#include "tests/support/kafka_util.h"
#include "tests/support/service_config.h"

#if !defined(SONGDA_BINARY) || !defined(SONGDA_SIM_BINARY)
#error "SONGDA_BINARY and SONGDA_SIM_BINARY must be defined by the build"
#endif

namespace songda {
namespace {

using namespace std::chrono_literals;
using e2e::ChildProcess;
using e2e::provider_env;
using e2e::wait_until;
using Json = nlohmann::json;

constexpr const char* kCourtKey = "e2e-broadcast-court-key-0001";

class BroadcastE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    brokers_ = testing::require_env("SONGDA_TEST_KAFKA_BROKERS");
    redis_url_ = testing::redis_url_with_db(testing::require_env("SONGDA_TEST_REDIS_URL"), 8);
    port_ = e2e::free_port();
    sim_port_ = e2e::free_port();
    const std::string topic = testing::unique_name("e2e-bcast");
    YAML::Node y = YAML::LoadFile(std::string(SONGDA_SOURCE_DIR) + "/config/gateway.yaml");
    y["kafka"]["topic"] = topic;
    y["kafka"]["dlq_topic"] = topic + ".dlq";
    y["kafka"]["checkpoint_topic"] = topic + ".checkpoints";
    y["kafka"]["group_id"] = testing::unique_name("songda-e2e-bcast");
    y["kafka"]["properties"]["session.timeout.ms"] = "6000";
    y["http"]["listen"] = "127.0.0.1:" + std::to_string(port_);
    y["http"]["public_base_url"] = "http://127.0.0.1:" + std::to_string(port_);
    y["dispatch"]["poll_ms"] = 10;
    y["dispatch"]["lease_ms"] = 3000;
    y["quiet_hours"]["enabled"] = false;
    const std::string sim_url = "http://127.0.0.1:" + std::to_string(sim_port_);
    for (auto p : y["channels"]["sms"]["providers"]) {
      p["endpoint"] = sim_url;
      p["rate_per_sec"] = 1000;
    }
    y["channels"]["wechat"]["endpoint"] = sim_url;
    const char* host = std::getenv("SONGDA_TEST_SMTP_HOST");
    const char* sport = std::getenv("SONGDA_TEST_SMTP_PORT");
    y["channels"]["email"]["smtp_url"] = host != nullptr && sport != nullptr
                                             ? "smtp://" + std::string(host) + ":" + sport
                                             : "smtp://127.0.0.1:" + std::to_string(e2e::free_port());
    y["channels"]["email"]["starttls"] = "none";
    YAML::Emitter out;
    out << y;
    config_path_ = dir_.file("songda.yaml");
    e2e::write_file(config_path_, std::string(out.c_str()) + "\n");
    ASSERT_TRUE(load_config_file(config_path_).config.has_value()) << "the test's config is invalid";
    testing::create_topic(brokers_, topic, 2);
    testing::create_topic(brokers_, topic + ".dlq", 1);
    auto ep = parse_redis_url(redis_url_);
    ASSERT_TRUE(ep.ok());
    auto conn = RedisConnection::connect(ep.value(), 5000);
    ASSERT_TRUE(conn.ok());
    redis_ = std::move(conn.value());
    ASSERT_TRUE(redis_->command({"FLUSHDB"}).ok());

    ChildProcess& sim = spawn({SONGDA_SIM_BINARY, "--listen", "127.0.0.1:" + std::to_string(sim_port_),
                               "--callback-base", "http://127.0.0.1:" + std::to_string(port_)},
                              provider_env(), "sim");
    httplib::Client cli("127.0.0.1", sim_port_);
    ASSERT_TRUE(wait_until(
        [&] {
          auto r = cli.Get("/_sim/healthz");
          return !sim.running() || (r && r->status == 200);
        },
        20s));
    ASSERT_TRUE(sim.running());
    const std::string keydir = dir_.file("keys");
    const std::string cmd = std::string(SONGDA_BINARY) + " keygen --out " + keydir + " > /dev/null";
    ASSERT_EQ(std::system(cmd.c_str()), 0);  // NOLINT(cert-env33-c): test setup
    key_file_ = keydir + "/court.key";
  }

  void TearDown() override {
    if (HasFailure()) {
      for (const auto& c : children_) {
        std::fprintf(stderr, "\n----- %s -----\n%s", c->describe().c_str(), e2e::file_tail(c->out_path()).c_str());
      }
    }
    children_.clear();
  }

  ChildProcess& spawn(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
                      const std::string& label) {
    children_.push_back(std::make_unique<ChildProcess>(argv, env, dir_.file(label + std::to_string(++seq_) + ".out")));
    return *children_.back();
  }

  ChildProcess& start_songda() {
    std::map<std::string, std::string> env = provider_env();
    env["SONGDA_KAFKA_BROKERS"] = brokers_;
    env["SONGDA_REDIS_URL"] = redis_url_;
    env["SONGDA_LINK_SECRET"] = "e2e-link-secret-0123456789abcdef";
    env["SONGDA_EVIDENCE_SALT"] = "e2e-evidence-salt-0123456789";
    env["SONGDA_EVIDENCE_KEY_FILE"] = key_file_;
    env["SONGDA_API_KEYS"] = std::string("HN-SQ-ZY=") + kCourtKey;
    ChildProcess& c = spawn({SONGDA_BINARY, "run", "--config", config_path_}, env, "songda");
    httplib::Client cli("127.0.0.1", port_);
    cli.set_connection_timeout(1);
    wait_until(
        [&] {
          auto r = cli.Get("/healthz");
          return !c.running() || (r && r->status == 200);
        },
        30s);
    return c;
  }

  httplib::Result call(const std::string& method, const std::string& path, const std::string& body = "",
                       const std::string& type = "application/json") {
    httplib::Client cli("127.0.0.1", port_);
    cli.set_connection_timeout(2);
    cli.set_read_timeout(60, 0);
    const httplib::Headers h{{"Authorization", std::string("Bearer ") + kCourtKey}};
    if (method == "GET") return cli.Get(path, h);
    if (method == "PUT") return cli.Put(path, h, body, type);
    return cli.Post(path, h, body, type);
  }

  Json progress() {
    auto r = call("GET", "/v1/broadcasts/bc-e2e");
    if (!r || r->status != 200) return Json::object();
    return Json::parse(r->body, nullptr, false);
  }

  std::string brokers_;
  std::string redis_url_;
  std::string config_path_;
  std::string key_file_;
  int port_ = 0;
  int sim_port_ = 0;
  std::unique_ptr<RedisConnection> redis_;
  e2e::TempDir dir_;
  std::vector<std::unique_ptr<ChildProcess>> children_;
  int seq_ = 0;
};

TEST_F(BroadcastE2eTest, KillNineMidBroadcastResumesWithNoMemberSkippedOrServedTwice) {
  constexpr int kMembers = 5000;
  ChildProcess& first = start_songda();
  ASSERT_TRUE(first.running());
  auto put = call("PUT", "/v1/groups/e2e-lawyers",
                  Json{{"name", "律师群"}, {"court", {{"id", "HN-SQ-ZY"}, {"name", "商丘市中级人民法院"}}}}.dump());
  ASSERT_TRUE(put);
  ASSERT_EQ(put->status, 201) << put->body;
  std::string csv = "id,name,mobile,app_user,consent_basis,consent_scope\n";
  for (int i = 0; i < kMembers; ++i) {
    csv += "M" + std::to_string(10000 + i) + ",律师" + std::to_string(i) + ",+86137" + std::to_string(10000000 + i) +
           ",m-" + std::to_string(i) + ",confirmed,notice.broadcast\n";
  }
  auto imp = call("POST", "/v1/groups/e2e-lawyers/members:import", csv, "text/csv");
  ASSERT_TRUE(imp);
  ASSERT_EQ(imp->status, 200) << imp->body.substr(0, 300);
  const Json body = {{"id", "bc-e2e"},
                     {"group_id", "e2e-lawyers"},
                     {"params", {{"notice_title", "排期调整"}, {"notice_text", "12月排期调整。"}}},
                     {"channels", {"inapp", "sms"}}};
  auto started = call("POST", "/v1/broadcasts", body.dump());
  ASSERT_TRUE(started);
  ASSERT_EQ(started->status, 202) << started->body;

  // Mid-broadcast: some members planned (and some sent), not all.
  Json at_kill;
  ASSERT_TRUE(wait_until(
      [&] {
        at_kill = progress();
        return !first.running() ||
               (at_kill.contains("fanout") && at_kill["fanout"]["members_planned"].get<long long>() >= 1000);
      },
      60s, 5ms));
  ASSERT_TRUE(first.running());
  first.signal(SIGKILL);
  const auto st = first.wait_exit(10s);
  ASSERT_TRUE(st.has_value() && WIFSIGNALED(*st));
  const Json after_kill = Json::parse(redis_->command({"HGET", "sd:bc:{bc-e2e}", "cursor"})->str.empty()
                                          ? "0"
                                          : redis_->command({"HGET", "sd:bc:{bc-e2e}", "cursor"})->str);
  std::printf("[ info ] SIGKILL with %lld of %d members planned, %lld deliveries dispatched\n",
              after_kill.get<long long>(), kMembers, at_kill.value("dispatched", 0LL));

  ChildProcess& second = start_songda();
  ASSERT_TRUE(second.running());
  Json done;
  const bool finished = wait_until(
      [&] {
        done = progress();
        return !second.running() ||
               (done.contains("counts") && done["counts"]["DELIVERED"] == 2 * kMembers && done["state"] == "finished");
      },
      240s, 200ms);
  ASSERT_TRUE(finished && second.running()) << done.dump();
  EXPECT_EQ(done["fanout"]["members_planned"], kMembers);
  EXPECT_EQ(done["deliveries"], 2 * kMembers) << "one delivery per member and channel";

  // Every member: its SMS delivery exists and was delivered once (one ACCEPTED entry in its history).
  std::vector<std::vector<std::string>> cmds;
  for (int i = 0; i < kMembers; ++i) {
    cmds.push_back(
        {"HGET", "sd:dlv:{" + delivery_id("broadcast:bc-e2e", "M" + std::to_string(10000 + i), "sms") + "}", "status"});
  }
  auto statuses = redis_->pipeline(cmds);
  ASSERT_TRUE(statuses.ok());
  int delivered = 0;
  for (const auto& s : statuses.value()) delivered += s.str == "DELIVERED" ? 1 : 0;
  EXPECT_EQ(delivered, kMembers) << "no member skipped";

  httplib::Client sim("127.0.0.1", sim_port_);
  auto stats = sim.Get("/_sim/stats?brief=1");
  ASSERT_TRUE(stats && stats->status == 200);
  const Json sj = Json::parse(stats->body);
  const long long accepted = sj["aliyun"]["accepted"].get<long long>() + sj["tencent"]["accepted"].get<long long>();
  const long long twice =
      sj["aliyun"]["duplicate_count"].get<long long>() + sj["tencent"]["duplicate_count"].get<long long>();
  std::printf("[ info ] providers accepted %lld SMS for %d members; %lld numbers taken twice\n", accepted, kMembers,
              twice);
  EXPECT_EQ(twice, 0) << "no member served twice";
  EXPECT_EQ(accepted, kMembers);

  second.signal(SIGTERM);
  const auto exit = second.wait_exit(30s);
  ASSERT_TRUE(exit.has_value());
  EXPECT_TRUE(WIFEXITED(*exit) && WEXITSTATUS(*exit) == 0) << e2e::describe_wait_status(*exit);
}

}  // namespace
}  // namespace songda
