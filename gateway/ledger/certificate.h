// The printable 电子送达凭证 (electronic proof of service, Online Litigation
// Rules 2021 Art. 31): one self-contained HTML page (inline CSS, A4, prints
// in black and white) rendered from a proof bundle plus the facts a clerk
// reads but the bundle does not carry (names, titles, masked addresses).
// Everything shown is HTML-escaped; times are Beijing time (UTC+8).
//
// Ownership: plain values in, a string out. Thread-safety: pure functions,
// safe from any thread. Never throw.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "gateway/core/event.h"
#include "gateway/store/store.h"

namespace songda::ledger {

// One channel's delivery of the document to the recipient, as the delivery record has it.
struct ChannelFacts {
  std::string delivery_id;
  std::string channel;
  std::string status;
  std::string address_masked;
  std::string consent_basis;
  std::string provider;
  std::string provider_message_id;
  std::vector<StatusEntry> history;
};

struct CertificateFacts {
  std::string court_id;
  std::string court_name;
  std::string case_number;
  std::string event_id;
  std::string event_type;
  std::string title;  // the rendered message title
  std::string recipient_id;
  std::string recipient_name;
  std::string recipient_role;
  std::optional<Document> document;
  std::vector<ChannelFacts> channels;  // inapp, sms, wechat, email order; only those that exist
};

std::string html_escape(std::string_view text);
// "2026-11-28 09:00:00 (北京时间 UTC+8)"; milliseconds kept when non-zero.
std::string beijing_time(std::int64_t unix_ms);
std::string channel_name_zh(std::string_view channel);  // 站内信 / 短信 / 微信 / 电子邮件
std::string event_type_zh(std::string_view type);       // 传票 / 开庭通知 / … (the type itself when unknown)
std::string role_zh(std::string_view role);             // 当事人 / 律师 / 代理人 / 其他
std::string basis_zh(std::string_view basis);  // 受送达人提供 / 受送达人确认 / 法院获取 / 未同意

// The certificate for a bundle built by ProofService (bundle.h JSON).
std::string render_certificate_html(const nlohmann::json& bundle, const CertificateFacts& facts);
// The page shown while the newest records still wait for a checkpoint (refreshes itself).
std::string render_pending_html(const CertificateFacts& facts, int retry_after_s);

}  // namespace songda::ledger
