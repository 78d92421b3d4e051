// Test support for the provider simulator: an in-process simulator on port 0,
// clients that build requests with the protocol libraries (so the simulator is
// checked against the same signing code the gateway uses), and a tiny HTTP
// server standing in for Songda that records the receipt pushes it gets.
//
// Thread-safety: FakeSongda records from its server threads under a mutex;
// the rest is used from the test thread only.
#pragma once

#include <httplib.h>

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "channels/sms/aliyun_protocol.h"
#include "channels/sms/tencent_protocol.h"
#include "channels/wechat/wechat_protocol.h"
#include "gateway/core/text.h"
#include "simulator/sim_util.h"
#include "simulator/simulator.h"

namespace songda::sim::testing {

// Polls `done` every 10 ms until it holds or `timeout` passes.
inline bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return done();
}

// One POST received by FakeSongda.
struct Push {
  std::string path;
  httplib::Params params;
  std::string content_type;
  std::string body;
};

// Stands in for Songda's callback endpoints: records every POST and answers
// with the next status from `statuses` (200 once the list is used up).
class FakeSongda {
 public:
  FakeSongda() {
    server_.Post(".*", [this](const httplib::Request& req, httplib::Response& res) {
      int status = 200;
      {
        std::lock_guard lk(mu_);
        pushes_.push_back(Push{req.path, req.params, req.get_header_value("Content-Type"), req.body});
        if (!statuses_.empty()) {
          status = statuses_.front();
          statuses_.pop_front();
        }
      }
      res.status = status;
      res.set_content(status == 200 ? sms::aliyun::sms_report_ack() : "busy", "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~FakeSongda() {
    server_.stop();
    thread_.join();
  }
  FakeSongda(const FakeSongda&) = delete;
  FakeSongda& operator=(const FakeSongda&) = delete;

  [[nodiscard]] std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  void answer(std::vector<int> statuses) {
    std::lock_guard lk(mu_);
    statuses_.assign(statuses.begin(), statuses.end());
  }
  [[nodiscard]] std::vector<Push> pushes() const {
    std::lock_guard lk(mu_);
    return pushes_;
  }
  [[nodiscard]] std::size_t count() const {
    std::lock_guard lk(mu_);
    return pushes_.size();
  }

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  mutable std::mutex mu_;
  std::vector<Push> pushes_;
  std::deque<int> statuses_;
};

// An in-process simulator on a free port with fast receipts and a fixed seed.
inline SimulatorOptions test_options() {
  SimulatorOptions o;
  o.seed = 42;
  o.threads = 16;
  for (ProviderBehaviour* b : {&o.aliyun, &o.tencent, &o.wechat}) {
    b->receipt.delay_ms = 20;
    b->receipt.retry_delays_ms = {50, 50, 50};
  }
  return o;
}

class SimClient {
 public:
  explicit SimClient(const Simulator& sim, const SimulatorOptions& o)
      : port_(sim.port()), client_("127.0.0.1", sim.port()), options_(o) {
    client_.set_read_timeout(std::chrono::seconds(10));
  }

  httplib::Client& http() { return client_; }
  [[nodiscard]] int port() const { return port_; }

  // ---- Aliyun ----
  sms::aliyun::Credentials aliyun_credentials() const {
    return {options_.aliyun_access_key_id, options_.aliyun_access_key_secret};
  }
  static sms::aliyun::RpcContext aliyun_context(std::string method = "POST", std::string nonce = {}) {
    sms::aliyun::RpcContext c;
    c.method = std::move(method);
    c.signature_nonce = nonce.empty() ? uuid4() : std::move(nonce);
    c.unix_ms = now_unix_ms();
    return c;
  }
  static sms::aliyun::SendSmsRequest aliyun_request(std::vector<std::string> phones, std::string out_id) {
    sms::aliyun::SendSmsRequest r;
    r.phone_numbers = std::move(phones);
    r.sign_name = "商丘中院";
    r.template_code = "SMS_71390007";
    r.template_param = {{"case_number", "(2026)豫14民初123号"}, {"name", "张三"}};
    r.out_id = std::move(out_id);
    return r;
  }
  // Sends a signed RPC query (form body for POST, URL query for GET).
  httplib::Result aliyun_raw(const std::string& method, const std::string& query) {
    if (method == "GET") return client_.Get("/?" + query);
    return client_.Post("/", query, "application/x-www-form-urlencoded");
  }
  httplib::Result aliyun_send(const sms::aliyun::SendSmsRequest& request, const sms::aliyun::Credentials& credentials,
                              const std::string& method = "POST") {
    const auto built = sms::aliyun::build_send_sms(credentials, request, aliyun_context(method));
    if (!built.ok()) throw std::runtime_error(built.error().message);
    return aliyun_raw(method, built->query);
  }
  httplib::Result aliyun_send(const sms::aliyun::SendSmsRequest& request) {
    return aliyun_send(request, aliyun_credentials());
  }

  // ---- Tencent ----
  sms::tencent::Credentials tencent_credentials() const {
    return {options_.tencent_secret_id, options_.tencent_secret_key};
  }
  static sms::tencent::SendSmsRequest tencent_request(std::vector<std::string> phones, std::string session) {
    sms::tencent::SendSmsRequest r;
    r.phone_numbers = std::move(phones);
    r.sms_sdk_app_id = "1400000000";
    r.template_id = "449739";
    r.sign_name = "商丘中院";
    r.template_params = {"(2026)豫14民初123号", "2026-12-10 09:30"};
    r.session_context = std::move(session);
    return r;
  }
  httplib::Result tencent_raw(const sms::tencent::HttpRequest& r) {
    httplib::Headers headers;
    for (const auto& [k, v] : r.headers) {
      if (k != "Content-Type") headers.emplace(k, v);
    }
    return client_.Post("/", headers, r.body, std::string(sms::tencent::kJsonContentType));
  }
  sms::tencent::HttpRequest tencent_build(const sms::tencent::SendSmsRequest& request,
                                          const sms::tencent::Credentials& credentials) const {
    auto built = sms::tencent::build_send_sms(credentials, request, "ap-guangzhou", now_unix_ms() / 1000,
                                              "127.0.0.1:" + std::to_string(port_));
    if (!built.ok()) throw std::runtime_error(built.error().message);
    return *built;
  }
  httplib::Result tencent_send(const sms::tencent::SendSmsRequest& request) {
    return tencent_raw(tencent_build(request, tencent_credentials()));
  }

  // ---- WeChat ----
  std::string wechat_token(bool stable = true) {
    const auto res =
        stable
            ? client_.Post("/cgi-bin/stable_token",
                           wechat::stable_token_request_body("wx0123456789abcdef", options_.wechat_app_secret, false),
                           "application/json")
            : client_.Get("/cgi-bin/token?" +
                          wechat::token_request_query("wx0123456789abcdef", options_.wechat_app_secret));
    if (!res || res->status != 200) return {};
    const auto token = wechat::parse_access_token_response(res->body);
    return token.ok() ? token->access_token : std::string();
  }
  static wechat::TemplateMessage template_message(std::string openid, std::string client_msg_id) {
    wechat::TemplateMessage m;
    m.touser = std::move(openid);
    m.template_id = "tpl-summons-001";
    m.url = "https://court.example/r/abc";
    m.client_msg_id = std::move(client_msg_id);
    m.data = {{"thing1", "传票"}, {"character_string2", "(2026)豫14民初123号"}};
    return m;
  }
  httplib::Result wechat_send(const std::string& token, const wechat::TemplateMessage& m) {
    const auto body = wechat::template_message_body(m);
    if (!body.ok()) throw std::runtime_error(body.error().message);
    return client_.Post("/cgi-bin/message/template/send?access_token=" + token, *body, "application/json");
  }
  httplib::Result wechat_subscribe(const std::string& token, const std::string& openid) {
    wechat::SubscribeMessage m;
    m.touser = openid;
    m.template_id = "sub-hearing-001";
    m.page = "pages/case/detail?id=1";
    m.data = {{"thing1", "开庭通知"}, {"time2", "2026-12-10 09:30"}};
    const auto body = wechat::subscribe_message_body(m);
    if (!body.ok()) throw std::runtime_error(body.error().message);
    return client_.Post("/cgi-bin/message/subscribe/send?access_token=" + token, *body, "application/json");
  }

  // ---- control ----
  nlohmann::json get_json(const std::string& path) {
    const auto res = client_.Get(path);
    if (!res) return nullptr;
    return nlohmann::json::parse(res->body, nullptr, false);
  }

 private:
  int port_;
  httplib::Client client_;
  SimulatorOptions options_;
};

}  // namespace songda::sim::testing
