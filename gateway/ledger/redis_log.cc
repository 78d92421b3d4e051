#include "gateway/ledger/redis_log.h"

#include <algorithm>
#include <utility>

#include "gateway/core/crypto.h"

namespace songda::ledger {
namespace {

using evidence::NodeId;
using evidence::NodeMap;

Error unexpected(const std::string& what) {
  return Error::transient("redis_error", "unexpected Redis reply to " + what);
}

std::uint64_t as_u64(const RedisReply& r) {
  if (r.type == RedisReply::Type::kInteger) return r.integer < 0 ? 0 : static_cast<std::uint64_t>(r.integer);
  if (r.type == RedisReply::Type::kString) {
    try {
      return std::stoull(r.str);
    } catch (...) {
      return 0;
    }
  }
  return 0;
}

Result<std::string> raw_hash(const RedisReply& r, const std::string& where) {
  if (r.type != RedisReply::Type::kString) return unexpected(where);
  std::string raw = from_hex(r.str);
  if (raw.size() != evidence::kHashSize) {
    return Error::permanent("redis_error", where + " holds \"" + r.str.substr(0, 80) +
                                               "\", not a 64-hex hash; hint: run songda ledger check");
  }
  return raw;
}

Status reply_ok(const std::vector<RedisReply>& replies, const std::string& what) {
  for (const auto& r : replies) {
    if (r.type == RedisReply::Type::kError) return Error::permanent("redis_error", what + ": " + r.str);
  }
  return ok_status();
}

// Appends each level's new nodes after checking every level's length (and the fence) first.
// KEYS[1] = lease, KEYS[2..] = level keys. ARGV: holder, ttl, L, then per level: expected, n, hashes...
const LuaScript& extend_script() {
  static const LuaScript s(R"LUA(
if ARGV[1] ~= '' then
  if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
  if tonumber(ARGV[2]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
end
local L = tonumber(ARGV[3])
local pos = 4
local plan = {}
for i = 1, L do
  local expected = tonumber(ARGV[pos])
  local n = tonumber(ARGV[pos + 1])
  if redis.call('LLEN', KEYS[i + 1]) ~= expected then return -2 end
  plan[i] = {KEYS[i + 1], pos + 2, n}
  pos = pos + 2 + n
end
local written = 0
for i = 1, L do
  local key, start, n = plan[i][1], plan[i][2], plan[i][3]
  local j = 0
  while j < n do
    local e = math.min(n, j + 1000)
    redis.call('RPUSH', key, unpack(ARGV, start + j, start + e - 1))
    j = e
  end
  written = written + n
end
return written
)LUA");
  return s;
}

// {latest json or false, LLEN checkpoints}, read atomically.
const LuaScript& latest_script() {
  static const LuaScript s(R"LUA(
return {redis.call('GET', KEYS[1]) or '', redis.call('LLEN', KEYS[2])}
)LUA");
  return s;
}

// Compare-and-set of one stored checkpoint (and latest when it is the same JSON).
const LuaScript& replace_checkpoint_script() {
  static const LuaScript s(R"LUA(
local cur = redis.call('LINDEX', KEYS[1], ARGV[1])
if not cur then return -1 end
if cur ~= ARGV[2] then return 0 end
redis.call('LSET', KEYS[1], ARGV[1], ARGV[3])
if redis.call('GET', KEYS[2]) == ARGV[2] then redis.call('SET', KEYS[2], ARGV[3]) end
return 1
)LUA");
  return s;
}

Result<StoredCheckpoint> parse_stored(std::uint64_t sequence, std::string json) {
  const auto j = nlohmann::json::parse(json, nullptr, false);
  auto c = evidence::checkpoint_from_json(j);
  if (!c) {
    return Error::permanent("schema",
                            "stored checkpoint #" + std::to_string(sequence) + " is unreadable: " + c.error().message);
  }
  return StoredCheckpoint{sequence, std::move(json), std::move(*c)};
}

}  // namespace

std::string level_key(unsigned level) {
  return level == 0 ? std::string(kHashesKey) : "sd:ev:lvl:" + std::to_string(level);
}

std::string delivery_index_key(std::string_view delivery_id) { return "sd:ev:dlv:{" + std::string(delivery_id) + "}"; }

// ---- RedisNodeSource ----

Result<std::uint64_t> RedisNodeSource::tree_size() const {
  auto r = pool_.command({"LLEN", kHashesKey});
  if (!r) return r.error();
  if (r->type != RedisReply::Type::kInteger) return unexpected("LLEN");
  return as_u64(*r);
}

Result<std::string> RedisNodeSource::subtree_hash(unsigned level, std::uint64_t index) const {
  const NodeId id{level, index};
  auto nodes = subtree_hashes(std::span<const NodeId>(&id, 1));
  if (!nodes) return nodes.error();
  return nodes->begin()->second;
}

Result<NodeMap> RedisNodeSource::subtree_hashes(std::span<const NodeId> ids) const {
  NodeMap out;
  if (ids.empty()) return out;
  std::vector<std::vector<std::string>> cmds;
  cmds.reserve(ids.size());
  for (const NodeId& id : ids) {
    if (id.level >= kMaxLevels) return Error::permanent("not_found", "no level " + std::to_string(id.level));
    cmds.push_back({"LINDEX", level_key(id.level), std::to_string(id.index)});
  }
  auto replies = pool_.pipeline(cmds);
  if (!replies) return replies.error();
  if (replies->size() != ids.size()) return unexpected("LINDEX");
  std::vector<NodeId> behind;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const RedisReply& r = (*replies)[i];
    if (r.is_nil()) {
      behind.push_back(ids[i]);
      continue;
    }
    auto h = raw_hash(r, level_key(ids[i].level) + "[" + std::to_string(ids[i].index) + "]");
    if (!h) return h.error();
    out.emplace(ids[i], std::move(*h));
  }
  if (behind.empty()) return out;

  // Nodes whose level list has not caught up: fold them from the leaf hashes.
  cmds.clear();
  for (const NodeId& id : behind) {
    const std::uint64_t width = std::uint64_t{1} << id.level;
    if (id.level == 0 || width > fallback_max_leaves_) {
      return Error::permanent("not_found", "subtree (level " + std::to_string(id.level) + ", index " +
                                               std::to_string(id.index) +
                                               ") is not in the log yet; hint: wait for the next checkpoint");
    }
    const std::uint64_t first = id.index * width;
    cmds.push_back({"LRANGE", kHashesKey, std::to_string(first), std::to_string(first + width - 1)});
  }
  auto leaves = pool_.pipeline(cmds);
  if (!leaves) return leaves.error();
  for (std::size_t i = 0; i < behind.size(); ++i) {
    const NodeId& id = behind[i];
    const RedisReply& r = (*leaves)[i];
    const std::uint64_t width = std::uint64_t{1} << id.level;
    if (r.type != RedisReply::Type::kArray || r.elements.size() != width) {
      return Error::permanent("not_found", "subtree (level " + std::to_string(id.level) + ", index " +
                                               std::to_string(id.index) + ") is not complete");
    }
    std::vector<std::string> level;
    level.reserve(width);
    for (const auto& e : r.elements) {
      auto h = raw_hash(e, kHashesKey);
      if (!h) return h.error();
      level.push_back(std::move(*h));
    }
    while (level.size() > 1) {
      std::vector<std::string> up;
      up.reserve(level.size() / 2);
      for (std::size_t j = 0; j + 1 < level.size(); j += 2) up.push_back(evidence::node_hash(level[j], level[j + 1]));
      level = std::move(up);
    }
    out.emplace(id, std::move(level.front()));
  }
  return out;
}

// ---- Levels ----

Result<LevelExtension> extend_levels(RedisPool& pool, std::uint64_t max_leaves, const Fence& fence) {
  if (max_leaves < 2) max_leaves = 2;
  // Round 1: every level's length.
  std::vector<std::vector<std::string>> cmds;
  for (unsigned k = 0; k < kMaxLevels; ++k) cmds.push_back({"LLEN", level_key(k)});
  auto lens_r = pool.pipeline(cmds);
  if (!lens_r) return lens_r.error();
  if (auto s = reply_ok(*lens_r, "LLEN"); !s) return s.error();
  std::vector<std::uint64_t> len(kMaxLevels);
  for (unsigned k = 0; k < kMaxLevels; ++k) len[k] = as_u64((*lens_r)[k]);
  for (unsigned k = 1; k < kMaxLevels; ++k) {
    if (len[k] > len[k - 1] / 2) {
      return Error::permanent("levels_inconsistent",
                              level_key(k) + " holds " + std::to_string(len[k]) + " nodes but " + level_key(k - 1) +
                                  " only " + std::to_string(len[k - 1]) +
                                  "; hint: stop the checkpointers and run songda ledger check --repair-levels");
    }
  }
  LevelExtension out;
  out.log_size = len[0];
  const std::uint64_t covered = 2 * len[1];  // leaves already paired into level 1
  const std::uint64_t target = std::min(len[0], covered + max_leaves);
  out.built_to = target;
  if (target < covered + 2) {
    // Nothing new can be paired: every level is already complete for `target` leaves.
    return out;
  }

  // Round 2: the new leaf hashes and each upper level's unpaired tail (at most one node each).
  cmds.clear();
  cmds.push_back({"LRANGE", kHashesKey, std::to_string(covered), std::to_string(target - 1)});
  std::vector<unsigned> tail_levels;
  for (unsigned k = 1; k + 1 < kMaxLevels && len[k] > 0; ++k) {
    if (len[k] > 2 * len[k + 1]) {
      cmds.push_back({"LRANGE", level_key(k), std::to_string(2 * len[k + 1]), std::to_string(len[k] - 1)});
      tail_levels.push_back(k);
    }
  }
  auto tails_r = pool.pipeline(cmds);
  if (!tails_r) return tails_r.error();
  if (auto s = reply_ok(*tails_r, "LRANGE"); !s) return s.error();
  std::vector<std::vector<std::string>> tail(kMaxLevels);
  auto decode = [&](const RedisReply& r, unsigned k) -> Status {
    for (const auto& e : r.elements) {
      auto h = raw_hash(e, level_key(k));
      if (!h) return h.error();
      tail[k].push_back(std::move(*h));
    }
    return ok_status();
  };
  if (auto s = decode((*tails_r)[0], 0); !s) return s.error();
  if (tail[0].size() != target - covered) return unexpected("LRANGE " + std::string(kHashesKey));
  for (std::size_t i = 0; i < tail_levels.size(); ++i) {
    if (auto s = decode((*tails_r)[i + 1], tail_levels[i]); !s) return s.error();
  }

  // Pair upwards. New nodes of level k+1 start at index len[k+1].
  std::vector<std::vector<std::string>> fresh(kMaxLevels);
  std::vector<std::string> cur = std::move(tail[0]);
  for (unsigned k = 0; k + 1 < kMaxLevels; ++k) {
    std::vector<std::string>& up = fresh[k + 1];
    for (std::size_t j = 0; j + 1 < cur.size(); j += 2) up.push_back(evidence::node_hash(cur[j], cur[j + 1]));
    if (up.empty()) break;                                   // level k+1 gains nothing, so nothing above it changes
    std::vector<std::string> next = std::move(tail[k + 1]);  // starts at index 2·len[k+2]
    next.insert(next.end(), up.begin(), up.end());
    cur = std::move(next);
  }

  // Round 3: one script appends them all, if nothing moved meanwhile.
  std::vector<std::string> keys{fence.lease_key};
  std::vector<std::string> args{fence.holder, std::to_string(fence.renew_ttl_ms), ""};
  unsigned levels = 0;
  for (unsigned k = 1; k < kMaxLevels; ++k) {
    if (fresh[k].empty()) continue;
    keys.push_back(level_key(k));
    args.push_back(std::to_string(len[k]));
    args.push_back(std::to_string(fresh[k].size()));
    for (const auto& h : fresh[k]) args.push_back(to_hex(h));
    out.nodes_written += fresh[k].size();
    ++levels;
  }
  args[2] = std::to_string(levels);
  if (levels == 0) return out;
  auto w = pool.eval(extend_script(), keys, args);
  if (!w) return w.error();
  if (w->type != RedisReply::Type::kInteger) return unexpected("level extension");
  if (w->integer == -1) return Error::permanent("lease_lost", "the evidence-log lease is no longer ours");
  if (w->integer == -2) return Error::transient("conflict", "another writer extended the levels; retry");
  return out;
}

Result<LevelExtension> extend_levels_to_end(RedisPool& pool, std::uint64_t step_leaves, const Fence& fence) {
  LevelExtension total;
  std::uint64_t goal = 0;
  bool first = true;
  for (;;) {
    auto step = extend_levels(pool, step_leaves, fence);
    if (!step) return step.error();
    if (first) {
      goal = step->log_size;
      first = false;
    }
    total.built_to = step->built_to;
    total.log_size = step->log_size;
    total.nodes_written += step->nodes_written;
    if (step->built_to >= goal || step->nodes_written == 0) return total;
  }
}

// ---- Stored checkpoints ----

Result<std::optional<StoredCheckpoint>> read_latest_checkpoint(RedisPool& pool) {
  auto r = pool.eval(latest_script(), {kLatestCheckpointKey, kCheckpointsKey}, {});
  if (!r) return r.error();
  if (r->type != RedisReply::Type::kArray || r->elements.size() != 2) return unexpected("latest checkpoint");
  if (r->elements[0].str.empty()) return std::optional<StoredCheckpoint>{};
  const std::uint64_t count = as_u64(r->elements[1]);
  auto parsed = parse_stored(count > 0 ? count - 1 : 0, r->elements[0].str);
  if (!parsed) return parsed.error();
  return std::optional<StoredCheckpoint>{std::move(*parsed)};
}

Result<std::vector<StoredCheckpoint>> read_checkpoints(RedisPool& pool, std::uint64_t from, std::uint64_t count) {
  std::vector<StoredCheckpoint> out;
  if (count == 0) return out;
  auto r = pool.command({"LRANGE", kCheckpointsKey, std::to_string(from), std::to_string(from + count - 1)});
  if (!r) return r.error();
  for (std::size_t i = 0; i < r->elements.size(); ++i) {
    auto parsed = parse_stored(from + i, r->elements[i].str);
    if (!parsed) return parsed.error();
    out.push_back(std::move(*parsed));
  }
  return out;
}

Status attach_tsa_token(RedisPool& pool, std::uint64_t sequence, const std::string& token_der) {
  auto cur = pool.command({"LINDEX", kCheckpointsKey, std::to_string(sequence)});
  if (!cur) return cur.error();
  if (cur->is_nil()) return Error::permanent("not_found", "no checkpoint #" + std::to_string(sequence));
  auto parsed = parse_stored(sequence, cur->str);
  if (!parsed) return parsed.error();
  evidence::Checkpoint c = parsed->checkpoint;
  c.tsa_token = token_der;
  const std::string json = evidence::to_json(c).dump();
  auto r = pool.eval(replace_checkpoint_script(), {kCheckpointsKey, kLatestCheckpointKey},
                     {std::to_string(sequence), cur->str, json});
  if (!r) return r.error();
  if (r->integer == -1) return Error::permanent("not_found", "no checkpoint #" + std::to_string(sequence));
  if (r->integer == 0) return Error::transient("conflict", "checkpoint #" + std::to_string(sequence) + " changed");
  return ok_status();
}

}  // namespace songda::ledger
