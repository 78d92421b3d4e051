#include "channels/wechat/wechat_channel.h"

#include <algorithm>
#include <mutex>
#include <optional>
#include <utility>

#include <spdlog/spdlog.h>

#include "channels/wechat/wechat_protocol.h"
#include "gateway/core/text.h"
#include "gateway/plan/template.h"

namespace songda::wechat {
namespace {

using Kind = SendOutcome::Kind;

std::string strip_trailing_slash(std::string s) {
  while (!s.empty() && s.back() == '/') s.pop_back();
  return s;
}

SendOutcome error_outcome(const std::string& provider, const Error& e) {
  SendOutcome o;
  o.kind = e.retryable ? Kind::kRetryable : Kind::kPermanent;
  o.provider = provider;
  o.code = e.code;
  o.message = e.message;
  return o;
}

// No errcode to read: no answer, or not JSON. 0/408/429/5xx retryable; others permanent.
SendOutcome transport_outcome(const std::string& provider, const HttpResponse& resp) {
  SendOutcome o;
  o.provider = provider;
  o.raw = resp.body;
  const int s = resp.status;
  const bool retry = s == 0 || s == 408 || s == 429 || (s >= 500 && s <= 599);
  o.kind = retry ? Kind::kRetryable : Kind::kPermanent;
  o.code = s == 0 ? "no_response" : "http_" + std::to_string(s);
  o.message = s == 0 ? resp.error : "WeChat answered HTTP " + std::to_string(s) + " without a readable errcode";
  return o;
}

}  // namespace

WechatChannel::WechatChannel(const WechatConfig& config, HttpClient& http, RedisPool& redis, const Getenv& getenv,
                             WechatChannelOptions options)
    : WechatChannel(config, http, std::make_unique<RedisTokenStore>(redis), nullptr, getenv, std::move(options)) {}

WechatChannel::WechatChannel(const WechatConfig& config, HttpClient& http, TokenStore& store, const Getenv& getenv,
                             WechatChannelOptions options)
    : WechatChannel(config, http, nullptr, &store, getenv, std::move(options)) {}

WechatChannel::WechatChannel(const WechatConfig& config, HttpClient& http, std::unique_ptr<TokenStore> owned,
                             TokenStore* store, const Getenv& getenv, WechatChannelOptions options)
    : config_(config), http_(http), options_(std::move(options)), owned_store_(std::move(owned)) {
  const std::string what = "WeChat channel (" + config_.kind + ")";
  if (config_.kind == "official_account") {
    provider_ = "wechat-oa";
  } else if (config_.kind == "mini_program") {
    provider_ = "wechat-mp";
  } else {
    throw StartupError(what + ": unknown kind; hint: kind is official_account or mini_program");
  }
  if (config_.app_id.empty()) throw StartupError(what + ": app_id is empty");
  if (config_.endpoint.empty()) throw StartupError(what + ": endpoint is empty (https://api.weixin.qq.com)");
  if (config_.credentials_env.empty()) throw StartupError(what + ": credentials_env is empty");
  for (const auto& [name, t] : config_.templates) {
    if (t.template_id.empty()) {
      std::string message = what;
      message.append(": template '").append(name).append("' has no template_id");
      throw StartupError(message);
    }
  }
  TokenCacheOptions token_options;
  token_options.app_id = config_.app_id;
  token_options.app_secret = require_env(getenv, config_.credentials_env + "_APP_SECRET", what);
  if (config_.kind == "official_account") {
    callback_token_ = require_env(getenv, config_.credentials_env + "_CALLBACK_TOKEN", what);
  } else {
    callback_token_ = optional_env(getenv, config_.credentials_env + "_CALLBACK_TOKEN");
  }
  token_options.endpoint = config_.endpoint;
  token_options.timeout_ms = config_.timeout_ms;
  token_options.sleep_ms = options_.sleep_ms;
  token_options.wait_ms = options_.token_wait_ms;
  TokenStore& s = owned_store_ ? *owned_store_ : *store;
  tokens_ = std::make_unique<TokenCache>(s, http_, std::move(token_options));
}

WechatChannel::~WechatChannel() = default;

// The token one batch's sends share. Read from the cache when the first message needs it (a message whose template
// fails makes no read); a refusal is replaced once for the batch: a send still holding the refused token gets the
// replacement without another refresh. The lock is held while the cache fetches, so the others wait for its token.
class WechatChannel::BatchToken {
 public:
  explicit BatchToken(TokenCache& cache) : cache_(cache) {}

  Result<std::string> get() {
    const std::lock_guard lock(mu_);
    if (!token_) token_ = cache_.get();
    return *token_;
  }

  // Returns the new token, and whether this call refreshed it (false: another send of the batch already did).
  std::pair<Result<std::string>, bool> refresh(const std::string& bad) {
    const std::lock_guard lock(mu_);
    if (token_ && token_->ok() && token_->value() != bad) return {*token_, false};
    token_ = cache_.refresh(bad);
    return {*token_, true};
  }

 private:
  TokenCache& cache_;
  std::mutex mu_;
  std::optional<Result<std::string>> token_;
};

HttpResponse WechatChannel::post(std::string_view path, const std::string& token, const std::string& body) {
  HttpRequest req;
  req.method = "POST";
  req.url = strip_trailing_slash(config_.endpoint) + std::string(path) + "?access_token=" + token;
  req.headers = {{"Content-Type", "application/json"}};
  req.body = body;
  req.timeout_ms = config_.timeout_ms;
  return http_.send(req);
}

SendOutcome WechatChannel::send_one(const Delivery& d, BatchToken& batch_token) {
  const auto tmpl = config_.templates.find(d.template_name);
  if (tmpl == config_.templates.end()) {
    return error_outcome(provider_,
                         Error::permanent("no_wechat_template", "no WeChat template for '" + d.template_name +
                                                                    "'; hint: add it to wechat.templates"));
  }
  auto vars = delivery_template_vars(d);
  vars["title"] = d.title;
  vars["document_title"] = d.document ? d.document->title : "";
  std::vector<std::pair<std::string, std::string>> data;
  for (const auto& [key, text] : tmpl->second.fields) {
    auto value = render_template(d.template_name, text, vars);
    if (!value) return error_outcome(provider_, value.error());
    data.emplace_back(key, std::move(value.value()));
  }

  const bool oa = provider_ == "wechat-oa";
  Result<std::string> body = Error::permanent("invalid_request", "not built");
  if (oa) {
    TemplateMessage m;
    m.touser = d.address;
    m.template_id = tmpl->second.template_id;
    m.url = last_http_url(d.text);
    m.client_msg_id = d.id;
    m.data = std::move(data);
    body = template_message_body(m);
  } else {
    SubscribeMessage m;
    m.touser = d.address;
    m.template_id = tmpl->second.template_id;
    m.page = tmpl->second.page;
    m.data = std::move(data);
    body = subscribe_message_body(m);
  }
  // A field over the limit names itself ("template field \"thing2\": 21 characters ...").
  if (!body) return error_outcome(provider_, body.error());
  const std::string_view path = oa ? "/cgi-bin/message/template/send" : "/cgi-bin/message/subscribe/send";

  auto token = batch_token.get();
  if (!token) return error_outcome(provider_, token.error());
  bool refreshed = false;
  for (;;) {
    const HttpResponse resp = post(path, *token, *body);
    if (resp.transport_error()) return transport_outcome(provider_, resp);
    const auto parsed = parse_send_response(resp.body);
    if (!parsed) return transport_outcome(provider_, resp);
    const ErrcodeClass cls = classify_errcode(parsed->errcode, refreshed);
    if (cls.refresh_token) {
      auto [fresh, refreshed_here] = batch_token.refresh(*token);
      if (refreshed_here) {
        ++token_refreshes_;
        spdlog::info("wechat: token refused (errcode {}) for delivery {}; fetching a new one and resending once",
                     parsed->errcode, d.id);
      }
      token = std::move(fresh);
      if (!token) return error_outcome(provider_, token.error());
      refreshed = true;
      continue;
    }
    SendOutcome o;
    o.kind = cls.kind;
    o.provider = provider_;
    o.code = std::to_string(parsed->errcode);
    o.message = parsed->errmsg;
    if (cls.kind != Kind::kAccepted && (cls.needs_operator || o.message.empty())) o.message += " (" + cls.note + ")";
    o.raw = resp.body;
    if (cls.kind == Kind::kAccepted) {
      o.provider_message_id = parsed->msgid;
    } else {
      spdlog::info("wechat: delivery {} to {} refused: errcode {} {}", d.id, mask_address("wechat", d.address),
                   parsed->errcode, parsed->errmsg);
    }
    return o;
  }
}

std::vector<SendOutcome> WechatChannel::send(std::span<const Delivery> batch) {
  std::vector<SendOutcome> out(batch.size());
  const std::size_t parallel =
      options_.max_parallel != 0 ? options_.max_parallel : static_cast<std::size_t>(std::max(1, config_.concurrency));
  BatchToken token(*tokens_);
  parallel_for(batch.size(), parallel, [&](std::size_t i) { out[i] = send_one(batch[i], token); });
  return out;
}

}  // namespace songda::wechat
