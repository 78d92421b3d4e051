// Checkpointer: the lease-holding signer of the evidence log (see redis_log.h).
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>

#include "gateway/core/contain.h"
#include "gateway/core/crypto.h"
#include "gateway/core/json_parse.h"
#include "gateway/core/text.h"
#include "gateway/ledger/redis_log.h"

namespace songda::ledger {
namespace {

// Stores a signed checkpoint while the lease is ours and it extends the newest one.
// KEYS: lease, checkpoints, latest, hashes. ARGV: holder, json, tree size, ttl.
const LuaScript& store_checkpoint_script() {
  static const LuaScript s(R"LUA(
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {'lost', 0} end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
local size = tonumber(ARGV[3])
if redis.call('LLEN', KEYS[4]) < size then return {'beyond', 0} end
local latest = redis.call('GET', KEYS[3])
if latest then
  local ok, l = pcall(cjson.decode, latest)
  if ok and type(l) == 'table' and tonumber(l.tree_size) and tonumber(l.tree_size) >= size then
    return {'stale', redis.call('LLEN', KEYS[2]) - 1}
  end
end
local seq = redis.call('RPUSH', KEYS[2], ARGV[2]) - 1
redis.call('SET', KEYS[3], ARGV[2])
return {'ok', seq}
)LUA");
  return s;
}

// Advances the published mark (never backwards) while the lease is ours. -1: not ours.
const LuaScript& mark_published_script() {
  static const LuaScript s(R"LUA(
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local cur = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
local want = tonumber(ARGV[2])
if cur < want then redis.call('SET', KEYS[2], ARGV[2]) return want end
return cur
)LUA");
  return s;
}

std::string default_instance_id() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  return std::string(host[0] != '\0' ? host : "host") + ":" + std::to_string(getpid()) + ":" + to_hex(random_bytes(4));
}

std::uint64_t reply_u64(const RedisReply& r) {
  if (r.type == RedisReply::Type::kInteger) return r.integer < 0 ? 0 : static_cast<std::uint64_t>(r.integer);
  if (r.type == RedisReply::Type::kString) {
    std::uint64_t v = 0;
    std::from_chars(r.str.data(), r.str.data() + r.str.size(), v);
    return v;
  }
  return 0;
}

}  // namespace

Checkpointer::Checkpointer(RedisPool& pool, evidence::SigningKey key, CheckpointerConfig config,
                           CheckpointPublisher publish, std::function<std::int64_t()> clock)
    : pool_(pool),
      key_(std::move(key)),
      config_(std::move(config)),
      publish_(std::move(publish)),
      clock_(std::move(clock)) {
  if (config_.instance_id.empty()) config_.instance_id = default_instance_id();
  if (!clock_) clock_ = [] { return now_unix_ms(); };
  config_.interval_ms = std::max(config_.interval_ms, 10);
  config_.lease_ttl_ms = std::max(config_.lease_ttl_ms, 100);
}

Checkpointer::~Checkpointer() { stop(); }

void Checkpointer::set_timestamper(Timestamper t) {
  std::lock_guard lock(publish_mu_);
  timestamper_ = std::move(t);
}

void Checkpointer::set_witness(CheckpointWitness w) {
  std::lock_guard lock(tick_mu_);
  witness_ = std::move(w);
}

Result<std::optional<evidence::Checkpoint>> Checkpointer::check_witnesses(
    const std::optional<StoredCheckpoint>& latest) {
  auto seen = witness_();
  if (!seen) {
    return Error::transient("witness_unavailable", "cannot read the checkpoints the witnesses hold (" +
                                                       seen.error().message +
                                                       "); the signing lease is given back until they can be read");
  }
  std::optional<evidence::Checkpoint> newest;
  int foreign = 0;  // signed by another key: not this log's witnesses (a test's, an impostor's)
  for (const std::string& json : *seen) {
    auto c = evidence::checkpoint_from_json(parse_json(json));
    if (!c || c->origin != config_.origin) continue;
    if (!evidence::verify_checkpoint(*c, key_.public_key()).ok()) {
      ++foreign;
      continue;
    }
    if (!newest || c->tree_size > newest->tree_size) newest = std::move(*c);
  }
  if (foreign > 0) {
    spdlog::warn(
        "evidence log: {} checkpoint(s) of origin {} on the witness topic are not signed by this log's key; "
        "ignored",
        foreign, config_.origin);
  }
  if (!newest) return std::optional<evidence::Checkpoint>{};
  {
    std::lock_guard lock(state_mu_);
    stats_.witnessed_tree_size = newest->tree_size;
  }
  const std::uint64_t redis_size = latest ? latest->checkpoint.tree_size : 0;
  if (newest->tree_size > redis_size) {
    spdlog::critical(
        "evidence log: the witnesses hold a checkpoint of {} leaves signed at {}, but the newest in Redis has {}: "
        "Redis lost signed checkpoints, and perhaps records (restored from an older backup?). New checkpoints must "
        "extend the witnessed one: if Redis still holds its records, signing goes on; if not, it stays stopped until "
        "they are back. Hint: restore Redis from a newer backup; songda ledger check",
        newest->tree_size, rfc3339_utc(newest->timestamp_ms), redis_size);
    return newest;
  }
  const RedisNodeSource source(pool_);
  auto root = evidence::root(source, newest->tree_size);
  if (!root) return root.error();
  if (*root != newest->root_hash) {
    {
      std::lock_guard lock(state_mu_);
      ++stats_.witness_conflicts;
    }
    spdlog::critical(
        "evidence log: Redis's log of {} leaves has another root than the checkpoint the witnesses hold for that "
        "size: this is not the history that was published; refusing to sign. Hint: songda ledger check",
        newest->tree_size);
    return Error::permanent("witness_conflict", "Redis's evidence log contradicts the witnessed checkpoint of " +
                                                    std::to_string(newest->tree_size) +
                                                    " leaves; hint: run songda ledger check");
  }
  return std::optional<evidence::Checkpoint>{};
}

void Checkpointer::lost_lease() {
  if (leader_.exchange(false)) {
    spdlog::warn("evidence log: instance {} lost the signing lease; it stops signing", config_.instance_id);
    std::lock_guard lock(state_mu_);
    ++stats_.leases_lost;
  }
}

Result<bool> Checkpointer::hold_lease() {
  if (leader_.load()) {
    auto renewed = renew_lease(pool_, kLeaseKey, config_.instance_id, config_.lease_ttl_ms);
    if (!renewed) return renewed.error();
    if (*renewed) return true;
    lost_lease();
  }
  auto taken = take_lease(pool_, kLeaseKey, config_.instance_id, config_.lease_ttl_ms);
  if (!taken || !*taken) return taken;
  // Newly ours: learn what the previous holder signed.
  auto latest = read_latest_checkpoint(pool_);
  if (!latest) {
    // Give it back rather than sign without knowing the newest checkpoint.
    release_lease(pool_, kLeaseKey, config_.instance_id);
    return latest.error();
  }
  std::optional<evidence::Checkpoint> witnessed;
  if (witness_) {
    auto checked = check_witnesses(*latest);
    if (!checked) {
      release_lease(pool_, kLeaseKey, config_.instance_id);
      return checked.error();
    }
    witnessed = std::move(*checked);
  }
  {
    std::lock_guard lock(state_mu_);
    last_ = witnessed             ? witnessed
            : latest->has_value() ? std::optional<evidence::Checkpoint>((*latest)->checkpoint)
                                  : std::nullopt;
    ++stats_.leases_acquired;
    if (last_) {
      stats_.last_tree_size = last_->tree_size;
      stats_.last_timestamp_ms = last_->timestamp_ms;
    }
  }
  leader_.store(true);
  spdlog::info("evidence log: instance {} holds the signing lease", config_.instance_id);
  return true;
}

Result<Checkpointer::Tick> Checkpointer::tick() {
  std::lock_guard tick_lock(tick_mu_);
  auto fail = [this](const Error& e) -> Result<Tick> {
    std::lock_guard lock(state_mu_);
    ++stats_.errors;
    return e;
  };
  auto held = hold_lease();
  if (!held) return fail(held.error());
  if (!*held) return Tick{};

  const Fence fence{kLeaseKey, config_.instance_id, config_.lease_ttl_ms};
  auto ext = extend_levels_to_end(pool_, config_.step_leaves, fence);
  if (!ext) {
    if (ext.error().code == "lease_lost") {
      lost_lease();
      return Tick{};
    }
    return fail(ext.error());
  }
  const std::uint64_t size = ext->built_to;
  std::optional<evidence::Checkpoint> last;
  {
    std::lock_guard lock(state_mu_);
    last = last_;
  }
  if (size == 0 || (last && size <= last->tree_size)) return Tick{true, std::nullopt};

  const RedisNodeSource source(pool_);
  auto root = evidence::root(source, size);
  if (!root) return fail(root.error());
  // Never sign a tree that does not extend the last signed one (corrupted levels would rewrite history).
  if (last && last->tree_size > 0) {
    auto proof = evidence::consistency_proof(source, last->tree_size, size);
    if (!proof) return fail(proof.error());
    if (auto s = evidence::verify_consistency(last->tree_size, size, *proof, last->root_hash, *root); !s) {
      spdlog::critical(
          "evidence log: the tree of {} leaves is NOT an extension of checkpoint size {} ({}); "
          "refusing to sign. Hint: songda ledger check",
          size, last->tree_size, s.error().message);
      return fail(Error::permanent("consistency_failed", "tree of " + std::to_string(size) +
                                                             " leaves does not extend the last checkpoint: " +
                                                             s.error().message + "; hint: run songda ledger check"));
    }
  }
  const std::int64_t ts = std::max(clock_(), last ? last->timestamp_ms : std::int64_t{0});
  auto c = evidence::sign_checkpoint(config_.origin, size, std::move(*root), ts, key_);
  if (!c) return fail(c.error());
  std::string json = evidence::to_json(*c).dump();
  auto stored = pool_.eval(store_checkpoint_script(), {kLeaseKey, kCheckpointsKey, kLatestCheckpointKey, kHashesKey},
                           {config_.instance_id, json, std::to_string(size), std::to_string(config_.lease_ttl_ms)});
  if (!stored) return fail(stored.error());
  if (stored->type != RedisReply::Type::kArray || stored->elements.size() != 2) {
    return fail(Error::transient("redis_error", "unexpected reply when storing a checkpoint"));
  }
  const std::string verdict = stored->elements[0].str;
  if (verdict == "lost") {
    lost_lease();
    return Tick{};
  }
  if (verdict != "ok") {
    // 'stale': someone stored a newer one (impossible while the lease is ours, but never go backwards).
    auto latest = read_latest_checkpoint(pool_);
    if (latest && latest->has_value()) {
      std::lock_guard lock(state_mu_);
      last_ = (*latest)->checkpoint;
    }
    return Tick{true, std::nullopt};
  }
  StoredCheckpoint out{reply_u64(stored->elements[1]), std::move(json), *c};
  {
    std::lock_guard lock(state_mu_);
    last_ = *c;
    ++stats_.signed_checkpoints;
    stats_.last_tree_size = c->tree_size;
    stats_.last_timestamp_ms = c->timestamp_ms;
  }
  spdlog::debug("evidence log: checkpoint #{} signed: {} leaves", out.sequence, size);
  {
    std::lock_guard lock(run_mu_);
    signed_since_publish_ = true;
  }
  run_cv_.notify_all();
  return Tick{true, std::move(out)};
}

Result<int> Checkpointer::publish_pending() {
  std::lock_guard publish_lock(publish_mu_);
  if (!leader_.load() || !publish_) return 0;
  auto where = pool_.pipeline({{"GET", kPublishedKey}, {"LLEN", kCheckpointsKey}});
  if (!where) return where.error();
  const std::uint64_t from = reply_u64((*where)[0]);
  const std::uint64_t count = reply_u64((*where)[1]);
  if (from >= count) return 0;
  auto pending = read_checkpoints(pool_, from, std::min<std::uint64_t>(count - from, 64));
  if (!pending) return pending.error();
  int done = 0;
  for (StoredCheckpoint& sc : *pending) {
    if (timestamper_ && !sc.checkpoint.tsa_token) {
      auto token = timestamper_(evidence::signed_body(sc.checkpoint));
      if (token) {
        if (auto s = attach_tsa_token(pool_, sc.sequence, *token); s) {
          sc.checkpoint.tsa_token = std::move(*token);
          sc.json = evidence::to_json(sc.checkpoint).dump();
        } else {
          spdlog::warn("evidence log: TSA token for checkpoint #{} not stored: {}", sc.sequence, s.error().message);
        }
      } else {
        spdlog::warn("evidence log: TSA did not stamp checkpoint #{}: {}", sc.sequence, token.error().message);
      }
    }
    if (auto s = publish_(sc.json); !s) {
      std::uint64_t failures = 0;
      {
        std::lock_guard lock(state_mu_);
        failures = ++stats_.publish_failures;
      }
      if (failures == 1 || failures % 100 == 0) {
        spdlog::warn("evidence log: checkpoint #{} not yet published ({}: {}); will retry", sc.sequence, s.error().code,
                     s.error().message);
      }
      return s.error();
    }
    auto mark = pool_.eval(mark_published_script(), {kLeaseKey, kPublishedKey},
                           {config_.instance_id, std::to_string(sc.sequence + 1)});
    if (!mark) return mark.error();
    {
      std::lock_guard lock(state_mu_);
      ++stats_.published;
    }
    ++done;
    if (mark->integer == -1) {
      lost_lease();
      break;
    }
  }
  return done;
}

void Checkpointer::wait(std::unique_lock<std::mutex>& lock, int ms) {
  run_cv_.wait_for(lock, std::chrono::milliseconds(ms), [this] { return stopping_; });
}

void Checkpointer::start() {
  std::lock_guard guard(run_mu_);
  if (running_) return;
  running_ = true;
  stopping_ = false;
  signer_ = std::thread([this] {
    std::unique_lock lock(run_mu_);
    while (!stopping_) {
      lock.unlock();
      if (auto t = contain("round", [this] { return tick(); }); !t) {
        spdlog::warn("evidence log: checkpoint round failed ({}: {})", t.error().code, t.error().message);
      }
      lock.lock();
      wait(lock, config_.interval_ms);
    }
  });
  publisher_ = std::thread([this] {
    std::unique_lock lock(run_mu_);
    while (!stopping_) {
      signed_since_publish_ = false;
      lock.unlock();
      // Failures are counted and logged inside; retried next round.
      if (auto p = contain("publishing", [this] { return publish_pending(); });
          !p.ok() && p.error().code == "internal_error") {
        spdlog::error("evidence log: {}", p.error().message);
      }
      lock.lock();
      run_cv_.wait_for(lock, std::chrono::milliseconds(config_.interval_ms),
                       [this] { return stopping_ || signed_since_publish_; });
    }
  });
}

void Checkpointer::stop() {
  {
    std::lock_guard lock(run_mu_);
    if (!running_) return;
    stopping_ = true;
  }
  run_cv_.notify_all();
  if (signer_.joinable()) signer_.join();
  if (publisher_.joinable()) publisher_.join();
  if (leader_.exchange(false)) {
    release_lease(pool_, kLeaseKey, config_.instance_id);
    spdlog::info("evidence log: instance {} gave the signing lease up", config_.instance_id);
  }
  std::lock_guard lock(run_mu_);
  running_ = false;
}

CheckpointerStats Checkpointer::stats() const {
  std::lock_guard lock(state_mu_);
  CheckpointerStats s = stats_;
  s.leader = leader_.load();
  return s;
}

CheckpointPublisher kafka_checkpoint_publisher(KafkaProducer& producer, std::string topic, std::string key,
                                               int timeout_ms) {
  return [&producer, topic = std::move(topic), key = std::move(key), timeout_ms](const std::string& json) {
    return producer.produce_all({OutgoingMessage{topic, key, json, {{"content-type", "application/json"}}}},
                                timeout_ms);
  };
}

CheckpointWitness kafka_checkpoint_witness(KafkaConfig config, std::string topic, std::string key, int timeout_ms) {
  return [config = std::move(config), topic = std::move(topic), key = std::move(key),
          timeout_ms]() -> Result<std::vector<std::string>> {
    auto tail = read_topic_tail(config, topic, 16, timeout_ms);
    if (!tail) return tail.error();
    std::vector<std::string> out;
    for (KafkaMessage& m : *tail) {
      if (m.key == key) out.push_back(std::move(m.value));
    }
    return out;
  };
}

SignerSetup signer_from_environment(const std::function<const char*(const char*)>& getenv) {
  const char* path = getenv("SONGDA_EVIDENCE_KEY_FILE");
  if (path == nullptr || *path == '\0') {
    throw StartupError(
        "SONGDA_EVIDENCE_KEY_FILE is not set; it names the court's Ed25519 private key (PEM) that signs the "
        "evidence log. Hint: `songda keygen --out DIR` writes DIR/court.key (keep it secret) and DIR/court.pub");
  }
  auto key = evidence::load_private_key_file(path);
  if (!key) {
    throw StartupError("SONGDA_EVIDENCE_KEY_FILE=" + std::string(path) + ": " + key.error().message +
                       "; hint: it must be an unencrypted PKCS#8 Ed25519 key as written by `songda keygen`");
  }
  CheckpointerConfig config;
  if (const char* origin = getenv("SONGDA_EVIDENCE_ORIGIN"); origin != nullptr && *origin != '\0') {
    const std::string o(origin);
    if (o.find('\n') != std::string::npos) throw StartupError("SONGDA_EVIDENCE_ORIGIN must be one line");
    config.origin = o;
  }
  if (const char* ms = getenv("SONGDA_EVIDENCE_CHECKPOINT_MS"); ms != nullptr && *ms != '\0') {
    int v = 0;
    const std::string_view t(ms);
    auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    if (ec != std::errc() || p != t.data() + t.size() || v < 100 || v > 3600000) {
      throw StartupError("SONGDA_EVIDENCE_CHECKPOINT_MS must be milliseconds between 100 and 3600000, got " +
                         std::string(t));
    }
    config.interval_ms = v;
    config.lease_ttl_ms = std::max(10000, 5 * v);
  }
  return SignerSetup{std::move(*key), std::move(config)};
}

}  // namespace songda::ledger
