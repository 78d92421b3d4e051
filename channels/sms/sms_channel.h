// The SMS channel: one Channel over several SMS providers (Aliyun, Tencent).
//
// What it does with one send() call:
//   * groups the deliveries whose provider request would be identical but for
//     the number (same template, same template variables: a broadcast) and
//     sends each group in as few requests as the provider allows (Aliyun
//     SendSms 1000 numbers, Tencent SendSms 200; SmsProviderConfig::batch_max
//     can lower it); every other delivery is one request;
//   * picks providers by priority (lowest number first), weighted at random
//     among equal priorities, skipping providers whose circuit is open;
//   * on a retryable failure (transport error, timeout, 5xx, a documented
//     transient code) or a provider-account problem (balance, unapproved
//     sign/template: needs_operator) it fails over to the next provider IN THE
//     SAME call, with the same delivery id as idempotency key;
//   * keeps a circuit breaker per provider: circuit_failures consecutive faulty
//     requests open it for circuit_open_s, then one trial request half-opens it;
//     dispatch can open it too (report_receipt_silence) when receipts stop;
//   * bounds requests in flight per provider (SmsProviderConfig::concurrency).
// Rate limiting is dispatch's business, not this class's.
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
#include "gateway/config/config.h"

namespace songda::sms {

// What is injected rather than read from the clock or the RNG (tests set them).
struct SmsChannelOptions {
  UnixMsClock now_ms;                     // request stamps and circuit timing; default: now_unix_ms
  std::function<std::string()> nonce;     // Aliyun SignatureNonce, fresh per request; default: random UUID
  std::function<std::uint64_t()> random;  // weighted provider choice; default: a seeded mt19937_64
  std::size_t max_parallel = 0;           // groups sent at once; 0 = sum of the providers' concurrency (<= 32)
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
  // Numbers one request may carry.
  [[nodiscard]] virtual std::size_t max_batch() const = 0;
  [[nodiscard]] bool has_template(const std::string& template_name) const {
    return config().templates.count(template_name) != 0;
  }
  // Sends `group` in one request: 1..max_batch() deliveries with the same
  // template_name and the same template variables, each number at most once.
  // One result per delivery, in order. Never throws.
  virtual std::vector<ProviderResult> send(std::span<const Delivery* const> group) = 0;
};

// Aliyun dysmsapi SendSms: RPC signature v1, POSTed as a form to `endpoint`/.
// TemplateParam = JSON object of the delivery's params plus court_name,
// case_number, recipient_name and link (all strings): the provider template
// uses what it needs. Numbers go out as Aliyun wants them: mainland without
// +86, others as country code + number.
class AliyunSms final : public SmsProvider {
 public:
  AliyunSms(SmsProviderConfig config, HttpClient& http, const Getenv& getenv, SmsChannelOptions options);
  [[nodiscard]] const SmsProviderConfig& config() const override { return config_; }
  [[nodiscard]] std::size_t max_batch() const override;
  std::vector<ProviderResult> send(std::span<const Delivery* const> group) override;

 private:
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
  [[nodiscard]] std::size_t max_batch() const override;
  std::vector<ProviderResult> send(std::span<const Delivery* const> group) override;

 private:
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
