#include "gateway/web/pages.h"

#include "gateway/core/link.h"
#include "gateway/core/text.h"
#include "gateway/ledger/certificate.h"

namespace songda::web {
namespace {

std::string prefix(TokenKind kind) {
  switch (kind) {
    case TokenKind::kInbox:
      return "inbox:";
    case TokenKind::kCertificate:
      return "cert:";
    case TokenKind::kParty:
      break;
  }
  return "";
}

std::string page_head(std::string_view title) {
  return "<!doctype html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">\n"
         "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
         "<meta name=\"referrer\" content=\"no-referrer\">\n<title>" +
         html_escape(title) + "</title>\n<link rel=\"stylesheet\" href=\"/assets/party.css\">\n</head>\n<body>\n";
}

constexpr const char* kPageFoot = "</body>\n</html>\n";

}  // namespace

std::string sign_token(const std::string& secret, TokenKind kind, const std::string& subject,
                       std::int64_t expires_unix_s) {
  return sign_link_token(secret, prefix(kind) + subject, expires_unix_s);
}

Result<std::string> verify_token(const std::string& secret, TokenKind kind, const std::string& token,
                                 std::int64_t now_unix_s) {
  auto claims = verify_link_token(secret, token, now_unix_s);
  if (!claims.ok()) return claims.error();
  const std::string& subject = claims->delivery_id;
  const std::string want = prefix(kind);
  if (kind == TokenKind::kParty) {
    if (subject.empty() || subject.find(':') != std::string::npos) {
      return Error::permanent("link_malformed", "this link is not valid");
    }
    return subject;
  }
  if (!subject.starts_with(want) || subject.size() == want.size()) {
    return Error::permanent("link_malformed", "this link is not valid");
  }
  return subject.substr(want.size());
}

Page message_page(int status, std::string_view title, std::string_view message) {
  std::string h = page_head(title);
  h += "<main class=\"card notice-error\">\n<h1>" + html_escape(title) + "</h1>\n<p>" + html_escape(message) +
       "</p>\n</main>\n";
  h += kPageFoot;
  return Page{status, std::move(h)};
}

Page token_error_page(const Error& error) {
  if (error.code == "link_expired") {
    return message_page(
        410, "链接已过期",
        "此送达链接已超过有效期，无法再打开。如需查看文书，请联系发出通知的法院，或登录诉讼服务平台查看。");
  }
  return message_page(403, "链接无效",
                      "此链接不是法院签发的有效送达链接（可能被修改或不完整）。请核对短信、微信或邮件中的原始链接；"
                      "如有疑问，请联系法院。");
}

std::string beijing_minute(std::int64_t unix_ms) {
  const std::string t = rfc3339_utc(unix_ms + 8LL * 3600 * 1000);  // "YYYY-MM-DDTHH:MM:SS.mmmZ" shifted to UTC+8
  return t.substr(0, 10) + " " + t.substr(11, 5) + "（北京时间）";
}

namespace {

// The head of the page and the notice's header: court, title, case number, recipient (all escaped).
std::string notice_header(const PartyNotice& n) {
  std::string h = page_head(n.title.empty() ? "法院送达通知" : n.title);
  h += "<main class=\"card\">\n";
  h += "<p class=\"court\">" + html_escape(n.court_name) + "</p>\n";
  h += "<h1>" + html_escape(n.title.empty() ? ledger::event_type_zh(n.event_type) : n.title) + "</h1>\n";
  h += "<dl class=\"facts\">\n<dt>案号</dt><dd>" + html_escape(n.case_number) + "</dd>\n";
  if (!n.recipient_name.empty()) h += "<dt>受送达人</dt><dd>" + html_escape(n.recipient_name) + "</dd>\n";
  h += "</dl>\n";
  return h;
}

}  // namespace

std::string render_party_page(const PartyNotice& n) {
  const std::string base = "/r/" + n.token;
  std::string h = notice_header(n);
  const std::string text = strip_links(n.text);
  if (!text.empty()) h += "<div class=\"text\">" + html_escape(text) + "</div>\n";
  h += "<section class=\"document\">\n<h2>送达文书</h2>\n";
  if (!n.document) {
    h += "<p>本通知没有附带文书。</p>\n";
  } else {
    h += "<p class=\"doc-title\">" + html_escape(n.document->title.empty() ? n.document->id : n.document->title);
    if (n.document->pages > 0) h += "（共 " + std::to_string(n.document->pages) + " 页）";
    h += "</p>\n";
    if (n.document_available) {
      h += "<a class=\"button secondary\" id=\"open-document\" href=\"" + html_escape(base) +
           "/document\" target=\"_blank\" rel=\"noopener noreferrer\">查看 / 下载文书</a>\n";
    } else {
      h += "<p class=\"muted\" id=\"document-unavailable\">文书暂不能在线查看，请联系法院获取。</p>\n";
    }
    h += "<p class=\"hash\">文书校验码（SHA-256）：<code>" + html_escape(n.document->sha256) + "</code></p>\n";
  }
  h += "</section>\n<section class=\"ack\">\n";
  if (n.acknowledged_ms > 0 || n.status == "ACKNOWLEDGED") {
    h += "<p class=\"acknowledged\" id=\"acknowledged\" role=\"status\">✓ 您已确认收到";
    if (n.acknowledged_ms > 0) h += "（" + html_escape(beijing_minute(n.acknowledged_ms)) + "）";
    h += "。法院已记录您的确认。</p>\n";
  } else {
    h += "<p>请阅读上述通知及文书后，点击下方按钮确认收到。确认将作为送达凭证的一部分记录在案。</p>\n";
    h += "<form method=\"post\" action=\"" + html_escape(base) +
         "/ack\" id=\"ack-form\">\n<button type=\"submit\" class=\"button primary\" id=\"ack\">确认收到</button>\n"
         "</form>\n";
  }
  h += "</section>\n";
  h +=
      "<p "
      "class=\"footnote\">本页面由法院电子送达系统提供。打开本页面、下载文书及确认收到均会被记录，作为送达证据。</p>\n";
  h += "</main>\n<script src=\"/assets/party.js\"></script>\n";
  h += kPageFoot;
  return h;
}

std::string render_party_landing(const PartyNotice& n) {
  const std::string base = "/r/" + n.token;
  std::string h = notice_header(n);
  h += "<section class=\"open\">\n";
  h += "<p>您有一份法院送达通知。点击下方按钮查看通知内容及送达文书；查看将被记录，作为送达证据。</p>\n";
  h += "<form method=\"post\" action=\"" + html_escape(base) +
       "/open\" id=\"open-form\">\n<button type=\"submit\" class=\"button primary\" id=\"open\">查看通知</button>\n"
       "</form>\n</section>\n";
  h += "<p class=\"footnote\">本页面由法院电子送达系统提供。仅在您点击「查看通知」后才记录为已阅读。</p>\n";
  h += "</main>\n";
  h += kPageFoot;
  return h;
}

bool party_notice_opened(std::string_view status) {
  return status == "READ" || status == "ACKNOWLEDGED" || status == "CANCELLED";
}

std::string sse_message(std::string_view event, std::string_view data) {
  std::string out;
  if (!event.empty()) out += "event: " + std::string(event) + "\n";
  std::size_t start = 0;
  while (true) {
    const auto nl = data.find('\n', start);
    out += "data: ";
    out += data.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start);
    out += "\n";
    if (nl == std::string_view::npos) break;
    start = nl + 1;
  }
  out += "\n";
  return out;
}

std::string percent_encode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
        c == '_' || c == '~') {
      out += ch;
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

const char* document_csp(std::string_view content_type) {
  return content_type == "application/pdf" ? kPdfCsp : kDocumentCsp;
}

std::string sniff_content_type(std::string_view b) {
  if (b.starts_with("%PDF-")) return "application/pdf";
  if (b.starts_with("\x89PNG\r\n\x1a\n")) return "image/png";
  if (b.starts_with("\xFF\xD8\xFF")) return "image/jpeg";
  if (is_valid_utf8(b)) return "text/plain; charset=utf-8";
  return "application/octet-stream";
}

}  // namespace songda::web
