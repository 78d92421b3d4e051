#include "channels/wechat/token_cache.h"

#include <chrono>
#include <thread>

#include <spdlog/spdlog.h>

#include "channels/wechat/wechat_protocol.h"
#include "gateway/core/crypto.h"
#include "gateway/core/text.h"

namespace songda::wechat {
namespace {

// KEYS[1] = key, ARGV[1] = the value it must still hold.
const LuaScript& compare_and_delete_script() {
  static const LuaScript script(R"(
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
)");
  return script;
}

std::string strip_trailing_slash(std::string s) {
  while (!s.empty() && s.back() == '/') s.pop_back();
  return s;
}

}  // namespace

// ---- RedisTokenStore -----------------------------------------------------------------------

Result<std::optional<std::string>> RedisTokenStore::get(const std::string& key) {
  auto r = redis_.command({"GET", key});
  if (!r) return r.error();
  if (r->type == RedisReply::Type::kError) return Error::permanent("redis_error", "Redis GET failed: " + r->str);
  if (r->is_nil()) return std::optional<std::string>();
  return std::optional<std::string>(r->str);
}

Result<bool> RedisTokenStore::set_if_absent(const std::string& key, const std::string& value, std::int64_t ttl_ms) {
  auto r = redis_.command({"SET", key, value, "NX", "PX", std::to_string(ttl_ms)});
  if (!r) return r.error();
  if (r->type == RedisReply::Type::kError) return Error::permanent("redis_error", "Redis SET NX failed: " + r->str);
  return !r->is_nil();
}

Status RedisTokenStore::set(const std::string& key, const std::string& value, std::int64_t ttl_s) {
  auto r = redis_.command({"SET", key, value, "EX", std::to_string(ttl_s)});
  if (!r) return r.error();
  if (r->type == RedisReply::Type::kError) return Error::permanent("redis_error", "Redis SET failed: " + r->str);
  return ok_status();
}

Result<bool> RedisTokenStore::delete_if_equals(const std::string& key, const std::string& expected) {
  auto r = redis_.eval(compare_and_delete_script(), {key}, {expected});
  if (!r) return r.error();
  return r->type == RedisReply::Type::kInteger && r->integer == 1;
}

// ---- MemoryTokenStore ----------------------------------------------------------------------

MemoryTokenStore::MemoryTokenStore(UnixMsClock now_ms) : now_ms_(std::move(now_ms)) {
  if (!now_ms_) now_ms_ = [] { return now_unix_ms(); };
}

void MemoryTokenStore::expire_locked(const std::string& key) {
  const auto it = values_.find(key);
  if (it != values_.end() && it->second.second <= now_ms_()) values_.erase(it);
}

Result<std::optional<std::string>> MemoryTokenStore::get(const std::string& key) {
  std::lock_guard lock(mu_);
  expire_locked(key);
  const auto it = values_.find(key);
  if (it == values_.end()) return std::optional<std::string>();
  return std::optional<std::string>(it->second.first);
}

Result<bool> MemoryTokenStore::set_if_absent(const std::string& key, const std::string& value, std::int64_t ttl_ms) {
  std::lock_guard lock(mu_);
  expire_locked(key);
  return values_.emplace(key, std::make_pair(value, now_ms_() + ttl_ms)).second;
}

Status MemoryTokenStore::set(const std::string& key, const std::string& value, std::int64_t ttl_s) {
  std::lock_guard lock(mu_);
  values_[key] = {value, now_ms_() + ttl_s * 1000};
  return ok_status();
}

Result<bool> MemoryTokenStore::delete_if_equals(const std::string& key, const std::string& expected) {
  std::lock_guard lock(mu_);
  expire_locked(key);
  const auto it = values_.find(key);
  if (it == values_.end() || it->second.first != expected) return false;
  values_.erase(it);
  return true;
}

// ---- TokenCache ----------------------------------------------------------------------------

std::string TokenCache::token_key(std::string_view app_id) { return "sd:wechat:token:{" + std::string(app_id) + "}"; }
std::string TokenCache::lock_key(std::string_view app_id) { return "sd:wechat:lock:{" + std::string(app_id) + "}"; }

TokenCache::TokenCache(TokenStore& store, HttpClient& http, TokenCacheOptions options)
    : store_(store),
      http_(http),
      options_(std::move(options)),
      token_key_(token_key(options_.app_id)),
      lock_key_(lock_key(options_.app_id)) {
  if (options_.wait_ms <= 0) options_.wait_ms = options_.timeout_ms + 1000;
  if (options_.poll_ms <= 0) options_.poll_ms = 50;
  if (!options_.sleep_ms) {
    options_.sleep_ms = [](int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); };
  }
}

Result<std::pair<std::string, std::int64_t>> TokenCache::fetch(bool force_refresh) {
  HttpRequest req;
  req.method = "POST";
  req.url = strip_trailing_slash(options_.endpoint) + "/cgi-bin/stable_token";
  req.headers = {{"Content-Type", "application/json"}};
  req.body = stable_token_request_body(options_.app_id, options_.app_secret, force_refresh);
  req.timeout_ms = options_.timeout_ms;
  ++fetches_;
  const HttpResponse resp = http_.send(req);
  if (resp.transport_error()) {
    return Error::transient("wechat_token_unavailable", "WeChat stable_token: no answer: " + resp.error);
  }
  if (resp.status < 200 || resp.status > 299) {
    return Error::transient("wechat_token_unavailable",
                            "WeChat stable_token answered HTTP " + std::to_string(resp.status));
  }
  auto token = parse_access_token_response(resp.body);
  if (!token) return token.error();
  spdlog::info("wechat: fetched the access token of app {} (force_refresh={}, expires_in={} s)", options_.app_id,
               force_refresh, token->expires_in);
  return std::make_pair(std::move(token->access_token), token->expires_in);
}

Result<std::string> TokenCache::get() { return get_avoiding({}); }

Result<std::string> TokenCache::refresh(const std::string& bad) {
  auto deleted = store_.delete_if_equals(token_key_, bad);
  if (!deleted) return deleted.error();
  return get_avoiding(bad);
}

Result<std::string> TokenCache::get_avoiding(const std::string& avoid) {
  const auto start = std::chrono::steady_clock::now();
  for (;;) {
    auto cached = store_.get(token_key_);
    if (!cached) return cached.error();
    if (cached->has_value() && **cached != avoid) return **cached;

    const std::string lock_value = to_hex(random_bytes(16));
    auto locked = store_.set_if_absent(lock_key_, lock_value, options_.lock_ms);
    if (!locked) return locked.error();
    if (*locked) {
      Result<std::string> out = Error::transient("wechat_token_unavailable", "not fetched");
      // Another instance may have stored a token between our GET and our lock.
      auto again = store_.get(token_key_);
      if (again && again->has_value() && **again != avoid) {
        out = **again;
      } else {
        auto fetched = fetch(false);
        if (fetched && !avoid.empty() && fetched->first == avoid) {
          // stable_token still hands out the token WeChat just refused: force a new one.
          fetched = fetch(true);
        }
        if (!fetched) {
          out = fetched.error();
        } else {
          const std::int64_t ttl = token_cache_ttl_seconds(fetched->second);
          if (ttl > 0) {
            if (auto st = store_.set(token_key_, fetched->first, ttl); !st) {
              spdlog::warn("wechat: cannot cache the access token of app {}: {}", options_.app_id, st.error().message);
            }
          }
          out = std::move(fetched->first);
        }
      }
      (void)store_.delete_if_equals(lock_key_, lock_value);  // only our own lock; it expires anyway
      return out;
    }
    if (std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(options_.wait_ms)) {
      return Error::transient("wechat_token_busy", "another instance holds " + lock_key_ +
                                                       " and no token appeared within " +
                                                       std::to_string(options_.wait_ms) + " ms; retry later");
    }
    options_.sleep_ms(options_.poll_ms);
  }
}

}  // namespace songda::wechat
