// Fallback timers: every instance runs this loop; each due timer fires exactly
// once across all of them (the Redis script removes it as it acts). A released
// fallback goes to its channel's queue; a cancelled one is recorded as such.
// Its FALLBACK evidence is appended by a second script that also marks the
// timer settled; a timer fired by an instance that died before that is found
// unsettled 10 s later by any instance, and its evidence appended then, once.
//
// Thread-safety: run() on one thread per process.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <vector>

#include "gateway/store/store.h"

namespace songda {

// An error (Redis did not answer reading the delivery) ends the round: its timers are settled by a later one. An
// exception (a bug) is contained: that timer is settled without its record, and the error logged and counted.
using FallbackEvidenceMaker =
    std::function<Result<std::vector<EvidenceLeaf>>(const TimerOutcome&, std::int64_t now_ms)>;

class FallbackTimers {
 public:
  explicit FallbackTimers(DeliveryStore& store) : store_(store) {}
  void set_evidence(FallbackEvidenceMaker maker) { evidence_ = std::move(maker); }
  // Fires what is due now; returns how many fired.
  Result<int> run_once(std::int64_t now_ms);
  void run(const std::atomic<bool>& stop, int poll_ms);
  [[nodiscard]] std::uint64_t released() const { return released_.load(); }
  [[nodiscard]] std::uint64_t cancelled() const { return cancelled_.load(); }

 private:
  DeliveryStore& store_;
  FallbackEvidenceMaker evidence_;
  std::atomic<std::uint64_t> released_{0};
  std::atomic<std::uint64_t> cancelled_{0};
};

}  // namespace songda
