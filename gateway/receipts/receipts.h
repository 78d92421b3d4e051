// Receipts: provider delivery reports (HTTP callbacks) move a delivery to
// DELIVERED or FAILED with the provider's verbatim reason and time. A repeated
// receipt changes nothing (status moves only forward; evidence is appended only
// when the status changed). A receipt naming no delivery we know yet (the
// provider can be faster than our own bookkeeping, or a crash lost the send's
// outcome) is parked in Redis, acknowledged, and applied by retry_parked()
// once its delivery is known; providers push only a few times, so asking them
// to push again would lose it. One that still names nothing after 7 days is
// moved aside (sd:rcpt:unmatched) and no longer tried.
//
// Callback authentication: Aliyun and Tencent pushes carry no signature, so
// their URLs carry a secret, ?key=<SONGDA_CALLBACK_KEY>; WeChat pushes are
// signed with the account's callback token. WeChat's signature covers only the
// timestamp and nonce, not the body, so each signature is bound to the body it
// first came with (Redis, 15 min): the same signature with another body is a
// forgery. Anything else gets 401 and is counted (songda_callbacks_forged_total).
// A push too large or with elements that do not parse is answered 400/413 or,
// for its bad elements, logged and counted (songda_receipts_refused_total).
//
// Thread-safety: ReceiptProcessor is thread-safe; handlers run on HTTP threads.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "gateway/http/server.h"
#include "gateway/store/store.h"

namespace songda {

struct ReceiptUpdate {
  std::string key;      // "aliyun:<BizId>:<phone>", "tencent:<sid>", "wechat:<MsgID>"
  std::string channel;  // sms | wechat
  bool delivered = false;
  std::string reason;  // provider's words, verbatim (err_code + err_msg, errmsg, Status)
  std::int64_t provider_time_ms = 0;
  std::string raw;  // the receipt element as received (hashed into evidence)
};

struct ReceiptCounters {
  std::atomic<std::uint64_t> received{0};
  std::atomic<std::uint64_t> applied{0};
  std::atomic<std::uint64_t> unknown{0};        // parked: named no known delivery when they came
  std::atomic<std::uint64_t> applied_later{0};  // parked ones applied since
  std::atomic<std::uint64_t> given_up{0};       // parked ones that still named nothing after 7 days
  std::atomic<std::uint64_t> forged{0};
  std::atomic<std::uint64_t> refused{0};  // elements of an authenticated push that do not parse (logged)
};

// An error (Redis did not answer reading the delivery) fails the push: the provider pushes again. An exception (a bug)
// is contained: the receipt is applied without its record, and the delivery's timeline says why.
using ReceiptEvidenceMaker = std::function<Result<std::vector<EvidenceLeaf>>(
    const std::string& delivery_id, const ReceiptUpdate&, std::int64_t now_ms)>;

class ReceiptProcessor {
 public:
  ReceiptProcessor(DeliveryStore& store, ReceiptCounters& counters) : store_(store), counters_(counters) {}
  // `prepare`, if given, is called first with the delivery ids of all the receipts a maker will be called for
  // (to read what the maker needs in one go).
  void set_evidence(ReceiptEvidenceMaker maker, std::function<void(const std::vector<std::string>& ids)> prepare = {}) {
    evidence_ = std::move(maker);
    prepare_evidence_ = std::move(prepare);
  }
  // Two round trips for the whole push (a third to park the unknown ones). Returns how many were parked.
  // Pushes that come while another is being applied are applied together, in one lookup and one script call
  // (group commit: WeChat pushes one receipt per request); each caller still gets its own push's result, and
  // returns only once its receipts are written.
  // `binding`, for a signed push whose signature does not cover its body (WeChat): checked in the lookup's round
  // trip; when the signature came with another body before, nothing is applied and the error is
  // "signature_reused" (a forgery: answer 401).
  Result<int> apply(const std::vector<ReceiptUpdate>& updates, std::int64_t now_ms,
                    std::optional<DeliveryStore::CallbackBinding> binding = std::nullopt);
  // Applies parked receipts whose delivery is known by now (up to 500 per call; each tried again after as long
  // as it has been parked, 1 s to 10 min). Returns how many it applied.
  Result<int> retry_parked(std::int64_t now_ms);

 private:
  struct Push;  // one caller's push waiting to be applied
  struct Settled {
    std::vector<bool> matched;  // per update: its key named a delivery, and it was applied
    std::vector<bool> bound;    // per binding: not a reused signature (its updates were skipped when false)
  };
  // Applies the receipts whose key names a delivery, except those of a binding that fails (binding_of[i]: the
  // index in `bindings` of update i's push, or -1; empty for none).
  Result<Settled> settle(const std::vector<ReceiptUpdate>& updates, std::int64_t now_ms,
                         const std::vector<DeliveryStore::CallbackBinding>& bindings = {},
                         const std::vector<int>& binding_of = {});
  // Applies `pushes` together and sets each one's result.
  void apply_together(const std::vector<std::shared_ptr<Push>>& pushes, std::int64_t now_ms);
  DeliveryStore& store_;
  ReceiptCounters& counters_;
  ReceiptEvidenceMaker evidence_;
  std::function<void(const std::vector<std::string>&)> prepare_evidence_;
  std::mutex mu_;
  std::condition_variable applied_;
  std::vector<std::shared_ptr<Push>> waiting_;  // under mu_
  bool applying_ = false;                       // under mu_: a caller is applying a group
};

struct CallbackSecrets {
  std::string sms_key;       // SONGDA_CALLBACK_KEY: ?key= on Aliyun/Tencent callback URLs
  std::string wechat_token;  // <wechat credentials_env>_CALLBACK_TOKEN
};

// Adds /callbacks/aliyun/sms-report, /callbacks/tencent/sms-status and /callbacks/wechat (GET echo, POST push).
void register_callbacks(ApiServer& server, ReceiptProcessor& processor, ReceiptCounters& counters,
                        const CallbackSecrets& secrets);

}  // namespace songda
