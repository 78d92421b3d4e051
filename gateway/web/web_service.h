// The browser-facing routes of Songda: the clerk console, the party pages
// behind the signed links sent by SMS, WeChat and email, and the in-app inbox
// page, plus the small /v1 additions they need. Registered on the ApiServer
// before it starts:
//
//   GET  /console/                        clerk console (static, embedded; Chinese UI)
//   GET  /assets/{file}                   its scripts and styles (no CDN: works with no internet)
//   GET  /v1/me                           who the Bearer key is (court or operator)
//   GET  /v1/cases/{case_number}/events   SSE: the case's deliveries (same JSON as /deliveries), pushed on change
//   POST /v1/deliveries/{id}/certificate-link   a 5-minute URL of the printable certificate (for the console)
//   GET  /console/certificate/{token}     that certificate (same page as /proof.html)
//   POST /v1/inbox/{app_user}/link        operator only: a signed 24-hour URL of that user's inbox page
//   GET  /app/inbox?token=                the in-app inbox page (mobile)
//   GET  /app/inbox/events?token=         SSE of the inbox; /app/inbox/messages?token= the same as JSON
//   GET  /r/{token}                       records nothing: a landing page (court, title, case number, one
//                                         button 「查看通知」) until the notice was opened, then the notice
//   POST /r/{token}/open                  that button: records READ (first time only) and shows the notice
//   GET  /r/{token}/document              the document's bytes, once opened: records RETRIEVED with the SHA-256
//                                         served (before: 303 to the landing; a prefetch: 204, nothing served)
//   POST /r/{token}/ack                   「确认收到」: records ACKNOWLEDGED, then 303 back to the notice
//
// Why GET records nothing: link scanners, mail security gateways and chat previews fetch links as plain GETs,
// and a READ made by one would start the recipient's service date (an obtained address is presumed served on
// READ, OLR 2021 Art. 31 ¶2). Only a person's press of a button is taken as opening the notice.
//
// An expired token gets a Chinese page with 410, a forged or malformed one 403; neither writes evidence.
// Evidence is written before the bytes are served: a party never gets a document the log does not show.
// Streams: each open SSE stream holds one HTTP worker and polls Redis every poll_ms, pushing only when
// the JSON changed (a comment line every 2 s keeps proxies from closing it and notices a client that
// went away within two of them); a stream takes one of the server's stream slots (ApiServer::open_stream,
// shared with the broadcast progress stream: 503 + Retry-After beyond, and the pages fall back to polling);
// a stream ends after
// stream_max_s and the client reconnects.
//
// Ownership: keeps references to the server, store and proof service, which must outlive it.
// Thread-safety: handlers run on the server's pool; the service's state is atomic.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "gateway/http/server.h"
#include "gateway/store/store.h"
#include "gateway/web/documents.h"

namespace songda::ledger {
class ProofService;
}

namespace songda::web {

struct WebOptions {
  std::string link_secret;   // the party links' HMAC key (App: SONGDA_LINK_SECRET)
  std::string document_dir;  // SONGDA_DOCUMENT_DIR: documents by SHA-256 (documents.h); "" = none
  int poll_ms = 500;         // how often an open stream looks at Redis
  int stream_max_s = 300;    // a stream is closed after this (the client reconnects)
  std::int64_t inbox_link_lifetime_s = 24 * 3600;
  std::int64_t inbox_item_link_lifetime_s = 90LL * 24 * 3600;
  std::int64_t certificate_link_lifetime_s = 300;
};

class WebService {
 public:
  WebService(ApiServer& api, DeliveryStore& store, ledger::ProofService* proofs, WebOptions options);
  WebService(const WebService&) = delete;
  WebService& operator=(const WebService&) = delete;

  void register_routes();
  // Ends open streams at their next poll (call before ApiServer::stop()).
  void stop() { stopping_.store(true); }

  // "/app/inbox?token=…" for an app user (relative: prefix it with the public base URL).
  [[nodiscard]] std::string inbox_path(const std::string& app_user, std::int64_t now_unix_s) const;

 private:
  // Serves an SSE stream of `snapshot()` (pushes `event` when it changes). Writes 503 when too many are open.
  void stream(httplib::Response& res, const std::string& event, std::function<Result<std::string>()> snapshot);
  Result<std::string> case_json(const Principal& who, const std::string& case_number);
  Result<std::string> inbox_json(const std::string& app_user);
  // The READ step of a party link (inbox messages are marked read too). True when recorded now.
  Result<bool> record_open(const DeliveryView& v, const std::string& client, std::int64_t now_ms);

  ApiServer& api_;
  DeliveryStore& store_;
  ledger::ProofService* proofs_;
  WebOptions options_;
  DocumentDirectory documents_;
  std::atomic<bool> stopping_{false};
};

}  // namespace songda::web
