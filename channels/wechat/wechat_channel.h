// The WeChat channel: Official Account template messages (kind
// official_account: POST /cgi-bin/message/template/send) or mini-program
// subscribe messages (kind mini_program: POST /cgi-bin/message/subscribe/send).
//
// Per delivery: the WeChat template is config.templates[d.template_name]; each
// data field is rendered from WechatTemplateConfig::fields with render_template
// over the delivery's params plus the built-ins court_name, case_number,
// recipient_name, link (the last http(s) URL in d.text), title and
// document_title. A field the protocol refuses (over 20 characters, a line
// break; subscribe types per their own limits) is kPermanent naming the field,
// so that dispatch falls back to another channel. Official Account messages
// carry url = the link and client_msg_id = the delivery id (WeChat's own
// dedup key). Subscribe messages have no dedup field in WeChat's API.
//
// Token: shared by all instances through TokenCache (Redis). On errcode
// 40001 / 40014 / 42001 the token is invalidated (compare-and-delete), fetched
// again once and the message resent once; refused again -> kRetryable with a
// note for the operator.
// Outcome: kAccepted with provider "wechat-oa" / "wechat-mp",
// provider_message_id = msgid (decimal text), code = errcode (decimal text),
// message = errmsg verbatim, raw = the answer body.
//
// Secrets: <credentials_env>_APP_SECRET (always) and _CALLBACK_TOKEN (required
// for official_account, whose completion pushes it authenticates), read once at
// construction through the injected getenv; a missing one is a StartupError.
// The access token never appears in logs; openids are logged masked.
//
// Ownership: borrows the HttpClient (and the RedisPool or TokenStore), which
// must outlive the channel. Thread-safety: send() may be called from several
// threads; it sends a batch on up to `concurrency` threads and joins them.
// A batch's messages share one token: read from the shared cache (a Redis round
// trip) when the first message needs it, and replaced once for the whole batch
// when WeChat refuses it.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "channels/channel.h"
#include "channels/http/channel_support.h"
#include "channels/http/http_client.h"
#include "channels/wechat/token_cache.h"
#include "gateway/config/config.h"
#include "gateway/store/redis.h"

namespace songda::wechat {

struct WechatChannelOptions {
  std::size_t max_parallel = 0;       // deliveries sent at once; 0 = config.concurrency
  std::function<void(int)> sleep_ms;  // token-lock polling; default: real sleep
  int token_wait_ms = 0;              // see TokenCacheOptions::wait_ms
};

class WechatChannel final : public Channel {
 public:
  // Production: the token is shared through Redis by every instance.
  WechatChannel(const WechatConfig& config, HttpClient& http, RedisPool& redis, const Getenv& getenv,
                WechatChannelOptions options = {});
  // With another token store (tests; one instance alone).
  WechatChannel(const WechatConfig& config, HttpClient& http, TokenStore& store, const Getenv& getenv,
                WechatChannelOptions options = {});
  ~WechatChannel() override;
  WechatChannel(const WechatChannel&) = delete;
  WechatChannel& operator=(const WechatChannel&) = delete;

  [[nodiscard]] std::string_view name() const override { return kChannelWechat; }
  std::vector<SendOutcome> send(std::span<const Delivery> batch) override;

  // <credentials_env>_CALLBACK_TOKEN: the callback handler checks pushes with it.
  [[nodiscard]] const std::string& callback_token() const { return callback_token_; }
  [[nodiscard]] const TokenCache& token_cache() const { return *tokens_; }
  [[nodiscard]] std::uint64_t token_refreshes() const { return token_refreshes_.load(); }

 private:
  WechatChannel(const WechatConfig& config, HttpClient& http, std::unique_ptr<TokenStore> owned, TokenStore* store,
                const Getenv& getenv, WechatChannelOptions options);
  class BatchToken;
  SendOutcome send_one(const Delivery& d, BatchToken& token);
  HttpResponse post(std::string_view path, const std::string& token, const std::string& body);

  WechatConfig config_;
  HttpClient& http_;
  WechatChannelOptions options_;
  std::unique_ptr<TokenStore> owned_store_;
  std::unique_ptr<TokenCache> tokens_;
  std::string provider_;  // "wechat-oa" | "wechat-mp"
  std::string callback_token_;
  std::atomic<std::uint64_t> token_refreshes_{0};
};

}  // namespace songda::wechat
