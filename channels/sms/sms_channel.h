// The SMS channel: one Channel over several SMS providers (Aliyun, Tencent).
//
// What it does with one send() call:
//   * groups the deliveries of one template (a broadcast) and, per provider,
//     sends each group in as few requests as that provider allows: Aliyun
//     SendSms (1000 numbers) when every variable is the same, SendBatchSms
//     (100 numbers, variables per number) when they differ, e.g. each
//     lawyer's own link; Tencent SendSms (200 numbers) for the deliveries
//     whose TemplateParamSet is the same (SmsProviderConfig::batch_max can
//     lower these limits);
//   * picks providers by priority (lowest number first), weighted at random
//     among equal priorities, skipping providers whose circuit is open;
//   * on a retryable failure (transport error, timeout, 5xx, a documented
//     transient code) or a provider-account problem (balance, unapproved
//     sign/template: needs_operator) it fails over to the next provider IN THE
//     SAME call, with the same delivery id as idempotency key;
//   * keeps a circuit breaker per provider: circuit_failures consecutive faulty
//     requests open it for circuit_open_s, then one trial request half-opens it;
//     dispatch can open it too (report_receipt_silence) when receipts stop;
//   * bounds requests in flight per provider (SmsProviderConfig::concurrency);
//   * keeps each provider to its rate_per_sec through SmsChannelOptions::take_tokens:
//     what one provider may not take now goes to the next; when none may,
//     the outcome is kRetryable "rate_limited". (Dispatch's channel bucket,
//     the sum of the providers' rates, paces the claims.)
//
// Idempotency key: Aliyun OutId / Tencent SessionContext = the delivery id; for
// a batched request "b-" + the first 30 hex digits of sha256 of the sorted
// delivery ids joined by '\n' (receipts are then matched by provider message id).
// Outcome: kAccepted with provider = the provider's configured name and
// provider_message_id = "<BizId>:<number as sent>" (Aliyun: one BizId per
// request, receipts carry biz_id and phone_number) or the SerialNo (Tencent).
//
// Secrets: read once at construction from the environment through the injected
// getenv (<credentials_env>_ACCESS_KEY_ID / _ACCESS_KEY_SECRET for Aliyun,
// <credentials_env>_SECRET_ID / _SECRET_KEY for Tencent); a missing one is a
// StartupError naming the variable. Numbers are logged masked only.
//
// Ownership: the channel owns its providers; it borrows the HttpClient, which
// must outlive it. Thread-safety: send() and report_receipt_silence() may be
// called from any number of threads; send() runs its groups on up to
// SmsChannelOptions::max_parallel threads and joins them before returning.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "channels/channel.h"
#include "channels/http/channel_support.h"
#include "channels/http/http_client.h"
#include "channels/sms/aliyun_protocol.h"
#include "channels/sms/tencent_protocol.h"
#include "gateway/config/config.h"

namespace songda::sms {

// What is injected rather than read from the clock or the RNG (tests set them).
struct SmsChannelOptions {
  UnixMsClock now_ms;                     // request stamps and circuit timing; default: now_unix_ms
  std::function<std::string()> nonce;     // Aliyun SignatureNonce, fresh per request; default: random UUID
  std::function<std::uint64_t()> random;  // weighted provider choice; default: a seeded mt19937_64
  std::size_t max_parallel = 0;           // groups sent at once; 0 = sum of the providers' concurrency (<= 32)
  // Per-provider rate limit: how many of `wanted` messages the provider may take now at rate_per_sec (the app
  // wires a Redis token bucket shared by all instances). Unset: no per-provider limit.
  std::function<std::size_t(const std::string& provider, double rate_per_sec, std::size_t wanted)> take_tokens;
};

// One provider's answer for one delivery.
struct ProviderResult {
  SendOutcome outcome;
  bool provider_fault = false;  // the provider (not the recipient) failed: counts against its circuit
  bool try_next = false;        // another provider may succeed with this delivery now
};

// One SMS provider account. Implementations are thread-safe.
class SmsProvider {
 public:
  virtual ~SmsProvider() = default;
  [[nodiscard]] virtual const SmsProviderConfig& config() const = 0;
  [[nodiscard]] const std::string& name() const { return config().name; }
  // Deliveries (of one template) with the same key may go in one request.
  [[nodiscard]] virtual std::string request_key(const Delivery& d) const = 0;
  // Numbers one request may carry for deliveries of one request key, all of them `uniform` (the same
  // template variables) or not.
  [[nodiscard]] virtual std::size_t max_batch(bool uniform) const = 0;
  [[nodiscard]] bool has_template(const std::string& template_name) const {
    return config().templates.count(template_name) != 0;
  }
  // Sends `group` in one request: 1..max_batch() deliveries with the same
  // template_name and request key, each number at most once.
  // One result per delivery, in order. Never throws.
  virtual std::vector<ProviderResult> send(std::span<const Delivery* const> group) = 0;
  // Whether this provider took `d` in an attempt started at or after since_ms whose answer was lost: asks the
  // provider's own records (Aliyun QuerySendDetails, Tencent PullSmsSendStatusByPhoneNumber). A record matches
  // when it carries the delivery id (OutId / SessionContext) or, for a batched request ("b-..."), the same
  // number and template sent since then. Never throws.
  virtual PriorSend find_sent(const Delivery& d, std::int64_t since_ms) = 0;
};

// Aliyun dysmsapi SendSms (or SendBatchSms when the numbers' variables differ):
// RPC signature v1, POSTed as a form to `endpoint`/. TemplateParam = JSON
// object of the delivery's params plus court_name, case_number,
// recipient_name and link (all strings): the provider template uses what it needs. Numbers go out as Aliyun wants them:
// mainland without +86, others as country code + number.
class AliyunSms final : public SmsProvider {
 public:
  AliyunSms(SmsProviderConfig config, HttpClient& http, const Getenv& getenv, SmsChannelOptions options);
  [[nodiscard]] const SmsProviderConfig& config() const override { return config_; }
  [[nodiscard]] std::string request_key(const Delivery& d) const override;
  [[nodiscard]] std::size_t max_batch(bool uniform) const override;
  std::vector<ProviderResult> send(std::span<const Delivery* const> group) override;
  PriorSend find_sent(const Delivery& d, std::int64_t since_ms) override;

 private:
  [[nodiscard]] aliyun::RpcContext rpc_context() const;  // POST, JSON, a fresh nonce, now
  HttpResponse post_form(const std::string& signed_query);
  SmsProviderConfig config_;
  HttpClient& http_;
  SmsChannelOptions options_;
  std::string access_key_id_;
  std::string access_key_secret_;
};

// Tencent Cloud SendSms (2021-01-11): TC3-HMAC-SHA256 signed JSON POSTed to
// `endpoint`/. TemplateParamSet = the values of
// config.template_params[template_name], in that order (a template not listed
// there is sent without parameters). SessionContext = the delivery id.
class TencentSms final : public SmsProvider {
 public:
  TencentSms(SmsProviderConfig config, HttpClient& http, const Getenv& getenv, SmsChannelOptions options);
  [[nodiscard]] const SmsProviderConfig& config() const override { return config_; }
  [[nodiscard]] std::string request_key(const Delivery& d) const override;
  [[nodiscard]] std::size_t max_batch(bool uniform) const override;
  std::vector<ProviderResult> send(std::span<const Delivery* const> group) override;
  PriorSend find_sent(const Delivery& d, std::int64_t since_ms) override;

 private:
  HttpResponse post(const tencent::HttpRequest& signed_request);
  SmsProviderConfig config_;
  HttpClient& http_;
  SmsChannelOptions options_;
  std::string secret_id_;
  std::string secret_key_;
  std::string host_;  // the endpoint's host[:port], signed as the Host header
};

// Builds the provider named by config.kind ("aliyun" | "tencent"). StartupError
// on an unknown kind, a missing name/endpoint/sign/SmsSdkAppId, or a missing secret.
std::unique_ptr<SmsProvider> make_sms_provider(const SmsProviderConfig& config, HttpClient& http, const Getenv& getenv,
                                               const SmsChannelOptions& options);

// A consecutive-failure circuit breaker. closed -> (failures >= threshold) ->
// open -> (open_ms elapsed) -> half-open: one trial request; its success
// closes, its failure reopens. Thread-safe.
class CircuitBreaker {
 public:
  enum class State { kClosed, kOpen, kHalfOpen };
  CircuitBreaker(int failure_threshold, std::int64_t open_ms);
  // May a request go now? In half-open, true for exactly one caller (the trial).
  bool allow(std::int64_t now_ms);
  void record_success();
  void record_failure(std::int64_t now_ms);
  // The caller that allow() let through sent nothing after all (no token, an exception): a half-open circuit's
  // trial goes back, so the next caller tries. No effect otherwise.
  void abandon_trial();
  void force_open(std::int64_t now_ms);  // e.g. receipts stopped arriving
  [[nodiscard]] State state(std::int64_t now_ms) const;

 private:
  mutable std::mutex mu_;
  int threshold_;
  std::int64_t open_ms_;
  int consecutive_ = 0;
  State state_ = State::kClosed;
  std::int64_t open_until_ = 0;
  bool trial_in_flight_ = false;
};

class SmsChannel final : public Channel {
 public:
  // Builds one provider per config.providers entry (make_sms_provider).
  SmsChannel(const SmsConfig& config, HttpClient& http, const Getenv& getenv, SmsChannelOptions options = {});
  // With ready-made providers (tests; other provider kinds). config.providers is ignored.
  SmsChannel(const SmsConfig& config, std::vector<std::unique_ptr<SmsProvider>> providers,
             SmsChannelOptions options = {});
  ~SmsChannel() override;
  SmsChannel(const SmsChannel&) = delete;
  SmsChannel& operator=(const SmsChannel&) = delete;

  [[nodiscard]] std::string_view name() const override { return kChannelSms; }
  std::vector<SendOutcome> send(std::span<const Delivery> batch) override;
  // Asks every provider that has the delivery's template (the lost attempt may have gone to any of them).
  std::vector<PriorSend> find_prior_sends(std::span<const Delivery> batch, std::int64_t since_ms) override;

  // Opens `provider`'s circuit now (for circuit_open_s): dispatch calls this
  // when the provider's receipts stop arriving (receipt_timeout_s). Unknown names are ignored.
  void report_receipt_silence(std::string_view provider);

  struct ProviderStats {
    std::string provider;
    std::string circuit;  // "closed" | "open" | "half_open"
    std::uint64_t requests = 0;
    std::uint64_t faults = 0;     // requests that counted against the circuit
    std::uint64_t failovers = 0;  // deliveries handed on to the next provider
  };
  // For /metrics (see channels/sms/README.md for the metric names).
  [[nodiscard]] std::vector<ProviderStats> stats() const;

 private:
  struct Slot;
  void send_group(std::span<const Delivery> batch, const std::vector<std::size_t>& group,
                  std::vector<SendOutcome>& out);
  std::vector<Slot*> provider_order();
  [[nodiscard]] std::size_t parallelism() const;  // requests (or groups) sent at once

  SmsConfig config_;
  SmsChannelOptions options_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::mutex rng_mu_;
};

// "+8613800000000" form of a mobile number: kept when it starts with '+', "00"
// becomes '+', an 11-digit mainland number gets "+86"; spaces and dashes dropped.
std::string to_e164(std::string_view number);

// The OutId / SessionContext of a request: the delivery id for one delivery,
// "b-" + 30 hex of sha256(sorted ids joined by '\n') for several.
std::string batch_correlation_id(std::span<const Delivery* const> group);

}  // namespace songda::sms
