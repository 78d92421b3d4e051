#include "channels/sms/sms_channel.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <map>
#include <random>
#include <set>
#include <utility>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "channels/sms/aliyun_protocol.h"
#include "channels/sms/segments.h"
#include "channels/sms/sms_common.h"
#include "channels/sms/tencent_protocol.h"
#include "gateway/core/crypto.h"
#include "gateway/core/text.h"

namespace songda::sms {
namespace {

using Kind = SendOutcome::Kind;

constexpr std::size_t kMaxParallel = 32;

SmsChannelOptions with_defaults(SmsChannelOptions o) {
  if (!o.now_ms) o.now_ms = [] { return now_unix_ms(); };
  if (!o.nonce) {
    o.nonce = [] {
      const std::string h = to_hex(random_bytes(16));
      return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) + "-" + h.substr(20);
    };
  }
  if (!o.random) {
    auto rng = std::make_shared<std::mt19937_64>(std::random_device{}());
    auto mu = std::make_shared<std::mutex>();
    o.random = [rng, mu] {
      std::lock_guard lock(*mu);
      return (*rng)();
    };
  }
  return o;
}

std::string strip_trailing_slash(std::string s) {
  while (!s.empty() && s.back() == '/') s.pop_back();
  return s;
}

// "https://host:port/path" -> "host:port".
std::string url_authority(std::string_view url) {
  const auto scheme = url.find("://");
  if (scheme != std::string_view::npos) url.remove_prefix(scheme + 3);
  const auto end = url.find_first_of("/?#");
  return std::string(url.substr(0, end));
}

void check_common(const SmsProviderConfig& c) {
  const std::string who = "SMS provider '" + c.name + "'";
  if (c.name.empty()) throw StartupError("an SMS provider has no name; hint: give each provider a unique name");
  if (c.endpoint.empty()) throw StartupError(who + " has no endpoint (e.g. https://dysmsapi.aliyuncs.com)");
  if (c.sign_name.empty()) throw StartupError(who + " has no sign_name (the approved 短信签名)");
  if (c.credentials_env.empty()) {
    throw StartupError(who + " has no credentials_env; hint: name the environment prefix holding its keys");
  }
  if (c.concurrency < 1) throw StartupError(who + ": concurrency must be at least 1");
}

bool is_mainland(std::string_view e164) { return e164.rfind("+86", 0) == 0; }

// Aliyun wants mainland numbers bare and others as country code + number.
std::string aliyun_number(std::string_view e164) {
  if (is_mainland(e164)) return std::string(e164.substr(3));
  if (!e164.empty() && e164[0] == '+') return std::string(e164.substr(1));
  return std::string(e164);
}

int billed_segments(const SmsProviderConfig& c, std::string_view e164, std::string_view text) {
  return is_mainland(e164) ? measure_mainland(c.sign_name, text).segments : measure_international(text).segments;
}

// A code that concerns one recipient rather than the provider's health.
bool recipient_specific(std::string_view code) {
  return code == "isv.BUSINESS_LIMIT_CONTROL" || code.rfind("LimitExceeded.PhoneNumber", 0) == 0;
}

ProviderResult from_class(const CodeClass& cls, const SmsProviderConfig& c) {
  ProviderResult r;
  r.outcome.kind = cls.kind;
  r.outcome.provider = c.name;
  r.outcome.code = cls.code;
  const bool retryable = cls.kind == Kind::kRetryable;
  r.provider_fault = retryable && !recipient_specific(cls.code);
  r.try_next = retryable || (cls.kind == Kind::kPermanent && cls.needs_operator);
  return r;
}

// The answer when no provider code could be read (no answer, or not the documented shape).
ProviderResult transport_result(const HttpResponse& resp, const SmsProviderConfig& c) {
  ProviderResult r = from_class(classify_http(resp.status), c);
  const CodeClass cls = classify_http(resp.status);
  r.outcome.message = resp.status == 0 ? resp.error : cls.note;
  r.outcome.raw = resp.body;
  return r;
}

std::vector<ProviderResult> same_for_all(std::size_t n, const ProviderResult& r) { return {n, r}; }

ProviderResult invalid_request_result(const Error& e, const SmsProviderConfig& c) {
  ProviderResult r;
  r.outcome.kind = e.retryable ? Kind::kRetryable : Kind::kPermanent;
  r.outcome.provider = c.name;
  r.outcome.code = e.code;
  r.outcome.message = e.message;
  return r;
}

// A provider record of an earlier attempt may be up to this much older than our own claim of it (clocks differ;
// Beijing times have whole seconds).
constexpr std::int64_t kPriorSendSlackMs = 30'000;

// A record names the delivery: its own id, or a batch id for the same template sent since the attempt began.
bool names_delivery(const std::string& correlation, const Delivery& d, bool same_template, std::int64_t sent_ms,
                    std::int64_t since_ms) {
  if (correlation == d.id) return true;
  return correlation.rfind("b-", 0) == 0 && same_template && sent_ms >= since_ms - kPriorSendSlackMs;
}

PriorSend prior_unknown(const SmsProviderConfig& c, std::string code, std::string message) {
  PriorSend p;
  p.kind = PriorSend::Kind::kUnknown;
  p.outcome.provider = c.name;
  p.outcome.code = std::move(code);
  p.outcome.message = std::move(message);
  return p;
}

// "yyyyMMdd" of a Unix ms time in Beijing.
std::string beijing_yyyymmdd(std::int64_t unix_ms) {
  std::string d = utc_date(unix_ms / 1000 + 8 * 3600);
  d.erase(std::remove(d.begin(), d.end(), '-'), d.end());
  return d;
}

}  // namespace

std::string to_e164(std::string_view number) {
  std::string s;
  for (const char ch : number) {
    if (ch != ' ' && ch != '-') s.push_back(ch);
  }
  if (!s.empty() && s[0] == '+') return s;
  if (s.rfind("00", 0) == 0) return "+" + s.substr(2);
  if (s.size() == 11 && s[0] == '1' && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return "+86" + s;
  }
  return s;
}

std::string batch_correlation_id(std::span<const Delivery* const> group) {
  if (group.size() == 1) return group.front()->id;
  std::vector<std::string> ids;
  ids.reserve(group.size());
  for (const Delivery* d : group) ids.push_back(d->id);
  std::sort(ids.begin(), ids.end());
  std::string joined;
  for (const auto& id : ids) {
    if (!joined.empty()) joined.push_back('\n');
    joined += id;
  }
  return "b-" + sha256_hex(joined).substr(0, 30);
}

// ---- Aliyun ----------------------------------------------------------------------------

AliyunSms::AliyunSms(SmsProviderConfig config, HttpClient& http, const Getenv& getenv, SmsChannelOptions options)
    : config_(std::move(config)), http_(http), options_(with_defaults(std::move(options))) {
  check_common(config_);
  const std::string what = "SMS provider '" + config_.name + "' (aliyun)";
  access_key_id_ = require_env(getenv, config_.credentials_env + "_ACCESS_KEY_ID", what);
  access_key_secret_ = require_env(getenv, config_.credentials_env + "_ACCESS_KEY_SECRET", what);
}

std::string AliyunSms::request_key(const Delivery&) const { return ""; }  // SendBatchSms takes any variables

std::size_t AliyunSms::max_batch(bool uniform) const {
  const std::size_t documented = uniform ? aliyun::kMaxSendSmsNumbers : aliyun::kMaxSendBatchSmsNumbers;
  return config_.batch_max > 0 ? std::min<std::size_t>(config_.batch_max, documented) : documented;
}

aliyun::RpcContext AliyunSms::rpc_context() const {
  aliyun::RpcContext ctx;
  ctx.method = "POST";
  ctx.region_id = config_.region;
  ctx.format = "JSON";
  ctx.signature_nonce = options_.nonce();
  ctx.unix_ms = options_.now_ms();
  return ctx;
}

HttpResponse AliyunSms::post_form(const std::string& signed_query) {
  HttpRequest http_req;
  http_req.method = "POST";
  http_req.url = strip_trailing_slash(config_.endpoint) + "/";
  http_req.headers = {{"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"},
                      {"Accept", "application/json"}};
  http_req.body = signed_query;
  http_req.timeout_ms = config_.timeout_ms;
  return http_.send(http_req);
}

std::vector<ProviderResult> AliyunSms::send(std::span<const Delivery* const> group) {
  if (group.empty()) return {};
  const Delivery& first = *group.front();
  const auto tmpl = config_.templates.find(first.template_name);
  if (tmpl == config_.templates.end()) {
    ProviderResult r;
    r.outcome.provider = config_.name;
    r.outcome.code = "no_provider_template";
    r.outcome.message = "no provider template for '" + first.template_name + "' at " + config_.name;
    r.try_next = true;
    return same_for_all(group.size(), r);
  }
  std::vector<std::string> e164;
  std::vector<std::string> numbers;
  std::vector<std::map<std::string, std::string>> vars;
  for (const Delivery* d : group) {
    e164.push_back(to_e164(d->address));
    numbers.push_back(aliyun_number(e164.back()));
    vars.push_back(delivery_template_vars(*d));
  }
  const bool uniform = std::all_of(vars.begin(), vars.end(), [&](const auto& v) { return v == vars.front(); });
  Result<aliyun::RpcRequest> built = Error::permanent("invalid_request", "not built");
  if (uniform) {
    aliyun::SendSmsRequest req;
    req.phone_numbers = numbers;
    req.sign_name = config_.sign_name;
    req.template_code = tmpl->second;
    req.template_param = vars.front();
    req.out_id = batch_correlation_id(group);
    built = aliyun::build_send_sms({access_key_id_, access_key_secret_}, req, rpc_context());
  } else {
    // Each number its own variables (a broadcast where every lawyer gets a personal link): SendBatchSms.
    aliyun::SendBatchSmsRequest req;
    for (std::size_t i = 0; i < group.size(); ++i) req.items.push_back({numbers[i], config_.sign_name, vars[i]});
    req.template_code = tmpl->second;
    req.out_id = batch_correlation_id(group);
    built = aliyun::build_send_batch_sms({access_key_id_, access_key_secret_}, req, rpc_context());
  }
  if (!built) return same_for_all(group.size(), invalid_request_result(built.error(), config_));
  const HttpResponse resp = post_form(built->query);

  std::vector<ProviderResult> out;
  out.reserve(group.size());
  if (resp.transport_error()) return same_for_all(group.size(), transport_result(resp, config_));
  const auto parsed = aliyun::parse_send_sms_response(resp.body);
  if (!parsed) return same_for_all(group.size(), transport_result(resp, config_));
  const CodeClass cls = aliyun::classify(parsed->code);
  for (std::size_t i = 0; i < group.size(); ++i) {
    ProviderResult r = from_class(cls, config_);
    r.outcome.code = parsed->code;
    r.outcome.message = parsed->message;
    r.outcome.raw = resp.body;
    r.outcome.segments = billed_segments(config_, e164[i], group[i]->text);
    if (cls.kind == Kind::kAccepted) r.outcome.provider_message_id = parsed->biz_id + ":" + numbers[i];
    if (cls.needs_operator) r.outcome.message += " (" + cls.note + ")";
    out.push_back(std::move(r));
  }
  return out;
}

PriorSend AliyunSms::find_sent(const Delivery& d, std::int64_t since_ms) {
  const auto tmpl = config_.templates.find(d.template_name);
  const std::string number = aliyun_number(to_e164(d.address));
  std::vector<std::string> dates{beijing_yyyymmdd(since_ms - kPriorSendSlackMs)};
  if (const std::string today = beijing_yyyymmdd(options_.now_ms()); today != dates.front()) dates.push_back(today);
  for (const auto& date : dates) {
    for (int page = 1; page <= 10; ++page) {
      aliyun::QuerySendDetailsRequest q{number, date, 50, page};
      auto built = aliyun::build_query_send_details({access_key_id_, access_key_secret_}, q, rpc_context());
      if (!built) return prior_unknown(config_, built.error().code, built.error().message);
      const HttpResponse resp = post_form(built->query);
      if (resp.transport_error()) return prior_unknown(config_, "transport", resp.error);
      const auto parsed = aliyun::parse_query_send_details_response(resp.body);
      if (!parsed) return prior_unknown(config_, parsed.error().code, parsed.error().message);
      if (parsed->code != "OK") return prior_unknown(config_, parsed->code, parsed->message);
      for (const auto& rec : parsed->details) {
        const bool same_template = tmpl != config_.templates.end() && rec.template_code == tmpl->second;
        if (!names_delivery(rec.out_id, d, same_template, rec.send_date_ms, since_ms)) continue;
        PriorSend p;
        p.kind = PriorSend::Kind::kSent;
        SendOutcome& o = p.outcome;
        o.provider = config_.name;
        o.code = rec.err_code;
        o.raw = resp.body;
        o.segments = billed_segments(config_, to_e164(d.address), d.text);
        if (rec.send_status == 3) {
          o.kind = Kind::kDelivered;
          o.message = "QuerySendDetails: delivered " + rec.receive_date + " (Beijing)";
        } else if (rec.send_status == 2) {
          o.kind = Kind::kPermanent;
          o.message = "QuerySendDetails: failed " + rec.receive_date + " (Beijing)";
        } else {
          // Taken, its report not in yet; without the BizId its receipt cannot be matched, so ask again later.
          return prior_unknown(config_, "waiting_for_receipt", "QuerySendDetails: sent, waiting for the receipt");
        }
        return p;
      }
      if (static_cast<long long>(page) * 50 >= parsed->total_count) break;
    }
  }
  return PriorSend{};
}

// ---- Tencent ---------------------------------------------------------------------------

TencentSms::TencentSms(SmsProviderConfig config, HttpClient& http, const Getenv& getenv, SmsChannelOptions options)
    : config_(std::move(config)), http_(http), options_(with_defaults(std::move(options))) {
  check_common(config_);
  const std::string what = "SMS provider '" + config_.name + "' (tencent)";
  if (config_.sdk_app_id.empty()) throw StartupError(what + " has no sdk_app_id (SmsSdkAppId)");
  if (config_.region.empty() || config_.region.rfind("cn-", 0) == 0) {
    throw StartupError(what + ": region '" + config_.region +
                       "' is not a Tencent Cloud region; hint: set region: ap-guangzhou (or ap-beijing, ap-nanjing)");
  }
  secret_id_ = require_env(getenv, config_.credentials_env + "_SECRET_ID", what);
  secret_key_ = require_env(getenv, config_.credentials_env + "_SECRET_KEY", what);
  host_ = url_authority(config_.endpoint);
}

std::string TencentSms::request_key(const Delivery& d) const {
  // One TemplateParamSet for every number of a request: only the variables this template uses must agree.
  std::string key;
  if (const auto names = config_.template_params.find(d.template_name); names != config_.template_params.end()) {
    const auto vars = delivery_template_vars(d);
    for (const auto& name : names->second) {
      const auto v = vars.find(name);
      key += (v == vars.end() ? std::string("\x1e") : v->second) + '\x1f';
    }
  }
  return key;
}

std::size_t TencentSms::max_batch(bool) const {
  return config_.batch_max > 0 ? std::min<std::size_t>(config_.batch_max, tencent::kMaxPhoneNumbers)
                               : tencent::kMaxPhoneNumbers;
}

HttpResponse TencentSms::post(const tencent::HttpRequest& signed_request) {
  HttpRequest http_req;
  http_req.method = "POST";
  http_req.url = strip_trailing_slash(config_.endpoint) + "/";
  http_req.headers = signed_request.headers;
  http_req.body = signed_request.body;
  http_req.timeout_ms = config_.timeout_ms;
  return http_.send(http_req);
}

std::vector<ProviderResult> TencentSms::send(std::span<const Delivery* const> group) {
  if (group.empty()) return {};
  const Delivery& first = *group.front();
  const auto tmpl = config_.templates.find(first.template_name);
  if (tmpl == config_.templates.end()) {
    ProviderResult r;
    r.outcome.provider = config_.name;
    r.outcome.code = "no_provider_template";
    r.outcome.message = "no provider template for '" + first.template_name + "' at " + config_.name;
    r.try_next = true;
    return same_for_all(group.size(), r);
  }
  tencent::SendSmsRequest req;
  for (const Delivery* d : group) req.phone_numbers.push_back(to_e164(d->address));
  req.sms_sdk_app_id = config_.sdk_app_id;
  req.template_id = tmpl->second;
  req.sign_name = config_.sign_name;
  req.session_context = batch_correlation_id(group);
  if (const auto names = config_.template_params.find(first.template_name); names != config_.template_params.end()) {
    const auto vars = delivery_template_vars(first);
    for (const auto& name : names->second) {
      const auto v = vars.find(name);
      if (v == vars.end()) {
        ProviderResult r;
        r.outcome.provider = config_.name;
        r.outcome.code = "template_param_missing";
        r.outcome.message = "Tencent template '" + tmpl->second + "' needs '" + name + "', which delivery " + first.id +
                            " does not provide; hint: check template_params of " + config_.name;
        r.try_next = true;  // another provider's template may not need it
        return same_for_all(group.size(), r);
      }
      req.template_params.push_back(v->second);
    }
  }
  const std::int64_t timestamp = options_.now_ms() / 1000;
  auto built = tencent::build_send_sms({secret_id_, secret_key_}, req, config_.region, timestamp, host_);
  if (!built) return same_for_all(group.size(), invalid_request_result(built.error(), config_));

  const HttpResponse resp = post(*built);

  if (resp.transport_error()) return same_for_all(group.size(), transport_result(resp, config_));
  const auto parsed = tencent::parse_send_sms_response(resp.body);
  if (!parsed) return same_for_all(group.size(), transport_result(resp, config_));
  if (parsed->error) {
    const CodeClass cls = tencent::classify(parsed->error->code);
    ProviderResult r = from_class(cls, config_);
    r.outcome.message = parsed->error->message;
    if (cls.needs_operator) r.outcome.message += " (" + cls.note + ")";
    r.outcome.raw = resp.body;
    return same_for_all(group.size(), r);
  }
  std::map<std::string, const tencent::SendStatus*> by_number;
  for (const auto& st : parsed->statuses) by_number.emplace(st.phone_number, &st);
  std::vector<ProviderResult> out;
  out.reserve(group.size());
  for (std::size_t i = 0; i < group.size(); ++i) {
    const auto it = by_number.find(req.phone_numbers[i]);
    if (it == by_number.end()) {
      // The request went through but says nothing of this number: resending could double-send.
      ProviderResult r;
      r.outcome.provider = config_.name;
      r.outcome.code = "invalid_response";
      r.outcome.message = "Tencent answer has no SendStatus for " + mask_phone(req.phone_numbers[i]);
      r.outcome.raw = resp.body;
      out.push_back(std::move(r));
      continue;
    }
    const tencent::SendStatus& st = *it->second;
    const CodeClass cls = tencent::classify(st.code);
    ProviderResult r = from_class(cls, config_);
    r.outcome.message = st.message;
    if (cls.needs_operator) r.outcome.message += " (" + cls.note + ")";
    r.outcome.raw = resp.body;
    r.outcome.segments =
        st.fee > 0 ? static_cast<int>(st.fee) : billed_segments(config_, req.phone_numbers[i], group[i]->text);
    if (cls.kind == Kind::kAccepted) r.outcome.provider_message_id = st.serial_no;
    out.push_back(std::move(r));
  }
  return out;
}

std::unique_ptr<SmsProvider> make_sms_provider(const SmsProviderConfig& config, HttpClient& http, const Getenv& getenv,
                                               const SmsChannelOptions& options) {
  if (config.kind == "aliyun") return std::make_unique<AliyunSms>(config, http, getenv, options);
  if (config.kind == "tencent") return std::make_unique<TencentSms>(config, http, getenv, options);
  throw StartupError("SMS provider '" + config.name + "': unknown kind '" + config.kind +
                     "'; hint: kind is aliyun or tencent");
}

PriorSend TencentSms::find_sent(const Delivery& d, std::int64_t since_ms) {
  tencent::PullStatusRequest q;
  q.phone_number = to_e164(d.address);
  q.sms_sdk_app_id = config_.sdk_app_id;
  q.begin_time = (since_ms - kPriorSendSlackMs) / 1000;
  q.end_time = options_.now_ms() / 1000 + 1;
  const std::int64_t timestamp = options_.now_ms() / 1000;
  auto built = tencent::build_pull_status_by_phone({secret_id_, secret_key_}, q, config_.region, timestamp, host_);
  if (!built) return prior_unknown(config_, built.error().code, built.error().message);
  const HttpResponse resp = post(*built);
  if (resp.transport_error()) return prior_unknown(config_, "transport", resp.error);
  const auto parsed = tencent::parse_pull_status_response(resp.body);
  if (!parsed) return prior_unknown(config_, parsed.error().code, parsed.error().message);
  if (parsed->error) return prior_unknown(config_, parsed->error->code, parsed->error->message);
  for (const auto& st : parsed->statuses) {
    // The pulled statuses carry no template; within the window a batch id for this number is taken as ours.
    if (!names_delivery(st.session_context, d, true, st.user_receive_time * 1000, since_ms)) continue;
    PriorSend p;
    p.kind = PriorSend::Kind::kSent;
    SendOutcome& o = p.outcome;
    o.provider = config_.name;
    o.provider_message_id = st.serial_no;
    o.code = st.report_status;
    o.message = "PullSmsSendStatusByPhoneNumber: " + st.report_status + " " + st.description;
    o.raw = resp.body;
    o.kind = st.report_status == "SUCCESS" ? Kind::kDelivered : Kind::kPermanent;
    o.segments = billed_segments(config_, q.phone_number, d.text);
    return p;
  }
  return PriorSend{};
}

// ---- Circuit breaker -------------------------------------------------------------------

CircuitBreaker::CircuitBreaker(int failure_threshold, std::int64_t open_ms)
    : threshold_(std::max(1, failure_threshold)), open_ms_(std::max<std::int64_t>(0, open_ms)) {}

bool CircuitBreaker::allow(std::int64_t now_ms) {
  std::lock_guard lock(mu_);
  switch (state_) {
    case State::kClosed:
      return true;
    case State::kOpen:
      if (now_ms < open_until_) return false;
      state_ = State::kHalfOpen;
      trial_in_flight_ = true;
      return true;
    case State::kHalfOpen:
      if (trial_in_flight_) return false;
      trial_in_flight_ = true;
      return true;
  }
  return false;
}

void CircuitBreaker::record_success() {
  std::lock_guard lock(mu_);
  consecutive_ = 0;
  if (state_ == State::kHalfOpen) state_ = State::kClosed;
  trial_in_flight_ = false;
}

void CircuitBreaker::abandon_trial() {
  std::lock_guard lock(mu_);
  trial_in_flight_ = false;
}

void CircuitBreaker::record_failure(std::int64_t now_ms) {
  std::lock_guard lock(mu_);
  ++consecutive_;
  if (state_ == State::kHalfOpen || (state_ == State::kClosed && consecutive_ >= threshold_)) {
    state_ = State::kOpen;
    open_until_ = now_ms + open_ms_;
  }
  trial_in_flight_ = false;
}

void CircuitBreaker::force_open(std::int64_t now_ms) {
  std::lock_guard lock(mu_);
  state_ = State::kOpen;
  open_until_ = now_ms + open_ms_;
  trial_in_flight_ = false;
}

CircuitBreaker::State CircuitBreaker::state(std::int64_t now_ms) const {
  std::lock_guard lock(mu_);
  if (state_ == State::kOpen && now_ms >= open_until_) return State::kHalfOpen;  // the next allow() makes the trial
  return state_;
}

// ---- Channel ---------------------------------------------------------------------------

// A provider with its health, its in-flight bound and its counters.
struct SmsChannel::Slot {
  Slot(std::unique_ptr<SmsProvider> p, const SmsConfig& c)
      : provider(std::move(p)),
        breaker(c.circuit_failures, std::int64_t{c.circuit_open_s} * 1000),
        permits(std::max(1, provider->config().concurrency)) {}

  void acquire() {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return permits > 0; });
    --permits;
  }
  void release() {
    {
      std::lock_guard lock(mu);
      ++permits;
    }
    cv.notify_one();
  }

  std::unique_ptr<SmsProvider> provider;
  CircuitBreaker breaker;
  std::mutex mu;
  std::condition_variable cv;
  int permits;
  std::atomic<std::uint64_t> requests{0};
  std::atomic<std::uint64_t> faults{0};
  std::atomic<std::uint64_t> failovers{0};
};

SmsChannel::SmsChannel(const SmsConfig& config, HttpClient& http, const Getenv& getenv, SmsChannelOptions options)
    : config_(config), options_(with_defaults(std::move(options))) {
  std::set<std::string> names;
  for (const auto& pc : config_.providers) {
    if (!names.insert(pc.name).second) throw StartupError("SMS provider name '" + pc.name + "' is used twice");
    slots_.push_back(std::make_unique<Slot>(make_sms_provider(pc, http, getenv, options_), config_));
  }
  if (slots_.empty()) throw StartupError("SMS channel enabled without providers; hint: list sms.providers");
}

SmsChannel::SmsChannel(const SmsConfig& config, std::vector<std::unique_ptr<SmsProvider>> providers,
                       SmsChannelOptions options)
    : config_(config), options_(with_defaults(std::move(options))) {
  for (auto& p : providers) slots_.push_back(std::make_unique<Slot>(std::move(p), config_));
  if (slots_.empty()) throw StartupError("SMS channel enabled without providers; hint: list sms.providers");
}

SmsChannel::~SmsChannel() = default;

std::vector<SmsChannel::Slot*> SmsChannel::provider_order() {
  std::vector<Slot*> rest;
  for (auto& s : slots_) rest.push_back(s.get());
  std::stable_sort(rest.begin(), rest.end(), [](const Slot* a, const Slot* b) {
    return a->provider->config().priority < b->provider->config().priority;
  });
  // Within each priority tier: weighted draw without replacement.
  std::vector<Slot*> order;
  std::lock_guard lock(rng_mu_);
  for (std::size_t begin = 0; begin < rest.size();) {
    std::size_t end = begin;
    const int prio = rest[begin]->provider->config().priority;
    while (end < rest.size() && rest[end]->provider->config().priority == prio) ++end;
    std::vector<Slot*> tier(rest.begin() + static_cast<std::ptrdiff_t>(begin),
                            rest.begin() + static_cast<std::ptrdiff_t>(end));
    while (!tier.empty()) {
      std::uint64_t total = 0;
      for (const Slot* s : tier) total += static_cast<std::uint64_t>(std::max(0, s->provider->config().weight));
      std::size_t pick = 0;
      if (total > 0) {
        std::uint64_t r = options_.random() % total;
        for (std::size_t i = 0; i < tier.size(); ++i) {
          const auto w = static_cast<std::uint64_t>(std::max(0, tier[i]->provider->config().weight));
          if (r < w) {
            pick = i;
            break;
          }
          r -= w;
        }
      }
      order.push_back(tier[pick]);
      tier.erase(tier.begin() + static_cast<std::ptrdiff_t>(pick));
    }
    begin = end;
  }
  return order;
}

namespace {

// Splits `items` into chunks of at most `max` where no number appears twice
// (two deliveries to one number in one request could not be told apart).
std::vector<std::vector<std::size_t>> chunk_distinct(std::span<const Delivery> batch,
                                                     const std::vector<std::size_t>& items, std::size_t max) {
  std::vector<std::vector<std::size_t>> chunks;
  std::vector<std::set<std::string>> numbers;
  for (const std::size_t i : items) {
    const std::string number = to_e164(batch[i].address);
    bool placed = false;
    for (std::size_t c = 0; c < chunks.size() && !placed; ++c) {
      if (chunks[c].size() < max && numbers[c].count(number) == 0) {
        chunks[c].push_back(i);
        numbers[c].insert(number);
        placed = true;
      }
    }
    if (!placed) {
      chunks.push_back({i});
      numbers.push_back({number});
    }
  }
  return chunks;
}

// The requests `items` make at provider `p`: by its request key, then at most max_batch numbers, none twice.
std::vector<std::vector<std::size_t>> provider_chunks(const SmsProvider& p, std::span<const Delivery> batch,
                                                      const std::vector<std::size_t>& items) {
  std::map<std::string, std::vector<std::size_t>> by_key;
  for (const std::size_t i : items) by_key[p.request_key(batch[i])].push_back(i);
  std::vector<std::vector<std::size_t>> chunks;
  for (const auto& [key, same] : by_key) {
    const auto vars = delivery_template_vars(batch[same.front()]);
    const bool uniform =
        std::all_of(same.begin(), same.end(), [&](std::size_t i) { return delivery_template_vars(batch[i]) == vars; });
    for (auto& c : chunk_distinct(batch, same, std::max<std::size_t>(1, p.max_batch(uniform)))) {
      chunks.push_back(std::move(c));
    }
  }
  return chunks;
}

}  // namespace

void SmsChannel::send_group(std::span<const Delivery> batch, const std::vector<std::size_t>& group,
                            std::vector<SendOutcome>& out) {
  const std::string& template_name = batch[group.front()].template_name;
  std::vector<std::size_t> remaining = group;
  std::map<std::size_t, SendOutcome> last;  // the latest failed-over outcome per delivery
  std::map<std::size_t, bool> saw_retryable;
  std::map<std::size_t, std::string> trail;  // "aliyun-a http_503; tencent-b no_response"
  bool any_template = false;
  bool any_circuit_open = false;
  bool any_rate_limited = false;

  for (Slot* slot : provider_order()) {
    if (remaining.empty()) break;
    SmsProvider& p = *slot->provider;
    if (!p.has_template(template_name)) continue;
    any_template = true;
    std::vector<std::size_t> next;
    std::mutex mu;  // guards next, trail, last, saw_retryable, out and the any_ flags across this provider's requests
    const auto chunks = provider_chunks(p, batch, remaining);
    // This provider's requests go out side by side, up to its concurrency (Slot::acquire bounds them anyway).
    const auto width = std::min(parallelism(), static_cast<std::size_t>(std::max(1, p.config().concurrency)));
    parallel_for(chunks.size(), width, [&](std::size_t c) {
      std::vector<std::size_t> chunk = chunks[c];
      if (!slot->breaker.allow(options_.now_ms())) {
        std::lock_guard lock(mu);
        any_circuit_open = true;
        for (const std::size_t i : chunk) {
          trail[i] += (trail[i].empty() ? "" : "; ") + p.name() + " circuit_open";
          saw_retryable[i] = true;  // this provider may take it later
          next.push_back(i);
        }
        return;
      }
      // allow() may have made this chunk a half-open circuit's trial: it ends in a recorded success or failure,
      // or goes back when nothing was sent (no token, an exception), so the circuit never waits for it for ever.
      struct Trial {
        CircuitBreaker& breaker;
        bool settled = false;
        ~Trial() {
          if (!settled) breaker.abandon_trial();
        }
      } trial{slot->breaker};
      if (options_.take_tokens) {
        const std::size_t granted =
            std::min(chunk.size(), options_.take_tokens(p.name(), p.config().rate_per_sec, chunk.size()));
        std::lock_guard lock(mu);
        for (std::size_t k = granted; k < chunk.size(); ++k) {
          trail[chunk[k]] += (trail[chunk[k]].empty() ? "" : "; ") + p.name() + " rate_limited";
          saw_retryable[chunk[k]] = true;  // this provider may take it later
          next.push_back(chunk[k]);
          any_rate_limited = true;
        }
        chunk.resize(granted);
        if (chunk.empty()) return;
      }
      std::vector<const Delivery*> ds;
      ds.reserve(chunk.size());
      for (const std::size_t i : chunk) ds.push_back(&batch[i]);
      std::vector<ProviderResult> results;
      {
        struct Held {
          Slot& s;
          explicit Held(Slot& slot_in) : s(slot_in) { s.acquire(); }
          ~Held() { s.release(); }
          Held(const Held&) = delete;
          Held& operator=(const Held&) = delete;
        } held(*slot);
        results = p.send(ds);
      }
      ++slot->requests;
      results.resize(chunk.size());  // a provider must answer for each; a short answer leaves permanent blanks
      const bool fault = std::any_of(results.begin(), results.end(), [](const auto& r) { return r.provider_fault; });
      if (fault) {
        ++slot->faults;
        const auto before = slot->breaker.state(options_.now_ms());
        slot->breaker.record_failure(options_.now_ms());
        if (before != CircuitBreaker::State::kOpen &&
            slot->breaker.state(options_.now_ms()) == CircuitBreaker::State::kOpen) {
          spdlog::warn("sms: circuit of provider {} opened after {} ({}); traffic fails over for {} s", p.name(),
                       results.front().outcome.code, results.front().outcome.message, config_.circuit_open_s);
        }
      } else {
        slot->breaker.record_success();
      }
      trial.settled = true;
      std::lock_guard lock(mu);
      for (std::size_t k = 0; k < chunk.size(); ++k) {
        const std::size_t i = chunk[k];
        ProviderResult& r = results[k];
        if (r.outcome.provider.empty()) r.outcome.provider = p.name();
        if (r.try_next) {
          ++slot->failovers;
          trail[i] += (trail[i].empty() ? "" : "; ") + p.name() + " " + r.outcome.code;
          if (r.outcome.kind == Kind::kRetryable) saw_retryable[i] = true;
          spdlog::info("sms: delivery {} to {} not sent by {} ({}); trying the next provider", batch[i].id,
                       mask_phone(to_e164(batch[i].address)), p.name(), r.outcome.code);
          last[i] = std::move(r.outcome);
          next.push_back(i);
        } else {
          out[i] = std::move(r.outcome);
        }
      }
    });
    std::sort(next.begin(), next.end());  // the next provider sees them in the batch's order
    remaining = std::move(next);
  }

  for (const std::size_t i : remaining) {
    SendOutcome o;
    if (const auto it = last.find(i); it != last.end()) {
      o = std::move(it->second);
      // Any transient failure on the way means a later attempt may succeed.
      if (saw_retryable[i]) o.kind = Kind::kRetryable;
    } else if (!any_template) {
      o.kind = Kind::kPermanent;
      o.code = "no_provider_template";
      o.message = "no provider template for '" + template_name + "'; hint: add it to sms.providers[].templates";
    } else if (any_rate_limited) {
      o.kind = Kind::kRetryable;
      o.code = "rate_limited";
      o.message = "every SMS provider with template '" + template_name + "' is at its rate limit";
    } else {
      o.kind = Kind::kRetryable;
      o.code = "circuit_open";
      o.message = "every SMS provider with template '" + template_name + "' is shedding traffic (circuit open)";
    }
    if (o.provider.empty()) o.provider = "sms";
    if (!trail[i].empty() && (any_circuit_open || any_rate_limited || last.count(i) != 0)) {
      o.message += " [tried: " + trail[i] + "]";
    }
    out[i] = std::move(o);
  }
}

std::vector<SendOutcome> SmsChannel::send(std::span<const Delivery> batch) {
  std::vector<SendOutcome> out(batch.size());
  // Group the deliveries of one template: each provider splits a group into as few requests as it can.
  std::vector<std::vector<std::size_t>> groups;
  std::map<std::string, std::size_t> by_key;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const auto [it, inserted] = by_key.emplace(batch[i].template_name, groups.size());
    if (inserted) groups.emplace_back();
    groups[it->second].push_back(i);
  }
  parallel_for(groups.size(), parallelism(), [&](std::size_t g) { send_group(batch, groups[g], out); });
  return out;
}

std::size_t SmsChannel::parallelism() const {
  if (options_.max_parallel != 0) return options_.max_parallel;
  std::size_t parallel = 0;
  for (const auto& s : slots_) parallel += static_cast<std::size_t>(std::max(1, s->provider->config().concurrency));
  return std::min(parallel, kMaxParallel);
}

void SmsChannel::report_receipt_silence(std::string_view provider) {
  for (auto& s : slots_) {
    if (s->provider->name() == provider) {
      s->breaker.force_open(options_.now_ms());
      spdlog::warn("sms: no receipts from provider {}: circuit opened for {} s", provider, config_.circuit_open_s);
    }
  }
}

std::vector<SmsChannel::ProviderStats> SmsChannel::stats() const {
  std::vector<ProviderStats> out;
  const std::int64_t now = options_.now_ms();
  for (const auto& s : slots_) {
    ProviderStats st;
    st.provider = s->provider->name();
    switch (s->breaker.state(now)) {
      case CircuitBreaker::State::kClosed:
        st.circuit = "closed";
        break;
      case CircuitBreaker::State::kOpen:
        st.circuit = "open";
        break;
      case CircuitBreaker::State::kHalfOpen:
        st.circuit = "half_open";
        break;
    }
    st.requests = s->requests.load();
    st.faults = s->faults.load();
    st.failovers = s->failovers.load();
    out.push_back(std::move(st));
  }
  return out;
}

std::vector<PriorSend> SmsChannel::find_prior_sends(std::span<const Delivery> batch, std::int64_t since_ms) {
  std::vector<PriorSend> out;
  out.reserve(batch.size());
  for (const Delivery& d : batch) {
    PriorSend answer;  // kNotSent unless a provider has it or cannot say
    for (auto& slot : slots_) {
      SmsProvider& p = *slot->provider;
      if (!p.has_template(d.template_name)) continue;
      PriorSend r = p.find_sent(d, since_ms);
      if (r.kind == PriorSend::Kind::kSent) {
        answer = std::move(r);
        break;
      }
      if (r.kind == PriorSend::Kind::kUnknown) answer = std::move(r);
    }
    spdlog::info("sms: delivery {} to {} had an attempt with no recorded outcome: {} {}", d.id, mask_phone(d.address),
                 answer.kind == PriorSend::Kind::kSent
                     ? "the provider has it"
                     : (answer.kind == PriorSend::Kind::kUnknown ? "cannot tell yet" : "not sent"),
                 answer.outcome.code);
    out.push_back(std::move(answer));
  }
  return out;
}

}  // namespace songda::sms
