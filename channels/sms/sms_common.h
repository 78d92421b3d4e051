// What the SMS provider protocols (Aliyun, Tencent) share: the classification
// of a provider's answer into a channel outcome, the transport-level fallback
// for when there is no provider code to read, and the time conversions the
// providers' wire formats need (UTC stamps to send, Beijing wall-clock times
// in receipts).
//
// Pure functions over values: no I/O, no shared state, thread-safe. Callers own
// everything they pass and everything returned.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "channels/channel.h"

namespace songda::sms {

// How one provider code (or HTTP status) should be treated. `kind` is what the
// adapter puts in SendOutcome: kAccepted for the provider's success code,
// otherwise kRetryable or kPermanent. The code is kept verbatim.
struct CodeClass {
  SendOutcome::Kind kind = SendOutcome::Kind::kPermanent;
  // True when a person must act (top up, approve a template or signature, fix
  // keys, clocks or allow-lists): the adapter should count and alert, not only retry.
  bool needs_operator = false;
  std::string code;  // the provider's code, verbatim ("isv.MOBILE_NUMBER_ILLEGAL", "http_503", ...)
  std::string note;  // why it is classified this way, for logs and the DLQ
};

// Fallback when the answer carries no provider code (no body, body not JSON):
// status 0 = no answer at all (connect failure, timeout, reset); 408, 429 and
// 5xx are retryable; other 4xx are permanent. 2xx without a code is permanent
// too: the provider answered something we cannot read, and a resend could
// double-send. When a provider code was parsed, classify by the code instead.
//
// A timeout after the request was written may still have been accepted: a
// retry can then send twice. Both providers document that they do not
// deduplicate sends; a duplicate notice costs less than a lost one, so timeouts
// stay retryable, and receipts (which echo our delivery id) deduplicate later.
CodeClass classify_http(int http_status);

// "2017-01-01 00:00:00" in Beijing time (UTC+8, no DST, as both providers'
// receipts write it) -> Unix milliseconds UTC. nullopt when malformed or out of range.
std::optional<std::int64_t> beijing_time_to_unix_ms(std::string_view text);

// Unix milliseconds -> "2017-07-12T02:42:19Z" (UTC, seconds; Aliyun RPC Timestamp).
std::string iso8601_utc_seconds(std::int64_t unix_ms);

// Unix seconds -> "2019-02-25" (UTC date; Tencent TC3 credential scope).
std::string utc_date(std::int64_t unix_seconds);

}  // namespace songda::sms
