// SmsChannel over a scripted HttpClient: the exact Aliyun and Tencent requests
// (signatures recomputed with the protocol library), outcomes for each class of
// documented answer, failover to the next provider within one send (5xx,
// timeout, retryable and operator codes), the circuit breaker (opens after N
// faults, half-opens after the injected time, opened by receipt silence),
// broadcast batching with each number mapped back, selection, the concurrency
// bound, and the start-up checks.
#include "channels/sms/sms_channel.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <thread>

#include <nlohmann/json.hpp>

#include "channels/sms/aliyun_protocol.h"
#include "channels/sms/segments.h"
#include "channels/sms/tencent_protocol.h"
#include "gateway/core/crypto.h"
#include "tests/channels/sms/fake_http.h"

namespace songda::sms {
namespace {

using Kind = SendOutcome::Kind;
using songda::testing::FakeHttp;
using songda::testing::header_of;

constexpr std::int64_t kNowMs = 1795000000000;  // 2026-11-18T...Z
const char* const kAliyunUrl = "https://aliyun.test/";
const char* const kTencentUrl = "https://sms.tencent.test/";

const char* fake_env(const char* name) {
  static const std::map<std::string, std::string> env = {
      {"ALI_ACCESS_KEY_ID", "testId"},   {"ALI_ACCESS_KEY_SECRET", "testSecret"},
      {"ALI2_ACCESS_KEY_ID", "testId2"}, {"ALI2_ACCESS_KEY_SECRET", "testSecret2"},
      {"TC_SECRET_ID", "AKIDexample"},   {"TC_SECRET_KEY", "tcSecretKey"},
  };
  const auto it = env.find(name);
  return it == env.end() ? nullptr : it->second.c_str();
}

SmsProviderConfig aliyun_config(std::string name = "aliyun-a", std::string env = "ALI") {
  SmsProviderConfig c;
  c.name = std::move(name);
  c.kind = "aliyun";
  c.endpoint = "https://aliyun.test";
  c.priority = 1;
  c.sign_name = "商丘中院";
  c.region = "cn-hangzhou";
  c.templates = {{"summons", "SMS_71390007"}, {"notice", "SMS_1000001"}};
  c.credentials_env = std::move(env);
  return c;
}

SmsProviderConfig tencent_config() {
  SmsProviderConfig c;
  c.name = "tencent-b";
  c.kind = "tencent";
  c.endpoint = "https://sms.tencent.test";
  c.priority = 2;
  c.sign_name = "商丘中院";
  c.region = "ap-guangzhou";
  c.sdk_app_id = "1400006666";
  c.templates = {{"summons", "449739"}, {"notice", "449740"}};
  c.template_params = {{"summons", {"recipient_name", "case_number", "hearing_time", "link"}}};
  c.credentials_env = "TC";
  return c;
}

struct Clock {
  std::atomic<std::int64_t> now{kNowMs};
};

SmsChannelOptions test_options(Clock& clock) {
  SmsChannelOptions o;
  o.now_ms = [&clock] { return clock.now.load(); };
  o.nonce = [] { return std::string("45e25e9b-0a6f-4070-8c85-2956eda1b466"); };
  o.random = [] { return std::uint64_t{0}; };
  o.max_parallel = 1;
  return o;
}

Delivery delivery(std::string id, std::string mobile, std::string text = "") {
  Delivery d;
  d.id = std::move(id);
  d.channel = "sms";
  d.address = std::move(mobile);
  d.template_name = "summons";
  d.court_name = "商丘市中级人民法院";
  d.case_number = "(2026)豫14民初123号";
  d.recipient_name = "张三";
  d.params = {{"hearing_time", "2026-12-10 09:30"}};
  d.text = text.empty()
               ? "张三：您的案件(2026)豫14民初123号定于2026-12-10 09:30开庭，详见 https://court.example/r/" + d.id
               : text;
  return d;
}

std::string percent_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      out.push_back(static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::map<std::string, std::string> parse_form(const std::string& body) {
  std::map<std::string, std::string> out;
  std::size_t pos = 0;
  while (pos <= body.size()) {
    const auto amp = body.find('&', pos);
    const std::string pair = body.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
    const auto eq = pair.find('=');
    out[percent_decode(pair.substr(0, eq))] = percent_decode(pair.substr(eq + 1));
    if (amp == std::string::npos) break;
    pos = amp + 1;
  }
  return out;
}

HttpResponse json_response(int status, const std::string& body) { return HttpResponse{status, body, {}, ""}; }

HttpResponse aliyun_ok(const std::string& biz = "BIZ123") {
  return json_response(200, R"({"Code":"OK","Message":"OK","BizId":")" + biz + R"(","RequestId":"R1"})");
}

HttpResponse aliyun_code(const std::string& code) {
  return json_response(200, R"({"Code":")" + code + R"(","Message":"msg for )" + code + R"(","RequestId":"R2"})");
}

// A Tencent answer with one status per number in the request, all "Ok" unless listed in `codes`.
HttpResponse tencent_answer(const HttpRequest& req, const std::map<std::string, std::string>& codes = {}) {
  const auto body = nlohmann::json::parse(req.body);
  nlohmann::json set = nlohmann::json::array();
  int n = 0;
  for (const auto& number : body["PhoneNumberSet"]) {
    const std::string num = number.get<std::string>();
    const auto it = codes.find(num);
    const std::string code = it == codes.end() ? "Ok" : it->second;
    set.push_back({{"SerialNo", "2019:" + std::to_string(++n) + num.substr(num.size() - 4)},
                   {"PhoneNumber", num},
                   {"Fee", code == "Ok" ? 2 : 0},
                   {"SessionContext", body.value("SessionContext", "")},
                   {"Code", code},
                   {"Message", code == "Ok" ? "send success" : "failed " + code},
                   {"IsoCode", "CN"}});
  }
  std::reverse(set.begin(), set.end());  // answers need not follow the request's order
  return json_response(200, nlohmann::json{{"Response", {{"SendStatusSet", set}, {"RequestId", "tc-req-1"}}}}.dump());
}

bool is_aliyun(const HttpRequest& r) { return r.url.rfind(kAliyunUrl, 0) == 0; }

// ---- Exact requests ----------------------------------------------------------------------

TEST(AliyunSms, SendsTheExactSignedFormAndAcceptsWithBizIdAndNumber) {
  Clock clock;
  FakeHttp http([](const HttpRequest&) { return aliyun_ok("BIZ123"); });
  SmsConfig cfg;
  cfg.providers = {aliyun_config()};
  SmsChannel channel(cfg, http, fake_env, test_options(clock));
  const Delivery d = delivery("sd-0001", "+8613800000000");
  const auto out = channel.send(std::span(&d, 1));

  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, Kind::kAccepted);
  EXPECT_EQ(out[0].provider, "aliyun-a");
  EXPECT_EQ(out[0].provider_message_id, "BIZ123:13800000000");
  EXPECT_EQ(out[0].code, "OK");
  EXPECT_EQ(out[0].raw, aliyun_ok("BIZ123").body);
  EXPECT_EQ(out[0].segments, measure_mainland("商丘中院", d.text).segments);
  EXPECT_GT(out[0].segments, 0);

  const auto reqs = http.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "POST");
  EXPECT_EQ(reqs[0].url, kAliyunUrl);
  EXPECT_EQ(header_of(reqs[0], "Content-Type"), "application/x-www-form-urlencoded; charset=utf-8");
  auto form = parse_form(reqs[0].body);
  EXPECT_EQ(form["Action"], "SendSms");
  EXPECT_EQ(form["AccessKeyId"], "testId");
  EXPECT_EQ(form["OutId"], "sd-0001");
  EXPECT_EQ(form["PhoneNumbers"], "13800000000");
  EXPECT_EQ(form["SignName"], "商丘中院");
  EXPECT_EQ(form["TemplateCode"], "SMS_71390007");
  EXPECT_EQ(form["SignatureNonce"], "45e25e9b-0a6f-4070-8c85-2956eda1b466");
  EXPECT_EQ(form["Timestamp"], iso8601_utc_seconds(kNowMs));
  EXPECT_EQ(form["Format"], "JSON");
  const auto tp = nlohmann::json::parse(form["TemplateParam"]);
  EXPECT_EQ(tp, (nlohmann::json{{"court_name", "商丘市中级人民法院"},
                                {"case_number", "(2026)豫14民初123号"},
                                {"recipient_name", "张三"},
                                {"hearing_time", "2026-12-10 09:30"},
                                {"link", "https://court.example/r/sd-0001"}}));
  // The signature verifies with the protocol library, and the body is exactly what it signs.
  const std::string signature = form["Signature"];
  form.erase("Signature");
  const aliyun::Params params(form.begin(), form.end());
  EXPECT_EQ(signature, aliyun::rpc_signature("testSecret", aliyun::rpc_string_to_sign("POST", params)));
  EXPECT_EQ(reqs[0].body, aliyun::signed_rpc_query("POST", params, "testSecret"));
}

TEST(TencentSms, SendsTheExactTc3SignedJsonAndAcceptsWithSerialNo) {
  Clock clock;
  FakeHttp http([](const HttpRequest& r) { return tencent_answer(r); });
  SmsConfig cfg;
  cfg.providers = {tencent_config()};
  SmsChannel channel(cfg, http, fake_env, test_options(clock));
  const Delivery d = delivery("sd-0002", "13800000000");  // bare mainland number -> +86
  const auto out = channel.send(std::span(&d, 1));

  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, Kind::kAccepted) << out[0].code << " " << out[0].message;
  EXPECT_EQ(out[0].provider, "tencent-b");
  EXPECT_EQ(out[0].provider_message_id, "2019:10000");
  EXPECT_EQ(out[0].code, "Ok");
  EXPECT_EQ(out[0].segments, 2);  // the answer's Fee

  const auto reqs = http.requests();
  ASSERT_EQ(reqs.size(), 1u);
  const HttpRequest& r = reqs[0];
  EXPECT_EQ(r.url, kTencentUrl);
  EXPECT_EQ(header_of(r, "X-TC-Action"), "SendSms");
  EXPECT_EQ(header_of(r, "X-TC-Version"), "2021-01-11");
  EXPECT_EQ(header_of(r, "X-TC-Region"), "ap-guangzhou");
  EXPECT_EQ(header_of(r, "X-TC-Timestamp"), std::to_string(kNowMs / 1000));
  EXPECT_EQ(header_of(r, "Host"), "sms.tencent.test");
  EXPECT_EQ(header_of(r, "Content-Type"), "application/json; charset=utf-8");
  const auto body = nlohmann::json::parse(r.body);
  EXPECT_EQ(body["PhoneNumberSet"], nlohmann::json::array({"+8613800000000"}));
  EXPECT_EQ(body["SmsSdkAppId"], "1400006666");
  EXPECT_EQ(body["TemplateId"], "449739");
  EXPECT_EQ(body["SignName"], "商丘中院");
  EXPECT_EQ(body["SessionContext"], "sd-0002");
  EXPECT_EQ(body["TemplateParamSet"], nlohmann::json::array({"张三", "(2026)豫14民初123号", "2026-12-10 09:30",
                                                             "https://court.example/r/sd-0002"}));
  const auto sig = tencent::tc3_sign(tencent::Tc3Input{"AKIDexample", "tcSecretKey", "sms", "sms.tencent.test",
                                                       "application/json; charset=utf-8", kNowMs / 1000, r.body});
  EXPECT_EQ(header_of(r, "Authorization"), sig.authorization);
  EXPECT_NE(sig.authorization.find("Credential=AKIDexample/"), std::string::npos);
}

// ---- Outcomes per documented answer ------------------------------------------------------

struct CodeCase {
  std::string code;
  Kind kind;
  bool fails_over;
};

TEST(AliyunSms, ClassifiesEachCodeClassAndFailsOverOnlyWhereAnotherProviderCanHelp) {
  const std::vector<CodeCase> cases = {
      {"isv.MOBILE_NUMBER_ILLEGAL", Kind::kPermanent, false},  // the recipient: no provider can help
      {"isv.SOME_NEW_CODE", Kind::kPermanent, false},          // unknown: permanent, verbatim
      {"isp.SYSTEM_ERROR", Kind::kRetryable, true},            // transient at Aliyun
      {"isv.BUSINESS_LIMIT_CONTROL", Kind::kRetryable, true},  // per-number flow control
      {"isv.AMOUNT_NOT_ENOUGH", Kind::kPermanent, true},       // account: needs an operator, try the next
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.code);
    Clock clock;
    FakeHttp http([&](const HttpRequest& r) { return is_aliyun(r) ? aliyun_code(c.code) : tencent_answer(r); });
    SmsConfig cfg;
    cfg.providers = {aliyun_config(), tencent_config()};
    SmsChannel channel(cfg, http, fake_env, test_options(clock));
    const Delivery d = delivery("sd-code", "+8613800000001");
    const auto out = channel.send(std::span(&d, 1));
    ASSERT_EQ(out.size(), 1u);
    if (c.fails_over) {
      EXPECT_EQ(out[0].kind, Kind::kAccepted);
      EXPECT_EQ(out[0].provider, "tencent-b");
      ASSERT_EQ(http.requests().size(), 2u);
    } else {
      EXPECT_EQ(out[0].kind, c.kind);
      EXPECT_EQ(out[0].provider, "aliyun-a");
      EXPECT_EQ(out[0].code, c.code);
      EXPECT_EQ(out[0].message, "msg for " + c.code);
      EXPECT_TRUE(out[0].provider_message_id.empty());
      EXPECT_EQ(http.requests().size(), 1u);
    }
  }
}

TEST(AliyunSms, AloneARetryableCodeIsRetryableAndAnOperatorCodeIsPermanentWithItsNote) {
  Clock clock;
  FakeHttp http;
  SmsConfig cfg;
  cfg.providers = {aliyun_config()};
  SmsChannel channel(cfg, http, fake_env, test_options(clock));
  const Delivery d = delivery("sd-alone", "+8613800000001");

  http.set_handler([](const HttpRequest&) { return aliyun_code("isp.SYSTEM_ERROR"); });
  auto out = channel.send(std::span(&d, 1));
  EXPECT_EQ(out[0].kind, Kind::kRetryable);
  EXPECT_EQ(out[0].code, "isp.SYSTEM_ERROR");
  EXPECT_NE(out[0].message.find("[tried: aliyun-a isp.SYSTEM_ERROR]"), std::string::npos) << out[0].message;

  http.set_handler([](const HttpRequest&) { return aliyun_code("isv.AMOUNT_NOT_ENOUGH"); });
  out = channel.send(std::span(&d, 1));
  EXPECT_EQ(out[0].kind, Kind::kPermanent);
  EXPECT_NE(out[0].message.find("top up"), std::string::npos) << out[0].message;
}

TEST(TencentSms, RequestLevelErrorsAndPerNumberCodes) {
  Clock clock;
  FakeHttp http;
  SmsConfig cfg;
  cfg.providers = {tencent_config()};
  SmsChannel channel(cfg, http, fake_env, test_options(clock));
  const Delivery d = delivery("sd-tc", "+8613800000002");

  http.set_handler([](const HttpRequest&) {
    return json_response(
        200, R"({"Response":{"Error":{"Code":"AuthFailure.SignatureFailure","Message":"bad sig"},"RequestId":"x"}})");
  });
  auto out = channel.send(std::span(&d, 1));
  EXPECT_EQ(out[0].kind, Kind::kPermanent);
  EXPECT_EQ(out[0].code, "AuthFailure.SignatureFailure");

  http.set_handler([](const HttpRequest&) {
    return json_response(200,
                         R"({"Response":{"Error":{"Code":"InternalError.Timeout","Message":"t"},"RequestId":"x"}})");
  });
  out = channel.send(std::span(&d, 1));
  EXPECT_EQ(out[0].kind, Kind::kRetryable);

  http.set_handler([](const HttpRequest& r) {
    return tencent_answer(r, {{"+8613800000002", "InvalidParameterValue.IncorrectPhoneNumber"}});
  });
  out = channel.send(std::span(&d, 1));
  EXPECT_EQ(out[0].kind, Kind::kPermanent);
  EXPECT_EQ(out[0].code, "InvalidParameterValue.IncorrectPhoneNumber");

  http.set_handler([](const HttpRequest& r) {
    return tencent_answer(r, {{"+8613800000002", "LimitExceeded.PhoneNumberDailyLimit"}});
  });
  out = channel.send(std::span(&d, 1));
  EXPECT_EQ(out[0].kind, Kind::kRetryable);
  EXPECT_EQ(out[0].code, "LimitExceeded.PhoneNumberDailyLimit");

  // Not the documented shape: classified by HTTP status.
  http.set_handler([](const HttpRequest&) { return json_response(502, "<html>bad gateway</html>"); });
  out = channel.send(std::span(&d, 1));
  EXPECT_EQ(out[0].kind, Kind::kRetryable);
  EXPECT_EQ(out[0].code, "http_502");
  http.set_handler([](const HttpRequest&) { return json_response(200, "not json"); });
  out = channel.send(std::span(&d, 1));
  EXPECT_EQ(out[0].kind, Kind::kPermanent);
  EXPECT_EQ(out[0].code, "http_200");
}

TEST(TencentSms, MissingTemplateVariableIsPermanentNamingIt) {
  Clock clock;
  FakeHttp http([](const HttpRequest& r) { return tencent_answer(r); });
  SmsConfig cfg;
  cfg.providers = {tencent_config()};
  SmsChannel channel(cfg, http, fake_env, test_options(clock));
  Delivery d = delivery("sd-miss", "+8613800000003");
  d.params.clear();  // no hearing_time
  const auto out = channel.send(std::span(&d, 1));
  EXPECT_EQ(out[0].kind, Kind::kPermanent);
  EXPECT_EQ(out[0].code, "template_param_missing");
  EXPECT_NE(out[0].message.find("hearing_time"), std::string::npos);
  EXPECT_TRUE(http.requests().empty());
}

// ---- Failover ------------------------------------------------------------------------------

TEST(SmsFailover, FiveHundredAtTheFirstProviderIsSentByTheSecondWithTheSameDeliveryId) {
  Clock clock;
  FakeHttp http([](const HttpRequest& r) {
    return is_aliyun(r) ? json_response(503, "Service Unavailable") : tencent_answer(r);
  });
  SmsConfig cfg;
  cfg.providers = {aliyun_config(), tencent_config()};
  SmsChannel channel(cfg, http, fake_env, test_options(clock));
  const Delivery d = delivery("sd-fo-1", "+8613800000004");
  const auto out = channel.send(std::span(&d, 1));
  EXPECT_EQ(out[0].kind, Kind::kAccepted);
  EXPECT_EQ(out[0].provider, "tencent-b");
  const auto reqs = http.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(parse_form(reqs[0].body)["OutId"], "sd-fo-1");
  EXPECT_EQ(nlohmann::json::parse(reqs[1].body)["SessionContext"], "sd-fo-1");
}

TEST(SmsFailover, TimeoutAtTheFirstProviderIsSentByTheSecond) {
  Clock clock;
  FakeHttp http([](const HttpRequest& r) {
    return is_aliyun(r) ? HttpResponse{0, "", {}, "Timeout was reached: Operation timed out after 5000 ms"}
                        : tencent_answer(r);
  });
  SmsConfig cfg;
  cfg.providers = {aliyun_config(), tencent_config()};
  SmsChannel channel(cfg, http, fake_env, test_options(clock));
  const Delivery d = delivery("sd-fo-2", "+8613800000005");
  const auto out = channel.send(std::span(&d, 1));
  EXPECT_EQ(out[0].kind, Kind::kAccepted);
  EXPECT_EQ(out[0].provider, "tencent-b");
  EXPECT_EQ(http.requests().size(), 2u);
}

TEST(SmsFailover, WhenEveryProviderFailsTheOutcomeIsRetryableWithTheTrail) {
  Clock clock;
  FakeHttp http([](const HttpRequest& r) {
    return is_aliyun(r) ? json_response(500, "") : HttpResponse{0, "", {}, "Couldn't connect to server"};
  });
  SmsConfig cfg;
  cfg.providers = {aliyun_config(), tencent_config()};
  SmsChannel channel(cfg, http, fake_env, test_options(clock));
  const Delivery d = delivery("sd-fo-3", "+8613800000006");
  const auto out = channel.send(std::span(&d, 1));
  EXPECT_EQ(out[0].kind, Kind::kRetryable);
  EXPECT_EQ(out[0].provider, "tencent-b");
  EXPECT_EQ(out[0].code, "no_response");
  EXPECT_NE(out[0].message.find("Couldn't connect"), std::string::npos);
  EXPECT_NE(out[0].message.find("[tried: aliyun-a http_500; tencent-b no_response]"), std::string::npos)
      << out[0].message;
}

TEST(SmsFailover, ATemplateOnlyOneProviderHasGoesThere) {
  Clock clock;
  FakeHttp http([](const HttpRequest& r) { return is_aliyun(r) ? aliyun_ok() : tencent_answer(r); });
  SmsConfig cfg;
  cfg.providers = {aliyun_config(), tencent_config()};
  cfg.providers[0].templates.erase("notice");
  SmsChannel channel(cfg, http, fake_env, test_options(clock));
  Delivery d = delivery("sd-tpl", "+8613800000007");
  d.template_name = "notice";
  auto out = channel.send(std::span(&d, 1));
  EXPECT_EQ(out[0].kind, Kind::kAccepted);
  EXPECT_EQ(out[0].provider, "tencent-b");
  EXPECT_EQ(http.requests().size(), 1u);

  d.template_name = "unknown_template";
  out = channel.send(std::span(&d, 1));
  EXPECT_EQ(out[0].kind, Kind::kPermanent);
  EXPECT_EQ(out[0].code, "no_provider_template");
  EXPECT_NE(out[0].message.find("no provider template for 'unknown_template'"), std::string::npos);
}

// ---- Circuit breaker -------------------------------------------------------------------------

TEST(SmsCircuit, OpensAfterNFaultsThenHalfOpensAfterTheInjectedTime) {
  Clock clock;
  std::atomic<bool> aliyun_down{true};
  FakeHttp http([&](const HttpRequest& r) {
    if (is_aliyun(r)) return aliyun_down ? json_response(503, "") : aliyun_ok();
    return tencent_answer(r);
  });
  SmsConfig cfg;
  cfg.providers = {aliyun_config(), tencent_config()};
  cfg.circuit_failures = 2;
  cfg.circuit_open_s = 30;
  SmsChannel channel(cfg, http, fake_env, test_options(clock));
  const Delivery d = delivery("sd-cb", "+8613800000008");

  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(channel.send(std::span(&d, 1))[0].provider, "tencent-b");
  }
  EXPECT_EQ(http.requests_to(kAliyunUrl).size(), 2u);
  EXPECT_EQ(channel.stats()[0].circuit, "open");
  EXPECT_EQ(channel.stats()[0].faults, 2u);

  // Open: Aliyun is not even asked.
  http.clear();
  EXPECT_EQ(channel.send(std::span(&d, 1))[0].provider, "tencent-b");
  EXPECT_TRUE(http.requests_to(kAliyunUrl).empty());

  // 30 s later: one trial; it succeeds, so the circuit closes.
  clock.now += 30'000;
  aliyun_down = false;
  EXPECT_EQ(channel.stats()[0].circuit, "half_open");
  http.clear();
  auto out = channel.send(std::span(&d, 1));
  EXPECT_EQ(out[0].provider, "aliyun-a");
  EXPECT_EQ(channel.stats()[0].circuit, "closed");
  EXPECT_EQ(channel.send(std::span(&d, 1))[0].provider, "aliyun-a");
}

TEST(SmsCircuit, AFailedTrialReopensAtOnce) {
  Clock clock;
  FakeHttp http([](const HttpRequest& r) { return is_aliyun(r) ? json_response(503, "") : tencent_answer(r); });
  SmsConfig cfg;
  cfg.providers = {aliyun_config(), tencent_config()};
  cfg.circuit_failures = 3;
  cfg.circuit_open_s = 10;
  SmsChannel channel(cfg, http, fake_env, test_options(clock));
  const Delivery d = delivery("sd-cb2", "+8613800000009");
  for (int i = 0; i < 3; ++i) (void)channel.send(std::span(&d, 1));
  EXPECT_EQ(channel.stats()[0].circuit, "open");
  clock.now += 10'000;
  http.clear();
  (void)channel.send(std::span(&d, 1));  // the trial fails
  EXPECT_EQ(http.requests_to(kAliyunUrl).size(), 1u);
  EXPECT_EQ(channel.stats()[0].circuit, "open");
  http.clear();
  (void)channel.send(std::span(&d, 1));
  EXPECT_TRUE(http.requests_to(kAliyunUrl).empty());
}

TEST(SmsCircuit, RecipientErrorsDoNotCountAgainstTheProvider) {
  Clock clock;
  FakeHttp http([](const HttpRequest&) { return aliyun_code("isv.MOBILE_NUMBER_ILLEGAL"); });
  SmsConfig cfg;
  cfg.providers = {aliyun_config()};
  cfg.circuit_failures = 1;
  SmsChannel channel(cfg, http, fake_env, test_options(clock));
  const Delivery d = delivery("sd-cb3", "+8613800000010");
  for (int i = 0; i < 3; ++i) EXPECT_EQ(channel.send(std::span(&d, 1))[0].kind, Kind::kPermanent);
  EXPECT_EQ(channel.stats()[0].circuit, "closed");
  EXPECT_EQ(http.requests().size(), 3u);
}

TEST(SmsCircuit, ReceiptSilenceOpensTheCircuitFromOutside) {
  Clock clock;
  FakeHttp http([](const HttpRequest& r) { return is_aliyun(r) ? aliyun_ok() : tencent_answer(r); });
  SmsConfig cfg;
  cfg.providers = {aliyun_config(), tencent_config()};
  cfg.circuit_open_s = 60;
  SmsChannel channel(cfg, http, fake_env, test_options(clock));
  const Delivery d = delivery("sd-silence", "+8613800000011");
  EXPECT_EQ(channel.send(std::span(&d, 1))[0].provider, "aliyun-a");
  channel.report_receipt_silence("aliyun-a");
  channel.report_receipt_silence("no-such-provider");
  EXPECT_EQ(channel.send(std::span(&d, 1))[0].provider, "tencent-b");
  clock.now += 60'000;
  EXPECT_EQ(channel.send(std::span(&d, 1))[0].provider, "aliyun-a");
}

TEST(SmsCircuit, AllCircuitsOpenIsRetryable) {
  Clock clock;
  FakeHttp http([](const HttpRequest&) { return aliyun_ok(); });
  SmsConfig cfg;
  cfg.providers = {aliyun_config()};
  SmsChannel channel(cfg, http, fake_env, test_options(clock));
  channel.report_receipt_silence("aliyun-a");
  const Delivery d = delivery("sd-allopen", "+8613800000012");
  const auto out = channel.send(std::span(&d, 1));
  EXPECT_EQ(out[0].kind, Kind::kRetryable);
  EXPECT_EQ(out[0].code, "circuit_open");
  EXPECT_TRUE(http.requests().empty());
}

// ---- Batching ----------------------------------------------------------------------------------

std::vector<Delivery> broadcast(int n, const std::string& prefix = "sd-bc-") {
  std::vector<Delivery> ds;
  for (int i = 0; i < n; ++i) {
    // A notice without a per-recipient link or name: identical TemplateParam.
    Delivery d = delivery(prefix + std::to_string(100 + i), "+86138000001" + std::to_string(10 + i),
                          "商丘中院公告：12月10日起诉讼服务中心搬迁。");
    d.template_name = "notice";
    d.recipient_name = "";
    ds.push_back(d);
  }
  return ds;
}

TEST(SmsBatching, AliyunSendsOneRequestForABroadcastAndMapsEachNumberBack) {
  Clock clock;
  FakeHttp http([](const HttpRequest&) { return aliyun_ok("BIZ-B"); });
  SmsConfig cfg;
  cfg.providers = {aliyun_config()};
  SmsChannel channel(cfg, http, fake_env, test_options(clock));
  auto ds = broadcast(3);
  Delivery other = delivery("sd-other", "+8613900000000");  // its own request
  ds.push_back(other);
  const auto out = channel.send(ds);
  ASSERT_EQ(out.size(), 4u);
  const auto reqs = http.requests();
  ASSERT_EQ(reqs.size(), 2u);
  auto form = parse_form(reqs[0].body);
  EXPECT_EQ(form["PhoneNumbers"], "13800000110,13800000111,13800000112");
  std::vector<std::string> ids = {"sd-bc-100", "sd-bc-101", "sd-bc-102"};
  EXPECT_EQ(form["OutId"], "b-" + sha256_hex("sd-bc-100\nsd-bc-101\nsd-bc-102").substr(0, 30));
  EXPECT_EQ(form["OutId"].size(), 32u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(out[i].kind, Kind::kAccepted);
    EXPECT_EQ(out[i].provider_message_id, "BIZ-B:1380000011" + std::to_string(i));
  }
  EXPECT_EQ(parse_form(reqs[1].body)["OutId"], "sd-other");
  EXPECT_EQ(out[3].provider_message_id, "BIZ-B:13900000000");
}

TEST(SmsBatching, TencentMapsEachNumbersStatusBackEvenOutOfOrder) {
  Clock clock;
  FakeHttp http([](const HttpRequest& r) {
    return tencent_answer(r, {{"+8613800000111", "InvalidParameterValue.IncorrectPhoneNumber"}});
  });
  SmsConfig cfg;
  cfg.providers = {tencent_config()};
  SmsChannel channel(cfg, http, fake_env, test_options(clock));
  const auto ds = broadcast(3);
  const auto out = channel.send(ds);
  ASSERT_EQ(http.requests().size(), 1u);
  const auto body = nlohmann::json::parse(http.requests()[0].body);
  EXPECT_EQ(body["PhoneNumberSet"].size(), 3u);
  EXPECT_EQ(body["SessionContext"].get<std::string>().rfind("b-", 0), 0u);
  EXPECT_EQ(body["TemplateParamSet"], nlohmann::json::array());  // "notice" has no template_params
  EXPECT_EQ(out[0].kind, Kind::kAccepted);
  EXPECT_EQ(out[0].provider_message_id, "2019:10110");
  EXPECT_EQ(out[1].kind, Kind::kPermanent);
  EXPECT_EQ(out[1].code, "InvalidParameterValue.IncorrectPhoneNumber");
  EXPECT_EQ(out[2].kind, Kind::kAccepted);
  EXPECT_EQ(out[2].provider_message_id, "2019:30112");  // matched by number, not by position
}

TEST(SmsBatching, BatchMaxSplitsAndOneNumberNeverAppearsTwiceInARequest) {
  Clock clock;
  FakeHttp http([](const HttpRequest&) { return aliyun_ok(); });
  SmsConfig cfg;
  cfg.providers = {aliyun_config()};
  cfg.providers[0].batch_max = 2;
  SmsChannel channel(cfg, http, fake_env, test_options(clock));
  auto ds = broadcast(3);
  Delivery dup = ds[0];
  dup.id = "sd-bc-dup";  // same number, another recipient record
  ds.push_back(dup);
  const auto out = channel.send(ds);
  const auto reqs = http.requests();
  ASSERT_EQ(reqs.size(), 2u);
  for (const auto& r : reqs) {
    const std::string numbers = parse_form(r.body)["PhoneNumbers"];
    EXPECT_EQ(std::count(numbers.begin(), numbers.end(), ','), 1) << numbers;
  }
  ASSERT_EQ(out.size(), 4u);
  for (const auto& o : out) EXPECT_EQ(o.kind, Kind::kAccepted);
  EXPECT_EQ(out[0].provider_message_id, out[3].provider_message_id);
  EXPECT_NE(parse_form(reqs[0].body)["OutId"], parse_form(reqs[1].body)["OutId"]);
}

// A lawyer broadcast: one template, a personal name and link per member.
std::vector<Delivery> personal_broadcast(int n) {
  std::vector<Delivery> ds;
  for (int i = 0; i < n; ++i) {
    Delivery d = delivery("sd-pb-" + std::to_string(100 + i), "+86138000003" + std::to_string(10 + i));
    d.recipient_name = "律师" + std::to_string(i);
    d.text = "商丘中院公告，详见 https://court.example/r/tok" + std::to_string(i);
    ds.push_back(d);
  }
  return ds;
}

TEST(SmsBatching, AliyunSendsPersonalVariablesInOneSendBatchSms) {
  Clock clock;
  FakeHttp http([](const HttpRequest&) { return aliyun_ok("BIZ-P"); });
  SmsConfig cfg;
  cfg.providers = {aliyun_config()};
  SmsChannel channel(cfg, http, fake_env, test_options(clock));
  const auto out = channel.send(personal_broadcast(3));
  const auto reqs = http.requests();
  ASSERT_EQ(reqs.size(), 1u) << "three members, one request";
  auto form = parse_form(reqs[0].body);
  EXPECT_EQ(form["Action"], "SendBatchSms");
  EXPECT_EQ(nlohmann::json::parse(form["PhoneNumberJson"]),
            nlohmann::json::array({"13800000310", "13800000311", "13800000312"}));
  const auto params = nlohmann::json::parse(form["TemplateParamJson"]);
  ASSERT_EQ(params.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(params[i]["recipient_name"], "律师" + std::to_string(i));
    EXPECT_EQ(params[i]["link"], "https://court.example/r/tok" + std::to_string(i));
    EXPECT_EQ(out[i].kind, Kind::kAccepted);
    EXPECT_EQ(out[i].provider_message_id, "BIZ-P:1380000031" + std::to_string(i));
  }
}

TEST(SmsBatching, AliyunSendBatchSmsTakesAtMostAHundredNumbers) {
  Clock clock;
  FakeHttp http([](const HttpRequest&) { return aliyun_ok(); });
  SmsConfig cfg;
  cfg.providers = {aliyun_config()};
  SmsChannel channel(cfg, http, fake_env, test_options(clock));
  std::vector<Delivery> ds;
  for (int i = 0; i < 250; ++i) {
    Delivery d = delivery("sd-h-" + std::to_string(i), "+8613900" + std::to_string(100000 + i));
    d.text = "详见 https://court.example/r/t" + std::to_string(i);
    ds.push_back(d);
  }
  const auto out = channel.send(ds);
  const auto reqs = http.requests();
  ASSERT_EQ(reqs.size(), 3u);
  std::size_t numbers = 0;
  for (const auto& r : reqs) {
    const auto n = nlohmann::json::parse(parse_form(r.body)["PhoneNumberJson"]).size();
    EXPECT_LE(n, 100u);
    numbers += n;
  }
  EXPECT_EQ(numbers, 250u);
  ASSERT_EQ(out.size(), 250u);
  for (const auto& o : out) EXPECT_EQ(o.kind, Kind::kAccepted);
}

TEST(SmsBatching, TencentSharesARequestWhereTheVariablesItsTemplateUsesAgree) {
  Clock clock;
  FakeHttp http([](const HttpRequest& r) { return tencent_answer(r); });
  SmsConfig cfg;
  cfg.providers = {tencent_config()};
  // This notice template uses the court name only: the personal link and name do not split the request.
  cfg.providers[0].template_params["notice"] = {"court_name"};
  SmsChannel channel(cfg, http, fake_env, test_options(clock));
  auto ds = personal_broadcast(4);
  for (auto& d : ds) d.template_name = "notice";
  auto out = channel.send(ds);
  ASSERT_EQ(http.requests().size(), 1u);
  EXPECT_EQ(nlohmann::json::parse(http.requests()[0].body)["PhoneNumberSet"].size(), 4u);
  // The summons template uses the name and the link: one request per member.
  const auto summons = personal_broadcast(4);
  out = channel.send(summons);
  EXPECT_EQ(http.requests().size(), 5u);
  ASSERT_EQ(out.size(), 4u);
  for (const auto& o : out) EXPECT_EQ(o.kind, Kind::kAccepted);
}

TEST(SmsBatching, ABatchFailsOverAsAWhole) {
  Clock clock;
  FakeHttp http([](const HttpRequest& r) { return is_aliyun(r) ? json_response(503, "") : tencent_answer(r); });
  SmsConfig cfg;
  cfg.providers = {aliyun_config(), tencent_config()};
  SmsChannel channel(cfg, http, fake_env, test_options(clock));
  const auto out = channel.send(broadcast(3));
  ASSERT_EQ(http.requests().size(), 2u);
  ASSERT_EQ(out.size(), 3u);
  for (const auto& o : out) {
    EXPECT_EQ(o.kind, Kind::kAccepted);
    EXPECT_EQ(o.provider, "tencent-b");
  }
}

// ---- Selection and concurrency -------------------------------------------------------------------

// ---- Per-provider rate limits -----------------------------------------------------------

TEST(SmsRateLimit, WhatTheFirstProviderMayNotTakeNowGoesToTheNext) {
  Clock clock;
  FakeHttp http([](const HttpRequest& r) { return is_aliyun(r) ? aliyun_ok("BIZ-R") : tencent_answer(r); });
  SmsConfig cfg;
  cfg.providers = {aliyun_config(), tencent_config()};
  auto o = test_options(clock);
  std::map<std::string, std::size_t> tokens = {{"aliyun-a", 2}, {"tencent-b", 10}};
  std::vector<std::string> asked;
  o.take_tokens = [&](const std::string& provider, double, std::size_t wanted) {
    asked.push_back(provider);
    const std::size_t n = std::min(wanted, tokens[provider]);
    tokens[provider] -= n;
    return n;
  };
  SmsChannel channel(cfg, http, fake_env, o);
  const auto out = channel.send(broadcast(5));
  ASSERT_EQ(out.size(), 5u);
  int at_aliyun = 0;
  int at_tencent = 0;
  for (const auto& x : out) {
    EXPECT_EQ(x.kind, Kind::kAccepted);
    (x.provider == "aliyun-a" ? at_aliyun : at_tencent)++;
  }
  EXPECT_EQ(at_aliyun, 2) << "aliyun-a had 2 tokens";
  EXPECT_EQ(at_tencent, 3);
  EXPECT_EQ(tokens["aliyun-a"], 0u);
  EXPECT_EQ(tokens["tencent-b"], 7u);
  const auto reqs = http.requests();
  ASSERT_EQ(reqs.size(), 2u) << "one request per provider";
  EXPECT_EQ(parse_form(reqs[0].body)["PhoneNumbers"], "13800000110,13800000111");
}

TEST(SmsRateLimit, WhenNoProviderMayTakeItTheOutcomeIsRetryableRateLimited) {
  Clock clock;
  FakeHttp http([](const HttpRequest& r) { return is_aliyun(r) ? aliyun_ok() : tencent_answer(r); });
  SmsConfig cfg;
  cfg.providers = {aliyun_config(), tencent_config()};
  auto o = test_options(clock);
  o.take_tokens = [](const std::string&, double, std::size_t) { return std::size_t{0}; };
  SmsChannel channel(cfg, http, fake_env, o);
  const Delivery d = delivery("sd-rl-1", "+8613800000077");
  const auto out = channel.send(std::span(&d, 1));
  EXPECT_EQ(out[0].kind, Kind::kRetryable);
  EXPECT_EQ(out[0].code, "rate_limited");
  EXPECT_NE(out[0].message.find("aliyun-a rate_limited; tencent-b rate_limited"), std::string::npos) << out[0].message;
  EXPECT_TRUE(http.requests().empty()) << "nothing goes out over the limit";
}

// The first provider's account needs an operator (permanent for it, so the delivery goes on), and the second is
// only at its rate limit, or shedding traffic: the second may take it later, so the delivery is retried, not failed.
TEST(SmsRateLimit, APermanentProviderFaultThenABackupThatOnlySaysLaterIsRetryable) {
  Clock clock;
  FakeHttp http(
      [](const HttpRequest& r) { return is_aliyun(r) ? aliyun_code("isv.AMOUNT_NOT_ENOUGH") : tencent_answer(r); });
  SmsConfig cfg;
  cfg.providers = {aliyun_config(), tencent_config()};
  auto o = test_options(clock);
  o.take_tokens = [](const std::string& provider, double, std::size_t wanted) {
    return provider == "tencent-b" ? std::size_t{0} : wanted;
  };
  SmsChannel limited(cfg, http, fake_env, o);
  const Delivery d = delivery("sd-rl-2", "+8613800000078");
  auto out = limited.send(std::span(&d, 1));
  EXPECT_EQ(out[0].kind, Kind::kRetryable) << out[0].code << " " << out[0].message;
  EXPECT_EQ(out[0].code, "isv.AMOUNT_NOT_ENOUGH");
  EXPECT_NE(out[0].message.find("tencent-b rate_limited"), std::string::npos) << out[0].message;

  SmsChannel shedding(cfg, http, fake_env, test_options(clock));
  shedding.report_receipt_silence("tencent-b");  // its circuit is open
  out = shedding.send(std::span(&d, 1));
  EXPECT_EQ(out[0].kind, Kind::kRetryable) << out[0].code << " " << out[0].message;
  EXPECT_NE(out[0].message.find("tencent-b circuit_open"), std::string::npos) << out[0].message;
}

// A half-open circuit's trial that sends nothing (no rate-limit token for it) does not hold the circuit half-open
// for ever: the next send is the trial.
TEST(SmsCircuit, ATrialThatSendsNothingLetsTheNextSendTry) {
  Clock clock;
  FakeHttp http([](const HttpRequest& r) { return is_aliyun(r) ? aliyun_ok() : tencent_answer(r); });
  SmsConfig cfg;
  cfg.providers = {aliyun_config(), tencent_config()};
  cfg.circuit_open_s = 30;
  auto o = test_options(clock);
  std::atomic<bool> aliyun_tokens{false};
  o.take_tokens = [&](const std::string& provider, double, std::size_t wanted) {
    return provider == "aliyun-a" && !aliyun_tokens ? std::size_t{0} : wanted;
  };
  SmsChannel channel(cfg, http, fake_env, o);
  channel.report_receipt_silence("aliyun-a");
  clock.now += 30'000;
  const Delivery d = delivery("sd-trial", "+8613800000079");
  EXPECT_EQ(channel.send(std::span(&d, 1))[0].provider, "tencent-b") << "the trial got no token";
  aliyun_tokens = true;
  http.clear();
  EXPECT_EQ(channel.send(std::span(&d, 1))[0].provider, "aliyun-a") << "the next send is the trial";
  EXPECT_EQ(channel.stats()[0].circuit, "closed");
}

TEST(SmsSelection, EqualPrioritiesShareByWeight) {
  Clock clock;
  FakeHttp http([](const HttpRequest&) { return aliyun_ok(); });
  SmsConfig cfg;
  cfg.providers = {aliyun_config("aliyun-a", "ALI"), aliyun_config("aliyun-c", "ALI2")};
  cfg.providers[0].weight = 30;
  cfg.providers[1].weight = 70;
  std::uint64_t draw = 0;
  auto opts = test_options(clock);
  opts.random = [&draw] { return draw; };
  SmsChannel channel(cfg, http, fake_env, opts);
  const Delivery d = delivery("sd-w", "+8613800000013");
  draw = 29;  // < 30: the first
  EXPECT_EQ(channel.send(std::span(&d, 1))[0].provider, "aliyun-a");
  draw = 30;  // >= 30: the second
  EXPECT_EQ(channel.send(std::span(&d, 1))[0].provider, "aliyun-c");
  draw = 99;
  EXPECT_EQ(channel.send(std::span(&d, 1))[0].provider, "aliyun-c");
}

TEST(SmsSelection, LowerPriorityNumberFirstWhateverTheOrderInTheConfig) {
  Clock clock;
  FakeHttp http([](const HttpRequest& r) { return is_aliyun(r) ? aliyun_ok() : tencent_answer(r); });
  SmsConfig cfg;
  cfg.providers = {tencent_config(), aliyun_config()};
  cfg.providers[0].priority = 1;
  cfg.providers[1].priority = 5;
  SmsChannel channel(cfg, http, fake_env, test_options(clock));
  const Delivery d = delivery("sd-p", "+8613800000014");
  EXPECT_EQ(channel.send(std::span(&d, 1))[0].provider, "tencent-b");
}

TEST(SmsConcurrency, RequestsInFlightStayWithinTheProvidersLimit) {
  Clock clock;
  // The first request waits (up to 5 s) for a second to be in flight with it, so the limit is reached for sure;
  // each then takes 20 ms, so more than the limit at once would be seen.
  const FakeHttp* self = nullptr;
  FakeHttp http([&self](const HttpRequest&) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (self->max_in_flight() < 2 && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    return aliyun_ok();
  });
  self = &http;
  SmsConfig cfg;
  cfg.providers = {aliyun_config()};
  cfg.providers[0].concurrency = 2;
  auto opts = test_options(clock);
  opts.max_parallel = 8;
  std::vector<Delivery> ds;
  for (int i = 0; i < 12; ++i) {
    ds.push_back(delivery("sd-cc-" + std::to_string(i), "+86138000002" + std::to_string(10 + i)));
    ds.back().template_name = i % 2 == 0 ? "summons" : "notice";  // two templates: two groups
  }
  cfg.providers[0].batch_max = 1;  // one number per request: 12 requests
  SmsChannel channel(cfg, http, fake_env, opts);
  const auto out = channel.send(ds);
  ASSERT_EQ(out.size(), 12u);
  for (const auto& o : out) EXPECT_EQ(o.kind, Kind::kAccepted);
  EXPECT_EQ(http.requests().size(), 12u);
  EXPECT_EQ(http.max_in_flight(), 2) << "at most the provider's limit at once, and the limit used";
}

// ---- Start-up ------------------------------------------------------------------------------------

TEST(SmsStartup, MissingSecretNamesTheVariable) {
  FakeHttp http;
  SmsConfig cfg;
  cfg.providers = {aliyun_config("aliyun-x", "NOPE")};
  try {
    SmsChannel channel(cfg, http, fake_env);
    FAIL() << "expected StartupError";
  } catch (const StartupError& e) {
    EXPECT_NE(std::string(e.what()).find("NOPE_ACCESS_KEY_ID"), std::string::npos) << e.what();
  }
  cfg.providers = {tencent_config()};
  cfg.providers[0].credentials_env = "ALI";  // has no _SECRET_ID
  try {
    SmsChannel channel(cfg, http, fake_env);
    FAIL() << "expected StartupError";
  } catch (const StartupError& e) {
    EXPECT_NE(std::string(e.what()).find("ALI_SECRET_ID"), std::string::npos) << e.what();
  }
}

TEST(SmsStartup, BadProviderConfigIsRefused) {
  FakeHttp http;
  SmsConfig cfg;
  cfg.providers = {aliyun_config()};
  cfg.providers[0].kind = "huawei";
  EXPECT_THROW(SmsChannel(cfg, http, fake_env), StartupError);
  cfg.providers = {tencent_config()};
  cfg.providers[0].region = "cn-hangzhou";
  EXPECT_THROW(SmsChannel(cfg, http, fake_env), StartupError);
  cfg.providers = {aliyun_config(), aliyun_config()};
  EXPECT_THROW(SmsChannel(cfg, http, fake_env), StartupError);
  cfg.providers = {};
  EXPECT_THROW(SmsChannel(cfg, http, fake_env), StartupError);
}

TEST(SmsNumbers, E164Normalisation) {
  EXPECT_EQ(to_e164("+8613800000000"), "+8613800000000");
  EXPECT_EQ(to_e164("138 0000-0000"), "+8613800000000");
  EXPECT_EQ(to_e164("0085261234567"), "+85261234567");
}

}  // namespace
}  // namespace songda::sms
