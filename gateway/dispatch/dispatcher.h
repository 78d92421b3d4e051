// Dispatch: takes due deliveries of one channel from its durable Redis queue
// (a lease, so a crashed instance's work is resumed by another after lease_ms),
// hands them to the channel, and records each outcome in one round trip:
//   delivered -> DELIVERED;  accepted -> SENT (a receipt will follow);
//   retryable -> scheduled again with exponential backoff and jitter, until
//                max_attempts, then FAILED;  permanent -> FAILED, reason verbatim.
// The same delivery id goes to the provider on every attempt, as its
// idempotency key. An attempt cut off by a crash (claimed, never completed)
// is in doubt: after dispatch.in_doubt_wait_ms the channel asks the provider
// whether it has it (Channel::find_prior_sends) and sends only if not.
//
// Thread-safety: run_once() may be called from several threads; each call
// claims disjoint deliveries.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "channels/channel.h"
#include "gateway/config/config.h"
#include "gateway/store/store.h"

namespace songda {

struct RetryPolicy {
  int max_attempts = 8;
  std::int64_t base_ms = 1000;
  std::int64_t max_ms = 5 * 60 * 1000;
  // Delay before attempt n+1 after n failed attempts: full jitter in [base·2^(n-1)/2, base·2^(n-1)], capped.
  std::int64_t delay_ms(int attempts, std::mt19937_64& rng) const;
};

// Builds the evidence of one outcome (DISPATCHED, PROVIDER_ACCEPTED, DELIVERED, DELIVERY_FAILED).
using OutcomeEvidenceMaker = std::function<std::vector<EvidenceLeaf>(const Delivery&, const SendOutcome&,
                                                                     const std::string& status, std::int64_t now_ms)>;

struct DispatchCounters {
  std::atomic<std::uint64_t> sent{0};
  std::atomic<std::uint64_t> delivered{0};
  std::atomic<std::uint64_t> retried{0};
  std::atomic<std::uint64_t> failed{0};
  std::atomic<std::uint64_t> in_doubt_asked{0};  // attempts cut off by a crash, looked up at the provider
  std::atomic<std::uint64_t> in_doubt_found{0};  // ... that the provider had: not sent again
};

class Dispatcher {
 public:
  Dispatcher(DeliveryStore& store, DispatchConfig config, RetryPolicy retry, DispatchCounters& counters);
  void set_evidence(OutcomeEvidenceMaker maker) { evidence_ = std::move(maker); }
  // Messages per second for a channel, shared by every instance (a Redis token bucket); 0 = unlimited.
  void set_channel_rate(const std::string& channel, double rate_per_sec) { rates_[channel] = rate_per_sec; }
  // Non-urgent deliveries on quiet channels are not sent inside the quiet window, however they came due (retries,
  // fallbacks released by a timer or a failure, attempts in doubt): they wait for the window to end.
  void set_quiet_hours(QuietHoursConfig q) { quiet_ = std::move(q); }
  // How a provider's receipt will name a sent delivery (e.g. "aliyun:<BizId>:<phone>"); "" = no receipt expected.
  void set_receipt_key(std::function<std::string(const SendOutcome&)> fn) { receipt_key_ = std::move(fn); }

  // One claim -> send -> complete cycle. Returns how many deliveries it handled.
  // A send() that throws (a bug: channels must not) leaves each delivery of its batch in doubt, asked about
  // after in_doubt_wait_ms; those the provider does not have are then sent each on its own, so a delivery that
  // makes the channel throw holds up only itself (until its attempts run out) and not the batch it came with.
  Result<int> run_once(Channel& channel, std::int64_t now_ms);

  // Loops run_once for the channel until stop; when idle, waits poll_ms or until wake(channel).
  void run(Channel& channel, const std::atomic<bool>& stop);
  // New deliveries are queued on `channel` (by this process): its idle loop claims now instead of at its next
  // poll. Other instances' deliveries are found by polling.
  void wake(const std::string& channel);

 private:
  Completion completion_for(const std::string& channel, const Delivery& d, const SendOutcome& o, int attempts,
                            std::int64_t done_ms);
  // channel.send(group) and a completion for each; see run_once for a send that throws.
  void send_group(Channel& channel, std::span<const ClaimedDelivery> group, std::vector<Completion>& completions);
  [[nodiscard]] bool suspected(const std::string& id);
  DeliveryStore& store_;
  DispatchConfig config_;
  RetryPolicy retry_;
  DispatchCounters& counters_;
  OutcomeEvidenceMaker evidence_;
  std::map<std::string, double> rates_;
  QuietHoursConfig quiet_;
  std::function<std::string(const SendOutcome&)> receipt_key_;
  std::mutex wake_mu_;
  std::condition_variable wake_cv_;
  std::set<std::string> woken_;  // under wake_mu_: channels with new deliveries since their loop last looked
  std::mutex suspects_mu_;
  std::set<std::string> suspects_;  // under suspects_mu_: in a batch whose send threw, not sent since (bounded)
};

}  // namespace songda
