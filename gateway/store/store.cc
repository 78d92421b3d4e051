#include "gateway/store/store.h"

#include <algorithm>
#include <optional>

#include "gateway/core/json_writer.h"
#include "gateway/core/text.h"

namespace songda {
namespace {

// call_all: CMD key v1 v2 ... with any number of values, in calls of 1,000 (Lua's unpack has a stack limit;
// score/member pairs stay together); returns the last reply. Batch scripts write a whole batch to one key with it.
// zwrite/zflush: a batch's sorted-set writes, made by zflush() with one ZADD and one ZREM per key. zwrite(key,
// id, score) adds, zwrite(key, id, false) removes; a later write to an id replaces an earlier one, so the end
// state is the one making them in turn would leave. Only for keys the script does not read before zflush().
constexpr const char* kLuaCallAll = R"LUA(
local function call_all(cmd, key, values)
  local reply = 0
  for i = 1, #values, 1000 do reply = redis.call(cmd, key, unpack(values, i, math.min(i + 999, #values))) end
  return reply
end
local zs, zkeys = {}, {}
local function zwrite(key, id, score)
  local t = zs[key]
  if not t then t = {}; zs[key] = t; zkeys[#zkeys + 1] = key end
  t[id] = score
end
local function zflush()
  for _, key in ipairs(zkeys) do
    local add, rem = {}, {}
    for id, score in pairs(zs[key]) do
      if score then add[#add + 1] = score; add[#add + 1] = id else rem[#rem + 1] = id end
    end
    if #add > 0 then call_all('ZADD', key, add) end
    if #rem > 0 then call_all('ZREM', key, rem) end
  end
  zs, zkeys = {}, {}
end
)LUA";

// Status ranks shared by every script that moves a delivery's status (after kLuaCallAll).
constexpr const char* kLuaRank = R"LUA(
local RANK = {ACCEPTED=0, SENT=1, DELIVERED=2, READ=3, ACKNOWLEDGED=4}
-- h: the delivery's {status, bcast} if the caller has just read them (HMGET), else nil
local function advance(dk, status, now, detail, extra, h)
  h = h or redis.call('HMGET', dk, 'status', 'bcast')
  local cur, bc = h[1], h[2]
  if not cur then return false end
  if cur == status then return false end
  if status == 'FAILED' or status == 'CANCELLED' then
    if cur ~= 'ACCEPTED' and (cur ~= 'SENT' or status == 'CANCELLED') then return false end
  elseif cur == 'FAILED' then
    -- the message reached them after all: the recipient opened or acknowledged it, or the operator reported its
    -- arrival after a failure report (an earlier attempt, a report corrected)
    if status ~= 'READ' and status ~= 'ACKNOWLEDGED' and status ~= 'DELIVERED' then return false end
  else
    if cur == 'CANCELLED' or RANK[cur] == nil or RANK[status] == nil or RANK[status] < RANK[cur] then return false end
  end
  -- the status and the extra fields in one HSET (empty extras are not written)
  local fields = {'status', status, 'updated_at', now}
  if extra then
    for k, v in pairs(extra) do
      if v ~= '' then fields[#fields + 1] = k; fields[#fields + 1] = v end
    end
  end
  redis.call('HSET', dk, unpack(fields))
  -- a broadcast's deliveries keep its per-status counts current (no scan for progress)
  if bc then
    redis.call('HINCRBY', 'sd:bc:{' .. bc .. '}:counts', cur, -1)
    redis.call('HINCRBY', 'sd:bc:{' .. bc .. '}:counts', status, 1)
  end
  redis.call('RPUSH', dk .. ':hist', cjson.encode({status=status, at=now, detail=detail or ''}))
  return true
end
-- Appends evidence leaves, list = {{d = delivery id, a = ARGV index of the record bytes, h = leaf hash hex}}
-- (ScriptArgs::evidence), in order: one RPUSH for sd:ev:leaves, one for sd:ev:hashes (same indexes), one per
-- delivery for its index list, however many leaves. Batch scripts gather their leaves and append them once.
local function append_evidence(list)
  if not list or #list == 0 then return end
  local bytes, hashes, by_delivery, order = {}, {}, {}, {}
  for i, ev in ipairs(list) do
    bytes[i] = ARGV[ev.a]
    hashes[i] = ev.h
  end
  local first = call_all('RPUSH', 'sd:ev:leaves', bytes) - #list  -- the index of list[1]'s leaf
  call_all('RPUSH', 'sd:ev:hashes', hashes)
  for i, ev in ipairs(list) do
    if ev.d ~= '' then
      local idx = by_delivery[ev.d]
      if not idx then idx = {}; by_delivery[ev.d] = idx; order[#order + 1] = ev.d end
      idx[#idx + 1] = first + i - 1
    end
  end
  for _, d in ipairs(order) do call_all('RPUSH', 'sd:ev:dlv:{' .. d .. '}', by_delivery[d]) end
end
local function gather(into, list)
  if list then for _, ev in ipairs(list) do into[#into + 1] = ev end end
end
)LUA";

const LuaScript& record_script() {
  static const LuaScript s(std::string(kLuaCallAll) + kLuaRank + R"LUA(
local now = tonumber(ARGV[1])
local events = cjson.decode(ARGV[2])
local out = {}
local evidence = {}
local accepted = cjson.encode({status='ACCEPTED', at=now, detail=''})
for i, e in ipairs(events) do
  local ek = 'sd:evt:{' .. e.id .. '}'
  local existing = redis.call('HGET', ek, 'digest')
  if existing then
    if existing == e.digest then out[i] = 'dup' else out[i] = 'conflict' end
  else
    local ids = {}
    for _, d in ipairs(e.deliveries) do
      local dk = 'sd:dlv:{' .. d.id .. '}'
      if redis.call('EXISTS', dk) == 0 then
        local fields = {'record', ARGV[d.r], 'status', 'ACCEPTED', 'channel', d.channel,
                        'created_at', now, 'updated_at', now, 'attempts', 0}
        if e.bcast ~= '' then
          fields[#fields + 1] = 'bcast'
          fields[#fields + 1] = e.bcast
          redis.call('HINCRBY', 'sd:bc:{' .. e.bcast .. '}:counts', 'ACCEPTED', 1)
        end
        if d.hold_from ~= '' then
          fields[#fields + 1] = 'hold_from'; fields[#fields + 1] = d.hold_from
          fields[#fields + 1] = 'hold_unless'; fields[#fields + 1] = d.hold_unless
        end
        redis.call('HSET', dk, unpack(fields))
        redis.call('RPUSH', dk .. ':hist', accepted)
        zwrite(e.case_key, d.id, now)
        if d.hold_from ~= '' then
          -- a fallback: waits on its timer; the delivery it backs up knows it, to wake it on failure
          redis.call('SADD', 'sd:dlv:{' .. d.hold_from .. '}:backups', d.id)
          redis.call('ZADD', 'sd:timers', now + d.hold_after_s * 1000, d.id)
          redis.call('RPUSH', dk .. ':hist', cjson.encode({status='HELD', at=now,
            detail='sent only if ' .. d.hold_from .. ' is not ' .. d.hold_unless .. ' within ' .. d.hold_after_s .. ' s'}))
        else
          zwrite('sd:q:' .. d.channel, d.id, d.due)
        end
      end
      ids[#ids + 1] = d.id
    end
    redis.call('SADD', 'sd:casecourts:{' .. e.case_number .. '}', e.court)
    if #e.unreachable > 0 then
      local fields = {}
      for _, u in ipairs(e.unreachable) do
        fields[#fields + 1] = e.id .. '|' .. u.id
        fields[#fields + 1] = cjson.encode({event_id=e.id, recipient_id=u.id, name=u.name, role=u.role, at=now})
      end
      redis.call('HSET', e.case_key .. ':unreachable', unpack(fields))
    end
    gather(evidence, e.evidence)
    redis.call('HSET', ek, 'digest', e.digest, 'at', now, 'case', e.case_key, 'deliveries', cjson.encode(ids))
    out[i] = 'new'
  end
end
zflush()
append_evidence(evidence)
return out
)LUA");
  return s;
}

// A token bucket shared by every instance (rate per second, burst = one second's worth); Redis' own clock, so
// instances' clocks do not matter. Hands out up to `wanted` tokens.
constexpr const char* kLuaBucket = R"LUA(
local function take_tokens(key, rate, wanted)
  local t = redis.call('TIME')
  local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local burst = math.max(1, rate)
  local b = redis.call('HMGET', key, 'tokens', 'ts')
  local tokens = tonumber(b[1]) or burst
  local ts = tonumber(b[2]) or ms
  tokens = math.min(burst, tokens + math.max(0, ms - ts) * rate / 1000)
  local n = math.max(0, math.min(wanted, math.floor(tokens)))
  redis.call('HSET', key, 'tokens', tokens - n, 'ts', ms)
  redis.call('PEXPIRE', key, 60000)
  return n
end
)LUA";

const LuaScript& claim_script() {
  static const LuaScript s(std::string(kLuaCallAll) + kLuaBucket + R"LUA(
local now = tonumber(ARGV[1])
local limit = tonumber(ARGV[3])
local rate = tonumber(ARGV[4])
if rate > 0 then
  limit = take_tokens(KEYS[2], rate, math.min(limit, redis.call('ZCOUNT', KEYS[1], '-inf', now)))
  if limit <= 0 then return {} end
end
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, limit)
local out = {}
for _, id in ipairs(ids) do
  local dk = 'sd:dlv:{' .. id .. '}'
  local rec = redis.call('HMGET', dk, 'record', 'status', 'inflight', 'attempts')
  if rec[2] and rec[2] ~= 'ACCEPTED' then
    -- settled meanwhile (an attempt whose lease ran out was recorded after all): nothing left to send
    zwrite(KEYS[1], id, false)
  else
    zwrite(KEYS[1], id, now + tonumber(ARGV[2]))  -- the lease
    local attempts = (tonumber(rec[4]) or 0) + 1
    -- 'inflight' marks an attempt whose outcome is not recorded yet; still there at the next claim, the
    -- earlier attempt died mid-send and its outcome is in doubt
    if rec[3] then
      redis.call('HSET', dk, 'attempts', attempts)
    else
      redis.call('HSET', dk, 'attempts', attempts, 'inflight', now)
    end
    out[#out + 1] = {id, rec[1] or '', rec[2] or '', attempts, rec[3] or '0'}
  end
end
zflush()
return out
)LUA");
  return s;
}

const LuaScript& complete_script() {
  static const LuaScript s(std::string(kLuaCallAll) + kLuaRank + R"LUA(
local now = tonumber(ARGV[1])
local list = cjson.decode(ARGV[2])
local changed = 0
local evidence = {}
-- the channel queues and providers' sent sets are written by zwrite, once per key at the end (zflush)
for _, c in ipairs(list) do
  local dk = 'sd:dlv:{' .. c.id .. '}'
  local q = 'sd:q:' .. c.channel
  local h = redis.call('HMGET', dk, 'status', 'bcast', 'inflight')
  if h[3] and not c.doubt then redis.call('HDEL', dk, 'inflight') end
  if c.retry_at > 0 then
    -- Only while nothing settled it: a claimer whose lease ran out may report "try again" after another one's
    -- attempt was recorded SENT (or FAILED); queueing it again then would send it twice.
    if not h[1] or h[1] == 'ACCEPTED' then
      zwrite(q, c.id, c.retry_at)
      redis.call('HSET', dk, 'last_error', c.detail)
      redis.call('RPUSH', dk .. ':hist', cjson.encode({status='RETRY_SCHEDULED', at=now, detail=c.detail}))
    end
  else
    zwrite(q, c.id, false)
    local extra = {provider=c.provider, provider_message_id=c.pmid, segments=c.segments}
    if c.status == 'DELIVERED' then extra.delivered_at = c.at end
    if advance(dk, c.status, c.at, c.detail, extra, h) then
      changed = changed + 1
      if c.status == 'SENT' and c.provider ~= '' then zwrite('sd:sent:' .. c.provider, c.id, now) end
      if c.status == 'FAILED' then
        for _, b in ipairs(redis.call('SMEMBERS', dk .. ':backups')) do
          redis.call('ZADD', 'sd:timers', 'XX', now, b)
        end
      end
      gather(evidence, c.evidence)
      if (c.status == 'DELIVERED' or c.status == 'FAILED') and c.provider ~= '' then
        zwrite('sd:sent:' .. c.provider, c.id, false)
      end
    elseif c.status == 'DELIVERED' then
      -- The recipient opened the link before the operator's report came. The report is still the legal proof
      -- of arrival (its time can be the service date): recorded once, without moving the status back. (advance
      -- wrote nothing, so h[1] is still the status.)
      local cur = h[1]
      if (cur == 'READ' or cur == 'ACKNOWLEDGED') and redis.call('HSETNX', dk, 'delivered_at', c.at) == 1 then
        redis.call('RPUSH', dk .. ':hist', cjson.encode({status='DELIVERED', at=c.at, detail=c.detail}))
        gather(evidence, c.evidence)
        if c.provider ~= '' then zwrite('sd:sent:' .. c.provider, c.id, false) end
        changed = changed + 1
      end
    elseif c.status == 'FAILED' then
      -- A failure reported after the delivery arrived (or was read). The arrival still decides the service, and
      -- the status stays; the operator's report is a fact of the record all the same: kept once, with its evidence.
      local cur = h[1]
      if (cur == 'DELIVERED' or cur == 'READ' or cur == 'ACKNOWLEDGED') and
          redis.call('HSETNX', dk, 'failed_report_at', c.at) == 1 then
        redis.call('RPUSH', dk .. ':hist', cjson.encode({status='FAILED', at=c.at,
                                                         detail='reported after arrival, status kept: ' .. c.detail}))
        gather(evidence, c.evidence)
        changed = changed + 1
      end
    end
    if c.rkey ~= '' then redis.call('SET', 'sd:rcpt:{' .. c.rkey .. '}', c.id .. '|' .. c.provider) end
  end
end
zflush()
append_evidence(evidence)
return changed
)LUA");
  return s;
}

const LuaScript& read_script() {
  static const LuaScript s(std::string(kLuaCallAll) + kLuaRank + R"LUA(
local mk = 'sd:inbox:{' .. ARGV[1] .. '}:msg'
local now = tonumber(ARGV[3])
local raw = redis.call('HGET', mk, ARGV[2])
if not raw then return {'not_found', ''} end
local msg = cjson.decode(raw)
if msg.read_at and msg.read_at ~= 0 then return {'already', raw} end
msg.read_at = now
local enc = cjson.encode(msg)
redis.call('HSET', mk, ARGV[2], enc)
local base = 'sd:inbox:{' .. ARGV[1] .. '}'
redis.call('ZREM', base .. ':unread', ARGV[2])
redis.call('ZREM', base .. ':court:' .. tostring(msg.court_id or '') .. ':unread', ARGV[2])
if advance('sd:dlv:{' .. ARGV[2] .. '}', 'READ', now, 'inbox message opened', nil) then
  append_evidence(cjson.decode(ARGV[4]))
end
return {'read', enc}
)LUA");
  return s;
}

const LuaScript& timers_script() {
  static const LuaScript s(std::string(kLuaCallAll) + kLuaRank + R"LUA(
local now = tonumber(ARGV[1])
local ids = redis.call('ZRANGEBYSCORE', 'sd:timers', '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for _, id in ipairs(ids) do
  redis.call('ZREM', 'sd:timers', id)
  local dk = 'sd:dlv:{' .. id .. '}'
  local h = redis.call('HMGET', dk, 'hold_from', 'hold_unless', 'channel', 'status')
  if h[4] == 'ACCEPTED' and h[1] then
    local fs = redis.call('HGET', 'sd:dlv:{' .. h[1] .. '}', 'status') or 'MISSING'
    if RANK[fs] ~= nil and RANK[h[2]] ~= nil and RANK[fs] >= RANK[h[2]] then
      advance(dk, 'CANCELLED', now, h[1] .. ' reached ' .. fs .. ' in time; fallback not needed', nil)
      out[#out + 1] = {id, 'cancelled', h[1], fs}
    else
      redis.call('ZADD', 'sd:q:' .. h[3], now, id)
      redis.call('RPUSH', dk .. ':hist', cjson.encode({status='FALLBACK', at=now,
        detail=h[1] .. ' is ' .. fs .. ', not ' .. h[2] .. ' in time: sending on ' .. h[3]}))
      out[#out + 1] = {id, 'released', h[1], fs}
    end
    -- kept until its FALLBACK evidence is appended (settle_timers), so a crash in between loses nothing
    local o = out[#out]
    redis.call('HSET', 'sd:timers:fired', id, cjson.encode({o[2], o[3], o[4], now}))
  end
end
return out
)LUA");
  return s;
}

Error not_utf8(const std::string& what) {
  return Error::permanent("invalid_utf8", what + " hold text that is not valid UTF-8");
}

// The ARGV of one script call. The long payloads (evidence record bytes, delivery records) are entries of their
// own that the JSON describing the batch names by index, so the gateway does not escape them into a JSON string
// and Redis does not decode them out of one (both showed in the profiles: bench/README.md).
class ScriptArgs {
 public:
  explicit ScriptArgs(std::vector<std::string> fixed) : argv_(std::move(fixed)) {}

  // `bytes` as an entry of its own; returns its Lua index (ARGV[i], 1-based).
  int add(std::string bytes) {
    argv_.push_back(std::move(bytes));
    return static_cast<int>(argv_.size());
  }
  // The list append_evidence (Lua) takes, as JSON text: [{d, a = ARGV index of the record bytes, h}, ...].
  // False when an id or hash is not UTF-8.
  bool append_evidence(std::string& out, const std::vector<EvidenceLeaf>& leaves) {
    return append_object_array(out, leaves, [this](JsonObjectWriter& leaf, const EvidenceLeaf& l) {
      leaf.string("d", l.delivery_id).integer("a", add(l.canonical)).string("h", l.leaf_hash_hex);
      return true;
    });
  }
  // Sets the fixed entry i (0-based) to that list.
  Status set_evidence(std::size_t i, const std::vector<EvidenceLeaf>& leaves) {
    std::string list;
    if (!append_evidence(list, leaves)) return not_utf8("evidence leaves");
    set(i, std::move(list));
    return ok_status();
  }
  // Sets a fixed entry (0-based) once the JSON that names the others is complete.
  void set(std::size_t i, std::string value) { argv_.at(i) = std::move(value); }
  [[nodiscard]] const std::vector<std::string>& argv() const { return argv_; }

 private:
  std::vector<std::string> argv_;
};

std::int64_t to_i64(const RedisReply& r) {
  if (r.type == RedisReply::Type::kInteger) return r.integer;
  if (r.type == RedisReply::Type::kString) {
    try {
      return std::stoll(r.str);
    } catch (...) {
      return 0;
    }
  }
  return 0;
}

Error unexpected(const std::string& what) {
  return Error::transient("redis_error", "unexpected Redis reply to " + what);
}

Result<DeliveryView> parse_view(const RedisReply& hash, const RedisReply& hist, const RedisReply& ev) {
  DeliveryView v;
  if (hash.type != RedisReply::Type::kArray) return unexpected("HGETALL");
  for (std::size_t i = 0; i + 1 < hash.elements.size(); i += 2) {
    const auto& k = hash.elements[i].str;
    const auto& val = hash.elements[i + 1];
    if (k == "record") {
      auto d = delivery_from_record_text(val.str);
      if (!d.ok()) return d.error();
      v.delivery = std::move(d.value());
    } else if (k == "status") {
      v.status = val.str;
    } else if (k == "attempts") {
      v.attempts = static_cast<int>(to_i64(val));
    } else if (k == "created_at") {
      v.created_ms = to_i64(val);
    } else if (k == "updated_at") {
      v.updated_ms = to_i64(val);
    } else if (k == "provider") {
      v.provider = val.str;
    } else if (k == "provider_message_id") {
      v.provider_message_id = val.str;
    } else if (k == "segments") {
      v.segments = static_cast<int>(to_i64(val));
    }
  }
  for (const auto& e : hist.elements) {
    auto j = nlohmann::json::parse(e.str, nullptr, false);
    if (!j.is_object()) continue;
    StatusEntry s;
    s.status = j.value("status", "");
    s.at_ms = j.contains("at") && j["at"].is_number() ? j["at"].get<std::int64_t>() : 0;
    s.detail = j.value("detail", "");
    v.history.push_back(std::move(s));
  }
  for (const auto& e : ev.elements) v.evidence_indexes.push_back(to_i64(e));
  return v;
}

}  // namespace

std::string DeliveryStore::case_key(const std::string& court_id, const std::string& case_number) {
  return "sd:case:{" + court_id + "|" + case_number + "}";
}

Result<std::vector<RecordOutcome>> DeliveryStore::record_batch(const std::vector<EventToRecord>& events,
                                                               std::int64_t now_ms) {
  if (events.empty()) return std::vector<RecordOutcome>{};
  ScriptArgs args({std::to_string(now_ms), ""});
  // The batch as JSON text written directly (not an nlohmann tree dumped; bench/README.md item 23).
  std::string batch;
  std::optional<Error> failed;  // a delivery record that could not be written
  const bool ok = append_object_array(batch, events, [&](JsonObjectWriter& ev, const EventToRecord& e) {
    ev.string("id", e.event_id)
        .string("digest", e.digest)
        .string("court", e.court_id)
        .string("case_number", e.case_number)
        .string("case_key", case_key(e.court_id, e.case_number))
        .string("bcast", e.broadcast_id);
    std::size_t next = 0;  // the index of d in e.deliveries (and of its due time in e.due_ms)
    const bool deliveries_ok =
        append_object_array(ev.nested("deliveries"), e.deliveries, [&](JsonObjectWriter& dw, const Delivery& d) {
          const std::size_t i = next++;
          auto record = delivery_record_text(d);
          if (!record.ok()) {
            failed = record.error();
            return false;
          }
          dw.string("id", d.id)
              .string("channel", d.channel)
              .integer("due", i < e.due_ms.size() && e.due_ms[i] > 0 ? e.due_ms[i] : now_ms)
              .string("hold_from", d.hold_from)
              .string("hold_unless", d.hold_unless)
              .integer("hold_after_s", d.hold_after_s)
              .integer("r", args.add(std::move(record.value())));
          return true;
        });
    ev.merge(append_object_array(ev.nested("unreachable"), e.unreachable,
                                 [](JsonObjectWriter& uw, const UnreachableRecipient& u) {
                                   uw.string("id", u.id).string("name", u.name).string("role", u.role);
                                   return true;
                                 }));
    return deliveries_ok && args.append_evidence(ev.nested("evidence"), e.evidence);
  });
  if (!ok) return failed ? *failed : not_utf8("the batch's events");
  args.set(1, std::move(batch));
  auto r = pool_.eval(record_script(), {}, args.argv());
  if (!r.ok()) return r.error();
  if (r->type != RedisReply::Type::kArray || r->elements.size() != events.size()) return unexpected("record_batch");
  std::vector<RecordOutcome> out;
  out.reserve(events.size());
  for (const auto& e : r->elements) {
    out.push_back(e.str == "new" ? RecordOutcome::kNew
                                 : (e.str == "dup" ? RecordOutcome::kDuplicate : RecordOutcome::kConflict));
  }
  return out;
}

Result<std::optional<std::string>> DeliveryStore::recorded_digest(const std::string& event_id) {
  auto r = pool_.command({"HGET", "sd:evt:{" + event_id + "}", "digest"});
  if (!r.ok()) return r.error();
  if (r->type == RedisReply::Type::kNil) return std::optional<std::string>{};
  return std::optional<std::string>{r->str};
}

Result<std::vector<ClaimedDelivery>> DeliveryStore::claim_due(const std::string& channel, std::int64_t now_ms,
                                                              int lease_ms, int limit, double rate_per_sec) {
  auto r = pool_.eval(
      claim_script(), {"sd:q:" + channel, "sd:rate:" + channel},
      {std::to_string(now_ms), std::to_string(lease_ms), std::to_string(limit), std::to_string(rate_per_sec)});
  if (!r.ok()) return r.error();
  std::vector<ClaimedDelivery> out;
  for (const auto& row : r->elements) {
    if (row.elements.size() != 5) return unexpected("claim_due");
    auto d = delivery_from_record_text(row.elements[1].str);
    if (!d.ok()) {
      ClaimedDelivery bad;
      bad.delivery.id = row.elements[0].str;
      bad.attempts = static_cast<int>(to_i64(row.elements[3]));
      bad.unreadable = row.elements[1].str.empty() ? "no record" : d.error().message;
      out.push_back(std::move(bad));
      continue;
    }
    out.push_back(ClaimedDelivery{std::move(d.value()), row.elements[2].str, static_cast<int>(to_i64(row.elements[3])),
                                  to_i64(row.elements[4]), ""});
  }
  return out;
}

Status DeliveryStore::complete_batch(const std::vector<Completion>& completions, std::int64_t now_ms) {
  if (completions.empty()) return ok_status();
  ScriptArgs args({std::to_string(now_ms), ""});
  std::string batch;
  const bool ok = append_object_array(batch, completions, [&](JsonObjectWriter& cw, const Completion& c) {
    cw.string("id", c.id)
        .string("channel", c.channel)
        .string("status", c.status)
        .string("detail", repair_utf8(c.detail))  // may hold a server's reply in another charset
        .integer("retry_at", c.retry_at_ms)
        .boolean("doubt", c.still_in_doubt)
        .string("provider", c.provider)
        .string("pmid", repair_utf8(c.provider_message_id))
        .string("rkey", c.receipt_key)
        .string("segments", c.segments > 0 ? std::to_string(c.segments) : std::string())
        .integer("at", c.event_time_ms > 0 ? c.event_time_ms : now_ms);
    return args.append_evidence(cw.nested("evidence"), c.evidence);
  });
  if (!ok) return not_utf8("the batch's outcomes");
  args.set(1, std::move(batch));
  auto r = pool_.eval(complete_script(), {}, args.argv());
  if (!r.ok()) return r.error();
  return ok_status();
}

Status DeliveryStore::write_inbox(const std::vector<Delivery>& deliveries, std::int64_t now_ms) {
  // A message is listed (in the user's inbox, its court's view of it, and both unread lists) only when it is
  // written the first time: a repeated write after a crash must not list a read message as unread again.
  static const LuaScript s(R"LUA(
for i = 2, #ARGV, 4 do
  local base = 'sd:inbox:{' .. ARGV[i] .. '}'
  local id = ARGV[i + 1]
  if redis.call('HSETNX', base .. ':msg', id, ARGV[i + 3]) == 1 then
    local court = base .. ':court:' .. ARGV[i + 2]
    redis.call('ZADD', base, 'NX', ARGV[1], id)
    redis.call('ZADD', base .. ':unread', 'NX', ARGV[1], id)
    redis.call('ZADD', court, 'NX', ARGV[1], id)
    redis.call('ZADD', court .. ':unread', 'NX', ARGV[1], id)
  end
end
return 'OK'
)LUA");
  if (deliveries.empty()) return ok_status();
  std::vector<std::string> argv;
  argv.reserve(1 + deliveries.size() * 4);
  argv.push_back(std::to_string(now_ms));
  for (const auto& d : deliveries) {
    nlohmann::json msg = {{"id", d.id},
                          {"title", d.title},
                          {"text", d.text},
                          {"court_id", d.court_id},
                          {"court_name", d.court_name},
                          {"case_number", d.case_number},
                          {"event_type", d.event_type},
                          {"delivered_at", now_ms},
                          {"read_at", 0}};
    if (d.document)
      msg["document"] = {{"id", d.document->id}, {"title", d.document->title}, {"sha256", d.document->sha256}};
    argv.push_back(d.address);
    argv.push_back(d.id);
    argv.push_back(d.court_id);
    argv.push_back(msg.dump());
  }
  auto r = pool_.eval(s, {}, argv);
  if (!r.ok()) return r.error();
  return ok_status();
}

Result<nlohmann::json> DeliveryStore::mark_read(const std::string& app_user, const std::string& delivery_id,
                                                std::int64_t now_ms, const std::vector<EvidenceLeaf>& evidence) {
  ScriptArgs args({app_user, delivery_id, std::to_string(now_ms), ""});
  if (auto written = args.set_evidence(3, evidence); !written.ok()) return written.error();
  auto r = pool_.eval(read_script(), {}, args.argv());
  if (!r.ok()) return r.error();
  if (r->elements.size() != 2) return unexpected("mark_read");
  if (r->elements[0].str == "not_found") {
    return Error::permanent("not_found", "no message " + delivery_id + " in the inbox of " + app_user);
  }
  auto j = nlohmann::json::parse(r->elements[1].str, nullptr, false);
  if (j.is_discarded()) return unexpected("mark_read");
  return j;
}

Result<bool> DeliveryStore::advance_status(const std::string& delivery_id, const std::string& status,
                                           const std::string& detail, std::int64_t now_ms,
                                           const std::vector<EvidenceLeaf>& evidence, const std::string& once_field,
                                           const std::string& history_status) {
  static const LuaScript s(std::string(kLuaCallAll) + kLuaRank + R"LUA(
local dk = 'sd:dlv:{' .. ARGV[1] .. '}'
local now = tonumber(ARGV[4])
if redis.call('EXISTS', dk) == 0 then return 'not_found' end
if ARGV[2] == '' then
  if ARGV[6] == '' or redis.call('HSETNX', dk, ARGV[6], now) == 0 then return 'unchanged' end
  redis.call('RPUSH', dk .. ':hist', cjson.encode({status=ARGV[7], at=now, detail=ARGV[3]}))
  append_evidence(cjson.decode(ARGV[5]))
  return 'recorded'
end
if advance(dk, ARGV[2], now, ARGV[3], nil) then
  append_evidence(cjson.decode(ARGV[5]))
  return 'recorded'
end
return 'unchanged'
)LUA");
  if (status.empty() && (once_field.empty() || history_status.empty())) {
    return Error::permanent("invalid_argument", "a fact without a status needs once_field and history_status");
  }
  ScriptArgs args({delivery_id, status, detail, std::to_string(now_ms), "", once_field, history_status});
  if (auto written = args.set_evidence(4, evidence); !written.ok()) return written.error();
  auto r = pool_.eval(s, {}, args.argv());
  if (!r.ok()) return r.error();
  if (r->str == "not_found") return Error::permanent("not_found", "no delivery " + delivery_id);
  if (r->str != "recorded" && r->str != "unchanged") return unexpected("advance_status");
  return r->str == "recorded";
}

Result<InboxPage> DeliveryStore::inbox(const std::string& app_user, const std::string& court_id, int offset,
                                       int limit) {
  static const LuaScript s(R"LUA(
local base = 'sd:inbox:{' .. ARGV[1] .. '}'
if redis.call('EXISTS', base .. ':indexed') == 0 then
  -- Once per inbox: messages written before the per-court and unread lists existed are listed from the message
  -- hash (adding what is already listed changes nothing).
  local all = redis.call('HGETALL', base .. ':msg')
  for i = 1, #all, 2 do
    local ok, m = pcall(cjson.decode, all[i + 1])
    if ok and type(m) == 'table' then
      local id = all[i]
      local at = redis.call('ZSCORE', base, id) or tostring(tonumber(m.delivered_at) or 0)
      local court = base .. ':court:' .. tostring(m.court_id or '')
      redis.call('ZADD', base, 'NX', at, id)
      redis.call('ZADD', court, 'NX', at, id)
      if not m.read_at or m.read_at == 0 then
        redis.call('ZADD', base .. ':unread', 'NX', at, id)
        redis.call('ZADD', court .. ':unread', 'NX', at, id)
      end
    end
  end
  -- only for an inbox that has messages: asking about any name must not leave a key behind
  if #all > 0 then redis.call('SET', base .. ':indexed', '1') end
end
local list = base
if ARGV[2] ~= '' then list = base .. ':court:' .. ARGV[2] end
local ids = redis.call('ZREVRANGE', list, ARGV[3], tonumber(ARGV[3]) + tonumber(ARGV[4]) - 1)
local msgs = {}
if #ids > 0 then msgs = redis.call('HMGET', base .. ':msg', unpack(ids)) end
return {ids, msgs, redis.call('ZCARD', list), redis.call('ZCARD', list .. ':unread')}
)LUA");
  auto r = pool_.eval(s, {}, {app_user, court_id, std::to_string(offset), std::to_string(limit)});
  if (!r.ok()) return r.error();
  if (r->elements.size() != 4) return unexpected("inbox");
  const auto& ids = r->elements[0].elements;
  const auto& msgs = r->elements[1].elements;
  InboxPage page;
  page.total = r->elements[2].integer;
  page.unread = r->elements[3].integer;
  for (std::size_t i = 0; i < msgs.size() && i < ids.size(); ++i) {
    if (msgs[i].type != RedisReply::Type::kString) continue;  // listed, but its message is gone (edited by hand)
    auto j = nlohmann::json::parse(msgs[i].str, nullptr, false);
    if (j.is_discarded()) continue;
    page.messages.push_back(InboxMessage{ids[i].str, std::move(j)});
  }
  return page;
}

Result<std::optional<DeliveryView>> DeliveryStore::get_delivery(const std::string& id) {
  const std::string dk = "sd:dlv:{" + id + "}";
  auto r = pool_.pipeline(
      {{"HGETALL", dk}, {"LRANGE", dk + ":hist", "0", "-1"}, {"LRANGE", "sd:ev:dlv:{" + id + "}", "0", "-1"}});
  if (!r.ok()) return r.error();
  const auto& rs = r.value();
  if (rs[0].elements.empty()) return std::optional<DeliveryView>{};
  auto v = parse_view(rs[0], rs[1], rs[2]);
  if (!v.ok()) return v.error();
  return std::optional<DeliveryView>{std::move(v.value())};
}

Result<std::vector<std::optional<DeliveryStore::SentRecord>>> DeliveryStore::sent_records(
    const std::vector<std::string>& ids) {
  std::vector<std::optional<SentRecord>> out;
  if (ids.empty()) return out;
  std::vector<std::vector<std::string>> cmds;
  cmds.reserve(ids.size());
  for (const auto& id : ids) cmds.push_back({"HMGET", "sd:dlv:{" + id + "}", "record", "provider"});
  auto r = pool_.pipeline(cmds);
  if (!r.ok()) return r.error();
  out.reserve(ids.size());
  for (const auto& row : r.value()) {
    if (row.elements.size() != 2) return unexpected("HMGET record provider");
    if (row.elements[0].type != RedisReply::Type::kString) {
      out.emplace_back();
      continue;
    }
    auto d = delivery_from_record_text(row.elements[0].str);
    if (!d.ok()) return d.error();
    const auto& provider = row.elements[1];
    out.emplace_back(SentRecord{std::move(d.value()), provider.type == RedisReply::Type::kString ? provider.str : ""});
  }
  return out;
}

Result<std::vector<DeliveryView>> DeliveryStore::case_deliveries(const std::string& court_id,
                                                                 const std::string& case_number) {
  auto ids = pool_.command({"ZRANGE", case_key(court_id, case_number), "0", "-1"});
  if (!ids.ok()) return ids.error();
  std::vector<DeliveryView> out;
  if (ids->elements.empty()) return out;
  std::vector<std::vector<std::string>> cmds;
  for (const auto& e : ids->elements) {
    const std::string dk = "sd:dlv:{" + e.str + "}";
    cmds.push_back({"HGETALL", dk});
    cmds.push_back({"LRANGE", dk + ":hist", "0", "-1"});
    cmds.push_back({"LRANGE", "sd:ev:dlv:{" + e.str + "}", "0", "-1"});
  }
  auto r = pool_.pipeline(cmds);
  if (!r.ok()) return r.error();
  for (std::size_t i = 0; i + 2 < r->size(); i += 3) {
    auto v = parse_view((*r)[i], (*r)[i + 1], (*r)[i + 2]);
    if (v.ok()) out.push_back(std::move(v.value()));
  }
  return out;
}

Result<std::vector<nlohmann::json>> DeliveryStore::case_unreachable(const std::string& court_id,
                                                                    const std::string& case_number) {
  auto r = pool_.command({"HGETALL", case_key(court_id, case_number) + ":unreachable"});
  if (!r.ok()) return r.error();
  std::vector<std::pair<std::string, nlohmann::json>> rows;
  for (std::size_t i = 0; i + 1 < r->elements.size(); i += 2) {
    auto j = nlohmann::json::parse(r->elements[i + 1].str, nullptr, false);
    if (j.is_object()) rows.emplace_back(r->elements[i].str, std::move(j));
  }
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<nlohmann::json> out;
  out.reserve(rows.size());
  for (auto& [field, j] : rows) out.push_back(std::move(j));
  return out;
}

Result<std::vector<std::string>> DeliveryStore::courts_of_case(const std::string& case_number) {
  auto r = pool_.command({"SMEMBERS", "sd:casecourts:{" + case_number + "}"});
  if (!r.ok()) return r.error();
  std::vector<std::string> out;
  for (const auto& e : r->elements) out.push_back(e.str);
  return out;
}

Result<std::vector<TimerOutcome>> DeliveryStore::fire_due_timers(std::int64_t now_ms, int limit) {
  auto r = pool_.eval(timers_script(), {}, {std::to_string(now_ms), std::to_string(limit)});
  if (!r.ok()) return r.error();
  std::vector<TimerOutcome> out;
  for (const auto& row : r->elements) {
    if (row.elements.size() != 4) return unexpected("fire_due_timers");
    out.push_back(TimerOutcome{row.elements[0].str, row.elements[1].str == "released", row.elements[2].str,
                               row.elements[3].str, now_ms});
  }
  return out;
}

Result<std::vector<TimerOutcome>> DeliveryStore::unsettled_timers(std::int64_t fired_before_ms, int limit) {
  auto r = pool_.command({"HSCAN", "sd:timers:fired", "0", "COUNT", std::to_string(limit)});
  if (!r.ok()) return r.error();
  std::vector<TimerOutcome> out;
  if (r->elements.size() != 2) return unexpected("HSCAN");
  const auto& kv = r->elements[1].elements;
  for (std::size_t i = 0; i + 1 < kv.size(); i += 2) {
    const auto j = nlohmann::json::parse(kv[i + 1].str, nullptr, false);
    if (!j.is_array() || j.size() != 4 || !j[3].is_number()) continue;
    const auto at = j[3].get<std::int64_t>();
    if (at >= fired_before_ms) continue;
    out.push_back(TimerOutcome{kv[i].str, j[0] == "released", j[1].get<std::string>(), j[2].get<std::string>(), at});
  }
  return out;
}

Status DeliveryStore::settle_timers(const std::vector<std::pair<std::string, std::vector<EvidenceLeaf>>>& settled) {
  if (settled.empty()) return ok_status();
  static const LuaScript s(std::string(kLuaCallAll) + kLuaRank + R"LUA(
for _, t in ipairs(cjson.decode(ARGV[1])) do
  if redis.call('HDEL', 'sd:timers:fired', t.id) == 1 then append_evidence(t.ev) end
end
return 1
)LUA");
  ScriptArgs args({""});
  std::string list;
  const bool ok = append_object_array(list, settled, [&](JsonObjectWriter& t, const auto& timer) {
    t.string("id", timer.first);
    return args.append_evidence(t.nested("ev"), timer.second);
  });
  if (!ok) return not_utf8("fired timers");
  args.set(0, std::move(list));
  auto r = pool_.eval(s, {}, args.argv());
  if (!r.ok()) return r.error();
  return ok_status();
}

Result<DeliveryStore::ReceiptLookup> DeliveryStore::lookup_receipt_keys(const std::vector<std::string>& keys,
                                                                        const std::vector<CallbackBinding>& bindings,
                                                                        int ttl_s) {
  static const LuaScript bind(R"LUA(
local out = {}
for i = 1, #KEYS do
  if redis.call('SET', KEYS[i], ARGV[i + 1], 'NX', 'EX', tonumber(ARGV[1])) then
    out[i] = 1
  elseif redis.call('GET', KEYS[i]) == ARGV[i + 1] then
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
)LUA");
  ReceiptLookup out;
  if (keys.empty() && bindings.empty()) return out;
  std::vector<std::vector<std::string>> cmds;
  if (!keys.empty()) {
    std::vector<std::string> mget{"MGET"};
    for (const auto& k : keys) mget.push_back("sd:rcpt:{" + k + "}");
    cmds.push_back(std::move(mget));
  }
  std::vector<std::string> bind_keys;
  std::vector<std::string> bind_args{std::to_string(ttl_s)};
  for (const auto& b : bindings) {
    bind_keys.push_back("sd:cb:{" + b.id + "}");
    bind_args.push_back(b.body_sha256);
  }
  if (!bindings.empty()) {
    std::vector<std::string> evalsha{"EVALSHA", bind.sha(), std::to_string(bind_keys.size())};
    evalsha.insert(evalsha.end(), bind_keys.begin(), bind_keys.end());
    evalsha.insert(evalsha.end(), bind_args.begin(), bind_args.end());
    cmds.push_back(std::move(evalsha));
  }
  auto r = pool_.pipeline(cmds);
  if (!r.ok()) return r.error();
  std::size_t at = 0;
  if (!keys.empty()) {
    for (const auto& e : r.value()[at++].elements)
      out.found.push_back(e.type == RedisReply::Type::kString ? e.str : "");
  }
  if (!bindings.empty()) {
    RedisReply b = r.value()[at];
    if (b.type == RedisReply::Type::kError && b.str.rfind("NOSCRIPT", 0) == 0) {
      auto loaded = pool_.eval(bind, bind_keys, bind_args);  // once after Redis lost its script cache
      if (!loaded.ok()) return loaded.error();
      b = std::move(loaded.value());
    }
    if (b.type == RedisReply::Type::kError) return Error::transient("redis_error", "binding callbacks: " + b.str);
    for (const auto& e : b.elements) out.bound.push_back(e.integer == 1);
  }
  if (out.found.size() != keys.size() || out.bound.size() != bindings.size()) return unexpected("lookup_receipt_keys");
  return out;
}

Result<long long> DeliveryStore::sent_without_receipt(const std::string& provider, std::int64_t older_than_ms) {
  // Only the recent overdue ones count: a receipt lost long ago says nothing about the provider now.
  const std::string key = "sd:sent:" + provider;
  const std::int64_t window = std::max<std::int64_t>(now_unix_ms() - older_than_ms, 1000);
  auto r = pool_.pipeline({{"ZREMRANGEBYSCORE", key, "-inf", "(" + std::to_string(older_than_ms - window)},
                           {"ZCOUNT", key, "-inf", std::to_string(older_than_ms)}});
  if (!r.ok()) return r.error();
  return r->back().integer;
}

Result<long long> DeliveryStore::take_tokens(const std::string& bucket, double rate_per_sec, long long wanted) {
  static const LuaScript s(std::string(kLuaBucket) +
                           "return take_tokens(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]))");
  auto r = pool_.eval(s, {"sd:rate:" + bucket}, {std::to_string(rate_per_sec), std::to_string(wanted)});
  if (!r.ok()) return r.error();
  return to_i64(r.value());
}

Status DeliveryStore::park_receipts(const std::vector<std::pair<std::string, std::string>>& key_and_json,
                                    std::int64_t now_ms) {
  if (key_and_json.empty()) return ok_status();
  std::vector<std::vector<std::string>> cmds;
  for (const auto& [key, json] : key_and_json) {
    cmds.push_back({"HSET", "sd:rcpt:parked", key, json});
    cmds.push_back({"ZADD", "sd:rcpt:parked:tried", "NX", std::to_string(now_ms + 1000), key});  // next try
    cmds.push_back({"HSETNX", "sd:rcpt:parked:at", key, std::to_string(now_ms)});
  }
  auto r = pool_.pipeline(cmds);
  if (!r.ok()) return r.error();
  for (const auto& rep : r.value()) {
    if (rep.type == RedisReply::Type::kError) return Error::transient("redis_error", "parking a receipt: " + rep.str);
  }
  return ok_status();
}

Result<ParkedReceipts> DeliveryStore::take_parked_receipts(std::int64_t now_ms, int limit,
                                                           std::int64_t give_up_after_ms,
                                                           std::int64_t forget_after_ms) {
  // sd:rcpt:parked:tried holds each one's next try. A receipt is tried again after as long as it has been parked
  // (1 s to 10 min), so a backlog that will never match costs little and a new one is tried within seconds.
  static const LuaScript s(R"LUA(
local now = tonumber(ARGV[1])
if redis.call('EXISTS', 'sd:rcpt:unmatched:dated') == 0 then
  -- once: receipts given up on before their time was kept count from now
  for _, k in ipairs(redis.call('HKEYS', 'sd:rcpt:unmatched')) do
    redis.call('ZADD', 'sd:rcpt:unmatched:at', 'NX', now, k)
  end
  redis.call('SET', 'sd:rcpt:unmatched:dated', '1')
end
local old = redis.call('ZRANGEBYSCORE', 'sd:rcpt:unmatched:at', '-inf', '(' .. (now - tonumber(ARGV[4])), 'LIMIT', 0,
  tonumber(ARGV[2]))
for _, k in ipairs(old) do
  redis.call('HDEL', 'sd:rcpt:unmatched', k)
  redis.call('ZREM', 'sd:rcpt:unmatched:at', k)
end
local keys = redis.call('ZRANGEBYSCORE', 'sd:rcpt:parked:tried', '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
local given_up = 0
for _, k in ipairs(keys) do
  local at = tonumber(redis.call('HGET', 'sd:rcpt:parked:at', k) or '')
  if not at then
    at = now  -- parked before the time was kept: counted from now
    redis.call('HSET', 'sd:rcpt:parked:at', k, now)
  end
  local json = redis.call('HGET', 'sd:rcpt:parked', k) or ''
  if now - at > tonumber(ARGV[3]) then
    redis.call('HSET', 'sd:rcpt:unmatched', k, json)
    redis.call('ZADD', 'sd:rcpt:unmatched:at', now, k)
    redis.call('HDEL', 'sd:rcpt:parked', k)
    redis.call('HDEL', 'sd:rcpt:parked:at', k)
    redis.call('ZREM', 'sd:rcpt:parked:tried', k)
    given_up = given_up + 1
  else
    redis.call('ZADD', 'sd:rcpt:parked:tried', 'XX', now + math.max(1000, math.min(600000, now - at)), k)
    out[#out + 1] = {k, json}
  end
end
return {out, given_up, #old}
)LUA");
  auto r = pool_.eval(s, {},
                      {std::to_string(now_ms), std::to_string(limit), std::to_string(give_up_after_ms),
                       std::to_string(forget_after_ms)});
  if (!r.ok()) return r.error();
  ParkedReceipts out;
  if (r->elements.size() != 3) return unexpected("take_parked_receipts");
  for (const auto& row : r->elements[0].elements) {
    if (row.elements.size() == 2) out.receipts.emplace_back(row.elements[0].str, row.elements[1].str);
  }
  out.given_up = r->elements[1].integer;
  out.forgotten = r->elements[2].integer;
  return out;
}

Status DeliveryStore::unpark_receipts(const std::vector<std::string>& keys) {
  if (keys.empty()) return ok_status();
  std::vector<std::string> hdel{"HDEL", "sd:rcpt:parked"};
  std::vector<std::string> zrem{"ZREM", "sd:rcpt:parked:tried"};
  std::vector<std::string> hdel_at{"HDEL", "sd:rcpt:parked:at"};
  hdel.insert(hdel.end(), keys.begin(), keys.end());
  zrem.insert(zrem.end(), keys.begin(), keys.end());
  hdel_at.insert(hdel_at.end(), keys.begin(), keys.end());
  auto r = pool_.pipeline({hdel, zrem, hdel_at});
  if (!r.ok()) return r.error();
  return ok_status();
}

Result<long long> DeliveryStore::parked_receipt_count() {
  auto r = pool_.command({"HLEN", "sd:rcpt:parked"});
  if (!r.ok()) return r.error();
  return r->integer;
}

Result<long long> DeliveryStore::unmatched_receipt_count() {
  auto r = pool_.command({"HLEN", "sd:rcpt:unmatched"});
  if (!r.ok()) return r.error();
  return r->integer;
}

Status DeliveryStore::append_evidence(const std::vector<EvidenceLeaf>& leaves) {
  if (leaves.empty()) return ok_status();
  // Appended with one script call so the leaf and its hash share an index.
  static const LuaScript s(std::string(kLuaCallAll) + kLuaRank + "append_evidence(cjson.decode(ARGV[1])) return 1");
  ScriptArgs args({""});
  if (auto written = args.set_evidence(0, leaves); !written.ok()) return written.error();
  auto r = pool_.eval(s, {}, args.argv());
  if (!r.ok()) return r.error();
  return ok_status();
}

std::string DeliveryStore::broadcast_counts_key(const std::string& broadcast_id) {
  return "sd:bc:{" + broadcast_id + "}:counts";
}

Result<long long> DeliveryStore::cancel_unclaimed(const std::vector<std::string>& ids, std::int64_t now_ms,
                                                  const std::string& detail) {
  if (ids.empty()) return 0LL;
  static const LuaScript s(std::string(kLuaCallAll) + kLuaRank + R"LUA(
local now = tonumber(ARGV[1])
local n = 0
for _, id in ipairs(cjson.decode(ARGV[3])) do
  local dk = 'sd:dlv:{' .. id .. '}'
  local h = redis.call('HMGET', dk, 'status', 'attempts', 'channel')
  if h[1] == 'ACCEPTED' and tonumber(h[2] or '0') == 0 then
    redis.call('ZREM', 'sd:q:' .. h[3], id)
    redis.call('ZREM', 'sd:timers', id)
    if advance(dk, 'CANCELLED', now, ARGV[2], nil) then n = n + 1 end
  end
end
return n
)LUA");
  nlohmann::json arr(ids);
  auto r = pool_.eval(s, {}, {std::to_string(now_ms), detail, arr.dump()});
  if (!r.ok()) return r.error();
  return r->integer;
}

Result<long long> DeliveryStore::queue_length(const std::string& channel) {
  auto r = pool_.command({"ZCARD", "sd:q:" + channel});
  if (!r.ok()) return r.error();
  return r->integer;
}

}  // namespace songda
