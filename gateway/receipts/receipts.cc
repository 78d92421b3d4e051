#include "gateway/receipts/receipts.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>

#include "channels/sms/aliyun_protocol.h"
#include "channels/sms/tencent_protocol.h"
#include "channels/wechat/wechat_protocol.h"
#include "gateway/core/contain.h"
#include "gateway/core/crypto.h"
#include "gateway/core/text.h"

namespace songda {

namespace {

// A parked receipt that names no delivery of ours for this long never will (a send retried under a new id after
// the provider had taken the first, another system's message on a shared account).
constexpr std::int64_t kGiveUpParkedAfterMs = 7LL * 24 * 3600 * 1000;
constexpr std::int64_t kForgetUnmatchedAfterMs = 30LL * 24 * 3600 * 1000;

// The provider's text (reason, raw body) may not be UTF-8, which JSON cannot hold: bad bytes become U+FFFD.
nlohmann::json parked_json(const ReceiptUpdate& u) {
  return {{"key", repair_utf8(u.key)},       {"channel", u.channel},       {"delivered", u.delivered},
          {"reason", repair_utf8(u.reason)}, {"time", u.provider_time_ms}, {"raw", repair_utf8(u.raw)}};
}

std::optional<ReceiptUpdate> from_parked(const std::string& text) {
  const auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  ReceiptUpdate u;
  u.key = j.value("key", "");
  u.channel = j.value("channel", "");
  u.delivered = j.value("delivered", false);
  u.reason = j.value("reason", "");
  u.provider_time_ms = j.value("time", std::int64_t{0});
  u.raw = j.value("raw", "");
  if (u.key.empty()) return std::nullopt;
  return u;
}

}  // namespace

Result<ReceiptProcessor::Settled> ReceiptProcessor::settle(const std::vector<ReceiptUpdate>& updates,
                                                           std::int64_t now_ms,
                                                           const std::vector<DeliveryStore::CallbackBinding>& bindings,
                                                           const std::vector<int>& binding_of) {
  std::vector<std::string> keys;
  keys.reserve(updates.size());
  for (const auto& u : updates) keys.push_back(u.key);
  auto found = store_.lookup_receipt_keys(keys, bindings);
  if (!found.ok()) return found.error();
  Settled out;
  out.bound = std::move(found->bound);
  std::vector<Completion> completions;
  std::vector<const ReceiptUpdate*> of_completion;
  std::vector<bool>& matched = out.matched;
  matched.assign(updates.size(), false);
  for (std::size_t i = 0; i < updates.size(); ++i) {
    const auto& u = updates[i];
    if (!binding_of.empty() && binding_of[i] >= 0 && !out.bound[static_cast<std::size_t>(binding_of[i])]) continue;
    const std::string& v = found->found[i];
    const auto bar = v.find('|');
    if (v.empty() || bar == std::string::npos) continue;
    matched[i] = true;
    Completion c;
    c.id = v.substr(0, bar);
    c.provider = v.substr(bar + 1);
    c.channel = u.channel;
    c.status = u.delivered ? "DELIVERED" : "FAILED";
    c.detail = "receipt: " + u.reason;
    c.event_time_ms = u.provider_time_ms > 0 ? u.provider_time_ms : now_ms;
    completions.push_back(std::move(c));
    of_completion.push_back(&u);
  }
  if (evidence_) {
    if (prepare_evidence_ && !completions.empty()) {
      std::vector<std::string> ids;
      ids.reserve(completions.size());
      for (const auto& c : completions) ids.push_back(c.id);
      auto prepared = contain("preparing receipt evidence", [&] {
        prepare_evidence_(ids);
        return ok_status();
      });
      if (!prepared.ok()) spdlog::error("receipts: {}", prepared.error().message);  // each maker reads its own
    }
    for (std::size_t k = 0; k < completions.size(); ++k) {
      Completion& c = completions[k];
      auto leaves = contain("receipt evidence", [&] { return evidence_(c.id, *of_completion[k], now_ms); });
      if (leaves.ok()) {
        c.evidence = std::move(leaves.value());
      } else if (leaves.error().code == "internal_error") {
        // The receipt is a fact: it is applied; that its record is missing is shown and counted.
        spdlog::error("receipts: delivery {} is {} without its evidence record: {}", c.id, c.status,
                      leaves.error().message);
        c.detail += "; recorded without its evidence record: " + leaves.error().message;
      } else {
        return leaves.error();
      }
    }
  }
  if (auto s = store_.complete_batch(completions, now_ms); !s.ok()) return s.error();
  counters_.applied.fetch_add(completions.size());
  return out;
}

struct ReceiptProcessor::Push {
  const std::vector<ReceiptUpdate>* updates = nullptr;
  std::optional<DeliveryStore::CallbackBinding> binding;
  // Set when its group is applied; if applying it threw, it stays an error and the provider pushes again.
  Result<int> parked = Error::transient("receipts_not_applied", "the receipts were not applied; push again");
  bool done = false;  // under mu_
};

Result<int> ReceiptProcessor::apply(const std::vector<ReceiptUpdate>& updates, std::int64_t now_ms,
                                    std::optional<DeliveryStore::CallbackBinding> binding) {
  auto mine = std::make_shared<Push>();
  mine->updates = &updates;
  mine->binding = std::move(binding);
  std::unique_lock lock(mu_);
  waiting_.push_back(mine);
  // The first caller to find nobody applying applies every push waiting then, its own among them; the others
  // wait for theirs to be applied (by it, or by the next group's caller).
  while (!mine->done) {
    if (applying_) {
      applied_.wait(lock);
      continue;
    }
    applying_ = true;
    std::vector<std::shared_ptr<Push>> group;
    group.swap(waiting_);
    // However applying ends (an exception included), the group's callers are answered and the next may apply.
    struct Release {
      ReceiptProcessor& self;
      std::unique_lock<std::mutex>& lock;
      const std::vector<std::shared_ptr<Push>>& group;
      ~Release() {
        lock.lock();
        self.applying_ = false;
        for (const auto& p : group) p->done = true;
        self.applied_.notify_all();
      }
    };
    lock.unlock();
    const Release release{*this, lock, group};
    apply_together(group, now_ms);
  }
  return mine->parked;
}

void ReceiptProcessor::apply_together(const std::vector<std::shared_ptr<Push>>& pushes, std::int64_t now_ms) {
  std::vector<ReceiptUpdate> all;
  std::vector<DeliveryStore::CallbackBinding> bindings;
  std::vector<int> binding_of;    // per update of `all`
  std::vector<int> push_binding;  // per push
  for (const auto& p : pushes) {
    const int b = p->binding ? static_cast<int>(bindings.size()) : -1;
    if (p->binding) bindings.push_back(*p->binding);
    push_binding.push_back(b);
    all.insert(all.end(), p->updates->begin(), p->updates->end());
    binding_of.insert(binding_of.end(), p->updates->size(), b);
  }
  const auto reused = [&](int b, const Settled& s) { return b >= 0 && !s.bound[static_cast<std::size_t>(b)]; };
  auto settled = settle(all, now_ms, bindings, binding_of);
  Status parked_ok = ok_status();
  std::vector<std::pair<std::string, std::string>> park;
  if (settled.ok()) {
    for (std::size_t i = 0; i < all.size(); ++i) {
      if (!settled->matched[i] && !reused(binding_of[i], *settled)) {
        park.emplace_back(all[i].key, parked_json(all[i]).dump());
      }
    }
    parked_ok = store_.park_receipts(park, now_ms);
    if (parked_ok.ok()) counters_.unknown.fetch_add(park.size());
  }
  std::size_t first = 0;
  for (std::size_t k = 0; k < pushes.size(); ++k) {
    const auto& p = pushes[k];
    const std::size_t n = p->updates->size();
    const bool forged = settled.ok() && reused(push_binding[k], *settled);
    if (!forged) counters_.received.fetch_add(n);  // a forged push's receipts are not the provider's
    if (!settled.ok()) {
      p->parked = settled.error();
    } else if (forged) {
      p->parked = Error::permanent("signature_reused", "this signature came with another body before");
    } else if (!parked_ok.ok()) {
      p->parked = parked_ok.error();
    } else {
      const auto begin = settled->matched.begin() + static_cast<std::ptrdiff_t>(first);
      p->parked = static_cast<int>(std::count(begin, begin + static_cast<std::ptrdiff_t>(n), false));
    }
    first += n;
  }
}

Result<int> ReceiptProcessor::retry_parked(std::int64_t now_ms) {
  auto parked = store_.take_parked_receipts(now_ms, 500, kGiveUpParkedAfterMs, kForgetUnmatchedAfterMs);
  if (!parked.ok()) return parked.error();
  if (parked->forgotten > 0) {
    spdlog::info("receipts: deleted {} receipts from sd:rcpt:unmatched, kept 30 days after they were given up on",
                 parked->forgotten);
  }
  if (parked->given_up > 0) {
    counters_.given_up.fetch_add(static_cast<std::uint64_t>(parked->given_up));
    spdlog::warn(
        "receipts: {} parked receipts still named no delivery of ours after 7 days; moved to "
        "sd:rcpt:unmatched and no longer tried",
        parked->given_up);
  }
  std::vector<ReceiptUpdate> updates;
  std::vector<std::string> unreadable;
  for (const auto& [key, text] : parked->receipts) {
    if (auto u = from_parked(text)) {
      updates.push_back(std::move(*u));
    } else {
      unreadable.push_back(key);  // cannot happen unless edited by hand; kept, logged
    }
  }
  for (const auto& key : unreadable) {
    // the key of an Aliyun receipt ends with the phone number
    spdlog::error("receipts: parked receipt {} is unreadable; left in place", masked_message_id(key));
  }
  if (updates.empty()) return 0;
  auto settled = settle(updates, now_ms);
  if (!settled.ok()) return settled.error();
  std::vector<std::string> done;
  for (std::size_t i = 0; i < updates.size(); ++i) {
    if (settled->matched[i]) done.push_back(updates[i].key);
  }
  if (auto s = store_.unpark_receipts(done); !s.ok()) return s.error();
  counters_.applied_later.fetch_add(done.size());
  return static_cast<int>(done.size());
}

namespace {

// A real push is a few KiB (Aliyun and Tencent batch at most a few hundred reports); the HTTP server's 8 MiB limit
// is for the API. Refused before parsing, so a large body costs no more than its own bytes.
constexpr std::size_t kMaxCallbackBytes = 1 << 20;

bool refused_as_too_large(const httplib::Request& req, httplib::Response& res) {
  if (req.body.size() <= kMaxCallbackBytes) return false;
  send_error(res, 413, "too_large",
             "a receipt push is at most " + std::to_string(kMaxCallbackBytes) + " bytes; this one is " +
                 std::to_string(req.body.size()));
  return true;
}

// Elements of an authenticated push that do not parse: acknowledged with the rest (pushing them again would not
// change them), but counted and logged, a few of them, not one line each.
void log_refused(std::string_view provider, const std::vector<std::string>& rejected, ReceiptCounters& counters) {
  if (rejected.empty()) return;
  counters.refused.fetch_add(rejected.size());
  std::string shown;
  for (std::size_t i = 0; i < rejected.size() && i < 3; ++i)
    shown += (i > 0 ? "; " : "") + mask_personal_data(rejected[i]);
  spdlog::warn("receipts: {} element(s) of a push from {} refused (not applied): {}{}", rejected.size(), provider,
               shown, rejected.size() > 3 ? "; ..." : "");
}

bool sms_key_ok(const httplib::Request& req, const CallbackSecrets& s) {
  return !s.sms_key.empty() && req.has_param("key") && constant_time_equal(req.get_param_value("key"), s.sms_key);
}

enum class Finished { kApplied, kSignatureReused, kUnavailable };

// Applies and answers: provider's ack once every receipt is applied or parked, 401 for a reused signature, 503
// when Redis failed (then the provider pushes again).
Finished finish(httplib::Response& res, ReceiptProcessor& p, const std::vector<ReceiptUpdate>& updates,
                const std::string& ack, const std::string& content_type,
                std::optional<DeliveryStore::CallbackBinding> binding = std::nullopt) {
  auto r = p.apply(updates, now_unix_ms(), std::move(binding));
  if (!r.ok() && r.error().code == "signature_reused") {
    send_error(res, 401, "unauthenticated", r.error().message);
    return Finished::kSignatureReused;
  }
  if (!r.ok()) {
    spdlog::error("receipts: {} ({}); asking the provider to push again", r.error().message, r.error().code);
    send_error(res, 503, r.error().code, "temporarily unavailable; push again");
    return Finished::kUnavailable;
  }
  if (r.value() > 0) {
    spdlog::info("receipts: {} of {} name no known delivery yet; parked until it is", r.value(), updates.size());
  }
  res.status = 200;
  res.set_content(ack, content_type);
  return Finished::kApplied;
}

}  // namespace

void register_callbacks(ApiServer& server, ReceiptProcessor& p, ReceiptCounters& counters,
                        const CallbackSecrets& secrets) {
  auto& s = server.raw();
  s.Post("/callbacks/aliyun/sms-report", [&p, &counters, secrets](const httplib::Request& req, httplib::Response& res) {
    if (!sms_key_ok(req, secrets)) {
      counters.forged.fetch_add(1);
      spdlog::warn("callback refused: aliyun sms-report from {} without a valid key", req.remote_addr);
      return send_error(res, 401, "unauthenticated", "callback key missing or wrong");
    }
    if (refused_as_too_large(req, res)) return;
    auto batch = sms::aliyun::parse_sms_report(req.body);
    if (!batch.ok()) return send_error(res, 400, batch.error().code, batch.error().message);
    std::vector<ReceiptUpdate> updates;
    for (const auto& r : batch->reports) {
      ReceiptUpdate u;
      u.key = "aliyun:" + r.biz_id + ":" + r.phone_number;
      u.channel = kChannelSms;
      u.delivered = r.success;
      u.reason = r.err_code + (r.err_msg.empty() ? "" : " " + r.err_msg);
      u.provider_time_ms = r.report_time_ms;
      u.raw = nlohmann::json{{"phone_number", r.phone_number},
                             {"send_time", r.send_time},
                             {"report_time", r.report_time},
                             {"success", r.success},
                             {"err_code", r.err_code},
                             {"err_msg", r.err_msg},
                             {"sms_size", std::to_string(r.sms_size)},
                             {"biz_id", r.biz_id},
                             {"out_id", r.out_id}}
                  .dump();
      updates.push_back(std::move(u));
    }
    log_refused("Aliyun", batch->rejected, counters);
    finish(res, p, updates, sms::aliyun::sms_report_ack(), "application/json; charset=utf-8");
  });

  s.Post("/callbacks/tencent/sms-status",
         [&p, &counters, secrets](const httplib::Request& req, httplib::Response& res) {
           if (!sms_key_ok(req, secrets)) {
             counters.forged.fetch_add(1);
             spdlog::warn("callback refused: tencent sms-status from {} without a valid key", req.remote_addr);
             return send_error(res, 401, "unauthenticated", "callback key missing or wrong");
           }
           if (refused_as_too_large(req, res)) return;
           auto batch = sms::tencent::parse_status_callback(req.body);
           if (!batch.ok()) return send_error(res, 400, batch.error().code, batch.error().message);
           std::vector<ReceiptUpdate> updates;
           for (const auto& r : batch->reports) {
             ReceiptUpdate u;
             u.key = "tencent:" + r.sid;
             u.channel = kChannelSms;
             u.delivered = r.success;
             u.reason = r.report_status + " " + r.errmsg + (r.description.empty() ? "" : " " + r.description);
             u.provider_time_ms = r.receive_time_ms;
             u.raw = nlohmann::json{
                 {"user_receive_time", r.user_receive_time},
                 {"nationcode", r.nationcode},
                 {"mobile", r.mobile},
                 {"report_status", r.report_status},
                 {"errmsg", r.errmsg},
                 {"description", r.description},
                 {"sid",
                  r.sid}}.dump();
             updates.push_back(std::move(u));
           }
           log_refused("Tencent", batch->rejected, counters);
           finish(res, p, updates, sms::tencent::status_callback_ack(), "application/json; charset=utf-8");
         });

  s.Get("/callbacks/wechat", [&counters, secrets](const httplib::Request& req, httplib::Response& res) {
    auto echo =
        wechat::echo_check(secrets.wechat_token, req.get_param_value("signature"), req.get_param_value("timestamp"),
                           req.get_param_value("nonce"), req.get_param_value("echostr"));
    if (secrets.wechat_token.empty() || !echo.ok()) {
      counters.forged.fetch_add(1);
      return send_error(res, 401, "unauthenticated", "signature does not match");
    }
    res.set_content(echo.value(), "text/plain");
  });

  s.Post("/callbacks/wechat", [&p, &counters, secrets](const httplib::Request& req, httplib::Response& res) {
    const std::string ts = req.get_param_value("timestamp");
    if (secrets.wechat_token.empty() ||
        !wechat::verify_callback_signature(secrets.wechat_token, ts, req.get_param_value("nonce"),
                                           req.get_param_value("signature")) ||
        !wechat::callback_timestamp_fresh(ts, now_unix_ms() / 1000)) {
      counters.forged.fetch_add(1);
      spdlog::warn("callback refused: wechat push from {} with a bad or stale signature", req.remote_addr);
      return send_error(res, 401, "unauthenticated", "signature does not match");
    }
    if (refused_as_too_large(req, res)) return;
    auto push = wechat::parse_template_send_job_finish(req.body);
    if (!push.ok()) {
      // Other events (subscriptions, menu clicks) are not ours; a malformed job-finish push would not parse when
      // pushed again. Either way acknowledge, so WeChat does not retry; the malformed one is logged and counted.
      if (push.error().code != "other_event") log_refused("WeChat", {push.error().message}, counters);
      res.set_content("success", "text/plain");
      return;
    }
    ReceiptUpdate u;
    u.key = "wechat:" + push->msg_id;
    u.channel = kChannelWechat;
    u.delivered = push->delivered;
    u.reason = push->status;
    u.provider_time_ms = push->create_time * 1000;
    u.raw = req.body;
    // The signature does not cover the body: the first body a signature (its timestamp and nonce, under our one
    // token) comes with is the only one it vouches for. Checked in the receipts' lookup round trip.
    DeliveryStore::CallbackBinding binding{"wechat:" + ts + ":" + req.get_param_value("nonce"), sha256_hex(req.body)};
    if (finish(res, p, {u}, "success", "text/plain", std::move(binding)) == Finished::kSignatureReused) {
      counters.forged.fetch_add(1);
      spdlog::warn("callback refused: wechat push from {} reuses the signature of another push", req.remote_addr);
    }
  });
}

}  // namespace songda
