// Lifecycle, the common request path (down, latency, fault draws, recording)
// and the /_sim/ control API. The provider endpoints are in providers.cc.
#include "simulator/simulator.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <utility>

#include <httplib.h>
#include <spdlog/spdlog.h>

#include "gateway/core/crypto.h"
#include "gateway/core/text.h"
#include "simulator/simulator_impl.h"

namespace songda::sim {
namespace {

using nlohmann::json;

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

void send_control_error(httplib::Response& res, int status, const std::string& code, const std::string& message) {
  send_json(res, status, {{"error", {{"code", code}, {"message", message}}}});
}

int port_of(const sockaddr_storage& a) {
  if (a.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&a)->sin_port);
  if (a.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&a)->sin6_port);
  return -1;
}

// Closes this request's connection without an answer, as a provider that is
// down would: finds the server-side socket among the process's descriptors
// by its (local port, peer port) pair, sets SO_LINGER 0 (so the final close
// sends RST) and shuts it down. cpp-httplib then fails to write the answer and
// closes the descriptor. False when the socket cannot be found.
bool abort_connection(const httplib::Request& req) {
  if (req.local_port <= 0 || req.remote_port <= 0) return false;
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return false;
  bool done = false;
  while (const dirent* e = readdir(dir)) {
    char* end = nullptr;
    const long fd = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0' || fd == dirfd(dir)) continue;
    const int sock = static_cast<int>(fd);
    sockaddr_storage local{};
    sockaddr_storage peer{};
    socklen_t local_len = sizeof local;
    socklen_t peer_len = sizeof peer;
    if (getsockname(sock, reinterpret_cast<sockaddr*>(&local), &local_len) != 0) continue;
    if (getpeername(sock, reinterpret_cast<sockaddr*>(&peer), &peer_len) != 0) continue;
    if (port_of(local) != req.local_port || port_of(peer) != req.remote_port) continue;
    const linger lg{1, 0};
    setsockopt(sock, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    shutdown(sock, SHUT_RDWR);
    done = true;
    break;
  }
  closedir(dir);
  return done;
}

bool is_loopback_host(const std::string& host) {
  return host == "127.0.0.1" || host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

// ---- Behaviour <-> JSON -------------------------------------------------------------

json behaviour_json(const ProviderBehaviour& b, Provider p) {
  json j = {
      {"latency_ms", b.latency_ms},
      {"error_rate", b.error_rate},
      {"http_status", b.http_status},
      {"error_code", b.error_code},
      {"fixed_error_code", b.fixed_error_code},
      {"recipient_errors", b.recipient_errors},
      {"down", b.down},
      {"down_mode", b.down_mode},
      {"timeout_rate", b.timeout_rate},
      {"timeout_ms", b.timeout_ms},
      {"receipt",
       {{"outcome", b.receipt.outcome},
        {"err_code", b.receipt.err_code},
        {"err_msg", b.receipt.err_msg},
        {"delay_ms", b.receipt.delay_ms},
        {"duplicate", b.receipt.duplicate},
        {"retry_delays_ms", b.receipt.retry_delays_ms}}},
  };
  if (p == Provider::kTencent) j["per_number"] = b.per_number;
  if (p == Provider::kWeChat) {
    j["token_expires_in_s"] = b.token_expires_in_s;
    j["token_overlap_ms"] = b.token_overlap_ms;
  }
  return j;
}

Error invalid(const std::string& field, const std::string& problem) {
  return Error::permanent("invalid_config", field + ": " + problem);
}

Result<int> get_int(const json& v, const std::string& field, int min, int max) {
  if (!v.is_number_integer()) return invalid(field, "must be an integer");
  const auto n = v.get<std::int64_t>();
  if (n < min || n > max) return invalid(field, "must be in " + std::to_string(min) + ".." + std::to_string(max));
  return static_cast<int>(n);
}

Result<double> get_rate(const json& v, const std::string& field) {
  if (!v.is_number()) return invalid(field, "must be a number in 0..1");
  const double d = v.get<double>();
  if (!(d >= 0.0 && d <= 1.0)) return invalid(field, "must be in 0..1");
  return d;
}

Result<bool> get_bool(const json& v, const std::string& field) {
  if (!v.is_boolean()) return invalid(field, "must be true or false");
  return v.get<bool>();
}

Result<std::string> get_string(const json& v, const std::string& field) {
  if (v.is_null()) return std::string();
  if (!v.is_string()) return invalid(field, "must be a string");
  return v.get<std::string>();
}

// A provider code: a string, or for WeChat an integer errcode (also as a decimal string).
Result<std::string> get_code(const json& v, const std::string& field, Provider p) {
  std::string code;
  if (v.is_null()) return code;
  if (v.is_number_integer()) {
    code = std::to_string(v.get<std::int64_t>());
  } else if (v.is_string()) {
    code = v.get<std::string>();
  } else {
    return invalid(field, "must be a provider code (string, or an integer errcode for wechat)");
  }
  if (p == Provider::kWeChat && !code.empty()) {
    char* end = nullptr;
    (void)std::strtoll(code.c_str(), &end, 10);
    if (end == code.c_str() || *end != '\0') return invalid(field, "a WeChat errcode must be an integer");
  }
  return code;
}

Status apply_receipt(const json& j, ReceiptBehaviour& r, Provider p, const std::string& where) {
  if (!j.is_object()) return invalid(where, "must be an object");
  for (const auto& [key, v] : j.items()) {
    const std::string field = where + "." + key;
    if (key == "delay_ms") {
      auto n = get_int(v, field, 0, 24 * 3600 * 1000);
      if (!n) return n.error();
      r.delay_ms = *n;
    } else if (key == "outcome") {
      auto s = get_string(v, field);
      if (!s) return s.error();
      const bool wechat_status = p == Provider::kWeChat && s->rfind("failed", 0) == 0;
      if (*s != "success" && *s != "failure" && *s != "none" && !wechat_status) {
        return invalid(field, "must be \"success\", \"failure\" or \"none\" (wechat also \"failed:...\")");
      }
      r.outcome = *s;
    } else if (key == "err_code") {
      auto s = get_string(v, field);
      if (!s) return s.error();
      r.err_code = *s;
    } else if (key == "err_msg") {
      auto s = get_string(v, field);
      if (!s) return s.error();
      r.err_msg = *s;
    } else if (key == "duplicate") {
      auto b = get_bool(v, field);
      if (!b) return b.error();
      r.duplicate = *b;
    } else if (key == "retry_delays_ms") {
      if (!v.is_array() || v.size() > 20) return invalid(field, "must be an array of at most 20 delays");
      std::vector<int> delays;
      for (const auto& d : v) {
        auto n = get_int(d, field + "[]", 0, 24 * 3600 * 1000);
        if (!n) return n.error();
        delays.push_back(*n);
      }
      r.retry_delays_ms = std::move(delays);
    } else {
      return invalid(field, "unknown field (known: delay_ms, outcome, err_code, err_msg, duplicate, retry_delays_ms)");
    }
  }
  return ok_status();
}

Status apply_field(const std::string& key, const json& v, ProviderBehaviour& b, Provider p) {
  const std::string field = std::string(provider_name(p)) + "." + key;
  if (key == "latency_ms") {
    auto n = get_int(v, field, 0, 600000);
    if (!n) return n.error();
    b.latency_ms = *n;
  } else if (key == "error_rate") {
    auto d = get_rate(v, field);
    if (!d) return d.error();
    b.error_rate = *d;
  } else if (key == "http_status") {
    auto n = get_int(v, field, 0, 599);
    if (!n) return n.error();
    if (*n != 0 && *n < 400) return invalid(field, "must be 0 (provider code) or a 4xx/5xx status");
    b.http_status = *n;
  } else if (key == "error_code") {
    auto c = get_code(v, field, p);
    if (!c) return c.error();
    b.error_code = *c;
  } else if (key == "fixed_error_code") {
    auto c = get_code(v, field, p);
    if (!c) return c.error();
    b.fixed_error_code = *c;
  } else if (key == "per_number" && p == Provider::kTencent) {
    auto x = get_bool(v, field);
    if (!x) return x.error();
    b.per_number = *x;
  } else if (key == "recipient_errors") {
    if (!v.is_object()) return invalid(field, "must be an object {recipient: code}");
    std::map<std::string, std::string> m;
    for (const auto& [to, code] : v.items()) {
      auto c = get_code(code, field + "." + to, p);
      if (!c) return c.error();
      if (!c->empty()) m[to] = *c;
    }
    b.recipient_errors = std::move(m);
  } else if (key == "down") {
    auto x = get_bool(v, field);
    if (!x) return x.error();
    b.down = *x;
  } else if (key == "down_mode") {
    auto s = get_string(v, field);
    if (!s) return s.error();
    if (*s != "reset" && *s != "503") return invalid(field, "must be \"reset\" or \"503\"");
    b.down_mode = *s;
  } else if (key == "timeout_rate") {
    auto d = get_rate(v, field);
    if (!d) return d.error();
    b.timeout_rate = *d;
  } else if (key == "timeout_ms") {
    auto n = get_int(v, field, 0, 600000);
    if (!n) return n.error();
    b.timeout_ms = *n;
  } else if (key == "token_expires_in_s" && p == Provider::kWeChat) {
    auto n = get_int(v, field, 1, 30 * 24 * 3600);
    if (!n) return n.error();
    b.token_expires_in_s = *n;
  } else if (key == "token_overlap_ms" && p == Provider::kWeChat) {
    auto n = get_int(v, field, 0, 24 * 3600 * 1000);
    if (!n) return n.error();
    b.token_overlap_ms = *n;
  } else if (key == "receipt") {
    return apply_receipt(v, b.receipt, p, field);
  } else {
    return invalid(field,
                   "unknown field (known: latency_ms, error_rate, http_status, error_code, fixed_error_code, "
                   "recipient_errors, down, down_mode, timeout_rate, timeout_ms, receipt; tencent also per_number; "
                   "wechat also token_expires_in_s, token_overlap_ms)");
  }
  return ok_status();
}

}  // namespace

std::string_view provider_name(Provider provider) {
  switch (provider) {
    case Provider::kAliyun:
      return "aliyun";
    case Provider::kTencent:
      return "tencent";
    case Provider::kWeChat:
      return "wechat";
  }
  return "unknown";
}

std::optional<Provider> provider_from_name(std::string_view name) {
  for (const Provider p : kAllProviders) {
    if (provider_name(p) == name) return p;
  }
  return std::nullopt;
}

SimulatorOptions options_from_environment(SimulatorOptions base) {
  const auto read = [](const char* name, std::string& into) {
    const char* v = std::getenv(name);
    if (v != nullptr && *v != '\0') into = v;
  };
  read("SONGDA_ALIYUN_ACCESS_KEY_ID", base.aliyun_access_key_id);
  read("SONGDA_ALIYUN_ACCESS_KEY_SECRET", base.aliyun_access_key_secret);
  read("SONGDA_TENCENT_SECRET_ID", base.tencent_secret_id);
  read("SONGDA_TENCENT_SECRET_KEY", base.tencent_secret_key);
  read("SONGDA_WECHAT_APP_SECRET", base.wechat_app_secret);
  read("SONGDA_WECHAT_CALLBACK_TOKEN", base.wechat_callback_token);
  read("SONGDA_CALLBACK_KEY", base.callback_key);
  return base;
}

// ---- Impl: lifecycle --------------------------------------------------------------------

Simulator::Impl::Impl(SimulatorOptions o)
    : options_(std::move(o)),
      receipts_(ReceiptPusherOptions{options_.callback_base, options_.callback_key, options_.wechat_callback_token,
                                     options_.wechat_account, options_.receipt_threads, options_.receipt_batch_max,
                                     options_.receipt_timeout_ms}) {
  behaviour_ = {std::make_shared<const ProviderBehaviour>(options_.aliyun),
                std::make_shared<const ProviderBehaviour>(options_.tencent),
                std::make_shared<const ProviderBehaviour>(options_.wechat)};
  rng_.seed(options_.seed != 0 ? options_.seed : std::random_device{}());
  std::uint64_t base = 0;
  for (const char c : random_bytes(8)) base = (base << 8) | static_cast<unsigned char>(c);
  // 12-13 digit ids: distinct between runs, far below 2^53 so JSON readers keep them exact.
  id_base_ = 100000000000ULL + base % 800000000000ULL;
}

Simulator::Impl::~Impl() { stop(); }

void Simulator::Impl::start() {
  if (started_) return;
  if (!is_loopback_host(options_.listen_host)) {
    throw StartupError("provider simulator: listen host " + options_.listen_host +
                       " is not loopback; it has no authentication, so it only listens on 127.0.0.1 or ::1");
  }
  if (!options_.callback_base.empty() && !split_base_url(options_.callback_base)) {
    throw StartupError("provider simulator: --callback-base " + options_.callback_base +
                       " is not http(s)://host[:port][/prefix]");
  }
  // A connection closed on purpose ("down" in reset mode), or Songda closing a
  // receipt connection, must not kill the process.
  std::signal(SIGPIPE, SIG_IGN);
  {
    std::lock_guard lk(sleep_mu_);
    stopping_ = false;
  }
  server_ = std::make_unique<httplib::Server>();
  const auto threads = static_cast<std::size_t>(std::max(1, options_.threads));
  server_->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  server_->set_keep_alive_max_count(100000);
  server_->set_keep_alive_timeout(30);
  server_->set_tcp_nodelay(true);
  server_->set_exception_handler([](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    spdlog::error("provider-sim {} {}: {}", req.method, req.path, what);
    send_control_error(res, 500, "internal", what);
  });
  add_provider_routes();
  add_control_routes();
  host_ = options_.listen_host;
  port_ = options_.listen_port == 0 ? server_->bind_to_any_port(host_)
                                    : (server_->bind_to_port(host_, options_.listen_port) ? options_.listen_port : -1);
  if (port_ <= 0) {
    server_.reset();
    throw StartupError("provider simulator: cannot listen on " + host_ + ":" + std::to_string(options_.listen_port) +
                       "; is the port in use?");
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  receipts_.start();
  started_ = true;
}

void Simulator::Impl::stop() {
  if (!started_) return;
  {
    std::lock_guard lk(sleep_mu_);
    stopping_ = true;
  }
  sleep_cv_.notify_all();
  server_->stop();
  if (thread_.joinable()) thread_.join();
  receipts_.stop();
  server_.reset();
  started_ = false;
}

// ---- Impl: common request path ------------------------------------------------------------

std::shared_ptr<const ProviderBehaviour> Simulator::Impl::behaviour_of(Provider p) const {
  std::shared_lock lk(behaviour_mu_);
  return behaviour_[index_of(p)];
}

std::shared_ptr<const ProviderBehaviour> Simulator::Impl::begin(Provider p, const httplib::Request& req,
                                                                httplib::Response& res, bool counted) {
  auto b = behaviour_of(p);
  if (counted) count(p, &Counters::requests);
  if (b->down) {
    count(p, &Counters::down_refused);
    if (b->down_mode == "reset" && abort_connection(req)) return nullptr;
    res.status = 503;
    res.set_content("simulated outage: " + std::string(provider_name(p)) + " is down", "text/plain");
    return nullptr;
  }
  if (b->latency_ms > 0 && !pause(b->latency_ms)) {
    res.status = 503;
    res.set_content("simulator stopping", "text/plain");
    return nullptr;
  }
  return b;
}

bool Simulator::Impl::roll(double probability) {
  if (probability <= 0.0) return false;
  if (probability >= 1.0) return true;
  std::lock_guard lk(rng_mu_);
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng_) < probability;
}

Injection Simulator::Impl::draw(const ProviderBehaviour& b, Provider p) {
  Injection in;
  if (!b.fixed_error_code.empty()) {
    in.error = true;
    in.code = b.fixed_error_code;
  } else if (roll(b.error_rate)) {
    in.error = true;
    in.http_status = b.http_status;
    in.code = b.error_code;
    if (in.code.empty()) {
      in.code = p == Provider::kAliyun    ? "isp.SYSTEM_ERROR"
                : p == Provider::kTencent ? "InternalError.SendAndRecvFail"
                                          : "-1";
    }
  }
  return in;
}

bool Simulator::Impl::pause(int ms) {
  if (ms <= 0) return true;
  ++in_latency_;
  std::unique_lock lk(sleep_mu_);
  const bool stopped = sleep_cv_.wait_for(lk, std::chrono::milliseconds(ms), [this] { return stopping_; });
  --in_latency_;
  return !stopped;
}

void Simulator::Impl::count(Provider p, std::uint64_t Counters::*field, std::uint64_t n) {
  auto& s = state_[index_of(p)];
  std::lock_guard lk(s.mu);
  s.c.*field += n;
}

void Simulator::Impl::record_accepted(Provider p, const std::string& key, const std::string& to, json message) {
  auto& s = state_[index_of(p)];
  std::lock_guard lk(s.mu);
  ++s.c.accepted;
  if (!key.empty()) {
    ++s.per_key[key];
    const std::string pair = key + "|" + to;
    const std::uint64_t n = ++s.pairs[pair];
    if (n > 1) s.duplicates[pair] = n;
  }
  if (s.messages.size() < options_.max_messages) {
    s.messages.push_back(std::move(message));
  } else {
    ++s.messages_not_kept;
  }
}

std::vector<SentRecord> Simulator::Impl::sent_records(Provider p, const std::string& to) const {
  const auto& s = state_[index_of(p)];
  std::lock_guard lk(s.mu);
  const auto it = s.sent_to.find(to);
  return it == s.sent_to.end() ? std::vector<SentRecord>{} : it->second;
}

void Simulator::Impl::schedule_receipts(std::vector<ReceiptItem> items, const ReceiptBehaviour& rb) {
  const bool success = rb.outcome == "success";
  for (auto& item : items) {
    item.success = success;
    switch (item.provider) {
      case Provider::kAliyun:
        item.code = success ? "DELIVERED" : (rb.err_code.empty() ? "MK:0001" : rb.err_code);
        item.description = success ? "用户接收成功" : (rb.err_msg.empty() ? "用户接收失败" : rb.err_msg);
        break;
      case Provider::kTencent:
        item.code = success ? "DELIVRD" : (rb.err_code.empty() ? "UNDELIV" : rb.err_code);
        item.description = success ? "用户短信送达成功" : (rb.err_msg.empty() ? "用户短信接收失败" : rb.err_msg);
        break;
      case Provider::kWeChat:
        if (success) {
          item.code = "success";
        } else if (!rb.err_code.empty()) {
          item.code = rb.err_code;
        } else {
          item.code = rb.outcome.rfind("failed", 0) == 0 ? rb.outcome : "failed:user block";
        }
        break;
    }
    item.retry_delays_ms = rb.retry_delays_ms;
    if (item.provider != Provider::kWeChat) {
      auto& st = state_[index_of(item.provider)];
      std::lock_guard lk(st.mu);
      st.sent_to[item.to].push_back(SentRecord{item.id, item.out_id, item.template_code, item.send_time_ms,
                                               rb.outcome == "none" ? 0 : item.send_time_ms + rb.delay_ms, item.success,
                                               item.code});
    }
  }
  if (rb.outcome == "none" || items.empty()) return;
  if (rb.duplicate) receipts_.schedule(items, rb.delay_ms + 100);
  receipts_.schedule(std::move(items), rb.delay_ms);
}

std::string Simulator::Impl::next_id() { return std::to_string(id_base_ + ++id_counter_); }

// ---- Impl: control ------------------------------------------------------------------------

Result<json> Simulator::Impl::configure(const json& body) {
  if (!body.is_object()) return invalid("body", "must be a JSON object");
  std::vector<Provider> targets;
  std::optional<std::string> callback_base;
  bool has_behaviour = false;
  for (const auto& [key, v] : body.items()) {
    if (key == "provider") {
      if (!v.is_string()) return invalid("provider", "must be \"aliyun\", \"tencent\", \"wechat\" or \"all\"");
      const auto name = v.get<std::string>();
      if (name == "all") {
        targets.assign(std::begin(kAllProviders), std::end(kAllProviders));
      } else if (const auto p = provider_from_name(name)) {
        targets = {*p};
      } else {
        return invalid("provider", "must be \"aliyun\", \"tencent\", \"wechat\" or \"all\", not \"" + name + "\"");
      }
    } else if (key == "callback_base") {
      auto s = get_string(v, key);
      if (!s) return s.error();
      if (!s->empty() && !split_base_url(*s)) return invalid(key, "must be http(s)://host[:port][/prefix]");
      callback_base = *s;
    } else {
      has_behaviour = true;
    }
  }
  if (has_behaviour && targets.empty()) return invalid("provider", "missing: say which provider the settings are for");
  std::vector<std::pair<Provider, ProviderBehaviour>> updated;
  for (const Provider p : targets) {
    ProviderBehaviour b = *behaviour_of(p);
    for (const auto& [key, v] : body.items()) {
      if (key == "provider" || key == "callback_base") continue;
      if (auto st = apply_field(key, v, b, p); !st) return st.error();
    }
    updated.emplace_back(p, std::move(b));
  }
  {
    std::unique_lock lk(behaviour_mu_);
    for (auto& [p, b] : updated) behaviour_[index_of(p)] = std::make_shared<const ProviderBehaviour>(std::move(b));
  }
  if (callback_base) receipts_.set_callback_base(*callback_base);
  return config_json();
}

json Simulator::Impl::config_json() const {
  json j = {{"callback_base", receipts_.callback_base()}};
  for (const Provider p : kAllProviders) j[std::string(provider_name(p))] = behaviour_json(*behaviour_of(p), p);
  return j;
}

void Simulator::Impl::reset() {
  {
    std::unique_lock lk(behaviour_mu_);
    behaviour_ = {std::make_shared<const ProviderBehaviour>(options_.aliyun),
                  std::make_shared<const ProviderBehaviour>(options_.tencent),
                  std::make_shared<const ProviderBehaviour>(options_.wechat)};
  }
  for (auto& s : state_) {
    std::lock_guard lk(s.mu);
    s.c = Counters{};
    s.per_key.clear();
    s.pairs.clear();
    s.duplicates.clear();
    s.messages.clear();
    s.messages_not_kept = 0;
    s.sent_to.clear();
  }
  {
    std::lock_guard lk(nonce_mu_);
    nonces_.clear();
  }
  {
    std::lock_guard lk(wechat_mu_);
    tokens_.clear();
    current_token_.clear();
    force_refreshes_ = 0;
    client_msg_ids_.clear();
  }
  receipts_.reset();
}

json Simulator::Impl::stats(bool brief) const {
  json out = json::object();
  for (const Provider p : kAllProviders) {
    const auto& s = state_[index_of(p)];
    const ReceiptCounters rc = receipts_.counters(p);
    std::lock_guard lk(s.mu);
    json j = {
        {"requests", s.c.requests},
        {"accepted", s.c.accepted},
        {"rejected", s.c.rejected},
        {"signature_failures", s.c.signature_failures},
        {"errors_injected", s.c.errors_injected},
        {"timeouts_injected", s.c.timeouts_injected},
        {"down_refused", s.c.down_refused},
        {"receipt_pushes", rc.pushes},
        {"receipts_posted", rc.posted},
        {"receipts_acked", rc.acked},
        {"receipts_retried", rc.retried},
        {"receipts_dropped", rc.dropped},
        {"receipts_skipped", rc.skipped},
        {"receipts_pending", rc.pending},
        {"keys", s.per_key.size()},
        {"duplicate_count", s.duplicates.size()},
        {"messages_kept", s.messages.size()},
        {"messages_not_kept", s.messages_not_kept},
    };
    if (p == Provider::kAliyun) j["nonce_reused"] = s.c.nonce_reused;
    if (p == Provider::kWeChat) {
      j["deduplicated"] = s.c.deduplicated;
      j["token_fetches"] = s.c.token_fetches;
      j["stable_token_fetches"] = s.c.stable_token_fetches;
      j["tokens_issued"] = s.c.tokens_issued;
      j["force_refreshes"] = s.c.force_refreshes;
      j["token_refusals"] = s.c.token_refusals;
    }
    if (!brief) {
      json per_key = json::object();
      for (const auto& [k, n] : s.per_key) per_key[k] = n;
      j["per_key"] = std::move(per_key);
      json dups = json::object();
      for (const auto& [k, n] : s.duplicates) dups[k] = n;
      j["duplicates"] = std::move(dups);
    }
    out[std::string(provider_name(p))] = std::move(j);
  }
  return out;
}

json Simulator::Impl::messages(std::optional<Provider> provider, std::string_view key) const {
  json arr = json::array();
  for (const Provider p : kAllProviders) {
    if (provider && *provider != p) continue;
    const auto& s = state_[index_of(p)];
    std::lock_guard lk(s.mu);
    for (const auto& m : s.messages) {
      if (!key.empty() && m.value("key", "") != key) continue;
      arr.push_back(m);
    }
  }
  return arr;
}

void Simulator::Impl::expire_wechat_tokens(int errcode) {
  std::lock_guard lk(wechat_mu_);
  for (auto& [token, info] : tokens_) info.dead_errcode = errcode;
  current_token_.clear();
}

void Simulator::Impl::add_control_routes() {
  auto& s = *server_;
  s.Get("/_sim/healthz", [](const httplib::Request&, httplib::Response& res) {
    send_json(res, 200, {{"status", "ok"}});
  });
  s.Get("/_sim/config",
        [this](const httplib::Request&, httplib::Response& res) { send_json(res, 200, config_json()); });
  s.Post("/_sim/config", [this](const httplib::Request& req, httplib::Response& res) {
    const json body = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
    if (body.is_discarded()) return send_control_error(res, 400, "invalid_json", "the body is not JSON");
    auto r = configure(body);
    if (!r) return send_control_error(res, 400, r.error().code, r.error().message);
    send_json(res, 200, *r);
  });
  s.Post("/_sim/reset", [this](const httplib::Request&, httplib::Response& res) {
    reset();
    send_json(res, 200, {{"reset", true}});
  });
  s.Get("/_sim/stats", [this](const httplib::Request& req, httplib::Response& res) {
    const std::string brief = req.get_param_value("brief");
    send_json(res, 200, stats(brief == "1" || brief == "true"));
  });
  s.Get("/_sim/messages", [this](const httplib::Request& req, httplib::Response& res) {
    std::optional<Provider> provider;
    if (req.has_param("provider")) {
      provider = provider_from_name(req.get_param_value("provider"));
      if (!provider) {
        return send_control_error(res, 400, "invalid_provider", "provider must be aliyun, tencent or wechat");
      }
    }
    send_json(res, 200, {{"messages", messages(provider, req.get_param_value("key"))}});
  });
  s.Post("/_sim/wechat/expire-token", [this](const httplib::Request& req, httplib::Response& res) {
    int errcode = 40001;
    if (!req.body.empty()) {
      const json body = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
      if (!body.is_object()) return send_control_error(res, 400, "invalid_json", "the body is not a JSON object");
      if (body.contains("errcode")) {
        const auto& v = body["errcode"];
        if (!v.is_number_integer() || (v.get<int>() != 40001 && v.get<int>() != 42001)) {
          return send_control_error(res, 400, "invalid_config", "errcode must be 40001 or 42001");
        }
        errcode = v.get<int>();
      }
    }
    expire_wechat_tokens(errcode);
    send_json(res, 200, {{"expired", true}, {"errcode", errcode}});
  });
}

// ---- Simulator ------------------------------------------------------------------------------

Simulator::Simulator(SimulatorOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Simulator::~Simulator() { impl_->stop(); }
void Simulator::start() { impl_->start(); }
void Simulator::stop() { impl_->stop(); }
int Simulator::port() const { return impl_->port_; }
int Simulator::requests_in_latency() const { return impl_->in_latency_.load(); }
std::string Simulator::base_url() const {
  const std::string& h = impl_->host_;
  return "http://" + (h.find(':') != std::string::npos ? "[" + h + "]" : h) + ":" + std::to_string(impl_->port_);
}
Result<nlohmann::json> Simulator::configure(const nlohmann::json& body) { return impl_->configure(body); }
void Simulator::set_behaviour(Provider provider, const ProviderBehaviour& behaviour) {
  std::unique_lock lk(impl_->behaviour_mu_);
  impl_->behaviour_[index_of(provider)] = std::make_shared<const ProviderBehaviour>(behaviour);
}
ProviderBehaviour Simulator::behaviour(Provider provider) const { return *impl_->behaviour_of(provider); }
void Simulator::set_callback_base(std::string url) { impl_->receipts_.set_callback_base(std::move(url)); }
nlohmann::json Simulator::config_json() const { return impl_->config_json(); }
void Simulator::reset() { impl_->reset(); }
nlohmann::json Simulator::stats(bool brief) const { return impl_->stats(brief); }
nlohmann::json Simulator::messages(std::optional<Provider> provider, std::string_view key) const {
  return impl_->messages(provider, key);
}
void Simulator::expire_wechat_tokens(int errcode) { impl_->expire_wechat_tokens(errcode); }

void export_default_credentials() {
  const std::pair<const char*, std::string_view> vars[] = {
      {"SONGDA_ALIYUN_ACCESS_KEY_ID", kDefaultAliyunAccessKeyId},
      {"SONGDA_ALIYUN_ACCESS_KEY_SECRET", kDefaultAliyunAccessKeySecret},
      {"SONGDA_TENCENT_SECRET_ID", kDefaultTencentSecretId},
      {"SONGDA_TENCENT_SECRET_KEY", kDefaultTencentSecretKey},
      {"SONGDA_WECHAT_APP_SECRET", kDefaultWechatAppSecret},
      {"SONGDA_WECHAT_CALLBACK_TOKEN", kDefaultWechatCallbackToken},
      {"SONGDA_CALLBACK_KEY", kDefaultCallbackKey},
  };
  for (const auto& [name, value] : vars) setenv(name, std::string(value).c_str(), 1);
}

}  // namespace songda::sim
