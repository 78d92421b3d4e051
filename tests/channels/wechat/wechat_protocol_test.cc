// WeChat protocol: callback signature and echo check (a forged signature is
// refused), the documented TEMPLATESENDJOBFINISH pushes with their statuses
// verbatim, send bodies and answers, token answers, field limits, errcodes.
#include "channels/wechat/wechat_protocol.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "gateway/core/crypto.h"

namespace songda::wechat {
namespace {

using Kind = SendOutcome::Kind;

// ---- Callback signature -------------------------------------------------------------------

TEST(WechatSignature, IsSha1OfTheSortedJoin) {
  // sorted: "1395658920" < "nonce123" < "tok"
  EXPECT_EQ(callback_signature("tok", "1395658920", "nonce123"), sha1_hex("1395658920nonce123tok"));
  EXPECT_EQ(callback_signature("tok", "1395658920", "nonce123"), "13bfd204f825bc359bf206a5d095780757112394");
  // The order of the arguments does not matter beyond their roles: the sort decides.
  EXPECT_EQ(callback_signature("nonce123", "tok", "1395658920"), callback_signature("tok", "1395658920", "nonce123"));
}

TEST(WechatSignature, AcceptsTheRightSignature) {
  EXPECT_TRUE(verify_callback_signature("tok", "1395658920", "nonce123", "13bfd204f825bc359bf206a5d095780757112394"));
  EXPECT_TRUE(verify_callback_signature("tok", "1395658920", "nonce123", "13BFD204F825BC359BF206A5D095780757112394"));
}

TEST(WechatSignature, RefusesAForgedSignature) {
  EXPECT_FALSE(verify_callback_signature("tok", "1395658920", "nonce123", "13bfd204f825bc359bf206a5d095780757112395"));
  EXPECT_FALSE(verify_callback_signature("tok", "1395658920", "nonce123", ""));
  EXPECT_FALSE(verify_callback_signature("tok", "1395658920", "nonce123", "13bfd204"));
  // Signed with another token.
  EXPECT_FALSE(verify_callback_signature("tok", "1395658920", "nonce123",
                                         callback_signature("other", "1395658920", "nonce123")));
  // Right signature, tampered timestamp or nonce.
  EXPECT_FALSE(verify_callback_signature("tok", "1395658921", "nonce123", "13bfd204f825bc359bf206a5d095780757112394"));
  EXPECT_FALSE(verify_callback_signature("tok", "1395658920", "nonce124", "13bfd204f825bc359bf206a5d095780757112394"));
}

TEST(WechatSignature, EchoCheckAnswersEchostrOnlyWhenSigned) {
  const auto ok = echo_check("tok", "13bfd204f825bc359bf206a5d095780757112394", "1395658920", "nonce123", "8813487");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, "8813487");
  const auto forged =
      echo_check("tok", "0000000000000000000000000000000000000000", "1395658920", "nonce123", "8813487");
  ASSERT_FALSE(forged.ok());
  EXPECT_EQ(forged.error().code, "signature_mismatch");
  EXPECT_FALSE(forged.error().retryable);
}

TEST(WechatSignature, TimestampFreshness) {
  EXPECT_TRUE(callback_timestamp_fresh("1395658920", 1395658920));
  EXPECT_TRUE(callback_timestamp_fresh("1395658920", 1395659220));
  EXPECT_FALSE(callback_timestamp_fresh("1395658920", 1395659221));
  EXPECT_FALSE(callback_timestamp_fresh("1395658920", 1395658619));
  EXPECT_FALSE(callback_timestamp_fresh("abc", 1395658920));
  EXPECT_FALSE(callback_timestamp_fresh("", 1395658920));
  EXPECT_FALSE(callback_timestamp_fresh("99999999999999999999", 1395658920));
}

// ---- TEMPLATESENDJOBFINISH ----------------------------------------------------------------

std::string push(std::string_view status) {
  return "<xml><ToUserName><![CDATA[gh_7f083739789a]]></ToUserName><FromUserName><![CDATA[oia2TjuEGTNoeX76QEjQNrcURxG8]"
         "]></FromUserName><CreateTime>1395658920</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA["
         "TEMPLATESENDJOBFINISH]]></Event><MsgID>200163836</MsgID><Status><![CDATA[" +
         std::string(status) + "]]></Status></xml>";
}

TEST(WechatPush, ParsesTheDocumentedSuccess) {
  const auto p = parse_template_send_job_finish(push("success"));
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->to_user_name, "gh_7f083739789a");
  EXPECT_EQ(p->from_user_name, "oia2TjuEGTNoeX76QEjQNrcURxG8");
  EXPECT_EQ(p->create_time, 1395658920);
  EXPECT_EQ(p->msg_type, "event");
  EXPECT_EQ(p->event, "TEMPLATESENDJOBFINISH");
  EXPECT_EQ(p->msg_id, "200163836");
  EXPECT_EQ(p->status, "success");
  EXPECT_TRUE(p->delivered);
}

TEST(WechatPush, UserBlockIsAFailureKeptVerbatim) {
  const auto p = parse_template_send_job_finish(push("failed:user block"));
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(p->delivered);
  EXPECT_EQ(p->status, "failed:user block");
}

TEST(WechatPush, SystemFailedKeepsItsSpace) {
  const auto p = parse_template_send_job_finish(push("failed: system failed"));
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(p->delivered);
  EXPECT_EQ(p->status, "failed: system failed");
}

TEST(WechatPush, UnknownStatusesAreFailuresKeptVerbatim) {
  for (const char* status : {"failed:freq limit", "Success", "something new"}) {
    const auto p = parse_template_send_job_finish(push(status));
    ASSERT_TRUE(p.ok()) << status;
    EXPECT_FALSE(p->delivered) << status;
    EXPECT_EQ(p->status, status);
  }
}

TEST(WechatPush, AcceptsPlainTextAndWhitespace) {
  const auto p = parse_template_send_job_finish(
      "<?xml version=\"1.0\"?>\n<xml>\n  <ToUserName>gh_1</ToUserName>\n  <FromUserName>o_2</FromUserName>\n"
      "  <CreateTime>1395658920</CreateTime>\n  <MsgType>event</MsgType>\n  <Event>TEMPLATESENDJOBFINISH</Event>\n"
      "  <MsgID>1</MsgID>\n  <Status>success</Status>\n</xml>\n");
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_TRUE(p->delivered);
  EXPECT_EQ(p->to_user_name, "gh_1");
}

// A MsgID that is not a number could never name one of our messages (the send answer's msgid is one); bytes that
// are not UTF-8 there used to make parking the receipt throw.
TEST(WechatPush, AMsgIdThatIsNotANumberIsRefused) {
  for (const std::string& id : std::vector<std::string>{"abc", "12\xff", "-1", "1 2", std::string(21, '9')}) {
    const auto p = parse_template_send_job_finish(
        "<xml><CreateTime>1</CreateTime><MsgType>event</MsgType><Event>TEMPLATESENDJOBFINISH</Event><MsgID>" + id +
        "</MsgID><Status>success</Status></xml>");
    ASSERT_FALSE(p.ok()) << id;
    EXPECT_EQ(p.error().code, "invalid_receipt") << id;
  }
}

TEST(WechatPush, OtherEventsAreToldApart) {
  const auto p = parse_template_send_job_finish(
      "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[o_2]]></FromUserName>"
      "<CreateTime>1</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe]]></Event></xml>");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().code, "other_event");
  const auto text =
      parse_template_send_job_finish("<xml><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hi]]></Content></xml>");
  EXPECT_EQ(text.error().code, "other_event");
}

TEST(WechatPush, RefusesMalformedPushes) {
  EXPECT_EQ(parse_template_send_job_finish("").error().code, "invalid_xml");
  EXPECT_EQ(parse_template_send_job_finish("<xml><MsgType>event</MsgType>").error().code, "invalid_xml");
  EXPECT_EQ(parse_template_send_job_finish("<root/>").error().code, "invalid_xml");
  EXPECT_EQ(parse_template_send_job_finish("{\"json\":true}").error().code, "invalid_xml");
  EXPECT_EQ(parse_template_send_job_finish(std::string(70000, ' ')).error().code, "invalid_xml");
  std::string no_status = push("success");
  no_status.replace(no_status.find("<Status>"), std::string("<Status><![CDATA[success]]></Status>").size(), "");
  EXPECT_EQ(parse_template_send_job_finish(no_status).error().code, "invalid_receipt");
  std::string bad_time = push("success");
  bad_time.replace(bad_time.find("1395658920"), 10, "soon");
  EXPECT_EQ(parse_template_send_job_finish(bad_time).error().code, "invalid_receipt");
}

TEST(WechatPush, DoesNotExpandDoctypeEntities) {
  const auto p = parse_template_send_job_finish(
      "<!DOCTYPE xml [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><xml><MsgType>event</MsgType>"
      "<Event>TEMPLATESENDJOBFINISH</Event><CreateTime>1</CreateTime><MsgID>1</MsgID><Status>&x;</Status></xml>");
  // Either refused or parsed with the entity left unexpanded: never the file's content.
  if (p.ok()) {
    EXPECT_EQ(p->status.find("root:"), std::string::npos);
  }
}

// ---- Field limits -------------------------------------------------------------------------

TEST(WechatTemplateField, TwentyCharactersPass) {
  EXPECT_TRUE(check_template_field("thing2", std::string(20, 'a')).ok());
  std::string chinese;
  for (int i = 0; i < 20; ++i) chinese += "案";
  EXPECT_TRUE(check_template_field("thing2", chinese).ok());  // 20 code points, 60 bytes
  EXPECT_TRUE(check_template_field("thing2", "").ok());
}

TEST(WechatTemplateField, TwentyOneCharactersAreRefusedNamingTheField) {
  std::string chinese;
  for (int i = 0; i < 21; ++i) chinese += "案";
  const auto st = check_template_field("thing2", chinese);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, "template_field");
  EXPECT_FALSE(st.error().retryable);
  EXPECT_NE(st.error().message.find("\"thing2\""), std::string::npos) << st.error().message;
  EXPECT_NE(st.error().message.find("21 characters, at most 20"), std::string::npos) << st.error().message;
}

TEST(WechatTemplateField, LineBreaksAreRefused) {
  for (const char* v : {"line\nbreak", "line\rbreak", "a\r\nb",
                        "a\xE2\x80\xA8"
                        "b",
                        "a\xC2\x85"
                        "b"}) {
    const auto st = check_template_field("keyword1", v);
    ASSERT_FALSE(st.ok()) << v;
    EXPECT_NE(st.error().message.find("\"keyword1\""), std::string::npos);
    EXPECT_NE(st.error().message.find("line break"), std::string::npos);
  }
}

TEST(WechatTemplateField, InvalidUtf8IsRefused) { EXPECT_FALSE(check_template_field("k", "\xFF\xFE").ok()); }

TEST(WechatSubscribeField, LimitsFollowTheKeyType) {
  EXPECT_TRUE(check_subscribe_field("thing1", std::string(20, 'x')).ok());
  EXPECT_FALSE(check_subscribe_field("thing1", std::string(21, 'x')).ok());
  EXPECT_TRUE(check_subscribe_field("character_string2", std::string(32, '1')).ok());
  EXPECT_FALSE(check_subscribe_field("character_string2", std::string(33, '1')).ok());
  EXPECT_TRUE(check_subscribe_field("number01", std::string(32, '9')).ok());
  EXPECT_FALSE(check_subscribe_field("phrase3", "一二三四五六").ok());
  EXPECT_TRUE(check_subscribe_field("phrase3", "已送达").ok());
  EXPECT_FALSE(check_subscribe_field("phone_number4", std::string(18, '1')).ok());
  EXPECT_TRUE(check_subscribe_field("name5", std::string(20, 'a')).ok());
  EXPECT_FALSE(check_subscribe_field("name5", "张三张三张三张三张三张").ok());
  EXPECT_TRUE(check_subscribe_field("time6", "2026年12月01日 09:30~2026年12月01日 11:30").ok());  // no length rule
  EXPECT_FALSE(check_subscribe_field("time6", "").ok());
  EXPECT_FALSE(check_subscribe_field("time6", "a\nb").ok());
}

// ---- Send bodies --------------------------------------------------------------------------

TemplateMessage template_message() {
  TemplateMessage m;
  m.touser = "oia2TjuEGTNoeX76QEjQNrcURxG8";
  m.template_id = "ngqIpbwh8bUfcSsECmogfXcV14J0tQlEpBO27izEYtY";
  m.url = "https://court.example/d/abc";
  m.miniprogram = MiniProgramLink{"wx1234567890", "pages/doc?id=abc"};
  m.client_msg_id = "sd-0123456789abcdef0123456789abcdef";
  m.data = {{"thing1", "开庭通知"}, {"character_string2", "(2026)京0105民初123号"}, {"time3", "2026-12-01 09:30"}};
  return m;
}

TEST(WechatTemplateMessage, BuildsTheDocumentedBody) {
  const auto body = template_message_body(template_message());
  ASSERT_TRUE(body.ok()) << body.error().message;
  const auto j = nlohmann::json::parse(*body);
  EXPECT_EQ(j["touser"], "oia2TjuEGTNoeX76QEjQNrcURxG8");
  EXPECT_EQ(j["template_id"], "ngqIpbwh8bUfcSsECmogfXcV14J0tQlEpBO27izEYtY");
  EXPECT_EQ(j["url"], "https://court.example/d/abc");
  EXPECT_EQ(j["miniprogram"]["appid"], "wx1234567890");
  EXPECT_EQ(j["miniprogram"]["pagepath"], "pages/doc?id=abc");
  EXPECT_EQ(j["client_msg_id"], "sd-0123456789abcdef0123456789abcdef");
  EXPECT_EQ(j["data"]["thing1"]["value"], "开庭通知");
  EXPECT_EQ(j["data"]["character_string2"]["value"], "(2026)京0105民初123号");
  EXPECT_EQ(j["data"]["time3"], nlohmann::json({{"value", "2026-12-01 09:30"}}));
}

TEST(WechatTemplateMessage, OptionalPartsAreOmitted) {
  auto m = template_message();
  m.url.clear();
  m.miniprogram.reset();
  const auto j = nlohmann::json::parse(*template_message_body(m));
  EXPECT_FALSE(j.contains("url"));
  EXPECT_FALSE(j.contains("miniprogram"));
}

TEST(WechatTemplateMessage, RefusesBadFieldsAndMissingIds) {
  auto m = template_message();
  m.data.emplace_back("thing4", std::string(21, 'x'));
  const auto long_field = template_message_body(m);
  ASSERT_FALSE(long_field.ok());
  EXPECT_NE(long_field.error().message.find("\"thing4\""), std::string::npos);
  m = template_message();
  m.client_msg_id.clear();
  EXPECT_EQ(template_message_body(m).error().code, "invalid_request");
  m = template_message();
  m.data.emplace_back("thing1", "again");
  EXPECT_EQ(template_message_body(m).error().code, "invalid_request");
}

TEST(WechatSubscribeMessage, BuildsTheDocumentedBody) {
  SubscribeMessage m;
  m.touser = "o_user";
  m.template_id = "tmpl";
  m.page = "pages/case/index?id=1";
  m.data = {{"thing1", "送达通知"}, {"character_string2", "(2026)京0105民初123号"}};
  const auto body = subscribe_message_body(m);
  ASSERT_TRUE(body.ok()) << body.error().message;
  const auto j = nlohmann::json::parse(*body);
  EXPECT_EQ(j["touser"], "o_user");
  EXPECT_EQ(j["template_id"], "tmpl");
  EXPECT_EQ(j["page"], "pages/case/index?id=1");
  EXPECT_EQ(j["data"]["thing1"]["value"], "送达通知");
  EXPECT_EQ(j["miniprogram_state"], "formal");
  EXPECT_EQ(j["lang"], "zh_CN");
  m.miniprogram_state = "production";
  EXPECT_FALSE(subscribe_message_body(m).ok());
}

TEST(WechatSendResponse, ParsesOkAndErrors) {
  const auto ok = parse_send_response(R"({"errcode":0,"errmsg":"ok","msgid":200228332})");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->errcode, 0);
  EXPECT_EQ(ok->errmsg, "ok");
  EXPECT_EQ(ok->msgid, "200228332");
  const auto big = parse_send_response(R"({"errcode":0,"errmsg":"ok","msgid":2860000000000000001})");
  EXPECT_EQ(big->msgid, "2860000000000000001");
  const auto err = parse_send_response(R"({"errcode":43101,"errmsg":"user refuse to accept the msg rid: 1"})");
  ASSERT_TRUE(err.ok());
  EXPECT_EQ(err->errcode, 43101);
  EXPECT_TRUE(err->msgid.empty());
  EXPECT_EQ(parse_send_response("<html>").error().code, "invalid_response");
  EXPECT_FALSE(parse_send_response(R"({"errcode":"0"})").ok());
}

// ---- Tokens -------------------------------------------------------------------------------

TEST(WechatToken, ParsesBothTokenAnswers) {
  const std::string token(512, 'T');
  const auto t = parse_access_token_response(R"({"access_token":")" + token + R"(","expires_in":7200})");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->access_token, token);
  EXPECT_EQ(t->expires_in, 7200);
  EXPECT_EQ(token_cache_ttl_seconds(7200), 6900);
  EXPECT_EQ(token_cache_ttl_seconds(100), 0);
}

TEST(WechatToken, ErrcodeAnswersBecomeErrorsWithTheirCode) {
  const auto bad = parse_access_token_response(R"({"errcode":40013,"errmsg":"invalid appid"})");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, "wechat_token_refused");
  EXPECT_NE(bad.error().message.find("40013"), std::string::npos);
  EXPECT_NE(bad.error().message.find("invalid appid"), std::string::npos);
  EXPECT_FALSE(bad.error().retryable);
  const auto busy = parse_access_token_response(R"({"errcode":-1,"errmsg":"system error"})");
  EXPECT_TRUE(busy.error().retryable);
  EXPECT_EQ(parse_access_token_response("oops").error().code, "invalid_response");
  EXPECT_FALSE(parse_access_token_response(R"({"access_token":"x"})").ok());
}

TEST(WechatToken, RequestShapes) {
  EXPECT_EQ(token_request_query("wx123", "s&c=t"), "grant_type=client_credential&appid=wx123&secret=s%26c%3Dt");
  const auto j = nlohmann::json::parse(stable_token_request_body("wx123", "sec", false));
  EXPECT_EQ(j["grant_type"], "client_credential");
  EXPECT_EQ(j["appid"], "wx123");
  EXPECT_EQ(j["secret"], "sec");
  EXPECT_EQ(j["force_refresh"], false);
}

// ---- Classification -----------------------------------------------------------------------

struct ErrCase {
  std::int64_t errcode;
  Kind kind;
  bool refresh_token;
};

class WechatClassify : public ::testing::TestWithParam<ErrCase> {};

TEST_P(WechatClassify, MapsErrcode) {
  const ErrCase& c = GetParam();
  const ErrcodeClass got = classify_errcode(c.errcode);
  EXPECT_EQ(got.kind, c.kind) << c.errcode;
  EXPECT_EQ(got.refresh_token, c.refresh_token) << c.errcode;
  EXPECT_EQ(got.errcode, c.errcode);
  EXPECT_FALSE(got.note.empty());
}

INSTANTIATE_TEST_SUITE_P(
    Table, WechatClassify,
    ::testing::Values(ErrCase{0, Kind::kAccepted, false}, ErrCase{-1, Kind::kRetryable, false},
                      ErrCase{40001, Kind::kRetryable, true}, ErrCase{40014, Kind::kRetryable, true},
                      ErrCase{42001, Kind::kRetryable, true}, ErrCase{45009, Kind::kRetryable, false},
                      ErrCase{45011, Kind::kRetryable, false}, ErrCase{43101, Kind::kPermanent, false},
                      ErrCase{43004, Kind::kPermanent, false}, ErrCase{40003, Kind::kPermanent, false},
                      ErrCase{47003, Kind::kPermanent, false}, ErrCase{40037, Kind::kPermanent, false},
                      ErrCase{99999, Kind::kPermanent, false}));

TEST(WechatClassify, TokenErrorAfterARefetchIsRetryableNotAnotherRefetch) {
  const ErrcodeClass first = classify_errcode(40001, false);
  EXPECT_TRUE(first.refresh_token);
  const ErrcodeClass second = classify_errcode(40001, true);
  EXPECT_FALSE(second.refresh_token);
  EXPECT_EQ(second.kind, Kind::kRetryable);
  EXPECT_TRUE(second.needs_operator);
  // Other codes are unaffected by the flag.
  EXPECT_EQ(classify_errcode(43101, true).kind, Kind::kPermanent);
}

}  // namespace
}  // namespace songda::wechat
