// Text helpers used on the message path: UTF-8 validation, masking of personal
// data for logs (PIPL), time formatting. Pure and thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace songda {

bool is_valid_utf8(std::string_view s);
// Valid UTF-8 in, the same out; otherwise each byte that is not part of a valid sequence becomes U+FFFD (for
// text from outside, e.g. a server's reply in another charset, kept where only UTF-8 may go).
std::string repair_utf8(std::string_view s);
std::size_t utf8_length(std::string_view s);  // code points; assumes valid UTF-8

// "+8613800000000" -> "+86138****0000"; "zhang.san@court.cn" -> "z***@court.cn"; openid -> "oAbc***".
std::string mask_phone(std::string_view phone);
std::string mask_email(std::string_view email);
std::string mask_address(std::string_view channel, std::string_view address);
// `text` (a provider's or mail server's words) with every occurrence of the recipient's own `address` masked as
// mask_address does: matched without regard to ASCII case, and for a +86 number also in its national form.
std::string mask_address_in(std::string_view text, std::string_view channel, std::string_view address);
// A provider message id "<BizId>:<number>" (Aliyun's, one per number of a request) with the number masked; ids
// without a number suffix are returned as they are.
std::string masked_message_id(std::string_view id);
// Free text for a log line (a library's error message that may quote its input): each run of 7 to 14 digits is
// masked as a phone number, a longer one (a national ID, a bank card) all but its first 3 and last 2 digits, each
// word@domain.tld as an email address; everything else is kept.
std::string mask_personal_data(std::string_view text);

// Appends `s` as a JSON string, quotes included, escaped as ECMAScript's JSON.stringify (and nlohmann's
// dump()) do: \" \\, the five short forms \b \f \n \r \t, \u00xx (lowercase) for the other controls,
// everything else verbatim. False, with `out` partly written, when `s` is not valid UTF-8.
bool append_json_string(std::string& out, std::string_view s);

// Escapes & < > " ' for HTML text and attribute values.
std::string html_escape(std::string_view text);

// A listen address "host:port" or "[v6]:port" (port 0-65535; a bare IPv6 address needs its brackets). `host` is
// without the brackets, as bind() takes it; authority() puts them back for a URL.
struct HostPort {
  std::string host;
  int port = 0;
  [[nodiscard]] std::string authority() const;
};
std::optional<HostPort> parse_host_port(std::string_view text);

// Milliseconds since the Unix epoch <-> RFC 3339 UTC with milliseconds ("2026-11-28T01:00:00.123Z").
std::string rfc3339_utc(std::int64_t unix_ms);
std::int64_t now_unix_ms();

}  // namespace songda

namespace songda {
// Where shipped files (schemas/, config/) are found: $SONGDA_HOME, else the working
// directory if it has them, else the source tree the binary was built from.
std::string resource_path(const std::string& relative);
}  // namespace songda
