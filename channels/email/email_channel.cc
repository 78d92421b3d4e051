#include "channels/email/email_channel.h"

#include <algorithm>
#include <ctime>
#include <mutex>

#include <spdlog/spdlog.h>

#include "channels/http/curl_handles.h"
#include "channels/http/http_client.h"
#include "gateway/core/crypto.h"
#include "gateway/core/text.h"

namespace songda::email {
namespace {

using Kind = SendOutcome::Kind;

constexpr std::size_t kMaxEncodedWordBytes = 45;  // 45 bytes -> 60 base64 chars -> a 72-char encoded word

bool needs_encoding(std::string_view text) {
  if (text.find("=?") != std::string_view::npos) return true;
  return std::any_of(text.begin(), text.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u > 0x7E;
  });
}

// Header values never carry line breaks of their own.
std::string one_line(std::string_view text) {
  std::string out(text);
  std::replace(out.begin(), out.end(), '\r', ' ');
  std::replace(out.begin(), out.end(), '\n', ' ');
  return out;
}

std::string display_name(std::string_view name) {
  const std::string line = one_line(name);
  if (needs_encoding(line)) return rfc2047_encode(line);
  std::string quoted = "\"";
  for (const char c : line) {
    if (c == '"' || c == '\\') quoted.push_back('\\');
    quoted.push_back(c);
  }
  return quoted + "\"";
}

std::string mailbox(std::string_view name, std::string_view address) {
  if (name.empty()) return "<" + std::string(address) + ">";
  return display_name(name) + " <" + std::string(address) + ">";
}

// What the server said during one transaction (CURLOPT_DEBUGFUNCTION).
struct Transcript {
  std::vector<std::string> lines;             // server reply lines, CRLF stripped
  std::size_t data_mark = std::string::npos;  // lines.size() when the client sent DATA
};

int on_debug(CURL* /*handle*/, curl_infotype type, char* data, std::size_t size, void* user) {
  auto* t = static_cast<Transcript*>(user);
  const std::string_view s(data, size);
  if (type == CURLINFO_HEADER_OUT) {
    if (s.rfind("DATA", 0) == 0) t->data_mark = t->lines.size();
  } else if (type == CURLINFO_HEADER_IN) {
    std::size_t pos = 0;
    while (pos < s.size()) {
      const auto nl = s.find('\n', pos);
      std::string_view line = s.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
      while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.remove_suffix(1);
      if (!line.empty()) t->lines.emplace_back(line);
      if (nl == std::string_view::npos) break;
      pos = nl + 1;
    }
  }
  return 0;
}

// The last complete reply at or after `from` (the last one with code
// `with_code` when given): its final "ddd text" line with any "ddd-text" lines
// just before it, joined by '\n'.
std::string last_reply(const std::vector<std::string>& lines, std::size_t from, std::string_view with_code = {}) {
  if (from == std::string::npos || from >= lines.size()) from = 0;
  std::size_t end = lines.size();
  if (!with_code.empty()) {
    // The reply that failed the transaction, not the QUIT answer after it.
    while (end > from &&
           !(lines[end - 1].size() >= 4 && lines[end - 1].compare(0, 3, with_code) == 0 && lines[end - 1][3] == ' ')) {
      --end;
    }
  }
  if (end <= from) return {};
  const std::string& last = lines[end - 1];
  const std::string code = last.substr(0, 3);
  std::size_t begin = end - 1;
  while (begin > from && lines[begin - 1].size() >= 4 && lines[begin - 1].compare(0, 3, code) == 0 &&
         lines[begin - 1][3] == '-') {
    --begin;
  }
  std::string out;
  for (std::size_t i = begin; i < end; ++i) {
    if (!out.empty()) out.push_back('\n');
    out += lines[i];
  }
  return out;
}

long use_ssl_for(const std::string& starttls) {
  if (starttls == "required") return CURLUSESSL_ALL;
  if (starttls == "optional") return CURLUSESSL_TRY;
  return CURLUSESSL_NONE;
}

bool is_loopback_url(std::string_view url) {
  return url.find("://127.") != std::string_view::npos || url.find("://localhost") != std::string_view::npos ||
         url.find("://[::1]") != std::string_view::npos;
}

SendOutcome outcome(Kind kind, std::string code, std::string message) {
  SendOutcome o;
  o.kind = kind;
  o.provider = "smtp";
  o.code = std::move(code);
  o.message = std::move(message);
  return o;
}

}  // namespace

// ---- Message pieces --------------------------------------------------------------------

std::string rfc2047_encode(std::string_view text) {
  if (!needs_encoding(text)) return std::string(text);
  std::string out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = std::min(text.size(), pos + kMaxEncodedWordBytes);
    // Never split a UTF-8 sequence: back up over continuation bytes.
    while (end < text.size() && end > pos + 1 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
    if (!out.empty()) out.push_back(' ');
    out += "=?UTF-8?B?" + base64_encode(text.substr(pos, end - pos)) + "?=";
    pos = end;
  }
  return out;
}

std::string rfc5322_date(std::int64_t unix_ms) {
  std::time_t secs = static_cast<std::time_t>(unix_ms / 1000);
  if (unix_ms % 1000 < 0) --secs;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d +0000", kDays[tm.tm_wday % 7], tm.tm_mday,
                kMonths[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

std::string html_escape(std::string_view text) { return songda::html_escape(text); }

std::string html_body(std::string_view title, std::string_view text, std::string_view link) {
  std::string body = html_escape(text);
  if (!link.empty()) {
    const std::string escaped = html_escape(link);
    const auto at = body.rfind(escaped);
    const std::string anchor = "<a href=\"" + escaped + "\">" + escaped + "</a>";
    if (at != std::string::npos) {
      body.replace(at, escaped.size(), anchor);
    } else {
      body += "\n" + anchor;
    }
  }
  std::string lines;
  for (std::size_t pos = 0; pos <= body.size();) {
    const auto nl = body.find('\n', pos);
    std::string line = body.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!lines.empty()) lines += "<br>\n";
    lines += line;
    if (nl == std::string::npos) break;
    pos = nl + 1;
  }
  const std::string t = html_escape(title);
  return "<!DOCTYPE html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>" + t +
         "</title></head>\n<body>\n<h1>" + t + "</h1>\n<p>" + lines + "</p>\n</body></html>\n";
}

std::string message_id_domain(std::string_view from) {
  const auto at = from.rfind('@');
  if (at == std::string_view::npos || at + 1 >= from.size()) return "songda";
  return std::string(from.substr(at + 1));
}

bool plausible_address(std::string_view a) {
  const auto at = a.find('@');
  if (at == std::string_view::npos || at == 0 || at + 1 >= a.size() || a.find('@', at + 1) != std::string_view::npos) {
    return false;
  }
  return std::none_of(a.begin(), a.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u <= 0x20 || u == 0x7F || c == '<' || c == '>' || c == ',' || c == ';' || c == '"';
  });
}

// ---- Channel ---------------------------------------------------------------------------

struct EmailChannel::Pool {
  std::mutex mu;
  std::vector<curl::Easy> idle;
};

EmailChannel::EmailChannel(const EmailConfig& config, const Getenv& getenv, EmailChannelOptions options)
    : config_(config), options_(std::move(options)), pool_(std::make_unique<Pool>()) {
  const std::string what = "email channel";
  if (config_.smtp_url.rfind("smtp://", 0) != 0 && config_.smtp_url.rfind("smtps://", 0) != 0) {
    throw StartupError(what + ": smtp_url '" + config_.smtp_url +
                       "' must start with smtp:// (STARTTLS per starttls) or smtps:// (TLS from the start)");
  }
  if (config_.starttls != "required" && config_.starttls != "optional" && config_.starttls != "none") {
    throw StartupError(what + ": starttls '" + config_.starttls + "' must be required, optional or none");
  }
  if (!plausible_address(config_.from)) {
    throw StartupError(what + ": from '" + config_.from + "' is not a plain address (name goes in from_name)");
  }
  if (config_.starttls == "none" && config_.smtp_url.rfind("smtp://", 0) == 0 && !is_loopback_url(config_.smtp_url)) {
    spdlog::warn("email: starttls none to a non-loopback server ({}): mail and credentials travel in clear text",
                 config_.smtp_url);
  }
  user_ = optional_env(getenv, config_.credentials_env + "_USER");
  if (!user_.empty()) password_ = require_env(getenv, config_.credentials_env + "_PASSWORD", what + " (AUTH)");
  domain_ = message_id_domain(config_.from);
  if (!options_.now_ms) options_.now_ms = [] { return now_unix_ms(); };
  ensure_curl_global_init();
}

EmailChannel::~EmailChannel() = default;

SendOutcome EmailChannel::send_one(const Delivery& d) {
  if (!plausible_address(d.address)) {
    return outcome(Kind::kPermanent, "invalid_address", "not a plain email address: " + mask_email(d.address));
  }
  const std::string message_id = "<" + d.id + "@" + domain_ + ">";
  const std::string link = last_http_url(d.text);
  const std::string html = html_body(d.title, d.text, link);

  curl::Easy easy;
  {
    std::lock_guard lock(pool_->mu);
    if (!pool_->idle.empty()) {
      easy = std::move(pool_->idle.back());
      pool_->idle.pop_back();
    }
  }
  if (!easy) easy.reset(curl_easy_init());
  if (!easy) return outcome(Kind::kRetryable, "smtp_transport", "curl_easy_init failed (out of memory?)");
  CURL* h = easy.get();

  curl::Slist headers;
  curl::Slist rcpt;
  bool built = headers.append("From: " + mailbox(config_.from_name, config_.from)) &&
               headers.append("To: " + mailbox(d.recipient_name, d.address)) &&
               headers.append("Subject: " + rfc2047_encode(one_line(d.title))) &&
               headers.append("Date: " + rfc5322_date(options_.now_ms())) &&
               headers.append("Message-ID: " + message_id) && headers.append("X-Songda-Delivery: " + d.id) &&
               headers.append("Content-Type: multipart/alternative") && rcpt.append("<" + d.address + ">");
  curl::Mime mime(curl_mime_init(h));
  if (mime) {
    curl_mimepart* text_part = curl_mime_addpart(mime.get());
    curl_mimepart* html_part = curl_mime_addpart(mime.get());
    built = built && text_part != nullptr && html_part != nullptr &&
            curl_mime_data(text_part, d.text.data(), d.text.size()) == CURLE_OK &&
            curl_mime_type(text_part, "text/plain; charset=utf-8") == CURLE_OK &&
            curl_mime_encoder(text_part, "base64") == CURLE_OK &&
            curl_mime_data(html_part, html.data(), html.size()) == CURLE_OK &&
            curl_mime_type(html_part, "text/html; charset=utf-8") == CURLE_OK &&
            curl_mime_encoder(html_part, "base64") == CURLE_OK;
  }
  if (!built || !mime) return outcome(Kind::kRetryable, "smtp_transport", "cannot build the message (out of memory?)");

  Transcript transcript;
  char errbuf[CURL_ERROR_SIZE] = {};
  const long timeout = std::max(1, config_.timeout_ms);
  curl_easy_setopt(h, CURLOPT_URL, config_.smtp_url.c_str());
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, std::min(timeout, 10000L));
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  if (config_.smtp_url.rfind("smtp://", 0) == 0) curl_easy_setopt(h, CURLOPT_USE_SSL, use_ssl_for(config_.starttls));
  if (!config_.ca_file.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, config_.ca_file.c_str());
  if (!user_.empty()) {
    curl_easy_setopt(h, CURLOPT_USERNAME, user_.c_str());
    curl_easy_setopt(h, CURLOPT_PASSWORD, password_.c_str());
  }
  const std::string mail_from = "<" + config_.from + ">";
  curl_easy_setopt(h, CURLOPT_MAIL_FROM, mail_from.c_str());
  curl_easy_setopt(h, CURLOPT_MAIL_RCPT, rcpt.get());
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(h, CURLOPT_MIMEPOST, mime.get());
  curl_easy_setopt(h, CURLOPT_VERBOSE, 1L);  // needed for the debug callback, which captures the server's answers
  curl_easy_setopt(h, CURLOPT_DEBUGFUNCTION, &on_debug);
  curl_easy_setopt(h, CURLOPT_DEBUGDATA, &transcript);

  const CURLcode rc = curl_easy_perform(h);
  long smtp_code = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &smtp_code);
  const std::string curl_error =
      std::string(curl_easy_strerror(rc)) + (errbuf[0] != '\0' ? ": " + std::string(errbuf) : "");
  curl_easy_reset(h);  // drops every pointer into this call's locals; keeps the connection
  mime.reset();        // freed before the handle can go to another thread
  {
    std::lock_guard lock(pool_->mu);
    if (pool_->idle.size() < static_cast<std::size_t>(std::max(1, config_.concurrency))) {
      pool_->idle.push_back(std::move(easy));
    }
  }

  if (rc == CURLE_OK) {
    const std::string answer = last_reply(transcript.lines, transcript.data_mark);
    SendOutcome o = outcome(Kind::kDelivered, answer.substr(0, 3), answer);
    o.provider_message_id = message_id;
    o.raw = answer;
    return o;
  }
  const std::string server_said = last_reply(transcript.lines, 0, std::to_string(smtp_code));
  if (smtp_code >= 500 && smtp_code <= 599) {
    spdlog::info("email: delivery {} to {} refused: {}", d.id, mask_email(d.address),
                 mask_personal_data(mask_address_in(server_said, "email", d.address)));
    SendOutcome o = outcome(Kind::kPermanent, std::to_string(smtp_code), server_said);
    o.raw = server_said;
    return o;
  }
  if (smtp_code >= 400 && smtp_code <= 499) {
    SendOutcome o = outcome(Kind::kRetryable, std::to_string(smtp_code), server_said);
    o.raw = server_said;
    return o;
  }
  return outcome(Kind::kRetryable, "smtp_transport", curl_error);
}

std::vector<SendOutcome> EmailChannel::send(std::span<const Delivery> batch) {
  std::vector<SendOutcome> out(batch.size());
  const std::size_t parallel =
      options_.max_parallel != 0 ? options_.max_parallel : static_cast<std::size_t>(std::max(1, config_.concurrency));
  parallel_for(batch.size(), parallel, [&](std::size_t i) { out[i] = send_one(batch[i]); });
  return out;
}

}  // namespace songda::email
