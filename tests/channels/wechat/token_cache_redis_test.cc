// TokenCache against a real Redis (SONGDA_TEST_REDIS_URL; skipped when unset):
// two WechatChannel instances, each with its own pool, fetch the access token
// once between them; the key and its TTL; 40001 invalidates with
// compare-and-delete so a token another instance already replaced survives.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <thread>

#include "channels/wechat/token_cache.h"
#include "channels/wechat/wechat_channel.h"
#include "gateway/core/crypto.h"
#include "tests/channels/sms/fake_http.h"

namespace songda::wechat {
namespace {

using Kind = SendOutcome::Kind;
using songda::testing::FakeHttp;

class RedisTokenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* url = std::getenv("SONGDA_TEST_REDIS_URL");
    if (url == nullptr || *url == '\0')
      GTEST_SKIP() << "SONGDA_TEST_REDIS_URL not set (tests/services/with-services --redis)";
    auto ep = parse_redis_url(url);
    ASSERT_TRUE(ep.ok()) << ep.error().message;
    endpoint_ = ep.value();
    app_id_ = "wxtest" + to_hex(random_bytes(6));  // a fresh app id per test: no leftovers
  }
  std::unique_ptr<RedisPool> pool() { return std::make_unique<RedisPool>(endpoint_, 4, 2000); }

  WechatConfig config() const {
    WechatConfig c;
    c.enabled = true;
    c.kind = "official_account";
    c.app_id = app_id_;
    c.endpoint = "https://wx.test";
    c.credentials_env = "WX";
    WechatTemplateConfig t;
    t.template_id = "TPL";
    t.fields = {{"thing1", "{{court_name}}"}};
    c.templates["summons"] = t;
    c.concurrency = 4;
    return c;
  }

  static const char* env(const char* name) {
    const std::string n(name);
    if (n == "WX_APP_SECRET") return "secret";
    if (n == "WX_CALLBACK_TOKEN") return "cb";
    return nullptr;
  }

  static Delivery delivery(const std::string& id) {
    Delivery d;
    d.id = id;
    d.address = "oOPENID";
    d.template_name = "summons";
    d.court_name = "商丘中院";
    d.text = "https://court.example/r/" + id;
    return d;
  }

  RedisEndpoint endpoint_;
  std::string app_id_;
};

bool is_token(const HttpRequest& r) { return r.url.find("/cgi-bin/stable_token") != std::string::npos; }

TEST_F(RedisTokenTest, TwoInstancesShareOneFetch) {
  std::atomic<int> token_calls{0};
  FakeHttp http([&](const HttpRequest& r) {
    if (is_token(r)) {
      ++token_calls;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));  // others must wait on the lock
      return HttpResponse{200, R"({"access_token":"SHARED-TOKEN","expires_in":7200})", {}, ""};
    }
    return HttpResponse{200, R"({"errcode":0,"errmsg":"ok","msgid":42})", {}, ""};
  });
  auto pool_a = pool();
  auto pool_b = pool();
  WechatChannel a(config(), http, *pool_a, env);
  WechatChannel b(config(), http, *pool_b, env);

  std::vector<Delivery> batch;
  for (int i = 0; i < 8; ++i) batch.push_back(delivery("sd-redis-" + std::to_string(i)));
  std::vector<SendOutcome> out_a;
  std::vector<SendOutcome> out_b;
  std::thread ta([&] { out_a = a.send(batch); });
  std::thread tb([&] { out_b = b.send(batch); });
  ta.join();
  tb.join();
  for (const auto& o : out_a) EXPECT_EQ(o.kind, Kind::kAccepted) << o.code << " " << o.message;
  for (const auto& o : out_b) EXPECT_EQ(o.kind, Kind::kAccepted) << o.code << " " << o.message;
  EXPECT_EQ(token_calls.load(), 1);
  EXPECT_EQ(a.token_cache().fetches() + b.token_cache().fetches(), 1u);

  auto value = pool_a->command({"GET", TokenCache::token_key(app_id_)});
  ASSERT_TRUE(value.ok());
  EXPECT_EQ(value->str, "SHARED-TOKEN");
  auto ttl = pool_a->command({"TTL", TokenCache::token_key(app_id_)});
  ASSERT_TRUE(ttl.ok());
  EXPECT_LE(ttl->integer, 7200 - 300);
  EXPECT_GT(ttl->integer, 7200 - 300 - 30);
  auto lock = pool_a->command({"EXISTS", TokenCache::lock_key(app_id_)});
  EXPECT_EQ(lock->integer, 0) << "the fetch lock is released";
}

TEST_F(RedisTokenTest, InvalidTokenIsReplacedOnceForEveryone) {
  std::atomic<int> token_calls{0};
  FakeHttp http([&](const HttpRequest& r) {
    if (is_token(r)) {
      const int n = ++token_calls;
      return HttpResponse{200, R"({"access_token":"TOKEN)" + std::to_string(n) + R"(","expires_in":7200})", {}, ""};
    }
    if (r.url.find("access_token=TOKEN1") != std::string::npos) {
      return HttpResponse{200, R"({"errcode":40001,"errmsg":"invalid credential"})", {}, ""};
    }
    return HttpResponse{200, R"({"errcode":0,"errmsg":"ok","msgid":43})", {}, ""};
  });
  auto pool_a = pool();
  auto pool_b = pool();
  WechatChannel a(config(), http, *pool_a, env);
  WechatChannel b(config(), http, *pool_b, env);
  const Delivery d = delivery("sd-redis-40001");
  auto out = a.send(std::span(&d, 1));
  EXPECT_EQ(out[0].kind, Kind::kAccepted) << out[0].code << " " << out[0].message;
  EXPECT_EQ(token_calls.load(), 2);
  EXPECT_EQ(pool_a->command({"GET", TokenCache::token_key(app_id_)})->str, "TOKEN2");
  // The other instance uses the replacement without fetching.
  out = b.send(std::span(&d, 1));
  EXPECT_EQ(out[0].kind, Kind::kAccepted);
  EXPECT_EQ(token_calls.load(), 2);
  EXPECT_EQ(b.token_cache().fetches(), 0u);
}

TEST_F(RedisTokenTest, CompareAndDeleteKeepsATokenAnotherInstanceAlreadyReplaced) {
  FakeHttp http([](const HttpRequest&) {
    return HttpResponse{200, R"({"access_token":"SHOULD-NOT-BE-FETCHED","expires_in":7200})", {}, ""};
  });
  auto p = pool();
  RedisTokenStore store(*p);
  TokenCache cache(store, http, TokenCacheOptions{app_id_, "secret", "https://wx.test", 2000, 10000, 0, 50, {}});
  ASSERT_TRUE(p->command({"SET", TokenCache::token_key(app_id_), "NEWER", "EX", "600"}).ok());
  // Our request was refused with the older token; someone already stored a newer one.
  auto fresh = cache.refresh("OLDER");
  ASSERT_TRUE(fresh.ok()) << fresh.error().message;
  EXPECT_EQ(fresh.value(), "NEWER");
  EXPECT_EQ(cache.fetches(), 0u);
  EXPECT_EQ(p->command({"GET", TokenCache::token_key(app_id_)})->str, "NEWER");

  auto deleted = store.delete_if_equals(TokenCache::token_key(app_id_), "NEWER");
  ASSERT_TRUE(deleted.ok());
  EXPECT_TRUE(deleted.value());
  EXPECT_TRUE(p->command({"GET", TokenCache::token_key(app_id_)})->is_nil());
}

TEST_F(RedisTokenTest, AHeldLockMakesOthersWaitThenGiveUpRetryably) {
  FakeHttp http([](const HttpRequest&) {
    return HttpResponse{200, R"({"access_token":"X","expires_in":7200})", {}, ""};
  });
  auto p = pool();
  RedisTokenStore store(*p);
  ASSERT_TRUE(p->command({"SET", TokenCache::lock_key(app_id_), "someone-else", "PX", "10000"}).ok());
  TokenCache cache(store, http, TokenCacheOptions{app_id_, "secret", "https://wx.test", 2000, 10000, 300, 50, {}});
  auto token = cache.get();
  ASSERT_FALSE(token.ok());
  EXPECT_EQ(token.error().code, "wechat_token_busy");
  EXPECT_TRUE(token.error().retryable);
  EXPECT_EQ(cache.fetches(), 0u);
  // The holder stores its token: the waiter picks it up.
  std::thread holder([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    (void)p->command({"SET", TokenCache::token_key(app_id_), "FROM-HOLDER", "EX", "600"});
  });
  TokenCache patient(store, http, TokenCacheOptions{app_id_, "secret", "https://wx.test", 2000, 10000, 2000, 20, {}});
  auto got = patient.get();
  holder.join();
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got.value(), "FROM-HOLDER");
  EXPECT_EQ(patient.fetches(), 0u);
}

}  // namespace
}  // namespace songda::wechat
