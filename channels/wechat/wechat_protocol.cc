#include "channels/wechat/wechat_protocol.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <set>

#include <nlohmann/json.hpp>
#include <pugixml.hpp>

#include "gateway/core/crypto.h"
#include "gateway/core/json_parse.h"
#include "gateway/core/text.h"

namespace songda::wechat {
namespace {

using Kind = SendOutcome::Kind;

constexpr std::size_t kMaxPushBytes = 64 * 1024;  // a completion push is a few hundred bytes

Error invalid_request(std::string message) { return Error::permanent("invalid_request", std::move(message)); }

std::string to_lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::optional<std::int64_t> to_int64(std::string_view s) {
  std::int64_t v = 0;
  const char* end = s.data() + s.size();
  const auto [ptr, ec] = std::from_chars(s.data(), end, v);
  if (ec != std::errc() || ptr != end) return std::nullopt;
  return v;
}

std::string percent_encode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) != 0 || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
    }
  }
  return out;
}

// \n, \r, U+0085 (C2 85), U+2028 (E2 80 A8), U+2029 (E2 80 A9).
bool has_line_break(std::string_view v) {
  return v.find_first_of("\r\n") != std::string_view::npos || v.find("\xC2\x85") != std::string_view::npos ||
         v.find("\xE2\x80\xA8") != std::string_view::npos || v.find("\xE2\x80\xA9") != std::string_view::npos;
}

Error field_error(std::string_view kind, std::string_view field, std::string_view problem) {
  return Error::permanent("template_field",
                          std::string(kind) + " field \"" + std::string(field) + "\": " + std::string(problem));
}

// The checks shared by both message kinds; `max_chars` 0 = no length limit.
Status check_field(std::string_view kind, std::string_view field, std::string_view value, std::size_t max_chars) {
  if (!is_valid_utf8(value)) return field_error(kind, field, "not valid UTF-8");
  if (has_line_break(value)) {
    return field_error(kind, field, "contains a line break; hint: WeChat shows one line per field, join the text");
  }
  const std::size_t n = utf8_length(value);
  if (max_chars != 0 && n > max_chars) {
    return field_error(kind, field,
                       std::to_string(n) + " characters, at most " + std::to_string(max_chars) +
                           " allowed; hint: shorten the value or move detail behind the link");
  }
  return ok_status();
}

// "character_string12" -> "character_string"; "thing01" -> "thing".
std::string_view field_type(std::string_view key) {
  std::size_t end = key.size();
  while (end > 0 && key[end - 1] >= '0' && key[end - 1] <= '9') --end;
  return key.substr(0, end);
}

Status check_data_keys(const std::vector<std::pair<std::string, std::string>>& data) {
  std::set<std::string_view> seen;
  for (const auto& [key, value] : data) {
    if (key.empty()) return invalid_request("template data key is empty");
    if (!seen.insert(key).second) return invalid_request("template data key \"" + key + "\" repeated");
  }
  return ok_status();
}

std::string node_text(const pugi::xml_node& root, const char* name) { return root.child(name).text().as_string(); }

// ---- Classification table ---------------------------------------------------------
struct Rule {
  std::int64_t errcode;
  Kind kind;
  bool refresh_token;
  bool needs_operator;
  std::string_view note;
};

constexpr std::array kRules = {
    Rule{0, Kind::kAccepted, false, false, "accepted; the completion push follows (template messages)"},
    Rule{-1, Kind::kRetryable, false, false, "system busy: retry later"},
    // The token is stale, revoked or expired: invalidate the shared cache, refetch once, resend.
    Rule{40001, Kind::kRetryable, true, false, "access_token invalid: refetch the token once and resend"},
    Rule{40014, Kind::kRetryable, true, false, "access_token invalid: refetch the token once and resend"},
    Rule{42001, Kind::kRetryable, true, false, "access_token expired: refetch the token once and resend"},
    // Frequency and quota limits clear with time.
    Rule{45009, Kind::kRetryable, false, true, "daily API quota reached: clears tomorrow"},
    Rule{45011, Kind::kRetryable, false, false, "API minute quota reached: retry next minute"},
    // The recipient: resending cannot help.
    Rule{43004, Kind::kPermanent, false, false, "user does not follow the account (unsubscribed)"},
    Rule{43019, Kind::kPermanent, false, false, "recipient is in the account's blacklist"},
    Rule{43101, Kind::kPermanent, false, false, "no remaining subscription grant (each acceptance allows one send)"},
    Rule{40003, Kind::kPermanent, false, false, "openid invalid for this account"},
    // Content and configuration.
    Rule{47001, Kind::kPermanent, false, false, "request JSON malformed"},
    Rule{47003, Kind::kPermanent, false, true, "template data refused (empty or over the field rules)"},
    Rule{40037, Kind::kPermanent, false, true, "template_id invalid"},
    Rule{40036, Kind::kPermanent, false, true, "template_id length invalid"},
    Rule{41030, Kind::kPermanent, false, true, "mini-program page path invalid"},
    Rule{43116, Kind::kPermanent, false, true, "template restricted by WeChat for abuse"},
    Rule{48001, Kind::kPermanent, false, true, "API not authorised for this account"},
    Rule{40164, Kind::kPermanent, false, true, "caller IP not in the account's allow-list"},
    Rule{40013, Kind::kPermanent, false, true, "appid invalid"},
    Rule{40125, Kind::kPermanent, false, true, "appsecret invalid"},
    Rule{40243, Kind::kPermanent, false, true, "appsecret frozen"},
};

}  // namespace

std::string callback_signature(std::string_view token, std::string_view timestamp, std::string_view nonce) {
  std::array<std::string_view, 3> parts = {token, timestamp, nonce};
  std::sort(parts.begin(), parts.end());
  std::string joined;
  for (const auto& p : parts) joined += p;
  return sha1_hex(joined);
}

bool verify_callback_signature(std::string_view token, std::string_view timestamp, std::string_view nonce,
                               std::string_view signature) {
  const std::string expected = callback_signature(token, timestamp, nonce);
  // constant_time_equal compares lengths first; the length of a SHA-1 hex is public.
  return constant_time_equal(expected, to_lower(signature));
}

bool callback_timestamp_fresh(std::string_view timestamp, std::int64_t now_unix_seconds,
                              std::int64_t max_skew_seconds) {
  if (!all_digits(timestamp) || timestamp.size() > 12) return false;
  const auto ts = to_int64(timestamp);
  if (!ts) return false;
  const std::int64_t skew = *ts > now_unix_seconds ? *ts - now_unix_seconds : now_unix_seconds - *ts;
  return skew <= max_skew_seconds;
}

Result<std::string> echo_check(std::string_view token, std::string_view signature, std::string_view timestamp,
                               std::string_view nonce, std::string_view echostr) {
  if (!verify_callback_signature(token, timestamp, nonce, signature)) {
    return Error::permanent("signature_mismatch",
                            "WeChat callback signature does not match; hint: check the configured callback token");
  }
  return std::string(echostr);
}

Result<TemplateSendJobFinish> parse_template_send_job_finish(std::string_view xml) {
  if (xml.size() > kMaxPushBytes) return Error::permanent("invalid_xml", "WeChat push larger than 64 KiB");
  pugi::xml_document doc;
  // Default options: no DTD processing, only the predefined and numeric entities.
  const pugi::xml_parse_result parsed =
      doc.load_buffer(xml.data(), xml.size(), pugi::parse_default, pugi::encoding_utf8);
  if (!parsed) return Error::permanent("invalid_xml", std::string("WeChat push is not XML: ") + parsed.description());
  const pugi::xml_node root = doc.child("xml");
  if (!root) return Error::permanent("invalid_xml", "WeChat push has no <xml> root");

  TemplateSendJobFinish out;
  out.msg_type = node_text(root, "MsgType");
  out.event = node_text(root, "Event");
  if (out.msg_type != "event" || out.event != "TEMPLATESENDJOBFINISH") {
    return Error::permanent("other_event", "WeChat push is " + out.msg_type + "/" + out.event +
                                               ", not event/TEMPLATESENDJOBFINISH; acknowledge and ignore it");
  }
  out.to_user_name = node_text(root, "ToUserName");
  out.from_user_name = node_text(root, "FromUserName");
  out.msg_id = node_text(root, "MsgID");
  out.status = node_text(root, "Status");
  const std::string create_time = node_text(root, "CreateTime");
  const auto ct = all_digits(create_time) && create_time.size() <= 12 ? to_int64(create_time) : std::nullopt;
  if (!ct) return Error::permanent("invalid_receipt", "TEMPLATESENDJOBFINISH without a numeric CreateTime");
  out.create_time = *ct;
  if (out.msg_id.empty()) return Error::permanent("invalid_receipt", "TEMPLATESENDJOBFINISH without MsgID");
  // WeChat's msgid is a number (the send answer's "msgid"); anything else could never name a message of ours.
  if (!all_digits(out.msg_id) || out.msg_id.size() > 20) {
    return Error::permanent("invalid_receipt", "TEMPLATESENDJOBFINISH MsgID is not a number");
  }
  if (out.status.empty()) return Error::permanent("invalid_receipt", "TEMPLATESENDJOBFINISH without Status");
  out.delivered = out.status == "success";
  return out;
}

Status check_template_field(std::string_view field, std::string_view value) {
  return check_field("template", field, value, kTemplateFieldMaxChars);
}

Status check_subscribe_field(std::string_view field, std::string_view value) {
  if (value.empty()) return field_error("subscribe", field, "empty; WeChat refuses empty values (47003)");
  const std::string_view type = field_type(field);
  std::size_t max_chars = 0;
  if (type == "thing") {
    max_chars = 20;
  } else if (type == "number" || type == "letter" || type == "character_string") {
    max_chars = 32;
  } else if (type == "symbol" || type == "phrase") {
    max_chars = 5;
  } else if (type == "phone_number") {
    max_chars = 17;
  } else if (type == "car_number") {
    max_chars = 8;
  } else if (type == "name") {
    // 10 Chinese characters, or 20 letters when the name is pure ASCII.
    const bool ascii = std::all_of(value.begin(), value.end(), [](char c) { return (c & 0x80) == 0; });
    max_chars = ascii ? 20 : 10;
  }
  return check_field("subscribe", field, value, max_chars);
}

Result<std::string> template_message_body(const TemplateMessage& m) {
  if (m.touser.empty() || m.template_id.empty())
    return invalid_request("template message needs touser and template_id");
  if (m.client_msg_id.empty()) return invalid_request("template message needs client_msg_id (the delivery id)");
  if (auto st = check_data_keys(m.data); !st) return st.error();
  nlohmann::json data = nlohmann::json::object();
  for (const auto& [key, value] : m.data) {
    if (auto st = check_template_field(key, value); !st) return st.error();
    data[key] = {{"value", value}};
  }
  nlohmann::json j = {{"touser", m.touser},
                      {"template_id", m.template_id},
                      {"client_msg_id", m.client_msg_id},
                      {"data", std::move(data)}};
  if (!m.url.empty()) j["url"] = m.url;
  if (m.miniprogram) {
    if (m.miniprogram->appid.empty()) return invalid_request("miniprogram link needs an appid");
    j["miniprogram"] = {{"appid", m.miniprogram->appid}, {"pagepath", m.miniprogram->pagepath}};
  }
  return j.dump();
}

Result<std::string> subscribe_message_body(const SubscribeMessage& m) {
  if (m.touser.empty() || m.template_id.empty()) {
    return invalid_request("subscribe message needs touser and template_id");
  }
  if (m.miniprogram_state != "developer" && m.miniprogram_state != "trial" && m.miniprogram_state != "formal") {
    return invalid_request("miniprogram_state must be developer, trial or formal");
  }
  if (auto st = check_data_keys(m.data); !st) return st.error();
  nlohmann::json data = nlohmann::json::object();
  for (const auto& [key, value] : m.data) {
    if (auto st = check_subscribe_field(key, value); !st) return st.error();
    data[key] = {{"value", value}};
  }
  nlohmann::json j = {{"touser", m.touser},
                      {"template_id", m.template_id},
                      {"data", std::move(data)},
                      {"miniprogram_state", m.miniprogram_state},
                      {"lang", m.lang}};
  if (!m.page.empty()) j["page"] = m.page;
  return j.dump();
}

Result<SendResponse> parse_send_response(std::string_view body) {
  const auto j = parse_json(body);
  if (!j.is_object()) return Error::permanent("invalid_response", "WeChat answer is not a JSON object");
  SendResponse out;
  const auto code = j.find("errcode");
  if (code != j.end()) {
    if (!code->is_number_integer()) return Error::permanent("invalid_response", "WeChat errcode is not an integer");
    out.errcode = code->get<std::int64_t>();
  }
  const auto msg = j.find("errmsg");
  if (msg != j.end() && msg->is_string()) out.errmsg = msg->get<std::string>();
  const auto id = j.find("msgid");
  if (id != j.end()) {
    if (id->is_number_integer()) {
      out.msgid = id->dump();  // exact digits, also past 2^53
    } else if (id->is_string()) {
      out.msgid = id->get<std::string>();
    }
  }
  return out;
}

std::string token_request_query(std::string_view appid, std::string_view secret) {
  return "grant_type=client_credential&appid=" + percent_encode(appid) + "&secret=" + percent_encode(secret);
}

std::string stable_token_request_body(std::string_view appid, std::string_view secret, bool force_refresh) {
  const nlohmann::json j = {{"grant_type", "client_credential"},
                            {"appid", std::string(appid)},
                            {"secret", std::string(secret)},
                            {"force_refresh", force_refresh}};
  return j.dump();
}

Result<AccessToken> parse_access_token_response(std::string_view body) {
  const auto j = parse_json(body);
  if (!j.is_object()) return Error::transient("invalid_response", "WeChat token answer is not a JSON object");
  const auto code = j.find("errcode");
  if (code != j.end() && code->is_number_integer() && code->get<std::int64_t>() != 0) {
    const std::int64_t errcode = code->get<std::int64_t>();
    const auto msg = j.find("errmsg");
    const std::string errmsg = msg != j.end() && msg->is_string() ? msg->get<std::string>() : "";
    const ErrcodeClass cls = classify_errcode(errcode);
    return Error{"wechat_token_refused",
                 "WeChat refused the token request: errcode " + std::to_string(errcode) + " errmsg \"" + errmsg +
                     "\" (" + cls.note + ")",
                 cls.kind == Kind::kRetryable};
  }
  const auto token = j.find("access_token");
  const auto expires = j.find("expires_in");
  if (token == j.end() || !token->is_string() || token->get_ref<const std::string&>().empty() || expires == j.end() ||
      !expires->is_number_integer() || expires->get<std::int64_t>() <= 0) {
    return Error::transient("invalid_response", "WeChat token answer without access_token/expires_in");
  }
  return AccessToken{token->get<std::string>(), expires->get<std::int64_t>()};
}

std::int64_t token_cache_ttl_seconds(std::int64_t expires_in) { return std::max<std::int64_t>(expires_in - 300, 0); }

ErrcodeClass classify_errcode(std::int64_t errcode, bool token_already_refreshed) {
  for (const Rule& rule : kRules) {
    if (rule.errcode != errcode) continue;
    ErrcodeClass out{rule.kind, rule.refresh_token, rule.needs_operator, errcode, std::string(rule.note)};
    if (out.refresh_token && token_already_refreshed) {
      // A fresh token was refused too: the token server or shared cache is wrong. Do not loop on refetches.
      out.refresh_token = false;
      out.needs_operator = true;
      out.note = "access_token refused again after a refetch: retry later; check the shared token cache";
    }
    return out;
  }
  // Unknown: permanent, kept verbatim (the errcode travels in the outcome's code).
  return ErrcodeClass{Kind::kPermanent, false, false, errcode, "unknown WeChat errcode: not retried"};
}

}  // namespace songda::wechat
