// The WeChat access token, shared by every Songda instance of one app id.
//
// WeChat allows one live token per app: fetching a new one invalidates the old
// after a short overlap, so instances must not each fetch their own. The token
// lives in a shared store (Redis in production) under
// `sd:wechat:token:{<appid>}` with TTL = expires_in - 300 s. When it is missing,
// exactly one instance fetches it (POST /cgi-bin/stable_token) while holding
// `SET sd:wechat:lock:{<appid>} <random> NX PX 10000`; the others poll the token
// key briefly. When WeChat refuses a token (40001 / 40014 / 42001) the caller
// calls refresh(bad): the key is deleted only if it still holds that bad token
// (a Lua compare-and-delete, so a token another instance just stored survives)
// and a fresh one is fetched the same way; should stable_token still answer the
// refused token, it is asked once with force_refresh (WeChat allows 20 a day).
//
// TokenStore is the small key-value interface the cache needs (RedisTokenStore
// over RedisPool; MemoryTokenStore for tests and single-instance setups).
//
// Ownership: TokenCache borrows the store and the HttpClient (both outlive
// it) and keeps a copy of the app secret, which it never logs.
// Thread-safety: every class here is thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "channels/http/channel_support.h"
#include "channels/http/http_client.h"
#include "gateway/core/result.h"
#include "gateway/store/redis.h"

namespace songda::wechat {

class TokenStore {
 public:
  virtual ~TokenStore() = default;
  // The value, or nullopt when the key does not exist.
  virtual Result<std::optional<std::string>> get(const std::string& key) = 0;
  // SET key value NX PX ttl_ms: true when this call set it.
  virtual Result<bool> set_if_absent(const std::string& key, const std::string& value, std::int64_t ttl_ms) = 0;
  // SET key value EX ttl_s.
  virtual Status set(const std::string& key, const std::string& value, std::int64_t ttl_s) = 0;
  // Deletes key only while it holds `expected`, atomically. True when deleted.
  virtual Result<bool> delete_if_equals(const std::string& key, const std::string& expected) = 0;
};

// Over Redis; errors are RedisPool's (redis_unavailable transient, redis_error permanent).
class RedisTokenStore final : public TokenStore {
 public:
  explicit RedisTokenStore(RedisPool& redis) : redis_(redis) {}
  Result<std::optional<std::string>> get(const std::string& key) override;
  Result<bool> set_if_absent(const std::string& key, const std::string& value, std::int64_t ttl_ms) override;
  Status set(const std::string& key, const std::string& value, std::int64_t ttl_s) override;
  Result<bool> delete_if_equals(const std::string& key, const std::string& expected) override;

 private:
  RedisPool& redis_;
};

// In process memory, with expiry by the injected clock. Shared only by the
// objects given the same instance.
class MemoryTokenStore final : public TokenStore {
 public:
  explicit MemoryTokenStore(UnixMsClock now_ms = {});
  Result<std::optional<std::string>> get(const std::string& key) override;
  Result<bool> set_if_absent(const std::string& key, const std::string& value, std::int64_t ttl_ms) override;
  Status set(const std::string& key, const std::string& value, std::int64_t ttl_s) override;
  Result<bool> delete_if_equals(const std::string& key, const std::string& expected) override;

 private:
  void expire_locked(const std::string& key);
  UnixMsClock now_ms_;
  std::mutex mu_;
  std::map<std::string, std::pair<std::string, std::int64_t>> values_;  // key -> (value, expires at ms)
};

struct TokenCacheOptions {
  std::string app_id;
  std::string app_secret;
  std::string endpoint = "https://api.weixin.qq.com";
  int timeout_ms = 5000;         // one stable_token request
  std::int64_t lock_ms = 10000;  // the fetch lock's PX
  int wait_ms = 0;               // how long a non-holder polls for the token; 0 = timeout_ms + 1000
  int poll_ms = 50;
  std::function<void(int)> sleep_ms;  // injected for tests; default std::this_thread::sleep_for
};

class TokenCache {
 public:
  TokenCache(TokenStore& store, HttpClient& http, TokenCacheOptions options);

  // A token to call WeChat with: the shared one, or fetched by one instance
  // under the lock. Errors: "wechat_token_refused" (WeChat's errcode, verbatim;
  // retryable per classify_errcode), "wechat_token_unavailable" (no answer,
  // transient), "wechat_token_busy" (another instance holds the lock and has
  // not stored a token within wait_ms; transient), or the store's error.
  Result<std::string> get();

  // `bad` was refused by WeChat: drops it from the shared cache (unless
  // another instance already replaced it) and returns a different token.
  Result<std::string> refresh(const std::string& bad);

  static std::string token_key(std::string_view app_id);  // sd:wechat:token:{<appid>}
  static std::string lock_key(std::string_view app_id);   // sd:wechat:lock:{<appid>}

  // stable_token calls made by this instance (for tests and /metrics).
  [[nodiscard]] std::uint64_t fetches() const { return fetches_.load(); }

 private:
  Result<std::string> get_avoiding(const std::string& avoid);
  Result<std::pair<std::string, std::int64_t>> fetch(bool force_refresh);

  TokenStore& store_;
  HttpClient& http_;
  TokenCacheOptions options_;
  std::string token_key_;
  std::string lock_key_;
  std::atomic<std::uint64_t> fetches_{0};
};

}  // namespace songda::wechat
