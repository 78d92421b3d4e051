#include "channels/sms/tencent_protocol.h"

#include <array>

#include <nlohmann/json.hpp>

#include "gateway/core/crypto.h"
#include "gateway/core/json_parse.h"

namespace songda::sms::tencent {
namespace {

using Kind = SendOutcome::Kind;

Error invalid_request(std::string message) { return Error::permanent("invalid_request", std::move(message)); }

std::string string_field(const nlohmann::json& obj, const char* key) {
  const auto it = obj.find(key);
  if (it == obj.end() || !it->is_string()) return {};
  return it->get<std::string>();
}

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

// ---- Classification table ---------------------------------------------------------
//
// Rule: retryable only when the same request may succeed later without anyone
// changing anything; needs_operator when a person has to act. Exact codes win
// over the prefix rules in classify(). Unknown codes are permanent, verbatim.
struct Rule {
  std::string_view code;
  Kind kind;
  bool needs_operator;
  std::string_view note;
};

constexpr std::array kRules = {
    Rule{"Ok", Kind::kAccepted, false, "accepted; the status callback follows"},
    // Exceptions to "LimitExceeded.* is retryable":
    Rule{"LimitExceeded.PhoneNumberCountLimit", Kind::kPermanent, false,
         "more than 200 numbers in one request (batching bug)"},
    Rule{"LimitExceeded.AppCountryOrRegionInBlacklist", Kind::kPermanent, true,
         "destination country not enabled for the app: change the console setting"},
    // App-wide caps clear at the day boundary, but a person should know.
    Rule{"LimitExceeded.AppDailyLimit", Kind::kRetryable, true, "app daily cap reached: clears tomorrow or raise it"},
    Rule{"LimitExceeded.DailyLimit", Kind::kRetryable, true, "daily cap reached: clears tomorrow or raise it"},
    Rule{"LimitExceeded.AppGlobalDailyLimit", Kind::kRetryable, true, "global daily cap reached"},
    Rule{"LimitExceeded.AppMainlandChinaDailyLimit", Kind::kRetryable, true, "mainland daily cap reached"},
    Rule{"LimitExceeded.AppCountryOrRegionDailyLimit", Kind::kRetryable, true, "country daily cap reached"},
    // Exceptions to "InternalError.* is retryable": these describe our request.
    Rule{"InternalError.JsonParseFail", Kind::kPermanent, false, "request body could not be parsed"},
    Rule{"InternalError.RestApiInterfaceNotExist", Kind::kPermanent, true, "API does not exist: check action/version"},
    // Our clock is more than 10 minutes off: a retry helps only once it is fixed.
    Rule{"InternalError.RequestTimeException", Kind::kRetryable, true, "request time refused: check the host clock"},
    Rule{"AuthFailure.SignatureExpire", Kind::kRetryable, true, "signature expired: check the host clock"},
    // The recipient: resending cannot help.
    Rule{"FailedOperation.PhoneNumberInBlacklist", Kind::kPermanent, false,
         "number opted out (provider or carrier blacklist)"},
    Rule{"InvalidParameterValue.IncorrectPhoneNumber", Kind::kPermanent, false, "phone number format rejected"},
    Rule{"FailedOperation.PhoneNumberParseFail", Kind::kPermanent, false, "phone number is not E.164"},
    Rule{"UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber", Kind::kPermanent, false,
         "mainland and international numbers mixed in one request (batching bug)"},
    // Content.
    Rule{"FailedOperation.ContainSensitiveWord", Kind::kPermanent, true, "content holds a sensitive word"},
    Rule{"InvalidParameter.DirtyWordFound", Kind::kPermanent, true, "content holds a sensitive word"},
    Rule{"InvalidParameterValue.ProhibitedUseUrlInTemplateParameter", Kind::kPermanent, true,
         "URL in a template variable"},
    Rule{"InvalidParameterValue.TemplateParameterLengthLimit", Kind::kPermanent, true, "template variable too long"},
    Rule{"InvalidParameterValue.TemplateParameterFormatError", Kind::kPermanent, true,
         "template variable format refused"},
    Rule{"InvalidParameterValue.ContentLengthLimit", Kind::kPermanent, false, "message too long"},
    // Marketing messages only go out 8:00-22:00: later is fine.
    Rule{"FailedOperation.MarketingSendTimeConstraint", Kind::kRetryable, false,
         "outside the 8:00-22:00 marketing window: retry later"},
    // Balance and account: only a person helps; see the Aliyun table for why permanent.
    Rule{"FailedOperation.InsufficientBalanceInSmsPackage", Kind::kPermanent, true,
         "SMS package balance exhausted: buy a package"},
    Rule{"UnauthorizedOperation.ServiceSuspendDueToArrears", Kind::kPermanent, true,
         "service suspended for arrears: top up"},
    // Templates and signatures.
    Rule{"FailedOperation.SignatureIncorrectOrUnapproved", Kind::kPermanent, true, "signature not approved"},
    Rule{"FailedOperation.TemplateIncorrectOrUnapproved", Kind::kPermanent, true, "template not approved"},
    Rule{"FailedOperation.TemplateUnapprovedOrNotExist", Kind::kPermanent, true, "template not approved or unknown"},
    Rule{"FailedOperation.TemplateParamSetNotMatchApprovedTemplate", Kind::kPermanent, true,
         "parameter count does not match the template"},
    Rule{"FailedOperation.MissingSignatureList", Kind::kPermanent, true, "signature unknown"},
    Rule{"FailedOperation.MissingTemplateList", Kind::kPermanent, true, "template unknown"},
    Rule{"InvalidParameterValue.SdkAppIdNotExist", Kind::kPermanent, true, "SmsSdkAppId unknown"},
};

// A TC3-signed POST of `body` for `action`.
HttpRequest signed_request(const Credentials& credentials, std::string_view action, std::string body,
                           std::string_view region, std::int64_t timestamp, std::string_view host) {
  const Tc3Signature sig = tc3_sign(Tc3Input{credentials.secret_id, credentials.secret_key, std::string(kService),
                                             std::string(host), std::string(kJsonContentType), timestamp, body});
  HttpRequest out;
  out.host = std::string(host);
  out.headers = {
      {"Authorization", sig.authorization},
      {"Content-Type", std::string(kJsonContentType)},
      {"Host", std::string(host)},
      {"X-TC-Action", std::string(action)},
      {"X-TC-Version", std::string(kVersion)},
      {"X-TC-Timestamp", std::to_string(timestamp)},
      {"X-TC-Region", std::string(region)},
  };
  out.body = std::move(body);
  return out;
}

}  // namespace

Tc3Signature tc3_sign(const Tc3Input& in) {
  Tc3Signature s;
  s.date = utc_date(in.timestamp);
  s.hashed_payload = sha256_hex(in.payload);
  s.canonical_request =
      "POST\n/\n\ncontent-type:" + in.content_type + "\nhost:" + in.host + "\n\ncontent-type;host\n" + s.hashed_payload;
  s.hashed_canonical_request = sha256_hex(s.canonical_request);
  s.credential_scope = s.date + "/" + in.service + "/tc3_request";
  s.string_to_sign = "TC3-HMAC-SHA256\n" + std::to_string(in.timestamp) + "\n" + s.credential_scope + "\n" +
                     s.hashed_canonical_request;
  const std::string secret_date = hmac_sha256_raw("TC3" + in.secret_key, s.date);
  const std::string secret_service = hmac_sha256_raw(secret_date, in.service);
  const std::string secret_signing = hmac_sha256_raw(secret_service, "tc3_request");
  s.signature = to_hex(hmac_sha256_raw(secret_signing, s.string_to_sign));
  s.authorization = "TC3-HMAC-SHA256 Credential=" + in.secret_id + "/" + s.credential_scope +
                    ", SignedHeaders=content-type;host, Signature=" + s.signature;
  return s;
}

Result<std::string> send_sms_body(const SendSmsRequest& request) {
  if (request.phone_numbers.empty()) return invalid_request("SendSms needs at least one phone number");
  if (request.phone_numbers.size() > kMaxPhoneNumbers) {
    return invalid_request("SendSms takes at most 200 numbers, got " + std::to_string(request.phone_numbers.size()) +
                           "; hint: split the batch");
  }
  for (const auto& number : request.phone_numbers) {
    if (number.size() < 2 || number[0] != '+') return invalid_request("phone number is not E.164 (+<country><number>)");
  }
  if (request.sms_sdk_app_id.empty() || request.template_id.empty()) {
    return invalid_request("SendSms needs SmsSdkAppId and TemplateId");
  }
  if (request.session_context.size() > kMaxSessionContextBytes) {
    return invalid_request("SessionContext must be shorter than 512 bytes");
  }
  nlohmann::json j = {
      {"PhoneNumberSet", request.phone_numbers},
      {"SmsSdkAppId", request.sms_sdk_app_id},
      {"TemplateId", request.template_id},
      {"TemplateParamSet", request.template_params},
  };
  if (!request.sign_name.empty()) j["SignName"] = request.sign_name;
  if (!request.session_context.empty()) j["SessionContext"] = request.session_context;
  if (!request.extend_code.empty()) j["ExtendCode"] = request.extend_code;
  if (!request.sender_id.empty()) j["SenderId"] = request.sender_id;
  return j.dump();
}

Result<HttpRequest> build_send_sms(const Credentials& credentials, const SendSmsRequest& request,
                                   std::string_view region, std::int64_t timestamp, std::string_view host) {
  if (credentials.secret_id.empty() || credentials.secret_key.empty()) {
    return invalid_request("Tencent SecretId/SecretKey missing; hint: check the SMS provider secrets");
  }
  if (region.empty()) return invalid_request("X-TC-Region missing (e.g. ap-guangzhou)");
  auto body = send_sms_body(request);
  if (!body) return body.error();
  return signed_request(credentials, "SendSms", std::move(body).value(), region, timestamp, host);
}

Result<HttpRequest> build_pull_status_by_phone(const Credentials& credentials, const PullStatusRequest& request,
                                               std::string_view region, std::int64_t timestamp, std::string_view host) {
  if (credentials.secret_id.empty() || credentials.secret_key.empty()) {
    return invalid_request("Tencent SecretId/SecretKey missing; hint: check the SMS provider secrets");
  }
  if (region.empty()) return invalid_request("X-TC-Region missing (e.g. ap-guangzhou)");
  if (request.phone_number.empty() || request.phone_number.front() != '+') {
    return invalid_request("PullSmsSendStatusByPhoneNumber needs an E.164 number");
  }
  if (request.sms_sdk_app_id.empty()) return invalid_request("PullSmsSendStatusByPhoneNumber needs SmsSdkAppId");
  if (request.limit < 1 || request.limit > 100) return invalid_request("Limit must be 1..100");
  const nlohmann::json body = {{"BeginTime", request.begin_time},
                               {"Offset", 0},
                               {"Limit", request.limit},
                               {"PhoneNumber", request.phone_number},
                               {"SmsSdkAppId", request.sms_sdk_app_id},
                               {"EndTime", request.end_time}};
  return signed_request(credentials, "PullSmsSendStatusByPhoneNumber", body.dump(), region, timestamp, host);
}

Result<PullStatusResponse> parse_pull_status_response(std::string_view body) {
  const auto j = parse_json(body);
  if (!j.is_object()) return Error::permanent("invalid_response", "Tencent answer is not a JSON object");
  const auto resp = j.find("Response");
  if (resp == j.end() || !resp->is_object()) {
    return Error::permanent("invalid_response", "Tencent answer has no Response object");
  }
  PullStatusResponse out;
  const auto err = resp->find("Error");
  if (err != resp->end() && err->is_object()) {
    out.error = ApiError{string_field(*err, "Code"), string_field(*err, "Message")};
    return out;
  }
  const auto set = resp->find("PullSmsSendStatusSet");
  if (set == resp->end() || !set->is_array()) {
    return Error::permanent("invalid_response", "Tencent answer has neither PullSmsSendStatusSet nor Error");
  }
  for (const auto& e : *set) {
    if (!e.is_object()) continue;
    PulledStatus st;
    if (const auto t = e.find("UserReceiveTime"); t != e.end() && t->is_number_integer()) {
      st.user_receive_time = t->get<std::int64_t>();
    }
    st.phone_number = string_field(e, "PhoneNumber");
    st.serial_no = string_field(e, "SerialNo");
    st.report_status = string_field(e, "ReportStatus");
    st.description = string_field(e, "Description");
    st.session_context = string_field(e, "SessionContext");
    out.statuses.push_back(std::move(st));
  }
  return out;
}

Result<SendSmsResponse> parse_send_sms_response(std::string_view body) {
  const auto j = parse_json(body);
  if (!j.is_object()) return Error::permanent("invalid_response", "Tencent answer is not a JSON object");
  const auto resp = j.find("Response");
  if (resp == j.end() || !resp->is_object()) {
    return Error::permanent("invalid_response", "Tencent answer has no Response object");
  }
  SendSmsResponse out;
  out.request_id = string_field(*resp, "RequestId");
  const auto err = resp->find("Error");
  if (err != resp->end() && err->is_object()) {
    out.error = ApiError{string_field(*err, "Code"), string_field(*err, "Message")};
    if (out.error->code.empty()) return Error::permanent("invalid_response", "Tencent Response.Error has no Code");
    return out;
  }
  const auto set = resp->find("SendStatusSet");
  if (set == resp->end() || !set->is_array()) {
    return Error::permanent("invalid_response", "Tencent Response has neither Error nor SendStatusSet");
  }
  for (const auto& e : *set) {
    if (!e.is_object()) return Error::permanent("invalid_response", "SendStatusSet element is not an object");
    SendStatus st;
    st.serial_no = string_field(e, "SerialNo");
    st.phone_number = string_field(e, "PhoneNumber");
    st.code = string_field(e, "Code");
    st.message = string_field(e, "Message");
    st.session_context = string_field(e, "SessionContext");
    st.iso_code = string_field(e, "IsoCode");
    const auto fee = e.find("Fee");
    if (fee != e.end() && fee->is_number_integer()) st.fee = fee->get<std::int64_t>();
    if (st.code.empty()) return Error::permanent("invalid_response", "SendStatusSet element has no Code");
    out.statuses.push_back(std::move(st));
  }
  return out;
}

Result<StatusBatch> parse_status_callback(std::string_view body) {
  const auto j = parse_json(body);
  if (!j.is_array()) return Error::permanent("invalid_receipt", "Tencent status callback is not a JSON array");
  StatusBatch batch;
  for (std::size_t i = 0; i < j.size(); ++i) {
    const auto& e = j[i];
    const std::string where = "[" + std::to_string(i) + "]: ";
    if (!e.is_object()) {
      batch.rejected.push_back(where + "not an object");
      continue;
    }
    StatusReport r;
    r.user_receive_time = string_field(e, "user_receive_time");
    r.nationcode = string_field(e, "nationcode");
    r.mobile = string_field(e, "mobile");
    r.report_status = string_field(e, "report_status");
    r.errmsg = string_field(e, "errmsg");
    r.description = string_field(e, "description");
    r.sid = string_field(e, "sid");
    if (r.sid.empty()) {
      batch.rejected.push_back(where + "sid missing");
      continue;
    }
    if (r.report_status != "SUCCESS" && r.report_status != "FAIL") {
      batch.rejected.push_back(where + "report_status is neither SUCCESS nor FAIL");
      continue;
    }
    r.success = r.report_status == "SUCCESS";
    const auto ms = beijing_time_to_unix_ms(r.user_receive_time);
    if (!ms) {
      batch.rejected.push_back(where + "user_receive_time not \"YYYY-MM-DD HH:MM:SS\"");
      continue;
    }
    r.receive_time_ms = *ms;
    batch.reports.push_back(std::move(r));
  }
  return batch;
}

std::string status_callback_ack() { return R"({"result":0,"errmsg":"OK"})"; }

CodeClass classify(std::string_view code) {
  for (const Rule& rule : kRules) {
    if (rule.code == code) return {rule.kind, rule.needs_operator, std::string(code), std::string(rule.note)};
  }
  const std::string verbatim(code);
  // Per-number and per-app frequency limits (PhoneNumberDailyLimit,
  // PhoneNumberOneHourLimit, PhoneNumberThirtySecondLimit,
  // PhoneNumberSameContentDailyLimit, DeliveryFrequencyLimit, ...): they clear with time.
  if (starts_with(code, "LimitExceeded.")) return {Kind::kRetryable, false, verbatim, "frequency limit: retry later"};
  // Cloud API 3.0 request-rate limit.
  if (code == "RequestLimitExceeded" || starts_with(code, "RequestLimitExceeded.")) {
    return {Kind::kRetryable, false, verbatim, "API rate limited: retry later"};
  }
  // Timeouts and failures inside Tencent (Timeout, SendAndRecvFail, OtherError, UnknownError, ...).
  if (code == "InternalError" || starts_with(code, "InternalError.")) {
    return {Kind::kRetryable, false, verbatim, "Tencent internal error: retry later"};
  }
  if (code == "ResourceUnavailable" || starts_with(code, "ResourceUnavailable.")) {
    return {Kind::kRetryable, false, verbatim, "resource temporarily unavailable: retry later"};
  }
  if (starts_with(code, "AuthFailure.") || starts_with(code, "UnauthorizedOperation.")) {
    return {Kind::kPermanent, true, verbatim, "authentication or authorisation refused: check keys and console"};
  }
  if (starts_with(code, "MissingParameter") || starts_with(code, "InvalidParameter") ||
      starts_with(code, "UnsupportedOperation")) {
    return {Kind::kPermanent, false, verbatim, "request refused as invalid"};
  }
  return {Kind::kPermanent, false, verbatim, "unknown Tencent code: not retried, kept verbatim"};
}

}  // namespace songda::sms::tencent
