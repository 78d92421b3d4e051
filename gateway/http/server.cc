#include "gateway/http/server.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <charconv>
#include <optional>

#include "gateway/core/contain.h"
#include "gateway/core/link.h"
#include "gateway/core/text.h"

namespace songda {

void send_json(httplib::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                  "application/json; charset=utf-8");
}

void send_error(httplib::Response& res, int status, const std::string& code, const std::string& message) {
  send_json(res, status, {{"error", {{"code", code}, {"message", message}}}});
}

std::optional<int> int_param(const httplib::Request& req, const char* name, int fallback, int lo, int hi) {
  if (!req.has_param(name)) return fallback;
  const std::string v = req.get_param_value(name);
  int n = 0;
  const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || end != v.data() + v.size() || n < lo || n > hi) return std::nullopt;
  return n;
}

std::optional<PageParams> page_params(const httplib::Request& req, httplib::Response& res, int default_limit,
                                      int max_limit, int max_offset) {
  const auto limit = int_param(req, "limit", default_limit, 1, max_limit);
  const auto offset = int_param(req, "offset", 0, 0, max_offset);
  if (limit && offset) return PageParams{*offset, *limit};
  send_error(res, 400, "invalid_request",
             "limit is a whole number from 1 to " + std::to_string(max_limit) + " (default " +
                 std::to_string(default_limit) + "), offset one from 0 to " + std::to_string(max_offset) +
                 " (default 0)");
  return std::nullopt;
}

Result<nlohmann::json> case_view_json(DeliveryStore& store, const Principal& who, const std::string& case_number) {
  auto courts = store.courts_of_case(case_number);
  if (!courts.ok()) return courts.error();
  std::vector<std::string> visible;
  for (const auto& c : courts.value()) {
    if (who.may_see(c)) visible.push_back(c);
  }
  if (visible.empty() && !courts->empty()) {
    return Error::permanent("forbidden", "case " + case_number + " belongs to another court");
  }
  nlohmann::json items = nlohmann::json::array();
  nlohmann::json unreachable = nlohmann::json::array();
  for (const auto& c : visible) {
    auto list = store.case_deliveries(c, case_number);
    if (!list.ok()) return list.error();
    for (const auto& v : list.value()) items.push_back(delivery_view_json(v));
    auto none = store.case_unreachable(c, case_number);
    if (!none.ok()) return none.error();
    for (auto& u : none.value()) {
      u["court_id"] = c;
      if (u.contains("at") && u["at"].is_number_integer()) u["at"] = rfc3339_utc(u["at"].get<std::int64_t>());
      unreachable.push_back(std::move(u));
    }
  }
  const std::size_t count = items.size();
  return nlohmann::json{
      {"case_number", case_number}, {"deliveries", std::move(items)}, {"count", count}, {"unreachable", unreachable}};
}

nlohmann::json delivery_view_json(const DeliveryView& v) {
  const Delivery& d = v.delivery;
  nlohmann::json history = nlohmann::json::array();
  for (const auto& h : v.history) {
    history.push_back({{"status", h.status}, {"at", rfc3339_utc(h.at_ms)}, {"detail", h.detail}});
  }
  nlohmann::json j = {{"id", d.id},
                      {"event_id", d.event_id},
                      {"event_type", d.event_type},
                      {"court", {{"id", d.court_id}, {"name", d.court_name}}},
                      {"case_number", d.case_number},
                      {"recipient", {{"id", d.recipient_id}, {"role", d.recipient_role}, {"name", d.recipient_name}}},
                      {"channel", d.channel},
                      {"address_masked", mask_address(d.channel, d.address)},
                      {"consent_basis", d.consent_basis},
                      {"title", d.title},
                      {"status", v.status},
                      {"attempts", v.attempts},
                      {"created_at", rfc3339_utc(v.created_ms)},
                      {"updated_at", rfc3339_utc(v.updated_ms)},
                      {"provider", v.provider},
                      {"provider_message_id", masked_message_id(v.provider_message_id)},
                      {"sms_segments", v.segments},
                      {"history", history},
                      {"evidence_indexes", v.evidence_indexes}};
  if (d.document) {
    j["document"] = {{"id", d.document->id}, {"title", d.document->title}, {"sha256", d.document->sha256}};
  }
  return j;
}

ApiServer::ApiServer(const HttpConfig& config, DeliveryStore& store, ApiKeys keys, HealthProbes probes,
                     std::function<std::string()> metrics_text)
    : config_(config),
      store_(store),
      keys_(std::move(keys)),
      probes_(std::move(probes)),
      metrics_text_(std::move(metrics_text)),
      server_(std::make_unique<httplib::Server>()) {
  const int threads = config_.threads;
  server_->new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<std::size_t>(threads)); };
  server_->set_payload_max_length(8 * 1024 * 1024);
  // Without it, Nagle holds small responses to keep-alive clients for up to 40 ms (measured in bench/).
  server_->set_tcp_nodelay(true);
  server_->set_exception_handler([](const httplib::Request& req, httplib::Response& res, const std::exception_ptr& ep) {
    spdlog::error("{}", internal_error("http " + req.method + " " + mask_personal_data(req.path), ep).message);
    send_error(res, 500, "internal", "internal error; the operator's log has details");
  });
  add_routes();
}

ApiServer::~ApiServer() { stop(); }

httplib::Server& ApiServer::raw() { return *server_; }

bool ApiServer::open_stream(httplib::Response& res) {
  const int max_streams = config_.threads / 2;  // the other half answers the API, callbacks and probes
  if (streams_.fetch_add(1) >= max_streams) {
    streams_.fetch_sub(1);
    res.set_header("Retry-After", "5");
    send_error(res, 503, "too_many_streams",
               "too many live streams are open; poll the JSON endpoint or retry in a few seconds");
    return false;
  }
  return true;
}

std::optional<Principal> ApiServer::authenticate(const httplib::Request& req, httplib::Response& res) const {
  auto p = keys_.authenticate(req.get_header_value("Authorization"));
  if (!p) {
    res.set_header("WWW-Authenticate", "Bearer");
    send_error(res, 401, "unauthenticated", "send Authorization: Bearer <API key>");
  }
  return p;
}

void ApiServer::add_routes() {
  auto& s = *server_;
  s.Get("/healthz", [](const httplib::Request&, httplib::Response& res) { send_json(res, 200, {{"status", "ok"}}); });

  s.Get("/readyz", [this](const httplib::Request&, httplib::Response& res) {
    if (probes_.stopping && probes_.stopping()) return send_json(res, 503, {{"status", "stopping"}});
    const bool redis = probes_.redis ? probes_.redis() : false;
    const bool kafka = probes_.kafka ? probes_.kafka() : false;
    send_json(res, redis && kafka ? 200 : 503,
              {{"status", redis && kafka ? "ready" : "not_ready"}, {"redis", redis}, {"kafka", kafka}});
  });

  s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics_text_ ? metrics_text_() : "", "text/plain; version=0.0.4");
  });

  s.Get(R"(/v1/deliveries/([A-Za-z0-9_-]+))", [this](const httplib::Request& req, httplib::Response& res) {
    auto who = authenticate(req, res);
    if (!who) return;
    auto v = store_.get_delivery(req.matches[1]);
    if (!v.ok()) return send_error(res, 503, v.error().code, v.error().message);
    if (!v.value()) return send_error(res, 404, "not_found", "no delivery " + std::string(req.matches[1]));
    if (!who->may_see(v.value()->delivery.court_id)) {
      return send_error(res, 403, "forbidden", "this delivery belongs to another court");
    }
    send_json(res, 200, delivery_view_json(*v.value()));
  });

  s.Get(R"(/v1/cases/([^/]+)/deliveries)", [this](const httplib::Request& req, httplib::Response& res) {
    auto who = authenticate(req, res);
    if (!who) return;
    const std::string case_number = req.matches[1];
    auto view = case_view_json(store_, *who, case_number);
    if (!view.ok()) {
      return send_error(res, view.error().code == "forbidden" ? 403 : 503, view.error().code, view.error().message);
    }
    send_json(res, 200, *view);
  });

  s.Get(R"(/v1/inbox/([A-Za-z0-9._-]+))", [this](const httplib::Request& req, httplib::Response& res) {
    auto who = authenticate(req, res);
    if (!who) return;
    const auto p = page_params(req, res, 50, 200, 1'000'000);
    if (!p) return;
    // A court key sees its court's messages only, paged and counted among themselves.
    auto page = store_.inbox(req.matches[1], who->admin ? std::string() : who->court_id, p->offset, p->limit);
    if (!page.ok()) return send_error(res, 503, page.error().code, page.error().message);
    nlohmann::json items = nlohmann::json::array();
    for (auto& m : page->messages) {
      // The text holds the recipient's party link: opening it and pressing its buttons records READ and
      // ACKNOWLEDGED, the recipient's own acts. Only the app's back end (the operator token) gets it.
      if (!who->admin && m.json.contains("text") && m.json["text"].is_string()) {
        m.json["text"] = strip_links(m.json["text"].get<std::string>());
      }
      items.push_back(std::move(m.json));
    }
    nlohmann::json body = {{"app_user", std::string(req.matches[1])},
                           {"messages", std::move(items)},
                           {"total", page->total},
                           {"unread", page->unread}};
    if (p->offset + p->limit < page->total) body["next_offset"] = p->offset + p->limit;
    send_json(res, 200, body);
  });

  s.Post(R"(/v1/inbox/([A-Za-z0-9._-]+)/messages/([A-Za-z0-9_-]+)/read)", [this](const httplib::Request& req,
                                                                                 httplib::Response& res) {
    auto who = authenticate(req, res);
    if (!who) return;
    // The READ this records says the recipient's own app session opened the message; for an address the court
    // obtained it starts presumed service (Art. 31). Only the app's back end (the operator token) can say so, not a
    // court's key (a clerk's console, a case system).
    if (!who->admin) {
      return send_error(res, 403, "forbidden",
                        "only the in-app service's back end (the operator token) reports that a recipient opened a "
                        "message; a court key cannot record a READ");
    }
    auto v = store_.get_delivery(req.matches[2]);
    if (!v.ok()) return send_error(res, 503, v.error().code, v.error().message);
    if (!v.value() || v.value()->delivery.address != std::string(req.matches[1]) ||
        v.value()->delivery.channel != kChannelInApp) {
      return send_error(res, 404, "not_found", "no such message in this inbox");
    }
    if (!who->may_see(v.value()->delivery.court_id)) {
      return send_error(res, 403, "forbidden", "this message belongs to another court");
    }
    const std::int64_t now = now_unix_ms();
    auto r = store_.mark_read(req.matches[1], req.matches[2], now,
                              read_evidence_ ? read_evidence_(v.value()->delivery, now) : std::vector<EvidenceLeaf>{});
    if (!r.ok()) {
      return send_error(res, r.error().code == "not_found" ? 404 : 503, r.error().code, r.error().message);
    }
    send_json(res, 200, r.value());
  });

  s.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (res.body.empty()) {
      send_error(res, res.status, res.status == 404 ? "not_found" : "http_error",
                 res.status == 404 ? "no such endpoint; see schemas/openapi.yaml" : "request failed");
    }
  });
}

void ApiServer::start() {
  const auto listen = parse_host_port(config_.listen);
  if (!listen) throw StartupError("http.listen must be host:port or [v6]:port, got " + config_.listen);
  host_ = listen->host;
  const int port = listen->port;
  if (port == 0) {
    port_ = server_->bind_to_any_port(host_);
  } else {
    port_ = server_->bind_to_port(host_, port) ? port : -1;
  }
  if (port_ <= 0) throw StartupError("cannot listen on " + config_.listen + "; is the port in use?");
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  spdlog::info("http: listening on http://{}", authority());
}

void ApiServer::stop() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace songda
