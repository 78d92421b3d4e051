#include "gateway/dispatch/dispatcher.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "gateway/core/contain.h"
#include "gateway/core/text.h"
#include "gateway/dispatch/quiet_hours.h"

namespace songda {

namespace {
// Deliveries remembered as having been in a batch whose send threw (each ~100 bytes).
constexpr std::size_t kMaxSuspects = 10'000;
}  // namespace

std::int64_t RetryPolicy::delay_ms(int attempts, std::mt19937_64& rng) const {
  std::int64_t cap = base_ms;
  for (int i = 1; i < attempts && cap < max_ms; ++i) cap *= 2;
  cap = std::min(cap, max_ms);
  std::uniform_int_distribution<std::int64_t> dist(cap / 2, cap);
  return dist(rng);
}

Dispatcher::Dispatcher(DeliveryStore& store, DispatchConfig config, RetryPolicy retry, DispatchCounters& counters)
    : store_(store), config_(config), retry_(retry), counters_(counters) {}

Completion Dispatcher::completion_for(const std::string& channel, const Delivery& d, const SendOutcome& o, int attempts,
                                      std::int64_t done_ms) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  Completion c;
  c.id = d.id;
  c.channel = channel;
  c.provider = o.provider;
  c.provider_message_id = o.provider_message_id;
  c.segments = o.segments;
  // The timeline is shown to clerks, who see the address masked: a server that repeats it (an SMTP 550 names the
  // mailbox) does not show it whole.
  const std::string said = mask_address_in(o.message, d.channel, d.address);
  switch (o.kind) {
    case SendOutcome::Kind::kDelivered:
      c.status = "DELIVERED";
      c.detail = o.provider + " " + o.code;
      counters_.delivered.fetch_add(1);
      break;
    case SendOutcome::Kind::kAccepted:
      c.status = "SENT";
      // The timeline is shown to clerks: the number inside an Aliyun message id ("<BizId>:<number>") is masked.
      c.detail = o.provider + " accepted " + masked_message_id(o.provider_message_id);
      if (receipt_key_) c.receipt_key = receipt_key_(o);
      counters_.sent.fetch_add(1);
      break;
    case SendOutcome::Kind::kRetryable:
      if (attempts >= retry_.max_attempts) {
        c.status = "FAILED";
        c.detail = "gave up after " + std::to_string(attempts) + " attempts; last: " + o.code + " " + said;
        counters_.failed.fetch_add(1);
      } else {
        c.retry_at_ms = quiet_hours_release(quiet_, channel, d.urgent, done_ms + retry_.delay_ms(attempts, rng));
        c.detail = "attempt " + std::to_string(attempts) + ": " + o.code + " " + said;
        counters_.retried.fetch_add(1);
      }
      break;
    case SendOutcome::Kind::kPermanent:
      c.status = "FAILED";
      c.detail = o.code + " " + said;
      counters_.failed.fetch_add(1);
      break;
  }
  if (evidence_ && c.retry_at_ms == 0) {
    // The outcome is a fact (the provider has the message, or refused it): it is recorded even when its record
    // cannot be made (a bug), with the reason in the timeline. Thrown on, it would be resent or failed.
    auto leaves = contain("outcome evidence",
                          [&]() -> Result<std::vector<EvidenceLeaf>> { return evidence_(d, o, c.status, done_ms); });
    if (leaves.ok()) {
      c.evidence = std::move(leaves.value());
    } else {
      spdlog::error("dispatch {}: delivery {} is {} without its evidence record: {}", channel, d.id, c.status,
                    leaves.error().message);
      c.detail += "; recorded without its evidence record: " + leaves.error().message;
    }
  }
  return c;
}

bool Dispatcher::suspected(const std::string& id) {
  const std::lock_guard lock(suspects_mu_);
  return suspects_.contains(id);
}

void Dispatcher::send_group(Channel& channel, std::span<const ClaimedDelivery> group,
                            std::vector<Completion>& completions) {
  if (group.empty()) return;
  const std::string ch(channel.name());
  std::vector<Delivery> batch;
  batch.reserve(group.size());
  for (const auto& c : group) batch.push_back(c.delivery);
  std::vector<SendOutcome> outcomes;
  try {
    outcomes = channel.send(batch);
  } catch (...) {
    // The provider may have any of them: each is left in doubt, and sent on its own once asked about.
    const Error e = internal_error("sending", std::current_exception());
    spdlog::error("dispatch {}: {} ({} deliveries left in doubt)", ch, e.message, batch.size());
    const std::int64_t ask_at = now_unix_ms() + config_.in_doubt_wait_ms;
    {
      const std::lock_guard lock(suspects_mu_);
      if (suspects_.size() > kMaxSuspects) suspects_.clear();  // forgetting only costs batching them again
      for (const auto& c : group) suspects_.insert(c.delivery.id);
    }
    for (const auto& c : group) {
      Completion w;
      w.id = c.delivery.id;
      w.channel = ch;
      w.retry_at_ms = ask_at;
      w.still_in_doubt = true;
      w.detail = "attempt " + std::to_string(c.attempts) +
                 " cut off by an internal error; asking the provider before sending again: " + e.message;
      completions.push_back(std::move(w));
    }
    return;
  }
  {
    const std::lock_guard lock(suspects_mu_);
    if (!suspects_.empty()) {
      for (const auto& c : group) suspects_.erase(c.delivery.id);
    }
  }
  const std::int64_t done_ms = now_unix_ms();
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const SendOutcome o =
        i < outcomes.size() ? outcomes[i] : SendOutcome{SendOutcome::Kind::kRetryable,
                                                        "",
                                                        "",
                                                        "no_outcome",
                                                        "channel returned fewer outcomes than deliveries",
                                                        "",
                                                        0};
    completions.push_back(completion_for(ch, batch[i], o, group[i].attempts, done_ms));
  }
}

Result<int> Dispatcher::run_once(Channel& channel, std::int64_t now_ms) {
  const std::string ch(channel.name());
  const auto rate = rates_.find(ch);
  auto claimed = store_.claim_due(ch, now_ms, config_.lease_ms, config_.batch, rate == rates_.end() ? 0 : rate->second);
  if (!claimed.ok()) return claimed.error();
  if (claimed->empty()) return 0;
  const auto handled = static_cast<int>(claimed->size());

  std::vector<Completion> completions;
  std::vector<ClaimedDelivery> sendable;
  std::vector<ClaimedDelivery> alone;  // each sent on its own: it was in a batch whose send threw
  for (auto& c : claimed.value()) {
    if (!c.unreadable.empty()) {
      // Not sent (there is nothing to send) and not failed (a newer instance may read it): it waits out its lease
      // in the queue, and every claim of it is an error an operator sees.
      const Error e = internal_error("dispatch " + ch + ": delivery " + c.delivery.id,
                                     "its stored record does not read (" + c.unreadable +
                                         "); it is left in the queue for an instance that reads it");
      spdlog::error("{}", e.message);
      continue;
    }
    // A delivery whose lease ran out more often than it may be attempted (its outcome could not be recorded,
    // or instances kept dying mid-send) is not sent again: each resend could be a real second SMS.
    // Failed as any final failure is, with its DELIVERY_FAILED evidence (a fallback may follow from it).
    if (c.attempts > retry_.max_attempts) {
      SendOutcome spent;
      spent.kind = SendOutcome::Kind::kRetryable;
      spent.code = "attempts_exhausted";
      spent.message = "attempts exhausted (" + std::to_string(c.attempts) +
                      "): outcomes could not be recorded (the process stopped, or an internal error cut the attempt "
                      "off)";
      completions.push_back(completion_for(ch, c.delivery, spent, c.attempts, now_unix_ms()));
      continue;
    }
    // Inside the quiet window nothing non-urgent goes out on a quiet channel, however it came due: a fallback
    // released by its timer or by a failure, a retry, an attempt in doubt. It waits for the window to end (an
    // attempt in doubt keeps its mark, so the provider is still asked first).
    if (const std::int64_t release = quiet_hours_release(quiet_, ch, c.delivery.urgent, now_ms); release > now_ms) {
      Completion w;
      w.id = c.delivery.id;
      w.channel = ch;
      w.retry_at_ms = release;
      w.still_in_doubt = c.in_doubt_since_ms > 0;
      w.detail = "quiet hours: held until " + rfc3339_utc(release);
      completions.push_back(std::move(w));
      continue;
    }
    if (c.in_doubt_since_ms == 0) {
      sendable.push_back(std::move(c));
      continue;
    }
    // An earlier attempt died mid-send: the provider may have the message. Wait for its report to be in, then
    // ask it, and send only if it does not have it.
    const std::int64_t ask_at = c.in_doubt_since_ms + config_.in_doubt_wait_ms;
    if (now_ms < ask_at) {
      Completion w;
      w.id = c.delivery.id;
      w.channel = ch;
      w.retry_at_ms = ask_at;
      w.still_in_doubt = true;
      w.detail =
          "the attempt begun at " + std::to_string(c.in_doubt_since_ms) +
          " ms has no recorded outcome (the process stopped, or an internal error cut it off); asking the provider "
          "before sending again";
      completions.push_back(std::move(w));
      continue;
    }
    const Delivery one[] = {c.delivery};
    PriorSend p;
    try {
      const auto prior = channel.find_prior_sends(one, c.in_doubt_since_ms);
      if (!prior.empty()) p = prior.front();
    } catch (...) {
      p.kind = PriorSend::Kind::kUnknown;
      p.outcome.code = "internal_error";
      p.outcome.message = internal_error("asking the provider", std::current_exception()).message;
      spdlog::error("dispatch {}: {}", ch, p.outcome.message);
    }
    counters_.in_doubt_asked.fetch_add(1);
    if (p.kind == PriorSend::Kind::kSent) counters_.in_doubt_found.fetch_add(1);
    switch (p.kind) {
      case PriorSend::Kind::kNotSent:
        (suspected(c.delivery.id) ? alone : sendable).push_back(std::move(c));
        break;
      case PriorSend::Kind::kSent:
        completions.push_back(completion_for(ch, c.delivery, p.outcome, c.attempts, now_unix_ms()));
        break;
      case PriorSend::Kind::kUnknown: {
        thread_local std::mt19937_64 rng{std::random_device{}()};
        Completion w;
        w.id = c.delivery.id;
        w.channel = ch;
        w.retry_at_ms = now_unix_ms() + retry_.delay_ms(c.attempts, rng);
        w.still_in_doubt = true;
        w.detail =
            "provider cannot tell yet whether it has the earlier attempt: " + p.outcome.code + " " + p.outcome.message;
        completions.push_back(std::move(w));
        break;
      }
    }
  }

  send_group(channel, sendable, completions);
  for (const auto& c : alone) send_group(channel, std::span(&c, 1), completions);
  // If this fails the lease runs out, and the next claim finds the attempts in doubt.
  if (auto s = store_.complete_batch(completions, now_unix_ms()); !s.ok()) return s.error();
  return handled;
}

void Dispatcher::run(Channel& channel, const std::atomic<bool>& stop) {
  int backoff_ms = config_.poll_ms;
  while (!stop.load()) {
    // A batch cut off by an exception is left to its lease, as if the process had stopped mid-send.
    auto n = contain("batch", [&] { return run_once(channel, now_unix_ms()); });
    if (!n.ok()) {
      spdlog::error("dispatch {}: {} ({})", channel.name(), n.error().message, n.error().code);
      std::this_thread::sleep_for(std::chrono::milliseconds(backoff_ms));
      backoff_ms = std::min(backoff_ms * 2, 5000);
      continue;
    }
    backoff_ms = config_.poll_ms;
    if (n.value() > 0) continue;
    const std::string name(channel.name());
    std::unique_lock lock(wake_mu_);
    wake_cv_.wait_for(lock, std::chrono::milliseconds(config_.poll_ms),
                      [&] { return woken_.contains(name) || stop.load(); });
    woken_.erase(name);
  }
}

void Dispatcher::wake(const std::string& channel) {
  {
    const std::lock_guard lock(wake_mu_);
    woken_.insert(channel);
  }
  wake_cv_.notify_all();
}

}  // namespace songda
