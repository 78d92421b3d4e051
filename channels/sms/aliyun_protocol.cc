#include "channels/sms/aliyun_protocol.h"

#include <algorithm>
#include <array>
#include <cctype>

#include <nlohmann/json.hpp>

#include "gateway/core/crypto.h"
#include "gateway/core/json_parse.h"

namespace songda::sms::aliyun {
namespace {

using Kind = SendOutcome::Kind;

Error invalid_request(std::string message) { return Error::permanent("invalid_request", std::move(message)); }

std::string to_lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  const auto last = s.find_last_not_of(" \t");
  return std::string(s.substr(first, last - first + 1));
}

// A JSON object of strings, keys sorted (nlohmann's object is a std::map), compact.
std::string params_json(const std::map<std::string, std::string>& values) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : values) j[k] = v;
  return j.dump();
}

std::string string_field(const nlohmann::json& obj, const char* key) {
  const auto it = obj.find(key);
  if (it == obj.end() || !it->is_string()) return {};
  return it->get<std::string>();
}

Status check_context(const Credentials& credentials, const RpcContext& context) {
  if (credentials.access_key_id.empty() || credentials.access_key_secret.empty()) {
    return invalid_request("Aliyun AccessKeyId/AccessKeySecret missing; hint: check the SMS provider secrets");
  }
  if (context.signature_nonce.empty()) return invalid_request("SignatureNonce missing: make a fresh one per attempt");
  if (context.method != "GET" && context.method != "POST") {
    return invalid_request("RPC method must be GET or POST, not " + context.method);
  }
  return ok_status();
}

Status check_out_id(const std::string& out_id) {
  if (out_id.empty()) return invalid_request("OutId missing: it must carry the delivery id");
  if (out_id.size() > kMaxOutIdLength) return invalid_request("OutId longer than 255 bytes");
  return ok_status();
}

Params common_params(const Credentials& credentials, const RpcContext& context, std::string_view action) {
  return Params{
      {"AccessKeyId", credentials.access_key_id},
      {"Action", std::string(action)},
      {"Format", context.format},
      {"RegionId", context.region_id},
      {"SignatureMethod", "HMAC-SHA1"},
      {"SignatureNonce", context.signature_nonce},
      {"SignatureVersion", "1.0"},
      {"Timestamp", iso8601_utc_seconds(context.unix_ms)},
      {"Version", std::string(kVersion)},
  };
}

// ---- Classification table ---------------------------------------------------------
//
// Rule: retryable only when the same request may succeed later without anyone
// changing anything; needs_operator when a person has to act. Codes absent from
// the table are permanent and kept verbatim (a code we do not know is not a
// reason to hammer the provider; the DLQ shows it and the table can grow).
struct Rule {
  std::string_view code;
  Kind kind;
  bool needs_operator;
  std::string_view note;
};

constexpr std::array kRules = {
    Rule{"OK", Kind::kAccepted, false, "accepted; the SmsReport receipt follows"},
    // Flow control per number (same sign+template: 1/min, 5/hour, 10/day for codes,
    // 50/day for notices): it clears with time.
    Rule{"isv.BUSINESS_LIMIT_CONTROL", Kind::kRetryable, false, "per-number flow control: retry later"},
    // Platform-side failures: Aliyun's own advice is to call again.
    Rule{"isp.SYSTEM_ERROR", Kind::kRetryable, false, "Aliyun system error: call again"},
    Rule{"isp.GATEWAY_ERROR", Kind::kRetryable, false, "Aliyun gateway error: call again"},
    Rule{"isp.UNKNOWN", Kind::kRetryable, false, "Aliyun-side unknown exception (isp = platform): call again"},
    Rule{"ServiceUnavailable", Kind::kRetryable, false, "service unavailable: retry later"},
    Rule{"InternalError", Kind::kRetryable, false, "Aliyun internal error: retry later"},
    // The nonce was recorded by an earlier request with the same nonce, i.e. a
    // signed request was replayed (an HTTP-layer retry). That earlier request
    // reached Aliyun and may have been sent; we cannot tell, and a duplicate
    // notice costs less than a lost one, so re-sign with a fresh nonce and retry.
    Rule{"SignatureNonceUsed", Kind::kRetryable, false,
         "nonce already used (a signed request was replayed): re-sign with a fresh nonce; may duplicate"},
    // Our clock is off by more than 15 minutes: a retry with a fresh stamp helps
    // only once the clock is fixed, so a person must look.
    Rule{"InvalidTimeStamp.Expired", Kind::kRetryable, true, "request timestamp rejected: check the host clock (NTP)"},
    // Daily cap configured in the console: clears at midnight (or when raised).
    Rule{"isv.DAY_LIMIT_CONTROL", Kind::kRetryable, true, "daily sending cap reached: clears tomorrow or raise it"},
    // Monthly cap: too far off for any retry window; fall back now.
    Rule{"isv.MONTH_LIMIT_CONTROL", Kind::kPermanent, true, "monthly sending cap reached: raise it in the console"},
    // Balance: only a top-up helps. Blind retries repeat the refusal; dispatch's
    // fallback (other provider or channel) delivers sooner, and the DLQ can be
    // replayed once the account is topped up.
    Rule{"isv.AMOUNT_NOT_ENOUGH", Kind::kPermanent, true, "balance insufficient: top up the Aliyun account"},
    Rule{"isv.OUT_OF_SERVICE", Kind::kPermanent, true, "account suspended (arrears): top up the Aliyun account"},
    // The recipient or the content: resending the same request cannot succeed.
    Rule{"isv.MOBILE_NUMBER_ILLEGAL", Kind::kPermanent, false, "phone number format rejected"},
    Rule{"isv.DOMESTIC_NUMBER_NOT_SUPPORTED", Kind::kPermanent, false,
         "international template used for a mainland number"},
    Rule{"isv.MOBILE_COUNT_OVER_LIMIT", Kind::kPermanent, false, "too many numbers in one request (batching bug)"},
    Rule{"isv.TEMPLATE_MISSING_PARAMETERS", Kind::kPermanent, true,
         "template parameters missing: fix the template mapping"},
    Rule{"isv.TEMPLATE_PARAMS_ILLEGAL", Kind::kPermanent, true, "template parameter value refused"},
    Rule{"isv.INVALID_PARAMETERS", Kind::kPermanent, false, "invalid parameters"},
    Rule{"isv.INVALID_JSON_PARAM", Kind::kPermanent, false, "TemplateParam is not a JSON object of strings"},
    Rule{"isv.BLACK_KEY_CONTROL_LIMIT", Kind::kPermanent, true, "blacklisted keyword in a template variable"},
    Rule{"isv.PARAM_LENGTH_LIMIT", Kind::kPermanent, false, "template variable too long"},
    Rule{"isv.PARAM_NOT_SUPPORT_URL", Kind::kPermanent, true, "URLs are not allowed in template variables"},
    Rule{"isv.SMS_CONTENT_ILLEGAL", Kind::kPermanent, true, "content refused"},
    // Account and configuration: a person must fix them.
    Rule{"isv.SMS_TEMPLATE_ILLEGAL", Kind::kPermanent, true, "template unknown or not approved"},
    Rule{"isv.SMS_SIGNATURE_ILLEGAL", Kind::kPermanent, true, "signature unknown or not approved"},
    Rule{"isv.SMS_SIGN_ILLEGAL", Kind::kPermanent, true, "signature forbidden"},
    Rule{"isv.SIGN_STATE_ILLEGAL", Kind::kPermanent, true, "signature unusable"},
    Rule{"isv.SMS_SIGNATURE_SCENE_ILLEGAL", Kind::kPermanent, true, "signature type does not match template type"},
    Rule{"isv.EXTEND_CODE_ERROR", Kind::kPermanent, true, "extend code reused across signatures"},
    Rule{"isv.DENY_IP_RANGE", Kind::kPermanent, true, "source IP region refused"},
    Rule{"isp.RAM_PERMISSION_DENY", Kind::kPermanent, true, "RAM permission missing (AliyunDysmsFullAccess)"},
    Rule{"isv.PRODUCT_UN_SUBSCRIPT", Kind::kPermanent, true, "SMS service not activated"},
    Rule{"isv.PRODUCT_UNSUBSCRIBE", Kind::kPermanent, true, "product not activated"},
    Rule{"isv.ACCOUNT_NOT_EXISTS", Kind::kPermanent, true, "account does not exist (wrong AccessKey?)"},
    Rule{"isv.ACCOUNT_ABNORMAL", Kind::kPermanent, true, "account abnormal"},
    Rule{"SignatureDoesNotMatch", Kind::kPermanent, true, "signature mismatch: check the AccessKeySecret"},
    Rule{"IncompleteSignature", Kind::kPermanent, true, "signature incomplete"},
    Rule{"InvalidAccessKeyId.NotFound", Kind::kPermanent, true, "AccessKeyId unknown"},
    Rule{"InvalidAccessKeyId.Inactive", Kind::kPermanent, true, "AccessKeyId disabled"},
    Rule{"Forbidden.RAM", Kind::kPermanent, true, "RAM policy forbids the call"},
    Rule{"InvalidVersion", Kind::kPermanent, true, "API version refused"},
    Rule{"InvalidAction.NotFound", Kind::kPermanent, true, "API action unknown"},
};

}  // namespace

std::string percent_encode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size() * 3);
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
        c == '.' || c == '~') {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
    }
  }
  return out;
}

std::string canonical_query(const Params& params) {
  std::string out;
  for (const auto& [k, v] : params) {
    if (!out.empty()) out.push_back('&');
    out += percent_encode(k);
    out.push_back('=');
    out += percent_encode(v);
  }
  return out;
}

std::string rpc_string_to_sign(std::string_view method, const Params& params) {
  return std::string(method) + "&" + percent_encode("/") + "&" + percent_encode(canonical_query(params));
}

std::string rpc_signature(std::string_view access_key_secret, std::string_view string_to_sign) {
  const std::string key = std::string(access_key_secret) + "&";
  return base64_encode(hmac_sha1_raw(key, string_to_sign));
}

std::string signed_rpc_query(std::string_view method, const Params& params, std::string_view access_key_secret) {
  const std::string signature = rpc_signature(access_key_secret, rpc_string_to_sign(method, params));
  return "Signature=" + percent_encode(signature) + "&" + canonical_query(params);
}

Acs3Signature acs3_sign(const Acs3Request& request, std::string_view access_key_id,
                        std::string_view access_key_secret) {
  // Lowercased names, sorted; values trimmed. Repeated names are joined with ','.
  std::map<std::string, std::string> signed_headers;
  for (const auto& [name, value] : request.headers) {
    const std::string lower = to_lower(name);
    if (lower != "host" && lower != "content-type" && lower.rfind("x-acs-", 0) != 0) continue;
    auto [it, inserted] = signed_headers.emplace(lower, trim(value));
    if (!inserted) it->second += "," + trim(value);
  }
  Acs3Signature s;
  std::string canonical_headers;
  for (const auto& [name, value] : signed_headers) {
    canonical_headers.append(name).append(":").append(value).append("\n");
    if (!s.signed_headers.empty()) s.signed_headers.push_back(';');
    s.signed_headers += name;
  }
  s.canonical_request = request.method + "\n" + request.canonical_uri + "\n" + canonical_query(request.query) + "\n" +
                        canonical_headers + "\n" + s.signed_headers + "\n" + sha256_hex(request.body);
  s.hashed_canonical_request = sha256_hex(s.canonical_request);
  s.string_to_sign = "ACS3-HMAC-SHA256\n" + s.hashed_canonical_request;
  s.signature = to_hex(hmac_sha256_raw(access_key_secret, s.string_to_sign));
  s.authorization = "ACS3-HMAC-SHA256 Credential=" + std::string(access_key_id) + ",SignedHeaders=" + s.signed_headers +
                    ",Signature=" + s.signature;
  return s;
}

std::vector<std::pair<std::string, std::string>> acs3_headers(std::string_view host, std::string_view action,
                                                              std::string_view version, std::int64_t unix_ms,
                                                              std::string_view nonce, std::string_view body) {
  return {
      {"host", std::string(host)},
      {"x-acs-action", std::string(action)},
      {"x-acs-version", std::string(version)},
      {"x-acs-date", iso8601_utc_seconds(unix_ms)},
      {"x-acs-signature-nonce", std::string(nonce)},
      {"x-acs-content-sha256", sha256_hex(body)},
  };
}

Result<Params> send_sms_params(const Credentials& credentials, const SendSmsRequest& request,
                               const RpcContext& context) {
  if (auto st = check_context(credentials, context); !st) return st.error();
  if (auto st = check_out_id(request.out_id); !st) return st.error();
  if (request.phone_numbers.empty()) return invalid_request("SendSms needs at least one phone number");
  if (request.phone_numbers.size() > kMaxSendSmsNumbers) {
    return invalid_request("SendSms takes at most 1000 numbers, got " + std::to_string(request.phone_numbers.size()) +
                           "; hint: split the batch");
  }
  if (request.sign_name.empty() || request.template_code.empty()) {
    return invalid_request("SendSms needs SignName and TemplateCode");
  }
  std::string numbers;
  for (const auto& number : request.phone_numbers) {
    if (number.empty() || number.find(',') != std::string::npos) {
      return invalid_request("phone number empty or holding ','");
    }
    if (!numbers.empty()) numbers.push_back(',');
    numbers += number;
  }
  Params params = common_params(credentials, context, "SendSms");
  params["PhoneNumbers"] = numbers;
  params["SignName"] = request.sign_name;
  params["TemplateCode"] = request.template_code;
  if (!request.template_param.empty()) params["TemplateParam"] = params_json(request.template_param);
  params["OutId"] = request.out_id;
  return params;
}

Result<RpcRequest> build_send_sms(const Credentials& credentials, const SendSmsRequest& request,
                                  const RpcContext& context) {
  auto params = send_sms_params(credentials, request, context);
  if (!params) return params.error();
  return RpcRequest{context.method, std::string(kHost),
                    signed_rpc_query(context.method, *params, credentials.access_key_secret)};
}

Result<Params> send_batch_sms_params(const Credentials& credentials, const SendBatchSmsRequest& request,
                                     const RpcContext& context) {
  if (auto st = check_context(credentials, context); !st) return st.error();
  if (auto st = check_out_id(request.out_id); !st) return st.error();
  if (request.items.empty()) return invalid_request("SendBatchSms needs at least one number");
  if (request.items.size() > kMaxSendBatchSmsNumbers) {
    return invalid_request("SendBatchSms takes at most 100 numbers, got " + std::to_string(request.items.size()) +
                           "; hint: split the batch");
  }
  if (request.template_code.empty()) return invalid_request("SendBatchSms needs TemplateCode");
  nlohmann::json numbers = nlohmann::json::array();
  nlohmann::json signs = nlohmann::json::array();
  nlohmann::json template_params = nlohmann::json::array();
  bool any_params = false;
  for (const auto& item : request.items) {
    if (item.phone_number.empty() || item.sign_name.empty()) {
      return invalid_request("SendBatchSms item without phone number or sign name");
    }
    numbers.push_back(item.phone_number);
    signs.push_back(item.sign_name);
    nlohmann::json p = nlohmann::json::object();
    for (const auto& [k, v] : item.template_param) p[k] = v;
    any_params = any_params || !item.template_param.empty();
    template_params.push_back(std::move(p));
  }
  Params params = common_params(credentials, context, "SendBatchSms");
  params["PhoneNumberJson"] = numbers.dump();
  params["SignNameJson"] = signs.dump();
  params["TemplateCode"] = request.template_code;
  if (any_params) params["TemplateParamJson"] = template_params.dump();
  params["OutId"] = request.out_id;
  return params;
}

Result<RpcRequest> build_send_batch_sms(const Credentials& credentials, const SendBatchSmsRequest& request,
                                        const RpcContext& context) {
  auto params = send_batch_sms_params(credentials, request, context);
  if (!params) return params.error();
  return RpcRequest{context.method, std::string(kHost),
                    signed_rpc_query(context.method, *params, credentials.access_key_secret)};
}

Result<SendSmsResponse> parse_send_sms_response(std::string_view body) {
  const auto j = parse_json(body);
  if (!j.is_object()) return Error::permanent("invalid_response", "Aliyun answer is not a JSON object");
  const auto code = j.find("Code");
  if (code == j.end() || !code->is_string()) {
    return Error::permanent("invalid_response", "Aliyun answer has no string Code");
  }
  return SendSmsResponse{code->get<std::string>(), string_field(j, "Message"), string_field(j, "BizId"),
                         string_field(j, "RequestId")};
}

Result<RpcRequest> build_query_send_details(const Credentials& credentials, const QuerySendDetailsRequest& request,
                                            const RpcContext& context) {
  if (auto st = check_context(credentials, context); !st) return st.error();
  if (request.phone_number.empty() || request.phone_number.find(',') != std::string::npos) {
    return invalid_request("QuerySendDetails takes exactly one phone number");
  }
  if (request.send_date.size() != 8 || request.send_date.find_first_not_of("0123456789") != std::string::npos) {
    return invalid_request("QuerySendDetails SendDate must be yyyyMMdd, got '" + request.send_date + "'");
  }
  if (request.page_size < 1 || request.page_size > 50 || request.current_page < 1) {
    return invalid_request("QuerySendDetails PageSize must be 1..50 and CurrentPage at least 1");
  }
  Params params = common_params(credentials, context, "QuerySendDetails");
  params["PhoneNumber"] = request.phone_number;
  params["SendDate"] = request.send_date;
  params["PageSize"] = std::to_string(request.page_size);
  params["CurrentPage"] = std::to_string(request.current_page);
  return RpcRequest{context.method, std::string(kHost),
                    signed_rpc_query(context.method, params, credentials.access_key_secret)};
}

Result<QuerySendDetailsResponse> parse_query_send_details_response(std::string_view body) {
  const auto j = parse_json(body);
  if (!j.is_object()) return Error::permanent("invalid_response", "Aliyun answer is not a JSON object");
  const auto code = j.find("Code");
  if (code == j.end() || !code->is_string()) return Error::permanent("invalid_response", "Aliyun answer has no Code");
  QuerySendDetailsResponse out;
  out.code = code->get<std::string>();
  out.message = string_field(j, "Message");
  if (const auto n = j.find("TotalCount"); n != j.end() && n->is_number_integer())
    out.total_count = n->get<long long>();
  const auto dtos = j.find("SmsSendDetailDTOs");
  if (dtos == j.end() || !dtos->is_object()) return out;
  const auto list = dtos->find("SmsSendDetailDTO");
  if (list == dtos->end() || !list->is_array()) return out;
  for (const auto& e : *list) {
    if (!e.is_object()) continue;
    SendDetail d;
    d.phone_number = string_field(e, "PhoneNum");
    if (const auto st = e.find("SendStatus"); st != e.end() && st->is_number_integer()) d.send_status = st->get<int>();
    d.err_code = string_field(e, "ErrCode");
    d.template_code = string_field(e, "TemplateCode");
    d.content = string_field(e, "Content");
    d.send_date = string_field(e, "SendDate");
    d.receive_date = string_field(e, "ReceiveDate");
    d.send_date_ms = beijing_time_to_unix_ms(d.send_date).value_or(0);
    d.receive_date_ms = beijing_time_to_unix_ms(d.receive_date).value_or(0);
    d.out_id = string_field(e, "OutId");
    out.details.push_back(std::move(d));
  }
  return out;
}

Result<SmsReportBatch> parse_sms_report(std::string_view body) {
  const auto j = parse_json(body);
  if (!j.is_array()) return Error::permanent("invalid_receipt", "SmsReport push is not a JSON array");
  SmsReportBatch batch;
  for (std::size_t i = 0; i < j.size(); ++i) {
    const auto& e = j[i];
    const std::string where = "[" + std::to_string(i) + "]: ";
    if (!e.is_object()) {
      batch.rejected.push_back(where + "not an object");
      continue;
    }
    SmsReport r;
    r.phone_number = string_field(e, "phone_number");
    r.send_time = string_field(e, "send_time");
    r.report_time = string_field(e, "report_time");
    r.err_code = string_field(e, "err_code");
    r.err_msg = string_field(e, "err_msg");
    r.biz_id = string_field(e, "biz_id");
    r.out_id = string_field(e, "out_id");
    const auto success = e.find("success");
    if (success == e.end() || !success->is_boolean()) {
      batch.rejected.push_back(where + "success is not a boolean");
      continue;
    }
    r.success = success->get<bool>();
    if (r.biz_id.empty() && r.out_id.empty()) {
      batch.rejected.push_back(where + "neither biz_id nor out_id");
      continue;
    }
    const auto send_ms = beijing_time_to_unix_ms(r.send_time);
    const auto report_ms = beijing_time_to_unix_ms(r.report_time);
    if (!send_ms || !report_ms) {
      batch.rejected.push_back(where + "send_time/report_time not \"YYYY-MM-DD HH:MM:SS\"");
      continue;
    }
    r.send_time_ms = *send_ms;
    r.report_time_ms = *report_ms;
    // Documented as a string ("1"); a number is accepted too.
    const auto size = e.find("sms_size");
    if (size != e.end() && size->is_number_integer()) {
      r.sms_size = size->get<int>();
    } else if (size != e.end() && size->is_string()) {
      const auto& text = size->get_ref<const std::string&>();
      if (text.empty() || text.size() > 4 ||
          !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        batch.rejected.push_back(where + "sms_size is not a count");
        continue;
      }
      r.sms_size = std::stoi(text);
    }
    batch.reports.push_back(std::move(r));
  }
  return batch;
}

std::string sms_report_ack() { return R"({"code":0,"msg":"接收成功"})"; }

CodeClass classify(std::string_view code) {
  for (const Rule& rule : kRules) {
    if (rule.code == code) return {rule.kind, rule.needs_operator, std::string(code), std::string(rule.note)};
  }
  // Throttling, Throttling.User, Throttling.Api, ...: API-level rate limits.
  if (code == "Throttling" || code.rfind("Throttling.", 0) == 0) {
    return {Kind::kRetryable, false, std::string(code), "API rate limited: retry later"};
  }
  if (code.rfind("MissingParameter", 0) == 0 || code.rfind("InvalidParameter", 0) == 0) {
    return {Kind::kPermanent, false, std::string(code), "request parameter refused"};
  }
  return {Kind::kPermanent, false, std::string(code), "unknown Aliyun code: not retried, kept verbatim"};
}

}  // namespace songda::sms::aliyun
