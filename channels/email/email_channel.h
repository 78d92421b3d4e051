// The email channel: one SMTP transaction per delivery through libcurl.
//
// The message: multipart/alternative with a text/plain part (d.text) and a
// text/html part (d.text HTML-escaped, line breaks kept, the link as an <a>),
// both UTF-8 and base64; headers From (RFC 2047 display name), To, Subject
// (RFC 2047 UTF-8 base64 of d.title), Date (RFC 5322, UTC), Message-ID
// `<{delivery id}@{domain of `from`}>` and X-Songda-Delivery: {delivery id}.
// Transport: smtp://host:port with STARTTLS per `starttls` (required ->
// CURLUSESSL_ALL, optional -> CURLUSESSL_TRY, none -> plain, for loopback test
// sinks only) or smtps://host:465; CURLOPT_CAINFO from ca_file; AUTH when
// <credentials_env>_USER is set.
//
// Outcome: the server's final answer to DATA ("250 2.0.0 Ok: queued as …") is
// the evidence that the recipient's system took the message, so success is
// kDelivered with provider "smtp", provider_message_id = the Message-ID (with
// its angle brackets), code "250", raw = message = that answer verbatim.
// A 4xx answer or a transport error (connect, TLS, timeout) is kRetryable; a
// 5xx answer is kPermanent with the server's text verbatim. The Message-ID is
// the idempotency key: a resend after a crash carries the same one, so the
// recipient's system (and the evidence) can tell the copies apart.
//
// Secrets: <credentials_env>_USER and _PASSWORD, read once at construction
// through the injected getenv. Both unset = no AUTH; USER without PASSWORD is a
// StartupError. Addresses are logged masked.
//
// Ownership: the channel owns a pool of libcurl easy handles (connections are
// reused between messages). Thread-safety: send() may be called from several
// threads; a batch goes out on up to `concurrency` threads, joined before return.
// No C headers here.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "channels/channel.h"
#include "channels/http/channel_support.h"
#include "gateway/config/config.h"

namespace songda::email {

// ---- Message pieces (pure; exposed for tests) ------------------------------------------

// RFC 2047 "=?UTF-8?B?…?=" encoded words (each at most 75 characters, split on
// UTF-8 character boundaries, separated by a space). Printable ASCII without
// "=?" comes back unchanged.
std::string rfc2047_encode(std::string_view text);

// "Sat, 28 Nov 2026 01:00:00 +0000".
std::string rfc5322_date(std::int64_t unix_ms);

// & < > " ' escaped.
std::string html_escape(std::string_view text);

// The HTML part: escaped text, line breaks as <br>, `link` (when found in the
// text) as <a href="link">link</a>; `title` as the document title and heading.
std::string html_body(std::string_view title, std::string_view text, std::string_view link);

// The domain part of `from` ("noreply@court.example" -> "court.example"), "songda" when none.
std::string message_id_domain(std::string_view from);

// True for a bare addr-spec we can put in RCPT TO and To: one '@', no
// whitespace, control characters, '<', '>', ',' or ';'.
bool plausible_address(std::string_view address);

// ---- Channel ---------------------------------------------------------------------------

struct EmailChannelOptions {
  UnixMsClock now_ms;            // Date header; default now_unix_ms
  std::size_t max_parallel = 0;  // deliveries sent at once; 0 = config.concurrency
};

class EmailChannel final : public Channel {
 public:
  // StartupError on a bad smtp_url scheme, starttls value or `from`, or USER without PASSWORD.
  EmailChannel(const EmailConfig& config, const Getenv& getenv, EmailChannelOptions options = {});
  ~EmailChannel() override;
  EmailChannel(const EmailChannel&) = delete;
  EmailChannel& operator=(const EmailChannel&) = delete;

  [[nodiscard]] std::string_view name() const override { return kChannelEmail; }
  std::vector<SendOutcome> send(std::span<const Delivery> batch) override;

 private:
  struct Pool;
  SendOutcome send_one(const Delivery& d);

  EmailConfig config_;
  EmailChannelOptions options_;
  std::string user_;
  std::string password_;
  std::string domain_;
  std::unique_ptr<Pool> pool_;
};

}  // namespace songda::email
