// The provider simulator: one HTTP server of ours that plays Aliyun SMS,
// Tencent Cloud SMS and WeChat (Official Account template messages,
// mini-program subscribe messages, access tokens) for tests, the demo and
// benchmarks. It speaks the documented wire formats
// (shared/reference/provider-apis.md), verifies every signature with the
// protocol libraries (channels/sms, channels/wechat), records what it accepted,
// and pushes the documented delivery receipts back to Songda's callback URLs,
// with configurable delay, outcome, duplicates and retries. Faults (latency,
// error rates, fixed error codes, timeouts, a provider that is down) are set
// at run time through a JSON control API under /_sim/ (simulator/README.md)
// or through the same calls in process.
//
// It is a loopback test tool: the control API has no authentication, and
// start() refuses to listen on anything but a loopback address.
//
// Ownership: a Simulator owns its HTTP server, its thread pool and the
// receipt pusher threads; stop() (or the destructor) joins them all and drops
// receipts not yet pushed.
//
// Thread-safety: after start(), every public method may be called from any
// thread, concurrently with requests being served. start() and stop() are not
// reentrant: call them from one owner thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "gateway/core/result.h"

namespace songda::sim {

enum class Provider { kAliyun, kTencent, kWeChat };
inline constexpr Provider kAllProviders[] = {Provider::kAliyun, Provider::kTencent, Provider::kWeChat};

// "aliyun", "tencent", "wechat" (the names used by the control API and in stats).
std::string_view provider_name(Provider provider);
std::optional<Provider> provider_from_name(std::string_view name);

// What happens to a message after it was accepted.
struct ReceiptBehaviour {
  // "success", "failure", or "none" (no receipt is ever pushed). For WeChat a
  // verbatim status starting with "failed" ("failed:user block") is also
  // accepted: it means "failure" with that status.
  std::string outcome = "success";
  // The failure code: Aliyun err_code ("MK:0001"), Tencent errmsg ("UNDELIV"),
  // WeChat Status ("failed:user block"). Empty = the provider default above.
  std::string err_code;
  std::string err_msg;     // Aliyun err_msg / Tencent description; empty = a default text
  int delay_ms = 200;      // from acceptance to the first push
  bool duplicate = false;  // push every receipt twice (the copy 100 ms after the first)
  // Delays before each retry of a push Songda did not acknowledge (non-2xx or
  // no answer); the size is the number of retries (Aliyun documents 3 retries,
  // at 1, 5 and 10 minutes; shortened here). Then the receipt is dropped.
  std::vector<int> retry_delays_ms = {200, 1000, 2000};
};

// Faults and behaviour of one provider. Provider error codes are strings; for
// WeChat they are errcodes written in decimal ("43101", "-1").
struct ProviderBehaviour {
  int latency_ms = 0;       // added before every answer of this provider (no lock is held while waiting)
  double error_rate = 0.0;  // 0..1: share of send requests answered with an injected error
  // How an injected error is answered: 0 = with the provider error code
  // `error_code` (in the provider's error shape); 4xx/5xx = that HTTP status.
  int http_status = 0;
  std::string error_code;        // empty = "isp.SYSTEM_ERROR" / "InternalError.SendAndRecvFail" / "-1"
  std::string fixed_error_code;  // non-empty: every send is refused with this code
  bool per_number = false;       // Tencent: injected codes go per number in SendStatusSet, not in Response.Error
  std::map<std::string, std::string> recipient_errors;  // phone number or openid -> code for sends to it
  bool down = false;                                    // every request of this provider fails
  std::string down_mode = "reset";                      // "reset" (connection closed, no answer) or "503"
  double timeout_rate = 0.0;                            // 0..1: share of sends answered only after timeout_ms
  int timeout_ms = 10000;                  // past the client's timeout; the send is still accepted (answer lost)
  std::int64_t token_expires_in_s = 7200;  // WeChat access tokens
  int token_overlap_ms = 300000;           // WeChat: an old token's validity after a new one is issued
  ReceiptBehaviour receipt;
};

// Default credentials, shared by tests and the demo; main.cc reads the real
// ones from the environment (see options_from_environment).
inline constexpr std::string_view kDefaultAliyunAccessKeyId = "sim-aliyun-access-key-id";
inline constexpr std::string_view kDefaultAliyunAccessKeySecret = "sim-aliyun-access-key-secret";
inline constexpr std::string_view kDefaultTencentSecretId = "AKIDsimulator00000000000000000000000";
inline constexpr std::string_view kDefaultTencentSecretKey = "sim-tencent-secret-key";
inline constexpr std::string_view kDefaultWechatAppSecret = "sim-wechat-app-secret";
inline constexpr std::string_view kDefaultWechatCallbackToken = "sim-wechat-callback-token";
inline constexpr std::string_view kDefaultCallbackKey = "sim-callback-key";

// Sets the environment variables an in-process Songda reads its provider credentials and callback secrets
// from (SONGDA_ALIYUN_ACCESS_KEY_ID, …, SONGDA_CALLBACK_KEY) to the defaults above: for the demo, tests and
// benchmarks that talk to a simulator started with default credentials.
void export_default_credentials();

struct SimulatorOptions {
  std::string listen_host = "127.0.0.1";  // loopback only
  int listen_port = 0;                    // 0 = any free port (see Simulator::port())
  int threads = 16;                       // HTTP worker threads (latency sleeps occupy one each)
  // Base URL of Songda ("http://127.0.0.1:8080"); receipts go to
  // {callback_base}/callbacks/{aliyun/sms-report,tencent/sms-status,wechat}.
  // Empty = receipts are not pushed (counted as receipts_skipped).
  std::string callback_base;

  std::string aliyun_access_key_id{kDefaultAliyunAccessKeyId};
  std::string aliyun_access_key_secret{kDefaultAliyunAccessKeySecret};
  std::string tencent_secret_id{kDefaultTencentSecretId};
  std::string tencent_secret_key{kDefaultTencentSecretKey};
  std::string wechat_app_secret{kDefaultWechatAppSecret};  // any appid is accepted with this secret
  std::string wechat_callback_token{kDefaultWechatCallbackToken};
  std::string wechat_account = "gh_5f3d1c0a9b7e";  // ToUserName of the completion pushes
  std::string callback_key{kDefaultCallbackKey};   // ?key= of the Aliyun and Tencent receipt URLs

  int receipt_threads = 4;            // concurrent receipt pushes
  int receipt_batch_max = 100;        // Aliyun/Tencent reports per push when several are due
  int receipt_timeout_ms = 5000;      // Songda must answer a push within this
  std::size_t max_messages = 100000;  // accepted messages kept per provider for /_sim/messages
  std::uint64_t seed = 0;             // error/timeout draws; 0 = random

  // Startup behaviour of each provider (also what /_sim/reset returns to).
  ProviderBehaviour aliyun;
  ProviderBehaviour tencent;
  ProviderBehaviour wechat;
};

// Options with credentials from the environment where set:
// SONGDA_ALIYUN_ACCESS_KEY_ID, SONGDA_ALIYUN_ACCESS_KEY_SECRET,
// SONGDA_TENCENT_SECRET_ID, SONGDA_TENCENT_SECRET_KEY, SONGDA_WECHAT_APP_SECRET,
// SONGDA_WECHAT_CALLBACK_TOKEN, SONGDA_CALLBACK_KEY; unset or empty ones keep
// the value in `base`.
SimulatorOptions options_from_environment(SimulatorOptions base = {});

class Simulator {
 public:
  explicit Simulator(SimulatorOptions options);
  ~Simulator();
  Simulator(const Simulator&) = delete;
  Simulator& operator=(const Simulator&) = delete;

  // Binds and serves on background threads. Throws songda::StartupError when
  // the host is not loopback or the port cannot be bound. Also ignores SIGPIPE
  // for the process (a connection closed on purpose must not kill it).
  void start();
  // Stops serving, wakes requests sleeping in injected latency, joins all
  // threads. Idempotent.
  void stop();

  [[nodiscard]] int port() const;
  [[nodiscard]] std::string base_url() const;  // "http://127.0.0.1:PORT"
  // Requests waiting in injected latency right now (they wait side by side, not in turn).
  [[nodiscard]] int requests_in_latency() const;

  // ---- The control API, in process (same JSON as the HTTP calls) -----------------
  // POST /_sim/config. Error "invalid_config" names the offending field; nothing
  // is changed then.
  Result<nlohmann::json> configure(const nlohmann::json& body);
  void set_behaviour(Provider provider, const ProviderBehaviour& behaviour);
  [[nodiscard]] ProviderBehaviour behaviour(Provider provider) const;
  void set_callback_base(std::string url);
  [[nodiscard]] nlohmann::json config_json() const;  // GET /_sim/config
  // POST /_sim/reset: counters, messages, nonces, client_msg_id dedup, tokens,
  // pending receipts and every provider's behaviour back to the startup
  // options. The callback base set at run time is kept.
  void reset();
  // GET /_sim/stats; brief = without the per_key and duplicates maps.
  [[nodiscard]] nlohmann::json stats(bool brief = false) const;
  // GET /_sim/messages; nullopt provider = all, empty key = any.
  [[nodiscard]] nlohmann::json messages(std::optional<Provider> provider, std::string_view key = {}) const;
  // POST /_sim/wechat/expire-token: every token issued so far now answers
  // `errcode` (40001 "invalid credential" or 42001 "access_token expired");
  // the next token fetch issues a new one.
  void expire_wechat_tokens(int errcode = 40001);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace songda::sim
