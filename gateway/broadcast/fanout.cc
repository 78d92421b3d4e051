#include "gateway/broadcast/fanout.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "gateway/core/contain.h"
#include "gateway/core/crypto.h"
#include "gateway/core/text.h"

namespace songda::broadcast {
namespace {

std::string default_instance_id() {
  char host[256] = {0};
  if (gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  return std::string(host) + ":" + std::to_string(getpid()) + ":" + to_hex(random_bytes(4));
}

void note_peak(std::atomic<std::uint64_t>& peak, std::uint64_t n) {
  std::uint64_t cur = peak.load();
  while (n > cur && !peak.compare_exchange_weak(cur, n)) {
  }
}

}  // namespace

std::vector<EvidenceLeaf> submission_evidence(const BroadcastSpec& spec, const std::string& digest, long long members,
                                              std::int64_t now_ms, const ledger::EvidenceContext& ctx) {
  const CaseEvent event = page_event(spec, digest, {});
  auto records = ledger::accepted_records(event, Plan{}, now_ms, ctx);
  for (auto& r : records) {
    if (r.type != evidence::EvidenceType::kSubmissionAccepted) continue;
    r.details.erase("deliveries");
    r.details.erase("unreachable_recipients");
    r.details["recipients"] = members;
    r.details["broadcast"] = {{"id", spec.id},
                              {"group_id", spec.group_id},
                              {"members", members},
                              {"channels", spec.channels},
                              {"template", spec.template_name}};
  }
  return ledger::to_leaves(records);
}

Fanout::Fanout(BroadcastStore& broadcasts, DeliveryStore& store, const Config& config, PlanOptions plan_options,
               FanoutOptions options)
    : broadcasts_(broadcasts),
      store_(store),
      config_(config),
      plan_options_(std::move(plan_options)),
      options_(std::move(options)) {
  if (options_.instance_id.empty()) options_.instance_id = default_instance_id();
  options_.page_size = std::clamp(options_.page_size, 1, 5000);
}

const Config& Fanout::routes_for(const BroadcastSpec& spec) {
  auto it = routes_.find(spec.id);
  if (it == routes_.end()) {
    if (routes_.size() > 64) routes_.clear();
    it = routes_.emplace(spec.id, route_config(config_, spec)).first;
  }
  return it->second;
}

Result<int> Fanout::run_once(std::int64_t now_ms) {
  auto held = broadcasts_.hold_lease(options_.instance_id, options_.lease_ttl_ms);
  if (!held.ok()) return held.error();
  if (!held.value()) return 0;
  auto ids = broadcasts_.active();
  if (!ids.ok()) return ids.error();
  int done = 0;
  for (const auto& id : ids.value()) {
    auto rec = broadcasts_.get(id);
    if (!rec.ok()) {
      if (rec.error().retryable) return rec.error();
      // A record that does not read back (a bug, or written by a newer version) must not hold up the broadcasts
      // after it: it fails alone, with the reason.
      const Error e = internal_error("broadcast " + id, "its stored record does not read: " + rec.error().message);
      spdlog::error("{}", e.message);
      if (auto s = broadcasts_.fail(id, e.message, now_unix_ms()); !s.ok()) return s.error();
      continue;
    }
    if (!rec.value()) continue;
    const BroadcastRecord& b = *rec.value();
    Result<int> r = 0;
    if (b.state == "running") {
      r = fan_out(b, now_ms);
    } else if (b.state == "cancelling") {
      r = cancel(b, now_ms);
    } else if (b.state == "dispatching") {
      auto fin = broadcasts_.finish_if_done(id, now_unix_ms());
      if (!fin.ok()) return fin.error();
      if (fin.value()) {
        spdlog::info("broadcast {}: finished ({} members)", id, b.members);
        routes_.erase(id);
        ++done;
      }
    }
    if (!r.ok()) {
      if (r.error().retryable) return r.error();
      spdlog::error("broadcast {}: failed: {}", id, r.error().message);
      if (auto s = broadcasts_.fail(id, r.error().message, now_unix_ms()); !s.ok()) return s.error();
      continue;
    }
    done += r.value();
  }
  return done;
}

Result<int> Fanout::fan_out(const BroadcastRecord& b, std::int64_t now_ms) {
  const BroadcastSpec& spec = b.spec;
  const Config& routes = routes_for(spec);
  long long cursor = b.cursor;
  int pages = 0;
  while (cursor < b.members && pages < options_.pages_per_pass) {
    if (pages > 0) {  // renew between pages; a lost lease ends the pass (the other holder continues)
      auto held = broadcasts_.hold_lease(options_.instance_id, options_.lease_ttl_ms);
      if (!held.ok()) return held.error();
      if (!held.value()) return pages;
      // A cancel asked during the pass stops it here: no page is planned after it (the page being recorded when it
      // came is covered by the cancel pass, which reaches one page beyond the cursor).
      auto state = broadcasts_.state(spec.id);
      if (!state.ok()) return state.error();
      stats_.redis_calls.fetch_add(1);
      if (state.value() != "running") return pages;
    }
    auto raw = broadcasts_.read_page(spec.id, cursor, options_.page_size);
    if (!raw.ok()) return raw.error();
    stats_.redis_calls.fetch_add(1);
    if (raw->empty()) {
      return Error::permanent("snapshot_short", "the membership snapshot ends at " + std::to_string(cursor) + " of " +
                                                    std::to_string(b.members) + " members");
    }
    std::vector<Recipient> members;
    members.reserve(raw->size());
    std::vector<std::string> unreachable;  // the page's members no delivery can be planned for
    for (const auto& [mid, json] : raw.value()) {
      auto m = member_from_json(nlohmann::json::parse(json, nullptr, false));
      if (!m.ok()) {
        spdlog::error("broadcast {}: member {} unreadable in the snapshot ({}); counted unreachable", spec.id, mid,
                      m.error().message);
        unreachable.push_back(mid);
        continue;
      }
      members.push_back(std::move(m->recipient));
    }
    const long long page_len = static_cast<long long>(raw->size());
    note_peak(stats_.peak_in_flight, static_cast<std::uint64_t>(page_len));
    raw->clear();

    auto page = plan_page(spec, b.digest, routes, plan_options_, std::move(members), cursor);
    if (!page.ok()) return page.error();
    const std::int64_t now = now_unix_ms();
    std::vector<EventToRecord> batch;
    if (cursor == 0 && spec.origin == "api") {
      EventToRecord head;  // the broadcast's own acceptance, once (a dup when page 0 is recorded again)
      head.event_id = spec.event_id;
      head.digest = b.digest;
      head.court_id = spec.court_id;
      head.case_number = spec.reference;
      if (evidence_) head.evidence = submission_evidence(spec, b.digest, b.members, now, *evidence_);
      batch.push_back(std::move(head));
    }
    EventToRecord& rec = page->record;
    if (evidence_) {
      for (auto& leaf : ledger::accepted_evidence(page->event, page->plan, now, *evidence_)) {
        if (!leaf.delivery_id.starts_with("evt:")) rec.evidence.push_back(std::move(leaf));
      }
    }
    rec.deliveries = std::move(page->plan.deliveries);
    rec.due_ms.reserve(rec.deliveries.size());
    for (const auto& d : rec.deliveries) rec.due_ms.push_back(due_policy_ ? due_policy_(d, now) : now);
    const auto planned = static_cast<long long>(rec.deliveries.size());
    unreachable.insert(unreachable.end(), page->plan.unreachable.begin(), page->plan.unreachable.end());
    batch.push_back(std::move(rec));
    auto outcomes = store_.record_batch(batch, now);
    if (!outcomes.ok()) return outcomes.error();
    stats_.redis_calls.fetch_add(1);
    const RecordOutcome o = outcomes->back();
    if (o == RecordOutcome::kConflict) {
      return Error::permanent("conflict", "page at " + std::to_string(cursor) +
                                              " was recorded before with other members; the snapshot changed");
    }
    if (o == RecordOutcome::kNew) {
      stats_.pages.fetch_add(1);
      stats_.deliveries.fetch_add(static_cast<std::uint64_t>(planned));
    } else {
      stats_.pages_resumed.fetch_add(1);
    }
    stats_.members.fetch_add(static_cast<std::uint64_t>(page_len));
    if (page_hook_ && !page_hook_(spec.id, cursor)) return pages + 1;
    auto moved = broadcasts_.advance_cursor(spec.id, cursor, cursor + page_len, planned, unreachable,
                                            options_.instance_id, now_unix_ms());
    if (!moved.ok()) return moved.error();
    stats_.redis_calls.fetch_add(1);
    if (!moved.value()) return pages + 1;  // lease lost, or someone else moved it: look again next pass
    cursor += page_len;
    ++pages;
  }
  if (cursor >= b.members) {
    spdlog::info("broadcast {}: fan-out complete, {} members planned ({} ms since start)", spec.id, b.members,
                 now_ms - b.created_ms);
  }
  return pages;
}

Result<int> Fanout::cancel(const BroadcastRecord& b, std::int64_t now_ms) {
  const BroadcastSpec& spec = b.spec;
  long long cancelled = 0;
  const std::string detail = "broadcast " + spec.id + " cancelled before this was sent";
  // Up to one page past the cursor: a page recorded whose cursor move did not happen (a crash, a lost lease, a
  // Redis error in between) is queued all the same. Its ids not recorded are not there to cancel.
  const long long end = std::min<long long>(b.members, b.cursor + options_.page_size);
  for (long long from = 0; from < end; from += options_.page_size) {
    auto raw = broadcasts_.read_page(spec.id, from, options_.page_size);
    if (!raw.ok()) return raw.error();
    std::vector<std::string> ids;
    ids.reserve(raw->size() * spec.channels.size());
    for (const auto& entry : raw.value()) {
      for (const auto& ch : spec.channels) ids.push_back(delivery_id(spec.event_id, entry.first, ch));
    }
    auto n = store_.cancel_unclaimed(ids, now_ms, detail);
    if (!n.ok()) return n.error();
    cancelled += n.value();
  }
  if (auto s = broadcasts_.finish_cancel(spec.id, cancelled, now_unix_ms()); !s.ok()) return s.error();
  stats_.cancelled.fetch_add(static_cast<std::uint64_t>(cancelled));
  spdlog::info("broadcast {}: cancelled; {} deliveries not yet sent were taken off the queues", spec.id, cancelled);
  routes_.erase(spec.id);
  return 1;
}

void Fanout::run(const std::atomic<bool>& stop) {
  int backoff_ms = options_.poll_ms;
  while (!stop.load()) {
    auto r = contain("page", [&] { return run_once(now_unix_ms()); });
    if (!r.ok()) {
      spdlog::warn("broadcast fan-out: {} ({}); trying again in {} ms", r.error().message, r.error().code, backoff_ms);
      backoff_ms = std::min(backoff_ms * 2, 5000);
    } else {
      backoff_ms = options_.poll_ms;
      if (r.value() > 0) continue;  // more work may be waiting
    }
    for (int waited = 0; waited < backoff_ms && !stop.load(); waited += 50) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  broadcasts_.release_lease(options_.instance_id);
}

}  // namespace songda::broadcast
