// The provider endpoints of the simulator: Aliyun SMS RPC (POST/GET /),
// Tencent Cloud SMS (POST / with TC3 headers) and WeChat (/cgi-bin/...).
// Signatures are checked with the protocol libraries; answers use each
// provider's documented success and error shapes.
#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <limits>

#include <httplib.h>

#include "channels/sms/aliyun_protocol.h"
#include "channels/sms/sms_common.h"
#include "channels/sms/tencent_protocol.h"
#include "channels/wechat/wechat_protocol.h"
#include "gateway/core/crypto.h"
#include "gateway/core/text.h"
#include "simulator/simulator_impl.h"

namespace songda::sim {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;

constexpr std::size_t kMaxBodyBytes = 16 * 1024 * 1024;

void send_json(httplib::Response& res, int status, const ordered_json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json; charset=utf-8");
}

void send_http_error(httplib::Response& res, int status) {
  res.status = status;
  res.set_content("simulated HTTP " + std::to_string(status), "text/plain");
}

std::string trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  const auto last = s.find_last_not_of(" \t");
  return std::string(s.substr(first, last - first + 1));
}

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (true) {
    const auto pos = s.find(sep, start);
    out.emplace_back(s.substr(start, pos == std::string_view::npos ? std::string_view::npos : pos - start));
    if (pos == std::string_view::npos) break;
    start = pos + 1;
  }
  return out;
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Aliyun takes mainland numbers with or without +86/0086/86, and international
// ones with their country code: an optional '+' and 5..20 digits.
bool valid_aliyun_phone(std::string_view phone) {
  if (!phone.empty() && phone.front() == '+') phone.remove_prefix(1);
  return phone.size() >= 5 && phone.size() <= 20 && all_digits(phone);
}

std::string iso_code(std::string_view nationcode) {
  if (nationcode == "86") return "CN";
  if (nationcode == "852") return "HK";
  if (nationcode == "853") return "MO";
  if (nationcode == "886") return "TW";
  if (nationcode == "1") return "US";
  return "";
}

std::string wechat_errmsg(std::int64_t errcode) {
  switch (errcode) {
    case -1:
      return "system error";
    case 40001:
      return "invalid credential, access_token is invalid or not latest";
    case 40003:
      return "invalid openid";
    case 40037:
      return "invalid template_id";
    case 41001:
      return "access_token missing";
    case 42001:
      return "access_token expired";
    case 43101:
      return "user refuse to accept the msg";
    case 45009:
      return "reach max api daily quota limit";
    case 47001:
      return "data format error";
    default:
      return "simulated error";
  }
}

// {"errcode","errmsg"} with the " rid: ..." suffix real answers carry.
void send_wechat_error(httplib::Response& res, std::int64_t errcode, const std::string& detail = {}) {
  const std::string msg = detail.empty() ? wechat_errmsg(errcode) : detail;
  send_json(res, 200, {{"errcode", errcode}, {"errmsg", msg + " rid: " + to_hex(random_bytes(6))}});
}

std::int64_t to_errcode(const std::string& code) { return std::strtoll(code.c_str(), nullptr, 10); }

struct AliyunRecipient {
  std::string phone;
  std::string sign_name;
  json params = json::object();
};

}  // namespace

void Simulator::Impl::add_provider_routes() {
  auto& s = *server_;
  // A content-reader handler: cpp-httplib refuses form bodies over 8 KiB
  // before a plain handler runs, and an Aliyun SendSms with 1000 numbers is larger.
  s.Post("/", [this](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
    handle_sms_post(req, res, reader);
  });
  s.Get("/", [this](const httplib::Request& req, httplib::Response& res) { handle_aliyun(req, std::string(), res); });
  s.Get("/cgi-bin/token",
        [this](const httplib::Request& req, httplib::Response& res) { handle_wechat_token(req, res); });
  s.Post("/cgi-bin/stable_token",
         [this](const httplib::Request& req, httplib::Response& res) { handle_wechat_stable_token(req, res); });
  s.Post("/cgi-bin/message/template/send",
         [this](const httplib::Request& req, httplib::Response& res) { handle_wechat_send(req, res, false); });
  s.Post("/cgi-bin/message/subscribe/send",
         [this](const httplib::Request& req, httplib::Response& res) { handle_wechat_send(req, res, true); });
}

void Simulator::Impl::handle_sms_post(const httplib::Request& req, httplib::Response& res,
                                      const httplib::ContentReader& reader) {
  std::string body;
  bool too_big = false;
  reader([&](const char* data, std::size_t n) {
    if (body.size() + n > kMaxBodyBytes) {
      too_big = true;
      return false;
    }
    body.append(data, n);
    return true;
  });
  if (too_big) {
    res.status = 413;
    return;
  }
  // Both SMS providers answer at POST /: Tencent requests carry TC3 headers.
  const std::string auth = req.get_header_value("Authorization");
  if (req.has_header("X-TC-Action") || auth.rfind("TC3-", 0) == 0) {
    handle_tencent(req, body, res);
  } else {
    handle_aliyun(req, body, res);
  }
}

// ---- Aliyun ---------------------------------------------------------------------------------

void Simulator::Impl::handle_aliyun(const httplib::Request& req, const std::string& body, httplib::Response& res) {
  namespace aliyun = sms::aliyun;
  const auto b = begin(Provider::kAliyun, req, res, true);
  if (!b) return;
  const std::string request_id = uuid4();
  // Platform errors (signature, parameters): HTTP 4xx with Aliyun's common error body.
  const auto platform_error = [&](int status, const std::string& code, const std::string& message) {
    send_json(res, status,
              {{"RequestId", request_id},
               {"HostId", std::string(aliyun::kHost)},
               {"Code", code},
               {"Message", message},
               {"Recommend", "https://api.aliyun.com/troubleshoot?q=" + code}});
  };
  // Business answers: HTTP 200 {"Code","Message","RequestId"} (+ "BizId" on success).
  const auto business = [&](const std::string& code, const std::string& message) {
    send_json(res, 200, {{"Code", code}, {"Message", message}, {"RequestId", request_id}});
  };
  const auto reject = [&](int status, const std::string& code, const std::string& message) {
    count(Provider::kAliyun, &Counters::rejected);
    if (status == 200) {
      business(code, message);
    } else {
      platform_error(status, code, message);
    }
  };
  const auto auth_failure = [&](int status, const std::string& code, const std::string& message) {
    count(Provider::kAliyun, &Counters::signature_failures);
    platform_error(status, code, message);
  };

  // Parameters: the URL query, and for POST the form body.
  std::vector<std::pair<std::string, std::string>> pairs;
  if (const auto q = req.target.find('?'); q != std::string::npos) pairs = parse_form(req.target.substr(q + 1));
  if (req.method == "POST") {
    auto more = parse_form(body);
    pairs.insert(pairs.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
  }
  aliyun::Params params;
  std::optional<std::string> signature;
  for (auto& [k, v] : pairs) {
    if (k == "Signature") {
      if (!signature) signature = std::move(v);
    } else {
      params.emplace(std::move(k), std::move(v));
    }
  }
  const auto param = [&](const char* name) -> std::string {
    const auto it = params.find(name);
    return it == params.end() ? std::string() : it->second;
  };

  // ---- authentication (RPC signature v1) ----
  if (!signature || signature->empty()) {
    return auth_failure(400, "IncompleteSignature",
                        "The request signature does not conform to Aliyun standards: "
                        "Signature is missing.");
  }
  if (param("AccessKeyId").empty()) return auth_failure(400, "MissingAccessKeyId", "AccessKeyId is mandatory.");
  if (!constant_time_equal(param("AccessKeyId"), options_.aliyun_access_key_id)) {
    return auth_failure(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.");
  }
  if (param("SignatureMethod") != "HMAC-SHA1" || param("SignatureVersion") != "1.0") {
    return auth_failure(400, "IncompleteSignature",
                        "The request signature does not conform to Aliyun standards: SignatureMethod must be "
                        "HMAC-SHA1 and SignatureVersion 1.0.");
  }
  const std::string string_to_sign = aliyun::rpc_string_to_sign(req.method, params);
  const std::string expected = aliyun::rpc_signature(options_.aliyun_access_key_secret, string_to_sign);
  if (!constant_time_equal(expected, *signature)) {
    return auth_failure(
        400, "SignatureDoesNotMatch",
        "Specified signature does not match our calculation. server string to sign is:" + string_to_sign);
  }
  if (!is_rpc_timestamp(param("Timestamp"))) {
    return reject(400, "InvalidTimeStamp.Format", "Specified time stamp or date value is not well formatted.");
  }
  if (param("Version") != aliyun::kVersion) {
    return reject(400, "InvalidVersion", "Specified parameter Version is not valid.");
  }
  const std::string nonce = param("SignatureNonce");
  if (nonce.empty()) return reject(400, "MissingSignatureNonce", "SignatureNonce is mandatory for this action.");
  {
    std::lock_guard lk(nonce_mu_);
    const auto now = Clock::now();
    if (nonces_.find(nonce, now) != nullptr) {
      count(Provider::kAliyun, &Counters::nonce_reused);
      return reject(400, "SignatureNonceUsed", "Specified signature nonce was used already.");
    }
    nonces_.put(nonce, true, now);
  }

  // ---- the action ----
  const std::string action = param("Action");
  if (action == "QuerySendDetails") {
    // The provider's records of one number on one day (Beijing date), newest last, one page.
    const std::string phone = param("PhoneNumber");
    const std::string date = param("SendDate");
    if (phone.empty()) return reject(400, "MissingPhoneNumber", "PhoneNumber is mandatory for this action.");
    if (date.size() != 8) return reject(400, "MissingSendDate", "SendDate is mandatory for this action.");
    const long page_size = std::strtol(param("PageSize").c_str(), nullptr, 10);
    const long page = params.count("CurrentPage") != 0 ? std::strtol(param("CurrentPage").c_str(), nullptr, 10) : 1;
    if (page_size < 1 || page_size > 50 || page < 1) {
      return reject(400, "InvalidParameter", "PageSize must be 1..50 and CurrentPage at least 1.");
    }
    const std::int64_t now = now_unix_ms();
    json dtos = json::array();
    long long total = 0;
    for (const auto& rec : sent_records(Provider::kAliyun, phone)) {
      std::string day = beijing_time(rec.send_ms).substr(0, 10);
      day.erase(std::remove(day.begin(), day.end(), '-'), day.end());
      if (day != date) continue;
      ++total;
      if (total <= (page - 1) * page_size || total > page * page_size) continue;
      const bool reported = rec.report_ms > 0 && rec.report_ms <= now;
      dtos.push_back({{"PhoneNum", phone},
                      {"SendStatus", !reported ? 1 : (rec.success ? 3 : 2)},
                      {"ErrCode", reported ? rec.code : std::string()},
                      {"TemplateCode", rec.template_code},
                      {"Content", ""},
                      {"SendDate", beijing_time(rec.send_ms)},
                      {"ReceiveDate", reported ? beijing_time(rec.report_ms) : std::string()},
                      {"OutId", rec.correlation}});
    }
    send_json(res, 200,
              {{"Code", "OK"},
               {"Message", "OK"},
               {"RequestId", request_id},
               {"TotalCount", total},
               {"SmsSendDetailDTOs", {{"SmsSendDetailDTO", dtos}}}});
    return;
  }
  if (action != "SendSms" && action != "SendBatchSms") {
    return reject(404, "InvalidAction.NotFound", "Specified api is not found, please check your url and method.");
  }
  const std::string template_code = param("TemplateCode");
  const std::string out_id = param("OutId");
  if (template_code.empty()) return reject(400, "MissingTemplateCode", "TemplateCode is mandatory for this action.");
  if (out_id.size() > aliyun::kMaxOutIdLength) return reject(200, "isv.INVALID_PARAMETERS", "OutId is too long");

  std::vector<AliyunRecipient> recipients;
  if (action == "SendSms") {
    const std::string numbers = param("PhoneNumbers");
    const std::string sign_name = param("SignName");
    if (numbers.empty()) return reject(400, "MissingPhoneNumbers", "PhoneNumbers is mandatory for this action.");
    if (sign_name.empty()) return reject(400, "MissingSignName", "SignName is mandatory for this action.");
    json template_params = json::object();
    if (params.count("TemplateParam") != 0) {
      template_params = json::parse(param("TemplateParam"), nullptr, /*allow_exceptions=*/false);
      if (!template_params.is_object()) return reject(200, "isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值");
    }
    for (auto& phone : split(numbers, ',')) {
      recipients.push_back(AliyunRecipient{trim(phone), sign_name, template_params});
    }
    if (recipients.size() > aliyun::kMaxSendSmsNumbers) {
      return reject(200, "isv.MOBILE_COUNT_OVER_LIMIT", "手机号码数量超过限制，最多支持1000条");
    }
  } else {
    if (params.count("PhoneNumberJson") == 0) {
      return reject(400, "MissingPhoneNumberJson", "PhoneNumberJson is mandatory for this action.");
    }
    if (params.count("SignNameJson") == 0) {
      return reject(400, "MissingSignNameJson", "SignNameJson is mandatory for this action.");
    }
    const json phones = json::parse(param("PhoneNumberJson"), nullptr, /*allow_exceptions=*/false);
    const json signs = json::parse(param("SignNameJson"), nullptr, /*allow_exceptions=*/false);
    json tparams = json::array();
    if (params.count("TemplateParamJson") != 0) {
      tparams = json::parse(param("TemplateParamJson"), nullptr, /*allow_exceptions=*/false);
      if (!tparams.is_array()) return reject(200, "isv.INVALID_JSON_PARAM", "TemplateParamJson is not a JSON array");
    }
    if (!phones.is_array() || !signs.is_array() || phones.size() != signs.size() ||
        (!tparams.empty() && tparams.size() != phones.size())) {
      return reject(200, "isv.INVALID_PARAMETERS",
                    "PhoneNumberJson, SignNameJson and TemplateParamJson must be arrays of the same length");
    }
    if (phones.size() > aliyun::kMaxSendBatchSmsNumbers) {
      return reject(200, "isv.MOBILE_COUNT_OVER_LIMIT", "手机号码数量超过限制，最多支持100条");
    }
    for (std::size_t i = 0; i < phones.size(); ++i) {
      if (!phones[i].is_string() || !signs[i].is_string()) {
        return reject(200, "isv.INVALID_PARAMETERS", "PhoneNumberJson and SignNameJson must hold strings");
      }
      json p = tparams.empty() ? json::object() : tparams[i];
      if (!p.is_object()) return reject(200, "isv.INVALID_JSON_PARAM", "TemplateParamJson items must be objects");
      recipients.push_back(AliyunRecipient{phones[i].get<std::string>(), signs[i].get<std::string>(), std::move(p)});
    }
  }
  if (recipients.empty()) return reject(400, "MissingPhoneNumbers", "PhoneNumbers is mandatory for this action.");
  for (const auto& r : recipients) {
    if (!valid_aliyun_phone(r.phone)) return reject(200, "isv.MOBILE_NUMBER_ILLEGAL", "非法手机号: " + r.phone);
    if (r.sign_name.empty()) return reject(400, "MissingSignName", "SignName is mandatory for this action.");
  }

  // ---- injected faults ----
  const Injection in = draw(*b, Provider::kAliyun);
  if (in.error) {
    count(Provider::kAliyun, &Counters::errors_injected);
    if (in.http_status != 0) {
      return platform_error(in.http_status, in.http_status == 503 ? "ServiceUnavailable" : "InternalError",
                            "The request has failed due to a temporary failure of the server (simulated).");
    }
    return business(in.code, "simulated error");
  }
  for (const auto& r : recipients) {
    const auto it = b->recipient_errors.find(r.phone);
    if (it != b->recipient_errors.end()) {
      count(Provider::kAliyun, &Counters::errors_injected);
      return business(it->second, "simulated error for " + r.phone);
    }
  }

  // ---- accepted: one BizId per request, one receipt per number ----
  const std::string biz_id = next_id() + "^0";
  const std::int64_t now_ms = now_unix_ms();
  std::vector<ReceiptItem> receipts;
  for (const auto& r : recipients) {
    record_accepted(Provider::kAliyun, out_id, r.phone,
                    {{"provider", "aliyun"},
                     {"action", action},
                     {"key", out_id},
                     {"to", r.phone},
                     {"sign_name", r.sign_name},
                     {"template", template_code},
                     {"params", r.params},
                     {"id", biz_id},
                     {"time_ms", now_ms}});
    ReceiptItem item;
    item.provider = Provider::kAliyun;
    item.to = r.phone;
    item.id = biz_id;
    item.out_id = out_id;
    item.template_code = template_code;
    item.send_time_ms = now_ms;
    receipts.push_back(std::move(item));
  }
  schedule_receipts(std::move(receipts), b->receipt);
  if (roll(b->timeout_rate)) {
    count(Provider::kAliyun, &Counters::timeouts_injected);
    if (!pause(b->timeout_ms)) return;
  }
  send_json(res, 200, {{"Code", "OK"}, {"Message", "OK"}, {"BizId", biz_id}, {"RequestId", request_id}});
}

// ---- Tencent --------------------------------------------------------------------------------

void Simulator::Impl::handle_tencent(const httplib::Request& req, const std::string& body, httplib::Response& res) {
  namespace tencent = sms::tencent;
  const auto b = begin(Provider::kTencent, req, res, true);
  if (!b) return;
  const std::string request_id = uuid4();
  // Cloud API 3.0 answers every error with HTTP 200 and Response.Error.
  const auto api_error = [&](const std::string& code, const std::string& message) {
    send_json(res, 200, {{"Response", {{"Error", {{"Code", code}, {"Message", message}}}, {"RequestId", request_id}}}});
  };
  const auto auth_failure = [&](const std::string& code, const std::string& message) {
    count(Provider::kTencent, &Counters::signature_failures);
    api_error(code, message);
  };
  const auto reject = [&](const std::string& code, const std::string& message) {
    count(Provider::kTencent, &Counters::rejected);
    api_error(code, message);
  };

  // ---- authentication (TC3-HMAC-SHA256) ----
  static constexpr std::string_view kAlgorithm = "TC3-HMAC-SHA256 ";
  const std::string authorization = req.get_header_value("Authorization");
  if (authorization.rfind(kAlgorithm, 0) != 0) {
    return auth_failure("AuthFailure.SignatureFailure",
                        "The provided credentials could not be validated: Authorization must be TC3-HMAC-SHA256.");
  }
  std::map<std::string, std::string> auth;
  for (const auto& part : split(std::string_view(authorization).substr(kAlgorithm.size()), ',')) {
    const std::string kv = trim(part);
    const auto eq = kv.find('=');
    if (eq != std::string::npos) auth[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  const auto scope = split(auth["Credential"], '/');
  if (scope.size() != 4 || scope[3] != "tc3_request" || auth["Signature"].empty()) {
    return auth_failure("AuthFailure.SignatureFailure",
                        "The provided credentials could not be validated: Credential must be "
                        "<SecretId>/<date>/<service>/tc3_request, with a Signature.");
  }
  if (!constant_time_equal(scope[0], options_.tencent_secret_id)) {
    return auth_failure("AuthFailure.SecretIdNotFound",
                        "The SecretId is not found, please ensure that your SecretId is correct.");
  }
  if (auth["SignedHeaders"] != "content-type;host") {
    return auth_failure("AuthFailure.SignatureFailure",
                        "The provided credentials could not be validated: SignedHeaders must be content-type;host.");
  }
  const std::string timestamp = req.get_header_value("X-TC-Timestamp");
  if (!all_digits(timestamp) || timestamp.size() > 12) {
    return auth_failure("AuthFailure.SignatureFailure", "X-TC-Timestamp must be Unix seconds.");
  }
  const tencent::Tc3Signature expected = tencent::tc3_sign(
      tencent::Tc3Input{options_.tencent_secret_id, options_.tencent_secret_key, scope[2], req.get_header_value("Host"),
                        req.get_header_value("Content-Type"), std::strtoll(timestamp.c_str(), nullptr, 10), body});
  if (expected.date != scope[1]) {
    return auth_failure(
        "AuthFailure.SignatureFailure",
        "The credential date " + scope[1] + " is not the UTC date of X-TC-Timestamp (" + expected.date + ").");
  }
  if (!constant_time_equal(expected.signature, auth["Signature"])) {
    return auth_failure("AuthFailure.SignatureFailure",
                        "The provided credentials could not be validated. Please check your signature is correct. "
                        "Canonical request: " +
                            expected.canonical_request);
  }

  // ---- the action ----
  if (req.get_header_value("X-TC-Action") == "PullSmsSendStatusByPhoneNumber") {
    // Reported statuses only: a message whose report is not in yet is not listed.
    const json q = json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (!q.is_object() || !q.contains("PhoneNumber") || !q["PhoneNumber"].is_string() || !q.contains("BeginTime") ||
        !q["BeginTime"].is_number_integer()) {
      return reject("MissingParameter", "The request is missing a required parameter `PhoneNumber` or `BeginTime`.");
    }
    const std::string phone = q["PhoneNumber"].get<std::string>();
    const std::int64_t begin_s = q["BeginTime"].get<std::int64_t>();
    const std::int64_t end_s = q.contains("EndTime") && q["EndTime"].is_number_integer()
                                   ? q["EndTime"].get<std::int64_t>()
                                   : std::numeric_limits<std::int64_t>::max();
    const std::int64_t now = now_unix_ms();
    json set = json::array();
    for (const auto& rec : sent_records(Provider::kTencent, phone)) {
      if (rec.report_ms == 0 || rec.report_ms > now) continue;
      if (rec.send_ms / 1000 < begin_s || rec.send_ms / 1000 > end_s) continue;
      set.push_back({{"UserReceiveTime", rec.report_ms / 1000},
                     {"CountryCode", "86"},
                     {"SubscriberNumber", phone.rfind("+86", 0) == 0 ? phone.substr(3) : phone},
                     {"PhoneNumber", phone},
                     {"SerialNo", rec.id},
                     {"ReportStatus", rec.success ? "SUCCESS" : "FAIL"},
                     {"Description", rec.code},
                     {"SessionContext", rec.correlation}});
    }
    send_json(res, 200, {{"Response", {{"PullSmsSendStatusSet", std::move(set)}, {"RequestId", request_id}}}});
    return;
  }
  if (req.get_header_value("X-TC-Action") != "SendSms") {
    return reject("InvalidAction", "The action `" + req.get_header_value("X-TC-Action") + "` is not supported.");
  }
  if (req.get_header_value("X-TC-Version") != tencent::kVersion) {
    return reject("NoSuchVersion", "The API version `" + req.get_header_value("X-TC-Version") + "` is not supported.");
  }
  if (req.get_header_value("X-TC-Region").empty()) {
    return reject("MissingParameter", "The request is missing a required parameter `Region`.");
  }
  const json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return reject("InternalError.JsonParseFail", "The request body is not a JSON object.");
  const auto phones = j.find("PhoneNumberSet");
  if (phones == j.end() || !phones->is_array() || phones->empty()) {
    return reject("MissingParameter", "The request is missing a required parameter `PhoneNumberSet`.");
  }
  if (phones->size() > tencent::kMaxPhoneNumbers) {
    return reject("LimitExceeded.PhoneNumberCountLimit", "单次请求手机号个数超过200个。");
  }
  const auto string_field = [&](const char* name) -> std::string {
    const auto it = j.find(name);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  const std::string app_id = string_field("SmsSdkAppId");
  const std::string template_id = string_field("TemplateId");
  const std::string session = string_field("SessionContext");
  const std::string sign_name = string_field("SignName");
  if (app_id.empty()) return reject("MissingParameter", "The request is missing a required parameter `SmsSdkAppId`.");
  if (template_id.empty())
    return reject("MissingParameter", "The request is missing a required parameter `TemplateId`.");
  if (session.size() > tencent::kMaxSessionContextBytes) {
    return reject("InvalidParameter", "SessionContext must be shorter than 512 bytes.");
  }
  json template_params = json::array();
  if (const auto it = j.find("TemplateParamSet"); it != j.end()) {
    if (!it->is_array() || !std::all_of(it->begin(), it->end(), [](const json& v) { return v.is_string(); })) {
      return reject("InvalidParameter", "TemplateParamSet must be an array of strings.");
    }
    template_params = *it;
  }
  for (const auto& p : *phones) {
    if (!p.is_string()) return reject("InvalidParameter", "PhoneNumberSet must be an array of strings.");
  }

  // ---- injected faults: for the whole request, or per number ----
  if (!b->per_number) {
    const Injection in = draw(*b, Provider::kTencent);
    if (in.error) {
      count(Provider::kTencent, &Counters::errors_injected);
      if (in.http_status != 0) return send_http_error(res, in.http_status);
      return api_error(in.code, "simulated error");
    }
  }

  const std::int64_t now_ms = now_unix_ms();
  ordered_json statuses = ordered_json::array();
  std::vector<ReceiptItem> receipts;
  for (const auto& p : *phones) {
    const std::string phone = p.get<std::string>();
    const auto parts = split_e164(phone);
    std::string code;
    std::string message;
    if (const auto it = b->recipient_errors.find(phone); it != b->recipient_errors.end()) {
      code = it->second;
      message = "simulated error for " + phone;
      count(Provider::kTencent, &Counters::errors_injected);
    } else if (b->per_number) {
      const Injection in = draw(*b, Provider::kTencent);
      if (in.error) {
        code = in.code;
        message = "simulated error";
        count(Provider::kTencent, &Counters::errors_injected);
      }
    }
    if (code.empty() && !parts) {
      code = "InvalidParameterValue.IncorrectPhoneNumber";
      message = "手机号格式错误，请使用E.164标准格式。";
      count(Provider::kTencent, &Counters::rejected);
    }
    const std::string iso = parts ? iso_code(parts->first) : std::string();
    if (!code.empty()) {
      statuses.push_back({{"SerialNo", ""},
                          {"PhoneNumber", phone},
                          {"Fee", 0},
                          {"SessionContext", session},
                          {"Code", code},
                          {"Message", message},
                          {"IsoCode", iso}});
      continue;
    }
    const std::string serial = "2028:" + next_id();
    record_accepted(Provider::kTencent, session, phone,
                    {{"provider", "tencent"},
                     {"key", session},
                     {"to", phone},
                     {"sign_name", sign_name},
                     {"sdk_app_id", app_id},
                     {"template", template_id},
                     {"params", template_params},
                     {"id", serial},
                     {"time_ms", now_ms}});
    ReceiptItem item;
    item.provider = Provider::kTencent;
    item.to = phone;
    item.id = serial;
    item.out_id = session;
    item.template_code = template_id;
    item.send_time_ms = now_ms;
    receipts.push_back(std::move(item));
    statuses.push_back({{"SerialNo", serial},
                        {"PhoneNumber", phone},
                        {"Fee", 1},
                        {"SessionContext", session},
                        {"Code", "Ok"},
                        {"Message", "send success"},
                        {"IsoCode", iso}});
  }
  schedule_receipts(std::move(receipts), b->receipt);
  if (roll(b->timeout_rate)) {
    count(Provider::kTencent, &Counters::timeouts_injected);
    if (!pause(b->timeout_ms)) return;
  }
  send_json(res, 200, {{"Response", {{"SendStatusSet", std::move(statuses)}, {"RequestId", request_id}}}});
}

// ---- WeChat ---------------------------------------------------------------------------------

std::string Simulator::Impl::issue_token_locked(const ProviderBehaviour& b) {
  const auto now = Clock::now();
  for (auto it = tokens_.begin(); it != tokens_.end();) {
    it = now - it->second.expires > std::chrono::hours(1) ? tokens_.erase(it) : std::next(it);
  }
  if (const auto it = tokens_.find(current_token_); it != tokens_.end()) {
    it->second.superseded = true;
    it->second.expires = std::min(it->second.expires, now + std::chrono::milliseconds(b.token_overlap_ms));
  }
  std::string token = base64url_encode(random_bytes(96));  // 128 characters of [A-Za-z0-9_-]
  tokens_[token] = WechatToken{now + std::chrono::seconds(b.token_expires_in_s)};
  current_token_ = token;
  count(Provider::kWeChat, &Counters::tokens_issued);
  return token;
}

int Simulator::Impl::token_errcode(const std::string& token) {
  if (token.empty()) return 41001;
  std::lock_guard lk(wechat_mu_);
  const auto it = tokens_.find(token);
  if (it == tokens_.end()) return 40001;
  if (it->second.dead_errcode != 0) return it->second.dead_errcode;
  if (Clock::now() >= it->second.expires) return it->second.superseded ? 40001 : 42001;
  return 0;
}

void Simulator::Impl::handle_wechat_token(const httplib::Request& req, httplib::Response& res) {
  const auto b = begin(Provider::kWeChat, req, res, false);
  if (!b) return;
  count(Provider::kWeChat, &Counters::token_fetches);
  if (req.get_param_value("grant_type") != "client_credential")
    return send_wechat_error(res, 40002, "invalid grant_type");
  if (req.get_param_value("appid").empty()) return send_wechat_error(res, 41002, "appid missing");
  if (!constant_time_equal(req.get_param_value("secret"), options_.wechat_app_secret)) {
    return send_wechat_error(res, 40125, "invalid appsecret");
  }
  std::string token;
  {
    std::lock_guard lk(wechat_mu_);
    token = issue_token_locked(*b);
  }
  send_json(res, 200, {{"access_token", token}, {"expires_in", b->token_expires_in_s}});
}

void Simulator::Impl::handle_wechat_stable_token(const httplib::Request& req, httplib::Response& res) {
  const auto b = begin(Provider::kWeChat, req, res, false);
  if (!b) return;
  count(Provider::kWeChat, &Counters::stable_token_fetches);
  const json j = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return send_wechat_error(res, 47001);
  if (j.value("grant_type", "") != "client_credential") return send_wechat_error(res, 40002, "invalid grant_type");
  if (j.value("appid", "").empty()) return send_wechat_error(res, 41002, "appid missing");
  if (!constant_time_equal(j.value("secret", ""), options_.wechat_app_secret)) {
    return send_wechat_error(res, 40125, "invalid appsecret");
  }
  const bool force = j.value("force_refresh", false);
  std::string token;
  std::int64_t expires_in = 0;
  {
    std::lock_guard lk(wechat_mu_);
    const auto now = Clock::now();
    // The same token until 5 minutes before it expires (scaled down for short test lifetimes).
    const auto window = std::chrono::seconds(std::min<std::int64_t>(300, b->token_expires_in_s / 2));
    const auto it = tokens_.find(current_token_);
    const bool usable = it != tokens_.end() && it->second.dead_errcode == 0 && it->second.expires - now > window;
    if (force) {
      count(Provider::kWeChat, &Counters::force_refreshes);
      if (++force_refreshes_ > 20) return send_wechat_error(res, 45009);
    }
    if (usable && !force) {
      token = current_token_;
      expires_in = std::chrono::duration_cast<std::chrono::seconds>(it->second.expires - now).count();
    } else {
      token = issue_token_locked(*b);
      expires_in = b->token_expires_in_s;
    }
  }
  send_json(res, 200, {{"access_token", token}, {"expires_in", expires_in}});
}

void Simulator::Impl::handle_wechat_send(const httplib::Request& req, httplib::Response& res, bool subscribe) {
  const auto b = begin(Provider::kWeChat, req, res, true);
  if (!b) return;
  if (const int errcode = token_errcode(req.get_param_value("access_token")); errcode != 0) {
    count(Provider::kWeChat, &Counters::token_refusals);
    return send_wechat_error(res, errcode);
  }
  const auto reject = [&](std::int64_t errcode, const std::string& detail = {}) {
    count(Provider::kWeChat, &Counters::rejected);
    send_wechat_error(res, errcode, detail);
  };
  const json j = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return reject(47001);
  const auto string_field = [&](const char* name) -> std::string {
    const auto it = j.find(name);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  const std::string touser = string_field("touser");
  const std::string template_id = string_field("template_id");
  const std::string client_msg_id = subscribe ? std::string() : string_field("client_msg_id");
  if (touser.empty()) return reject(40003);
  if (template_id.empty()) return reject(40037);
  const auto data = j.find("data");
  if (data == j.end() || !data->is_object() || data->empty()) return reject(47003, "argument invalid! data is empty");
  for (const auto& [key, field] : data->items()) {
    const auto value = field.is_object() ? field.find("value") : field.end();
    if (!field.is_object() || value == field.end() || !value->is_string()) {
      return reject(47003, "argument invalid! data." + key + ".value invalid");
    }
    const Status st = subscribe ? wechat::check_subscribe_field(key, value->get<std::string>())
                                : wechat::check_template_field(key, value->get<std::string>());
    if (!st) return reject(47003, "argument invalid! data." + key + ".value invalid: " + st.error().message);
  }
  if (subscribe) {
    const std::string state = j.contains("miniprogram_state") ? string_field("miniprogram_state") : "formal";
    if (state != "developer" && state != "trial" && state != "formal") {
      return reject(47003, "argument invalid! miniprogram_state invalid");
    }
  }

  // ---- injected faults ----
  const Injection in = draw(*b, Provider::kWeChat);
  if (in.error) {
    count(Provider::kWeChat, &Counters::errors_injected);
    if (in.http_status != 0) return send_http_error(res, in.http_status);
    return send_wechat_error(res, to_errcode(in.code));
  }
  if (const auto it = b->recipient_errors.find(touser); it != b->recipient_errors.end()) {
    count(Provider::kWeChat, &Counters::errors_injected);
    return send_wechat_error(res, to_errcode(it->second));
  }

  // ---- client_msg_id: the same openid + client_msg_id within 10 minutes is sent once ----
  std::string msgid;
  {
    std::lock_guard lk(wechat_mu_);
    const std::string dedup_key = touser + "|" + client_msg_id;
    const auto now = Clock::now();
    if (!client_msg_id.empty()) {
      if (const std::string* first = client_msg_ids_.find(dedup_key, now); first != nullptr) {
        msgid = *first;
      }
    }
    if (!msgid.empty()) {
      count(Provider::kWeChat, &Counters::deduplicated);
      send_json(res, 200, {{"errcode", 0}, {"errmsg", "ok"}, {"msgid", std::stoull(msgid)}});
      return;
    }
    msgid = next_id();
    if (!client_msg_id.empty()) client_msg_ids_.put(dedup_key, msgid, now);
  }

  json message = {{"provider", "wechat"},
                  {"kind", subscribe ? "subscribe" : "template"},
                  {"key", client_msg_id},
                  {"to", touser},
                  {"template", template_id},
                  {"params", *data},
                  {"id", msgid},
                  {"time_ms", now_unix_ms()}};
  for (const char* extra : {"url", "miniprogram", "page", "miniprogram_state", "lang"}) {
    if (j.contains(extra)) message[extra] = j[extra];
  }
  record_accepted(Provider::kWeChat, client_msg_id, touser, std::move(message));
  if (!subscribe) {  // mini-program subscribe messages have no TEMPLATESENDJOBFINISH push
    ReceiptItem item;
    item.provider = Provider::kWeChat;
    item.to = touser;
    item.id = msgid;
    item.send_time_ms = now_unix_ms();
    schedule_receipts({std::move(item)}, b->receipt);
  }
  if (roll(b->timeout_rate)) {
    count(Provider::kWeChat, &Counters::timeouts_injected);
    if (!pause(b->timeout_ms)) return;
  }
  send_json(res, 200, {{"errcode", 0}, {"errmsg", "ok"}, {"msgid", std::stoull(msgid)}});
}

}  // namespace songda::sim
