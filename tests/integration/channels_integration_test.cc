// Channels end to end, in-process: real Kafka, real Redis, a real SMTP server (aiosmtpd), and our
// provider simulator playing Aliyun, Tencent and WeChat with their documented wire formats and receipts.
#include <gtest/gtest.h>
#include <httplib.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "channels/wechat/wechat_protocol.h"
#include "gateway/app/app.h"
#include "gateway/core/crypto.h"
#include "gateway/core/link.h"
#include "gateway/core/text.h"
#include "simulator/simulator.h"
#include "tests/support/kafka_util.h"
#include "tests/support/service_config.h"

namespace songda {
namespace {

using testing::require_env;

nlohmann::json summons(const std::string& id, int n, bool with_wechat, bool with_email, bool with_app) {
  nlohmann::json contacts = {{"mobile", "+86138" + std::to_string(10000000 + n)}};
  if (with_wechat) contacts["wechat_openid"] = "oOPENID" + std::to_string(n);
  if (with_email) contacts["email"] = "party" + std::to_string(n) + "@example.cn";
  if (with_app) contacts["app_user"] = "u-" + std::to_string(n);
  return {{"schema", "songda.case-event/v1"},
          {"event_id", id},
          {"type", "summons.issued"},
          {"occurred_at", "2026-11-28T09:00:00+08:00"},
          {"court", {{"id", "HN-SQ-ZY"}, {"name", "商丘市中级人民法院"}}},
          {"case", {{"number", "(2026)豫14民初" + std::to_string(n) + "号"}, {"title", "买卖合同纠纷"}}},
          {"document", {{"id", "DOC-1"}, {"title", "传票"}, {"sha256", std::string(64, 'b')}}},
          {"recipients",
           {{{"id", "P1"},
             {"role", "party"},
             {"name", "张三"},
             {"contacts", contacts},
             {"consent", {{"basis", "confirmed"}, {"scope", {"summons.issued"}}, {"ref", "C-1"}}}}}},
          {"params", {{"hearing_time", "2026-12-10 09:30"}, {"courtroom", "第三法庭"}}}};
}

class ChannelsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = testing::config_for_test_services("ch", 3);
    brokers_ = config_.kafka.brokers;

    sim::SimulatorOptions so;
    so.aliyun.receipt.delay_ms = 100;
    so.tencent.receipt.delay_ms = 100;
    so.wechat.receipt.delay_ms = 100;
    sim_ = std::make_unique<sim::Simulator>(so);
    sim_->start();
    sim::export_default_credentials();
    for (auto& p : config_.channels.sms.providers) p.endpoint = sim_->base_url();
    config_.channels.wechat.endpoint = sim_->base_url();
    config_.channels.email.smtp_url =
        "smtp://" + require_env("SONGDA_TEST_SMTP_HOST") + ":" + require_env("SONGDA_TEST_SMTP_PORT");
    config_.channels.email.starttls = "none";
    maildir_ = require_env("SONGDA_TEST_SMTP_MAILDIR");
  }

  void TearDown() override {
    app_.reset();  // closes Songda's kept-alive provider connections before the simulator stops
    if (sim_) sim_->stop();
  }

  void start(AppOptions opts = {}) {
    opts.ephemeral_evidence_key = true;
    app_ = std::make_unique<App>(config_, opts);
    app_->start();
    sim_->set_callback_base("http://127.0.0.1:" + std::to_string(app_->http().port()));
  }

  void publish(const std::vector<nlohmann::json>& events) {
    KafkaProducer producer(config_.kafka);
    std::vector<OutgoingMessage> out;
    for (const auto& e : events) out.push_back({config_.kafka.topic, e["case"]["number"], e.dump(), {}});
    ASSERT_TRUE(producer.produce_all(out).ok());
  }

  // Waits until the delivery reaches one of `want`; returns its last view.
  DeliveryView wait_for(const std::string& id, std::initializer_list<const char*> want, int seconds = 60) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    DeliveryView last;
    while (std::chrono::steady_clock::now() < deadline) {
      auto v = app_->store().get_delivery(id);
      if (v.ok() && v.value()) {
        last = *v.value();
        for (const char* w : want) {
          if (last.status == w) return last;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    return last;
  }

  static bool has(const DeliveryView& v, const std::string& status) {
    return std::any_of(v.history.begin(), v.history.end(), [&](const StatusEntry& s) { return s.status == status; });
  }

  std::string brokers_;
  std::string maildir_;
  Config config_;
  std::unique_ptr<sim::Simulator> sim_;
  std::unique_ptr<App> app_;
};

TEST_F(ChannelsTest, SummonsReachesSmsWechatAndEmailWithReceipts) {
  for (auto& r : config_.routes) r.fallback.clear();  // all channels at once here
  start();
  publish({summons("ch-1", 1, true, true, false)});
  const auto sms = wait_for(delivery_id("ch-1", "P1", "sms"), {"DELIVERED", "FAILED"});
  const auto wx = wait_for(delivery_id("ch-1", "P1", "wechat"), {"DELIVERED", "FAILED"});
  const auto mail = wait_for(delivery_id("ch-1", "P1", "email"), {"DELIVERED", "FAILED"});
  EXPECT_EQ(sms.status, "DELIVERED");
  EXPECT_TRUE(has(sms, "SENT")) << "SMS is DELIVERED only by the operator's receipt";
  EXPECT_EQ(sms.provider, "aliyun-main");
  EXPECT_EQ(wx.status, "DELIVERED");
  EXPECT_TRUE(has(wx, "SENT"));
  EXPECT_EQ(mail.status, "DELIVERED");
  EXPECT_NE(mail.provider_message_id.find(mail.delivery.id), std::string::npos);

  // The mail is in the SMTP server's mailbox, with our Message-ID.
  bool found = false;
  for (const auto& f : std::filesystem::directory_iterator(maildir_ + "/new")) {
    std::ifstream in(f.path());
    std::stringstream ss;
    ss << in.rdbuf();
    if (ss.str().find(mail.delivery.id) != std::string::npos) found = true;
  }
  EXPECT_TRUE(found);
  const auto stats = sim_->stats();
  EXPECT_EQ(stats["aliyun"]["duplicate_count"], 0);
  EXPECT_EQ(stats["wechat"]["duplicate_count"], 0);
  EXPECT_EQ(stats["aliyun"]["accepted"], 1);
}

TEST_F(ChannelsTest, OneSmsProviderDownFailsOverToTheOther) {
  for (auto& r : config_.routes) r.fallback.clear();
  sim::ProviderBehaviour down;
  down.down = true;
  down.down_mode = "503";
  sim_->set_behaviour(sim::Provider::kAliyun, down);
  start();
  std::vector<nlohmann::json> events;
  for (int i = 0; i < 10; ++i) events.push_back(summons("fo-" + std::to_string(i), 100 + i, false, false, false));
  publish(events);
  for (int i = 0; i < 10; ++i) {
    const auto v = wait_for(delivery_id("fo-" + std::to_string(i), "P1", "sms"), {"DELIVERED", "FAILED"});
    EXPECT_EQ(v.status, "DELIVERED") << v.delivery.id;
    EXPECT_EQ(v.provider, "tencent-backup");
  }
  EXPECT_EQ(sim_->stats()["tencent"]["accepted"], 10);
  EXPECT_EQ(sim_->stats()["tencent"]["duplicate_count"], 0);
}

TEST_F(ChannelsTest, ThirtyPercentServerErrorsAreRetriedWithoutDuplicatesAtTheProvider) {
  for (auto& r : config_.routes) r.fallback.clear();
  sim::ProviderBehaviour flaky;
  flaky.error_rate = 0.3;
  flaky.http_status = 500;
  sim_->set_behaviour(sim::Provider::kAliyun, flaky);
  sim_->set_behaviour(sim::Provider::kTencent, flaky);
  start();
  std::vector<nlohmann::json> events;
  for (int i = 0; i < 60; ++i) events.push_back(summons("fl-" + std::to_string(i), 200 + i, false, false, false));
  publish(events);
  int delivered = 0;
  for (int i = 0; i < 60; ++i) {
    const auto v = wait_for(delivery_id("fl-" + std::to_string(i), "P1", "sms"), {"DELIVERED", "FAILED"}, 90);
    delivered += v.status == "DELIVERED" ? 1 : 0;
  }
  EXPECT_EQ(delivered, 60);
  const auto stats = sim_->stats();
  EXPECT_GT(stats["aliyun"]["errors_injected"].get<int>() + stats["tencent"]["errors_injected"].get<int>(), 0);
  EXPECT_EQ(stats["aliyun"]["duplicate_count"], 0);
  EXPECT_EQ(stats["tencent"]["duplicate_count"], 0);
  EXPECT_EQ(stats["aliyun"]["accepted"].get<int>() + stats["tencent"]["accepted"].get<int>(), 60);
}

TEST_F(ChannelsTest, FallbackToSmsFiresWhenWechatIsNotDeliveredByTheDeadline) {
  for (auto& r : config_.routes) {
    if (r.event_type == "summons.issued") {
      r.fallback = {FallbackConfig{"wechat", "sms", "DELIVERED", 2, 0, 0}};
    }
  }
  sim::ProviderBehaviour silent;
  silent.receipt.outcome = "none";  // WeChat accepts but never confirms delivery
  sim_->set_behaviour(sim::Provider::kWeChat, silent);
  start();
  publish({summons("fb-1", 300, true, false, false)});
  const std::string sms_id = delivery_id("fb-1", "P1", "sms");
  auto held = wait_for(sms_id, {"ACCEPTED"}, 10);
  EXPECT_TRUE(has(held, "HELD"));
  const auto wx = wait_for(delivery_id("fb-1", "P1", "wechat"), {"SENT"});
  EXPECT_EQ(wx.status, "SENT");
  const auto sms = wait_for(sms_id, {"DELIVERED", "FAILED", "CANCELLED"}, 30);
  EXPECT_EQ(sms.status, "DELIVERED");
  EXPECT_TRUE(has(sms, "FALLBACK"));
}

TEST_F(ChannelsTest, ForgedAndUnauthenticatedReceiptsAreRefusedAndCounted) {
  start();
  httplib::Client cli("127.0.0.1", app_->http().port());
  const std::string report =
      R"([{"phone_number":"13800000001","send_time":"2026-11-28 09:00:00","report_time":"2026-11-28 09:00:01","success":true,"err_code":"DELIVERED","err_msg":"ok","sms_size":"1","biz_id":"1","out_id":"x"}])";
  auto none = cli.Post("/callbacks/aliyun/sms-report", report, "application/json");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 401);
  auto wrong = cli.Post("/callbacks/aliyun/sms-report?key=guessed-key-000000", report, "application/json");
  EXPECT_EQ(wrong->status, 401);
  auto wx = cli.Post("/callbacks/wechat?signature=deadbeef&timestamp=1&nonce=2", "<xml></xml>", "text/xml");
  EXPECT_EQ(wx->status, 401);
  EXPECT_EQ(app_->receipt_counters().forged.load(), 3u);
  // The right key with a receipt for nothing we sent (yet): acknowledged and parked for later, not applied.
  auto unknown =
      cli.Post("/callbacks/aliyun/sms-report?key=" + std::string(sim::kDefaultCallbackKey), report, "application/json");
  EXPECT_EQ(unknown->status, 200);
  EXPECT_EQ(app_->receipt_counters().unknown.load(), 1u);
  EXPECT_EQ(app_->receipt_counters().applied.load(), 0u);
  auto parked = app_->store().parked_receipt_count();
  ASSERT_TRUE(parked.ok());
  EXPECT_EQ(parked.value(), 1);
}

// WeChat's signature covers the timestamp and nonce, not the body. Before, a signature captured from one genuine
// push (a proxy log, say) could carry any receipt for 5 minutes: "delivered" for any message, at any time. Now the
// first body a signature comes with is the only one it vouches for; WeChat's own retry of that push still passes.
TEST_F(ChannelsTest, AWechatSignatureVouchesOnlyForTheBodyItFirstCameWith) {
  start();
  httplib::Client cli("127.0.0.1", app_->http().port());
  const std::string ts = std::to_string(now_unix_ms() / 1000);
  const std::string query =
      "/callbacks/wechat?signature=" + wechat::callback_signature(sim::kDefaultWechatCallbackToken, ts, "4815162342") +
      "&timestamp=" + ts + "&nonce=4815162342";
  const auto job_finish = [&](const std::string& msg_id, const std::string& status) {
    return "<xml><ToUserName><![CDATA[gh_court]]></ToUserName><FromUserName><![CDATA[oParty]]></FromUserName>"
           "<CreateTime>" +
           ts +
           "</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[TEMPLATESENDJOBFINISH]]></Event>"
           "<MsgID>" +
           msg_id + "</MsgID><Status><![CDATA[" + status + "]]></Status></xml>";
  };
  const std::string genuine = job_finish("3000000001", "failed:user block");
  auto first = cli.Post(query, genuine, "text/xml");
  ASSERT_TRUE(first);
  EXPECT_EQ(first->status, 200) << first->body;
  auto retried = cli.Post(query, genuine, "text/xml");  // WeChat pushes again when it misses our answer
  ASSERT_TRUE(retried);
  EXPECT_EQ(retried->status, 200) << retried->body;
  auto forged = cli.Post(query, job_finish("3000000002", "success"), "text/xml");
  ASSERT_TRUE(forged);
  EXPECT_EQ(forged->status, 401);
  EXPECT_NE(forged->body.find("another body"), std::string::npos) << forged->body;
  EXPECT_EQ(app_->receipt_counters().forged.load(), 1u);
  EXPECT_EQ(app_->receipt_counters().received.load(), 2u) << "the forged push was applied";
  EXPECT_EQ(app_->store().parked_receipt_count().value(), 1) << "only the genuine receipt waits for its message";

  // A signed job-finish push that names no message id is acknowledged (pushing it again would not mend it), but
  // counted and not applied or parked.
  const std::string ts2 = std::to_string(now_unix_ms() / 1000);
  auto odd = cli.Post(
      "/callbacks/wechat?signature=" + wechat::callback_signature(sim::kDefaultWechatCallbackToken, ts2, "777") +
          "&timestamp=" + ts2 + "&nonce=777",
      job_finish("not-a-number", "success"), "text/xml");
  ASSERT_TRUE(odd);
  EXPECT_EQ(odd->status, 200);
  EXPECT_EQ(app_->receipt_counters().refused.load(), 1u);
  EXPECT_EQ(app_->store().parked_receipt_count().value(), 1);
}

// A push far larger than any provider sends is refused before it is parsed, and the elements of a push that do not
// parse are counted (songda_receipts_refused_total), not dropped without a trace.
TEST_F(ChannelsTest, OversizedPushesAreRefusedAndMalformedElementsCounted) {
  start();
  httplib::Client cli("127.0.0.1", app_->http().port());
  const std::string key = "?key=" + std::string(sim::kDefaultCallbackKey);
  std::string huge = "[";
  for (int i = 0; i < 600'000; ++i) huge += "0,";  // 1.2 MB
  huge += "0]";
  auto big = cli.Post("/callbacks/aliyun/sms-report" + key, huge, "application/json");
  ASSERT_TRUE(big);
  EXPECT_EQ(big->status, 413);
  EXPECT_NE(big->body.find("too_large"), std::string::npos) << big->body;

  const std::string tencent =
      R"([{"user_receive_time":"2026-11-28 09:00:01","nationcode":"86","mobile":"13800000001","report_status":"SUCCESS","errmsg":"DELIVRD","description":"ok","sid":"s-1"},)"
      R"({"user_receive_time":"yesterday","nationcode":"86","mobile":"13800000002","report_status":"SUCCESS","errmsg":"DELIVRD","description":"ok","sid":"s-2"}])";
  auto mixed = cli.Post("/callbacks/tencent/sms-status" + key, tencent, "application/json");
  ASSERT_TRUE(mixed);
  EXPECT_EQ(mixed->status, 200) << mixed->body;
  EXPECT_EQ(app_->receipt_counters().refused.load(), 1u);
  EXPECT_EQ(app_->receipt_counters().received.load(), 1u);
}

// Mail scanners, link checkers and chat previews fetch links as plain GETs. Before, such a GET of a party link
// recorded READ, which starts the service date of an obtained address (presumed served on READ). Now a GET records
// nothing and shows a landing page; READ is recorded when the person presses 「查看通知」 (POST …/open), and the
// document is served, with its RETRIEVED record, only after that and never to a prefetch.
TEST_F(ChannelsTest, APartyLinkRecordsReadOnlyWhenThePersonOpensIt) {
  const std::string pdf = "%PDF-1.7 传票 (2026)豫14民初401号";
  const auto dir = std::filesystem::temp_directory_path() / ("songda-docs-" + std::to_string(now_unix_ms()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / sha256_hex(pdf), std::ios::binary) << pdf;
  AppOptions opts;
  opts.link_secret = "party-link-secret-for-this-test";
  opts.document_dir = dir.string();
  start(opts);
  auto event = summons("link-1", 401, false, false, false);
  event["document"]["sha256"] = sha256_hex(pdf);
  publish({event});
  const std::string id = delivery_id("link-1", "P1", "sms");
  ASSERT_EQ(wait_for(id, {"DELIVERED"}).status, "DELIVERED");
  const auto evidence = [&] { return app_->store().get_delivery(id).value()->evidence_indexes.size(); };
  const std::size_t delivered_evidence = evidence();

  httplib::Client cli("127.0.0.1", app_->http().port());
  const std::string link = "/r/" + sign_link_token(opts.link_secret, id, now_unix_ms() / 1000 + 3600);
  auto landing = cli.Get(link);  // what a link scanner gets
  ASSERT_TRUE(landing);
  EXPECT_EQ(landing->status, 200);
  EXPECT_NE(landing->body.find("id=\"open\""), std::string::npos) << landing->body;
  EXPECT_EQ(landing->body.find("/document"), std::string::npos) << "no document link before the notice is opened";
  EXPECT_EQ(landing->body.find("第三法庭"), std::string::npos) << "no notice text before it is opened";
  auto early = cli.Get(link + "/document");
  ASSERT_TRUE(early);
  EXPECT_EQ(early->status, 303);
  EXPECT_EQ(early->get_header_value("Location"), link);
  EXPECT_EQ(wait_for(id, {"DELIVERED"}).status, "DELIVERED");
  EXPECT_EQ(evidence(), delivered_evidence) << "a GET made evidence";

  auto opened = cli.Post(link + "/open", "", "application/x-www-form-urlencoded");  // the person's press
  ASSERT_TRUE(opened);
  EXPECT_EQ(opened->status, 200);
  EXPECT_NE(opened->body.find("id=\"ack\""), std::string::npos);
  EXPECT_NE(opened->body.find(link + "/document"), std::string::npos);
  EXPECT_NE(opened->body.find("第三法庭"), std::string::npos) << "the notice text is shown once opened";
  auto read = app_->store().get_delivery(id).value();
  EXPECT_EQ(read->status, "READ");
  EXPECT_EQ(read->evidence_indexes.size(), delivered_evidence + 1);

  auto prefetched = cli.Get(link + "/document", {{"Sec-Purpose", "prefetch"}});
  ASSERT_TRUE(prefetched);
  EXPECT_EQ(prefetched->status, 204);
  EXPECT_TRUE(prefetched->body.empty()) << "a prefetch got the document without its RETRIEVED record";
  EXPECT_EQ(evidence(), delivered_evidence + 1);
  auto doc = cli.Get(link + "/document");
  ASSERT_TRUE(doc);
  EXPECT_EQ(doc->status, 200);
  EXPECT_EQ(doc->body, pdf);
  EXPECT_EQ(doc->get_header_value("X-Document-SHA256"), sha256_hex(pdf));
  EXPECT_EQ(doc->get_header_value("Content-Type"), "application/pdf");
  EXPECT_EQ(doc->get_header_value("Content-Security-Policy").find("sandbox"), std::string::npos)
      << "Safari and WeChat on iOS show a sandboxed PDF as a blank page";
  EXPECT_EQ(evidence(), delivered_evidence + 2);
  auto again = cli.Get(link);  // once opened, the link shows the notice; nothing more is recorded
  ASSERT_TRUE(again);
  EXPECT_NE(again->body.find("id=\"ack\""), std::string::npos);
  EXPECT_EQ(evidence(), delivered_evidence + 2);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace songda
