#include "gateway/broadcast/repository.h"

#include <algorithm>

#include "gateway/core/text.h"
#include "gateway/store/store.h"

namespace songda::broadcast {
namespace {

using Json = nlohmann::json;

std::string group_base(const std::string& gid) { return "sd:grp:{" + gid + "}"; }
std::string bc_key(const std::string& bid) { return "sd:bc:{" + bid + "}"; }
constexpr const char* kActiveKey = "sd:bc:active";
constexpr const char* kLeaseKey = "sd:bc:lease";

Error unexpected(const std::string& what) {
  return Error::transient("redis_error", "unexpected Redis reply to " + what);
}

long long to_ll(const std::string& s) {
  try {
    return s.empty() ? 0 : std::stoll(s);
  } catch (...) {
    return 0;
  }
}

Json members_arg(const std::vector<Member>& members) {
  Json arr = Json::array();
  for (const auto& m : members) arr.push_back(Json::array({m.recipient.id, member_to_json(m).dump()}));
  return arr;
}

ImportCounts counts_of(const RedisReply& r) {
  ImportCounts c;
  if (r.elements.size() >= 4) {
    c.added = r.elements[1].integer;
    c.updated = r.elements[2].integer;
    c.total = r.elements[3].integer;
  }
  return c;
}

const LuaScript& put_group_script() {
  static const LuaScript s(R"LUA(
local base = 'sd:grp:{' .. ARGV[1] .. '}'
local cur = redis.call('HGET', base .. ':meta', 'court_id')
if cur and cur ~= ARGV[3] then return {'forbidden', 0, 0, 0} end
local members = cjson.decode(ARGV[7])
if ARGV[6] == '1' and #members > tonumber(ARGV[8]) then return {'too_large', 0, 0, 0} end
if not cur then redis.call('HSET', base .. ':meta', 'created_at', ARGV[5]) end
redis.call('HSET', base .. ':meta', 'name', ARGV[2], 'court_id', ARGV[3], 'court_name', ARGV[4], 'updated_at', ARGV[5])
redis.call('SADD', 'sd:grps:{' .. ARGV[3] .. '}', ARGV[1])
local added = 0
if ARGV[6] == '1' then
  redis.call('DEL', base .. ':ids', base .. ':m')
  for _, m in ipairs(members) do
    redis.call('ZADD', base .. ':ids', 0, m[1])
    redis.call('HSET', base .. ':m', m[1], m[2])
    added = added + 1
  end
end
return {'ok', added, 0, redis.call('ZCARD', base .. ':ids')}
)LUA");
  return s;
}

const LuaScript& upsert_script() {
  static const LuaScript s(R"LUA(
local base = 'sd:grp:{' .. ARGV[1] .. '}'
if redis.call('EXISTS', base .. ':meta') == 0 then return {'not_found', 0, 0, 0} end
local members = cjson.decode(ARGV[2])
local fresh = 0
for _, m in ipairs(members) do
  if redis.call('HEXISTS', base .. ':m', m[1]) == 0 then fresh = fresh + 1 end
end
if redis.call('ZCARD', base .. ':ids') + fresh > tonumber(ARGV[4]) then return {'too_large', 0, 0, 0} end
local added, updated = 0, 0
for _, m in ipairs(members) do
  if redis.call('HSET', base .. ':m', m[1], m[2]) == 1 then added = added + 1 else updated = updated + 1 end
  redis.call('ZADD', base .. ':ids', 0, m[1])
end
redis.call('HSET', base .. ':meta', 'updated_at', ARGV[3])
return {'ok', added, updated, redis.call('ZCARD', base .. ':ids')}
)LUA");
  return s;
}

const LuaScript& start_script() {
  static const LuaScript s(R"LUA(
local bk = 'sd:bc:{' .. ARGV[1] .. '}'
local existing = redis.call('HMGET', bk, 'digest', 'members')
if existing[1] then
  if existing[1] == ARGV[2] then return {'dup', tonumber(existing[2])} end
  return {'conflict', 0}
end
local gb = 'sd:grp:{' .. ARGV[4] .. '}'
local court = redis.call('HGET', gb .. ':meta', 'court_id')
if not court then return {'no_group', 0} end
if court ~= ARGV[5] then return {'forbidden', 0} end
local n = redis.call('ZCARD', gb .. ':ids')
if n == 0 then return {'empty_group', 0} end
redis.call('COPY', gb .. ':ids', bk .. ':ids', 'REPLACE')
redis.call('COPY', gb .. ':m', bk .. ':m', 'REPLACE')
redis.call('HSET', bk, 'digest', ARGV[2], 'spec', ARGV[3], 'state', 'running', 'members', n, 'cursor', 0,
           'planned', 0, 'unreachable', 0, 'cancelled', 0, 'created_at', ARGV[6])
redis.call('SADD', 'sd:bc:active', ARGV[1])
redis.call('ZADD', 'sd:bcs:{' .. ARGV[5] .. '}', ARGV[6], ARGV[1])
return {'new', n}
)LUA");
  return s;
}

const LuaScript& read_page_script() {
  static const LuaScript s(R"LUA(
local base = 'sd:bc:{' .. ARGV[1] .. '}'
local from = tonumber(ARGV[2])
local ids = redis.call('ZRANGE', base .. ':ids', from, from + tonumber(ARGV[3]) - 1)
if #ids == 0 then return {} end
local vals = redis.call('HMGET', base .. ':m', unpack(ids))
local out = {}
for i, id in ipairs(ids) do
  out[#out + 1] = id
  out[#out + 1] = vals[i] or ''
end
return out
)LUA");
  return s;
}

const LuaScript& advance_script() {
  static const LuaScript s(R"LUA(
if redis.call('GET', 'sd:bc:lease') ~= ARGV[6] then return 0 end
local bk = 'sd:bc:{' .. ARGV[1] .. '}'
local h = redis.call('HMGET', bk, 'cursor', 'members', 'state')
if tonumber(h[1]) ~= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', bk, 'cursor', ARGV[3])
redis.call('HINCRBY', bk, 'planned', ARGV[4])
redis.call('HINCRBY', bk, 'unreachable', ARGV[5])
-- ARGV[8..]: the page's unreachable member ids, named for the clerk who has to serve them otherwise
for i = 8, #ARGV, 1000 do
  local z = {}
  for j = i, math.min(#ARGV, i + 999) do z[#z + 1] = 0; z[#z + 1] = ARGV[j] end
  redis.call('ZADD', bk .. ':unreachable', unpack(z))
end
if tonumber(ARGV[3]) >= tonumber(h[2]) and h[3] == 'running' then
  redis.call('HSET', bk, 'state', 'dispatching', 'fanned_out_at', ARGV[7])
end
return 1
)LUA");
  return s;
}

const LuaScript& cancel_script() {
  static const LuaScript s(R"LUA(
local bk = 'sd:bc:{' .. ARGV[1] .. '}'
local st = redis.call('HGET', bk, 'state')
if not st then return 'missing' end
-- a failed broadcast stopped planning pages, but those recorded before are still queued
if st == 'running' or st == 'dispatching' or st == 'failed' then
  redis.call('HSET', bk, 'state', 'cancelling', 'cancel_requested_at', ARGV[2])
  redis.call('SADD', 'sd:bc:active', ARGV[1])
end
return st
)LUA");
  return s;
}

const LuaScript& finish_script() {
  static const LuaScript s(R"LUA(
local bk = 'sd:bc:{' .. ARGV[1] .. '}'
if redis.call('HGET', bk, 'state') ~= 'dispatching' then return 0 end
local left = tonumber(redis.call('HGET', bk .. ':counts', 'ACCEPTED') or '0')
if left > 0 then return 0 end
redis.call('HSET', bk, 'state', 'finished', 'finished_at', ARGV[2])
redis.call('SREM', 'sd:bc:active', ARGV[1])
return 1
)LUA");
  return s;
}

std::string iso_or_null(std::int64_t ms) { return ms > 0 ? rfc3339_utc(ms) : ""; }

}  // namespace

// ---- groups ----

Result<std::optional<GroupInfo>> GroupStore::get(const std::string& group_id) {
  const std::string base = group_base(group_id);
  auto r = pool_.pipeline({{"HGETALL", base + ":meta"}, {"ZCARD", base + ":ids"}});
  if (!r.ok()) return r.error();
  const auto& h = (*r)[0];
  if (h.elements.empty()) return std::optional<GroupInfo>{};
  GroupInfo g;
  g.id = group_id;
  for (std::size_t i = 0; i + 1 < h.elements.size(); i += 2) {
    const auto& k = h.elements[i].str;
    const auto& v = h.elements[i + 1].str;
    if (k == "name") g.name = v;
    if (k == "court_id") g.court_id = v;
    if (k == "court_name") g.court_name = v;
    if (k == "created_at") g.created_ms = to_ll(v);
    if (k == "updated_at") g.updated_ms = to_ll(v);
  }
  g.members = (*r)[1].integer;
  return std::optional<GroupInfo>{g};
}

Result<ImportCounts> GroupStore::put(const GroupInfo& info, const std::optional<std::vector<Member>>& members,
                                     std::int64_t now_ms) {
  auto r = pool_.eval(put_group_script(), {},
                      {info.id, info.name, info.court_id, info.court_name, std::to_string(now_ms), members ? "1" : "0",
                       members ? members_arg(*members).dump() : "[]", std::to_string(kMaxMembersPerGroup)});
  if (!r.ok()) return r.error();
  if (r->elements.size() != 4) return unexpected("put group");
  const std::string& what = r->elements[0].str;
  if (what == "forbidden") return Error::permanent("forbidden", "group " + info.id + " belongs to another court");
  if (what == "too_large") {
    return Error::permanent("too_large", "a group holds at most " + std::to_string(kMaxMembersPerGroup) + " members");
  }
  return counts_of(r.value());
}

Result<ImportCounts> GroupStore::upsert(const std::string& group_id, const std::vector<Member>& members,
                                        std::int64_t now_ms) {
  if (members.empty()) {
    auto g = get(group_id);
    if (!g.ok()) return g.error();
    if (!g.value()) return Error::permanent("not_found", "no group " + group_id + "; create it with PUT first");
    return ImportCounts{0, 0, g.value()->members};
  }
  auto r =
      pool_.eval(upsert_script(), {},
                 {group_id, members_arg(members).dump(), std::to_string(now_ms), std::to_string(kMaxMembersPerGroup)});
  if (!r.ok()) return r.error();
  if (r->elements.size() != 4) return unexpected("import members");
  const std::string& what = r->elements[0].str;
  if (what == "not_found") return Error::permanent("not_found", "no group " + group_id + "; create it with PUT first");
  if (what == "too_large") {
    return Error::permanent(
        "too_large", "the group would pass " + std::to_string(kMaxMembersPerGroup) + " members; nothing was imported");
  }
  return counts_of(r.value());
}

Result<std::vector<Member>> GroupStore::page(const std::string& group_id, long long offset, int limit) {
  const std::string base = group_base(group_id);
  auto ids = pool_.command({"ZRANGE", base + ":ids", std::to_string(offset), std::to_string(offset + limit - 1)});
  if (!ids.ok()) return ids.error();
  std::vector<Member> out;
  if (ids->elements.empty()) return out;
  std::vector<std::string> cmd{"HMGET", base + ":m"};
  for (const auto& e : ids->elements) cmd.push_back(e.str);
  auto vals = pool_.command(cmd);
  if (!vals.ok()) return vals.error();
  for (const auto& v : vals->elements) {
    auto m = member_from_json(Json::parse(v.str, nullptr, false));
    if (m.ok()) out.push_back(std::move(m.value()));
  }
  return out;
}

// ---- broadcasts ----

Result<std::pair<StartOutcome, long long>> BroadcastStore::start(BroadcastSpec spec, const std::string& digest,
                                                                 std::int64_t now_ms) {
  const std::string meta = group_base(spec.group_id) + ":meta";
  auto g = pool_.command({"HMGET", meta, "court_id", "court_name"});
  if (!g.ok()) return g.error();
  if (g->elements.size() == 2 && spec.court_name.empty()) spec.court_name = g->elements[1].str;
  if (g->elements.size() == 2 && !g->elements[0].str.empty() && spec.court_id.empty()) {
    spec.court_id = g->elements[0].str;
  }
  auto r =
      pool_.eval(start_script(), {},
                 {spec.id, digest, spec_to_json(spec).dump(), spec.group_id, spec.court_id, std::to_string(now_ms)});
  if (!r.ok()) return r.error();
  if (r->elements.size() != 2) return unexpected("start broadcast");
  const std::string& what = r->elements[0].str;
  const long long n = r->elements[1].integer;
  StartOutcome o = StartOutcome::kNew;
  if (what == "dup") o = StartOutcome::kDuplicate;
  if (what == "conflict") o = StartOutcome::kConflict;
  if (what == "no_group") o = StartOutcome::kNoGroup;
  if (what == "forbidden") o = StartOutcome::kForbidden;
  if (what == "empty_group") o = StartOutcome::kEmptyGroup;
  return std::make_pair(o, n);
}

Result<std::optional<BroadcastRecord>> BroadcastStore::get(const std::string& broadcast_id) {
  auto r = pool_.pipeline(
      {{"HGETALL", bc_key(broadcast_id)}, {"HGETALL", DeliveryStore::broadcast_counts_key(broadcast_id)}});
  if (!r.ok()) return r.error();
  const auto& h = (*r)[0];
  if (h.elements.empty()) return std::optional<BroadcastRecord>{};
  BroadcastRecord b;
  for (std::size_t i = 0; i + 1 < h.elements.size(); i += 2) {
    const auto& k = h.elements[i].str;
    const auto& v = h.elements[i + 1].str;
    if (k == "spec") {
      auto s = spec_from_json(Json::parse(v, nullptr, false));
      if (!s.ok()) return s.error();
      b.spec = std::move(s.value());
    } else if (k == "digest") {
      b.digest = v;
    } else if (k == "state") {
      b.state = v;
    } else if (k == "members") {
      b.members = to_ll(v);
    } else if (k == "cursor") {
      b.cursor = to_ll(v);
    } else if (k == "planned") {
      b.planned = to_ll(v);
    } else if (k == "unreachable") {
      b.unreachable = to_ll(v);
    } else if (k == "cancelled") {
      b.cancelled = to_ll(v);
    } else if (k == "created_at") {
      b.created_ms = to_ll(v);
    } else if (k == "fanned_out_at") {
      b.fanned_out_ms = to_ll(v);
    } else if (k == "finished_at") {
      b.finished_ms = to_ll(v);
    } else if (k == "cancel_requested_at") {
      b.cancel_requested_ms = to_ll(v);
    } else if (k == "error") {
      b.error = v;
    }
  }
  const auto& c = (*r)[1];
  for (std::size_t i = 0; i + 1 < c.elements.size(); i += 2) b.counts[c.elements[i].str] = to_ll(c.elements[i + 1].str);
  return std::optional<BroadcastRecord>{std::move(b)};
}

Result<std::vector<std::string>> BroadcastStore::active() {
  auto r = pool_.command({"SMEMBERS", kActiveKey});
  if (!r.ok()) return r.error();
  std::vector<std::string> out;
  for (const auto& e : r->elements) out.push_back(e.str);
  std::sort(out.begin(), out.end());
  return out;
}

Result<std::vector<std::string>> BroadcastStore::of_court(const std::string& court_id, int limit) {
  auto r = pool_.command({"ZREVRANGE", "sd:bcs:{" + court_id + "}", "0", std::to_string(limit - 1)});
  if (!r.ok()) return r.error();
  std::vector<std::string> out;
  for (const auto& e : r->elements) out.push_back(e.str);
  return out;
}

Result<std::vector<std::pair<std::string, std::string>>> BroadcastStore::read_page(const std::string& broadcast_id,
                                                                                   long long from, int n) {
  auto r = pool_.eval(read_page_script(), {}, {broadcast_id, std::to_string(from), std::to_string(n)});
  if (!r.ok()) return r.error();
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(r->elements.size() / 2);
  for (std::size_t i = 0; i + 1 < r->elements.size(); i += 2) {
    out.emplace_back(r->elements[i].str, r->elements[i + 1].str);
  }
  return out;
}

Result<bool> BroadcastStore::advance_cursor(const std::string& broadcast_id, long long from, long long to,
                                            long long planned, const std::vector<std::string>& unreachable,
                                            const std::string& holder, std::int64_t now_ms) {
  std::vector<std::string> args{broadcast_id,
                                std::to_string(from),
                                std::to_string(to),
                                std::to_string(planned),
                                std::to_string(unreachable.size()),
                                holder,
                                std::to_string(now_ms)};
  args.insert(args.end(), unreachable.begin(), unreachable.end());
  auto r = pool_.eval(advance_script(), {}, args);
  if (!r.ok()) return r.error();
  return r->integer == 1;
}

Result<BroadcastStore::Unreachable> BroadcastStore::unreachable(const std::string& broadcast_id, long long from,
                                                                int n) {
  const std::string key = bc_key(broadcast_id) + ":unreachable";
  auto r = pool_.pipeline({{"ZCARD", key}, {"ZRANGE", key, std::to_string(from), std::to_string(from + n - 1)}});
  if (!r.ok()) return r.error();
  Unreachable out;
  out.total = (*r)[0].integer;
  std::vector<std::string> hmget{"HMGET", bc_key(broadcast_id) + ":m"};
  for (const auto& e : (*r)[1].elements) hmget.push_back(e.str);
  if (hmget.size() == 2) return out;
  auto m = pool_.command(hmget);
  if (!m.ok()) return m.error();
  for (std::size_t i = 2; i < hmget.size(); ++i) {
    const RedisReply& v = m->elements[i - 2];
    out.members.emplace_back(hmget[i], v.type == RedisReply::Type::kString ? v.str : std::string());
  }
  return out;
}

Result<std::string> BroadcastStore::state(const std::string& broadcast_id) {
  auto r = pool_.command({"HGET", bc_key(broadcast_id), "state"});
  if (!r.ok()) return r.error();
  return r->str;
}

Result<std::string> BroadcastStore::request_cancel(const std::string& broadcast_id, std::int64_t now_ms) {
  auto r = pool_.eval(cancel_script(), {}, {broadcast_id, std::to_string(now_ms)});
  if (!r.ok()) return r.error();
  return r->str;
}

Status BroadcastStore::finish_cancel(const std::string& broadcast_id, long long cancelled, std::int64_t now_ms) {
  auto r = pool_.pipeline({{"HSET", bc_key(broadcast_id), "state", "cancelled", "finished_at", std::to_string(now_ms)},
                           {"HINCRBY", bc_key(broadcast_id), "cancelled", std::to_string(cancelled)},
                           {"SREM", kActiveKey, broadcast_id}});
  if (!r.ok()) return r.error();
  return ok_status();
}

Result<bool> BroadcastStore::finish_if_done(const std::string& broadcast_id, std::int64_t now_ms) {
  auto r = pool_.eval(finish_script(), {}, {broadcast_id, std::to_string(now_ms)});
  if (!r.ok()) return r.error();
  return r->integer == 1;
}

Status BroadcastStore::fail(const std::string& broadcast_id, const std::string& reason, std::int64_t now_ms) {
  auto r = pool_.pipeline(
      {{"HSET", bc_key(broadcast_id), "state", "failed", "error", reason, "finished_at", std::to_string(now_ms)},
       {"SREM", kActiveKey, broadcast_id}});
  if (!r.ok()) return r.error();
  return ok_status();
}

Result<bool> BroadcastStore::hold_lease(const std::string& holder, int ttl_ms) {
  auto taken = take_lease(pool_, kLeaseKey, holder, ttl_ms);
  if (!taken || *taken) return taken;
  return renew_lease(pool_, kLeaseKey, holder, ttl_ms);
}

void BroadcastStore::release_lease(const std::string& holder) { songda::release_lease(pool_, kLeaseKey, holder); }

bool is_final_state(const std::string& state) {
  return state == "finished" || state == "cancelled" || state == "failed";
}

Json progress_json(const BroadcastRecord& r, std::int64_t now_ms) {
  static const char* kStatuses[] = {"ACCEPTED", "SENT", "DELIVERED", "READ", "ACKNOWLEDGED", "FAILED", "CANCELLED"};
  Json counts = Json::object();
  long long total = 0;
  for (const char* s : kStatuses) {
    const auto it = r.counts.find(s);
    const long long n = it == r.counts.end() ? 0 : std::max(0LL, it->second);
    counts[s] = n;
    total += n;
  }
  const long long waiting = counts["ACCEPTED"].get<long long>();
  const long long dispatched = total - waiting - counts["CANCELLED"].get<long long>();
  const std::int64_t end = r.finished_ms > 0 ? r.finished_ms : now_ms;
  const double secs = r.created_ms > 0 ? std::max<double>(0.001, static_cast<double>(end - r.created_ms) / 1000.0) : 0;
  Json j = spec_to_json(r.spec);  // what was asked, then how far it got
  j.update({{"state", r.state},
            {"members", r.members},
            {"fanout",
             {{"members_planned", r.cursor},
              {"members_total", r.members},
              {"deliveries_recorded", r.planned},
              {"unreachable_members", r.unreachable},
              {"complete", r.members > 0 && r.cursor >= r.members}}},
            {"counts", counts},
            {"deliveries", total},
            {"waiting", waiting},
            {"dispatched", dispatched},
            {"cancelled_by_request", r.cancelled},
            {"started_at", iso_or_null(r.created_ms)},
            {"fanned_out_at", iso_or_null(r.fanned_out_ms)},
            {"finished_at", iso_or_null(r.finished_ms)},
            {"cancel_requested_at", iso_or_null(r.cancel_requested_ms)},
            {"elapsed_s", secs},
            {"rate_per_s", secs > 0 ? static_cast<double>(dispatched) / secs : 0.0}});
  if (!r.error.empty()) j["error"] = r.error;
  return j;
}

}  // namespace songda::broadcast
