// Tencent protocol: the published TC3 vector byte for byte, the SendSms
// request, answer and callback parsers, and the code classification table.
#include "channels/sms/tencent_protocol.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace songda::sms::tencent {
namespace {

using Kind = SendOutcome::Kind;

// ---- TC3-HMAC-SHA256: the published vector ----------------------------------------------

Tc3Input vector_input() {
  Tc3Input in;
  in.secret_id = "AKID**********************0123456789EXAMPLE";
  in.secret_key = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE";
  in.service = "cvm";
  in.host = "cvm.tencentcloudapi.com";
  in.content_type = "application/json; charset=utf-8";
  in.timestamp = 1551113065;
  in.payload = R"({"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]})";
  return in;
}

TEST(TencentTc3, PublishedPayloadHash) {
  EXPECT_EQ(tc3_sign(vector_input()).hashed_payload,
            "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064");
}

TEST(TencentTc3, PublishedCanonicalRequest) {
  const Tc3Signature s = tc3_sign(vector_input());
  EXPECT_EQ(s.canonical_request,
            "POST\n/\n\ncontent-type:application/json; charset=utf-8\nhost:cvm.tencentcloudapi.com\n\n"
            "content-type;host\n35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064");
  EXPECT_EQ(s.hashed_canonical_request, "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031");
}

TEST(TencentTc3, PublishedAuthorization) {
  const Tc3Signature s = tc3_sign(vector_input());
  EXPECT_EQ(s.date, "2019-02-25");
  EXPECT_EQ(s.credential_scope, "2019-02-25/cvm/tc3_request");
  EXPECT_EQ(s.string_to_sign,
            "TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n"
            "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031");
  EXPECT_EQ(s.authorization,
            "TC3-HMAC-SHA256 Credential=AKID**********************0123456789EXAMPLE/2019-02-25/cvm/tc3_request, "
            "SignedHeaders=content-type;host, "
            "Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168");
}

TEST(TencentTc3, CredentialDateIsTheUtcDateOfTheTimestamp) {
  auto in = vector_input();
  in.timestamp = 1551139199;  // 2019-02-25T23:59:59Z (already the 26th in Beijing)
  EXPECT_EQ(tc3_sign(in).date, "2019-02-25");
  in.timestamp = 1551139200;
  EXPECT_EQ(tc3_sign(in).date, "2019-02-26");
}

// ---- SendSms request ----------------------------------------------------------------------

SendSmsRequest request() {
  SendSmsRequest r;
  r.phone_numbers = {"+8613800000000", "+8613900000000"};
  r.sms_sdk_app_id = "1400006666";
  r.template_id = "449739";
  r.sign_name = "某某法院";
  r.template_params = {"(2026)京0105民初123号", "2026-12-01"};
  r.session_context = "sd-0123456789abcdef0123456789abcdef";
  return r;
}

TEST(TencentSendSms, BodyCarriesTheDocumentedFields) {
  const auto body = send_sms_body(request());
  ASSERT_TRUE(body.ok()) << body.error().message;
  const auto j = nlohmann::json::parse(*body);
  EXPECT_EQ(j["PhoneNumberSet"], nlohmann::json({"+8613800000000", "+8613900000000"}));
  EXPECT_EQ(j["SmsSdkAppId"], "1400006666");
  EXPECT_EQ(j["TemplateId"], "449739");
  EXPECT_EQ(j["SignName"], "某某法院");
  EXPECT_EQ(j["TemplateParamSet"], nlohmann::json({"(2026)京0105民初123号", "2026-12-01"}));
  EXPECT_EQ(j["SessionContext"], "sd-0123456789abcdef0123456789abcdef");
  EXPECT_FALSE(j.contains("ExtendCode"));
  EXPECT_FALSE(j.contains("SenderId"));
}

TEST(TencentSendSms, AtMost200NumbersInE164) {
  auto r = request();
  r.phone_numbers.assign(200, "+8613800000000");
  EXPECT_TRUE(send_sms_body(r).ok());
  r.phone_numbers.emplace_back("+8613800000001");
  const auto over = send_sms_body(r);
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.error().code, "invalid_request");
  r.phone_numbers = {"13800000000"};
  EXPECT_FALSE(send_sms_body(r).ok());
  r.phone_numbers.clear();
  EXPECT_FALSE(send_sms_body(r).ok());
}

TEST(TencentSendSms, SessionContextUnder512Bytes) {
  auto r = request();
  r.session_context.assign(511, 'x');
  EXPECT_TRUE(send_sms_body(r).ok());
  r.session_context.assign(512, 'x');
  EXPECT_FALSE(send_sms_body(r).ok());
}

TEST(TencentSendSms, SignedRequestHasTheTcHeaders) {
  const auto req = build_send_sms({"AKIDtest", "secret"}, request(), "ap-guangzhou", 1764291600);
  ASSERT_TRUE(req.ok()) << req.error().message;
  EXPECT_EQ(req->method, "POST");
  EXPECT_EQ(req->host, "sms.tencentcloudapi.com");
  EXPECT_EQ(req->path, "/");
  std::map<std::string, std::string> h(req->headers.begin(), req->headers.end());
  EXPECT_EQ(h["X-TC-Action"], "SendSms");
  EXPECT_EQ(h["X-TC-Version"], "2021-01-11");
  EXPECT_EQ(h["X-TC-Timestamp"], "1764291600");
  EXPECT_EQ(h["X-TC-Region"], "ap-guangzhou");
  EXPECT_EQ(h["Host"], "sms.tencentcloudapi.com");
  EXPECT_EQ(h["Content-Type"], "application/json; charset=utf-8");
  Tc3Input in;
  in.secret_id = "AKIDtest";
  in.secret_key = "secret";
  in.service = "sms";
  in.host = "sms.tencentcloudapi.com";
  in.timestamp = 1764291600;
  in.payload = req->body;
  EXPECT_EQ(h["Authorization"], tc3_sign(in).authorization);
  EXPECT_NE(h["Authorization"].find("/2025-11-28/sms/tc3_request, SignedHeaders=content-type;host, "),
            std::string::npos);
}

TEST(TencentSendSms, RefusesMissingCredentialsOrRegion) {
  EXPECT_FALSE(build_send_sms({"", "k"}, request(), "ap-guangzhou", 1).ok());
  EXPECT_FALSE(build_send_sms({"id", "k"}, request(), "", 1).ok());
}

// ---- Answers --------------------------------------------------------------------------------

TEST(TencentResponse, ParsesSendStatusSet) {
  const auto r = parse_send_sms_response(R"({"Response":{"SendStatusSet":[
      {"SerialNo":"5000:1045710669157053657849499619","PhoneNumber":"+8613800000000","Fee":1,"SessionContext":"sd-1","Code":"Ok","Message":"send success","IsoCode":"CN"},
      {"SerialNo":"","PhoneNumber":"+8613900000000","Fee":0,"SessionContext":"sd-1","Code":"FailedOperation.PhoneNumberInBlacklist","Message":"phone number in blacklist","IsoCode":"CN"}],
      "RequestId":"a0aabda6-cf91-4f3e-a81f-9198114a2279"}})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(r->error.has_value());
  EXPECT_EQ(r->request_id, "a0aabda6-cf91-4f3e-a81f-9198114a2279");
  ASSERT_EQ(r->statuses.size(), 2u);
  EXPECT_EQ(r->statuses[0].serial_no, "5000:1045710669157053657849499619");
  EXPECT_EQ(r->statuses[0].phone_number, "+8613800000000");
  EXPECT_EQ(r->statuses[0].code, "Ok");
  EXPECT_EQ(r->statuses[0].message, "send success");
  EXPECT_EQ(r->statuses[0].fee, 1);
  EXPECT_EQ(r->statuses[0].session_context, "sd-1");
  EXPECT_EQ(r->statuses[0].iso_code, "CN");
  EXPECT_EQ(r->statuses[1].code, "FailedOperation.PhoneNumberInBlacklist");
  EXPECT_EQ(classify(r->statuses[1].code).kind, Kind::kPermanent);
}

TEST(TencentResponse, ParsesRequestError) {
  const auto r = parse_send_sms_response(
      R"({"Response":{"Error":{"Code":"AuthFailure.SignatureFailure","Message":"The provided credentials could not be validated."},"RequestId":"r-1"}})");
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r->error.has_value());
  EXPECT_EQ(r->error->code, "AuthFailure.SignatureFailure");
  EXPECT_EQ(r->error->message, "The provided credentials could not be validated.");
  EXPECT_TRUE(r->statuses.empty());
}

TEST(TencentResponse, RefusesWhatIsNotAnAnswer) {
  EXPECT_EQ(parse_send_sms_response("<html/>").error().code, "invalid_response");
  EXPECT_FALSE(parse_send_sms_response(R"({"Response":{}})").ok());
  EXPECT_FALSE(parse_send_sms_response(R"({"Response":{"SendStatusSet":[{"SerialNo":"x"}]}})").ok());
  EXPECT_FALSE(parse_send_sms_response(R"({"SendStatusSet":[]})").ok());
}

// ---- Status callback ------------------------------------------------------------------------

TEST(TencentCallback, ParsesTheDocumentedSample) {
  const auto b = parse_status_callback(
      R"([{"user_receive_time":"2015-10-17 08:03:04","nationcode":"86","mobile":"13xxxxxxxxx","report_status":"SUCCESS","errmsg":"DELIVRD","description":"用户短信送达成功","sid":"xxxxxx"}])");
  ASSERT_TRUE(b.ok());
  ASSERT_EQ(b->reports.size(), 1u);
  const StatusReport& r = b->reports[0];
  EXPECT_EQ(r.user_receive_time, "2015-10-17 08:03:04");
  EXPECT_EQ(r.receive_time_ms, 1445040184000);  // 2015-10-17T00:03:04Z
  EXPECT_EQ(r.nationcode, "86");
  EXPECT_EQ(r.mobile, "13xxxxxxxxx");
  EXPECT_EQ(r.report_status, "SUCCESS");
  EXPECT_TRUE(r.success);
  EXPECT_EQ(r.errmsg, "DELIVRD");
  EXPECT_EQ(r.description, "用户短信送达成功");
  EXPECT_EQ(r.sid, "xxxxxx");
}

TEST(TencentCallback, FailuresAndBadElements) {
  const auto b = parse_status_callback(R"([
    {"user_receive_time":"2026-11-28 09:00:05","nationcode":"86","mobile":"13800000000","report_status":"FAIL","errmsg":"MK:0001","description":"空号","sid":"s1"},
    {"user_receive_time":"2026-11-28 09:00:05","report_status":"MAYBE","sid":"s2"},
    {"user_receive_time":"2026-11-28 09:00:05","report_status":"SUCCESS"},
    {"user_receive_time":"yesterday","report_status":"SUCCESS","sid":"s4"}
  ])");
  ASSERT_TRUE(b.ok());
  ASSERT_EQ(b->reports.size(), 1u);
  EXPECT_FALSE(b->reports[0].success);
  EXPECT_EQ(b->reports[0].errmsg, "MK:0001");
  EXPECT_EQ(b->rejected.size(), 3u);
  EXPECT_FALSE(parse_status_callback(R"({"sid":"x"})").ok());
}

TEST(TencentCallback, AckIsTheDocumentedAnswer) {
  const auto j = nlohmann::json::parse(status_callback_ack());
  EXPECT_EQ(j["result"], 0);
  EXPECT_EQ(j["errmsg"], "OK");
}

// ---- Classification -------------------------------------------------------------------------

struct CodeCase {
  const char* code;
  Kind kind;
  bool needs_operator;
};

class TencentClassify : public ::testing::TestWithParam<CodeCase> {};

TEST_P(TencentClassify, MapsCode) {
  const CodeCase& c = GetParam();
  const CodeClass got = classify(c.code);
  EXPECT_EQ(got.kind, c.kind) << c.code;
  EXPECT_EQ(got.needs_operator, c.needs_operator) << c.code;
  EXPECT_EQ(got.code, c.code);
}

INSTANTIATE_TEST_SUITE_P(
    Table, TencentClassify,
    ::testing::Values(CodeCase{"Ok", Kind::kAccepted, false},
                      CodeCase{"LimitExceeded.PhoneNumberDailyLimit", Kind::kRetryable, false},
                      CodeCase{"LimitExceeded.PhoneNumberThirtySecondLimit", Kind::kRetryable, false},
                      CodeCase{"LimitExceeded.DeliveryFrequencyLimit", Kind::kRetryable, false},
                      CodeCase{"LimitExceeded.AppDailyLimit", Kind::kRetryable, true},
                      CodeCase{"LimitExceeded.PhoneNumberCountLimit", Kind::kPermanent, false},
                      CodeCase{"LimitExceeded.AppCountryOrRegionInBlacklist", Kind::kPermanent, true},
                      CodeCase{"RequestLimitExceeded", Kind::kRetryable, false},
                      CodeCase{"InternalError.Timeout", Kind::kRetryable, false},
                      CodeCase{"InternalError.SendAndRecvFail", Kind::kRetryable, false},
                      CodeCase{"InternalError.OtherError", Kind::kRetryable, false},
                      CodeCase{"InternalError", Kind::kRetryable, false},
                      CodeCase{"InternalError.RequestTimeException", Kind::kRetryable, true},
                      CodeCase{"InternalError.JsonParseFail", Kind::kPermanent, false},
                      CodeCase{"AuthFailure.SignatureExpire", Kind::kRetryable, true},
                      CodeCase{"AuthFailure.SignatureFailure", Kind::kPermanent, true},
                      CodeCase{"FailedOperation.PhoneNumberInBlacklist", Kind::kPermanent, false},
                      CodeCase{"InvalidParameterValue.IncorrectPhoneNumber", Kind::kPermanent, false},
                      CodeCase{"FailedOperation.InsufficientBalanceInSmsPackage", Kind::kPermanent, true},
                      CodeCase{"FailedOperation.TemplateIncorrectOrUnapproved", Kind::kPermanent, true},
                      CodeCase{"UnauthorizedOperation.SmsSdkAppIdVerifyFail", Kind::kPermanent, true},
                      CodeCase{"InvalidParameter", Kind::kPermanent, false},
                      CodeCase{"FailedOperation.SomethingNew", Kind::kPermanent, false},
                      CodeCase{"", Kind::kPermanent, false}));

// ---- PullSmsSendStatusByPhoneNumber ---------------------------------------------------

TEST(TencentPullStatus, BuildsASignedRequestForOneNumber) {
  PullStatusRequest q;
  q.phone_number = "+8618501234444";
  q.sms_sdk_app_id = "1400006666";
  q.begin_time = 1620734000;
  q.end_time = 1620734200;
  auto r = build_pull_status_by_phone({"AKIDx", "key"}, q, "ap-guangzhou", 1620734200);
  ASSERT_TRUE(r.ok()) << r.error().message;
  std::map<std::string, std::string> h(r->headers.begin(), r->headers.end());
  EXPECT_EQ(h["X-TC-Action"], "PullSmsSendStatusByPhoneNumber");
  EXPECT_EQ(h["X-TC-Version"], "2021-01-11");
  EXPECT_EQ(h["Authorization"].rfind("TC3-HMAC-SHA256 Credential=AKIDx/2021-05-11/sms/tc3_request", 0), 0u)
      << h["Authorization"];
  const auto body = nlohmann::json::parse(r->body);
  EXPECT_EQ(body["PhoneNumber"], "+8618501234444");
  EXPECT_EQ(body["BeginTime"], 1620734000);
  EXPECT_EQ(body["EndTime"], 1620734200);
  EXPECT_EQ(body["SmsSdkAppId"], "1400006666");
  q.phone_number = "18501234444";
  EXPECT_FALSE(build_pull_status_by_phone({"AKIDx", "key"}, q, "ap-guangzhou", 1620734200).ok());
}

TEST(TencentPullStatus, ParsesTheDocumentedAnswer) {
  const auto r = parse_pull_status_response(
      R"({"Response":{"PullSmsSendStatusSet":[{"Description":"DELIVRD","CountryCode":"86","SubscriberNumber":"18501234444",)"
      R"("ReportStatus":"SUCCESS","PhoneNumber":"+8618501234444","SerialNo":"5000:1045710669157053657849499619",)"
      R"("UserReceiveTime":1620734188,"SessionContext":"dlv-1"}],"RequestId":"b5b0d7c9"}})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_FALSE(r->error.has_value());
  ASSERT_EQ(r->statuses.size(), 1u);
  EXPECT_EQ(r->statuses[0].serial_no, "5000:1045710669157053657849499619");
  EXPECT_EQ(r->statuses[0].report_status, "SUCCESS");
  EXPECT_EQ(r->statuses[0].user_receive_time, 1620734188);
  EXPECT_EQ(r->statuses[0].session_context, "dlv-1");
  const auto err = parse_pull_status_response(
      R"({"Response":{"Error":{"Code":"UnauthorizedOperation.SmsSdkAppIdVerifyFail","Message":"no"},"RequestId":"x"}})");
  ASSERT_TRUE(err.ok());
  ASSERT_TRUE(err->error.has_value());
  EXPECT_EQ(err->error->code, "UnauthorizedOperation.SmsSdkAppIdVerifyFail");
  EXPECT_FALSE(parse_pull_status_response(R"({"Response":{}})").ok());
}

}  // namespace
}  // namespace songda::sms::tencent
