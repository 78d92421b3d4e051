// WechatChannel over a scripted HttpClient and an in-memory token store: the
// exact stable_token and template/send requests, rendered fields, a field over
// the limit (permanent, named), the token shared by two instances (one fetch),
// 40001 -> invalidate + one refetch + one resend, refused again -> retryable,
// the errcode classes, subscribe messages (43101 permanent), start-up checks.
#include "channels/wechat/wechat_channel.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <optional>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/channels/sms/fake_http.h"

namespace songda::wechat {
namespace {

using Kind = SendOutcome::Kind;
using songda::testing::FakeHttp;

const char* fake_env(const char* name) {
  static const std::map<std::string, std::string> env = {
      {"WX_APP_SECRET", "app-secret-1"}, {"WX_CALLBACK_TOKEN", "cb-token"}, {"MP_APP_SECRET", "mp-secret"}};
  const auto it = env.find(name);
  return it == env.end() ? nullptr : it->second.c_str();
}

WechatConfig oa_config() {
  WechatConfig c;
  c.enabled = true;
  c.kind = "official_account";
  c.app_id = "wx1234567890";
  c.endpoint = "https://wx.test";
  c.credentials_env = "WX";
  WechatTemplateConfig t;
  t.template_id = "TPL-SUMMONS";
  t.fields = {
      {"thing1", "{{court_name}}传票"}, {"character_string2", "{{case_number}}"}, {"time3", "{{hearing_time}}"}};
  c.templates["summons"] = t;
  WechatTemplateConfig long_field;
  long_field.template_id = "TPL-LONG";
  long_field.fields = {{"thing1", "{{recipient_name}}您好，{{court_name}}依法向您送达开庭传票，请按时到庭"}};
  c.templates["long"] = long_field;
  c.concurrency = 1;
  return c;
}

WechatConfig mp_config() {
  WechatConfig c = oa_config();
  c.kind = "mini_program";
  c.app_id = "wxmini0001";
  c.credentials_env = "MP";
  c.templates["summons"].page = "pages/case/detail?id=1";
  c.templates["summons"].fields = {{"thing1", "开庭传票"}, {"time2", "{{hearing_time}}"}};
  return c;
}

Delivery delivery(std::string id = "sd-wx-1") {
  Delivery d;
  d.id = std::move(id);
  d.channel = "wechat";
  d.address = "oia2TjuEGTNoeX76QEjQNrcURxG8";
  d.template_name = "summons";
  d.court_name = "商丘市中级人民法院";
  d.case_number = "(2026)豫14民初123号";
  d.recipient_name = "张三";
  d.title = "传票";
  d.params = {{"hearing_time", "2026-12-10 09:30"}};
  d.text = "张三：请查看传票 https://court.example/r/" + d.id + " 。";
  return d;
}

HttpResponse ok(const std::string& body) { return HttpResponse{200, body, {}, ""}; }

std::string token_answer(const std::string& token) {
  return R"({"access_token":")" + token + R"(","expires_in":7200})";
}

bool is_token(const HttpRequest& r) { return r.url == "https://wx.test/cgi-bin/stable_token"; }

std::string access_token_of(const HttpRequest& r) {
  const auto pos = r.url.find("access_token=");
  return pos == std::string::npos ? "" : r.url.substr(pos + 13);
}

WechatChannelOptions fast_options() {
  WechatChannelOptions o;
  o.sleep_ms = [](int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); };
  o.token_wait_ms = 2000;
  return o;
}

// stable_token answers TOKEN1, then TOKEN2; a send with TOKEN1 gets `refusal`, one with TOKEN2 `accepted`.
FakeHttp::Handler first_token_refused(std::atomic<int>& token_calls, std::string refusal, std::string accepted) {
  return [&token_calls, refusal = std::move(refusal), accepted = std::move(accepted)](const HttpRequest& r) {
    if (is_token(r)) return ok(token_answer(++token_calls == 1 ? "TOKEN1" : "TOKEN2"));
    return ok(access_token_of(r) == "TOKEN1" ? refusal : accepted);
  };
}

TEST(WechatChannel, SendsTheTemplateMessageWithTheSharedTokenAndAccepts) {
  FakeHttp http([](const HttpRequest& r) {
    if (is_token(r)) return ok(token_answer("TOKEN1"));
    return ok(R"({"errcode":0,"errmsg":"ok","msgid":3000000000000000001})");
  });
  MemoryTokenStore store;
  WechatChannel channel(oa_config(), http, store, fake_env, fast_options());
  const Delivery d = delivery();
  const auto out = channel.send(std::span(&d, 1));

  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, Kind::kAccepted) << out[0].code << " " << out[0].message;
  EXPECT_EQ(out[0].provider, "wechat-oa");
  EXPECT_EQ(out[0].provider_message_id, "3000000000000000001");  // exact digits past 2^53
  EXPECT_EQ(out[0].code, "0");
  EXPECT_EQ(out[0].message, "ok");

  const auto reqs = http.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].method, "POST");
  EXPECT_EQ(nlohmann::json::parse(reqs[0].body), (nlohmann::json{{"grant_type", "client_credential"},
                                                                 {"appid", "wx1234567890"},
                                                                 {"secret", "app-secret-1"},
                                                                 {"force_refresh", false}}));
  EXPECT_EQ(reqs[1].url, "https://wx.test/cgi-bin/message/template/send?access_token=TOKEN1");
  const auto body = nlohmann::json::parse(reqs[1].body);
  EXPECT_EQ(body["touser"], "oia2TjuEGTNoeX76QEjQNrcURxG8");
  EXPECT_EQ(body["template_id"], "TPL-SUMMONS");
  EXPECT_EQ(body["client_msg_id"], "sd-wx-1");
  EXPECT_EQ(body["url"], "https://court.example/r/sd-wx-1");
  EXPECT_EQ(body["data"], (nlohmann::json{{"thing1", {{"value", "商丘市中级人民法院传票"}}},
                                          {"character_string2", {{"value", "(2026)豫14民初123号"}}},
                                          {"time3", {{"value", "2026-12-10 09:30"}}}}));
  // The token is cached: the next send makes no stable_token call.
  (void)channel.send(std::span(&d, 1));
  EXPECT_EQ(channel.token_cache().fetches(), 1u);
  auto cached = store.get(TokenCache::token_key("wx1234567890"));
  ASSERT_TRUE(cached.ok());
  EXPECT_EQ(cached->value_or(""), "TOKEN1");
  EXPECT_EQ(channel.callback_token(), "cb-token");
}

TEST(WechatChannel, AFieldOverTheLimitIsPermanentAndNamesTheField) {
  FakeHttp http([](const HttpRequest& r) { return is_token(r) ? ok(token_answer("T")) : ok(R"({"errcode":0})"); });
  MemoryTokenStore store;
  WechatChannel channel(oa_config(), http, store, fake_env, fast_options());
  Delivery d = delivery();
  d.template_name = "long";
  const auto out = channel.send(std::span(&d, 1));
  EXPECT_EQ(out[0].kind, Kind::kPermanent);
  EXPECT_EQ(out[0].code, "template_field");
  EXPECT_NE(out[0].message.find("\"thing1\""), std::string::npos) << out[0].message;
  EXPECT_NE(out[0].message.find("at most 20"), std::string::npos) << out[0].message;
  EXPECT_TRUE(http.requests().empty());  // nothing sent, not even a token fetched
}

TEST(WechatChannel, MissingPlaceholderOrTemplateIsPermanent) {
  FakeHttp http([](const HttpRequest& r) { return is_token(r) ? ok(token_answer("T")) : ok(R"({"errcode":0})"); });
  MemoryTokenStore store;
  WechatChannel channel(oa_config(), http, store, fake_env, fast_options());
  Delivery d = delivery();
  d.params.clear();
  auto out = channel.send(std::span(&d, 1));
  EXPECT_EQ(out[0].kind, Kind::kPermanent);
  EXPECT_EQ(out[0].code, "template_param_missing");
  EXPECT_NE(out[0].message.find("hearing_time"), std::string::npos);

  d = delivery();
  d.template_name = "judgment";
  out = channel.send(std::span(&d, 1));
  EXPECT_EQ(out[0].kind, Kind::kPermanent);
  EXPECT_EQ(out[0].code, "no_wechat_template");
  EXPECT_NE(out[0].message.find("no WeChat template for 'judgment'"), std::string::npos);
}

TEST(WechatChannel, InvalidTokenIsInvalidatedRefetchedOnceAndTheSendRetriedOnce) {
  std::atomic<int> token_calls{0};
  FakeHttp http(first_token_refused(token_calls, R"({"errcode":40001,"errmsg":"invalid credential"})",
                                    R"({"errcode":0,"errmsg":"ok","msgid":200163836})"));
  MemoryTokenStore store;
  WechatChannel channel(oa_config(), http, store, fake_env, fast_options());
  const Delivery d = delivery();
  const auto out = channel.send(std::span(&d, 1));
  EXPECT_EQ(out[0].kind, Kind::kAccepted);
  EXPECT_EQ(out[0].provider_message_id, "200163836");
  const auto reqs = http.requests();
  ASSERT_EQ(reqs.size(), 4u);  // token, send(TOKEN1), token, send(TOKEN2)
  EXPECT_TRUE(is_token(reqs[0]));
  EXPECT_EQ(access_token_of(reqs[1]), "TOKEN1");
  EXPECT_TRUE(is_token(reqs[2]));
  EXPECT_EQ(nlohmann::json::parse(reqs[2].body)["force_refresh"], false);
  EXPECT_EQ(access_token_of(reqs[3]), "TOKEN2");
  EXPECT_EQ(reqs[1].body, reqs[3].body);  // the same message, same client_msg_id
  EXPECT_EQ(channel.token_refreshes(), 1u);
  EXPECT_EQ(store.get(TokenCache::token_key("wx1234567890"))->value_or(""), "TOKEN2");
}

TEST(WechatChannel, RefusedAgainAfterTheRefetchIsRetryableWithAnOperatorNote) {
  std::atomic<int> token_calls{0};
  FakeHttp http([&](const HttpRequest& r) {
    if (is_token(r)) return ok(token_answer("TOKEN" + std::to_string(++token_calls)));
    return ok(R"({"errcode":42001,"errmsg":"access_token expired"})");
  });
  MemoryTokenStore store;
  WechatChannel channel(oa_config(), http, store, fake_env, fast_options());
  const Delivery d = delivery();
  const auto out = channel.send(std::span(&d, 1));
  EXPECT_EQ(out[0].kind, Kind::kRetryable);
  EXPECT_EQ(out[0].code, "42001");
  EXPECT_NE(out[0].message.find("access_token expired"), std::string::npos);
  EXPECT_NE(out[0].message.find("refused again after a refetch"), std::string::npos) << out[0].message;
  EXPECT_EQ(http.requests().size(), 4u);  // no loop: one refetch, one resend
}

TEST(WechatChannel, StableTokenStillAnsweringTheRefusedTokenIsForcedOnce) {
  std::vector<bool> forced;
  std::mutex mu;
  FakeHttp http([&](const HttpRequest& r) {
    if (is_token(r)) {
      const bool force = nlohmann::json::parse(r.body)["force_refresh"];
      std::lock_guard lock(mu);
      forced.push_back(force);
      return ok(token_answer(force ? "FRESH" : "STALE"));
    }
    if (access_token_of(r) == "STALE") return ok(R"({"errcode":40014,"errmsg":"invalid access_token"})");
    return ok(R"({"errcode":0,"errmsg":"ok","msgid":7})");
  });
  MemoryTokenStore store;
  WechatChannel channel(oa_config(), http, store, fake_env, fast_options());
  const Delivery d = delivery();
  const auto out = channel.send(std::span(&d, 1));
  EXPECT_EQ(out[0].kind, Kind::kAccepted);
  EXPECT_EQ(forced, (std::vector<bool>{false, false, true}));
}

TEST(WechatChannel, ErrcodeClassesAndTransportErrors) {
  struct Case {
    HttpResponse answer;
    Kind kind;
    std::string code;
  };
  const std::vector<Case> cases = {
      {ok(R"({"errcode":43004,"errmsg":"require subscribe"})"), Kind::kPermanent, "43004"},
      {ok(R"({"errcode":43019,"errmsg":"in blacklist"})"), Kind::kPermanent, "43019"},
      {ok(R"({"errcode":45009,"errmsg":"reach max api daily quota limit"})"), Kind::kRetryable, "45009"},
      {ok(R"({"errcode":-1,"errmsg":"system error"})"), Kind::kRetryable, "-1"},
      {ok(R"({"errcode":99999,"errmsg":"new"})"), Kind::kPermanent, "99999"},
      {HttpResponse{503, "busy", {}, ""}, Kind::kRetryable, "http_503"},
      {HttpResponse{0, "", {}, "Timeout was reached"}, Kind::kRetryable, "no_response"},
      {ok("<html>"), Kind::kPermanent, "http_200"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.code);
    FakeHttp http([&](const HttpRequest& r) { return is_token(r) ? ok(token_answer("T")) : c.answer; });
    MemoryTokenStore store;
    WechatChannel channel(oa_config(), http, store, fake_env, fast_options());
    const Delivery d = delivery();
    const auto out = channel.send(std::span(&d, 1));
    EXPECT_EQ(out[0].kind, c.kind);
    EXPECT_EQ(out[0].code, c.code);
    EXPECT_EQ(out[0].provider, "wechat-oa");
    EXPECT_TRUE(out[0].provider_message_id.empty());
  }
}

TEST(WechatChannel, TokenRefusedByWechatIsAnOutcomeNotACrash) {
  FakeHttp http([](const HttpRequest&) { return ok(R"({"errcode":40125,"errmsg":"invalid appsecret"})"); });
  MemoryTokenStore store;
  WechatChannel channel(oa_config(), http, store, fake_env, fast_options());
  const Delivery d = delivery();
  const auto out = channel.send(std::span(&d, 1));
  EXPECT_EQ(out[0].kind, Kind::kPermanent);
  EXPECT_EQ(out[0].code, "wechat_token_refused");
  EXPECT_NE(out[0].message.find("40125"), std::string::npos);
  EXPECT_EQ(http.requests().size(), 1u);
}

TEST(WechatChannel, MiniProgramSendsSubscribeMessagesAnd43101IsPermanent) {
  std::atomic<bool> granted{true};
  FakeHttp http([&](const HttpRequest& r) {
    if (is_token(r)) return ok(token_answer("MPTOKEN"));
    return granted ? ok(R"({"errcode":0,"errmsg":"ok","msgid":12345})")
                   : ok(R"({"errcode":43101,"errmsg":"user refuse to accept the msg"})");
  });
  MemoryTokenStore store;
  WechatChannel channel(mp_config(), http, store, fake_env, fast_options());
  EXPECT_EQ(channel.callback_token(), "");  // optional for mini programs
  const Delivery d = delivery();
  auto out = channel.send(std::span(&d, 1));
  EXPECT_EQ(out[0].kind, Kind::kAccepted);
  EXPECT_EQ(out[0].provider, "wechat-mp");
  EXPECT_EQ(out[0].provider_message_id, "12345");
  const auto reqs = http.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[1].url, "https://wx.test/cgi-bin/message/subscribe/send?access_token=MPTOKEN");
  const auto body = nlohmann::json::parse(reqs[1].body);
  EXPECT_EQ(body["page"], "pages/case/detail?id=1");
  EXPECT_EQ(body["template_id"], "TPL-SUMMONS");
  EXPECT_EQ(body["data"]["time2"]["value"], "2026-12-10 09:30");
  EXPECT_EQ(body["miniprogram_state"], "formal");

  granted = false;
  out = channel.send(std::span(&d, 1));
  EXPECT_EQ(out[0].kind, Kind::kPermanent);
  EXPECT_EQ(out[0].code, "43101");
}

TEST(WechatChannel, TwoInstancesOnOneStoreFetchTheTokenOnce) {
  std::atomic<int> token_calls{0};
  FakeHttp http([&](const HttpRequest& r) {
    if (is_token(r)) {
      ++token_calls;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      return ok(token_answer("SHARED"));
    }
    return ok(R"({"errcode":0,"errmsg":"ok","msgid":1})");
  });
  MemoryTokenStore store;
  WechatChannel a(oa_config(), http, store, fake_env, fast_options());
  WechatChannel b(oa_config(), http, store, fake_env, fast_options());
  std::vector<std::thread> threads;
  std::atomic<int> accepted{0};
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      const Delivery d = delivery("sd-share-" + std::to_string(t));
      WechatChannel& ch = t % 2 == 0 ? a : b;
      if (ch.send(std::span(&d, 1))[0].kind == Kind::kAccepted) ++accepted;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(accepted.load(), 6);
  EXPECT_EQ(token_calls.load(), 1);
}

// A TokenStore that counts its reads (in production each is a Redis round trip).
class CountingStore final : public TokenStore {
 public:
  Result<std::optional<std::string>> get(const std::string& key) override {
    ++gets;
    return inner.get(key);
  }
  Result<bool> set_if_absent(const std::string& key, const std::string& value, std::int64_t ttl_ms) override {
    return inner.set_if_absent(key, value, ttl_ms);
  }
  Status set(const std::string& key, const std::string& value, std::int64_t ttl_s) override {
    return inner.set(key, value, ttl_s);
  }
  Result<bool> delete_if_equals(const std::string& key, const std::string& expected) override {
    return inner.delete_if_equals(key, expected);
  }
  std::atomic<int> gets{0};
  MemoryTokenStore inner;
};

std::vector<Delivery> deliveries(int n, const std::string& prefix) {
  std::vector<Delivery> out;
  for (int i = 0; i < n; ++i) out.push_back(delivery(prefix + std::to_string(i)));
  return out;
}

TEST(WechatChannel, ABatchReadsTheSharedTokenOnce) {
  FakeHttp http([](const HttpRequest& r) {
    return is_token(r) ? ok(token_answer("TOKEN1")) : ok(R"({"errcode":0,"errmsg":"ok","msgid":7})");
  });
  CountingStore store;
  WechatConfig config = oa_config();
  config.concurrency = 4;
  WechatChannel channel(config, http, store, fake_env, fast_options());
  const auto first = deliveries(1, "sd-first-");
  (void)channel.send(std::span(first));  // fetches and stores the token
  store.gets = 0;

  const auto batch = deliveries(20, "sd-batch-");
  const auto out = channel.send(std::span(batch));
  for (const auto& o : out) EXPECT_EQ(o.kind, Kind::kAccepted) << o.code;
  EXPECT_EQ(store.gets.load(), 1);  // one read for the 20 messages, not one each
  EXPECT_EQ(channel.token_cache().fetches(), 1u);

  // A batch whose every message fails its template reads no token at all.
  Delivery bad = delivery("sd-bad");
  bad.template_name = "judgment";
  store.gets = 0;
  EXPECT_EQ(channel.send(std::span(&bad, 1))[0].code, "no_wechat_template");
  EXPECT_EQ(store.gets.load(), 0);
}

TEST(WechatChannel, ATokenRefusedMidBatchIsReplacedOnceForTheBatch) {
  std::atomic<int> token_calls{0};
  FakeHttp http(first_token_refused(token_calls, R"({"errcode":42001,"errmsg":"access_token expired"})",
                                    R"({"errcode":0,"errmsg":"ok","msgid":8})"));
  MemoryTokenStore store;
  WechatConfig config = oa_config();
  config.concurrency = 4;
  WechatChannel channel(config, http, store, fake_env, fast_options());
  const auto batch = deliveries(12, "sd-expired-");
  const auto out = channel.send(std::span(batch));
  for (const auto& o : out) EXPECT_EQ(o.kind, Kind::kAccepted) << o.code << " " << o.message;
  // Several sends may have been refused with TOKEN1 at once; one of them refreshed it for all.
  EXPECT_EQ(token_calls.load(), 2);
  EXPECT_EQ(channel.token_refreshes(), 1u);
  EXPECT_EQ(store.get(TokenCache::token_key("wx1234567890"))->value_or(""), "TOKEN2");
}

TEST(WechatStartup, MissingSecretsNameTheVariable) {
  FakeHttp http;
  MemoryTokenStore store;
  WechatConfig c = oa_config();
  c.credentials_env = "NONE";
  try {
    WechatChannel ch(c, http, store, fake_env);
    FAIL() << "expected StartupError";
  } catch (const StartupError& e) {
    EXPECT_NE(std::string(e.what()).find("NONE_APP_SECRET"), std::string::npos) << e.what();
  }
  c = oa_config();
  c.credentials_env = "MP";  // has an app secret, no callback token
  try {
    WechatChannel ch(c, http, store, fake_env);
    FAIL() << "expected StartupError";
  } catch (const StartupError& e) {
    EXPECT_NE(std::string(e.what()).find("MP_CALLBACK_TOKEN"), std::string::npos) << e.what();
  }
  c = oa_config();
  c.kind = "service_account";
  EXPECT_THROW(WechatChannel(c, http, store, fake_env), StartupError);
}

}  // namespace
}  // namespace songda::wechat
