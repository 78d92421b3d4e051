#include "gateway/web/web_service.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <memory>
#include <thread>

#include "gateway/core/contain.h"
#include "gateway/core/text.h"
#include "gateway/ledger/certificate.h"
#include "gateway/ledger/evidence_makers.h"
#include "gateway/ledger/proof_service.h"
#include "gateway/web/assets.h"
#include "gateway/web/pages.h"

namespace songda::web {
namespace {

using Clock = std::chrono::steady_clock;

std::int64_t now_s() { return now_unix_ms() / 1000; }

void security_headers(httplib::Response& res, const char* csp) {
  res.set_header("Content-Security-Policy", csp);
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_header("Referrer-Policy", "no-referrer");  // party and certificate URLs carry tokens
  res.set_header("Cache-Control", "no-store");
}

void send_page(httplib::Response& res, const Page& page) {
  security_headers(res, kPageCsp);
  res.status = page.status;
  res.set_content(page.html, "text/html; charset=utf-8");
}

void send_asset(const httplib::Request& req, httplib::Response& res, const std::string& name) {
  const Asset* a = find_asset(name);
  if (a == nullptr) return send_error(res, 404, "not_found", "no such file");
  security_headers(res, kPageCsp);
  res.set_header("Cache-Control", "no-cache");
  res.set_header("ETag", std::string(a->etag));
  if (req.get_header_value("If-None-Match") == a->etag) {
    res.status = 304;
    return;
  }
  res.status = 200;
  res.set_content(a->body.data(), a->body.size(), std::string(a->content_type));
}

// The browser's own description of itself, for the evidence record's context (never an address).
std::string client_of(const httplib::Request& req) { return req.get_header_value("User-Agent").substr(0, 256); }

// Link previews and prefetches are not a person opening the link.
bool is_prefetch(const httplib::Request& req) {
  if (req.method == "HEAD") return true;
  const std::string purpose = req.get_header_value("Sec-Purpose") + req.get_header_value("Purpose") +
                              req.get_header_value("X-Purpose") + req.get_header_value("X-Moz");
  return purpose.find("prefetch") != std::string::npos || purpose.find("preview") != std::string::npos;
}

std::int64_t acknowledged_at(const DeliveryView& v) {
  for (const auto& h : v.history) {
    if (h.status == "ACKNOWLEDGED") return h.at_ms;
  }
  return 0;
}

Page store_error_page() { return message_page(503, "系统繁忙", "暂时无法读取送达记录，请稍后刷新本页面重试。"); }

}  // namespace

WebService::WebService(ApiServer& api, DeliveryStore& store, ledger::ProofService* proofs, WebOptions options)
    : api_(api), store_(store), proofs_(proofs), options_(std::move(options)), documents_(options_.document_dir) {}

std::string WebService::inbox_path(const std::string& app_user, std::int64_t now_unix_s) const {
  return "/app/inbox?token=" +
         sign_token(options_.link_secret, TokenKind::kInbox, app_user, now_unix_s + options_.inbox_link_lifetime_s);
}

void WebService::stream(httplib::Response& res, const std::string& event,
                        std::function<Result<std::string>()> snapshot) {
  if (!api_.open_stream(res)) return;
  struct State {
    std::string last;
    bool first = true;
    Clock::time_point started = Clock::now();
    Clock::time_point last_write = Clock::now();
  };
  auto st = std::make_shared<State>();
  res.set_header("Cache-Control", "no-store");
  res.set_header("X-Accel-Buffering", "no");
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_chunked_content_provider(
      "text/event-stream",  // exactly this: httplib would gzip (and so buffer) any other text/* type
      [this, st, event, snapshot = std::move(snapshot)](std::size_t /*offset*/, httplib::DataSink& sink) {
        if (stopping_.load() || Clock::now() - st->started > std::chrono::seconds(options_.stream_max_s)) {
          sink.done();
          return true;
        }
        std::string out;
        if (st->first) {
          out = "retry: 2000\n\n";
          st->first = false;
        } else {
          // Sleep in short slices so a stopping server is not held up.
          const auto until = Clock::now() + std::chrono::milliseconds(options_.poll_ms);
          while (Clock::now() < until && !stopping_.load()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
          if (stopping_.load()) {
            sink.done();
            return true;
          }
        }
        // The stream runs outside the server's handler (its try/catch): an exception here would end the process.
        auto snap = contain("case stream", snapshot);
        if (!snap.ok()) {
          const std::string err =
              nlohmann::json{{"error", {{"code", snap.error().code}, {"message", snap.error().message}}}}.dump();
          if (err != st->last) {
            st->last = err;
            out += sse_message("error", err);
          }
        } else if (snap.value() != st->last) {
          st->last = std::move(snap.value());
          out += sse_message(event, st->last);
        } else if (Clock::now() - st->last_write > std::chrono::seconds(2)) {
          // A comment line: keeps proxies from closing the stream, and a client that went away makes the
          // write fail within two heartbeats, which frees this worker and the stream slot.
          out += ":\n\n";
        }
        if (!out.empty()) {
          if (!sink.write(out.data(), out.size())) return false;
          st->last_write = Clock::now();
        }
        return true;
      },
      [this](bool /*success*/) { api_.close_stream(); });
}

Result<std::string> WebService::case_json(const Principal& who, const std::string& case_number) {
  auto view = case_view_json(store_, who, case_number);
  if (!view.ok()) return view.error();
  return view->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Result<std::string> WebService::inbox_json(const std::string& app_user) {
  auto page = store_.inbox(app_user, "", 0, 100);
  if (!page.ok()) return page.error();
  nlohmann::json items = nlohmann::json::array();
  const std::int64_t exp = now_s() + options_.inbox_item_link_lifetime_s;
  for (const auto& m : page->messages) {
    const auto& j = m.json;
    const bool read = j.value("read_at", 0LL) != 0;
    nlohmann::json item = {
        {"id", m.id},
        {"title", j.value("title", "")},
        {"text", strip_links(j.value("text", ""))},
        {"court_name", j.value("court_name", "")},
        {"case_number", j.value("case_number", "")},
        {"event_type", j.value("event_type", "")},
        {"delivered_at", rfc3339_utc(j.value("delivered_at", 0LL))},
        {"read", read},
        // expiry rounded to the hour so the JSON (and the stream) does not change every second
        {"link", "/r/" + sign_token(options_.link_secret, TokenKind::kParty, m.id, exp - exp % 3600)}};
    if (j.contains("document") && j["document"].is_object()) item["document_title"] = j["document"].value("title", "");
    items.push_back(std::move(item));
  }
  // unread and total count the whole inbox; the page shows the newest 100
  return nlohmann::json{{"unread", page->unread}, {"total", page->total}, {"messages", items}}.dump(
      -1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Result<bool> WebService::record_open(const DeliveryView& v, const std::string& client, std::int64_t now_ms) {
  const Delivery& d = v.delivery;
  const auto evidence = ledger::link_read_evidence(d, now_ms, client);
  if (d.channel == kChannelInApp) {
    // The inbox message is marked read too, so the app's unread count agrees with the evidence.
    auto r = store_.mark_read(d.address, d.id, now_ms, evidence);
    if (r.ok()) return true;
    if (r.error().code != "not_found") return r.error();
  }
  return store_.advance_status(d.id, "READ", "signed link opened (链接已打开)", now_ms, evidence);
}

void WebService::register_routes() {
  auto& s = api_.raw();

  // ---- Console and static files ----
  s.Get("/console", [](const httplib::Request&, httplib::Response& res) { res.set_redirect("/console/", 302); });
  s.Get("/console/", [](const httplib::Request& req, httplib::Response& res) { send_asset(req, res, "console.html"); });
  s.Get(R"(/assets/([A-Za-z0-9_-]+\.(?:js|css|svg|png|html)))",
        [](const httplib::Request& req, httplib::Response& res) { send_asset(req, res, req.matches[1]); });

  s.Get("/favicon.ico", [](const httplib::Request&, httplib::Response& res) { res.status = 204; });

  s.Get("/v1/me", [this](const httplib::Request& req, httplib::Response& res) {
    auto who = api_.authenticate(req, res);
    if (!who) return;
    send_json(res, 200, {{"court_id", who->court_id}, {"admin", who->admin}});
  });

  s.Get(R"(/v1/cases/([^/]+)/events)", [this](const httplib::Request& req, httplib::Response& res) {
    auto who = api_.authenticate(req, res);
    if (!who) return;
    const std::string case_number = req.matches[1];
    auto first = case_json(*who, case_number);  // refuse before the stream starts
    if (!first.ok()) {
      return send_error(res, first.error().code == "forbidden" ? 403 : 503, first.error().code, first.error().message);
    }
    stream(res, "deliveries", [this, p = *who, case_number] { return case_json(p, case_number); });
  });

  s.Post(R"(/v1/deliveries/([A-Za-z0-9_-]+)/certificate-link)", [this](const httplib::Request& req,
                                                                       httplib::Response& res) {
    auto who = api_.authenticate(req, res);
    if (!who) return;
    const std::string id = req.matches[1];
    auto v = store_.get_delivery(id);
    if (!v.ok()) return send_error(res, 503, v.error().code, v.error().message);
    if (!v.value()) return send_error(res, 404, "not_found", "no delivery " + id);
    if (!who->may_see(v.value()->delivery.court_id)) {
      return send_error(res, 403, "forbidden", "this delivery belongs to another court");
    }
    const std::int64_t exp = now_s() + options_.certificate_link_lifetime_s;
    send_json(res, 200,
              {{"url", "/console/certificate/" + sign_token(options_.link_secret, TokenKind::kCertificate, id, exp)},
               {"expires_at", rfc3339_utc(exp * 1000)}});
  });

  s.Get(R"(/console/certificate/([A-Za-z0-9_.-]+))", [this](const httplib::Request& req, httplib::Response& res) {
    auto id = verify_token(options_.link_secret, TokenKind::kCertificate, req.matches[1], now_s());
    if (!id.ok()) return send_page(res, token_error_page(id.error()));
    auto v = store_.get_delivery(id.value());
    if (!v.ok()) return send_page(res, store_error_page());
    if (!v.value() || proofs_ == nullptr) return send_page(res, message_page(404, "没有此送达记录", id.value()));
    auto p = proofs_->proof_for(v.value()->delivery);
    if (!p.ok()) {
      return send_page(res, message_page(p.error().code == "no_evidence" ? 404 : 503, "凭证暂不可用",
                                         "尚无可出具凭证的送达证据（" + p.error().code + "）。"));
    }
    security_headers(res, kCertificateCsp);
    if (p->state != ledger::RecipientProof::State::kReady) {
      const int wait = proofs_->options().retry_after_s;
      res.status = 202;
      res.set_header("Retry-After", std::to_string(wait));
      res.set_content(ledger::render_pending_html(p->facts, wait), "text/html; charset=utf-8");
      return;
    }
    res.status = 200;
    res.set_content(ledger::render_certificate_html(p->bundle, p->facts), "text/html; charset=utf-8");
  });

  // ---- In-app inbox ----
  s.Post(R"(/v1/inbox/([A-Za-z0-9._-]+)/link)", [this](const httplib::Request& req, httplib::Response& res) {
    auto who = api_.authenticate(req, res);
    if (!who) return;
    if (!who->admin) {
      return send_error(res, 403, "forbidden",
                        "inbox links show every court's messages to the user: only the operator token (the app's "
                        "back end) may make them");
    }
    const std::string user = req.matches[1];
    send_json(res, 200, {{"url", inbox_path(user, now_s())}, {"app_user", user}});
  });
  s.Get("/app/inbox", [](const httplib::Request& req, httplib::Response& res) { send_asset(req, res, "inbox.html"); });
  auto inbox_user = [this](const httplib::Request& req, httplib::Response& res) -> std::optional<std::string> {
    auto user = verify_token(options_.link_secret, TokenKind::kInbox, req.get_param_value("token"), now_s());
    if (!user.ok()) {
      send_error(res, user.error().code == "link_expired" ? 410 : 403, user.error().code,
                 user.error().code == "link_expired" ? "此链接已过期，请在应用内重新打开收件箱"
                                                     : "链接无效，请在应用内重新打开收件箱");
      return std::nullopt;
    }
    return user.value();
  };
  s.Get("/app/inbox/messages", [this, inbox_user](const httplib::Request& req, httplib::Response& res) {
    auto user = inbox_user(req, res);
    if (!user) return;
    auto j = inbox_json(*user);
    if (!j.ok()) return send_error(res, 503, j.error().code, j.error().message);
    res.set_header("Cache-Control", "no-store");
    res.set_content(j.value(), "application/json; charset=utf-8");
  });
  s.Get("/app/inbox/events", [this, inbox_user](const httplib::Request& req, httplib::Response& res) {
    auto user = inbox_user(req, res);
    if (!user) return;
    stream(res, "inbox", [this, u = *user] { return inbox_json(u); });
  });

  // ---- Party pages ----
  // Verifies the token and loads the delivery; on failure the page is written and nullopt returned.
  auto party = [this](const httplib::Request& req, httplib::Response& res) -> std::optional<DeliveryView> {
    auto id = verify_token(options_.link_secret, TokenKind::kParty, req.matches[1], now_s());
    if (!id.ok()) {
      send_page(res, token_error_page(id.error()));
      return std::nullopt;
    }
    auto v = store_.get_delivery(id.value());
    if (!v.ok()) {
      spdlog::warn("party page: cannot read delivery {}: {}", id.value(), v.error().message);
      send_page(res, store_error_page());
      return std::nullopt;
    }
    if (!v.value()) {
      send_page(res, message_page(404, "通知不存在", "没有找到此链接对应的送达通知，请联系法院。"));
      return std::nullopt;
    }
    return std::move(*v.value());
  };

  const auto notice_of = [this](const httplib::Request& req, const DeliveryView& v) {
    PartyNotice n;
    n.token = req.matches[1];
    n.court_name = v.delivery.court_name;
    n.case_number = v.delivery.case_number;
    n.title = v.delivery.title;
    n.text = v.delivery.text;
    n.recipient_name = v.delivery.recipient_name;
    n.event_type = v.delivery.event_type;
    n.document = v.delivery.document;
    n.document_available = n.document && documents_.has(*n.document);
    n.status = v.status;
    n.acknowledged_ms = acknowledged_at(v);
    return n;
  };

  // GET records nothing: mail scanners, link checkers and chat previews fetch links as plain GETs, and a READ
  // from them would start the recipient's service date (an obtained address is presumed served on READ). Until
  // the recipient opens it, the link shows a landing page whose one button POSTs …/open.
  s.Get(R"(/r/([A-Za-z0-9_.-]+))", [party, notice_of](const httplib::Request& req, httplib::Response& res) {
    auto v = party(req, res);
    if (!v) return;
    const PartyNotice n = notice_of(req, *v);
    if (!party_notice_opened(v->status)) return send_page(res, Page{200, render_party_landing(n)});
    send_page(res, Page{200, render_party_page(n)});
  });

  s.Post(R"(/r/([A-Za-z0-9_.-]+)/open)", [this, party, notice_of](const httplib::Request& req, httplib::Response& res) {
    auto v = party(req, res);
    if (!v) return;
    auto r = record_open(*v, client_of(req), now_unix_ms());
    if (!r.ok()) {
      spdlog::warn("party page: READ of {} not recorded: {}", v->delivery.id, r.error().message);
      return send_page(res, store_error_page());  // no notice without its evidence
    }
    // Shown here rather than redirected to the GET: a CANCELLED delivery records no READ, and a READ that lost a
    // race is not worth a second request.
    res.set_header("Referrer-Policy", "no-referrer");
    send_page(res, Page{200, render_party_page(notice_of(req, *v))});
  });

  s.Get(R"(/r/([A-Za-z0-9_.-]+)/document)", [this, party](const httplib::Request& req, httplib::Response& res) {
    auto v = party(req, res);
    if (!v) return;
    const Delivery& d = v->delivery;
    if (!d.document) return send_page(res, message_page(404, "没有文书", "本通知没有附带文书。"));
    // Not before the notice was opened (the landing page has no link here), and never to a prefetch: a document
    // is only served with its RETRIEVED record.
    if (!party_notice_opened(v->status)) return res.set_redirect("/r/" + std::string(req.matches[1]), 303);
    if (is_prefetch(req)) {
      res.status = 204;
      return;
    }
    auto doc = documents_.load(*d.document);
    if (!doc.ok()) {
      spdlog::warn("party document {} of {}: {} ({})", d.document->id, d.id, doc.error().message, doc.error().code);
      return send_page(res, message_page(503, "文书暂不可下载", "文书暂时无法在线提供，请稍后再试或联系法院获取。"));
    }
    const std::int64_t now = now_unix_ms();
    const std::string client = client_of(req);
    // The notice was opened (its READ is recorded): the download adds RETRIEVED, once.
    auto got = store_.advance_status(d.id, "", "document downloaded, SHA-256 " + doc->sha256_hex, now,
                                     ledger::retrieved_evidence(d, doc->sha256_hex, doc->bytes.size(), now, client),
                                     "retrieved_at", "RETRIEVED");
    if (!got.ok()) {
      spdlog::warn("party document of {}: RETRIEVED not recorded: {}", d.id, got.error().message);
      return send_page(res, store_error_page());
    }
    security_headers(res, document_csp(doc->content_type));
    std::string name = d.document->title.empty() ? d.document->id : d.document->title;
    if (doc->content_type == "application/pdf") name += ".pdf";
    res.set_header("Content-Disposition", "inline; filename*=UTF-8''" + percent_encode(name));
    res.set_header("X-Document-SHA256", doc->sha256_hex);
    res.status = 200;
    res.set_content(doc->bytes, doc->content_type);
  });

  s.Post(R"(/r/([A-Za-z0-9_.-]+)/ack)", [this, party](const httplib::Request& req, httplib::Response& res) {
    auto v = party(req, res);
    if (!v) return;
    const std::int64_t now = now_unix_ms();
    const std::string client = client_of(req);
    auto opened = record_open(*v, client, now);
    auto r = opened.ok() ? store_.advance_status(v->delivery.id, "ACKNOWLEDGED", "recipient pressed 确认收到", now,
                                                 ledger::acknowledged_evidence(v->delivery, now, client))
                         : Result<bool>(opened.error());
    if (!r.ok()) {
      spdlog::warn("party ack of {} not recorded: {}", v->delivery.id, r.error().message);
      return send_page(res, message_page(503, "确认未能记录", "系统暂时无法记录您的确认，请稍后重新打开链接再确认。"));
    }
    res.set_header("Referrer-Policy", "no-referrer");
    res.set_redirect("/r/" + std::string(req.matches[1]), 303);
  });
}

}  // namespace songda::web
