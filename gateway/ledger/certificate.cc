#include "gateway/ledger/certificate.h"

#include "gateway/core/text.h"

#include <algorithm>
#include <ctime>
#include <string>

#include "gateway/evidence/rules.h"

namespace songda::ledger {
namespace {

using Json = nlohmann::json;

std::string esc(std::string_view s) { return html_escape(s); }

std::string str(const Json& j, const char* key) {
  if (!j.is_object()) return "";
  const auto it = j.find(key);
  if (it == j.end()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number_integer() || it->is_boolean()) return it->dump();
  return "";
}

std::int64_t num(const Json& j, const char* key) {
  if (!j.is_object()) return 0;
  const auto it = j.find(key);
  return it != j.end() && it->is_number_integer() ? it->get<std::int64_t>() : 0;
}

std::string type_zh(std::string_view t) {
  static const std::pair<std::string_view, const char*> names[] = {
      {"CONSENT_RECORDED", "同意电子送达记录"},
      {"SUBMISSION_ACCEPTED", "送达任务受理"},
      {"SUBMISSION_REJECTED", "拒绝受理"},
      {"DISPATCHED", "提交发送渠道"},
      {"PROVIDER_ACCEPTED", "服务商已受理"},
      {"DELIVERED", "到达受送达人系统"},
      {"DELIVERY_FAILED", "送达失败"},
      {"READ", "受送达人已阅知"},
      {"RETRIEVED", "受送达人已下载文书"},
      {"ACKNOWLEDGED", "受送达人确认收到"},
      {"SERVICE_DEEMED_COMPLETE", "送达完成判定"},
      {"FALLBACK", "补充送达（渠道切换）"},
      {"CORRECTION", "更正"},
  };
  for (const auto& [k, v] : names) {
    if (k == t) return v;
  }
  return std::string(t);
}

std::string status_zh(std::string_view s) {
  if (s == "SERVED") return "已送达";
  if (s == "PENDING") return "送达中（尚未完成）";
  if (s == "INFORMATIONAL_ONLY") return "仅为告知（受送达人未同意电子送达）";
  if (s == "NOT_SERVED") return "未能送达";
  return std::string(s);
}

std::string delivery_status_zh(std::string_view s) {
  if (s == "ACCEPTED") return "待发送";
  if (s == "SENT") return "已发送";
  if (s == "DELIVERED") return "已到达";  // arrival; whether it serves is the rules' decision (已送达 above)
  if (s == "READ") return "已阅";
  if (s == "ACKNOWLEDGED") return "已确认";
  if (s == "FAILED") return "失败";
  if (s == "CANCELLED") return "已取消（无需补充送达）";
  return std::string(s);
}

// The legal basis of a rule, in the words of the rules it applies.
std::string legal_basis_zh(const std::string& rule) {
  using namespace evidence;
  if (rule == kRuleArrival) {
    return "《中华人民共和国民事诉讼法》（2023）第九十条、《人民法院在线诉讼规则》（2021）第三十一条第一款："
           "受送达人提供或者确认的电子地址，送达信息到达受送达人特定系统的日期为送达日期。";
  }
  if (rule == kRuleArrivalByAccess) {
    return "《人民法院在线诉讼规则》（2021）第三十一条第一款：受送达人提供或者确认的电子地址，以送达信息到达其特定系统"
           "为送达；受送达人的阅知、下载或回复证明送达信息不晚于该时已到达。";
  }
  if (rule == kRuleReply) {
    return "《人民法院在线诉讼规则》（2021）第三十一条第二款：向法院获取的受送达人电子地址送达的，"
           "受送达人回复已收悉或者根据送达内容作出相应诉讼行为的，即为完成有效送达。";
  }
  if (rule == kRulePresumedRead) {
    return "《人民法院在线诉讼规则》（2021）第三十一条第二款：向法院获取的电子地址送达，受送达人未回复，"
           "但系统显示其已阅知的，推定完成送达；受送达人有相反证据的除外。";
  }
  if (rule == kRuleNoConsent) {
    return "《中华人民共和国民事诉讼法》（2023）第九十条：经受送达人同意，方可采用电子方式送达；"
           "本次发送仅为告知，不产生送达效力。";
  }
  if (rule == kRuleAllFailed) return "《人民法院在线诉讼规则》（2021）第三十一条：各经同意的电子送达渠道均未能送达。";
  if (rule == kRuleNoDelivery) return "《人民法院在线诉讼规则》（2021）第三十一条：无送达记录。";
  if (rule == kRulePendingObtained) {
    return "《人民法院在线诉讼规则》（2021）第三十一条第二款：向法院获取的受送达人电子地址送达的，以受送达人回复或阅知"
           "认定送达；送达信息到达本身不构成送达。尚无回复或阅知的证据，送达尚未完成。";
  }
  if (rule == kRulePendingMixed) {
    return "《人民法院在线诉讼规则》（2021）第三十一条：受送达人提供或者确认的电子地址尚无到达的证据，向法院获取的电子"
           "地址"
           "尚无回复或阅知的证据，送达尚未完成。";
  }
  return "《人民法院在线诉讼规则》（2021）第三十一条：尚无到达、回复或阅知的证据，送达尚未完成。";
}

// The provider evidence of one record, in a few words.
std::string record_evidence(const Json& details) {
  std::string out;
  auto add = [&](const char* label, const std::string& value) {
    if (value.empty()) return;
    if (!out.empty()) out += "<br>";
    out += "<span class=\"k\">" + std::string(label) + "</span> " + esc(value);
  };
  add("服务商 provider:", str(details, "provider"));
  add("消息编号 message id:", str(details, "provider_message_id"));
  add("回执哈希 receipt SHA-256:", str(details, "receipt_sha256"));
  if (const auto t = num(details, "provider_time"); t > 0) add("服务商时间 provider time:", beijing_time(t));
  if (const auto t = num(details, "gateway_received_at"); t > 0) add("本系统接收 received:", beijing_time(t));
  add("方式 identified by:", str(details, "identified_by"));
  add("原因 reason:", str(details, "reason"));
  add("地址 address:", str(details, "address_masked"));
  add("同意依据 basis:", str(details, "basis").empty() ? "" : basis_zh(str(details, "basis")));
  add("同意凭据 reference:", str(details, "reference"));
  add("文书 SHA-256:", str(details, "document_sha256"));
  add("正文哈希 text SHA-256:", str(details, "text_sha256"));
  return out;
}

constexpr const char* kStyle = R"CSS(
@page { size: A4; margin: 16mm 15mm; }
* { box-sizing: border-box; }
body { font-family: "Noto Serif CJK SC", "Source Han Serif SC", "Songti SC", SimSun, serif; color: #000;
       background: #fff; margin: 0 auto; max-width: 190mm; font-size: 10.5pt; line-height: 1.5; }
h1 { text-align: center; font-size: 20pt; letter-spacing: 0.3em; margin: 4mm 0 1mm; }
.sub { text-align: center; font-size: 9.5pt; margin-bottom: 4mm; }
h2 { font-size: 12pt; border-bottom: 1.5px solid #000; margin: 5mm 0 2mm; padding-bottom: 1mm; }
table { width: 100%; border-collapse: collapse; margin: 1mm 0; page-break-inside: auto; }
tr { page-break-inside: avoid; }
th, td { border: 1px solid #000; padding: 1.2mm 1.8mm; vertical-align: top; text-align: left;
         overflow-wrap: anywhere; word-break: break-word; }
table.timeline { table-layout: fixed; }
th { width: 26%; font-weight: bold; background: #f2f2f2; }
table.grid th { width: auto; }
.mono { font-family: "DejaVu Sans Mono", "Noto Sans Mono CJK SC", monospace; font-size: 8.5pt; word-break: break-all; }
.k { font-weight: bold; }
.verdict { border: 2px solid #000; padding: 2.5mm 3mm; margin: 2mm 0; }
.verdict .big { font-size: 14pt; font-weight: bold; }
pre { border: 1px solid #000; padding: 2mm; white-space: pre-wrap; font-size: 9pt; }
.note { font-size: 9pt; }
@media print { th { background: none; } a { color: #000; text-decoration: none; } }
)CSS";

}  // namespace

std::string html_escape(std::string_view text) { return songda::html_escape(text); }

std::string beijing_time(std::int64_t unix_ms) {
  std::int64_t ms = unix_ms + 8LL * 3600 * 1000;
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  int millis = static_cast<int>(ms % 1000);
  if (millis < 0) {
    millis += 1000;
    --secs;
  }
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[96];
  if (millis != 0) {
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02d %02d:%02d:%02d.%03d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                  tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
  } else {
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02d %02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                  tm.tm_hour, tm.tm_min, tm.tm_sec);
  }
  return std::string(buf) + "（北京时间 UTC+8）";
}

std::string channel_name_zh(std::string_view c) {
  if (c == "inapp") return "站内信（诉讼服务平台）";
  if (c == "sms") return "短信";
  if (c == "wechat") return "微信";
  if (c == "email") return "电子邮件";
  return std::string(c);
}

std::string event_type_zh(std::string_view t) {
  static const std::pair<std::string_view, const char*> names[] = {
      {"case.filed", "立案通知"},
      {"summons.issued", "传票"},
      {"hearing.scheduled", "开庭通知"},
      {"hearing.rescheduled", "开庭改期通知"},
      {"hearing.cancelled", "撤销开庭通知"},
      {"document.served", "诉讼文书送达"},
      {"judgment.issued", "裁判文书"},
      {"payment.due", "缴费通知"},
      {"mediation.invited", "调解邀请"},
      {"notice.general", "通知"},
  };
  for (const auto& [k, v] : names) {
    if (k == t) return v;
  }
  return std::string(t);
}

std::string role_zh(std::string_view r) {
  if (r == "party") return "当事人";
  if (r == "lawyer") return "律师";
  if (r == "agent") return "诉讼代理人";
  if (r == "other") return "其他";
  return std::string(r);
}

std::string basis_zh(std::string_view b) {
  if (b == "provided") return "受送达人主动提供的地址（provided）";
  if (b == "confirmed") return "受送达人确认的地址（confirmed）";
  if (b == "obtained") return "法院获取的地址（obtained）";
  if (b == "none") return "未同意电子送达（none）";
  return std::string(b);
}

std::string render_certificate_html(const nlohmann::json& bundle, const CertificateFacts& f) {
  const Json& delivery = bundle.value("delivery", Json::object());
  const Json& service = bundle.value("service", Json::object());
  const Json& checkpoint = bundle.value("checkpoint", Json::object());
  const Json& records = bundle.value("records", Json::array());
  const Json& leaves = bundle.value("leaves", Json::array());
  const std::string delivery_id = str(delivery, "delivery_id");

  std::string h;
  h.reserve(32 * 1024);
  h += "<!DOCTYPE html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">\n";
  h += "<title>电子送达凭证 " + esc(f.case_number) + " " + esc(f.recipient_name) + "</title>\n";
  h += "<style>" + std::string(kStyle) + "</style>\n</head>\n<body>\n";
  h += "<h1>电子送达凭证</h1>\n<div class=\"sub\">Electronic Proof of Service · "
       "依据《人民法院在线诉讼规则》第三十一条生成"
       " · 凭证编号 <span class=\"mono\">" +
       esc(delivery_id) + "</span></div>\n";

  // Case and document.
  h += "<h2>一、案件与文书 Case and document</h2>\n<table>\n";
  h += "<tr><th>送达法院 Court</th><td>" + esc(f.court_name) + "（" + esc(f.court_id) + "）</td></tr>\n";
  h += "<tr><th>案号 Case number</th><td>" + esc(f.case_number) + "</td></tr>\n";
  h += "<tr><th>送达事项 Matter</th><td>" + esc(event_type_zh(f.event_type)) + "（" + esc(f.event_type) + "）" +
       (f.title.empty() ? "" : "：" + esc(f.title)) + "</td></tr>\n";
  if (f.document) {
    h += "<tr><th>送达文书 Document</th><td>" + esc(f.document->title) + "（编号 " + esc(f.document->id) +
         (f.document->pages > 0 ? "，共 " + std::to_string(f.document->pages) + " 页" : "") + "）</td></tr>\n";
    h += "<tr><th>文书 SHA-256</th><td class=\"mono\">" + esc(f.document->sha256) + "</td></tr>\n";
  }
  h += "<tr><th>事件编号 Event id</th><td class=\"mono\">" + esc(f.event_id) + "</td></tr>\n";
  h += "</table>\n";

  // Recipient, addresses and consent.
  h += "<h2>二、受送达人与送达地址 Recipient and addresses</h2>\n<table>\n";
  h += "<tr><th>受送达人 Recipient</th><td>" + esc(f.recipient_name) + "（" + esc(role_zh(f.recipient_role)) +
       "，编号 " + esc(f.recipient_id) + "）</td></tr>\n</table>\n";
  h += "<table class=\"grid\">\n<tr><th>渠道 Channel</th><th>地址（已脱敏）Address</th><th>同意依据 Consent basis</th>"
       "<th>状态 Status</th></tr>\n";
  for (const ChannelFacts& c : f.channels) {
    std::string consent = basis_zh(c.consent_basis);
    for (const auto& r : records) {
      if (str(r, "type") == "CONSENT_RECORDED" && str(r, "delivery_id") == c.delivery_id) {
        const Json& d = r.value("details", Json::object());
        std::string scope;
        for (const auto& s : d.value("scope", Json::array())) {
          if (s.is_string()) scope += (scope.empty() ? "" : "、") + s.get<std::string>();
        }
        consent = basis_zh(str(d, "basis")) + (str(d, "reference").empty() ? "" : "；凭据 " + str(d, "reference")) +
                  (scope.empty() ? "" : "；范围 " + scope);
      }
    }
    h += "<tr><td>" + esc(channel_name_zh(c.channel)) + "</td><td>" + esc(c.address_masked) + "</td><td>" +
         esc(consent) + "</td><td>" + esc(delivery_status_zh(c.status)) + "</td></tr>\n";
  }
  h += "</table>\n";

  // Timeline from the evidence records.
  struct Row {
    std::int64_t t;
    std::size_t i;
  };
  std::vector<Row> rows;
  for (std::size_t i = 0; i < records.size(); ++i) rows.push_back(Row{num(records[i], "event_time"), i});
  std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.t < b.t; });
  h += "<h2>三、送达过程 Timeline（证据记录 evidence records）</h2>\n<table class=\"grid timeline\">\n"
       "<colgroup><col style=\"width:17%\"><col style=\"width:11%\"><col style=\"width:14%\"><col style=\"width:38%\">"
       "<col style=\"width:20%\"></colgroup>\n"
       "<tr><th>时间 Time</th><th>渠道 Channel</th><th>事件 Event</th><th>服务商证据 Provider evidence</th>"
       "<th>证据编号 / 日志位置 Evidence id / log index</th></tr>\n";
  for (const Row& row : rows) {
    const Json& r = records[row.i];
    const std::string channel = str(r, "channel");
    std::string index = row.i < leaves.size() ? str(leaves[row.i], "index") : "";
    h += "<tr><td>" + esc(beijing_time(row.t)) + "</td><td>" + esc(channel.empty() ? "—" : channel_name_zh(channel)) +
         "</td><td>" + esc(type_zh(str(r, "type"))) + "<br><span class=\"mono\">" + esc(str(r, "type")) +
         "</span></td><td class=\"note\">" + record_evidence(r.value("details", Json::object())) +
         "</td><td class=\"mono\">" + esc(str(r, "evidence_id")) + "<br>#" + esc(index) + "</td></tr>\n";
  }
  h += "</table>\n";

  // The decision.
  const std::string status = str(service, "status");
  const std::string rule = str(service, "rule");
  h += "<h2>四、送达结论 Service</h2>\n<div class=\"verdict\"><div class=\"big\">" + esc(status_zh(status));
  if (const auto t = num(service, "service_time"); t > 0) {
    h += "　送达日期：" + esc(beijing_time(t));
  }
  h += "</div>\n<table>\n";
  if (!str(service, "channel").empty()) {
    h += "<tr><th>有效送达渠道 Channel</th><td>" + esc(channel_name_zh(str(service, "channel"))) +
         "（多渠道送达的，以最先完成的有效送达为准）</td></tr>\n";
  }
  h += "<tr><th>法律依据 Legal basis</th><td>" + esc(legal_basis_zh(rule)) + "</td></tr>\n";
  h += "<tr><th>适用规则 Rule</th><td>" + esc(rule) + "<br>规则版本 rules version: <span class=\"mono\">" +
       esc(str(service, "rule_version")) + "</span></td></tr>\n";
  std::string ids;
  for (const auto& id : service.value("evidence_ids", Json::array())) {
    if (id.is_string()) ids += (ids.empty() ? "" : "<br>") + esc(id.get<std::string>());
  }
  if (!ids.empty()) h += "<tr><th>所依据的证据 Evidence relied on</th><td class=\"mono\">" + ids + "</td></tr>\n";
  if (!str(service, "note").empty())
    h += "<tr><th>各渠道情况 Channels</th><td class=\"note\">" + esc(str(service, "note")) + "</td></tr>\n";
  h += "</table></div>\n";

  // The log.
  h += "<h2>五、防篡改证据日志 Tamper-evident log</h2>\n<table>\n";
  h += "<tr><th>日志 Log</th><td>" + esc(str(checkpoint, "origin")) +
       "（RFC 9162 Merkle 树，记录按 RFC 8785 规范化）</td></tr>\n";
  h += "<tr><th>检查点规模 Tree size</th><td>" + esc(str(checkpoint, "tree_size")) + " 条记录</td></tr>\n";
  h += "<tr><th>根哈希 Root hash</th><td class=\"mono\">" + esc(str(checkpoint, "root_hash")) + "</td></tr>\n";
  h += "<tr><th>签名时间 Signed at</th><td>" + esc(beijing_time(num(checkpoint, "timestamp"))) + "</td></tr>\n";
  h += "<tr><th>签名密钥 Key id</th><td class=\"mono\">" + esc(str(checkpoint, "key_id")) + "（Ed25519）</td></tr>\n";
  h += "<tr><th>签名 Signature</th><td class=\"mono\">" + esc(str(checkpoint, "signature")) + "</td></tr>\n";
  h += "<tr><th>可信时间戳 RFC 3161</th><td>" +
       std::string(checkpoint.contains("tsa_token") ? "已附时间戳机构签发的时间戳（见 JSON 凭证）" : "未附") +
       "</td></tr>\n";
  if (bundle.contains("document_sha256")) {
    h += "<tr><th>经日志证明的文书哈希</th><td class=\"mono\">" + esc(str(bundle, "document_sha256")) + "</td></tr>\n";
  }
  const Json& attestation = bundle.value("attestation", Json::object());
  if (attestation.is_object() && attestation.contains("signature")) {
    h += "<tr><th>完整性声明 Completeness</th><td>日志密钥 <span class=\"mono\">" + esc(str(attestation, "key_id")) +
         "</span> 于 " + esc(beijing_time(num(attestation, "attested_at"))) +
         " 签名声明：上列记录为该受送达人就本事件在日志中的全部记录，送达结论据此得出。"
         "The log's key attests that the records above are all of this recipient's for this event.</td></tr>\n";
  }
  h += "</table>\n";

  // How to verify.
  h += "<h2>六、如何核验 How to verify</h2>\n<ol class=\"note\">\n"
       "<li>取得本凭证的数据文件 bundle.json（GET /v1/deliveries/" +
       esc(delivery_id) + "/proof）与法院公布的公钥 court.pub（GET /v1/evidence/public-key，密钥标识 " +
       esc(str(checkpoint, "key_id")) +
       "）。</li>\n"
       "<li>在任意电脑上离线运行：</li>\n</ol>\n"
       "<pre>songda verify bundle.json --pubkey court.pub\n"
       "songda verify bundle.json --pubkey court.pub --document 送达文书.pdf   # 同时核对文书是否一致</pre>\n"
       "<p "
       "class=\"note\">"
       "核验程序逐项检查：检查点签名、记录完整性声明的签名、每条证据记录的哈希及其在日志中的包含证明、记录与受送达人的"
       "对应关系、"
       "文书哈希，并依据同一版本的送达规则重新计算送达结论；全部通过时显示「VERIFIED 核验通过」。"
       "任何一个字节被改动，核验都会失败并指出原因。The verifier checks the checkpoint signature, the completeness "
       "attestation, every record's leaf hash "
       "and inclusion proof, the recipient, the document hash, and recomputes the service decision.</p>\n";
  h += "</body>\n</html>\n";
  return h;
}

std::string render_pending_html(const CertificateFacts& f, int retry_after_s) {
  std::string h = "<!DOCTYPE html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">\n";
  h += "<meta http-equiv=\"refresh\" content=\"" + std::to_string(retry_after_s) + "\">\n";
  h += "<title>电子送达凭证生成中</title>\n<style>" + std::string(kStyle) + "</style>\n</head>\n<body>\n";
  h += "<h1>电子送达凭证</h1>\n<div class=\"verdict\"><div class=\"big\">凭证生成中 Pending checkpoint</div>"
       "<p>" +
       esc(f.case_number) + " · " + esc(f.recipient_name) + "：最新的送达证据尚未纳入已签名的日志检查点，本页将在 " +
       std::to_string(retry_after_s) +
       " 秒后自动刷新。The newest evidence is not yet covered by a signed checkpoint; this page reloads in " +
       std::to_string(retry_after_s) + " s.</p></div>\n</body>\n</html>\n";
  return h;
}

}  // namespace songda::ledger
