// The provider simulator's endpoints, driven with requests built by the
// protocol libraries: Aliyun and Tencent signatures verified (and wrong ones
// refused and counted), per-key accounting and duplicates, WeChat tokens
// (shared stable token, expiry, rotation), client_msg_id dedup, injected
// faults (codes, 5xx, rates, down, latency, timeouts), the control API and reset.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include "tests/simulator/sim_test_support.h"

namespace songda::sim {
namespace {

using nlohmann::json;
using testing::SimClient;

class SimulatorTest : public ::testing::Test {
 protected:
  void SetUp() override { start(testing::test_options()); }

  void start(SimulatorOptions o) {
    client_.reset();
    sim_.reset();
    options_ = std::move(o);
    sim_ = std::make_unique<Simulator>(options_);
    sim_->start();
    client_ = std::make_unique<SimClient>(*sim_, options_);
  }

  json stats(const char* provider) { return sim_->stats()[provider]; }
  void configure(const json& body) {
    const auto r = sim_->configure(body);
    ASSERT_TRUE(r.ok()) << r.error().message;
  }

  SimulatorOptions options_;
  std::unique_ptr<Simulator> sim_;
  std::unique_ptr<SimClient> client_;
};

// ---- Aliyun -----------------------------------------------------------------------------

TEST_F(SimulatorTest, AliyunSignedSendSmsIsAcceptedAndCountedUnderItsOutId) {
  const auto res = client_->aliyun_send(SimClient::aliyun_request({"15300000001", "+8613800000002"}, "dlv-1"));
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const auto answer = sms::aliyun::parse_send_sms_response(res->body);
  ASSERT_TRUE(answer.ok());
  EXPECT_EQ(answer->code, "OK");
  EXPECT_EQ(answer->message, "OK");
  EXPECT_FALSE(answer->biz_id.empty());
  EXPECT_EQ(answer->request_id.size(), 36u);
  EXPECT_EQ(sms::aliyun::classify(answer->code).kind, SendOutcome::Kind::kAccepted);

  const json s = stats("aliyun");
  EXPECT_EQ(s["requests"], 1);
  EXPECT_EQ(s["accepted"], 2);
  EXPECT_EQ(s["signature_failures"], 0);
  EXPECT_EQ(s["per_key"]["dlv-1"], 2);
  EXPECT_TRUE(s["duplicates"].empty());

  const json messages = sim_->messages(Provider::kAliyun);
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_EQ(messages[0]["to"], "15300000001");
  EXPECT_EQ(messages[1]["to"], "+8613800000002");
  EXPECT_EQ(messages[0]["key"], "dlv-1");
  EXPECT_EQ(messages[0]["template"], "SMS_71390007");
  EXPECT_EQ(messages[0]["sign_name"], "商丘中院");
  EXPECT_EQ(messages[0]["params"]["name"], "张三");
  EXPECT_EQ(messages[0]["id"], answer->biz_id);
}

TEST_F(SimulatorTest, AliyunSignedGetIsAcceptedToo) {
  const auto res =
      client_->aliyun_send(SimClient::aliyun_request({"15300000001"}, "dlv-get"), client_->aliyun_credentials(), "GET");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(sms::aliyun::parse_send_sms_response(res->body)->code, "OK");
  EXPECT_EQ(stats("aliyun")["per_key"]["dlv-get"], 1);
}

TEST_F(SimulatorTest, AliyunWrongSignatureIsRefusedAndCounted) {
  const auto res = client_->aliyun_send(SimClient::aliyun_request({"15300000001"}, "dlv-bad"),
                                        {options_.aliyun_access_key_id, "not-the-secret"});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
  const auto answer = sms::aliyun::parse_send_sms_response(res->body);
  ASSERT_TRUE(answer.ok());
  EXPECT_EQ(answer->code, "SignatureDoesNotMatch");
  EXPECT_TRUE(sms::aliyun::classify(answer->code).needs_operator);
  // The message shows the server's string to sign, as Aliyun's does.
  EXPECT_NE(json::parse(res->body)["Message"].get<std::string>().find("server string to sign is:POST&%2F&"),
            std::string::npos);

  // A tampered parameter after signing fails the same way.
  const auto built = sms::aliyun::build_send_sms(
      client_->aliyun_credentials(), SimClient::aliyun_request({"15300000001"}, "dlv-x"), SimClient::aliyun_context());
  ASSERT_TRUE(built.ok());
  std::string tampered = built->query;
  tampered.replace(tampered.find("15300000001"), 11, "15300000009");
  const auto res2 = client_->aliyun_raw("POST", tampered);
  ASSERT_TRUE(res2);
  EXPECT_EQ(res2->status, 400);

  // An unknown AccessKeyId.
  const auto res3 = client_->aliyun_send(SimClient::aliyun_request({"15300000001"}, "dlv-y"),
                                         {"someone-else", options_.aliyun_access_key_secret});
  ASSERT_TRUE(res3);
  EXPECT_EQ(res3->status, 404);
  EXPECT_EQ(sms::aliyun::parse_send_sms_response(res3->body)->code, "InvalidAccessKeyId.NotFound");

  const json s = stats("aliyun");
  EXPECT_EQ(s["signature_failures"], 3);
  EXPECT_EQ(s["accepted"], 0);
  EXPECT_EQ(s["requests"], 3);
  EXPECT_TRUE(s["per_key"].empty());
}

TEST_F(SimulatorTest, AliyunReusedNonceIsRefused) {
  const auto built =
      sms::aliyun::build_send_sms(client_->aliyun_credentials(), SimClient::aliyun_request({"15300000001"}, "dlv-n"),
                                  SimClient::aliyun_context("POST", "nonce-fixed-1"));
  ASSERT_TRUE(built.ok());
  const auto first = client_->aliyun_raw("POST", built->query);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->status, 200);
  const auto replay = client_->aliyun_raw("POST", built->query);
  ASSERT_TRUE(replay);
  EXPECT_EQ(replay->status, 400);
  EXPECT_EQ(sms::aliyun::parse_send_sms_response(replay->body)->code, "SignatureNonceUsed");
  const json s = stats("aliyun");
  EXPECT_EQ(s["nonce_reused"], 1);
  EXPECT_EQ(s["accepted"], 1);
}

TEST_F(SimulatorTest, AliyunSameOutIdTwiceIsADuplicate) {
  for (int i = 0; i < 2; ++i) {
    const auto res = client_->aliyun_send(SimClient::aliyun_request({"15300000001", "15300000002"}, "dlv-dup"));
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200);
  }
  ASSERT_EQ(client_->aliyun_send(SimClient::aliyun_request({"15300000003"}, "dlv-other"))->status, 200);
  const json s = stats("aliyun");
  EXPECT_EQ(s["per_key"]["dlv-dup"], 4);
  EXPECT_EQ(s["per_key"]["dlv-other"], 1);
  EXPECT_EQ(s["duplicate_count"], 2);
  EXPECT_EQ(s["duplicates"]["dlv-dup|15300000001"], 2);
  EXPECT_EQ(s["duplicates"]["dlv-dup|15300000002"], 2);
}

TEST_F(SimulatorTest, AliyunTakesAThousandNumbersInOnePostAndRefusesMore) {
  std::vector<std::string> phones;
  for (int i = 0; i < 1000; ++i) phones.push_back(std::to_string(15300000000LL + i));
  const auto res = client_->aliyun_send(SimClient::aliyun_request(phones, "dlv-1000"));
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(stats("aliyun")["per_key"]["dlv-1000"], 1000);

  // 1001 numbers: the protocol library refuses to build it, so sign the parameters by hand.
  auto params = sms::aliyun::send_sms_params(
      client_->aliyun_credentials(), SimClient::aliyun_request(phones, "dlv-1001"), SimClient::aliyun_context());
  ASSERT_TRUE(params.ok());
  (*params)["PhoneNumbers"] += ",15399999999";
  const auto over =
      client_->aliyun_raw("POST", sms::aliyun::signed_rpc_query("POST", *params, options_.aliyun_access_key_secret));
  ASSERT_TRUE(over);
  EXPECT_EQ(over->status, 200);
  EXPECT_EQ(sms::aliyun::parse_send_sms_response(over->body)->code, "isv.MOBILE_COUNT_OVER_LIMIT");
  EXPECT_EQ(stats("aliyun")["rejected"], 1);
}

TEST_F(SimulatorTest, AliyunSendBatchSmsKeepsPerNumberSignAndParams) {
  sms::aliyun::SendBatchSmsRequest r;
  r.template_code = "SMS_1";
  r.out_id = "dlv-batch";
  r.items = {{"15300000001", "签名甲", {{"name", "甲"}}}, {"15300000002", "签名乙", {{"name", "乙"}}}};
  const auto built = sms::aliyun::build_send_batch_sms(client_->aliyun_credentials(), r, SimClient::aliyun_context());
  ASSERT_TRUE(built.ok());
  const auto res = client_->aliyun_raw("POST", built->query);
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(sms::aliyun::parse_send_sms_response(res->body)->code, "OK");
  const json messages = sim_->messages(Provider::kAliyun, "dlv-batch");
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_EQ(messages[1]["sign_name"], "签名乙");
  EXPECT_EQ(messages[1]["params"]["name"], "乙");
  EXPECT_EQ(messages[1]["action"], "SendBatchSms");
}

TEST_F(SimulatorTest, AliyunRefusesAnIllegalNumber) {
  const auto res = client_->aliyun_send(SimClient::aliyun_request({"15300000001", "12ab"}, "dlv-ill"));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(sms::aliyun::parse_send_sms_response(res->body)->code, "isv.MOBILE_NUMBER_ILLEGAL");
  EXPECT_EQ(stats("aliyun")["accepted"], 0);
}

// ---- Tencent ----------------------------------------------------------------------------

TEST_F(SimulatorTest, TencentSignedSendSmsAnswersAStatusPerNumber) {
  const auto res =
      client_->tencent_send(SimClient::tencent_request({"+8613800000001", "+8613800000002", "+85261234567"}, "dlv-t1"));
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  const auto answer = sms::tencent::parse_send_sms_response(res->body);
  ASSERT_TRUE(answer.ok()) << res->body;
  ASSERT_FALSE(answer->error.has_value()) << res->body;
  ASSERT_EQ(answer->statuses.size(), 3u);
  std::set<std::string> serials;
  for (const auto& st : answer->statuses) {
    EXPECT_EQ(st.code, "Ok");
    EXPECT_EQ(st.session_context, "dlv-t1");
    EXPECT_EQ(st.fee, 1);
    serials.insert(st.serial_no);
  }
  EXPECT_EQ(serials.size(), 3u);
  EXPECT_EQ(answer->statuses[0].iso_code, "CN");
  EXPECT_EQ(answer->statuses[2].iso_code, "HK");
  EXPECT_EQ(answer->statuses[2].phone_number, "+85261234567");

  const json s = stats("tencent");
  EXPECT_EQ(s["accepted"], 3);
  EXPECT_EQ(s["per_key"]["dlv-t1"], 3);
  const json messages = sim_->messages(Provider::kTencent);
  ASSERT_EQ(messages.size(), 3u);
  EXPECT_EQ(messages[0]["params"], json::array({"(2026)豫14民初123号", "2026-12-10 09:30"}));
  EXPECT_EQ(messages[0]["template"], "449739");
  EXPECT_EQ(messages[0]["id"], answer->statuses[0].serial_no);
}

TEST_F(SimulatorTest, TencentWrongSignatureIsRefusedAndCounted) {
  const auto request = SimClient::tencent_request({"+8613800000001"}, "dlv-t2");
  const auto bad_key = client_->tencent_raw(client_->tencent_build(request, {options_.tencent_secret_id, "wrong"}));
  ASSERT_TRUE(bad_key);
  auto answer = sms::tencent::parse_send_sms_response(bad_key->body);
  ASSERT_TRUE(answer.ok());
  ASSERT_TRUE(answer->error.has_value());
  EXPECT_EQ(answer->error->code, "AuthFailure.SignatureFailure");

  // The body changed after signing.
  auto built = client_->tencent_build(request, client_->tencent_credentials());
  built.body.replace(built.body.find("13800000001"), 11, "13800000009");
  const auto tampered = client_->tencent_raw(built);
  ASSERT_TRUE(tampered);
  EXPECT_EQ(sms::tencent::parse_send_sms_response(tampered->body)->error->code, "AuthFailure.SignatureFailure");

  // An unknown SecretId.
  const auto unknown =
      client_->tencent_raw(client_->tencent_build(request, {"AKIDother", options_.tencent_secret_key}));
  ASSERT_TRUE(unknown);
  EXPECT_EQ(sms::tencent::parse_send_sms_response(unknown->body)->error->code, "AuthFailure.SecretIdNotFound");

  const json s = stats("tencent");
  EXPECT_EQ(s["signature_failures"], 3);
  EXPECT_EQ(s["accepted"], 0);
}

TEST_F(SimulatorTest, TencentSameSessionContextTwiceIsADuplicate) {
  for (int i = 0; i < 2; ++i) {
    ASSERT_EQ(client_->tencent_send(SimClient::tencent_request({"+8613800000001"}, "dlv-t3"))->status, 200);
  }
  const json s = stats("tencent");
  EXPECT_EQ(s["per_key"]["dlv-t3"], 2);
  EXPECT_EQ(s["duplicates"]["dlv-t3|+8613800000001"], 2);
}

TEST_F(SimulatorTest, TencentPerNumberAndRecipientErrors) {
  configure(
      {{"provider", "tencent"}, {"recipient_errors", {{"+8613800000002", "FailedOperation.PhoneNumberInBlacklist"}}}});
  const auto res =
      client_->tencent_send(SimClient::tencent_request({"+8613800000001", "+8613800000002", "+86abc"}, "dlv-t4"));
  ASSERT_TRUE(res);
  const auto answer = sms::tencent::parse_send_sms_response(res->body);
  ASSERT_TRUE(answer.ok()) << res->body;
  ASSERT_EQ(answer->statuses.size(), 3u);
  EXPECT_EQ(answer->statuses[0].code, "Ok");
  EXPECT_EQ(answer->statuses[1].code, "FailedOperation.PhoneNumberInBlacklist");
  EXPECT_TRUE(answer->statuses[1].serial_no.empty());
  EXPECT_EQ(answer->statuses[2].code, "InvalidParameterValue.IncorrectPhoneNumber");
  EXPECT_EQ(stats("tencent")["accepted"], 1);

  configure({{"provider", "tencent"},
             {"per_number", true},
             {"fixed_error_code", "LimitExceeded.PhoneNumberDailyLimit"},
             {"recipient_errors", json::object()}});
  const auto limited = client_->tencent_send(SimClient::tencent_request({"+8613800000001"}, "dlv-t5"));
  const auto a2 = sms::tencent::parse_send_sms_response(limited->body);
  ASSERT_TRUE(a2.ok());
  ASSERT_EQ(a2->statuses.size(), 1u);
  EXPECT_EQ(a2->statuses[0].code, "LimitExceeded.PhoneNumberDailyLimit");
  EXPECT_EQ(sms::tencent::classify(a2->statuses[0].code).kind, SendOutcome::Kind::kRetryable);
}

// ---- WeChat -----------------------------------------------------------------------------

TEST_F(SimulatorTest, WechatTokenThenTemplateSend) {
  const std::string token = client_->wechat_token();
  ASSERT_GE(token.size(), 100u);
  const auto res = client_->wechat_send(token, SimClient::template_message("oUser0001", "dlv-w1"));
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  const auto answer = wechat::parse_send_response(res->body);
  ASSERT_TRUE(answer.ok());
  EXPECT_EQ(answer->errcode, 0);
  EXPECT_EQ(answer->errmsg, "ok");
  EXPECT_FALSE(answer->msgid.empty());

  const json s = stats("wechat");
  EXPECT_EQ(s["accepted"], 1);
  EXPECT_EQ(s["per_key"]["dlv-w1"], 1);
  const json messages = sim_->messages(Provider::kWeChat);
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0]["to"], "oUser0001");
  EXPECT_EQ(messages[0]["template"], "tpl-summons-001");
  EXPECT_EQ(messages[0]["params"]["thing1"]["value"], "传票");
  EXPECT_EQ(messages[0]["key"], "dlv-w1");
  EXPECT_EQ(messages[0]["kind"], "template");
  EXPECT_EQ(messages[0]["id"], answer->msgid);
}

TEST_F(SimulatorTest, WechatWrongSecretGetsNoToken) {
  const auto res = client_->http().Get("/cgi-bin/token?" + wechat::token_request_query("wx1", "wrong"));
  ASSERT_TRUE(res);
  const auto token = wechat::parse_access_token_response(res->body);
  ASSERT_FALSE(token.ok());
  EXPECT_EQ(token.error().code, "wechat_token_refused");
  EXPECT_NE(token.error().message.find("40125"), std::string::npos);
}

TEST_F(SimulatorTest, WechatInstancesShareOneStableToken) {
  SimClient second(*sim_, options_);  // a second gateway instance
  const std::string a = client_->wechat_token();
  const std::string b = second.wechat_token();
  ASSERT_FALSE(a.empty());
  EXPECT_EQ(a, b);
  const json s = stats("wechat");
  EXPECT_EQ(s["stable_token_fetches"], 2);
  EXPECT_EQ(s["tokens_issued"], 1);
}

TEST_F(SimulatorTest, WechatPlainTokenFetchRotatesAndTheOldOneDiesAfterTheOverlap) {
  configure({{"provider", "wechat"}, {"token_overlap_ms", 0}});
  const std::string first = client_->wechat_token(/*stable=*/false);
  const std::string second = client_->wechat_token(/*stable=*/false);
  ASSERT_NE(first, second);
  EXPECT_EQ(stats("wechat")["tokens_issued"], 2);
  EXPECT_EQ(stats("wechat")["token_fetches"], 2);
  const auto old = wechat::parse_send_response(
      client_->wechat_send(first, SimClient::template_message("oUser0001", "dlv-w2"))->body);
  EXPECT_EQ(old->errcode, 40001);
  EXPECT_TRUE(wechat::classify_errcode(old->errcode).refresh_token);
  EXPECT_EQ(wechat::parse_send_response(
                client_->wechat_send(second, SimClient::template_message("oUser0001", "dlv-w2"))->body)
                ->errcode,
            0);
}

TEST_F(SimulatorTest, WechatExpiredTokenGets40001ThenANewTokenWorks) {
  const std::string token = client_->wechat_token();
  sim_->expire_wechat_tokens();
  const auto refused = wechat::parse_send_response(
      client_->wechat_send(token, SimClient::template_message("oUser0001", "dlv-w3"))->body);
  ASSERT_TRUE(refused.ok());
  EXPECT_EQ(refused->errcode, 40001);
  EXPECT_EQ(stats("wechat")["token_refusals"], 1);
  EXPECT_EQ(stats("wechat")["accepted"], 0);

  const std::string fresh = client_->wechat_token();
  ASSERT_FALSE(fresh.empty());
  EXPECT_NE(fresh, token);
  const auto ok = wechat::parse_send_response(
      client_->wechat_send(fresh, SimClient::template_message("oUser0001", "dlv-w3"))->body);
  EXPECT_EQ(ok->errcode, 0);
  EXPECT_EQ(stats("wechat")["tokens_issued"], 2);

  // 42001 through the HTTP control API; a token never issued is 40001; none is 41001.
  ASSERT_EQ(client_->http().Post("/_sim/wechat/expire-token", R"({"errcode":42001})", "application/json")->status, 200);
  EXPECT_EQ(
      wechat::parse_send_response(client_->wechat_send(fresh, SimClient::template_message("oUser0001", "x"))->body)
          ->errcode,
      42001);
  EXPECT_EQ(
      wechat::parse_send_response(client_->wechat_send("made-up", SimClient::template_message("oUser0001", "x"))->body)
          ->errcode,
      40001);
  EXPECT_EQ(wechat::parse_send_response(client_->wechat_send("", SimClient::template_message("oUser0001", "x"))->body)
                ->errcode,
            41001);
}

TEST_F(SimulatorTest, WechatTokenExpiresByTime) {
  configure({{"provider", "wechat"}, {"token_expires_in_s", 1}});
  const std::string token = client_->wechat_token();
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  EXPECT_EQ(
      wechat::parse_send_response(client_->wechat_send(token, SimClient::template_message("oUser0001", "x"))->body)
          ->errcode,
      42001);
}

TEST_F(SimulatorTest, WechatClientMsgIdDeduplicates) {
  const std::string token = client_->wechat_token();
  const auto first = wechat::parse_send_response(
      client_->wechat_send(token, SimClient::template_message("oUser0001", "dlv-w4"))->body);
  const auto again = wechat::parse_send_response(
      client_->wechat_send(token, SimClient::template_message("oUser0001", "dlv-w4"))->body);
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->errcode, 0);
  EXPECT_EQ(first->msgid, again->msgid);
  // Another user with the same client_msg_id is another message.
  const auto other = wechat::parse_send_response(
      client_->wechat_send(token, SimClient::template_message("oUser0002", "dlv-w4"))->body);
  EXPECT_NE(other->msgid, first->msgid);

  const json s = stats("wechat");
  EXPECT_EQ(s["accepted"], 2);
  EXPECT_EQ(s["deduplicated"], 1);
  EXPECT_EQ(s["per_key"]["dlv-w4"], 2);
  EXPECT_TRUE(s["duplicates"].empty());
  EXPECT_EQ(sim_->messages(Provider::kWeChat).size(), 2u);
}

TEST_F(SimulatorTest, WechatRefusesAFieldOverTwentyCharacters) {
  const std::string token = client_->wechat_token();
  const std::string body =
      R"({"touser":"oUser0001","template_id":"t","data":{"thing1":{"value":"一二三四五六七八九十一二三四五六七八九十一"}}})";
  const auto res =
      client_->http().Post("/cgi-bin/message/template/send?access_token=" + token, body, "application/json");
  EXPECT_EQ(wechat::parse_send_response(res->body)->errcode, 47003);
  EXPECT_EQ(stats("wechat")["rejected"], 1);
}

TEST_F(SimulatorTest, WechatSubscribeSendAnd43101) {
  const std::string token = client_->wechat_token();
  const auto ok = wechat::parse_send_response(client_->wechat_subscribe(token, "oMini0001")->body);
  EXPECT_EQ(ok->errcode, 0);
  EXPECT_EQ(sim_->messages(Provider::kWeChat)[0]["kind"], "subscribe");

  configure({{"provider", "wechat"}, {"fixed_error_code", 43101}});
  const auto refused = wechat::parse_send_response(client_->wechat_subscribe(token, "oMini0001")->body);
  EXPECT_EQ(refused->errcode, 43101);
  const auto cls = wechat::classify_errcode(refused->errcode);
  EXPECT_EQ(cls.kind, SendOutcome::Kind::kPermanent);
  EXPECT_EQ(stats("wechat")["errors_injected"], 1);

  // Or only for one user.
  configure({{"provider", "wechat"}, {"fixed_error_code", nullptr}, {"recipient_errors", {{"oMini0002", "43101"}}}});
  EXPECT_EQ(wechat::parse_send_response(client_->wechat_subscribe(token, "oMini0001")->body)->errcode, 0);
  EXPECT_EQ(wechat::parse_send_response(client_->wechat_subscribe(token, "oMini0002")->body)->errcode, 43101);
}

// ---- Injected faults ----------------------------------------------------------------------

TEST_F(SimulatorTest, FixedErrorCodeAnswersInTheProviderShape) {
  configure({{"provider", "aliyun"}, {"fixed_error_code", "isv.BUSINESS_LIMIT_CONTROL"}});
  const auto res = client_->aliyun_send(SimClient::aliyun_request({"15300000001"}, "dlv-e1"));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  const auto answer = sms::aliyun::parse_send_sms_response(res->body);
  EXPECT_EQ(answer->code, "isv.BUSINESS_LIMIT_CONTROL");
  EXPECT_EQ(sms::aliyun::classify(answer->code).kind, SendOutcome::Kind::kRetryable);
  const json s = stats("aliyun");
  EXPECT_EQ(s["errors_injected"], 1);
  EXPECT_EQ(s["accepted"], 0);

  configure({{"provider", "tencent"}, {"error_rate", 1.0}});
  const auto t = sms::tencent::parse_send_sms_response(
      client_->tencent_send(SimClient::tencent_request({"+8613800000001"}, "dlv-e2"))->body);
  ASSERT_TRUE(t.ok());
  ASSERT_TRUE(t->error.has_value());
  EXPECT_EQ(t->error->code, "InternalError.SendAndRecvFail");
  EXPECT_EQ(sms::tencent::classify(t->error->code).kind, SendOutcome::Kind::kRetryable);

  const std::string token = client_->wechat_token();
  configure({{"provider", "wechat"}, {"error_rate", 1.0}});
  EXPECT_EQ(
      wechat::parse_send_response(client_->wechat_send(token, SimClient::template_message("o1", "k"))->body)->errcode,
      -1);
}

TEST_F(SimulatorTest, InjectedHttp5xx) {
  configure({{"provider", "all"}, {"error_rate", 1.0}, {"http_status", 503}});
  const auto a = client_->aliyun_send(SimClient::aliyun_request({"15300000001"}, "dlv-5"));
  ASSERT_TRUE(a);
  EXPECT_EQ(a->status, 503);
  EXPECT_EQ(sms::aliyun::parse_send_sms_response(a->body)->code, "ServiceUnavailable");
  const auto t = client_->tencent_send(SimClient::tencent_request({"+8613800000001"}, "dlv-5"));
  ASSERT_TRUE(t);
  EXPECT_EQ(t->status, 503);
  EXPECT_EQ(sms::classify_http(t->status).kind, SendOutcome::Kind::kRetryable);
  configure({{"provider", "wechat"}, {"http_status", 500}});
  const auto w = client_->wechat_send(client_->wechat_token(), SimClient::template_message("o1", "k"));
  ASSERT_TRUE(w);
  EXPECT_EQ(w->status, 500);
  EXPECT_EQ(stats("aliyun")["errors_injected"], 1);
  EXPECT_EQ(stats("tencent")["errors_injected"], 1);
  EXPECT_EQ(stats("wechat")["errors_injected"], 1);
}

TEST_F(SimulatorTest, ErrorRateRefusesAboutThatShare) {
  configure({{"provider", "aliyun"}, {"error_rate", 0.5}});
  int refused = 0;
  for (int i = 0; i < 100; ++i) {
    const auto res = client_->aliyun_send(SimClient::aliyun_request({"15300000001"}, "dlv-r" + std::to_string(i)));
    ASSERT_TRUE(res);
    if (sms::aliyun::parse_send_sms_response(res->body)->code != "OK") ++refused;
  }
  EXPECT_GT(refused, 25);
  EXPECT_LT(refused, 75);
  const json s = stats("aliyun");
  EXPECT_EQ(s["errors_injected"], refused);
  EXPECT_EQ(s["accepted"], 100 - refused);
  EXPECT_EQ(s["requests"], 100);
}

TEST_F(SimulatorTest, DownResetsTheConnectionOrAnswers503) {
  configure({{"provider", "aliyun"}, {"down", true}});
  const auto reset = client_->aliyun_send(SimClient::aliyun_request({"15300000001"}, "dlv-d"));
  EXPECT_FALSE(reset);  // no answer at all
  configure({{"provider", "aliyun"}, {"down_mode", "503"}});
  const auto unavailable = client_->aliyun_send(SimClient::aliyun_request({"15300000001"}, "dlv-d"));
  ASSERT_TRUE(unavailable);
  EXPECT_EQ(unavailable->status, 503);
  // The other providers and the control API still answer.
  EXPECT_FALSE(client_->wechat_token().empty());
  const json s = stats("aliyun");
  EXPECT_EQ(s["down_refused"], 2);
  EXPECT_EQ(s["accepted"], 0);
  configure({{"provider", "aliyun"}, {"down", false}});
  EXPECT_EQ(client_->aliyun_send(SimClient::aliyun_request({"15300000001"}, "dlv-d"))->status, 200);
}

TEST_F(SimulatorTest, LatencyDoesNotSerialiseRequests) {
  configure({{"provider", "tencent"}, {"latency_ms", 3000}});
  std::vector<std::future<int>> results;
  for (int i = 0; i < 8; ++i) {
    results.push_back(std::async(std::launch::async, [this, i] {
      SimClient c(*sim_, options_);
      const auto res = c.tencent_send(SimClient::tencent_request({"+8613800000001"}, "dlv-l" + std::to_string(i)));
      return res ? res->status : 0;
    }));
  }
  // All eight wait in the latency at once (in series, only one would at a time).
  int most = 0;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (most < 8 && std::chrono::steady_clock::now() < until) {
    most = std::max(most, sim_->requests_in_latency());
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_EQ(most, 8);
  for (auto& r : results) EXPECT_EQ(r.get(), 200);
  EXPECT_EQ(sim_->requests_in_latency(), 0);
  EXPECT_EQ(stats("tencent")["accepted"], 8);
}

TEST_F(SimulatorTest, TimeoutHoldsTheAnswerButTheSendIsAccepted) {
  configure({{"provider", "aliyun"}, {"timeout_rate", 1.0}, {"timeout_ms", 1500}});
  httplib::Client impatient("127.0.0.1", sim_->port());
  impatient.set_read_timeout(std::chrono::milliseconds(300));
  const auto built = sms::aliyun::build_send_sms(
      client_->aliyun_credentials(), SimClient::aliyun_request({"15300000001"}, "dlv-to"), SimClient::aliyun_context());
  const auto res = impatient.Post("/", built->query, "application/x-www-form-urlencoded");
  EXPECT_FALSE(res);
  EXPECT_EQ(res.error(), httplib::Error::Read);
  // The provider accepted it anyway: a retry with the same OutId would be a duplicate.
  const json s = stats("aliyun");
  EXPECT_EQ(s["timeouts_injected"], 1);
  EXPECT_EQ(s["per_key"]["dlv-to"], 1);
}

TEST_F(SimulatorTest, StopWakesRequestsSleepingInLatency) {
  configure({{"provider", "aliyun"}, {"latency_ms", 60000}});
  auto pending = std::async(std::launch::async, [this] {
    SimClient c(*sim_, options_);
    return static_cast<bool>(c.aliyun_send(SimClient::aliyun_request({"15300000001"}, "dlv-s")));
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const auto t0 = std::chrono::steady_clock::now();
  sim_->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  pending.get();
}

// ---- Control API ------------------------------------------------------------------------

TEST_F(SimulatorTest, ControlApiOverHttp) {
  auto& http = client_->http();
  EXPECT_EQ(http.Get("/_sim/healthz")->status, 200);

  const auto bad = http.Post("/_sim/config", R"({"provider":"aliyun","latency":5})", "application/json");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_NE(bad->body.find("aliyun.latency: unknown field"), std::string::npos);
  EXPECT_EQ(http.Post("/_sim/config", R"({"latency_ms":5})", "application/json")->status, 400);  // which provider?
  EXPECT_EQ(http.Post("/_sim/config", R"({"provider":"aliyun","error_rate":2})", "application/json")->status, 400);
  EXPECT_EQ(http.Post("/_sim/config", R"({"provider":"wechat","fixed_error_code":"abc"})", "application/json")->status,
            400);
  EXPECT_EQ(http.Post("/_sim/config", "not json", "application/json")->status, 400);

  const auto ok = http.Post(
      "/_sim/config", R"({"provider":"aliyun","latency_ms":5,"receipt":{"outcome":"failure","err_code":"MK:0001"}})",
      "application/json");
  ASSERT_TRUE(ok);
  ASSERT_EQ(ok->status, 200) << ok->body;
  const json config = json::parse(ok->body);
  EXPECT_EQ(config["aliyun"]["latency_ms"], 5);
  EXPECT_EQ(config["aliyun"]["receipt"]["outcome"], "failure");
  EXPECT_EQ(config["aliyun"]["receipt"]["delay_ms"], 20);  // untouched fields keep their value
  EXPECT_EQ(config["tencent"]["latency_ms"], 0);
  EXPECT_EQ(client_->get_json("/_sim/config")["aliyun"]["receipt"]["err_code"], "MK:0001");

  ASSERT_EQ(client_->aliyun_send(SimClient::aliyun_request({"15300000001"}, "dlv-c1"))->status, 200);
  ASSERT_EQ(client_->aliyun_send(SimClient::aliyun_request({"15300000002"}, "dlv-c2"))->status, 200);
  const json only = client_->get_json("/_sim/messages?provider=aliyun&key=dlv-c2");
  ASSERT_EQ(only["messages"].size(), 1u);
  EXPECT_EQ(only["messages"][0]["to"], "15300000002");
  EXPECT_EQ(client_->get_json("/_sim/messages")["messages"].size(), 2u);
  EXPECT_EQ(http.Get("/_sim/messages?provider=nope")->status, 400);

  const json stats_json = client_->get_json("/_sim/stats");
  EXPECT_EQ(stats_json["aliyun"]["accepted"], 2);
  EXPECT_EQ(stats_json["aliyun"]["per_key"]["dlv-c1"], 1);
  const json brief = client_->get_json("/_sim/stats?brief=1");
  EXPECT_FALSE(brief["aliyun"].contains("per_key"));
  EXPECT_EQ(brief["aliyun"]["keys"], 2);
}

TEST_F(SimulatorTest, ResetClearsStatsMessagesTokensAndBehaviour) {
  const std::string token = client_->wechat_token();
  ASSERT_EQ(client_->wechat_send(token, SimClient::template_message("oUser0001", "dlv-z"))->status, 200);
  ASSERT_EQ(client_->aliyun_send(SimClient::aliyun_request({"15300000001"}, "dlv-z"))->status, 200);
  configure({{"provider", "aliyun"}, {"fixed_error_code", "isv.AMOUNT_NOT_ENOUGH"}});

  ASSERT_EQ(client_->http().Post("/_sim/reset", "", "application/json")->status, 200);
  const json s = sim_->stats();
  for (const char* p : {"aliyun", "tencent", "wechat"}) {
    EXPECT_EQ(s[p]["requests"], 0) << p;
    EXPECT_EQ(s[p]["accepted"], 0) << p;
    EXPECT_TRUE(s[p]["per_key"].empty()) << p;
  }
  EXPECT_EQ(s["wechat"]["tokens_issued"], 0);
  EXPECT_TRUE(sim_->messages(std::nullopt).empty());
  EXPECT_EQ(sim_->behaviour(Provider::kAliyun).fixed_error_code, "");
  // Tokens are forgotten; a send with the old one must refetch.
  EXPECT_EQ(
      wechat::parse_send_response(client_->wechat_send(token, SimClient::template_message("oUser0001", "dlv-z"))->body)
          ->errcode,
      40001);
  EXPECT_EQ(client_->aliyun_send(SimClient::aliyun_request({"15300000001"}, "dlv-z"))->status, 200);
  EXPECT_EQ(sim_->stats()["aliyun"]["per_key"]["dlv-z"], 1);  // not a duplicate of the pre-reset send
}

TEST(SimulatorStartup, RefusesANonLoopbackAddress) {
  SimulatorOptions o;
  o.listen_host = "0.0.0.0";
  Simulator sim(o);
  EXPECT_THROW(sim.start(), StartupError);
}

TEST(SimulatorStartup, CredentialsFromTheEnvironment) {
  setenv("SONGDA_ALIYUN_ACCESS_KEY_ID", "env-id", 1);
  setenv("SONGDA_WECHAT_CALLBACK_TOKEN", "env-token", 1);
  setenv("SONGDA_CALLBACK_KEY", "", 1);  // empty keeps the default
  const SimulatorOptions o = options_from_environment();
  unsetenv("SONGDA_ALIYUN_ACCESS_KEY_ID");
  unsetenv("SONGDA_WECHAT_CALLBACK_TOKEN");
  unsetenv("SONGDA_CALLBACK_KEY");
  EXPECT_EQ(o.aliyun_access_key_id, "env-id");
  EXPECT_EQ(o.wechat_callback_token, "env-token");
  EXPECT_EQ(o.callback_key, kDefaultCallbackKey);
  EXPECT_EQ(o.aliyun_access_key_secret, kDefaultAliyunAccessKeySecret);
}

}  // namespace
}  // namespace songda::sim
