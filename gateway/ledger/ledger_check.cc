// rebuild_and_check(): the auditor of the Redis evidence log (see redis_log.h).
#include <algorithm>

#include "gateway/core/crypto.h"
#include "gateway/core/text.h"
#include "gateway/evidence/jcs.h"
#include "gateway/evidence/record.h"
#include "gateway/ledger/compact_tree.h"
#include "gateway/ledger/redis_log.h"

namespace songda::ledger {
namespace {

constexpr std::size_t kMaxListed = 100;
constexpr std::size_t kMaxRecordProblems = 20;
constexpr std::size_t kMaxCheckpointProblems = 50;

const LuaScript& sizes_script() {
  static const LuaScript s("return {redis.call('LLEN', KEYS[1]), redis.call('LLEN', KEYS[2])}");
  return s;
}

std::string short_hex(std::string_view raw) { return to_hex(raw).substr(0, 16) + "…"; }

// Checks one record's bytes: a valid record, and exactly its canonical form.
std::optional<std::string> record_problem(const std::string& bytes, std::uint64_t index) {
  const auto j = nlohmann::json::parse(bytes, nullptr, false);
  if (j.is_discarded()) return "leaf #" + std::to_string(index) + ": not JSON";
  auto r = evidence::record_from_json(j);
  if (!r) return "leaf #" + std::to_string(index) + ": " + r.error().message;
  auto canonical = evidence::canonicalize(j);
  if (!canonical || *canonical != bytes) {
    return "leaf #" + std::to_string(index) + ": bytes are not the record's canonical (RFC 8785) form";
  }
  return std::nullopt;
}

void add_problem(LedgerCheckReport& rep, std::string p) {
  if (rep.checkpoint_problems.size() < kMaxCheckpointProblems) rep.checkpoint_problems.push_back(std::move(p));
}

Status rewrite_levels(RedisPool& pool, const CompactTree& tree) {
  for (unsigned k = 1; k < kMaxLevels; ++k) {
    const std::string key = level_key(k);
    const std::string tmp = key + ":rebuild";
    if (auto r = pool.command({"DEL", tmp}); !r) return r.error();
    const std::uint64_t n = tree.level_size(k);
    for (std::uint64_t a = 0; a < n; a += 1000) {
      std::vector<std::string> cmd{"RPUSH", tmp};
      for (std::uint64_t i = a; i < std::min(n, a + 1000); ++i) cmd.push_back(to_hex(tree.node(k, i)));
      if (auto r = pool.command(cmd); !r) return r.error();
    }
    // Each level is swapped in whole, so every level list is always a correct prefix.
    auto r = n > 0 ? pool.command({"RENAME", tmp, key}) : pool.command({"DEL", key});
    if (!r) return r.error();
    if (r->type == RedisReply::Type::kError) return Error::permanent("redis_error", r->str);
  }
  return ok_status();
}

}  // namespace

Result<LedgerCheckReport> rebuild_and_check(RedisPool& pool, const LedgerCheckOptions& o) {
  LedgerCheckReport rep;
  const std::uint64_t chunk = std::max<std::uint64_t>(o.chunk, 1);
  auto sizes = pool.eval(sizes_script(), {kLeavesKey, kHashesKey}, {});
  if (!sizes) return sizes.error();
  if (sizes->elements.size() != 2) return Error::transient("redis_error", "unexpected reply to LLEN");
  rep.leaves = static_cast<std::uint64_t>(std::max(0LL, sizes->elements[0].integer));
  rep.hashes = static_cast<std::uint64_t>(std::max(0LL, sizes->elements[1].integer));
  const std::uint64_t n = std::min(rep.leaves, rep.hashes);
  rep.checked = n;

  // 1. Every record's bytes → leaf hash, compared with the stored one; the tree of the stored hashes.
  CompactTree tree;
  tree.reserve(n);
  for (std::uint64_t a = 0; a < n; a += chunk) {
    const std::uint64_t b = std::min(n, a + chunk);
    auto r = pool.pipeline({{"LRANGE", kLeavesKey, std::to_string(a), std::to_string(b - 1)},
                            {"LRANGE", kHashesKey, std::to_string(a), std::to_string(b - 1)}});
    if (!r) return r.error();
    const auto& leaves = (*r)[0].elements;
    const auto& hashes = (*r)[1].elements;
    if (leaves.size() != b - a || hashes.size() != b - a) {
      return Error::transient("redis_error", "the evidence lists shrank while being read");
    }
    for (std::uint64_t i = 0; i < b - a; ++i) {
      const std::uint64_t index = a + i;
      const std::string computed = evidence::leaf_hash(leaves[i].str);
      std::string stored = from_hex(hashes[i].str);
      if (stored.size() != evidence::kHashSize || to_hex(stored) != hashes[i].str || stored != computed) {
        ++rep.leaf_mismatches;
        if (rep.mismatched.size() < kMaxListed) rep.mismatched.push_back(index);
        if (stored.size() != evidence::kHashSize) stored = computed;
      }
      if (auto p = record_problem(leaves[i].str, index)) {
        ++rep.records_invalid;
        if (rep.record_problems.size() < kMaxRecordProblems) rep.record_problems.push_back(std::move(*p));
      }
      tree.append_leaf_hash(stored);
    }
  }

  // 2. Every stored upper-level node against the rebuilt tree.
  for (unsigned k = 1; k < tree.level_count(); ++k) {
    auto len = pool.command({"LLEN", level_key(k)});
    if (!len) return len.error();
    const std::uint64_t want = tree.level_size(k);
    const std::uint64_t have = std::min<std::uint64_t>(want, static_cast<std::uint64_t>(std::max(0LL, len->integer)));
    rep.level_nodes_missing += want - have;
    for (std::uint64_t a = 0; a < have; a += chunk) {
      const std::uint64_t b = std::min(have, a + chunk);
      auto r = pool.command({"LRANGE", level_key(k), std::to_string(a), std::to_string(b - 1)});
      if (!r) return r.error();
      for (std::uint64_t i = 0; i < r->elements.size(); ++i) {
        ++rep.level_nodes_checked;
        if (r->elements[i].str != to_hex(tree.node(k, a + i))) ++rep.level_mismatches;
      }
    }
  }
  if (o.repair_levels && (rep.level_mismatches > 0 || rep.level_nodes_missing > 0)) {
    if (auto s = rewrite_levels(pool, tree); !s) return s.error();
    rep.levels_repaired = true;
  }

  // 3. Every stored checkpoint: readable, signed (given a key), growing, and its root recomputed.
  auto count = pool.command({"LLEN", kCheckpointsKey});
  if (!count) return count.error();
  rep.checkpoints = static_cast<std::uint64_t>(std::max(0LL, count->integer));
  std::uint64_t prev_size = 0;
  std::int64_t prev_ts = 0;
  std::string last_json;
  for (std::uint64_t a = 0; a < rep.checkpoints; a += 1000) {
    auto r = pool.command({"LRANGE", kCheckpointsKey, std::to_string(a), std::to_string(a + 999)});
    if (!r) return r.error();
    for (std::uint64_t i = 0; i < r->elements.size(); ++i) {
      const std::uint64_t seq = a + i;
      const std::string& json = r->elements[i].str;
      last_json = json;
      const std::string name = "checkpoint #" + std::to_string(seq);
      auto c = evidence::checkpoint_from_json(nlohmann::json::parse(json, nullptr, false));
      if (!c) {
        add_problem(rep, name + ": unreadable: " + c.error().message);
        continue;
      }
      bool good = true;
      if (o.key) {
        if (auto s = evidence::verify_checkpoint(*c, *o.key); !s) {
          add_problem(rep, name + ": signature 签名: " + s.error().message);
          good = false;
        }
      }
      if (c->tree_size < prev_size || c->timestamp_ms < prev_ts) {
        add_problem(rep, name + ": goes backwards (size " + std::to_string(c->tree_size) + " after " +
                             std::to_string(prev_size) + ")");
        good = false;
      }
      prev_size = std::max(prev_size, c->tree_size);
      prev_ts = std::max(prev_ts, c->timestamp_ms);
      if (c->tree_size > tree.size()) {
        add_problem(rep, name + ": covers " + std::to_string(c->tree_size) + " leaves, only " +
                             std::to_string(tree.size()) + " were checked (the log holds " +
                             std::to_string(rep.hashes) + ")");
        continue;
      }
      auto root = evidence::root(tree, c->tree_size);
      if (!root || *root != c->root_hash) {
        add_problem(rep, name + " (size " + std::to_string(c->tree_size) + "): signed root " + short_hex(c->root_hash) +
                             ", the stored leaf hashes give " + (root ? short_hex(*root) : root.error().message) +
                             " — the log was rewritten 日志被改写");
        good = false;
      }
      if (!rep.mismatched.empty() && rep.mismatched.front() < c->tree_size) {
        add_problem(rep, name + " (size " + std::to_string(c->tree_size) + ") covers modified leaf #" +
                             std::to_string(rep.mismatched.front()) + ": its inclusion proofs cannot verify");
        good = false;
      }
      if (good) ++rep.checkpoints_verified;
    }
  }
  if (rep.checkpoints > 0) {
    auto latest = pool.command({"GET", kLatestCheckpointKey});
    if (!latest) return latest.error();
    if (latest->str != last_json) {
      // Latest may be one newer than our read, but never different from the list's last entry for long.
      auto again = pool.command({"LINDEX", kCheckpointsKey, "-1"});
      if (!again) return again.error();
      if (latest->str != again->str) add_problem(rep, "sd:ev:checkpoint:latest is not the last stored checkpoint");
    }
  }

  rep.ok = rep.leaves == rep.hashes && rep.leaf_mismatches == 0 && rep.records_invalid == 0 &&
           (rep.level_mismatches == 0 || rep.levels_repaired) && rep.checkpoint_problems.empty();
  return rep;
}

std::string LedgerCheckReport::text() const {
  auto mark = [](bool good) { return good ? std::string("[OK]   ") : std::string("[FAIL] "); };
  std::string out = ok ? "LEDGER CHECK OK 证据日志核验通过\n" : "LEDGER CHECK FAILED 证据日志核验未通过\n";
  out += mark(leaves == hashes) + "log size 日志规模: " + std::to_string(leaves) + " records, " +
         std::to_string(hashes) + " leaf hashes" + (leaves == hashes ? "" : " — the two lists differ in length") + "\n";
  std::string listed;
  for (std::size_t i = 0; i < mismatched.size(); ++i) listed += (i ? ", #" : " #") + std::to_string(mismatched[i]);
  out += mark(leaf_mismatches == 0) + "leaf hashes 叶哈希: " +
         (leaf_mismatches == 0 ? "all " + std::to_string(checked) + " records hash to their stored leaf hash"
                               : std::to_string(leaf_mismatches) + " of " + std::to_string(checked) +
                                     " records were modified 记录被改动:" + listed) +
         "\n";
  out += mark(records_invalid == 0) + "records 记录格式: " +
         (records_invalid == 0 ? "every record is valid and canonical" : std::to_string(records_invalid) + " invalid") +
         "\n";
  for (const auto& p : record_problems) out += "         " + p + "\n";
  out += mark(level_mismatches == 0 || levels_repaired) + "levels 中间层: " + std::to_string(level_nodes_checked) +
         " nodes checked, " + std::to_string(level_mismatches) + " differ, " + std::to_string(level_nodes_missing) +
         " not built yet" + (levels_repaired ? "; levels rewritten from the leaf hashes 已重建" : "") + "\n";
  out += mark(checkpoint_problems.empty()) + "checkpoints 检查点: " + std::to_string(checkpoints) + " stored, " +
         std::to_string(checkpoints_verified) + " recomputed and matching 一致\n";
  for (const auto& p : checkpoint_problems) out += "         " + p + "\n";
  return out;
}

nlohmann::json LedgerCheckReport::to_json() const {
  return {{"ok", ok},
          {"leaves", leaves},
          {"hashes", hashes},
          {"checked", checked},
          {"leaf_mismatches", leaf_mismatches},
          {"mismatched", mismatched},
          {"records_invalid", records_invalid},
          {"record_problems", record_problems},
          {"level_nodes_checked", level_nodes_checked},
          {"level_mismatches", level_mismatches},
          {"level_nodes_missing", level_nodes_missing},
          {"levels_repaired", levels_repaired},
          {"checkpoints", checkpoints},
          {"checkpoints_verified", checkpoints_verified},
          {"checkpoint_problems", checkpoint_problems}};
}

}  // namespace songda::ledger
