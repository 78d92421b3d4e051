#include "gateway/dispatch/timers.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <thread>

#include "gateway/core/contain.h"
#include "gateway/core/text.h"

namespace songda {

namespace {
// A fired timer whose evidence is still missing this long after it fired lost its firer (a crash in between).
constexpr std::int64_t kUnsettledAfterMs = 10'000;
}  // namespace

Result<int> FallbackTimers::run_once(std::int64_t now_ms) {
  auto fired = store_.fire_due_timers(now_ms, 500);
  if (!fired.ok()) return fired.error();
  for (const auto& t : fired.value()) {
    (t.released ? released_ : cancelled_).fetch_add(1);
    spdlog::info("fallback {}: {} ({} was {})", t.released ? "released" : "cancelled", t.delivery_id, t.from_id,
                 t.from_status);
  }
  auto orphans = store_.unsettled_timers(now_ms - kUnsettledAfterMs, 100);
  if (!orphans.ok()) return orphans.error();
  std::vector<std::pair<std::string, std::vector<EvidenceLeaf>>> settled;
  for (const auto* list : {&fired.value(), &orphans.value()}) {
    for (const auto& t : *list) {
      if (!evidence_) {
        settled.emplace_back(t.delivery_id, std::vector<EvidenceLeaf>{});
        continue;
      }
      auto leaves = contain("fallback evidence", [&] { return evidence_(t, t.fired_ms); });
      if (!leaves.ok() && leaves.error().code != "internal_error") return leaves.error();
      if (!leaves.ok()) {
        // Settled all the same: otherwise it would be found unsettled, and fail, every round from now on.
        spdlog::error("fallback timers: {} settled without its evidence record: {}", t.delivery_id,
                      leaves.error().message);
        settled.emplace_back(t.delivery_id, std::vector<EvidenceLeaf>{});
        continue;
      }
      settled.emplace_back(t.delivery_id, std::move(leaves.value()));
    }
  }
  if (!orphans->empty())
    spdlog::warn("fallback timers: {} fired earlier without their evidence; recording it now", orphans->size());
  if (auto s = store_.settle_timers(settled); !s.ok()) return s.error();
  return static_cast<int>(fired->size());
}

void FallbackTimers::run(const std::atomic<bool>& stop, int poll_ms) {
  while (!stop.load()) {
    auto n = contain("round", [&] { return run_once(now_unix_ms()); });
    if (!n.ok()) spdlog::error("fallback timers: {} ({})", n.error().message, n.error().code);
    if (!n.ok() || n.value() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(poll_ms));
  }
}

}  // namespace songda
