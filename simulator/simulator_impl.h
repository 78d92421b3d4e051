// Internals of the provider simulator, shared by simulator.cc (lifecycle,
// control API, stats) and providers.cc (the Aliyun, Tencent and WeChat
// endpoints). Not a public header.
//
// Ownership: Impl owns the HTTP server, its listening thread and the
// ReceiptPusher; stop() joins them. Behaviours are immutable snapshots shared
// with the requests that are using them.
//
// Locking: behaviour_mu_ guards the behaviours (copied once per request, so
// a request sees one consistent behaviour); each provider's ProviderState has
// its own mutex for counters, keys and messages; wechat_mu_ guards tokens and
// client_msg_id dedup; nonce_mu_ the Aliyun nonces. No lock is held across a
// latency or timeout sleep or across a receipt POST.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "simulator/receipts.h"
#include "simulator/sim_util.h"
#include "simulator/simulator.h"

namespace httplib {
class Server;
struct Request;
struct Response;
class ContentReader;
}  // namespace httplib

namespace songda::sim {

struct Counters {
  std::uint64_t requests = 0;              // send requests received (WeChat token calls not included)
  std::uint64_t accepted = 0;              // numbers (SMS) or messages (WeChat) accepted
  std::uint64_t rejected = 0;              // requests refused as invalid (missing fields, bad numbers, ...)
  std::uint64_t signature_failures = 0;    // bad or missing signature, unknown key id
  std::uint64_t errors_injected = 0;       // answers with an injected error (rate, fixed code, recipient code)
  std::uint64_t timeouts_injected = 0;     // answers held back past timeout_ms
  std::uint64_t down_refused = 0;          // requests refused because the provider is "down"
  std::uint64_t nonce_reused = 0;          // Aliyun: SignatureNonceUsed
  std::uint64_t deduplicated = 0;          // WeChat: sends absorbed by client_msg_id
  std::uint64_t token_fetches = 0;         // WeChat: GET /cgi-bin/token
  std::uint64_t stable_token_fetches = 0;  // WeChat: POST /cgi-bin/stable_token
  std::uint64_t tokens_issued = 0;         // WeChat: distinct tokens handed out
  std::uint64_t force_refreshes = 0;       // WeChat: stable_token with force_refresh
  std::uint64_t token_refusals = 0;        // WeChat: sends refused for their token (41001/40001/42001)
};

// One accepted SMS as the provider's own records keep it (answers QuerySendDetails and
// PullSmsSendStatusByPhoneNumber).
struct SentRecord {
  std::string id;           // BizId / SerialNo
  std::string correlation;  // Aliyun OutId / Tencent SessionContext
  std::string template_code;
  std::int64_t send_ms = 0;
  std::int64_t report_ms = 0;  // when its delivery report is in; 0: never
  bool success = false;
  std::string code;
};

struct ProviderState {
  mutable std::mutex mu;
  std::unordered_map<std::string, std::vector<SentRecord>> sent_to;  // number as sent -> its records
  Counters c;
  std::unordered_map<std::string, std::uint64_t> per_key;  // idempotency key -> accepted count
  std::unordered_map<std::string, std::uint64_t> pairs;    // "key|recipient" -> accepted count
  std::map<std::string, std::uint64_t> duplicates;         // the pairs accepted more than once
  std::vector<nlohmann::json> messages;                    // the first max_messages accepted
  std::uint64_t messages_not_kept = 0;
};

// An injected fault decided for one request (or one number).
struct Injection {
  bool error = false;
  std::string code;     // provider code when http_status == 0
  int http_status = 0;  // answer with this HTTP status instead
};

struct WechatToken {
  std::chrono::steady_clock::time_point expires;
  bool superseded = false;  // a newer token was issued: after the overlap it answers 40001
  int dead_errcode = 0;     // set by expire_wechat_tokens
};

struct Simulator::Impl {
  using Clock = std::chrono::steady_clock;

  explicit Impl(SimulatorOptions o);
  ~Impl();

  void start();
  void stop();

  // ---- common request path (simulator.cc) ----
  // Counts the request (when `counted`), refuses it when the provider is down,
  // waits the configured latency. Returns the behaviour to use, or nullptr
  // when the request was already answered (down, or the simulator stopping).
  std::shared_ptr<const ProviderBehaviour> begin(Provider p, const httplib::Request& req, httplib::Response& res,
                                                 bool counted);
  std::shared_ptr<const ProviderBehaviour> behaviour_of(Provider p) const;
  // The injected-error draw for one send or one number (fixed_error_code wins
  // over error_rate). Timeouts are drawn separately: roll(b.timeout_rate).
  Injection draw(const ProviderBehaviour& b, Provider p);
  bool roll(double probability);
  // Sleeps, waking early when the simulator stops; false when stopping.
  bool pause(int ms);
  void count(Provider p, std::uint64_t Counters::*field, std::uint64_t n = 1);
  void record_accepted(Provider p, const std::string& key, const std::string& to, nlohmann::json message);
  // Fills in the outcome from `rb` and schedules the receipts of one send
  // (twice when rb.duplicate); nothing when the outcome is "none".
  void schedule_receipts(std::vector<ReceiptItem> items, const ReceiptBehaviour& rb);
  std::string next_id();

  // ---- providers (providers.cc) ----
  void add_provider_routes();
  void handle_sms_post(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader);
  void handle_aliyun(const httplib::Request& req, const std::string& body, httplib::Response& res);
  void handle_tencent(const httplib::Request& req, const std::string& body, httplib::Response& res);
  // The provider's records of one number (copies, under the provider's lock).
  std::vector<SentRecord> sent_records(Provider p, const std::string& to) const;
  void handle_wechat_token(const httplib::Request& req, httplib::Response& res);
  void handle_wechat_stable_token(const httplib::Request& req, httplib::Response& res);
  void handle_wechat_send(const httplib::Request& req, httplib::Response& res, bool subscribe);
  // Issues a new WeChat token (the current one stays valid for the overlap). wechat_mu_ held.
  std::string issue_token_locked(const ProviderBehaviour& b);
  // 0 when `token` may send; else the errcode (41001, 40001, 42001).
  int token_errcode(const std::string& token);

  // ---- control (simulator.cc) ----
  void add_control_routes();
  Result<nlohmann::json> configure(const nlohmann::json& body);
  nlohmann::json config_json() const;
  void reset();
  nlohmann::json stats(bool brief) const;
  nlohmann::json messages(std::optional<Provider> provider, std::string_view key) const;
  void expire_wechat_tokens(int errcode);

  const SimulatorOptions options_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  std::string host_;
  int port_ = 0;
  bool started_ = false;

  std::mutex sleep_mu_;
  std::condition_variable sleep_cv_;
  bool stopping_ = false;
  std::atomic<int> in_latency_{0};  // requests inside pause()

  mutable std::shared_mutex behaviour_mu_;
  std::array<std::shared_ptr<const ProviderBehaviour>, 3> behaviour_;  // replaced whole, never mutated

  std::mutex rng_mu_;
  std::mt19937_64 rng_;

  std::array<ProviderState, 3> state_;
  std::atomic<std::uint64_t> id_counter_{0};
  std::uint64_t id_base_ = 0;  // makes ids of two simulator runs differ

  std::mutex nonce_mu_;
  ExpiringMap<bool> nonces_{std::chrono::minutes(15)};  // Aliyun keeps nonces 15 minutes

  std::mutex wechat_mu_;
  std::unordered_map<std::string, WechatToken> tokens_;
  std::string current_token_;
  int force_refreshes_ = 0;  // stable_token force_refresh calls (WeChat allows 20 a day)
  ExpiringMap<std::string> client_msg_ids_{std::chrono::minutes(10)};  // openid|client_msg_id -> msgid

  ReceiptPusher receipts_;
};

}  // namespace songda::sim
