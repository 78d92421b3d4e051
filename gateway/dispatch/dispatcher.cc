#include "gateway/dispatch/dispatcher.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <thread>

#include "gateway/core/text.h"
#include "gateway/dispatch/quiet_hours.h"

namespace songda {

std::int64_t RetryPolicy::delay_ms(int attempts, std::mt19937_64& rng) const {
  std::int64_t cap = base_ms;
  for (int i = 1; i < attempts && cap < max_ms; ++i) cap *= 2;
  cap = std::min(cap, max_ms);
  std::uniform_int_distribution<std::int64_t> dist(cap / 2, cap);
  return dist(rng);
}

Dispatcher::Dispatcher(DeliveryStore& store, DispatchConfig config, RetryPolicy retry, DispatchCounters& counters)
    : store_(store), config_(config), retry_(retry), counters_(counters) {}

Result<int> Dispatcher::run_once(Channel& channel, std::int64_t now_ms) {
  const std::string ch(channel.name());
  const auto rate = rates_.find(ch);
  auto claimed = store_.claim_due(ch, now_ms, config_.lease_ms, config_.batch, rate == rates_.end() ? 0 : rate->second);
  if (!claimed.ok()) return claimed.error();
  if (claimed->empty()) return 0;

  // A delivery whose lease ran out more often than it may be attempted (its outcome could not be recorded,
  // or instances kept dying mid-send) is not sent again: each resend could be a real second SMS.
  std::vector<ClaimedDelivery> exhausted;
  std::vector<ClaimedDelivery> sendable;
  for (auto& c : claimed.value()) (c.attempts > retry_.max_attempts ? exhausted : sendable).push_back(std::move(c));
  if (!exhausted.empty()) {
    std::vector<Completion> give_up;
    for (const auto& c : exhausted) {
      Completion g;
      g.id = c.delivery.id;
      g.channel = ch;
      g.status = "FAILED";
      g.detail = "attempts exhausted (" + std::to_string(c.attempts) + "): outcomes could not be recorded";
      give_up.push_back(std::move(g));
      counters_.failed.fetch_add(1);
    }
    if (auto s = store_.complete_batch(give_up, now_ms); !s.ok()) return s.error();
    if (sendable.empty()) return static_cast<int>(exhausted.size());
  }
  claimed.value() = std::move(sendable);

  std::vector<Delivery> batch;
  batch.reserve(claimed->size());
  for (auto& c : claimed.value()) batch.push_back(c.delivery);
  const auto outcomes = channel.send(batch);

  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::vector<Completion> completions;
  completions.reserve(batch.size());
  const std::int64_t done_ms = now_unix_ms();
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const Delivery& d = batch[i];
    const SendOutcome o =
        i < outcomes.size() ? outcomes[i] : SendOutcome{SendOutcome::Kind::kRetryable,
                                                        "",
                                                        "",
                                                        "no_outcome",
                                                        "channel returned fewer outcomes than deliveries",
                                                        "",
                                                        0};
    Completion c;
    c.id = d.id;
    c.channel = ch;
    c.provider = o.provider;
    c.provider_message_id = o.provider_message_id;
    c.segments = o.segments;
    const int attempts = (*claimed)[i].attempts;
    switch (o.kind) {
      case SendOutcome::Kind::kDelivered:
        c.status = "DELIVERED";
        c.detail = o.provider + " " + o.code;
        counters_.delivered.fetch_add(1);
        break;
      case SendOutcome::Kind::kAccepted:
        c.status = "SENT";
        c.detail = o.provider + " accepted " + o.provider_message_id;
        if (receipt_key_) c.receipt_key = receipt_key_(o);
        counters_.sent.fetch_add(1);
        break;
      case SendOutcome::Kind::kRetryable:
        if (attempts >= retry_.max_attempts) {
          c.status = "FAILED";
          c.detail = "gave up after " + std::to_string(attempts) + " attempts; last: " + o.code + " " + o.message;
          counters_.failed.fetch_add(1);
        } else {
          c.retry_at_ms = quiet_hours_release(quiet_, ch, d.urgent, done_ms + retry_.delay_ms(attempts, rng));
          c.detail = "attempt " + std::to_string(attempts) + ": " + o.code + " " + o.message;
          counters_.retried.fetch_add(1);
        }
        break;
      case SendOutcome::Kind::kPermanent:
        c.status = "FAILED";
        c.detail = o.code + " " + o.message;
        counters_.failed.fetch_add(1);
        break;
    }
    if (evidence_ && c.retry_at_ms == 0) c.evidence = evidence_(d, o, c.status, done_ms);
    completions.push_back(std::move(c));
  }
  // If this fails the lease runs out and the deliveries are sent again with the same idempotency key.
  if (auto s = store_.complete_batch(completions, done_ms); !s.ok()) return s.error();
  return static_cast<int>(batch.size());
}

void Dispatcher::run(Channel& channel, const std::atomic<bool>& stop) {
  int backoff_ms = config_.poll_ms;
  while (!stop.load()) {
    auto n = run_once(channel, now_unix_ms());
    if (!n.ok()) {
      spdlog::error("dispatch {}: {} ({})", channel.name(), n.error().message, n.error().code);
      std::this_thread::sleep_for(std::chrono::milliseconds(backoff_ms));
      backoff_ms = std::min(backoff_ms * 2, 5000);
      continue;
    }
    backoff_ms = config_.poll_ms;
    if (n.value() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(config_.poll_ms));
  }
}

}  // namespace songda
