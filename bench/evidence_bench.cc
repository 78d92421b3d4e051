// songda_evidence_bench: how fast the evidence log proves and appends.
//
//   (a) inclusion-proof generation at 10,000,000 leaves: in memory (CompactTree, every level
//       materialised), then the same from a real redis-server through RedisNodeSource (the
//       levels built by the checkpointer's own extend_levels()), one round trip per proof;
//   (b) evidence appends per second through DeliveryStore::append_evidence (the store's Lua
//       script) in batches of 100 and 1000.
// Prints Markdown tables. Not a test: run it by hand, e.g.
//
//   tests/services/with-services --redis -- build-ledger/songda_evidence_bench
//   build-ledger/songda_evidence_bench --skip-redis --leaves 1000000
//
// Options: --leaves N (10000000) --proofs N (100000) --redis-proofs N (100000) --appends N (200000)
//          --threads N (1, for the appends) --redis URL (default $SONGDA_TEST_REDIS_URL, db 6) --skip-redis.
// The Redis database used is FLUSHed first. Thread-safety: a program, not a library.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "gateway/core/crypto.h"
#include "gateway/core/text.h"
#include "gateway/ledger/compact_tree.h"
#include "gateway/ledger/evidence_makers.h"
#include "gateway/ledger/redis_log.h"
#include "gateway/store/store.h"

namespace {

using namespace songda;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

struct Stats {
  double p50 = 0, p99 = 0, mean = 0, max = 0;
};

Stats stats_of(std::vector<double> us) {
  Stats s;
  if (us.empty()) return s;
  std::sort(us.begin(), us.end());
  s.p50 = us[us.size() / 2];
  s.p99 = us[std::min(us.size() - 1, us.size() * 99 / 100)];
  s.max = us.back();
  double sum = 0;
  for (double v : us) sum += v;
  s.mean = sum / static_cast<double>(us.size());
  return s;
}

std::string synthetic_leaf(std::uint64_t i) { return evidence::leaf_hash("evidence record #" + std::to_string(i)); }

struct Options {
  std::uint64_t leaves = 10'000'000;
  std::uint64_t proofs = 100'000;
  std::uint64_t redis_proofs = 100'000;
  std::uint64_t appends = 200'000;
  int threads = 1;
  std::string redis;
  bool skip_redis = false;
};

// Times proofs for random leaves; each proof is checked against the root.
template <typename Fetch>
Stats time_proofs(std::uint64_t n, std::uint64_t count, const std::string& root, const ledger::CompactTree& leaves,
                  Fetch fetch, std::uint64_t& failures) {
  std::mt19937_64 rng(42);
  std::vector<double> us;
  us.reserve(count);
  for (std::uint64_t k = 0; k < count; ++k) {
    const std::uint64_t i = rng() % n;
    const auto t0 = Clock::now();
    const auto ids = evidence::needed_nodes_for_inclusion(i, n);
    auto nodes = fetch(ids);
    std::vector<std::string> proof;
    if (nodes.ok()) {
      auto p = evidence::inclusion_proof_from(*nodes, i, n);
      if (p.ok()) proof = std::move(*p);
    }
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    if (k % 97 == 0 && !evidence::verify_inclusion(leaves.node(0, i), i, n, proof, root).ok()) ++failures;
  }
  return stats_of(std::move(us));
}

void row(const char* what, std::uint64_t n, std::uint64_t count, const Stats& s, const std::string& note) {
  std::printf("| %s | %llu | %llu | %.1f | %.1f | %.1f | %.1f | %s |\n", what, static_cast<unsigned long long>(n),
              static_cast<unsigned long long>(count), s.p50, s.p99, s.mean, s.max, note.c_str());
}

int run(const Options& o) {
  std::printf("# songda evidence bench\n\n");
  std::printf("host: %u hardware threads; leaves %llu\n\n", std::thread::hardware_concurrency(),
              static_cast<unsigned long long>(o.leaves));

  // ---- (a) in memory ----
  auto t0 = Clock::now();
  ledger::CompactTree tree;
  tree.reserve(o.leaves);
  for (std::uint64_t i = 0; i < o.leaves; ++i) tree.append_leaf_hash(synthetic_leaf(i));
  const double build_s = seconds_since(t0);
  const std::string root = *evidence::root(tree, o.leaves);
  std::printf("## (a) inclusion proofs at %llu leaves\n\n", static_cast<unsigned long long>(o.leaves));
  std::printf("in-memory tree built in %.1f s (%.0f leaves/s, every level materialised, %.0f MB)\n\n", build_s,
              static_cast<double>(o.leaves) / build_s, static_cast<double>(o.leaves) * 64 / 1e6);
  std::printf("| source | tree size | proofs | p50 µs | p99 µs | mean µs | max µs | notes |\n");
  std::printf("|---|---|---|---|---|---|---|---|\n");
  std::uint64_t failures = 0;
  const Stats mem = time_proofs(
      o.leaves, o.proofs, root, tree,
      [&](const std::vector<evidence::NodeId>& ids) { return tree.subtree_hashes(ids); }, failures);
  row("CompactTree (memory)", o.leaves, o.proofs, mem, "needed_nodes + fetch + inclusion_proof_from");
  std::fflush(stdout);

  if (o.skip_redis) {
    std::printf("\nRedis part skipped (--skip-redis).\n");
    return failures == 0 ? 0 : 1;
  }
  auto ep = parse_redis_url(o.redis);
  if (!ep) {
    std::fprintf(stderr, "bad --redis URL: %s\n", ep.error().message.c_str());
    return 2;
  }
  RedisPool pool(*ep, std::max(2, o.threads + 1), 60000);
  if (auto r = pool.command({"FLUSHDB"}); !r) {
    std::fprintf(stderr, "redis: %s\n", r.error().message.c_str());
    return 2;
  }
  // Load the leaf hashes the way the store keeps them (hex in sd:ev:hashes).
  t0 = Clock::now();
  constexpr std::uint64_t kPerCommand = 1000;
  constexpr std::uint64_t kPerPipeline = 20;
  for (std::uint64_t a = 0; a < o.leaves; a += kPerCommand * kPerPipeline) {
    std::vector<std::vector<std::string>> cmds;
    for (std::uint64_t c = a; c < std::min(o.leaves, a + kPerCommand * kPerPipeline); c += kPerCommand) {
      std::vector<std::string> cmd{"RPUSH", ledger::kHashesKey};
      for (std::uint64_t i = c; i < std::min(o.leaves, c + kPerCommand); ++i) cmd.push_back(to_hex(tree.node(0, i)));
      cmds.push_back(std::move(cmd));
    }
    if (auto r = pool.pipeline(cmds); !r) {
      std::fprintf(stderr, "redis load: %s\n", r.error().message.c_str());
      return 2;
    }
  }
  const double load_s = seconds_since(t0);
  t0 = Clock::now();
  auto built = ledger::extend_levels_to_end(pool, 65536);
  if (!built) {
    std::fprintf(stderr, "levels: %s\n", built.error().message.c_str());
    return 2;
  }
  const double levels_s = seconds_since(t0);
  const ledger::RedisNodeSource source(pool);
  const bool same_root = *evidence::root(source, o.leaves) == root;
  auto mem_info = pool.command({"INFO", "memory"});
  std::string used = "?";
  if (mem_info) {
    const auto at = mem_info->str.find("used_memory_human:");
    if (at != std::string::npos) used = mem_info->str.substr(at + 18, mem_info->str.find('\r', at) - at - 18);
  }
  const std::uint64_t before = redis_round_trips();
  const Stats red = time_proofs(
      o.leaves, o.redis_proofs, root, tree,
      [&](const std::vector<evidence::NodeId>& ids) { return source.subtree_hashes(ids); }, failures);
  const double trips = static_cast<double>(redis_round_trips() - before) / static_cast<double>(o.redis_proofs);
  row("RedisNodeSource (redis-server, loopback)", o.leaves, o.redis_proofs, red,
      "one pipelined LINDEX batch per proof (" + std::to_string(trips).substr(0, 4) + " round trips/proof)");
  std::printf(
      "\nRedis: %llu leaf hashes loaded in %.1f s; levels built by extend_levels() in %.1f s "
      "(%.0f leaves/s, steps of 65536); root %s the in-memory root; redis used_memory %s\n",
      static_cast<unsigned long long>(o.leaves), load_s, levels_s, static_cast<double>(o.leaves) / levels_s,
      same_root ? "equals" : "DIFFERS FROM", used.c_str());
  std::printf("proof check failures: %llu\n\n", static_cast<unsigned long long>(failures));
  std::fflush(stdout);

  // ---- (b) appends ----
  std::printf("## (b) evidence appends through DeliveryStore::append_evidence\n\n");
  // Realistic leaves: the makers' DISPATCHED + PROVIDER_ACCEPTED records of distinct deliveries.
  const ledger::EvidenceContext ctx{"bench-salt-0123456789"};
  auto make_leaves = [&](std::uint64_t first, std::uint64_t count) {
    std::vector<EvidenceLeaf> out;
    out.reserve(count);
    for (std::uint64_t i = first; out.size() < count; ++i) {
      Delivery d;
      d.event_id = "bench-" + std::to_string(i / 4);
      d.recipient_id = "R" + std::to_string(i % 4);
      d.channel = "sms";
      d.id = delivery_id(d.event_id, d.recipient_id, d.channel);
      d.court_id = "HN-SQ-ZY";
      d.case_number = "(2026)豫14民初" + std::to_string(i % 1000) + "号";
      d.address = "+86138" + std::to_string(10000000 + i % 90000000);
      d.text = "【商丘中院】张三：您好，(2026)豫14民初123号案件传票已送达，请登录查看。";
      const SendOutcome so{SendOutcome::Kind::kAccepted, "aliyun", "BIZ" + std::to_string(i), "OK", "OK",
                           "{\"Code\":\"OK\"}",          1};
      for (auto& l : ledger::outcome_evidence(d, so, "SENT", now_unix_ms(), ctx)) {
        if (out.size() < count) out.push_back(std::move(l));
      }
    }
    return out;
  };
  t0 = Clock::now();
  const auto sample = make_leaves(0, 10000);
  const double make_us = seconds_since(t0) * 1e6 / 10000;
  std::size_t bytes = 0;
  for (const auto& l : sample) bytes += l.canonical.size();
  std::printf("makers: %.1f µs per leaf (record → JCS → leaf hash), mean record %zu bytes\n\n", make_us,
              bytes / sample.size());
  std::printf("| batch | threads | leaves | leaves/s | batch p50 ms | batch p99 ms |\n|---|---|---|---|---|---|\n");
  for (const std::uint64_t batch : {std::uint64_t{100}, std::uint64_t{1000}}) {
    if (auto r = pool.command({"FLUSHDB"}); !r) return 2;
    DeliveryStore store(pool);
    const std::uint64_t per_thread = o.appends / static_cast<std::uint64_t>(o.threads);
    // Leaves prepared up front so only the Redis side is timed.
    std::vector<std::vector<std::vector<EvidenceLeaf>>> work(static_cast<std::size_t>(o.threads));
    for (int t = 0; t < o.threads; ++t) {
      for (std::uint64_t a = 0; a < per_thread; a += batch) {
        work[static_cast<std::size_t>(t)].push_back(
            make_leaves(static_cast<std::uint64_t>(t) * per_thread + a, std::min(batch, per_thread - a)));
      }
    }
    std::vector<std::vector<double>> lat(static_cast<std::size_t>(o.threads));
    std::vector<std::thread> threads;
    t0 = Clock::now();
    for (int t = 0; t < o.threads; ++t) {
      threads.emplace_back([&, t] {
        for (const auto& b : work[static_cast<std::size_t>(t)]) {
          const auto s0 = Clock::now();
          if (auto s = store.append_evidence(b); !s) std::fprintf(stderr, "append: %s\n", s.error().message.c_str());
          lat[static_cast<std::size_t>(t)].push_back(
              std::chrono::duration<double, std::milli>(Clock::now() - s0).count());
        }
      });
    }
    for (auto& th : threads) th.join();
    const double secs = seconds_since(t0);
    std::vector<double> all;
    for (auto& l : lat) all.insert(all.end(), l.begin(), l.end());
    const Stats s = stats_of(all);
    const auto n = per_thread * static_cast<std::uint64_t>(o.threads);
    std::printf("| %llu | %d | %llu | %.0f | %.2f | %.2f |\n", static_cast<unsigned long long>(batch), o.threads,
                static_cast<unsigned long long>(n), static_cast<double>(n) / secs, s.p50, s.p99);
    auto len = pool.command({"LLEN", ledger::kHashesKey});
    if (!len || static_cast<std::uint64_t>(len->integer) != n) std::fprintf(stderr, "append count mismatch\n");
  }
  (void)pool.command({"FLUSHDB"});
  return failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  const char* env = std::getenv("SONGDA_TEST_REDIS_URL");
  if (env != nullptr && *env != '\0') {
    std::string url = env;
    o.redis = url.substr(0, url.rfind('/')) + "/6";
  }
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--leaves")
      o.leaves = std::stoull(next());
    else if (a == "--proofs")
      o.proofs = std::stoull(next());
    else if (a == "--redis-proofs")
      o.redis_proofs = std::stoull(next());
    else if (a == "--appends")
      o.appends = std::stoull(next());
    else if (a == "--threads")
      o.threads = std::max(1, std::stoi(next()));
    else if (a == "--redis")
      o.redis = next();
    else if (a == "--skip-redis")
      o.skip_redis = true;
    else {
      std::fprintf(stderr,
                   "usage: songda_evidence_bench [--leaves N] [--proofs N] [--redis-proofs N] [--appends N] "
                   "[--threads N] [--redis URL] [--skip-redis]\n");
      return 2;
    }
  }
  if (o.redis.empty() && !o.skip_redis) {
    std::fprintf(stderr,
                 "no Redis: run under tests/services/with-services --redis, pass --redis URL, or --skip-redis\n");
    return 2;
  }
  if (o.leaves < 2) o.leaves = 2;
  return run(o);
}
