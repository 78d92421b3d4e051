// Aliyun SMS (dysmsapi.aliyuncs.com, Version 2017-05-25) wire protocol, without
// any network I/O: RFC 3986 percent-encoding, RPC signature v1 (HMAC-SHA1) and
// ACS3-HMAC-SHA256 signing, the SendSms / SendBatchSms requests, the SendSms
// answer, the SmsReport receipt push, and the classification of Aliyun codes.
// The formats and published test vectors are in shared/reference/provider-apis.md.
//
// Time and randomness are inputs (RpcContext::unix_ms, signature_nonce): the
// caller makes a fresh nonce per attempt and never replays a signed request.
// Secrets are only read to sign; nothing here logs or keeps them.
//
// Pure functions over values: thread-safe, no shared state; callers own all
// arguments and results. Malformed input gives an Error, never an exception.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "channels/sms/sms_common.h"
#include "gateway/core/result.h"

namespace songda::sms::aliyun {

inline constexpr std::string_view kHost = "dysmsapi.aliyuncs.com";
inline constexpr std::string_view kVersion = "2017-05-25";
inline constexpr std::size_t kMaxSendSmsNumbers = 1000;      // SendSms: comma separated
inline constexpr std::size_t kMaxSendBatchSmsNumbers = 100;  // SendBatchSms: per-number sign and params
inline constexpr std::size_t kMaxOutIdLength = 255;          // "OutId: a string shorter than 256"

// ---- Encoding and RPC signature v1 ------------------------------------------------

// RFC 3986 percent-encoding as Aliyun requires: A-Z a-z 0-9 - _ . ~ kept, every
// other byte as %XX with upper-case hex (so space is %20, '*' is %2A).
std::string percent_encode(std::string_view s);

// Request parameters, sorted by name (byte order), as Aliyun's canonicalisation wants.
using Params = std::map<std::string, std::string>;

// "k1=v1&k2=v2": names sorted, names and values percent-encoded.
std::string canonical_query(const Params& params);

// method + "&%2F&" + percent_encode(canonical_query(params)); `params` must not hold Signature.
std::string rpc_string_to_sign(std::string_view method, const Params& params);

// base64(HMAC-SHA1(access_key_secret + "&", string_to_sign)).
std::string rpc_signature(std::string_view access_key_secret, std::string_view string_to_sign);

// "Signature=<encoded>&" + canonical_query(params): the URL query (GET) or the
// application/x-www-form-urlencoded body (POST) of a signed RPC request.
std::string signed_rpc_query(std::string_view method, const Params& params, std::string_view access_key_secret);

// ---- ACS3-HMAC-SHA256 ----------------------------------------------------------------

struct Acs3Request {
  std::string method = "POST";
  std::string canonical_uri = "/";
  Params query;
  // Header names in any case; host, content-type and every x-acs-* header are signed.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;  // hashed into the canonical request
};

struct Acs3Signature {
  std::string canonical_request;
  std::string hashed_canonical_request;  // lowercase hex SHA-256
  std::string string_to_sign;            // "ACS3-HMAC-SHA256\n" + hashed_canonical_request
  std::string signed_headers;            // "host;x-acs-action;..."
  std::string signature;                 // lowercase hex HMAC-SHA256(secret, string_to_sign)
  std::string authorization;             // "ACS3-HMAC-SHA256 Credential=<id>,SignedHeaders=<...>,Signature=<...>"
};

// Signs with the AccessKeySecret as the key (no '&' appended, unlike v1).
Acs3Signature acs3_sign(const Acs3Request& request, std::string_view access_key_id, std::string_view access_key_secret);

// The header set an ACS3 call needs before signing: host, x-acs-action,
// x-acs-version, x-acs-date (from unix_ms), x-acs-signature-nonce,
// x-acs-content-sha256 (of body).
std::vector<std::pair<std::string, std::string>> acs3_headers(std::string_view host, std::string_view action,
                                                              std::string_view version, std::int64_t unix_ms,
                                                              std::string_view nonce, std::string_view body);

// ---- SendSms / SendBatchSms -----------------------------------------------------------

struct Credentials {
  std::string access_key_id;
  std::string access_key_secret;
};

// The per-request values that are injected rather than read from the clock or RNG.
struct RpcContext {
  std::string method = "POST";  // POST: parameters in a form body (1000 numbers overflow a URL)
  std::string region_id = "cn-hangzhou";
  std::string format = "JSON";
  std::string signature_nonce;  // unique per attempt (a UUID); required
  std::int64_t unix_ms = 0;     // request time; Aliyun refuses stamps more than 15 minutes off
};

struct SendSmsRequest {
  std::vector<std::string> phone_numbers;             // 1..1000, joined with ','
  std::string sign_name;                              // approved signature, without 【】
  std::string template_code;                          // "SMS_71390007"
  std::map<std::string, std::string> template_param;  // sent as a JSON object of strings; omitted when empty
  std::string out_id;                                 // our delivery id, echoed in receipts as out_id
};

struct BatchItem {
  std::string phone_number;
  std::string sign_name;
  std::map<std::string, std::string> template_param;
};

struct SendBatchSmsRequest {
  std::vector<BatchItem> items;  // 1..100
  std::string template_code;
  std::string out_id;  // one per request: receipts of every number in the batch carry it
};

// A signed request, ready for the transport: `query` goes in the URL for GET or
// as the form body (Content-Type: application/x-www-form-urlencoded) for POST.
struct RpcRequest {
  std::string method;
  std::string host{kHost};
  std::string query;
};

// All parameters of a SendSms call, Signature excepted (AccessKeyId, Action,
// Format, OutId, PhoneNumbers, RegionId, SignName, SignatureMethod,
// SignatureNonce, SignatureVersion, TemplateCode, TemplateParam, Timestamp, Version).
// Error "invalid_request" (permanent) on empty or too many numbers, a number
// holding ',', missing sign/template/out_id/nonce, or an OutId over 255 bytes.
Result<Params> send_sms_params(const Credentials& credentials, const SendSmsRequest& request,
                               const RpcContext& context);
Result<RpcRequest> build_send_sms(const Credentials& credentials, const SendSmsRequest& request,
                                  const RpcContext& context);

// SendBatchSms: PhoneNumberJson, SignNameJson, TemplateParamJson (JSON arrays of
// equal length, item by item), TemplateCode, OutId, and the common parameters.
Result<Params> send_batch_sms_params(const Credentials& credentials, const SendBatchSmsRequest& request,
                                     const RpcContext& context);
Result<RpcRequest> build_send_batch_sms(const Credentials& credentials, const SendBatchSmsRequest& request,
                                        const RpcContext& context);

// ---- Answers and receipts -------------------------------------------------------------

struct SendSmsResponse {
  std::string code;  // "OK" on success; verbatim otherwise
  std::string message;
  std::string biz_id;  // the provider message id (receipts carry it as biz_id)
  std::string request_id;
};

// Parses {"Code","Message","BizId","RequestId"} (also Aliyun's generic error
// answers, which have no BizId). Error "invalid_response" (permanent) when the
// body is not a JSON object or has no string Code.
Result<SendSmsResponse> parse_send_sms_response(std::string_view body);

struct SmsReport {
  std::string phone_number;
  std::string send_time;            // verbatim, Beijing time
  std::string report_time;          // verbatim, Beijing time
  std::int64_t send_time_ms = 0;    // UTC Unix ms
  std::int64_t report_time_ms = 0;  // UTC Unix ms
  bool success = false;
  std::string err_code;  // "DELIVERED" or the carrier's code, verbatim
  std::string err_msg;
  int sms_size = 0;  // billed segments
  std::string biz_id;
  std::string out_id;  // our delivery id
};

// One push of the SmsReport callback. A malformed element does not drop the
// others: it is listed in `rejected` ("[2]: send_time is not ...") and the rest parse.
struct SmsReportBatch {
  std::vector<SmsReport> reports;
  std::vector<std::string> rejected;
};

// Error "invalid_receipt" (permanent) when the body is not a JSON array.
// Pushes are retried and not idempotent: deduplicate on (biz_id, phone_number, out_id).
Result<SmsReportBatch> parse_sms_report(std::string_view body);

// The answer Aliyun expects for a push it should not resend: {"code":0,"msg":"接收成功"}.
std::string sms_report_ack();

// ---- QuerySendDetails: what the provider has of one number on one day -------------------
//
// Asked after a crash left an attempt's outcome unknown: did Aliyun take it?

struct QuerySendDetailsRequest {
  std::string phone_number;  // one number, as it was sent (mainland without +86)
  std::string send_date;     // yyyyMMdd (Beijing date); the last 30 days can be asked
  int page_size = 50;        // 1..50
  int current_page = 1;
};

// Error "invalid_request" (permanent) on a missing number, a malformed date or a page size out of 1..50.
Result<RpcRequest> build_query_send_details(const Credentials& credentials, const QuerySendDetailsRequest& request,
                                            const RpcContext& context);

struct SendDetail {
  std::string phone_number;
  int send_status = 0;  // 1 waiting for the receipt, 2 failed, 3 delivered
  std::string err_code;
  std::string template_code;
  std::string content;
  std::string send_date;     // verbatim, Beijing time
  std::string receive_date;  // verbatim, Beijing time ("" while waiting)
  std::int64_t send_date_ms = 0;
  std::int64_t receive_date_ms = 0;
  std::string out_id;
};

struct QuerySendDetailsResponse {
  std::string code;  // "OK" on success
  std::string message;
  long long total_count = 0;
  std::vector<SendDetail> details;
};

// Parses {"Code","Message","TotalCount","SmsSendDetailDTOs":{"SmsSendDetailDTO":[...]}}; error answers keep
// their Code and have no details. Error "invalid_response" (permanent) when the body is not such an object.
Result<QuerySendDetailsResponse> parse_query_send_details_response(std::string_view body);

// ---- Classification -------------------------------------------------------------------

// Aliyun's Code -> outcome. "OK" = accepted; documented transient codes =
// retryable; everything else, including codes not known here, = permanent with
// the code kept verbatim. The table and its reasons are in aliyun_protocol.cc.
CodeClass classify(std::string_view code);

}  // namespace songda::sms::aliyun
