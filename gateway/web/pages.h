// The browser side of Songda, pure parts (no I/O): the signed tokens the pages
// use, the server-rendered party pages (/r/{token}), the Content-Security-Policy
// headers, and Server-Sent Events framing.
//
// Tokens are gateway/core/link.h tokens (HMAC-SHA256, expiry) whose subject
// names what they grant, so one kind can never be used as another:
//   party link   subject = the delivery id ("sd-…")        /r/{token}: one delivery's notice, document, ack
//   inbox        subject = "inbox:" + app user             /app/inbox?token=: that user's in-app inbox
//   certificate  subject = "cert:" + delivery id           /console/certificate/{token}: 5-minute view of a
//                                                          proof certificate, minted for a signed-in clerk
// Every text shown is HTML-escaped; the party pages never show an address.
//
// Ownership: plain values in, strings out. Thread-safety: pure functions, safe from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "gateway/core/event.h"
#include "gateway/core/link.h"
#include "gateway/core/result.h"

namespace songda::web {

enum class TokenKind { kParty, kInbox, kCertificate };

std::string sign_token(const std::string& secret, TokenKind kind, const std::string& subject,
                       std::int64_t expires_unix_s);
// The subject (delivery id or app user) when the token is valid, of this kind and not expired.
// Errors: link_malformed (also: a token of another kind), link_forged, link_expired.
Result<std::string> verify_token(const std::string& secret, TokenKind kind, const std::string& token,
                                 std::int64_t now_unix_s);

// HTTP status and Chinese page for a token error: expired → 410, forged/malformed → 403.
struct Page {
  int status = 200;
  std::string html;
};
Page token_error_page(const Error& error);
// A page with a heading and one paragraph (both escaped), e.g. "文书暂不可下载".
Page message_page(int status, std::string_view title, std::string_view message);

// What the party page shows (the recipient sees their own notice; no address is shown).
struct PartyNotice {
  std::string token;  // to build the page's own URLs
  std::string court_name;
  std::string case_number;
  std::string title;
  std::string text;  // the rendered message; links to this very page are cut out of it
  std::string recipient_name;
  std::string event_type;
  std::optional<Document> document;
  bool document_available = false;
  std::string status;                // the delivery's status
  std::int64_t acknowledged_ms = 0;  // > 0: when the recipient pressed 「确认收到」
};
std::string render_party_page(const PartyNotice& n);
// What a link shows before the recipient opens it: court, title, case number and one button 「查看通知」 (POST
// …/open, id "open") that records READ and shows the notice. Nothing of the notice's content or document, so a
// link scanner or preview bot that fetches the link neither sees the notice nor makes a READ it did not make.
std::string render_party_landing(const PartyNotice& n);
// Whether a link shows the whole notice on GET: once it was opened (READ or ACKNOWLEDGED), or when its delivery
// was CANCELLED (nothing can be recorded on it). Before that, GET shows the landing; a FAILED delivery too, since
// the recipient opening it records READ all the same.
bool party_notice_opened(std::string_view status);

// Security headers of the HTML pages. Party and console pages: scripts and styles only from this origin.
inline constexpr const char* kPageCsp =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-src 'self'; frame-ancestors 'self'; base-uri 'none'";
// The certificate carries its own inline stylesheet (it is a self-contained document to keep or print).
inline constexpr const char* kCertificateCsp =
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'; base-uri 'none'; "
    "form-action 'none'";
// Served documents: untrusted bytes; no scripts even when the bytes are HTML.
inline constexpr const char* kDocumentCsp = "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'";
// Served PDFs: Safari and WeChat's iOS browser (WebKit) show a blank page for a PDF under `sandbox` (its viewer
// runs as a sandboxed plug-in document) or under `default-src 'none'` (object-src 'none' blocks the viewer), and
// Chromium strips a PDF's CSP for its own viewer; no viewer runs a PDF's scripts with this origin's rights. A party
// who sees a blank page while RETRIEVED is recorded is the failure that matters here, so a PDF is only kept out of
// frames.
inline constexpr const char* kPdfCsp = "frame-ancestors 'none'";
// The policy for a document of `content_type` (as sniff_content_type names it).
const char* document_csp(std::string_view content_type);

// One Server-Sent Events message: "event: <name>\ndata: <line>\n…\n\n" (data split on newlines).
std::string sse_message(std::string_view event, std::string_view data);

// "application/pdf" for %PDF, "image/png", "image/jpeg", "text/plain; charset=utf-8" for valid UTF-8 text,
// else "application/octet-stream".
std::string sniff_content_type(std::string_view bytes);

// RFC 3986 percent-encoding of everything but unreserved characters (for filename*=UTF-8''…).
std::string percent_encode(std::string_view s);

// "2026-11-28 09:00（北京时间）".
std::string beijing_minute(std::int64_t unix_ms);

}  // namespace songda::web
