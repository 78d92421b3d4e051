// Broadcasts end to end, in-process: the App on real Redis and Kafka, SMS played by the provider simulator
// (signatures checked, receipts pushed back). A 10,000-member lawyer group served once each with memory bounded
// by one page, a fan-out interrupted between recording a page and moving its cursor (the worst point of a crash),
// cancel, imports whose bad rows do not block the good ones, court scoping, and a notice.broadcast event on Kafka.
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <fstream>
#include <thread>

#include "gateway/app/app.h"
#include "gateway/broadcast/service.h"
#include "gateway/core/contain.h"
#include "gateway/core/text.h"
#include "simulator/simulator.h"
#include "tests/support/kafka_util.h"
#include "tests/support/service_config.h"

namespace songda {
namespace {

using Json = nlohmann::json;

constexpr const char* kCourt = "HN-SQ-ZY";
constexpr const char* kCourtKey = "key-for-shangqiu-court-0001";
constexpr const char* kOtherKey = "key-for-jinshui-court-00002";

long rss_kib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return 0;
}

std::string csv_of(int n, int bad_at = -1) {
  std::string csv = "id,name,firm,mobile,app_user,consent_basis,consent_scope,consent_ref\n";
  for (int i = 0; i < n; ++i) {
    const std::string id = "L" + std::to_string(100000 + i);
    if (i == bad_at) csv += "BAD ROW,,,12,,,,\n";
    csv += id + ",律师" + std::to_string(i) + ",律所" + std::to_string(i % 34) + ",+86139" +
           std::to_string(10000000 + i) + ",app-" + id + ",confirmed,notice.broadcast,REG-" + id + "\n";
  }
  return csv;
}

class BroadcastTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = testing::config_for_test_services("bc", 7);
    brokers_ = config_.kafka.brokers;
    config_.redis.pool_size = 16;
    config_.channels.email.enabled = false;
    for (auto& p : config_.channels.sms.providers) {
      p.rate_per_sec = 100000;
      p.concurrency = 16;
    }

    sim::SimulatorOptions so;
    so.aliyun.receipt.delay_ms = 50;
    so.tencent.receipt.delay_ms = 50;
    so.threads = 32;
    sim_ = std::make_unique<sim::Simulator>(so);
    sim_->start();
    sim::export_default_credentials();
    setenv("SONGDA_API_KEYS", (std::string(kCourt) + "=" + kCourtKey + ",HN-ZZ-JS=" + kOtherKey).c_str(), 1);
    for (auto& p : config_.channels.sms.providers) p.endpoint = sim_->base_url();
    config_.channels.wechat.endpoint = sim_->base_url();
  }

  void TearDown() override {
    app_.reset();
    if (sim_) sim_->stop();
    unsetenv("SONGDA_API_KEYS");
  }

  void start(bool consume = false) {
    AppOptions opts;
    opts.ephemeral_evidence_key = true;
    opts.consume = consume;
    app_ = std::make_unique<App>(config_, opts);
    app_->start();
    sim_->set_callback_base("http://127.0.0.1:" + std::to_string(app_->http().port()));
  }

  httplib::Result call(const std::string& method, const std::string& path, const std::string& body = "",
                       const std::string& type = "application/json", const char* key = kCourtKey) {
    httplib::Client cli("127.0.0.1", app_->http().port());
    cli.set_read_timeout(60, 0);
    httplib::Headers h;
    if (key != nullptr) h.emplace("Authorization", std::string("Bearer ") + key);
    if (method == "GET") return cli.Get(path, h);
    if (method == "PUT") return cli.Put(path, h, body, type);
    return cli.Post(path, h, body, type);
  }

  Json json_of(const httplib::Result& r) { return r ? Json::parse(r->body, nullptr, false) : Json(); }

  void make_group(const std::string& id) {
    auto r = call("PUT", "/v1/groups/" + id,
                  Json{{"name", "商丘市律师群"}, {"court", {{"id", kCourt}, {"name", "商丘市中级人民法院"}}}}.dump());
    ASSERT_TRUE(r);
    ASSERT_TRUE(r->status == 201 || r->status == 200) << r->body;
  }

  // Starts the App with SMS sent at `sms_per_sec`, and an SMS broadcast to a new group of `members`.
  void start_sms_broadcast(const std::string& id, const std::string& group, int members, double sms_per_sec) {
    for (auto& p : config_.channels.sms.providers) p.rate_per_sec = sms_per_sec;
    start();
    make_group(group);
    ASSERT_EQ(call("POST", "/v1/groups/" + group + "/members:import", csv_of(members), "text/csv")->status, 200);
    ASSERT_EQ(call("POST", "/v1/broadcasts", broadcast_body(id, group, {"sms"}).dump())->status, 202);
  }

  Json progress(const std::string& id) { return json_of(call("GET", "/v1/broadcasts/" + id)); }

  // Polls the progress until pred holds; returns the last view.
  template <typename Pred>
  Json wait_progress(const std::string& id, Pred pred, int seconds) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    Json p;
    while (std::chrono::steady_clock::now() < deadline) {
      p = progress(id);
      if (p.is_object() && p.contains("state") && pred(p)) return p;  // a 404 body is not progress yet
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return p;
  }

  static Json broadcast_body(const std::string& id, const std::string& group, std::vector<std::string> channels) {
    return {{"id", id},
            {"group_id", group},
            {"reference", "商中法〔2026〕12号"},
            {"params", {{"notice_title", "关于网上立案的通知"}, {"notice_text", "自12月1日起全面推行网上立案。"}}},
            {"channels", channels}};
  }

  // A broadcast service driven by hand (no App threads), pages of 100, on the test's Redis; each call another
  // instance on the same Redis.
  broadcast::BroadcastService& hand_driven(const std::string& instance) {
    if (!hand_pool_) {
      hand_pool_ = std::make_unique<RedisPool>(parse_redis_url(config_.redis.url).value(), 4, 5000);
      hand_store_ = std::make_unique<DeliveryStore>(*hand_pool_);
    }
    broadcast::FanoutOptions fo;
    fo.page_size = 100;
    fo.instance_id = instance;
    return *hand_services_.emplace_back(
        std::make_unique<broadcast::BroadcastService>(*hand_pool_, *hand_store_, config_, PlanOptions{}, fo, nullptr));
  }

  void hand_group(broadcast::BroadcastService& svc, const std::string& id, int members) {
    broadcast::GroupInfo g{id, "群", kCourt, "商丘市中级人民法院", 0, 0, 0};
    auto parsed = broadcast::parse_members_csv(csv_of(members));
    ASSERT_TRUE(parsed.ok());
    ASSERT_TRUE(svc.groups().put(g, parsed->members, now_unix_ms()).ok());
  }

  void hand_start(broadcast::BroadcastService& svc, const std::string& id, const std::string& group,
                  std::vector<std::string> channels) {
    auto spec = broadcast::spec_from_request(broadcast_body(id, group, std::move(channels)), config_);
    ASSERT_TRUE(spec.ok());
    spec->court_id = kCourt;
    ASSERT_TRUE(svc.start(spec.value(), now_unix_ms()).ok());
  }

  std::string brokers_;
  Config config_;
  std::unique_ptr<sim::Simulator> sim_;
  std::unique_ptr<App> app_;
  std::unique_ptr<RedisPool> hand_pool_;
  std::unique_ptr<DeliveryStore> hand_store_;
  std::vector<std::unique_ptr<broadcast::BroadcastService>> hand_services_;
};

TEST_F(BroadcastTest, TenThousandMembersServedOnceEachWithMemoryBoundedByOnePage) {
  constexpr int kMembers = 10000;
  start();
  make_group("sq-lawyers");
  auto imp = call("POST", "/v1/groups/sq-lawyers/members:import", csv_of(kMembers, 5000), "text/csv");
  ASSERT_TRUE(imp);
  ASSERT_EQ(imp->status, 200) << imp->body.substr(0, 500);
  const Json ij = json_of(imp);
  EXPECT_EQ(ij["imported"], kMembers);
  EXPECT_EQ(ij["refused"], 1) << "the bad row is reported";
  EXPECT_EQ(ij["errors"][0]["row"], 5001);
  EXPECT_EQ(ij["members"], kMembers);

  const long rss_before = rss_kib();
  const auto sim_before = sim_->stats(true);
  const auto t0 = std::chrono::steady_clock::now();
  auto r = call("POST", "/v1/broadcasts", broadcast_body("bc-10k", "sq-lawyers", {"inapp", "sms"}).dump());
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 202) << r->body;
  EXPECT_EQ(r->get_header_value("Location"), "/v1/broadcasts/bc-10k");

  // Idempotent on the id; a different body under the same id is a conflict.
  auto again = call("POST", "/v1/broadcasts", broadcast_body("bc-10k", "sq-lawyers", {"inapp", "sms"}).dump());
  EXPECT_EQ(again->status, 200);
  auto clash = call("POST", "/v1/broadcasts", broadcast_body("bc-10k", "sq-lawyers", {"inapp"}).dump());
  EXPECT_EQ(clash->status, 409);

  const Json fanned = wait_progress(
      "bc-10k", [](const Json& p) { return p["fanout"]["complete"] == true; }, 120);
  const double fanout_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_EQ(fanned["fanout"]["members_planned"], kMembers) << fanned.dump();
  EXPECT_EQ(fanned["fanout"]["deliveries_recorded"], 2 * kMembers);
  EXPECT_EQ(fanned["fanout"]["unreachable_members"], 0);

  const Json done = wait_progress(
      "bc-10k", [](const Json& p) { return p["counts"]["DELIVERED"].get<long long>() >= 2 * kMembers; }, 300);
  const double total_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(done["counts"]["DELIVERED"], 2 * kMembers) << done.dump();
  EXPECT_EQ(done["deliveries"], 2 * kMembers);
  const Json fin = wait_progress(
      "bc-10k", [](const Json& p) { return p["state"] == "finished"; }, 30);
  EXPECT_EQ(fin["state"], "finished");
  EXPECT_NE(fin["finished_at"], "");

  // Every number accepted once by the providers, never twice.
  const auto stats = sim_->stats(true);
  const long long accepted =
      stats["aliyun"]["accepted"].get<long long>() + stats["tencent"]["accepted"].get<long long>() -
      sim_before["aliyun"]["accepted"].get<long long>() - sim_before["tencent"]["accepted"].get<long long>();
  const long long requests =
      stats["aliyun"]["requests"].get<long long>() + stats["tencent"]["requests"].get<long long>() -
      sim_before["aliyun"]["requests"].get<long long>() - sim_before["tencent"]["requests"].get<long long>();
  EXPECT_EQ(accepted, kMembers);
  EXPECT_EQ(stats["aliyun"]["duplicate_count"], 0);
  EXPECT_EQ(stats["tencent"]["duplicate_count"], 0);

  // Memory: the fan-out never held more than one page of members.
  const auto& fs = app_->broadcasts().fanout().stats();
  EXPECT_LE(fs.peak_in_flight.load(), 500u);
  EXPECT_EQ(fs.members.load(), static_cast<std::uint64_t>(kMembers));
  const long rss_after = rss_kib();
  std::printf(
      "BENCH broadcast 10000 members: fan-out %.2f s, all delivered %.2f s, SMS requests %lld for %lld members "
      "(%.3f per member), peak members in memory %llu, RSS %ld -> %ld KiB (+%ld)\n",
      fanout_s, total_s, requests, accepted, static_cast<double>(requests) / kMembers,
      static_cast<unsigned long long>(fs.peak_in_flight.load()), rss_before, rss_after, rss_after - rss_before);
  RecordProperty("rss_growth_kib", std::to_string(rss_after - rss_before));
  RecordProperty("sms_requests_per_member", std::to_string(static_cast<double>(requests) / kMembers));

  // One member's delivery, and its proof of service (the checkpoint follows within a second).
  const std::string sms_id = delivery_id("broadcast:bc-10k", "L104321", "sms");
  auto d = json_of(call("GET", "/v1/deliveries/" + sms_id));
  EXPECT_EQ(d["status"], "DELIVERED");
  EXPECT_EQ(d["case_number"], "商中法〔2026〕12号");
  EXPECT_EQ(d["address_masked"].get<std::string>().find("13910004321"), std::string::npos);
  int proof_status = 0;
  std::string bundle;
  for (int i = 0; i < 40 && proof_status != 200; ++i) {
    auto proof = call("GET", "/v1/deliveries/" + sms_id + "/proof");
    proof_status = proof ? proof->status : 0;
    bundle = proof ? proof->body : "";
    if (proof_status != 200) std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  ASSERT_EQ(proof_status, 200) << bundle.substr(0, 300);
  EXPECT_NE(bundle.find("SUBMISSION_ACCEPTED"), std::string::npos);
  EXPECT_NE(bundle.find("CONSENT_RECORDED"), std::string::npos);
  EXPECT_NE(bundle.find("DELIVERED"), std::string::npos);

  // The SSE stream of a finished broadcast: one progress frame, then the stream ends.
  auto sse = call("GET", "/v1/broadcasts/bc-10k/events");
  ASSERT_TRUE(sse);
  EXPECT_EQ(sse->status, 200);
  EXPECT_NE(sse->get_header_value("Content-Type").find("text/event-stream"), std::string::npos);
  EXPECT_EQ(sse->body.rfind("event: progress\ndata: {", 0), 0u) << sse->body.substr(0, 200);
  EXPECT_NE(sse->body.find("\"state\":\"finished\""), std::string::npos);
}

TEST_F(BroadcastTest, FanOutInterruptedBetweenRecordAndCursorResumesWithNoMemberSkippedOrRepeated) {
  // No App threads here: the fan-out is driven by hand, and "crashes" right after recording page 3.
  auto& svc = hand_driven("first");
  DeliveryStore& store = *hand_store_;
  hand_group(svc, "grp-k", 1050);
  hand_start(svc, "bc-k", "grp-k", {"inapp", "sms"});

  int pages_seen = 0;
  svc.fanout().set_page_hook([&](const std::string&, long long) { return ++pages_seen != 3; });
  ASSERT_TRUE(svc.fanout().run_once(now_unix_ms()).ok());
  auto mid = svc.broadcasts().get("bc-k");
  ASSERT_TRUE(mid.ok() && mid.value());
  EXPECT_EQ(mid.value()->cursor, 200) << "page 3 was recorded, its cursor not moved";

  // The same group changes meanwhile: the broadcast keeps serving the snapshot taken at its start.
  auto extra = broadcast::parse_members_csv("id,name,mobile,consent_basis\nLATE-1,迟到律师,+8613700000000,confirmed\n");
  ASSERT_TRUE(svc.groups().upsert("grp-k", extra->members, now_unix_ms()).ok());

  // A second instance takes over once the first one's lease is gone (a kill -9 lets it run out).
  svc.broadcasts().release_lease("first");
  auto& svc2 = hand_driven("second");
  for (int i = 0; i < 20; ++i) {
    auto r = svc2.fanout().run_once(now_unix_ms());
    ASSERT_TRUE(r.ok()) << r.error().message;
    auto b = svc2.broadcasts().get("bc-k");
    if (b.value()->state != "running") break;
  }
  EXPECT_EQ(svc2.fanout().stats().pages_resumed.load(), 1u) << "the interrupted page was recognised, not redone";
  auto b = svc2.broadcasts().get("bc-k");
  ASSERT_TRUE(b.ok() && b.value());
  EXPECT_EQ(b.value()->state, "dispatching");
  EXPECT_EQ(b.value()->cursor, 1050);
  EXPECT_EQ(b.value()->planned, 2100);
  EXPECT_EQ(b.value()->counts["ACCEPTED"], 2100) << "one delivery per member and channel, none twice";
  EXPECT_EQ(store.queue_length("sms").value(), 1050);
  EXPECT_EQ(store.queue_length("inapp").value(), 1050);
  auto late = store.get_delivery(delivery_id("broadcast:bc-k", "LATE-1", "sms"));
  ASSERT_TRUE(late.ok());
  EXPECT_FALSE(late.value().has_value()) << "a member added after the start is not in this broadcast";
  for (const char* m : {"L100000", "L100250", "L101049"}) {
    auto v = store.get_delivery(delivery_id("broadcast:bc-k", m, "sms"));
    ASSERT_TRUE(v.ok() && v.value()) << m;
    EXPECT_EQ(v.value()->history.size(), 1u);
  }
}

// Before, a cancel that came during a fan-out pass did not stop it: the pass went on planning and queueing up to
// 16 pages (8,000 members), many sent before the cancel was applied. And a page recorded whose cursor move did
// not happen stayed queued after the cancel, which only reached the cursor.
TEST_F(BroadcastTest, ACancelDuringTheFanOutStopsItAtThePageInProgressAndCoversThatPage) {
  auto& svc = hand_driven("only");
  DeliveryStore& store = *hand_store_;
  hand_group(svc, "grp-c", 1050);
  const auto start = [&](const std::string& id) { hand_start(svc, id, "grp-c", {"inapp", "sms"}); };
  const auto recorded = [&](const std::string& id, const char* member) {
    auto v = store.get_delivery(delivery_id("broadcast:" + id, member, "sms"));
    return v.ok() && v.value().has_value();
  };
  const auto settle = [&](const std::string& id) {
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(svc.fanout().run_once(now_unix_ms()).ok());
    auto b = svc.broadcasts().get(id);
    ASSERT_TRUE(b.ok() && b.value());
    EXPECT_EQ(b.value()->state, "cancelled");
  };

  // The cancel comes while page 2 is being recorded: page 3 is never planned.
  start("bc-stop");
  int pages = 0;
  svc.fanout().set_page_hook([&](const std::string& id, long long) {
    if (++pages == 2) {
      EXPECT_TRUE(svc.broadcasts().request_cancel(id, now_unix_ms()).ok());
    }
    return true;
  });
  settle("bc-stop");
  EXPECT_EQ(pages, 2) << "pages were planned after the cancel";
  EXPECT_TRUE(recorded("bc-stop", "L100199"));
  EXPECT_FALSE(recorded("bc-stop", "L100200"));
  EXPECT_EQ(store.queue_length("sms").value(), 0) << "a recorded delivery is still queued after the cancel";
  EXPECT_EQ(store.queue_length("inapp").value(), 0);

  // The cancel comes while page 2 is recorded, and its cursor move does not happen (the process died): the
  // cancel still covers page 2.
  start("bc-cut");
  pages = 0;
  svc.fanout().set_page_hook([&](const std::string& id, long long) {
    if (++pages < 2) return true;
    EXPECT_TRUE(svc.broadcasts().request_cancel(id, now_unix_ms()).ok());
    return false;
  });
  settle("bc-cut");
  EXPECT_TRUE(recorded("bc-cut", "L100199"));
  EXPECT_EQ(svc.broadcasts().get("bc-cut").value()->cursor, 100);
  EXPECT_EQ(store.queue_length("sms").value(), 0) << "the page past the cursor is still queued after the cancel";
  EXPECT_EQ(store.queue_length("inapp").value(), 0);
  auto last = store.get_delivery(delivery_id("broadcast:bc-cut", "L100150", "sms"));
  ASSERT_TRUE(last.ok() && last.value());
  EXPECT_EQ(last.value()->status, "CANCELLED");
}

// Before, a broadcast whose stored record did not read back ended every fan-out pass at it: the broadcasts after it
// never progressed and their cancels never ran. And a failed broadcast (its next page could not be planned) kept
// the deliveries of its recorded pages queued while cancel answered 409 "nothing is left to cancel".
TEST_F(BroadcastTest, AnUnreadableBroadcastFailsAloneAndAFailedOneCanStillBeCancelled) {
  auto& svc = hand_driven("only");
  DeliveryStore& store = *hand_store_;
  hand_group(svc, "grp-f", 300);
  for (const char* id : {"bc-a-bad", "bc-b-good"}) hand_start(svc, id, "grp-f", {"inapp"});
  ASSERT_TRUE(hand_pool_->command({"HSET", "sd:bc:{bc-a-bad}", "spec", R"({"id": "bc-a-bad", "channels": 7})"}).ok());
  const auto errors_before = internal_errors();
  ASSERT_TRUE(svc.fanout().run_once(now_unix_ms()).ok());
  EXPECT_EQ(svc.broadcasts().state("bc-b-good").value(), "dispatching") << "held up behind the unreadable one";
  EXPECT_EQ(svc.broadcasts().state("bc-a-bad").value(), "failed");
  EXPECT_EQ(internal_errors(), errors_before + 1);

  // A broadcast that fails after its first page was recorded: the cancel takes that page off the queue.
  hand_start(svc, "bc-c-fails", "grp-f", {"sms"});
  svc.fanout().set_page_hook([&](const std::string& id, long long) {
    EXPECT_TRUE(svc.broadcasts().fail(id, "page 2 cannot be planned", now_unix_ms()).ok());
    return true;
  });
  ASSERT_TRUE(svc.fanout().run_once(now_unix_ms()).ok());
  svc.fanout().set_page_hook(nullptr);
  ASSERT_EQ(svc.broadcasts().state("bc-c-fails").value(), "failed");
  ASSERT_EQ(store.queue_length("sms").value(), 100) << "its first page is queued";
  EXPECT_EQ(svc.broadcasts().request_cancel("bc-c-fails", now_unix_ms()).value(), "failed");
  ASSERT_TRUE(svc.fanout().run_once(now_unix_ms()).ok());
  EXPECT_EQ(svc.broadcasts().state("bc-c-fails").value(), "cancelled");
  EXPECT_EQ(store.queue_length("sms").value(), 0) << "the failed broadcast's queued deliveries were sent after cancel";
  EXPECT_EQ(svc.broadcasts().get("bc-c-fails").value()->cancelled, 100);
}

TEST_F(BroadcastTest, CancelStopsPendingSendsAndKeepsWhatWasSent) {
  start_sms_broadcast("bc-cancel", "cancel-grp", 1500, 100);  // slow enough to cancel midway
  wait_progress(
      "bc-cancel", [](const Json& p) { return p["dispatched"].get<long long>() >= 100; }, 60);
  auto c = call("POST", "/v1/broadcasts/bc-cancel/cancel");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->status, 202) << c->body;
  const Json p = wait_progress(
      "bc-cancel", [](const Json& x) { return x["state"] == "cancelled" && x["waiting"] == 0; }, 60);
  ASSERT_EQ(p["state"], "cancelled") << p.dump();
  const long long cancelled = p["counts"]["CANCELLED"];
  const long long sent = p["counts"]["SENT"].get<long long>() + p["counts"]["DELIVERED"].get<long long>();
  EXPECT_GT(cancelled, 0);
  EXPECT_GT(sent, 0);
  // Every delivery recorded is accounted for; a cancel during the fan-out also stops the members not yet planned.
  EXPECT_EQ(cancelled + sent + p["counts"]["FAILED"].get<long long>(), p["deliveries"].get<long long>());
  EXPECT_EQ(p["deliveries"], p["fanout"]["deliveries_recorded"]);
  EXPECT_LE(p["deliveries"].get<long long>(), 1500);
  EXPECT_EQ(p["cancelled_by_request"], cancelled);
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const auto stats = sim_->stats(true);
  EXPECT_EQ(stats["aliyun"]["accepted"].get<long long>() + stats["tencent"]["accepted"].get<long long>(), sent)
      << "every number the providers took is recorded as sent; nothing went out after the cancel";
  EXPECT_EQ(call("POST", "/v1/broadcasts/bc-cancel/cancel")->status, 202) << "cancelling again is harmless";
}

// Each progress stream holds an HTTP worker for up to an hour. Before, they were not counted: eight console tabs
// on a broadcast that waits overnight held every worker, and the API (provider callbacks, cancel, /readyz)
// stopped answering. Now they share the server's stream slots with the console's streams.
TEST_F(BroadcastTest, ProgressStreamsAreBoundedAndTheApiKeepsAnswering) {
  start_sms_broadcast("bc-sse", "sse-grp", 400, 20);  // the broadcast stays open meanwhile
  const int slots = config_.http.threads / 2;
  ASSERT_GE(slots, 1);
  std::atomic<int> opened{0};
  std::vector<std::thread> streams;
  for (int i = 0; i < slots; ++i) {
    streams.emplace_back([&] {
      httplib::Client cli("127.0.0.1", app_->http().port());
      cli.set_read_timeout(120, 0);
      bool first = true;
      cli.Get("/v1/broadcasts/bc-sse/events?interval_ms=200", {{"Authorization", std::string("Bearer ") + kCourtKey}},
              [&](const char*, std::size_t) {
                if (first) opened.fetch_add(1);
                first = false;
                return true;
              });
    });
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (opened.load() < slots && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(opened.load(), slots);
  httplib::Client extra("127.0.0.1", app_->http().port());
  extra.set_read_timeout(3, 0);
  auto refused = extra.Get("/v1/broadcasts/bc-sse/events", {{"Authorization", std::string("Bearer ") + kCourtKey}});
  ASSERT_TRUE(refused) << "one stream too many was held open";
  EXPECT_EQ(refused->status, 503);
  EXPECT_EQ(refused->get_header_value("Retry-After"), "5");
  EXPECT_EQ(json_of(refused)["error"]["code"], "too_many_streams");
  EXPECT_EQ(call("GET", "/v1/broadcasts/bc-sse")->status, 200);
  EXPECT_EQ(call("GET", "/readyz", "", "", nullptr)->status, 200);
  EXPECT_EQ(call("POST", "/v1/broadcasts/bc-sse/cancel")->status, 202);
  for (auto& t : streams) t.join();  // the streams end with the broadcast's final state
  for (int i = 0; i < 40 && app_->http().open_streams() > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(app_->http().open_streams(), 0) << "a slot was not given back";
}

TEST_F(BroadcastTest, ImportsReportBadRowsKeepGoodOnesAndEveryCallIsCourtScoped) {
  start();
  // Authentication and court scope.
  EXPECT_EQ(call("PUT", "/v1/groups/g1", "{}", "application/json", nullptr)->status, 401);
  make_group("g1");
  EXPECT_EQ(call("GET", "/v1/groups/g1", "", "", kOtherKey)->status, 403);
  EXPECT_EQ(call("POST", "/v1/groups/g1/members:import", "[]", "application/json", kOtherKey)->status, 403);
  EXPECT_EQ(call("PUT", "/v1/groups/g1", R"({"name":"x"})", "application/json", kOtherKey)->status, 403);
  EXPECT_EQ(call("GET", "/v1/groups/nope")->status, 404);

  Json body = {
      {"members",
       {{{"id", "A1"},
         {"name", "甲律师"},
         {"contacts", {{"mobile", "+8613811112222"}}},
         {"consent", {{"basis", "confirmed"}, {"scope", {"*"}}}}},
        {{"id", "A2"}, {"name", "乙律师"}, {"contacts", {{"mobile", "x"}}}, {"consent", {{"basis", "confirmed"}}}},
        {{"id", "A3"},
         {"name", "丙律师"},
         {"contacts", {{"email", "bing@law.cn"}}},
         {"consent", {{"basis", "provided"}, {"scope", {"notice.broadcast"}}}}}}}};
  auto r = call("POST", "/v1/groups/g1/members:import", body.dump());
  ASSERT_EQ(r->status, 200) << r->body;
  Json j = json_of(r);
  EXPECT_EQ(j["imported"], 2);
  EXPECT_EQ(j["refused"], 1);
  EXPECT_EQ(j["errors"][0]["id"], "A2");
  EXPECT_EQ(j["errors"][0]["field"], "contacts.mobile");

  // Whole-body problems: clear errors, nothing imported, no crash.
  auto bad_json = call("POST", "/v1/groups/g1/members:import", "{\"members\": [", "application/json");
  EXPECT_EQ(bad_json->status, 400);
  EXPECT_EQ(json_of(bad_json)["error"]["code"], "invalid_json");
  auto bad_utf8 = call("POST", "/v1/groups/g1/members:import", "id,name,consent_basis\nZ,\xff\xfe,none\n", "text/csv");
  EXPECT_EQ(json_of(bad_utf8)["error"]["code"], "invalid_utf8");
  auto bad_csv = call("POST", "/v1/groups/g1/members:import", "id,name,consent_basis\nZ,\"open,none\n", "text/csv");
  EXPECT_EQ(json_of(bad_csv)["error"]["code"], "invalid_csv");
  EXPECT_EQ(call("POST", "/v1/groups/g1/members:import", "x", "application/xml")->status, 415);

  // Paging, contacts masked.
  auto page = call("GET", "/v1/groups/g1?offset=0&limit=1");
  ASSERT_EQ(page->status, 200);
  Json pj = json_of(page);
  EXPECT_EQ(pj["members"], 2);
  ASSERT_EQ(pj["items"].size(), 1u);
  EXPECT_EQ(pj["next_offset"], 1);
  EXPECT_EQ(page->body.find("13811112222"), std::string::npos) << page->body;
  Json p2 = json_of(call("GET", "/v1/groups/g1?offset=1&limit=1"));
  EXPECT_EQ(p2["items"][0]["id"], "A3");
  EXPECT_TRUE(p2["next_offset"].is_null());
  // A page that cannot be given is refused, not guessed (it was clamped or defaulted before).
  for (const char* q : {"?limit=0", "?limit=1001", "?limit=5x", "?offset=-1", "?offset=abc", "?offset=99999999999"}) {
    auto bad = call("GET", std::string("/v1/groups/g1") + q);
    EXPECT_EQ(bad->status, 400) << q;
    EXPECT_EQ(json_of(bad)["error"]["code"], "invalid_request") << q;
  }
  EXPECT_EQ(call("GET", "/v1/groups/g1?limit=1000")->status, 200);

  // PUT with members replaces the membership, all or nothing.
  auto put_bad = call("PUT", "/v1/groups/g1", Json{{"members", {{{"id", "B1"}}}}}.dump());
  EXPECT_EQ(put_bad->status, 422);
  EXPECT_EQ(json_of(call("GET", "/v1/groups/g1"))["members"], 2) << "nothing changed";

  // Broadcast requests: scoped and checked.
  EXPECT_EQ(
      call("POST", "/v1/broadcasts", broadcast_body("b1", "g1", {"sms"}).dump(), "application/json", kOtherKey)->status,
      403);
  EXPECT_EQ(call("POST", "/v1/broadcasts", broadcast_body("b1", "nope", {"sms"}).dump())->status, 404);
  Json missing = broadcast_body("b1", "g1", {"sms"});
  missing["params"].erase("notice_text");
  auto m = call("POST", "/v1/broadcasts", missing.dump());
  EXPECT_EQ(m->status, 422);
  EXPECT_EQ(json_of(m)["error"]["code"], "template_param_missing");
  EXPECT_EQ(call("POST", "/v1/broadcasts", "{not json")->status, 400);
  ASSERT_EQ(call("POST", "/v1/broadcasts", broadcast_body("b1", "g1", {"sms", "email"}).dump())->status, 400)
      << "email is not configured here";
  ASSERT_EQ(call("POST", "/v1/broadcasts", broadcast_body("b1", "g1", {"inapp", "sms"}).dump())->status, 202);
  EXPECT_EQ(call("GET", "/v1/broadcasts/b1", "", "", kOtherKey)->status, 403);
  EXPECT_EQ(call("POST", "/v1/broadcasts/b1/cancel", "", "", kOtherKey)->status, 403);
  EXPECT_EQ(call("GET", "/v1/broadcasts/zzz")->status, 404);
  const Json done = wait_progress(
      "b1", [](const Json& p) { return p["state"] == "finished"; }, 60);
  // A1 has a mobile (sms); A3 only an e-mail, which this broadcast does not use: reported unreachable.
  EXPECT_EQ(done["fanout"]["unreachable_members"], 1) << done.dump();
  EXPECT_EQ(done["deliveries"], 1);
  // ...and named, contacts masked, for the clerk who has to serve A3 by other means.
  auto who = call("GET", "/v1/broadcasts/b1/unreachable");
  ASSERT_EQ(who->status, 200) << who->body;
  const Json wj = json_of(who);
  EXPECT_EQ(wj["total"], 1);
  ASSERT_EQ(wj["items"].size(), 1u) << who->body;
  EXPECT_EQ(wj["items"][0]["id"], "A3");
  EXPECT_FALSE(wj["items"][0]["reason"].get<std::string>().empty());
  EXPECT_TRUE(wj["next_offset"].is_null());
  EXPECT_EQ(who->body.find("bing@law.cn"), std::string::npos) << who->body;
  EXPECT_EQ(call("GET", "/v1/broadcasts/b1/unreachable", "", "", kOtherKey)->status, 403);
  EXPECT_EQ(call("GET", "/v1/broadcasts/zzz/unreachable")->status, 404);
}

TEST_F(BroadcastTest, NoticeBroadcastEventOnKafkaServesTheGroup) {
  start(true);
  make_group("kafka-grp");
  ASSERT_EQ(call("POST", "/v1/groups/kafka-grp/members:import", csv_of(30), "text/csv")->status, 200);
  Json e = {{"schema", "songda.case-event/v1"},
            {"event_id", "evt-bc-1"},
            {"type", "notice.broadcast"},
            {"occurred_at", "2026-11-28T09:00:00+08:00"},
            {"court", {{"id", kCourt}, {"name", "商丘市中级人民法院"}}},
            {"case", {{"number", "商中法〔2026〕13号"}}},
            {"recipients",
             {{{"id", "CLERK-1"},
               {"role", "other"},
               {"name", "书记员"},
               {"contacts", {{"app_user", "clerk-1"}}},
               {"consent", {{"basis", "provided"}, {"scope", {"notice.broadcast"}}}}}}},
            {"params", {{"notice_title", "排期调整"}, {"notice_text", "12月排期调整如下……"}}},
            {"broadcast", {{"group_id", "kafka-grp"}}}};
  Json unknown = e;
  unknown["event_id"] = "evt-bc-2";
  unknown["broadcast"]["group_id"] = "no-such-group";
  KafkaProducer producer(config_.kafka);
  ASSERT_TRUE(
      producer.produce_all({{config_.kafka.topic, "k", e.dump(), {}}, {config_.kafka.topic, "k", unknown.dump(), {}}})
          .ok());
  const Json p = wait_progress(
      "evt-bc-1", [](const Json& x) { return x["state"] == "finished"; }, 60);
  ASSERT_TRUE(p.contains("state")) << p.dump();
  EXPECT_EQ(p["origin"], "kafka");
  EXPECT_EQ(p["members"], 30);
  EXPECT_EQ(p["deliveries"], 60);  // inapp + sms per member
  auto clerk = app_->store().get_delivery(delivery_id("evt-bc-1", "CLERK-1", "inapp"));
  ASSERT_TRUE(clerk.ok());
  EXPECT_TRUE(clerk.value().has_value()) << "the event's own recipients are served as usual";
  // The refusal goes to the DLQ in the same ingest batch; wait for it rather than for the broadcast.
  std::vector<KafkaMessage> dlq;
  for (int i = 0; i < 50 && dlq.empty(); ++i) {
    dlq = testing::read_all(brokers_, config_.kafka.dlq_topic, 2000);
    if (dlq.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_EQ(dlq.size(), 1u);
  std::string code;
  for (const auto& [k, v] : dlq[0].headers) {
    if (k == "songda.error.code") code = v;
  }
  EXPECT_EQ(code, "not_found") << "an event naming an unknown group is refused with the reason";

  // A correction reusing the event_id, naming a new broadcast id, is refused as a conflict before its broadcast
  // starts: before, the group was served the refused notice (the fan-out started ahead of the conflict check).
  // Published twice in one batch as well: the second is measured against the first of its batch.
  Json corrected = e;
  corrected["params"]["notice_text"] = "12月排期调整（更正）";
  corrected["broadcast"]["id"] = "bc-corrected";
  Json fresh = e;
  fresh["event_id"] = "evt-bc-3";
  fresh["broadcast"]["id"] = "bc-fresh";
  Json fresh_corrected = fresh;
  fresh_corrected["params"]["notice_text"] = "另一版本";
  fresh_corrected["broadcast"]["id"] = "bc-fresh-corrected";
  ASSERT_TRUE(producer
                  .produce_all({{config_.kafka.topic, "k", corrected.dump(), {}},
                                {config_.kafka.topic, "k", fresh.dump(), {}},
                                {config_.kafka.topic, "k", fresh_corrected.dump(), {}}})
                  .ok());
  std::vector<std::string> codes;
  for (int i = 0; i < 50 && codes.size() < 3; ++i) {
    codes.clear();
    for (const auto& m : testing::read_all(brokers_, config_.kafka.dlq_topic, 2000)) {
      for (const auto& [k, v] : m.headers) {
        if (k == "songda.error.code") codes.push_back(v);
      }
    }
    if (codes.size() < 3) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_EQ(codes, (std::vector<std::string>{"not_found", "conflict", "conflict"}));
  EXPECT_EQ(call("GET", "/v1/broadcasts/bc-corrected")->status, 404) << "the refused correction was broadcast";
  EXPECT_EQ(call("GET", "/v1/broadcasts/bc-fresh-corrected")->status, 404) << "the refused correction was broadcast";
  EXPECT_EQ(wait_progress(
                "bc-fresh", [](const Json& x) { return x["state"] == "finished"; }, 60)["members"],
            30);
}

}  // namespace
}  // namespace songda
