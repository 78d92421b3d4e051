// Aliyun protocol: the published vectors of shared/reference/provider-apis.md
// byte for byte, the request builders, the answer and receipt parsers, and the
// code classification table.
#include "channels/sms/aliyun_protocol.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace songda::sms::aliyun {
namespace {

using Kind = SendOutcome::Kind;

// ---- RPC signature v1: the published vector ----------------------------------------------

const Params& vector_params() {
  static const Params p = {
      {"AccessKeyId", "testId"},
      {"Action", "SendSms"},
      {"Format", "XML"},
      {"OutId", "123"},
      {"PhoneNumbers", "15300000001"},
      {"RegionId", "cn-hangzhou"},
      {"SignName", "阿里云短信测试专用"},
      {"SignatureMethod", "HMAC-SHA1"},
      {"SignatureNonce", "45e25e9b-0a6f-4070-8c85-2956eda1b466"},
      {"SignatureVersion", "1.0"},
      {"TemplateCode", "SMS_71390007"},
      {"TemplateParam", R"({"customer":"test"})"},
      {"Timestamp", "2017-07-12T02:42:19Z"},
      {"Version", "2017-05-25"},
  };
  return p;
}

constexpr std::string_view kVectorStringToSign =
    "GET&%2F&AccessKeyId%3DtestId%26Action%3DSendSms%26Format%3DXML%26OutId%3D123%26PhoneNumbers%3D15300000001%"
    "26RegionId%3Dcn-hangzhou%26SignName%3D%25E9%2598%25BF%25E9%2587%258C%25E4%25BA%2591%25E7%259F%25AD%25E4%25BF%"
    "25A1%25E6%25B5%258B%25E8%25AF%2595%25E4%25B8%2593%25E7%2594%25A8%26SignatureMethod%3DHMAC-SHA1%"
    "26SignatureNonce%3D45e25e9b-0a6f-4070-8c85-2956eda1b466%26SignatureVersion%3D1.0%26TemplateCode%3DSMS_"
    "71390007%26TemplateParam%3D%257B%2522customer%2522%253A%2522test%2522%257D%26Timestamp%3D2017-07-12T02%"
    "253A42%253A19Z%26Version%3D2017-05-25";

TEST(AliyunRpcV1, PublishedStringToSign) { EXPECT_EQ(rpc_string_to_sign("GET", vector_params()), kVectorStringToSign); }

TEST(AliyunRpcV1, PublishedSignature) {
  // Key = AccessKeySecret + "&" = "testSecret&".
  EXPECT_EQ(rpc_signature("testSecret", kVectorStringToSign), "zJDF+Lrzhj/ThnlvIToysFRq6t4=");
}

TEST(AliyunRpcV1, SignedQueryPutsEncodedSignatureFirst) {
  const std::string q = signed_rpc_query("GET", vector_params(), "testSecret");
  EXPECT_EQ(q.rfind("Signature=zJDF%2BLrzhj%2FThnlvIToysFRq6t4%3D&AccessKeyId=testId&Action=SendSms&", 0), 0u) << q;
  EXPECT_NE(q.find("&SignName=%E9%98%BF%E9%87%8C%E4%BA%91%E7%9F%AD%E4%BF%A1%E6%B5%8B%E8%AF%95%E4%B8%93%E7%94%A8&"),
            std::string::npos);
}

TEST(AliyunRpcV1, BuilderReproducesThePublishedVector) {
  const Credentials creds{"testId", "testSecret"};
  SendSmsRequest req;
  req.phone_numbers = {"15300000001"};
  req.sign_name = "阿里云短信测试专用";
  req.template_code = "SMS_71390007";
  req.template_param = {{"customer", "test"}};
  req.out_id = "123";
  RpcContext ctx;
  ctx.method = "GET";
  ctx.format = "XML";
  ctx.region_id = "cn-hangzhou";
  ctx.signature_nonce = "45e25e9b-0a6f-4070-8c85-2956eda1b466";
  ctx.unix_ms = 1499827339000;  // 2017-07-12T02:42:19Z

  const auto params = send_sms_params(creds, req, ctx);
  ASSERT_TRUE(params.ok()) << params.error().message;
  EXPECT_EQ(*params, vector_params());

  const auto built = build_send_sms(creds, req, ctx);
  ASSERT_TRUE(built.ok());
  EXPECT_EQ(built->method, "GET");
  EXPECT_EQ(built->host, "dysmsapi.aliyuncs.com");
  EXPECT_EQ(built->query, signed_rpc_query("GET", vector_params(), "testSecret"));
}

TEST(AliyunRpcV1, PercentEncodingFollowsRfc3986) {
  EXPECT_EQ(percent_encode("a b*c~d"), "a%20b%2Ac~d");
  EXPECT_EQ(percent_encode("A-Z_a.z0~9"), "A-Z_a.z0~9");
  EXPECT_EQ(percent_encode("+/=&:,"), "%2B%2F%3D%26%3A%2C");
  EXPECT_EQ(percent_encode("\xE9\x98\xBF"), "%E9%98%BF");  // upper-case hex
  EXPECT_EQ(percent_encode(""), "");
}

// ---- ACS3-HMAC-SHA256: the published vector ----------------------------------------------

TEST(AliyunAcs3, PublishedVector) {
  Acs3Request req;
  req.method = "POST";
  req.canonical_uri = "/";
  req.query = {{"ImageId", "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd"}, {"RegionId", "cn-shanghai"}};
  req.headers = {
      {"host", "ecs.cn-shanghai.aliyuncs.com"},
      {"x-acs-action", "RunInstances"},
      {"x-acs-version", "2014-05-26"},
      {"x-acs-date", "2023-10-26T10:22:32Z"},
      {"x-acs-signature-nonce", "3156853299f313e23d1673dc12e1703d"},
      {"x-acs-content-sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
  };
  const Acs3Signature s = acs3_sign(req, "YourAccessKeyId", "YourAccessKeySecret");
  EXPECT_EQ(s.hashed_canonical_request, "7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259")
      << s.canonical_request;
  EXPECT_EQ(s.signature, "06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0");
  EXPECT_EQ(s.signed_headers, "host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version");
  EXPECT_EQ(s.authorization,
            "ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders=host;x-acs-action;x-acs-content-sha256;"
            "x-acs-date;x-acs-signature-nonce;x-acs-version,"
            "Signature=06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0");
}

TEST(AliyunAcs3, HeaderHelperMatchesTheVectorAndIgnoresUnsignedHeaders) {
  Acs3Request req;
  req.query = {{"ImageId", "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd"}, {"RegionId", "cn-shanghai"}};
  req.headers = acs3_headers("ecs.cn-shanghai.aliyuncs.com", "RunInstances", "2014-05-26", 1698315752000,
                             "3156853299f313e23d1673dc12e1703d", "");
  req.headers.emplace_back("User-Agent", "songda");  // not signed
  const Acs3Signature s = acs3_sign(req, "id", "YourAccessKeySecret");
  EXPECT_EQ(s.hashed_canonical_request, "7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259");
  EXPECT_EQ(s.signature, "06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0");
}

TEST(AliyunAcs3, HeaderNamesAreLowercasedAndValuesTrimmed) {
  Acs3Request a;
  a.headers = {{"Host", " h.example "}, {"X-Acs-Action", "A"}};
  Acs3Request b;
  b.headers = {{"host", "h.example"}, {"x-acs-action", "A"}};
  EXPECT_EQ(acs3_sign(a, "id", "k").signature, acs3_sign(b, "id", "k").signature);
}

// ---- Request builders ---------------------------------------------------------------------

Credentials creds() { return {"id", "secret"}; }

RpcContext ctx() {
  RpcContext c;
  c.signature_nonce = "nonce-1";
  c.unix_ms = 1499827339000;
  return c;
}

SendSmsRequest one_number() {
  SendSmsRequest r;
  r.phone_numbers = {"13800000000"};
  r.sign_name = "某某法院";
  r.template_code = "SMS_1";
  r.template_param = {{"case", "(2026)京0105民初123号"}, {"date", "2026-12-01"}};
  r.out_id = "sd-0123456789abcdef0123456789abcdef";
  return r;
}

TEST(AliyunSendSms, CarriesEveryDocumentedParameter) {
  const auto p = send_sms_params(creds(), one_number(), ctx());
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->at("Action"), "SendSms");
  EXPECT_EQ(p->at("AccessKeyId"), "id");
  EXPECT_EQ(p->at("Format"), "JSON");
  EXPECT_EQ(p->at("RegionId"), "cn-hangzhou");
  EXPECT_EQ(p->at("SignatureMethod"), "HMAC-SHA1");
  EXPECT_EQ(p->at("SignatureNonce"), "nonce-1");
  EXPECT_EQ(p->at("SignatureVersion"), "1.0");
  EXPECT_EQ(p->at("Timestamp"), "2017-07-12T02:42:19Z");
  EXPECT_EQ(p->at("Version"), "2017-05-25");
  EXPECT_EQ(p->at("PhoneNumbers"), "13800000000");
  EXPECT_EQ(p->at("SignName"), "某某法院");
  EXPECT_EQ(p->at("TemplateCode"), "SMS_1");
  EXPECT_EQ(p->at("OutId"), "sd-0123456789abcdef0123456789abcdef");
  const auto tp = nlohmann::json::parse(p->at("TemplateParam"));
  EXPECT_EQ(tp["case"], "(2026)京0105民初123号");
  EXPECT_EQ(tp["date"], "2026-12-01");
  EXPECT_EQ(p->count("Signature"), 0u);
}

TEST(AliyunSendSms, PostIsTheDefaultAndSignsWithPost) {
  const auto built = build_send_sms(creds(), one_number(), ctx());
  ASSERT_TRUE(built.ok());
  EXPECT_EQ(built->method, "POST");
  const auto p = send_sms_params(creds(), one_number(), ctx());
  const std::string sig = rpc_signature("secret", rpc_string_to_sign("POST", *p));
  EXPECT_EQ(built->query, "Signature=" + percent_encode(sig) + "&" + canonical_query(*p));
}

TEST(AliyunSendSms, TemplateParamOmittedWhenEmpty) {
  auto r = one_number();
  r.template_param.clear();
  const auto p = send_sms_params(creds(), r, ctx());
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->count("TemplateParam"), 0u);
}

TEST(AliyunSendSms, JoinsUpTo1000NumbersAndRefusesMore) {
  auto r = one_number();
  r.phone_numbers.assign(1000, "13800000000");
  const auto p = send_sms_params(creds(), r, ctx());
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->at("PhoneNumbers").size(), 1000u * 11 + 999);
  r.phone_numbers.emplace_back("13900000000");
  const auto over = send_sms_params(creds(), r, ctx());
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.error().code, "invalid_request");
  EXPECT_FALSE(over.error().retryable);
}

TEST(AliyunSendSms, RefusesIncompleteRequests) {
  auto r = one_number();
  r.phone_numbers.clear();
  EXPECT_FALSE(send_sms_params(creds(), r, ctx()).ok());
  r = one_number();
  r.phone_numbers = {"138,139"};
  EXPECT_FALSE(send_sms_params(creds(), r, ctx()).ok());
  r = one_number();
  r.out_id.clear();
  EXPECT_FALSE(send_sms_params(creds(), r, ctx()).ok());
  r = one_number();
  r.out_id.assign(256, 'x');
  EXPECT_FALSE(send_sms_params(creds(), r, ctx()).ok());
  r = one_number();
  r.sign_name.clear();
  EXPECT_FALSE(send_sms_params(creds(), r, ctx()).ok());
  auto c = ctx();
  c.signature_nonce.clear();
  EXPECT_FALSE(send_sms_params(creds(), one_number(), c).ok());
  EXPECT_FALSE(send_sms_params(Credentials{"id", ""}, one_number(), ctx()).ok());
}

TEST(AliyunSendBatchSms, BuildsParallelJsonArrays) {
  SendBatchSmsRequest r;
  r.template_code = "SMS_2";
  r.out_id = "sd-batch";
  r.items = {{"13800000000", "法院甲", {{"name", "张三"}}}, {"13900000000", "法院乙", {{"name", "李四"}}}};
  const auto p = send_batch_sms_params(creds(), r, ctx());
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->at("Action"), "SendBatchSms");
  EXPECT_EQ(p->at("PhoneNumberJson"), R"(["13800000000","13900000000"])");
  EXPECT_EQ(nlohmann::json::parse(p->at("SignNameJson")), nlohmann::json({"法院甲", "法院乙"}));
  const auto params = nlohmann::json::parse(p->at("TemplateParamJson"));
  ASSERT_EQ(params.size(), 2u);
  EXPECT_EQ(params[1]["name"], "李四");
  EXPECT_EQ(p->at("TemplateCode"), "SMS_2");
  EXPECT_EQ(p->at("OutId"), "sd-batch");
  EXPECT_TRUE(build_send_batch_sms(creds(), r, ctx()).ok());
}

TEST(AliyunSendBatchSms, TakesAtMost100Numbers) {
  SendBatchSmsRequest r;
  r.template_code = "SMS_2";
  r.out_id = "sd-batch";
  r.items.assign(100, BatchItem{"13800000000", "法院", {}});
  EXPECT_TRUE(send_batch_sms_params(creds(), r, ctx()).ok());
  r.items.push_back(BatchItem{"13800000000", "法院", {}});
  EXPECT_FALSE(send_batch_sms_params(creds(), r, ctx()).ok());
  r.items.clear();
  EXPECT_FALSE(send_batch_sms_params(creds(), r, ctx()).ok());
}

// ---- Answers --------------------------------------------------------------------------------

TEST(AliyunResponse, ParsesSuccess) {
  const auto r = parse_send_sms_response(
      R"({"Message":"OK","RequestId":"F655A8D5-B967-440B-8683-DAD6FF8DE990","Code":"OK","BizId":"900619746936498440^0"})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->code, "OK");
  EXPECT_EQ(r->message, "OK");
  EXPECT_EQ(r->biz_id, "900619746936498440^0");
  EXPECT_EQ(r->request_id, "F655A8D5-B967-440B-8683-DAD6FF8DE990");
}

TEST(AliyunResponse, ParsesErrorAnswersVerbatim) {
  const auto r = parse_send_sms_response(
      R"({"Message":"触发天级流控Permits:10","RequestId":"C0A0BE93","Code":"isv.BUSINESS_LIMIT_CONTROL"})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->code, "isv.BUSINESS_LIMIT_CONTROL");
  EXPECT_EQ(r->message, "触发天级流控Permits:10");
  EXPECT_TRUE(r->biz_id.empty());
}

TEST(AliyunResponse, RefusesWhatIsNotAnAnswer) {
  EXPECT_EQ(parse_send_sms_response("<html>502</html>").error().code, "invalid_response");
  EXPECT_FALSE(parse_send_sms_response("[]").ok());
  EXPECT_FALSE(parse_send_sms_response(R"({"Message":"no code"})").ok());
  EXPECT_FALSE(parse_send_sms_response(R"({"Code":7})").ok());
}

// ---- SmsReport ------------------------------------------------------------------------------

TEST(AliyunSmsReport, ParsesTheDocumentedSample) {
  const auto b = parse_sms_report(
      R"([{"phone_number":"1381111****","send_time":"2017-01-01 00:00:00","report_time":"2017-01-01 00:00:00","success":true,"err_code":"DELIVERED","err_msg":"用户接收成功","sms_size":"1","biz_id":"12345********","out_id":"67890**"}])");
  ASSERT_TRUE(b.ok());
  ASSERT_EQ(b->reports.size(), 1u);
  EXPECT_TRUE(b->rejected.empty());
  const SmsReport& r = b->reports[0];
  EXPECT_EQ(r.phone_number, "1381111****");
  EXPECT_EQ(r.send_time, "2017-01-01 00:00:00");
  EXPECT_EQ(r.send_time_ms, 1483200000000);  // 2016-12-31T16:00:00Z
  EXPECT_EQ(r.report_time_ms, 1483200000000);
  EXPECT_TRUE(r.success);
  EXPECT_EQ(r.err_code, "DELIVERED");
  EXPECT_EQ(r.err_msg, "用户接收成功");
  EXPECT_EQ(r.sms_size, 1);
  EXPECT_EQ(r.biz_id, "12345********");
  EXPECT_EQ(r.out_id, "67890**");
}

TEST(AliyunSmsReport, SeveralReportsPerPushAndBadOnesSetAside) {
  const auto b = parse_sms_report(R"([
    {"phone_number":"13800000000","send_time":"2026-11-28 09:00:00","report_time":"2026-11-28 09:00:07","success":false,"err_code":"MK:0000","err_msg":"UNDELIV","sms_size":2,"biz_id":"b1","out_id":"sd-1"},
    {"phone_number":"13800000001","send_time":"2026-11-28 25:00:00","report_time":"2026-11-28 09:00:07","success":true,"err_code":"DELIVERED","err_msg":"","sms_size":"1","biz_id":"b2","out_id":"sd-2"},
    "junk",
    {"phone_number":"13800000002","send_time":"2026-11-28 09:00:00","report_time":"2026-11-28 09:00:09","success":"yes","biz_id":"b3"},
    {"phone_number":"13800000003","send_time":"2026-11-28 09:00:00","report_time":"2026-11-28 09:00:09","success":true,"err_code":"DELIVERED","sms_size":"1","biz_id":"b4","out_id":"sd-4"}
  ])");
  ASSERT_TRUE(b.ok());
  ASSERT_EQ(b->reports.size(), 2u);
  EXPECT_EQ(b->reports[0].out_id, "sd-1");
  EXPECT_FALSE(b->reports[0].success);
  EXPECT_EQ(b->reports[0].err_code, "MK:0000");
  EXPECT_EQ(b->reports[0].sms_size, 2);
  EXPECT_EQ(b->reports[1].out_id, "sd-4");
  ASSERT_EQ(b->rejected.size(), 3u);
  EXPECT_EQ(b->rejected[0].rfind("[1]:", 0), 0u);
  EXPECT_EQ(b->rejected[1].rfind("[2]:", 0), 0u);
  EXPECT_EQ(b->rejected[2].rfind("[3]:", 0), 0u);
}

TEST(AliyunSmsReport, RefusesANonArrayPush) {
  EXPECT_EQ(parse_sms_report(R"({"phone_number":"1"})").error().code, "invalid_receipt");
  EXPECT_FALSE(parse_sms_report("not json").ok());
  EXPECT_TRUE(parse_sms_report("[]").ok());
}

TEST(AliyunSmsReport, AckIsTheDocumentedAnswer) {
  const auto j = nlohmann::json::parse(sms_report_ack());
  EXPECT_EQ(j["code"], 0);
  EXPECT_EQ(j["msg"], "接收成功");
}

// ---- Classification -------------------------------------------------------------------------

struct CodeCase {
  const char* code;
  Kind kind;
  bool needs_operator;
};

class AliyunClassify : public ::testing::TestWithParam<CodeCase> {};

TEST_P(AliyunClassify, MapsCode) {
  const CodeCase& c = GetParam();
  const CodeClass got = classify(c.code);
  EXPECT_EQ(got.kind, c.kind) << c.code;
  EXPECT_EQ(got.needs_operator, c.needs_operator) << c.code;
  EXPECT_EQ(got.code, c.code);  // verbatim
  EXPECT_FALSE(got.note.empty());
}

INSTANTIATE_TEST_SUITE_P(Table, AliyunClassify,
                         ::testing::Values(CodeCase{"OK", Kind::kAccepted, false},
                                           CodeCase{"isv.BUSINESS_LIMIT_CONTROL", Kind::kRetryable, false},
                                           CodeCase{"Throttling", Kind::kRetryable, false},
                                           CodeCase{"Throttling.User", Kind::kRetryable, false},
                                           CodeCase{"Throttling.Api", Kind::kRetryable, false},
                                           CodeCase{"isp.SYSTEM_ERROR", Kind::kRetryable, false},
                                           CodeCase{"isp.GATEWAY_ERROR", Kind::kRetryable, false},
                                           CodeCase{"ServiceUnavailable", Kind::kRetryable, false},
                                           CodeCase{"SignatureNonceUsed", Kind::kRetryable, false},
                                           CodeCase{"InvalidTimeStamp.Expired", Kind::kRetryable, true},
                                           CodeCase{"isv.DAY_LIMIT_CONTROL", Kind::kRetryable, true},
                                           CodeCase{"isv.MONTH_LIMIT_CONTROL", Kind::kPermanent, true},
                                           CodeCase{"isv.AMOUNT_NOT_ENOUGH", Kind::kPermanent, true},
                                           CodeCase{"isv.OUT_OF_SERVICE", Kind::kPermanent, true},
                                           CodeCase{"isv.MOBILE_NUMBER_ILLEGAL", Kind::kPermanent, false},
                                           CodeCase{"isv.MOBILE_COUNT_OVER_LIMIT", Kind::kPermanent, false},
                                           CodeCase{"isv.TEMPLATE_MISSING_PARAMETERS", Kind::kPermanent, true},
                                           CodeCase{"isv.INVALID_JSON_PARAM", Kind::kPermanent, false},
                                           CodeCase{"isv.BLACK_KEY_CONTROL_LIMIT", Kind::kPermanent, true},
                                           CodeCase{"isv.SMS_TEMPLATE_ILLEGAL", Kind::kPermanent, true},
                                           CodeCase{"isv.SMS_SIGNATURE_ILLEGAL", Kind::kPermanent, true},
                                           CodeCase{"isp.RAM_PERMISSION_DENY", Kind::kPermanent, true},
                                           CodeCase{"SignatureDoesNotMatch", Kind::kPermanent, true},
                                           CodeCase{"InvalidAccessKeyId.NotFound", Kind::kPermanent, true},
                                           CodeCase{"MissingPhoneNumbers", Kind::kPermanent, false},
                                           CodeCase{"isv.SOMETHING_NEW", Kind::kPermanent, false},
                                           CodeCase{"", Kind::kPermanent, false}));

TEST(AliyunClassify, UnknownCodesArePermanentAndVerbatim) {
  const CodeClass c = classify("isv.Never_Seen.Before");
  EXPECT_EQ(c.kind, Kind::kPermanent);
  EXPECT_EQ(c.code, "isv.Never_Seen.Before");
}

// ---- QuerySendDetails -------------------------------------------------------------------

TEST(AliyunQuerySendDetails, BuildsASignedQueryForOneNumberAndDay) {
  RpcContext ctx;
  ctx.signature_nonce = "nonce-1";
  ctx.unix_ms = 1764300000000;
  auto r = build_query_send_details({"id", "secret"}, {"13800000001", "20261128", 50, 2}, ctx);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_NE(r->query.find("Action=QuerySendDetails"), std::string::npos);
  EXPECT_NE(r->query.find("PhoneNumber=13800000001"), std::string::npos);
  EXPECT_NE(r->query.find("SendDate=20261128"), std::string::npos);
  EXPECT_NE(r->query.find("PageSize=50"), std::string::npos);
  EXPECT_NE(r->query.find("CurrentPage=2"), std::string::npos);
  EXPECT_NE(r->query.find("Signature="), std::string::npos);
  EXPECT_FALSE(build_query_send_details({"id", "secret"}, {"138,139", "20261128", 50, 1}, ctx).ok());
  EXPECT_FALSE(build_query_send_details({"id", "secret"}, {"13800000001", "2026-11-28", 50, 1}, ctx).ok());
  EXPECT_FALSE(build_query_send_details({"id", "secret"}, {"13800000001", "20261128", 51, 1}, ctx).ok());
}

TEST(AliyunQuerySendDetails, ParsesTheDocumentedAnswer) {
  const auto r = parse_query_send_details_response(
      R"({"Code":"OK","Message":"OK","RequestId":"819BE656","TotalCount":1,"SmsSendDetailDTOs":{"SmsSendDetailDTO":[)"
      R"({"PhoneNum":"15000000000","SendStatus":3,"ErrCode":"DELIVERED","TemplateCode":"SMS_000","Content":"【阿里云】你好",)"
      R"("SendDate":"2017-05-25 00:00:00","ReceiveDate":"2017-05-25 00:00:05","OutId":"123"}]}})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->code, "OK");
  EXPECT_EQ(r->total_count, 1);
  ASSERT_EQ(r->details.size(), 1u);
  const auto& d = r->details[0];
  EXPECT_EQ(d.phone_number, "15000000000");
  EXPECT_EQ(d.send_status, 3);
  EXPECT_EQ(d.err_code, "DELIVERED");
  EXPECT_EQ(d.template_code, "SMS_000");
  EXPECT_EQ(d.out_id, "123");
  EXPECT_EQ(d.send_date_ms, 1495641600000);  // 2017-05-25 00:00:00 Beijing = 2017-05-24 16:00:00 UTC
  EXPECT_EQ(d.receive_date_ms - d.send_date_ms, 5000);
  const auto err = parse_query_send_details_response(R"({"Code":"isv.SMS_SIGNATURE_ILLEGAL","Message":"签名不合法"})");
  ASSERT_TRUE(err.ok());
  EXPECT_EQ(err->code, "isv.SMS_SIGNATURE_ILLEGAL");
  EXPECT_TRUE(err->details.empty());
  EXPECT_FALSE(parse_query_send_details_response("[]").ok());
}

}  // namespace
}  // namespace songda::sms::aliyun
