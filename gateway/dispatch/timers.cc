#include "gateway/dispatch/timers.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <thread>

#include "gateway/core/text.h"

namespace songda {

Result<int> FallbackTimers::run_once(std::int64_t now_ms) {
  auto fired = store_.fire_due_timers(now_ms, 500);
  if (!fired.ok()) return fired.error();
  std::vector<EvidenceLeaf> leaves;
  for (const auto& t : fired.value()) {
    (t.released ? released_ : cancelled_).fetch_add(1);
    spdlog::info("fallback {}: {} ({} was {})", t.released ? "released" : "cancelled", t.delivery_id, t.from_id,
                 t.from_status);
    if (evidence_) {
      for (auto& l : evidence_(t, now_ms)) leaves.push_back(std::move(l));
    }
  }
  if (auto s = store_.append_evidence(leaves); !s.ok()) return s.error();
  return static_cast<int>(fired->size());
}

void FallbackTimers::run(const std::atomic<bool>& stop, int poll_ms) {
  while (!stop.load()) {
    auto n = run_once(now_unix_ms());
    if (!n.ok()) spdlog::error("fallback timers: {} ({})", n.error().message, n.error().code);
    if (!n.ok() || n.value() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(poll_ms));
  }
}

}  // namespace songda
