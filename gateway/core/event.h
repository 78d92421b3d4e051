// The case event (contract ★ event v1) as a typed value, and the delivery the
// planner makes of it. Pure data: no I/O, safe to copy between threads.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "gateway/core/result.h"

namespace songda {

struct Consent {
  std::string basis;  // provided | confirmed | obtained | none
  std::vector<std::string> scope;
  std::string ref;
  std::string recorded_at;
};

// True when the consent's scope names `event_type` or "*" (every type). The one rule for the validator, group
// members and the CONSENT_RECORDED evidence.
bool consent_covers(const Consent& c, std::string_view event_type);

struct Contacts {
  std::string mobile;
  std::string wechat_openid;
  std::string email;
  std::string app_user;
};

struct Recipient {
  std::string id;
  std::string role;  // party | lawyer | agent | other
  std::string name;
  Contacts contacts;
  Consent consent;
};

struct Document {
  std::string id;
  std::string title;
  std::string sha256;
  std::string url;
  int pages = 0;
};

// The event type that starts a lawyer group broadcast (gateway/broadcast) instead of planning deliveries itself.
inline constexpr const char* kBroadcastEventType = "notice.broadcast";

struct CaseEvent {
  std::string event_id;
  std::string type;
  std::string occurred_at;
  std::string court_id;
  std::string court_name;
  std::string case_number;
  std::string case_title;
  std::optional<Document> document;
  std::vector<Recipient> recipients;
  std::map<std::string, std::string> params;  // scalar params as text
  bool urgent = false;
  std::string digest;  // sha256 hex of the canonical form of the whole event (conflict detection)
  nlohmann::json raw;  // the event as received, unknown fields kept
};

// Builds a CaseEvent from JSON that already passed the schema. Never throws.
Result<CaseEvent> event_from_json(const nlohmann::json& j);

// Channels Songda delivers on. Names are stable: they appear in ids, keys, config and the API.
inline constexpr const char* kChannelInApp = "inapp";
inline constexpr const char* kChannelSms = "sms";
inline constexpr const char* kChannelWechat = "wechat";
inline constexpr const char* kChannelEmail = "email";
bool is_known_channel(const std::string& name);

// One message to one recipient on one channel.
struct Delivery {
  std::string id;  // deterministic: delivery_id(event_id, recipient.id, channel)
  std::string event_id;
  std::string event_type;
  std::string court_id;
  std::string court_name;
  std::string case_number;
  std::string recipient_id;
  std::string recipient_role;
  std::string recipient_name;
  std::string channel;
  std::string address;  // app_user, mobile, openid or email: raw, needed to send and to prove
  std::string consent_basis;
  std::string template_name;
  std::string title;  // rendered
  std::string text;   // rendered
  std::optional<Document> document;
  bool urgent = false;
  std::map<std::string, std::string> params;  // the template params used (provider templates need them)
  // Receipt-driven fallback: when hold_from is set, this delivery is not sent at once. It waits until the
  // delivery hold_from has failed to reach hold_unless (DELIVERED, READ or ACKNOWLEDGED) within hold_after_s,
  // or failed for good; if hold_from gets there in time, this one is CANCELLED.
  std::string hold_from;
  std::string hold_unless;
  int hold_after_s = 0;
};

nlohmann::json to_json(const Delivery& d);
Result<Delivery> delivery_from_json(const nlohmann::json& j);

// The stored delivery record as text: the same bytes as to_json(d).dump(), written without building the
// tree. Error "invalid_utf8" when a field is not valid UTF-8 (dump() would throw).
Result<std::string> delivery_record_text(const Delivery& d);
// The same result as delivery_from_json(nlohmann::json::parse(text, nullptr, false)), read without building
// the tree when the record has the layout delivery_record_text writes (otherwise through the tree).
Result<Delivery> delivery_from_record_text(std::string_view text);

// "sd-" + 32 hex chars of SHA-256(event_id \x1f recipient_id \x1f channel).
std::string delivery_id(const std::string& event_id, const std::string& recipient_id, const std::string& channel);

}  // namespace songda
