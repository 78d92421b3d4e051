#include "gateway/ledger/evidence_makers.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <list>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <unordered_map>

#include "gateway/core/crypto.h"
#include "gateway/core/json_parse.h"
#include "gateway/core/text.h"
#include "gateway/evidence/merkle.h"

namespace songda::ledger {
namespace {

using evidence::EvidenceRecord;
using evidence::EvidenceType;
using Json = nlohmann::json;

constexpr std::size_t kMaxReasonBytes = 4096;

// Cuts at a code point boundary.
std::string cap(std::string s, std::size_t max_bytes) {
  if (s.size() <= max_bytes) return s;
  std::size_t at = max_bytes;
  while (at > 0 && (static_cast<unsigned char>(s[at]) & 0xC0) == 0x80) --at;
  s.resize(at);
  return s + "…(truncated)";
}

// A provider's words, verbatim except that the raw address (and its national form) is masked.
std::string redacted(std::string_view text, const Delivery& d) {
  return cap(mask_address_in(repair_utf8(text), d.channel, d.address), kMaxReasonBytes);
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

bool is_hex64(std::string_view s) {
  return s.size() == 64 &&
         std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool valid_basis(const std::string& b) { return b == "provided" || b == "confirmed" || b == "obtained" || b == "none"; }

// A record of one delivery.
EvidenceRecord for_delivery(const Delivery& d, EvidenceType type, std::string_view discriminator,
                            std::int64_t event_time_ms, std::int64_t now_ms, Json details) {
  EvidenceRecord r;
  r.type = type;
  r.evidence_id = evidence::make_evidence_id(d.id, type, discriminator);
  r.event_time_ms = event_time_ms;
  r.recorded_at_ms = now_ms;
  r.delivery_id = d.id;
  r.event_id = d.event_id;
  r.court_id = d.court_id;
  r.case_number = d.case_number;
  r.channel = d.channel;
  r.details = std::move(details);
  return r;
}

std::string provider_of(const Delivery& d, const std::string& provider) {
  return provider.empty() ? d.channel : provider;
}

Json address_fields(const Delivery& d, const EvidenceContext& ctx) {
  return {{"address_masked", mask_address(d.channel, d.address)},
          {"address_hash", evidence::address_hash(ctx.salt, d.address)}};
}

EvidenceRecord dispatched(const Delivery& d, const SendOutcome& o, std::int64_t now_ms, const EvidenceContext& ctx) {
  Json details = address_fields(d, ctx);
  details["provider"] = provider_of(d, o.provider);
  details["text_sha256"] = sha256_hex(d.text);
  details["title_sha256"] = sha256_hex(d.title);
  details["idempotency_key"] = d.id;
  details["template"] = repair_utf8(d.template_name);
  if (d.document) details["document_id"] = repair_utf8(d.document->id);
  return for_delivery(d, EvidenceType::kDispatched, d.id, now_ms, now_ms, std::move(details));
}

}  // namespace

EvidenceContext evidence_context_from_environment(const std::function<const char*(const char*)>& getenv) {
  const char* salt = getenv("SONGDA_EVIDENCE_SALT");
  if (salt == nullptr || std::string_view(salt).size() < 16) {
    throw StartupError(
        "SONGDA_EVIDENCE_SALT is unset or shorter than 16 bytes; it keys the salted address hashes in the evidence "
        "log. Hint: generate one with `openssl rand -hex 32`, keep it secret and never change it");
  }
  return EvidenceContext{salt};
}

std::string event_index_id(std::string_view event_id) { return "evt:" + std::string(event_id); }

std::optional<std::int64_t> parse_rfc3339_ms(std::string_view t) {
  // YYYY-MM-DDTHH:MM:SS[.fff…](Z|±HH:MM)
  auto digits = [&](std::size_t at, std::size_t n, int& out) {
    if (at + n > t.size()) return false;
    out = 0;
    for (std::size_t i = at; i < at + n; ++i) {
      if (t[i] < '0' || t[i] > '9') return false;
      out = out * 10 + (t[i] - '0');
    }
    return true;
  };
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  if (!digits(0, 4, y) || t.size() < 20 || t[4] != '-' || !digits(5, 2, mo) || t[7] != '-' || !digits(8, 2, d) ||
      (t[10] != 'T' && t[10] != 't' && t[10] != ' ') || !digits(11, 2, h) || t[13] != ':' || !digits(14, 2, mi) ||
      t[16] != ':' || !digits(17, 2, s)) {
    return std::nullopt;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return std::nullopt;
  std::size_t at = 19;
  int millis = 0;
  if (at < t.size() && t[at] == '.') {
    ++at;
    int scale = 100;
    const std::size_t start = at;
    while (at < t.size() && t[at] >= '0' && t[at] <= '9') {
      millis += (t[at] - '0') * scale;
      scale /= 10;
      ++at;
    }
    if (at == start) return std::nullopt;
  }
  if (at >= t.size()) return std::nullopt;
  int offset_min = 0;
  if (t[at] == 'Z' || t[at] == 'z') {
    ++at;
  } else if (t[at] == '+' || t[at] == '-') {
    int oh = 0, om = 0;
    if (!digits(at + 1, 2, oh) || at + 3 >= t.size() || t[at + 3] != ':' || !digits(at + 4, 2, om)) {
      return std::nullopt;
    }
    offset_min = (t[at] == '-' ? -1 : 1) * (oh * 60 + om);
    at += 6;
  } else {
    return std::nullopt;
  }
  if (at != t.size()) return std::nullopt;
  using namespace std::chrono;
  const year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
  if (!ymd.ok()) return std::nullopt;
  const auto days = sys_days{ymd}.time_since_epoch().count();
  const std::int64_t secs = static_cast<std::int64_t>(days) * 86400 + h * 3600 + mi * 60 + s - offset_min * 60;
  return secs * 1000 + millis;
}

std::vector<EvidenceRecord> accepted_records(const CaseEvent& e, const Plan& plan, std::int64_t now_ms,
                                             const EvidenceContext& ctx) {
  std::vector<EvidenceRecord> out;
  EvidenceRecord acc;
  acc.type = EvidenceType::kSubmissionAccepted;
  acc.evidence_id = evidence::make_evidence_id(e.event_id, acc.type, e.digest);
  acc.event_time_ms = now_ms;
  acc.recorded_at_ms = now_ms;
  acc.event_id = e.event_id;
  acc.court_id = e.court_id;
  acc.case_number = e.case_number;
  Json details = {{"event_type", repair_utf8(e.type)},
                  {"event_sha256", repair_utf8(e.digest)},
                  {"occurred_at", repair_utf8(e.occurred_at)},
                  {"court_name", repair_utf8(e.court_name)},
                  {"deliveries", plan.deliveries.size()},
                  {"recipients", e.recipients.size()},
                  {"unreachable_recipients", plan.unreachable.size()}};
  if (const auto occurred = parse_rfc3339_ms(e.occurred_at)) details["occurred_at_ms"] = *occurred;
  if (e.document) {
    details["document_id"] = repair_utf8(e.document->id);
    details["document_title"] = repair_utf8(e.document->title);
    const std::string sha = lower(e.document->sha256);
    if (is_hex64(sha)) details["document_sha256"] = sha;
    if (e.document->pages > 0) details["document_pages"] = e.document->pages;
  }
  acc.details = std::move(details);
  out.push_back(std::move(acc));

  for (const Delivery& d : plan.deliveries) {
    const Recipient* who = nullptr;
    for (const Recipient& r : e.recipients) {
      if (r.id == d.recipient_id) who = &r;
    }
    Consent c;
    if (who != nullptr) c = who->consent;
    if (c.basis.empty()) c.basis = d.consent_basis;
    if (!valid_basis(c.basis)) c.basis = "none";
    Json scope = Json::array();
    for (const auto& s : c.scope) scope.push_back(repair_utf8(s));
    Json details2 = address_fields(d, ctx);
    details2["basis"] = c.basis;
    details2["scope"] = std::move(scope);
    details2["reference"] = repair_utf8(c.ref);
    details2["recipient_id"] = repair_utf8(d.recipient_id);
    details2["recipient_role"] = repair_utf8(d.recipient_role);
    if (!c.recorded_at.empty()) details2["consent_recorded_at"] = repair_utf8(c.recorded_at);
    if (!c.scope.empty()) {
      details2["scope_covers_event"] = consent_covers(c, e.type);
    }
    const std::int64_t when = parse_rfc3339_ms(c.recorded_at).value_or(now_ms);
    out.push_back(
        for_delivery(d, EvidenceType::kConsentRecorded, c.ref + '\x1f' + c.basis, when, now_ms, std::move(details2)));
  }
  return out;
}

EvidenceRecord rejected_record(const KafkaMessage& m, const Error& error, std::int64_t now_ms) {
  const std::string coordinates =
      "kafka:" + m.topic + "/" + std::to_string(m.partition) + "/" + std::to_string(m.offset);
  EvidenceRecord r;
  r.type = EvidenceType::kSubmissionRejected;
  r.evidence_id = evidence::make_evidence_id(coordinates, r.type, error.code);
  r.event_time_ms = now_ms;
  r.recorded_at_ms = now_ms;
  r.event_id = coordinates;
  r.court_id = "_";
  r.case_number = "_";
  const Json j = parse_json(m.value);
  if (j.is_object()) {
    auto text_at = [&](const Json& obj, const char* key) -> std::string {
      if (!obj.is_object()) return "";
      const auto it = obj.find(key);
      return it != obj.end() && it->is_string() ? repair_utf8(cap(it->get<std::string>(), 512)) : "";
    };
    if (auto id = text_at(j, "event_id"); !id.empty()) r.event_id = id;
    if (auto court = text_at(j.contains("court") ? j["court"] : Json(), "id"); !court.empty()) r.court_id = court;
    if (auto cs = text_at(j.contains("case") ? j["case"] : Json(), "number"); !cs.empty()) r.case_number = cs;
  }
  r.details = {{"reason", cap(repair_utf8(error.message), kMaxReasonBytes)},
               {"code", repair_utf8(error.code)},
               {"source_topic", repair_utf8(m.topic)},
               {"source_partition", m.partition},
               {"source_offset", m.offset},
               {"payload_sha256", sha256_hex(m.value)},
               {"payload_bytes", m.value.size()}};
  return r;
}

std::vector<EvidenceRecord> outcome_records(const Delivery& d, const SendOutcome& o, const std::string& status,
                                            std::int64_t now_ms, const EvidenceContext& ctx) {
  std::vector<EvidenceRecord> out;
  if (status != "SENT" && status != "DELIVERED" && status != "FAILED") return out;
  out.push_back(dispatched(d, o, now_ms, ctx));
  const std::string provider = provider_of(d, o.provider);
  if (status == "SENT") {
    // The id as the provider's records know it, the number masked: a record never holds a raw address.
    const std::string pmid = masked_message_id(repair_utf8(o.provider_message_id));
    Json details = {{"provider", provider}, {"provider_message_id", pmid}, {"provider_code", repair_utf8(o.code)}};
    if (!o.raw.empty()) details["response_sha256"] = sha256_hex(o.raw);
    out.push_back(for_delivery(d, EvidenceType::kProviderAccepted, pmid.empty() ? d.id : pmid, now_ms, now_ms,
                               std::move(details)));
  } else if (status == "DELIVERED") {
    Json details = {{"provider", provider}, {"gateway_received_at", now_ms}};
    std::string receipt;
    if (d.channel == kChannelInApp) {
      receipt = o.raw.empty() ? "songda in-app inbox write " + d.id : o.raw;
      details["identified_by"] = "in-app inbox write: the message was stored in the recipient's inbox (站内信箱写入)";
      details["inbox_message_id"] = d.id;
    } else {
      receipt = o.raw.empty() ? o.code + " " + o.message : o.raw;
      details["identified_by"] = d.channel == kChannelEmail
                                     ? "SMTP: the recipient's mail server accepted the message (final reply to DATA)"
                                     : "provider reported delivery synchronously";
      details["provider_message_id"] = masked_message_id(repair_utf8(o.provider_message_id));
      details["provider_code"] = repair_utf8(o.code);
    }
    const std::string receipt_sha = sha256_hex(receipt);
    details["receipt_sha256"] = receipt_sha;
    out.push_back(for_delivery(d, EvidenceType::kDelivered, receipt_sha, now_ms, now_ms, std::move(details)));
  } else {
    const std::string verbatim = trim(o.code + " " + o.message);
    const std::string raw = o.raw.empty() ? verbatim : o.raw;
    Json details = {{"reason", redacted(verbatim, d)},
                    {"reason_sha256", sha256_hex(verbatim)},
                    {"provider", provider},
                    {"provider_code", repair_utf8(o.code)},
                    {"receipt_sha256", sha256_hex(raw)},
                    {"outcome", o.kind == SendOutcome::Kind::kPermanent ? "refused" : "retries exhausted"}};
    out.push_back(for_delivery(d, EvidenceType::kDeliveryFailed, sha256_hex(raw), now_ms, now_ms, std::move(details)));
  }
  return out;
}

EvidenceRecord receipt_record(const Delivery& d, const std::string& provider, const ReceiptUpdate& u,
                              std::int64_t now_ms) {
  std::string who = provider;
  if (who.empty()) who = u.key.substr(0, u.key.find(':'));
  if (who.empty()) who = d.channel;
  const std::string receipt_sha = sha256_hex(u.raw);
  Json details = {{"provider", repair_utf8(who)},
                  {"receipt_sha256", receipt_sha},
                  {"gateway_received_at", now_ms},
                  {"identified_by", "provider delivery report (" + repair_utf8(d.channel) + " callback)"}};
  if (u.provider_time_ms > 0) {
    details["provider_time"] = u.provider_time_ms;
    details["provider_time_utc"] = rfc3339_utc(u.provider_time_ms);
  }
  const std::int64_t when = u.provider_time_ms > 0 ? u.provider_time_ms : now_ms;
  if (u.delivered) return for_delivery(d, EvidenceType::kDelivered, receipt_sha, when, now_ms, std::move(details));
  details["reason"] = redacted(u.reason, d);
  details["reason_sha256"] = sha256_hex(u.reason);
  return for_delivery(d, EvidenceType::kDeliveryFailed, receipt_sha, when, now_ms, std::move(details));
}

EvidenceRecord read_record(const Delivery& d, std::int64_t now_ms) {
  Json details = {{"identified_by",
                   "app inbox API: the recipient's authenticated app session opened the message "
                   "(POST /v1/inbox/{app_user}/messages/{id}/read; 站内信已阅)"},
                  {"inbox_message_id", d.id}};
  return for_delivery(d, EvidenceType::kRead, "inbox-read", now_ms, now_ms, std::move(details));
}

EvidenceRecord link_read_record(const Delivery& d, std::int64_t now_ms, const std::string& client) {
  Json details = {{"identified_by",
                   "signed party link: the link sent to this address (/r/{token}, HMAC-signed, bound to this "
                   "delivery) was opened in a browser (链接已打开)"},
                  {"client", cap(repair_utf8(client), 256)}};
  return for_delivery(d, EvidenceType::kRead, "link-read", now_ms, now_ms, std::move(details));
}

EvidenceRecord retrieved_record(const Delivery& d, const std::string& served_sha256, std::uint64_t bytes,
                                std::int64_t now_ms, const std::string& client) {
  Json details = {
      {"identified_by", "signed party link: the document was downloaded from /r/{token}/document (文书已下载)"},
      {"served_sha256", served_sha256},
      {"served_bytes", bytes},
      {"client", cap(repair_utf8(client), 256)}};
  if (d.document) {
    details["document_id"] = repair_utf8(d.document->id);
    details["document_sha256"] = d.document->sha256;
  }
  return for_delivery(d, EvidenceType::kRetrieved, served_sha256, now_ms, now_ms, std::move(details));
}

EvidenceRecord acknowledged_record(const Delivery& d, std::int64_t now_ms, const std::string& client) {
  Json details = {{"method",
                   "online confirmation: the recipient pressed 「确认收到」 on the signed party link page "
                   "(在线确认, 在线诉讼规则第33条)"},
                  {"client", cap(repair_utf8(client), 256)}};
  return for_delivery(d, EvidenceType::kAcknowledged, "link-ack", now_ms, now_ms, std::move(details));
}

EvidenceRecord fallback_record(const Delivery& held, const TimerOutcome& t, std::int64_t now_ms) {
  const std::string action = t.released ? "released" : "cancelled";
  const std::string wanted = held.hold_unless.empty() ? "DELIVERED" : held.hold_unless;
  Json details = {{"action", action},
                  {"from_delivery_id", t.from_id},
                  {"from_status", t.from_status},
                  {"waited_for", wanted},
                  {"after_s", held.hold_after_s}};
  if (t.released) {
    details["reason"] = t.from_id + " is " + t.from_status + ", not " + wanted + " within " +
                        std::to_string(held.hold_after_s) + " s: sent on " + held.channel + " (改用" + held.channel +
                        "送达)";
    details["to_channel"] = held.channel;
  } else {
    details["reason"] = t.from_id + " reached " + t.from_status + " in time: fallback on " + held.channel +
                        " not needed (无需补充送达)";
  }
  return for_delivery(held, EvidenceType::kFallback, action, now_ms, now_ms, std::move(details));
}

std::vector<EvidenceLeaf> to_leaves(const std::vector<EvidenceRecord>& records) {
  std::vector<EvidenceLeaf> out;
  out.reserve(records.size());
  for (const EvidenceRecord& r : records) {
    // The makers build records from checked and repaired values, so a record that fails here is a bug in one:
    // thrown, so that what the record was for is not recorded as if it had its evidence (see to_leaves' comment).
    if (auto s = evidence::validate_record(r); !s) {
      throw std::logic_error("evidence record " + std::string(to_string(r.type)) + " is invalid: " + s.error().message);
    }
    auto bytes = r.canonical();
    if (!bytes) {
      throw std::logic_error("evidence record " + std::string(to_string(r.type)) +
                             " has no canonical form: " + bytes.error().message);
    }
    EvidenceLeaf leaf;
    leaf.delivery_id = r.delivery_id.empty() && r.type == EvidenceType::kSubmissionAccepted ? event_index_id(r.event_id)
                                                                                            : r.delivery_id;
    leaf.leaf_hash_hex = to_hex(evidence::leaf_hash(*bytes));
    leaf.canonical = std::move(*bytes);
    out.push_back(std::move(leaf));
  }
  return out;
}

std::vector<EvidenceLeaf> accepted_evidence(const CaseEvent& event, const Plan& plan, std::int64_t now_ms,
                                            const EvidenceContext& ctx) {
  return to_leaves(accepted_records(event, plan, now_ms, ctx));
}

std::vector<EvidenceLeaf> rejected_evidence(const KafkaMessage& message, const Error& error, std::int64_t now_ms) {
  return to_leaves({rejected_record(message, error, now_ms)});
}

std::vector<EvidenceLeaf> outcome_evidence(const Delivery& d, const SendOutcome& o, const std::string& status,
                                           std::int64_t now_ms, const EvidenceContext& ctx) {
  return to_leaves(outcome_records(d, o, status, now_ms, ctx));
}

std::vector<EvidenceLeaf> receipt_evidence(const Delivery& d, const std::string& provider, const ReceiptUpdate& u,
                                           std::int64_t now_ms) {
  return to_leaves({receipt_record(d, provider, u, now_ms)});
}

std::vector<EvidenceLeaf> read_evidence(const Delivery& d, std::int64_t now_ms) {
  return to_leaves({read_record(d, now_ms)});
}

std::vector<EvidenceLeaf> link_read_evidence(const Delivery& d, std::int64_t now_ms, const std::string& client) {
  return to_leaves({link_read_record(d, now_ms, client)});
}

std::vector<EvidenceLeaf> retrieved_evidence(const Delivery& d, const std::string& served_sha256, std::uint64_t bytes,
                                             std::int64_t now_ms, const std::string& client) {
  return to_leaves({retrieved_record(d, served_sha256, bytes, now_ms, client)});
}

std::vector<EvidenceLeaf> acknowledged_evidence(const Delivery& d, std::int64_t now_ms, const std::string& client) {
  return to_leaves({acknowledged_record(d, now_ms, client)});
}

std::vector<EvidenceLeaf> fallback_evidence(const Delivery& held, const TimerOutcome& t, std::int64_t now_ms) {
  return to_leaves({fallback_record(held, t, now_ms)});
}

namespace {

// Delivery records never change once written, so a bounded cache is safe; it saves the
// receipt path a Redis round trip for deliveries this process has just sent or looked at.
// Two generations: when the young one is full it becomes the old one, so the newest kGeneration to
// 2 × kGeneration entries stay (receipts follow their sends by seconds to minutes).
class DeliveryCache {
 public:
  explicit DeliveryCache(DeliveryStore& store) : store_(store) {}

  struct Found {
    Delivery delivery;
    std::string provider;
  };

  // The delivery a receipt or a fallback timer names. An error when Redis did not answer three tries; an
  // exception when it has no complete record, which cannot happen unless the data was damaged (both name an id
  // only once its delivery was taken by a provider).
  Result<Found> find(const std::string& id) {
    {
      std::lock_guard lock(mu_);
      if (auto it = young_.find(id); it != young_.end()) return it->second;
      if (auto it = old_.find(id); it != old_.end()) return it->second;
    }
    Error last = Error::transient("redis_unavailable", "");
    for (int attempt = 0; attempt < 3; ++attempt) {
      if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(50 << (2 * attempt)));
      auto v = store_.sent_records({id});
      if (!v.ok()) {
        last = v.error();
        continue;
      }
      if (v->empty() || !v->front()) throw std::logic_error("delivery " + id + " has no readable record");
      Found f{std::move(v->front()->delivery), std::move(v->front()->provider)};
      if (!f.provider.empty()) {  // complete only once a provider took it
        std::lock_guard lock(mu_);
        put(f);
      }
      return f;
    }
    return Error::transient(last.code, "reading delivery " + id + " for its evidence record: " + last.message);
  }

  // Reads the ones of `ids` not cached in one round trip, so that a push of many receipts for deliveries sent
  // long ago (a backlog) does not read them one by one. A failed read is left to find().
  void prefetch(const std::vector<std::string>& ids) {
    std::vector<std::string> missing;
    {
      std::lock_guard lock(mu_);
      for (const auto& id : ids) {
        if (!young_.contains(id) && !old_.contains(id)) missing.push_back(id);
      }
    }
    if (missing.size() < 2) return;  // find() reads a single one just as well
    auto v = store_.sent_records(missing);
    if (!v.ok()) return;
    std::lock_guard lock(mu_);
    for (auto& r : v.value()) {
      if (r && !r->provider.empty()) put(Found{std::move(r->delivery), std::move(r->provider)});
    }
  }

  // What the dispatcher just had a provider accept: its receipt, usually pushed to this instance, then
  // needs no Redis round trip to find it (measured in bench/: ~1 round trip of 3 per SMS/WeChat receipt).
  void remember(const Delivery& d, const std::string& provider) {
    std::lock_guard lock(mu_);
    put(Found{d, provider});
  }

 private:
  static constexpr std::size_t kGeneration = 20000;

  void put(Found f) {  // under mu_
    if (young_.size() >= kGeneration) {
      old_ = std::move(young_);
      young_ = {};
    }
    const std::string id = f.delivery.id;
    young_.insert_or_assign(id, std::move(f));
  }

  DeliveryStore& store_;
  std::mutex mu_;
  std::unordered_map<std::string, Found> young_;
  std::unordered_map<std::string, Found> old_;
};

}  // namespace

void install_evidence(IngestPipeline& ingest, Dispatcher& dispatcher, ReceiptProcessor& receipts,
                      FallbackTimers& timers, DeliveryStore& store, const EvidenceContext& ctx) {
  ingest.set_evidence(
      [ctx](const CaseEvent& e, const Plan& p, std::int64_t now_ms) { return accepted_evidence(e, p, now_ms, ctx); },
      [](const KafkaMessage& m, const Error& err, std::int64_t now_ms) { return rejected_evidence(m, err, now_ms); });
  auto cache = std::make_shared<DeliveryCache>(store);
  dispatcher.set_evidence(
      [ctx, cache](const Delivery& d, const SendOutcome& o, const std::string& status, std::int64_t now_ms) {
        if (status == "SENT" && !o.provider.empty()) cache->remember(d, o.provider);
        return outcome_evidence(d, o, status, now_ms, ctx);
      });
  receipts.set_evidence(
      [cache](const std::string& id, const ReceiptUpdate& u, std::int64_t now_ms) -> Result<std::vector<EvidenceLeaf>> {
        auto found = cache->find(id);
        if (!found.ok()) return found.error();
        return receipt_evidence(found->delivery, found->provider, u, now_ms);
      },
      [cache](const std::vector<std::string>& ids) { cache->prefetch(ids); });
  timers.set_evidence([cache](const TimerOutcome& t, std::int64_t now_ms) -> Result<std::vector<EvidenceLeaf>> {
    auto found = cache->find(t.delivery_id);
    if (!found.ok()) return found.error();
    return fallback_evidence(found->delivery, t, now_ms);
  });
}

}  // namespace songda::ledger
