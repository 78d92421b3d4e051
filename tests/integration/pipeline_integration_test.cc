// The foundation on real services: a real Apache Kafka broker and a real
// redis-server (addresses from SONGDA_TEST_KAFKA_BROKERS / SONGDA_TEST_REDIS_URL,
// set by tests/services/with-services). The whole App runs in-process.
#include <gtest/gtest.h>
#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <set>
#include <thread>

#include "gateway/app/app.h"
#include "gateway/core/crypto.h"
#include "gateway/core/text.h"
#include "gateway/ingest/ingest.h"
#include "tests/support/kafka_util.h"
#include "tests/support/service_config.h"

namespace songda {
namespace {

using testing::config_for_test_services;
using testing::read_all;

nlohmann::json make_event(int i, int recipients) {
  static const char* kTypes[] = {"summons.issued", "hearing.scheduled", "notice.general", "judgment.issued"};
  nlohmann::json rs = nlohmann::json::array();
  for (int r = 0; r < recipients; ++r) {
    nlohmann::json contacts = {{"app_user", "u-" + std::to_string(i) + "-" + std::to_string(r)}};
    if (r == 1) contacts["mobile"] = "+86139" + std::to_string(10000000 + i);
    rs.push_back({{"id", "R" + std::to_string(r)},
                  {"role", r == 2 ? "lawyer" : "party"},
                  {"name", "当事人" + std::to_string(r)},
                  {"contacts", contacts},
                  {"consent", {{"basis", "confirmed"}, {"scope", {"*"}}, {"ref", "C-" + std::to_string(i)}}}});
  }
  return {
      {"schema", "songda.case-event/v1"},
      {"event_id", "evt-" + std::to_string(i)},
      {"type", kTypes[i % 4]},
      {"occurred_at", "2026-11-28T09:00:00+08:00"},
      {"court", {{"id", "HN-SQ-ZY"}, {"name", "商丘市中级人民法院"}}},
      {"case", {{"number", "(2026)豫14民初" + std::to_string(i % 200) + "号"}, {"title", "案件" + std::to_string(i)}}},
      {"document", {{"id", "DOC-" + std::to_string(i)}, {"title", "传票"}, {"sha256", std::string(64, 'a')}}},
      {"recipients", rs},
      {"params",
       {{"hearing_time", "2026-12-10 09:30"},
        {"courtroom", "第三法庭"},
        {"content", "请按时到庭"},
        {"amount", "100"},
        {"due_date", "2026-12-31"},
        {"mediation_time", "2026-12-01"},
        {"notice_title", "通知"},
        {"notice_text", "请按时到庭"}}}};
}

// Deliveries the shipped routes call for: route channels the recipient has a contact on.
std::size_t expected_deliveries(const Config& config, const nlohmann::json& e) {
  std::size_t n = 0;
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
        if (r["contacts"].contains(field)) ++n;
      }
      break;
    }
  }
  return n;
}

class PipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = config_for_test_services("it", 1, 4);
    brokers_ = config_.kafka.brokers;
    config_.kafka.max_event_bytes = 64 * 1024;
    // This tier is about ingest and in-app delivery: the provider channels are left unconfigured here
    // (their deliveries wait in their queues); channels_integration_test drives them through the simulator.
    config_.channels.sms.providers.clear();
    config_.channels.wechat.enabled = false;
    config_.channels.email.enabled = false;
  }

  std::string brokers_;
  Config config_;
};

// librdkafka before 2.3 (Debian 12 ships 2.0.2) aborts the process when a cooperative-sticky consumer is destroyed
// after its group chose the assignor but before its first assignment (confluentinc/librdkafka#4312), e.g. when its
// SyncGroup was refused because another member joined meanwhile. Stopping Songda soon after another instance
// started hit it now and then. Here two members join one group together and are closed 0, 30, 60 ... ms later, until
// the closes have covered the time before the first assignment and after it (the abort would end this test
// binary; the counts show the window was crossed).
TEST(KafkaConsumerClose, ClosingAnyTimeAfterJoiningWithAnotherMemberDoesNotAbort) {
  Config config = config_for_test_services("close", 1, 2);
  int closed_before_assignment = 0;
  int closed_after_assignment = 0;
  for (int delay_ms = 0; delay_ms < 300 || closed_after_assignment == 0; delay_ms += 30) {
    ASSERT_LT(delay_ms, 10000) << "the group never gave either member an assignment";
    config.kafka.group_id = testing::unique_name("close-group");
    KafkaConsumer first(config.kafka);
    KafkaConsumer second(config.kafka);
    const auto stop_at = std::chrono::steady_clock::now() + std::chrono::milliseconds(delay_ms);
    while (std::chrono::steady_clock::now() < stop_at) {
      (void)first.poll_batch(10, 2);
      (void)second.poll_batch(10, 2);
    }
    ++(first.has_been_assigned() || second.has_been_assigned() ? closed_after_assignment : closed_before_assignment);
    // Closed at once, as two instances stopped together would be (each process polls its own consumer).
    std::thread closing([&] { first.close(); });
    second.close();
    closing.join();
  }
  EXPECT_GT(closed_before_assignment, 0);
  EXPECT_GT(closed_after_assignment, 0);
}

// An event over ~1 MB (a topic can be set to take it) is refused as too_large. Before, its DLQ record was the
// event itself plus headers: the broker refused it (MSG_SIZE_TOO_LARGE), the batch was retried for ever and the
// partition stopped. Now the record names the original (size, SHA-256, position) and Kafka takes it.
TEST(DeadLetterOnKafka, TheRecordOfAnOversizedEventIsAcceptedByTheBroker) {
  const Config config = config_for_test_services("dl", 1, 1);
  const KafkaMessage big{config.kafka.topic, 0, 77, "case-1", std::string(2 * 1024 * 1024, 'x'), {}};
  const Error too_large = Error::permanent("too_large", "event is 2097152 bytes; the limit is 1048576");
  KafkaProducer producer(config.kafka);
  OutgoingMessage as_before{config.kafka.dlq_topic, big.key, big.value, {{"songda.error.code", "too_large"}}};
  EXPECT_FALSE(producer.produce_all({as_before}, 10000).ok()) << "the broker took a 2 MiB record";
  ASSERT_TRUE(producer.produce_all({dead_letter(big, too_large, config.kafka.dlq_topic, now_unix_ms())}, 10000).ok());
  const auto dlq = read_all(config.kafka.brokers, config.kafka.dlq_topic);
  ASSERT_EQ(dlq.size(), 1u);
  const auto body = nlohmann::json::parse(dlq[0].value);
  EXPECT_EQ(body["error"]["code"], "too_large");
  EXPECT_EQ(body["original"]["sha256"], sha256_hex(big.value));
  EXPECT_FALSE(body["original"].contains("value"));
}

TEST_F(PipelineTest, ThousandEventsWithDuplicatesInvalidAndConflictsGiveExactlyTheExpectedDeliveries) {
  constexpr int kEvents = 1000;
  std::vector<OutgoingMessage> first_wave;
  std::vector<OutgoingMessage> second_wave;
  std::size_t expected = 0;
  std::vector<nlohmann::json> events;
  for (int i = 0; i < kEvents; ++i) {
    auto e = make_event(i, 1 + i % 3);
    expected += expected_deliveries(config_, e);
    first_wave.push_back({config_.kafka.topic, e["case"]["number"], e.dump(), {{"trace", std::to_string(i)}}});
    events.push_back(std::move(e));
  }
  // 100 redeliveries of already published events (same bytes).
  for (int i = 0; i < 100; ++i) second_wave.push_back(first_wave[static_cast<std::size_t>(i * 7)]);
  // 5 conflicting: same event_id and case (so same partition, after the original), different content.
  for (int i = 0; i < 5; ++i) {
    auto e = events[static_cast<std::size_t>(i * 11)];
    e["case"]["title"] = "篡改";
    second_wave.push_back({config_.kafka.topic, e["case"]["number"], e.dump(), {}});
  }
  // 20 invalid ones of different kinds.
  std::map<std::string, int> expected_codes;
  auto bad = [&](const std::string& code, const std::string& body) {
    second_wave.push_back({config_.kafka.topic, "bad", body, {}});
    expected_codes[code]++;
  };
  for (int k = 0; k < 3; ++k) {
    bad("invalid_json", "{\"schema\": \"songda.case-event/v1\", " + std::to_string(k));
    bad("invalid_utf8", std::string("{\"event_id\": \"x\xC3\x28") + std::to_string(k) + "\"}");
    bad("too_large", "{\"pad\": \"" + std::string(70 * 1024, 'x') + std::to_string(k) + "\"}");
    auto t = make_event(5000 + k, 1);
    t["type"] = "summons.eaten";
    bad("unknown_type", t.dump());
    auto n = make_event(6000 + k, 1);
    n["recipients"] = nlohmann::json::array();
    bad("no_recipients", n.dump());
    auto s = make_event(7000 + k, 1);
    s["document"]["sha256"] = "not-a-hash";
    bad("schema", s.dump());
  }
  for (int k = 0; k < 2; ++k) {
    auto c = make_event(8000 + k, 1);
    c["recipients"][0]["consent"] = {{"basis", "provided"}, {"scope", {"payment.due"}}};
    bad("consent_scope", c.dump());
  }
  ASSERT_EQ(second_wave.size(), 125u);

  AppOptions opts;
  opts.ephemeral_evidence_key = true;
  App app(config_, opts);
  app.start();
  KafkaProducer producer(config_.kafka);
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(producer.produce_all(first_wave).ok());
  ASSERT_TRUE(producer.produce_all(second_wave).ok());
  const std::size_t total = first_wave.size() + second_wave.size();

  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (app.ingest_counters().messages.load() < total && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("[ info ] ingest: %zu messages in %.2f s = %.0f events/s (informational)\n", total, secs, total / secs);
  ASSERT_EQ(app.ingest_counters().messages.load(), total);
  EXPECT_EQ(app.ingest_counters().accepted.load(), static_cast<std::uint64_t>(kEvents));
  EXPECT_EQ(app.ingest_counters().duplicates.load(), 100u);
  EXPECT_EQ(app.ingest_counters().rejected.load(), 25u);
  EXPECT_EQ(app.ingest_counters().deliveries.load(), expected);

  // In-app deliveries reach DELIVERED; wait for the queue to drain.
  while (std::chrono::steady_clock::now() < deadline) {
    auto n = app.store().queue_length("inapp");
    if (n.ok() && n.value() == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  app.stop();

  // Count what Redis holds, case by case, and check every delivery once.
  std::set<std::string> ids;
  std::size_t delivered_inapp = 0;
  for (const auto& e : events) {
    auto list = app.store().case_deliveries("HN-SQ-ZY", e["case"]["number"]);
    ASSERT_TRUE(list.ok());
    for (const auto& v : list.value()) {
      if (v.delivery.event_id != e["event_id"]) continue;
      ids.insert(v.delivery.id);
      const auto accepted = std::count_if(v.history.begin(), v.history.end(),
                                          [](const StatusEntry& s) { return s.status == "ACCEPTED"; });
      EXPECT_EQ(accepted, 1) << v.delivery.id;
      if (v.delivery.channel == "inapp") {
        EXPECT_EQ(v.status, "DELIVERED") << v.delivery.id;
        ++delivered_inapp;
      }
      EXPECT_EQ(v.delivery.text.find("篡改"), std::string::npos)
          << "a conflicting version leaked into " << v.delivery.id;
    }
  }
  EXPECT_EQ(ids.size(), expected);
  EXPECT_GT(delivered_inapp, 0u);

  // The DLQ holds each refused message with its reason and source coordinates.
  auto dlq = read_all(brokers_, config_.kafka.dlq_topic);
  std::map<std::string, int> codes;
  for (const auto& m : dlq) {
    std::map<std::string, std::string> h(m.headers.begin(), m.headers.end());
    codes[h["songda.error.code"]]++;
    EXPECT_FALSE(h["songda.error.message"].empty());
    EXPECT_EQ(h["songda.source.topic"], config_.kafka.topic);
    EXPECT_FALSE(h["songda.source.offset"].empty());
    // The reason is in the body too, with the original as it came (the ★ DLQ contract).
    const auto body = nlohmann::json::parse(m.value, nullptr, false);
    ASSERT_TRUE(body.is_object()) << m.value.substr(0, 200);
    EXPECT_EQ(body["error"]["code"], h["songda.error.code"]);
    EXPECT_EQ(body["source"]["offset"], std::stoll(h["songda.source.offset"]));
    const std::string value = body["original"]["value"];
    const std::string original = body["original"]["encoding"] == "base64" ? base64_decode(value) : value;
    EXPECT_EQ(sha256_hex(original), body["original"]["sha256"]);
    EXPECT_EQ(original.size(), body["original"]["bytes"]);
  }
  expected_codes["conflict"] = 5;
  EXPECT_EQ(codes, expected_codes);

  // Each refusal, conflicts included, is a SUBMISSION_REJECTED record in the evidence log, with its code.
  auto ep = parse_redis_url(config_.redis.url);
  ASSERT_TRUE(ep.ok());
  auto conn = RedisConnection::connect(ep.value(), 2000);
  ASSERT_TRUE(conn.ok());
  auto leaves = conn.value()->command({"LRANGE", "sd:ev:leaves", "0", "-1"});
  ASSERT_TRUE(leaves.ok());
  std::map<std::string, int> rejected_codes;
  for (const auto& leaf : leaves->elements) {
    const auto r = nlohmann::json::parse(leaf.str, nullptr, false);
    if (r.is_object() && r.value("type", "") == "SUBMISSION_REJECTED") rejected_codes[r["details"]["code"]]++;
  }
  EXPECT_EQ(rejected_codes, expected_codes);

  // Offsets were committed up to the end of every partition.
  for (const auto& [p, co] : testing::committed_vs_end(brokers_, config_.kafka.group_id, config_.kafka.topic, 4)) {
    EXPECT_EQ(co.first, co.second) << "partition " << p;
  }
}

TEST_F(PipelineTest, InboxReadApiAndCourtScopedAuthorization) {
  setenv("SONGDA_API_KEYS", "HN-SQ-ZY=key-for-shangqiu-court-0001,HN-ZZ-JS=key-for-jinshui-court-00002", 1);
  setenv("SONGDA_ADMIN_TOKEN", "operator-token-0123456789", 1);
  AppOptions opts;
  opts.ephemeral_evidence_key = true;
  App app(config_, opts);
  app.start();
  KafkaProducer producer(config_.kafka);
  auto e = make_event(42, 1);
  ASSERT_TRUE(producer.produce_all({{config_.kafka.topic, e["case"]["number"], e.dump(), {}}}).ok());
  const std::string id = delivery_id("evt-42", "R0", "inapp");
  httplib::Client cli("127.0.0.1", app.http().port());
  const httplib::Headers mine{{"Authorization", "Bearer key-for-shangqiu-court-0001"}};
  const httplib::Headers other{{"Authorization", "Bearer key-for-jinshui-court-00002"}};
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  std::string status;
  while (status != "DELIVERED" && std::chrono::steady_clock::now() < deadline) {
    auto r = cli.Get("/v1/deliveries/" + id, mine);
    if (r && r->status == 200) status = nlohmann::json::parse(r->body)["status"];
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(status, "DELIVERED");

  auto no_key = cli.Get("/v1/deliveries/" + id);
  ASSERT_TRUE(no_key);
  EXPECT_EQ(no_key->status, 401);
  EXPECT_EQ(nlohmann::json::parse(no_key->body)["error"]["code"], "unauthenticated");
  auto foreign = cli.Get("/v1/deliveries/" + id, other);
  ASSERT_TRUE(foreign);
  EXPECT_EQ(foreign->status, 403);
  const std::string case_path =
      "/v1/cases/" + httplib::detail::encode_query_param(e["case"]["number"].get<std::string>()) + "/deliveries";
  auto foreign_case = cli.Get(case_path, other);
  ASSERT_TRUE(foreign_case);
  EXPECT_EQ(foreign_case->status, 403);
  auto admin_case = cli.Get(case_path, {{"Authorization", "Bearer operator-token-0123456789"}});
  ASSERT_TRUE(admin_case);
  ASSERT_EQ(admin_case->status, 200) << admin_case->body;
  EXPECT_EQ(nlohmann::json::parse(admin_case->body)["count"], 1);

  auto inbox = cli.Get("/v1/inbox/u-42-0", mine);
  ASSERT_TRUE(inbox);
  ASSERT_EQ(inbox->status, 200);
  auto ij = nlohmann::json::parse(inbox->body);
  ASSERT_EQ(ij["messages"].size(), 1u);
  EXPECT_EQ(ij["unread"], 1);
  EXPECT_NE(ij["messages"][0]["text"].get<std::string>().find("当事人0"), std::string::npos);
  EXPECT_EQ(nlohmann::json::parse(cli.Get("/v1/inbox/u-42-0", other)->body)["messages"].size(), 0u);
  for (const char* bad : {"?offset=abc", "?offset=-1", "?offset=2147483600", "?limit=0", "?limit=201", "?limit=5x"}) {
    auto r = cli.Get(std::string("/v1/inbox/u-42-0") + bad, mine);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << bad << " " << r->body;
  }
  // The message's party link records READ and ACKNOWLEDGED when opened: a court key does not get it (a clerk could
  // otherwise make the recipient's acts), the app's back end does.
  EXPECT_EQ(ij["messages"][0]["text"].get<std::string>().find("/r/"), std::string::npos) << ij.dump();
  const auto for_app =
      nlohmann::json::parse(cli.Get("/v1/inbox/u-42-0", {{"Authorization", "Bearer operator-token-0123456789"}})->body);
  ASSERT_EQ(for_app["messages"].size(), 1u);
  EXPECT_NE(for_app["messages"][0]["text"].get<std::string>().find("/r/"), std::string::npos) << for_app.dump();

  // Only the app's back end (the operator token) reports that the recipient opened it: a READ is legal evidence.
  const httplib::Headers app_back_end{{"Authorization", "Bearer operator-token-0123456789"}};
  auto by_court = cli.Post("/v1/inbox/u-42-0/messages/" + id + "/read", mine, "", "application/json");
  ASSERT_TRUE(by_court);
  EXPECT_EQ(by_court->status, 403) << by_court->body;
  EXPECT_EQ(nlohmann::json::parse(cli.Get("/v1/deliveries/" + id, mine)->body)["status"], "DELIVERED");
  auto read = cli.Post("/v1/inbox/u-42-0/messages/" + id + "/read", app_back_end, "", "application/json");
  ASSERT_TRUE(read);
  EXPECT_EQ(read->status, 200);
  auto again = cli.Post("/v1/inbox/u-42-0/messages/" + id + "/read", app_back_end, "", "application/json");
  EXPECT_EQ(again->status, 200);
  auto wrong_user = cli.Post("/v1/inbox/u-someone/messages/" + id + "/read", app_back_end, "", "application/json");
  EXPECT_EQ(wrong_user->status, 404);

  auto view = nlohmann::json::parse(cli.Get("/v1/deliveries/" + id, mine)->body);
  EXPECT_EQ(view["status"], "READ");
  std::vector<std::string> timeline;
  for (const auto& h : view["history"]) timeline.push_back(h["status"]);
  EXPECT_EQ(timeline, (std::vector<std::string>{"ACCEPTED", "DELIVERED", "READ"}));
  EXPECT_EQ(view["address_masked"].get<std::string>().find("u-42-0"), std::string::npos);

  auto ready = cli.Get("/readyz");
  EXPECT_EQ(ready->status, 200);
  auto metrics = cli.Get("/metrics");
  EXPECT_NE(metrics->body.find("songda_ingest_events_accepted_total 1"), std::string::npos) << metrics->body;
  EXPECT_EQ(nlohmann::json::parse(cli.Get(case_path, mine)->body)["unreachable"], nlohmann::json::array());

  // Another event of the case, whose second recipient has a role no route serves: no delivery can be planned for
  // them, and the case view names them for the clerk to serve by other means.
  auto e2 = make_event(242, 2);
  ASSERT_EQ(e2["case"]["number"], e["case"]["number"]);
  e2["type"] = "hearing.scheduled";
  e2["recipients"][1]["role"] = "other";
  ASSERT_TRUE(producer.produce_all({{config_.kafka.topic, e2["case"]["number"], e2.dump(), {}}}).ok());
  nlohmann::json cj;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < until) {
    cj = nlohmann::json::parse(cli.Get(case_path, mine)->body);
    if (cj["count"] == 2) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(cj["count"], 2) << cj.dump();
  ASSERT_EQ(cj["unreachable"].size(), 1u) << cj.dump();
  const auto& u = cj["unreachable"][0];
  EXPECT_EQ(u["event_id"], "evt-242");
  EXPECT_EQ(u["recipient_id"], "R1");
  EXPECT_EQ(u["name"], "当事人1");
  EXPECT_EQ(u["role"], "other");
  EXPECT_EQ(u["court_id"], "HN-SQ-ZY");
  EXPECT_TRUE(u["at"].is_string());
  EXPECT_EQ(cli.Get(case_path, other)->status, 403);

  // From the first signal on, /readyz takes the instance out of the load balancer while it drains; the API still
  // answers until the end.
  app.begin_stop();
  auto draining = cli.Get("/readyz");
  ASSERT_TRUE(draining);
  EXPECT_EQ(draining->status, 503);
  EXPECT_EQ(nlohmann::json::parse(draining->body)["status"], "stopping");
  EXPECT_EQ(cli.Get("/v1/deliveries/" + id, mine)->status, 200);
  app.stop();
  unsetenv("SONGDA_API_KEYS");
  unsetenv("SONGDA_ADMIN_TOKEN");
}

}  // namespace
}  // namespace songda
