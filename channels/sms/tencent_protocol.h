// Tencent Cloud SMS (sms.tencentcloudapi.com, Version 2021-01-11) wire protocol,
// without any network I/O: TC3-HMAC-SHA256 signing, the SendSms JSON body and
// headers, the SendSms answer, the status callback, and the classification of
// Tencent codes. Formats and published test vectors: shared/reference/provider-apis.md.
//
// The timestamp is an input (never read from the clock here). Secrets are only
// read to sign; nothing here logs or keeps them.
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

#include "channels/sms/sms_common.h"
#include "gateway/core/result.h"

namespace songda::sms::tencent {

inline constexpr std::string_view kHost = "sms.tencentcloudapi.com";
inline constexpr std::string_view kService = "sms";
inline constexpr std::string_view kVersion = "2021-01-11";
inline constexpr std::string_view kJsonContentType = "application/json; charset=utf-8";
inline constexpr std::size_t kMaxPhoneNumbers = 200;
inline constexpr std::size_t kMaxSessionContextBytes = 511;  // "< 512 bytes"

// ---- TC3-HMAC-SHA256 ------------------------------------------------------------------

struct Tc3Input {
  std::string secret_id;
  std::string secret_key;
  std::string service;  // "sms", "cvm", ...
  std::string host;     // "sms.tencentcloudapi.com"
  std::string content_type{kJsonContentType};
  std::int64_t timestamp = 0;  // Unix seconds; the credential date is its UTC date
  std::string payload;         // the exact body bytes that will be sent
};

struct Tc3Signature {
  std::string date;               // "2019-02-25"
  std::string hashed_payload;     // lowercase hex SHA-256 of the payload
  std::string canonical_request;  // "POST\n/\n\ncontent-type:...\nhost:...\n\ncontent-type;host\n<hashed_payload>"
  std::string hashed_canonical_request;
  std::string credential_scope;  // "<date>/<service>/tc3_request"
  std::string string_to_sign;    // "TC3-HMAC-SHA256\n<timestamp>\n<scope>\n<hashed_canonical_request>"
  std::string signature;         // hex HMAC chain: "TC3"+key -> date -> service -> "tc3_request" -> string_to_sign
  std::string
      authorization;  // "TC3-HMAC-SHA256 Credential=<id>/<scope>, SignedHeaders=content-type;host, Signature=<sig>"
};

// Signs POST / with the signed headers content-type;host.
Tc3Signature tc3_sign(const Tc3Input& input);

// ---- SendSms --------------------------------------------------------------------------

struct Credentials {
  std::string secret_id;
  std::string secret_key;
};

struct SendSmsRequest {
  std::vector<std::string> phone_numbers;  // E.164 ("+8613800000000"), 1..200
  std::string sms_sdk_app_id;
  std::string template_id;
  std::string sign_name;  // required for mainland numbers
  std::vector<std::string> template_params;
  std::string session_context;  // our delivery id, echoed in SendStatusSet; < 512 bytes
  std::string extend_code;      // optional
  std::string sender_id;        // optional (international)
};

// The JSON body. Error "invalid_request" (permanent) on 0 or >200 numbers, a
// number not starting with '+', missing SmsSdkAppId/TemplateId, or a
// SessionContext of 512 bytes or more.
Result<std::string> send_sms_body(const SendSmsRequest& request);

// A signed request, ready for the transport (POST https://<host>/).
struct HttpRequest {
  std::string method = "POST";
  std::string host;
  std::string path = "/";
  std::vector<std::pair<std::string, std::string>> headers;  // Authorization, Content-Type, Host, X-TC-*
  std::string body;
};

// Body + headers: Authorization, Content-Type, Host, X-TC-Action: SendSms,
// X-TC-Version: 2021-01-11, X-TC-Timestamp, X-TC-Region.
Result<HttpRequest> build_send_sms(const Credentials& credentials, const SendSmsRequest& request,
                                   std::string_view region, std::int64_t timestamp, std::string_view host = kHost);

// ---- Answers and receipts -------------------------------------------------------------

struct SendStatus {
  std::string serial_no;  // matches the receipt's sid
  std::string phone_number;
  std::string code;  // "Ok" on success, verbatim otherwise
  std::string message;
  std::int64_t fee = 0;  // billed segments
  std::string session_context;
  std::string iso_code;
};

struct ApiError {
  std::string code;  // "AuthFailure.SignatureFailure", ...
  std::string message;
};

struct SendSmsResponse {
  std::string request_id;
  std::optional<ApiError> error;     // the whole request failed (no statuses then)
  std::vector<SendStatus> statuses;  // one per number
};

// Parses {"Response":{"SendStatusSet":[...],"RequestId"}} or
// {"Response":{"Error":{"Code","Message"},"RequestId"}}. Error
// "invalid_response" (permanent) when neither shape is found.
Result<SendSmsResponse> parse_send_sms_response(std::string_view body);

struct StatusReport {
  std::string user_receive_time;     // verbatim, Beijing time
  std::int64_t receive_time_ms = 0;  // UTC Unix ms
  std::string nationcode;
  std::string mobile;
  std::string report_status;  // "SUCCESS" or "FAIL", verbatim
  bool success = false;       // report_status == "SUCCESS"
  std::string errmsg;         // "DELIVRD" or the carrier's code, verbatim
  std::string description;
  std::string sid;  // = SendStatus::serial_no
};

// One callback push; a malformed element is listed in `rejected` and the rest parse.
struct StatusBatch {
  std::vector<StatusReport> reports;
  std::vector<std::string> rejected;
};

// Error "invalid_receipt" (permanent) when the body is not a JSON array.
Result<StatusBatch> parse_status_callback(std::string_view body);

// The answer Tencent expects: {"result":0,"errmsg":"OK"}.
std::string status_callback_ack();

// ---- PullSmsSendStatusByPhoneNumber: the reported statuses of one number ------------------
//
// Asked after a crash left an attempt's outcome unknown. Only messages whose delivery report is in are listed
// (a message accepted a moment ago is not there yet), so ask after the report would have come.

struct PullStatusRequest {
  std::string phone_number;  // E.164
  std::string sms_sdk_app_id;
  std::int64_t begin_time = 0;  // Unix s; at most 7 days back
  std::int64_t end_time = 0;    // Unix s
  int limit = 100;              // 1..100
};

// Signed like SendSms, with X-TC-Action: PullSmsSendStatusByPhoneNumber. Error "invalid_request" (permanent)
// on a number without '+', a missing SmsSdkAppId or a limit out of 1..100.
Result<HttpRequest> build_pull_status_by_phone(const Credentials& credentials, const PullStatusRequest& request,
                                               std::string_view region, std::int64_t timestamp,
                                               std::string_view host = kHost);

struct PulledStatus {
  std::int64_t user_receive_time = 0;  // Unix s
  std::string phone_number;
  std::string serial_no;
  std::string report_status;  // "SUCCESS" or "FAIL"
  std::string description;
  std::string session_context;
};

struct PullStatusResponse {
  std::optional<ApiError> error;
  std::vector<PulledStatus> statuses;
};

// Parses {"Response":{"PullSmsSendStatusSet":[...]}} or an error Response. Error "invalid_response" otherwise.
Result<PullStatusResponse> parse_pull_status_response(std::string_view body);

// ---- Classification -------------------------------------------------------------------

// Tencent's Code (per-number SendStatus.Code or Response.Error.Code) -> outcome.
// "Ok" = accepted; LimitExceeded.*, RequestLimitExceeded* and InternalError.*
// are retryable with the exceptions written in tencent_protocol.cc; unknown
// codes are permanent, kept verbatim.
CodeClass classify(std::string_view code);

}  // namespace songda::sms::tencent
