// Receipts from the provider simulator to a stand-in for Songda: the exact
// documented shapes (Aliyun SmsReport array, Tencent status array, WeChat
// TEMPLATESENDJOBFINISH XML with a verifiable signature), several reports per
// push, failure outcomes, retries when Songda answers 500, duplicate pushes;
// plus the simulator's small helpers.
#include <gtest/gtest.h>

#include <set>

#include "channels/sms/sms_common.h"
#include "simulator/receipts.h"
#include "tests/simulator/sim_test_support.h"

namespace songda::sim {
namespace {

using nlohmann::json;
using testing::FakeSongda;
using testing::SimClient;
using testing::wait_until;

class ReceiptTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_ = testing::test_options();
    options_.callback_base = songda_.base_url();
    sim_ = std::make_unique<Simulator>(options_);
    sim_->start();
    client_ = std::make_unique<SimClient>(*sim_, options_);
  }
  void TearDown() override { sim_->stop(); }

  void configure(const json& body) {
    const auto r = sim_->configure(body);
    ASSERT_TRUE(r.ok()) << r.error().message;
  }
  json stats(const char* provider) { return sim_->stats()[provider]; }

  FakeSongda songda_;
  SimulatorOptions options_;
  std::unique_ptr<Simulator> sim_;
  std::unique_ptr<SimClient> client_;
};

TEST_F(ReceiptTest, AliyunSmsReportHasTheDocumentedShapeAndBatchesDueReports) {
  const auto res = client_->aliyun_send(SimClient::aliyun_request({"15300000001", "15300000002"}, "dlv-a1"));
  ASSERT_TRUE(res);
  const std::string biz_id = sms::aliyun::parse_send_sms_response(res->body)->biz_id;
  ASSERT_TRUE(wait_until([&] { return songda_.count() >= 1; }));
  ASSERT_TRUE(wait_until([&] { return stats("aliyun")["receipts_acked"] == 2; }));

  const auto pushes = songda_.pushes();
  ASSERT_EQ(pushes.size(), 1u);  // both numbers were due together: one push
  const auto& push = pushes[0];
  EXPECT_EQ(push.path, "/callbacks/aliyun/sms-report");
  ASSERT_EQ(push.params.count("key"), 1u);
  EXPECT_EQ(push.params.find("key")->second, options_.callback_key);
  EXPECT_EQ(push.content_type, "application/json");

  const json body = json::parse(push.body);
  ASSERT_TRUE(body.is_array());
  ASSERT_EQ(body.size(), 2u);
  const std::set<std::string> documented = {"phone_number", "send_time", "report_time", "success", "err_code",
                                            "err_msg",      "sms_size",  "biz_id",      "out_id"};
  for (const auto& report : body) {
    std::set<std::string> keys;
    for (const auto& [k, v] : report.items()) keys.insert(k);
    EXPECT_EQ(keys, documented);
    EXPECT_TRUE(report["success"].is_boolean());
    EXPECT_TRUE(report["sms_size"].is_string());
  }

  const auto batch = sms::aliyun::parse_sms_report(push.body);
  ASSERT_TRUE(batch.ok());
  EXPECT_TRUE(batch->rejected.empty());
  ASSERT_EQ(batch->reports.size(), 2u);
  const auto& r = batch->reports[0];
  EXPECT_EQ(r.phone_number, "15300000001");  // full number, as Aliyun sends it
  EXPECT_TRUE(r.success);
  EXPECT_EQ(r.err_code, "DELIVERED");
  EXPECT_EQ(r.err_msg, "用户接收成功");
  EXPECT_EQ(r.sms_size, 1);
  EXPECT_EQ(r.biz_id, biz_id);
  EXPECT_EQ(r.out_id, "dlv-a1");
  // Beijing wall-clock time, within a few seconds of now.
  EXPECT_LT(std::llabs(r.report_time_ms - now_unix_ms()), 5000);
  EXPECT_LE(r.send_time_ms, r.report_time_ms);

  const json s = stats("aliyun");
  EXPECT_EQ(s["receipt_pushes"], 1);
  EXPECT_EQ(s["receipts_posted"], 2);
  EXPECT_EQ(s["receipts_pending"], 0);
}

TEST_F(ReceiptTest, AliyunFailureOutcome) {
  configure({{"provider", "aliyun"}, {"receipt", {{"outcome", "failure"}, {"err_code", "MK:0001"}}}});
  ASSERT_EQ(client_->aliyun_send(SimClient::aliyun_request({"15300000001"}, "dlv-a2"))->status, 200);
  ASSERT_TRUE(wait_until([&] { return songda_.count() >= 1; }));
  const auto batch = sms::aliyun::parse_sms_report(songda_.pushes()[0].body);
  ASSERT_TRUE(batch.ok());
  ASSERT_EQ(batch->reports.size(), 1u);
  EXPECT_FALSE(batch->reports[0].success);
  EXPECT_EQ(batch->reports[0].err_code, "MK:0001");
}

TEST_F(ReceiptTest, TencentStatusCallbackHasTheDocumentedShape) {
  configure({{"provider", "tencent"}, {"receipt", {{"outcome", "failure"}}}});
  const auto res = client_->tencent_send(SimClient::tencent_request({"+8613800000001"}, "dlv-t1"));
  const auto answer = sms::tencent::parse_send_sms_response(res->body);
  ASSERT_TRUE(answer.ok());
  ASSERT_TRUE(wait_until([&] { return songda_.count() >= 1; }));
  const auto push = songda_.pushes()[0];
  EXPECT_EQ(push.path, "/callbacks/tencent/sms-status");
  EXPECT_EQ(push.params.find("key")->second, options_.callback_key);

  const json body = json::parse(push.body);
  ASSERT_TRUE(body.is_array());
  std::set<std::string> keys;
  for (const auto& [k, v] : body[0].items()) keys.insert(k);
  EXPECT_EQ(keys, (std::set<std::string>{"user_receive_time", "nationcode", "mobile", "report_status", "errmsg",
                                         "description", "sid"}));
  const auto batch = sms::tencent::parse_status_callback(push.body);
  ASSERT_TRUE(batch.ok());
  ASSERT_EQ(batch->reports.size(), 1u);
  const auto& r = batch->reports[0];
  EXPECT_EQ(r.nationcode, "86");
  EXPECT_EQ(r.mobile, "13800000001");
  EXPECT_EQ(r.report_status, "FAIL");
  EXPECT_FALSE(r.success);
  EXPECT_EQ(r.errmsg, "UNDELIV");
  EXPECT_EQ(r.sid, answer->statuses[0].serial_no);
}

TEST_F(ReceiptTest, WechatJobFinishIsSignedWithTheCallbackToken) {
  configure({{"provider", "wechat"}, {"receipt", {{"outcome", "failed:user block"}}}});
  const std::string token = client_->wechat_token();
  const auto answer = wechat::parse_send_response(
      client_->wechat_send(token, SimClient::template_message("oUser0001", "dlv-w1"))->body);
  ASSERT_TRUE(answer.ok());
  ASSERT_TRUE(wait_until([&] { return songda_.count() >= 1; }));
  const auto push = songda_.pushes()[0];
  EXPECT_EQ(push.path, "/callbacks/wechat");
  EXPECT_EQ(push.content_type, "text/xml");
  const auto param = [&](const char* name) {
    const auto it = push.params.find(name);
    return it == push.params.end() ? std::string() : it->second;
  };
  EXPECT_TRUE(wechat::verify_callback_signature(options_.wechat_callback_token, param("timestamp"), param("nonce"),
                                                param("signature")));
  EXPECT_FALSE(
      wechat::verify_callback_signature("another-token", param("timestamp"), param("nonce"), param("signature")));
  EXPECT_TRUE(wechat::callback_timestamp_fresh(param("timestamp"), now_unix_ms() / 1000));

  const auto finish = wechat::parse_template_send_job_finish(push.body);
  ASSERT_TRUE(finish.ok()) << push.body;
  EXPECT_EQ(finish->to_user_name, options_.wechat_account);
  EXPECT_EQ(finish->from_user_name, "oUser0001");
  EXPECT_EQ(finish->msg_type, "event");
  EXPECT_EQ(finish->event, "TEMPLATESENDJOBFINISH");
  EXPECT_EQ(finish->msg_id, answer->msgid);
  EXPECT_EQ(finish->status, "failed:user block");
  EXPECT_FALSE(finish->delivered);
  // The documented element order.
  EXPECT_EQ(push.body.rfind("<xml><ToUserName><![CDATA[", 0), 0u);
  EXPECT_NE(push.body.find("</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[TEMPLATESENDJOBFINISH]]>"
                           "</Event><MsgID>" +
                           answer->msgid + "</MsgID><Status><![CDATA[failed:user block]]></Status></xml>"),
            std::string::npos);
}

TEST_F(ReceiptTest, WechatDeduplicatedSendGetsNoSecondReceipt) {
  const std::string token = client_->wechat_token();
  client_->wechat_send(token, SimClient::template_message("oUser0001", "dlv-w2"));
  client_->wechat_send(token, SimClient::template_message("oUser0001", "dlv-w2"));
  ASSERT_TRUE(wait_until([&] { return songda_.count() >= 1; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(songda_.count(), 1u);
  const auto finish = wechat::parse_template_send_job_finish(songda_.pushes()[0].body);
  EXPECT_TRUE(finish->delivered);
}

TEST_F(ReceiptTest, RetriedWhenSongdaAnswers500) {
  songda_.answer({500, 500});
  ASSERT_EQ(client_->aliyun_send(SimClient::aliyun_request({"15300000001"}, "dlv-r1"))->status, 200);
  ASSERT_TRUE(wait_until([&] { return stats("aliyun")["receipts_acked"] == 1; }));
  const auto pushes = songda_.pushes();
  ASSERT_EQ(pushes.size(), 3u);
  // The same report each time (report_time may move on).
  for (const auto& p : pushes) EXPECT_EQ(sms::aliyun::parse_sms_report(p.body)->reports[0].out_id, "dlv-r1");
  const json s = stats("aliyun");
  EXPECT_EQ(s["receipt_pushes"], 3);
  EXPECT_EQ(s["receipts_posted"], 3);
  EXPECT_EQ(s["receipts_acked"], 1);
  EXPECT_EQ(s["receipts_retried"], 2);
  EXPECT_EQ(s["receipts_dropped"], 0);
}

TEST_F(ReceiptTest, DroppedAfterTheLastRetry) {
  songda_.answer({500, 500, 500, 500, 500});
  ASSERT_EQ(client_->tencent_send(SimClient::tencent_request({"+8613800000001"}, "dlv-r2"))->status, 200);
  ASSERT_TRUE(wait_until([&] { return stats("tencent")["receipts_dropped"] == 1; }));
  EXPECT_EQ(songda_.count(), 4u);  // the first push and 3 retries
  const json s = stats("tencent");
  EXPECT_EQ(s["receipts_acked"], 0);
  EXPECT_EQ(s["receipts_retried"], 3);
  EXPECT_EQ(s["receipts_pending"], 0);
}

TEST_F(ReceiptTest, NotRetriedAfter2xx) {
  ASSERT_EQ(client_->aliyun_send(SimClient::aliyun_request({"15300000001"}, "dlv-r3"))->status, 200);
  ASSERT_TRUE(wait_until([&] { return stats("aliyun")["receipts_acked"] == 1; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(songda_.count(), 1u);
  EXPECT_EQ(stats("aliyun")["receipts_retried"], 0);
}

TEST_F(ReceiptTest, DuplicatePushSendsEachReceiptTwice) {
  configure({{"provider", "aliyun"}, {"receipt", {{"duplicate", true}}}});
  ASSERT_EQ(client_->aliyun_send(SimClient::aliyun_request({"15300000001"}, "dlv-dd"))->status, 200);
  ASSERT_TRUE(wait_until([&] { return stats("aliyun")["receipts_acked"] == 2; }));
  const auto pushes = songda_.pushes();
  ASSERT_EQ(pushes.size(), 2u);
  const auto a = sms::aliyun::parse_sms_report(pushes[0].body)->reports.at(0);
  const auto b = sms::aliyun::parse_sms_report(pushes[1].body)->reports.at(0);
  EXPECT_EQ(a.biz_id, b.biz_id);
  EXPECT_EQ(a.out_id, b.out_id);
  EXPECT_EQ(a.phone_number, b.phone_number);
  EXPECT_EQ(stats("aliyun")["receipts_acked"], 2);
}

TEST_F(ReceiptTest, NoReceiptWhenTheOutcomeIsNone) {
  configure({{"provider", "aliyun"}, {"receipt", {{"outcome", "none"}}}});
  ASSERT_EQ(client_->aliyun_send(SimClient::aliyun_request({"15300000001"}, "dlv-none"))->status, 200);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(songda_.count(), 0u);
}

TEST_F(ReceiptTest, DelayIsHonoured) {
  configure({{"provider", "aliyun"}, {"receipt", {{"delay_ms", 400}}}});
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(client_->aliyun_send(SimClient::aliyun_request({"15300000001"}, "dlv-delay"))->status, 200);
  ASSERT_TRUE(wait_until([&] { return songda_.count() >= 1; }));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(380));
}

TEST_F(ReceiptTest, CallbackBaseCanBeSetAtRunTimeAndWithAPrefix) {
  sim_->set_callback_base("");
  ASSERT_EQ(client_->aliyun_send(SimClient::aliyun_request({"15300000001"}, "dlv-cb1"))->status, 200);
  EXPECT_EQ(stats("aliyun")["receipts_skipped"], 1);
  configure({{"callback_base", songda_.base_url() + "/songda/"}});
  ASSERT_EQ(client_->aliyun_send(SimClient::aliyun_request({"15300000001"}, "dlv-cb2"))->status, 200);
  ASSERT_TRUE(wait_until([&] { return songda_.count() >= 1; }));
  EXPECT_EQ(songda_.pushes()[0].path, "/songda/callbacks/aliyun/sms-report");
}

// ---- Body builders and helpers ----------------------------------------------------------

TEST(ReceiptBodies, AliyunMatchesTheDocumentedExample) {
  ReceiptItem item;
  item.provider = Provider::kAliyun;
  item.to = "1381111****";
  item.id = "12345********";
  item.out_id = "67890**";
  item.send_time_ms = 1483200000000;  // 2017-01-01 00:00:00 Beijing time
  item.code = "DELIVERED";
  item.description = "用户接收成功";
  EXPECT_EQ(
      aliyun_report_body({item}, 1483200000000),
      R"([{"phone_number":"1381111****","send_time":"2017-01-01 00:00:00","report_time":"2017-01-01 00:00:00","success":true,"err_code":"DELIVERED","err_msg":"用户接收成功","sms_size":"1","biz_id":"12345********","out_id":"67890**"}])");
}

TEST(ReceiptBodies, TencentMatchesTheDocumentedExample) {
  ReceiptItem item;
  item.provider = Provider::kTencent;
  item.to = "+8613800000000";
  item.id = "xxxxxx";
  item.code = "DELIVRD";
  item.description = "用户短信送达成功";
  // 2015-10-17 08:03:04 Beijing time = 00:03:04 UTC.
  EXPECT_EQ(
      tencent_status_body({item}, 1445040184000),
      R"([{"user_receive_time":"2015-10-17 08:03:04","nationcode":"86","mobile":"13800000000","report_status":"SUCCESS","errmsg":"DELIVRD","description":"用户短信送达成功","sid":"xxxxxx"}])");
}

TEST(ReceiptBodies, WechatMatchesTheDocumentedExample) {
  ReceiptItem item;
  item.provider = Provider::kWeChat;
  item.to = "oia2TjuEGTNoeX76QEjQNrcURxG8";
  item.id = "200163836";
  item.code = "success";
  EXPECT_EQ(wechat_job_finish_xml(item, "gh_7f083739789a", 1395658920),
            "<xml><ToUserName><![CDATA[gh_7f083739789a]]></ToUserName><FromUserName><![CDATA["
            "oia2TjuEGTNoeX76QEjQNrcURxG8]]></FromUserName><CreateTime>1395658920</CreateTime><MsgType><![CDATA["
            "event]]></MsgType><Event><![CDATA[TEMPLATESENDJOBFINISH]]></Event><MsgID>200163836</MsgID><Status><!"
            "[CDATA[success]]></Status></xml>");
}

TEST(SimUtil, FormDecoding) {
  EXPECT_EQ(form_decode("a%20b+c%2Bd%E9%98%BF"), "a b c+d阿");
  EXPECT_EQ(form_decode("100%"), "100%");
  EXPECT_EQ(form_decode("%zz"), "%zz");
  const auto pairs = parse_form("A=1&&B=%7B%22x%22%3A1%7D&C");
  ASSERT_EQ(pairs.size(), 3u);
  EXPECT_EQ(pairs[1], (std::pair<std::string, std::string>{"B", R"({"x":1})"}));
  EXPECT_EQ(pairs[2], (std::pair<std::string, std::string>{"C", ""}));
}

TEST(SimUtil, BeijingTimeRoundTripsThroughTheProtocolParser) {
  const std::int64_t ms = 1700000000000;
  EXPECT_EQ(beijing_time(ms), "2023-11-15 06:13:20");
  EXPECT_EQ(sms::beijing_time_to_unix_ms(beijing_time(ms)), ms);
}

TEST(SimUtil, RpcTimestampShape) {
  EXPECT_TRUE(is_rpc_timestamp("2017-07-12T02:42:19Z"));
  EXPECT_FALSE(is_rpc_timestamp("2017-07-12T02:42:19"));
  EXPECT_FALSE(is_rpc_timestamp("2017-13-12T02:42:19Z"));
  EXPECT_FALSE(is_rpc_timestamp("2017-07-12 02:42:19Z"));
}

TEST(SimUtil, E164Split) {
  EXPECT_EQ(split_e164("+8613800000000"), (std::pair<std::string, std::string>{"86", "13800000000"}));
  EXPECT_EQ(split_e164("+85261234567"), (std::pair<std::string, std::string>{"852", "61234567"}));
  EXPECT_EQ(split_e164("+14155550100"), (std::pair<std::string, std::string>{"1", "4155550100"}));
  EXPECT_EQ(split_e164("+447700900123"), (std::pair<std::string, std::string>{"44", "7700900123"}));
  EXPECT_FALSE(split_e164("13800000000"));
  EXPECT_FALSE(split_e164("+86abc"));
}

TEST(SimUtil, BaseUrlSplit) {
  const auto a = split_base_url("http://127.0.0.1:8080");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->scheme_host_port, "http://127.0.0.1:8080");
  EXPECT_EQ(a->path_prefix, "");
  const auto b = split_base_url("https://songda.example/gw/");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->scheme_host_port, "https://songda.example");
  EXPECT_EQ(b->path_prefix, "/gw");
  EXPECT_FALSE(split_base_url("127.0.0.1:8080"));
  EXPECT_FALSE(split_base_url("ftp://x"));
}

TEST(SimUtil, ExpiringMapForgetsAfterTheWindow) {
  ExpiringMap<int> m(std::chrono::milliseconds(100));
  const auto t0 = std::chrono::steady_clock::now();
  m.put("a", 1, t0);
  ASSERT_NE(m.find("a", t0 + std::chrono::milliseconds(50)), nullptr);
  EXPECT_EQ(*m.find("a", t0 + std::chrono::milliseconds(50)), 1);
  m.put("a", 2, t0 + std::chrono::milliseconds(80));  // restarts its window
  EXPECT_NE(m.find("a", t0 + std::chrono::milliseconds(150)), nullptr);
  EXPECT_EQ(m.find("a", t0 + std::chrono::milliseconds(200)), nullptr);
  EXPECT_EQ(m.size(), 0u);
}

TEST(SimUtil, Uuid4Shape) {
  const std::string u = uuid4();
  ASSERT_EQ(u.size(), 36u);
  EXPECT_EQ(u[14], '4');
  EXPECT_NE(uuid4(), u);
}

}  // namespace
}  // namespace songda::sim
