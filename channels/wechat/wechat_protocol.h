// WeChat (Official Account template messages, mini-program subscribe messages)
// wire protocol, without any network I/O: the callback signature and GET echo
// check, the TEMPLATESENDJOBFINISH XML push, the send request bodies and their
// answers, the access-token answers (/cgi-bin/token, /cgi-bin/stable_token),
// template field limits, and the classification of errcodes.
// Formats: shared/reference/provider-apis.md.
//
// Note on callbacks: in plain (non-encrypted) mode the signature covers only
// token, timestamp and nonce, not the body, so a captured query string could be
// replayed with another body; the HTTP layer should also bound the timestamp's
// age (callback_timestamp_fresh) and keep the callback path secret.
//
// Pure functions over values: thread-safe, no shared state; callers own all
// arguments and results. Malformed input gives an Error, never an exception.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "channels/channel.h"
#include "gateway/core/result.h"

namespace songda::wechat {

// ---- Callback authentication ------------------------------------------------------------

// sha1 hex of the lexicographically sorted [token, timestamp, nonce], concatenated.
std::string callback_signature(std::string_view token, std::string_view timestamp, std::string_view nonce);

// Recomputes the signature and compares in constant time (case-insensitive hex).
bool verify_callback_signature(std::string_view token, std::string_view timestamp, std::string_view nonce,
                               std::string_view signature);

// |now - timestamp| <= max_skew_seconds; false when timestamp is not a number.
bool callback_timestamp_fresh(std::string_view timestamp, std::int64_t now_unix_seconds,
                              std::int64_t max_skew_seconds = 300);

// The GET URL check WeChat makes when the callback URL is configured: returns
// echostr to be answered verbatim when the signature holds, else Error
// "signature_mismatch" (permanent; answer 403).
Result<std::string> echo_check(std::string_view token, std::string_view signature, std::string_view timestamp,
                               std::string_view nonce, std::string_view echostr);

// ---- Completion push ------------------------------------------------------------------

struct TemplateSendJobFinish {
  std::string to_user_name;    // the account (gh_...)
  std::string from_user_name;  // the user's openid
  std::int64_t create_time = 0;
  std::string msg_type;    // "event"
  std::string event;       // "TEMPLATESENDJOBFINISH"
  std::string msg_id;      // verbatim digits; equals the send answer's msgid
  std::string status;      // verbatim: "success", "failed:user block", "failed: system failed", ...
  bool delivered = false;  // status == "success"; anything else is a failure with `status` as its reason
};

// Parses the XML push. Errors (permanent): "invalid_xml" (not well-formed, no
// <xml> root, oversized), "other_event" (a well-formed push of another
// MsgType/Event: acknowledge it and ignore it), "invalid_receipt" (MsgID,
// Status or a valid CreateTime missing).
Result<TemplateSendJobFinish> parse_template_send_job_finish(std::string_view xml);

// ---- Template fields ------------------------------------------------------------------

inline constexpr std::size_t kTemplateFieldMaxChars = 20;

// An Official Account template field value (since 2023-05): at most 20
// characters counted as code points, valid UTF-8, no line breaks (\n, \r,
// U+0085, U+2028, U+2029). Error "template_field" (permanent) naming the field,
// e.g. `template field "thing2": 21 characters, at most 20 allowed`.
Status check_template_field(std::string_view field, std::string_view value);

// A mini-program subscribe-message field, limited by the type its key starts
// with: thing 20, number/letter/character_string 32, symbol 5, phrase 5,
// phone_number 17, car_number 8, name 10 (20 when pure ASCII); other types
// (time, date, amount, enum, ...) only get the UTF-8 and line-break checks.
Status check_subscribe_field(std::string_view field, std::string_view value);

// ---- Send requests --------------------------------------------------------------------

struct MiniProgramLink {
  std::string appid;
  std::string pagepath;
};

// POST /cgi-bin/message/template/send?access_token=...
struct TemplateMessage {
  std::string touser;  // openid
  std::string template_id;
  std::string url;  // optional
  std::optional<MiniProgramLink> miniprogram;
  std::string client_msg_id;                              // our delivery id: WeChat's own dedup key
  std::vector<std::pair<std::string, std::string>> data;  // key -> value
};

// The JSON body; every data value is checked with check_template_field. Error
// "invalid_request" when touser, template_id or client_msg_id is missing, or a
// data key is empty or repeated.
Result<std::string> template_message_body(const TemplateMessage& message);

// POST /cgi-bin/message/subscribe/send?access_token=...
struct SubscribeMessage {
  std::string touser;
  std::string template_id;
  std::string page;  // optional
  std::vector<std::pair<std::string, std::string>> data;
  std::string miniprogram_state = "formal";  // developer | trial | formal
  std::string lang = "zh_CN";
};

// The JSON body; every data value is checked with check_subscribe_field.
Result<std::string> subscribe_message_body(const SubscribeMessage& message);

// {"errcode","errmsg","msgid"} of either send. errcode absent means 0.
struct SendResponse {
  std::int64_t errcode = 0;
  std::string errmsg;
  std::string msgid;  // digits, verbatim; empty when absent
};

// Error "invalid_response" (permanent) when the body is not a JSON object.
Result<SendResponse> parse_send_response(std::string_view body);

// ---- Access token ---------------------------------------------------------------------

struct AccessToken {
  std::string access_token;     // store >= 512 characters
  std::int64_t expires_in = 0;  // seconds
};

// Query string for GET /cgi-bin/token (appid and secret percent-encoded).
std::string token_request_query(std::string_view appid, std::string_view secret);

// Body for POST /cgi-bin/stable_token. force_refresh is limited to 20 a day.
std::string stable_token_request_body(std::string_view appid, std::string_view secret, bool force_refresh);

// Parses either token answer. An {"errcode","errmsg"} answer becomes Error
// "wechat_token_refused" whose message holds errcode and errmsg verbatim and
// whose retryable flag follows classify_errcode; a malformed answer is
// "invalid_response" (retryable: the token server may be mid-failure).
Result<AccessToken> parse_access_token_response(std::string_view body);

// How long to cache a token: expires_in - 300 s (never negative).
std::int64_t token_cache_ttl_seconds(std::int64_t expires_in);

// ---- Classification -------------------------------------------------------------------

struct ErrcodeClass {
  SendOutcome::Kind kind = SendOutcome::Kind::kPermanent;  // kAccepted for 0
  // 40001 / 40014 / 42001: invalidate the shared token, refetch, resend once.
  bool refresh_token = false;
  bool needs_operator = false;  // a person must act (config, quota, permissions)
  std::int64_t errcode = 0;
  std::string note;
};

// errcode -> what to do. When `token_already_refreshed` is true (the resend
// after a refetch), a token error is no longer "refresh" but retryable: the
// token server or the shared cache is misbehaving and the next attempt may fare better.
ErrcodeClass classify_errcode(std::int64_t errcode, bool token_already_refreshed = false);

}  // namespace songda::wechat
