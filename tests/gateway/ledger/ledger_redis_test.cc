// The evidence log on a real redis-server (SONGDA_TEST_REDIS_URL, db 5) and,
// where named, a real Kafka broker (SONGDA_TEST_KAFKA_BROKERS):
//   leaves appended by the store's own scripts with the makers' records;
//   levels built incrementally; proofs from RedisNodeSource verify against the
//   signed checkpoint; successive checkpoints are consistent; one lease holder
//   signs and another takes over when the lease expires; failed publishes are
//   retried in order; rebuild_and_check finds a modified leaf; the whole
//   pipeline (ingest → dispatch → receipts → fallback → read) yields a bundle
//   that `songda verify` accepts and a tampered one it rejects; the HTTP
//   routes; an RFC 3161 token from a local `openssl ts` TSA; the Kafka witness.
#include <gtest/gtest.h>
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "channels/inapp/inapp_channel.h"
#include "gateway/core/contain.h"
#include "gateway/core/crypto.h"
#include "gateway/core/text.h"
#include "gateway/evidence/bundle.h"
#include "gateway/evidence/jcs.h"
#include "gateway/evidence/rules.h"
#include "gateway/ledger/compact_tree.h"
#include "gateway/ledger/evidence_makers.h"
#include "gateway/ledger/proof_service.h"
#include "gateway/ledger/redis_log.h"
#include "gateway/ledger/verify_cli.h"
#include "tests/gateway/evidence/support.h"
#include "tests/support/events.h"
#include "tests/support/kafka_util.h"

namespace songda::ledger {
namespace {

using Json = nlohmann::json;
namespace fs = std::filesystem;

constexpr const char* kCourt = "HN-SQ-ZY";
const EvidenceContext kCtx{"integration-salt-0123456789"};

std::string redis_url_db5() {
  std::string url = testing::require_env("SONGDA_TEST_REDIS_URL");
  return url.substr(0, url.rfind('/')) + "/5";
}

Delivery make_delivery(const std::string& event, const std::string& recipient, const std::string& channel,
                       const std::string& case_number) {
  Delivery d;
  d.id = delivery_id(event, recipient, channel);
  d.event_id = event;
  d.event_type = "summons.issued";
  d.court_id = kCourt;
  d.court_name = "商丘市中级人民法院";
  d.case_number = case_number;
  d.recipient_id = recipient;
  d.recipient_role = "party";
  d.recipient_name = "当事人" + recipient;
  d.channel = channel;
  d.address = channel == "sms" ? "+8613800000001" : "u-" + recipient;
  d.consent_basis = "confirmed";
  d.template_name = "summons";
  d.title = "传票";
  d.text = "请按时到庭";
  d.document = Document{"DOC-" + event, "传票", sha256_hex("doc " + event), "", 1};
  return d;
}

class LedgerRedis : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ep = parse_redis_url(redis_url_db5());
    ASSERT_TRUE(ep.ok());
    pool_ = std::make_unique<RedisPool>(ep.value(), 8, 5000);
    ASSERT_TRUE(pool_->command({"FLUSHDB"}).ok());
    store_ = std::make_unique<DeliveryStore>(*pool_);
    pem_ = *evidence::generate_key_pair();
    key_.emplace(*evidence::load_private_key_pem(pem_.private_pem));
    pub_.emplace(*evidence::load_public_key_pem(pem_.public_pem));
  }

  std::unique_ptr<Checkpointer> checkpointer(const std::string& id, CheckpointPublisher publish = {},
                                             int ttl_ms = 10000) {
    CheckpointerConfig c;
    c.origin = "songda/test";
    c.instance_id = id;
    c.interval_ms = 50;
    c.lease_ttl_ms = ttl_ms;
    c.step_leaves = 64;  // many small steps, to exercise the incremental build
    return std::make_unique<Checkpointer>(*pool_, *key_, c, std::move(publish));
  }

  // Records `count` events (one recipient, in-app + sms) with the makers' evidence, then the outcomes:
  // in-app delivered, sms sent. 7 leaves per event.
  void record_events(int first, int count) {
    std::vector<EventToRecord> events;
    std::vector<Completion> completions;
    const std::int64_t now = now_unix_ms();
    for (int i = first; i < first + count; ++i) {
      const std::string ev = "evt-" + std::to_string(i);
      const std::string cs = "(2026)豫14民初" + std::to_string(i % 5) + "号";
      CaseEvent e;
      e.event_id = ev;
      e.type = "summons.issued";
      e.court_id = kCourt;
      e.court_name = "商丘市中级人民法院";
      e.case_number = cs;
      e.digest = sha256_hex(ev);
      e.document = Document{"DOC-" + ev, "传票", sha256_hex("doc " + ev), "", 1};
      e.recipients.push_back(Recipient{"R1", "party", "当事人R1", Contacts{"+8613800000001", "", "", "u-R1"},
                                       Consent{"confirmed", {"summons.issued"}, "C-" + ev, ""}});
      Plan plan;
      plan.deliveries = {make_delivery(ev, "R1", "inapp", cs), make_delivery(ev, "R1", "sms", cs)};
      EventToRecord rec;
      rec.event_id = ev;
      rec.digest = e.digest;
      rec.court_id = kCourt;
      rec.case_number = cs;
      rec.deliveries = plan.deliveries;
      rec.evidence = accepted_evidence(e, plan, now, kCtx);
      events.push_back(std::move(rec));
      for (const auto& d : plan.deliveries) {
        const bool inapp = d.channel == "inapp";
        SendOutcome o = inapp ? SendOutcome{SendOutcome::Kind::kDelivered, "inapp", d.id, "OK", "", "", 0}
                              : SendOutcome{SendOutcome::Kind::kAccepted, "aliyun", "BIZ-" + ev, "OK", "OK", "{}", 1};
        Completion c;
        c.id = d.id;
        c.channel = d.channel;
        c.status = inapp ? "DELIVERED" : "SENT";
        c.provider = o.provider;
        c.provider_message_id = o.provider_message_id;
        c.receipt_key = inapp ? "" : "aliyun:BIZ-" + ev;
        c.evidence = outcome_evidence(d, o, c.status, now, kCtx);
        completions.push_back(std::move(c));
      }
    }
    auto r = store_->record_batch(events, now);
    ASSERT_TRUE(r.ok()) << r.error().message;
    ASSERT_TRUE(store_->complete_batch(completions, now).ok());
  }

  std::uint64_t log_size() { return static_cast<std::uint64_t>(pool_->command({"LLEN", kHashesKey})->integer); }

  CompactTree tree_from_hashes() {
    CompactTree t;
    auto hashes = pool_->command({"LRANGE", kHashesKey, "0", "-1"});
    for (const auto& h : hashes->elements) t.append_leaf_hash(from_hex(h.str));
    return t;
  }

  // A backup of the evidence log's keys (DUMP), and putting it back as a restore from that backup would.
  std::map<std::string, std::string> backup_evidence_keys() {
    std::map<std::string, std::string> out;
    auto keys = pool_->command({"KEYS", "sd:ev:*"});
    EXPECT_TRUE(keys.ok());
    for (const auto& k : keys.ok() ? keys->elements : std::vector<RedisReply>{}) {
      auto dump = pool_->command({"DUMP", k.str});
      EXPECT_TRUE(dump.ok());
      if (dump.ok()) out[k.str] = dump->str;
    }
    return out;
  }
  void restore_evidence_keys(const std::map<std::string, std::string>& backup) {
    auto keys = pool_->command({"KEYS", "sd:ev:*"});
    ASSERT_TRUE(keys.ok());
    for (const auto& k : keys->elements) ASSERT_TRUE(pool_->command({"DEL", k.str}).ok());
    for (const auto& [k, v] : backup) ASSERT_TRUE(pool_->command({"RESTORE", k, "0", v, "REPLACE"}).ok());
    // The old holder is gone: a new instance takes the lease.
    ASSERT_TRUE(pool_->command({"DEL", kLeaseKey}).ok());
  }

  evidence::Checkpoint sign_now(Checkpointer& c) {
    auto t = c.tick();
    EXPECT_TRUE(t.ok()) << (t.ok() ? "" : t.error().message);
    EXPECT_TRUE(t.ok() && t->signed_now.has_value());
    return t.ok() && t->signed_now ? t->signed_now->checkpoint : evidence::Checkpoint{};
  }

  std::unique_ptr<RedisPool> pool_;
  std::unique_ptr<DeliveryStore> store_;
  evidence::KeyPairPem pem_;
  std::optional<evidence::SigningKey> key_;
  std::optional<evidence::VerifyKey> pub_;
};

TEST_F(LedgerRedis, ProofsFromRedisVerifyAgainstTheSignedCheckpoint) {
  record_events(0, 150);
  const std::uint64_t n = log_size();
  ASSERT_EQ(n, 150u * 7);
  auto cp = checkpointer("A");
  const evidence::Checkpoint c = sign_now(*cp);
  EXPECT_EQ(c.tree_size, n);
  EXPECT_TRUE(evidence::verify_checkpoint(c, *pub_).ok());
  const CompactTree mem = tree_from_hashes();
  EXPECT_EQ(c.root_hash, *evidence::root(mem, n));

  // Every leaf's inclusion proof, fetched in one batch from Redis, verifies against the signed root.
  const RedisNodeSource source(*pool_);
  std::vector<evidence::NodeId> ids;
  for (std::uint64_t i = 0; i < n; ++i) {
    for (auto id : evidence::needed_nodes_for_inclusion(i, n)) ids.push_back(id);
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  const std::uint64_t before = redis_round_trips();
  auto nodes = source.subtree_hashes(ids);
  EXPECT_EQ(redis_round_trips() - before, 1u);  // one pipeline for the whole batch
  ASSERT_TRUE(nodes.ok()) << nodes.error().message;
  for (std::uint64_t i = 0; i < n; ++i) {
    auto proof = evidence::inclusion_proof_from(*nodes, i, n);
    ASSERT_TRUE(proof.ok());
    EXPECT_TRUE(evidence::verify_inclusion(mem.node(0, i), i, n, *proof, c.root_hash).ok()) << "leaf " << i;
  }
  // Nothing new: no new checkpoint.
  auto again = cp->tick();
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->leader);
  EXPECT_FALSE(again->signed_now.has_value());
  auto latest = read_latest_checkpoint(*pool_);
  ASSERT_TRUE(latest.ok() && latest->has_value());
  EXPECT_EQ((*latest)->sequence, 0u);
  EXPECT_EQ((*latest)->checkpoint.root_hash, c.root_hash);
}

TEST_F(LedgerRedis, LevelsGrowIncrementallyInAnyStepAndMatchTheTree) {
  std::mt19937 rng(7);
  int leaf = 0;
  for (int round = 0; round < 40; ++round) {
    std::vector<EvidenceLeaf> leaves;
    const int k = static_cast<int>(rng() % 23);
    for (int i = 0; i < k; ++i, ++leaf) {
      const std::string bytes = "leaf " + std::to_string(leaf);
      leaves.push_back({"", bytes, to_hex(evidence::leaf_hash(bytes))});
    }
    ASSERT_TRUE(store_->append_evidence(leaves).ok());
    auto step = extend_levels(*pool_, 1 + rng() % 9);
    ASSERT_TRUE(step.ok()) << step.error().message;
  }
  ASSERT_TRUE(extend_levels_to_end(*pool_, 5).ok());
  const CompactTree mem = tree_from_hashes();
  for (unsigned k = 1; k < mem.level_count(); ++k) {
    auto list = pool_->command({"LRANGE", level_key(k), "0", "-1"});
    ASSERT_EQ(list->elements.size(), mem.level_size(k)) << "level " << k;
    for (std::uint64_t i = 0; i < mem.level_size(k); ++i) EXPECT_EQ(list->elements[i].str, to_hex(mem.node(k, i)));
  }
  // A level list that is behind: small nodes are folded from the leaf hashes in a second round trip.
  ASSERT_TRUE(pool_->command({"DEL", level_key(3)}).ok());
  const RedisNodeSource source(*pool_);
  const std::uint64_t n = mem.size();
  for (std::uint64_t i = 0; i < n; i += 11) {
    auto proof = evidence::inclusion_proof(source, i, n);
    ASSERT_TRUE(proof.ok()) << proof.error().message;
    EXPECT_EQ(*proof, *evidence::inclusion_proof(mem, i, n));
  }
  const RedisNodeSource strict(*pool_, 4);  // level 3 spans 8 leaves: no longer folded
  EXPECT_EQ(strict.subtree_hash(3, 0).error().code, "not_found");
  // Level 4 is now longer than the (emptied) level 3 allows: refused, with a hint.
  auto bad = extend_levels(*pool_, 64);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, "levels_inconsistent");
  EXPECT_NE(bad.error().message.find("ledger check --repair-levels"), std::string::npos);
}

TEST_F(LedgerRedis, SuccessiveCheckpointsAreConsistent) {
  auto cp = checkpointer("A");
  std::vector<evidence::Checkpoint> signed_;
  for (int round = 0; round < 5; ++round) {
    record_events(round * 13, 3 + round * 5);
    signed_.push_back(sign_now(*cp));
  }
  const RedisNodeSource source(*pool_);
  for (std::size_t i = 1; i < signed_.size(); ++i) {
    const auto& a = signed_[i - 1];
    const auto& b = signed_[i];
    EXPECT_LT(a.tree_size, b.tree_size);
    EXPECT_LE(a.timestamp_ms, b.timestamp_ms);
    auto proof = evidence::consistency_proof(source, a.tree_size, b.tree_size);
    ASSERT_TRUE(proof.ok());
    EXPECT_TRUE(evidence::verify_consistency(a.tree_size, b.tree_size, *proof, a.root_hash, b.root_hash).ok());
  }
  ProofService proofs(*pool_, *store_, *key_, ProofOptions{1});
  auto j = proofs.consistency(signed_[0].tree_size, 0);
  ASSERT_TRUE(j.ok()) << j.error().message;
  EXPECT_EQ((*j)["to"], signed_.back().tree_size);
  std::vector<std::string> raw;
  for (const auto& h : (*j)["proof"]) raw.push_back(from_hex(h.get<std::string>()));
  EXPECT_TRUE(evidence::verify_consistency(signed_[0].tree_size, signed_.back().tree_size, raw, signed_[0].root_hash,
                                           signed_.back().root_hash)
                  .ok());
  EXPECT_EQ(proofs.consistency(0, 5).error().code, "invalid_argument");
  EXPECT_EQ(proofs.consistency(5, signed_.back().tree_size + 1).error().code, "invalid_argument");
  auto stored = read_checkpoints(*pool_, 0, 100);
  ASSERT_TRUE(stored.ok());
  ASSERT_EQ(stored->size(), 5u);
  for (std::size_t i = 0; i < 5; ++i) EXPECT_EQ((*stored)[i].checkpoint.root_hash, signed_[i].root_hash);
}

TEST_F(LedgerRedis, OnlyTheLeaseHolderSignsAndAnotherTakesOverWhenTheLeaseExpires) {
  auto a = checkpointer("instance-A", {}, 1000);
  auto b = checkpointer("instance-B", {}, 1000);
  record_events(0, 4);
  const auto first = sign_now(*a);
  EXPECT_TRUE(a->is_leader());
  record_events(10, 4);
  auto tb = b->tick();
  ASSERT_TRUE(tb.ok());
  EXPECT_FALSE(tb->leader);
  EXPECT_FALSE(tb->signed_now.has_value());
  EXPECT_EQ(pool_->command({"LLEN", kCheckpointsKey})->integer, 1);
  // A stops renewing (paused, crashed); its lease runs out and B takes over.
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  const auto second = sign_now(*b);
  EXPECT_TRUE(b->is_leader());
  EXPECT_EQ(second.tree_size, log_size());
  const RedisNodeSource source(*pool_);
  auto proof = evidence::consistency_proof(source, first.tree_size, second.tree_size);
  EXPECT_TRUE(
      evidence::verify_consistency(first.tree_size, second.tree_size, *proof, first.root_hash, second.root_hash).ok());
  // A wakes up: it learns it lost the lease and signs nothing; its fenced writes are refused.
  record_events(20, 2);
  auto ta = a->tick();
  ASSERT_TRUE(ta.ok());
  EXPECT_FALSE(ta->leader);
  EXPECT_FALSE(a->is_leader());
  EXPECT_EQ(a->stats().leases_lost, 1u);
  EXPECT_EQ(extend_levels(*pool_, 64, Fence{kLeaseKey, "instance-A", 1000}).error().code, "lease_lost");
  EXPECT_EQ(pool_->command({"LLEN", kCheckpointsKey})->integer, 2);
  // stop() gives the lease up at once: A takes over without waiting for the TTL.
  b->start();
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (b->stats().signed_checkpoints < 2 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  b->stop();
  EXPECT_FALSE(b->is_leader());
  EXPECT_EQ(pool_->command({"EXISTS", kLeaseKey})->integer, 0);
  auto tc = a->tick();
  ASSERT_TRUE(tc.ok());
  EXPECT_TRUE(tc->leader);
  EXPECT_EQ(b->stats().signed_checkpoints, 2u);  // the tick above, and the background one for events 20-21
}

// A Redis restored from a backup older than the newest published checkpoint has lost signed records; the log then
// grows again with other records at the same places. A signer that checks only Redis signs that second history
// under the same key (shown below by one without witnesses); one that reads the witnesses first refuses.
TEST_F(LedgerRedis, ARedisRestoredFromAnOlderBackupCannotForkTheLog) {
  std::vector<std::string> witnessed;  // the witness topic
  const CheckpointWitness witness = [&]() -> Result<std::vector<std::string>> { return witnessed; };
  auto a = checkpointer("A", [&](const std::string& json) -> Status {
    witnessed.push_back(json);
    return ok_status();
  });
  record_events(0, 2);
  const auto first = sign_now(*a);
  const auto backup = backup_evidence_keys();  // the nightly backup
  record_events(10, 2);
  const auto second = sign_now(*a);
  ASSERT_EQ(a->publish_pending().value(), 2);
  ASSERT_GT(second.tree_size, first.tree_size);

  restore_evidence_keys(backup);  // Redis comes back from the backup: the records of events 10-11 are gone
  record_events(20, 3);           // and the log grows again, past the published size, with other records
  ASSERT_GT(log_size(), second.tree_size);

  auto b = checkpointer("B");
  b->set_witness(witness);
  auto refused = b->tick();
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, "consistency_failed") << refused.error().message;
  EXPECT_EQ(b->stats().witnessed_tree_size, second.tree_size);
  EXPECT_EQ(pool_->command({"LLEN", kCheckpointsKey})->integer, 1) << "nothing signed after the restore";
  ASSERT_TRUE(pool_->command({"DEL", kLeaseKey}).ok());  // B is gone

  // Without witnesses the same situation is signed: a checkpoint that does not extend the published one.
  auto c = checkpointer("C");
  const auto forked = sign_now(*c);
  const RedisNodeSource source(*pool_);
  auto proof = evidence::consistency_proof(source, second.tree_size, forked.tree_size);
  ASSERT_TRUE(proof.ok());
  EXPECT_FALSE(
      evidence::verify_consistency(second.tree_size, forked.tree_size, *proof, second.root_hash, forked.root_hash).ok())
      << "a second history under the same key";
  ASSERT_TRUE(pool_->command({"DEL", kLeaseKey}).ok());

  // Now Redis is ahead of the witnesses but not their history: a signer that reads them gives the lease back.
  auto d = checkpointer("D");
  d->set_witness(witness);
  auto conflict = d->tick();
  ASSERT_FALSE(conflict.ok());
  EXPECT_EQ(conflict.error().code, "witness_conflict");
  EXPECT_FALSE(d->is_leader());
  EXPECT_EQ(pool_->command({"EXISTS", kLeaseKey})->integer, 0);
  EXPECT_EQ(d->stats().witness_conflicts, 1u);

  // Witnesses that cannot be read: no signing this round, the lease given back.
  auto e = checkpointer("E");
  e->set_witness(
      []() -> Result<std::vector<std::string>> { return Error::transient("kafka_unavailable", "broker down"); });
  auto unread = e->tick();
  ASSERT_FALSE(unread.ok());
  EXPECT_EQ(unread.error().code, "witness_unavailable");
  EXPECT_EQ(pool_->command({"EXISTS", kLeaseKey})->integer, 0);
}

// Only the checkpoints were lost (the records are all there): signing resumes as an extension of the witnessed
// checkpoint. Checkpoints of another key or origin on the topic are ignored.
TEST_F(LedgerRedis, ASignerResumesFromTheWitnessedCheckpointWhenOnlyCheckpointsWereLost) {
  std::vector<std::string> witnessed;
  auto a = checkpointer("A", [&](const std::string& json) -> Status {
    witnessed.push_back(json);
    return ok_status();
  });
  record_events(0, 2);
  sign_now(*a);
  const std::string kept = pool_->command({"DUMP", kCheckpointsKey})->str;
  const std::string kept_latest = pool_->command({"DUMP", kLatestCheckpointKey})->str;
  record_events(10, 2);
  const auto second = sign_now(*a);
  ASSERT_EQ(a->publish_pending().value(), 2);
  ASSERT_TRUE(pool_->command({"DEL", kLeaseKey}).ok());  // A is gone
  ASSERT_TRUE(pool_->command({"RESTORE", kCheckpointsKey, "0", kept, "REPLACE"}).ok());
  ASSERT_TRUE(pool_->command({"RESTORE", kLatestCheckpointKey, "0", kept_latest, "REPLACE"}).ok());

  // An impostor's checkpoint, bigger, under the same origin: not this log's key, so not believed.
  const auto impostor = *evidence::load_private_key_pem(evidence::generate_key_pair()->private_pem);
  witnessed.push_back(
      evidence::to_json(*evidence::sign_checkpoint("songda/test", 1000, std::string(32, 'x'), 1, impostor)).dump());

  auto b = checkpointer("B");
  b->set_witness([&]() -> Result<std::vector<std::string>> { return witnessed; });
  auto t = b->tick();
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_FALSE(t->signed_now.has_value()) << "the log has not grown past the witnessed checkpoint";
  EXPECT_EQ(b->stats().witnessed_tree_size, second.tree_size);
  record_events(20, 1);
  const auto third = sign_now(*b);
  const RedisNodeSource source(*pool_);
  auto proof = evidence::consistency_proof(source, second.tree_size, third.tree_size);
  EXPECT_TRUE(
      evidence::verify_consistency(second.tree_size, third.tree_size, *proof, second.root_hash, third.root_hash).ok());
}

TEST_F(LedgerRedis, FailedPublishesNeverBlockSigningAndAreRetriedInOrder) {
  std::atomic<bool> down{true};
  std::mutex mu;
  std::vector<std::string> witnessed;
  auto cp = checkpointer("A", [&](const std::string& json) -> Status {
    if (down.load()) return Error::transient("kafka_unavailable", "broker down");
    std::lock_guard lock(mu);
    witnessed.push_back(json);
    return ok_status();
  });
  for (int i = 0; i < 3; ++i) {
    record_events(i * 10, 2);
    sign_now(*cp);
    EXPECT_FALSE(cp->publish_pending().ok());
  }
  EXPECT_EQ(pool_->command({"LLEN", kCheckpointsKey})->integer, 3);  // signing went on
  EXPECT_GE(cp->stats().publish_failures, 3u);
  down = false;
  auto n = cp->publish_pending();
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n.value(), 3);
  ASSERT_EQ(witnessed.size(), 3u);
  auto stored = read_checkpoints(*pool_, 0, 3);
  for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(witnessed[i], (*stored)[i].json);  // in order, byte for byte
  EXPECT_EQ(pool_->command({"GET", kPublishedKey})->str, "3");
  EXPECT_EQ(cp->publish_pending().value(), 0);
  // The background threads sign and publish on their own.
  cp->start();
  record_events(100, 2);
  const std::uint64_t goal = log_size();
  auto newest = [&]() -> std::uint64_t {
    std::lock_guard lock(mu);
    return evidence::checkpoint_from_json(Json::parse(witnessed.back()))->tree_size;
  };
  for (int i = 0; i < 200 && newest() < goal; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  cp->stop();
  EXPECT_EQ(newest(), goal);
  std::lock_guard lock(mu);
  EXPECT_GE(witnessed.size(), 4u);
  auto all = read_checkpoints(*pool_, 0, 100);
  ASSERT_EQ(all->size(), witnessed.size());  // every stored checkpoint witnessed, in order
  for (std::size_t i = 0; i < witnessed.size(); ++i) EXPECT_EQ(witnessed[i], (*all)[i].json);
}

TEST_F(LedgerRedis, RebuildAndCheckDetectsAModifiedLeafAndRepairsLevels) {
  record_events(0, 20);
  auto cp = checkpointer("A");
  sign_now(*cp);
  LedgerCheckOptions with_key;
  with_key.key = *pub_;
  auto clean = rebuild_and_check(*pool_, with_key);
  ASSERT_TRUE(clean.ok()) << clean.error().message;
  EXPECT_TRUE(clean->ok) << clean->text();
  EXPECT_EQ(clean->checked, 140u);
  EXPECT_EQ(clean->checkpoints_verified, 1u);
  EXPECT_EQ(clean->level_nodes_missing, 0u);

  // Someone edits a stored record: a delivery time moved by a day.
  const std::string original = pool_->command({"LINDEX", kLeavesKey, "12"})->str;
  Json j = Json::parse(original);
  j["event_time"] = j["event_time"].get<std::int64_t>() - 86400000;
  ASSERT_TRUE(pool_->command({"LSET", kLeavesKey, "12", *evidence::canonicalize(j)}).ok());
  auto tampered = rebuild_and_check(*pool_, with_key);
  ASSERT_TRUE(tampered.ok());
  EXPECT_FALSE(tampered->ok);
  EXPECT_EQ(tampered->leaf_mismatches, 1u);
  ASSERT_EQ(tampered->mismatched.size(), 1u);
  EXPECT_EQ(tampered->mismatched[0], 12u);
  EXPECT_NE(tampered->text().find("记录被改动: #12"), std::string::npos) << tampered->text();
  EXPECT_NE(tampered->text().find("covers modified leaf #12"), std::string::npos) << tampered->text();

  // The CLI says the same, with exit 1; and 0 once the record is restored.
  evidence::testing::TempDir dir;
  std::ofstream(dir.path() / "court.pub") << pem_.public_pem;
  std::ostringstream out;
  EXPECT_EQ(run_ledger_check({"--redis", redis_url_db5(), "--pubkey", (dir.path() / "court.pub").string()}, out), 1);
  EXPECT_NE(out.str().find("LEDGER CHECK FAILED"), std::string::npos);
  ASSERT_TRUE(pool_->command({"LSET", kLeavesKey, "12", original}).ok());

  // A corrupted level node is found and rebuilt.
  ASSERT_TRUE(pool_->command({"LSET", level_key(2), "3", std::string(64, '0')}).ok());
  auto levels = rebuild_and_check(*pool_, {});
  EXPECT_FALSE(levels->ok);
  EXPECT_EQ(levels->level_mismatches, 1u);
  LedgerCheckOptions repair;
  repair.repair_levels = true;
  EXPECT_TRUE(rebuild_and_check(*pool_, repair)->levels_repaired);
  std::ostringstream out2;
  EXPECT_EQ(run_ledger_check({"--redis", redis_url_db5(), "--pubkey", (dir.path() / "court.pub").string()}, out2), 0)
      << out2.str();
  EXPECT_NE(out2.str().find("LEDGER CHECK OK"), std::string::npos);
  // The signer refuses to extend a rewritten history.
  ASSERT_TRUE(pool_->command({"LSET", kHashesKey, "3", std::string(64, 'f')}).ok());
  ASSERT_TRUE(rebuild_and_check(*pool_, repair).ok());  // levels now follow the rewritten hash
  record_events(500, 1);
  auto refused = cp->tick();
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, "consistency_failed");
}

// ---- The whole pipeline, with install_evidence ----

class FakeChannel final : public Channel {
 public:
  FakeChannel(std::string name, SendOutcome::Kind kind, std::string provider)
      : name_(std::move(name)), kind_(kind), provider_(std::move(provider)) {}
  [[nodiscard]] std::string_view name() const override { return name_; }
  std::vector<SendOutcome> send(std::span<const Delivery> batch) override {
    std::vector<SendOutcome> out;
    for (const auto& d : batch) {
      SendOutcome o;
      o.kind = kind_;
      o.provider = provider_;
      o.provider_message_id = provider_ + "-" + d.id.substr(3, 8);
      o.code = "OK";
      o.message = "accepted";
      o.raw = "{\"id\":\"" + o.provider_message_id + "\"}";
      out.push_back(o);
    }
    sent += static_cast<int>(batch.size());
    return out;
  }
  std::atomic<int> sent{0};

 private:
  std::string name_;
  SendOutcome::Kind kind_;
  std::string provider_;
};

class NoDlq final : public DeadLetterSink {
 public:
  Status send(const std::vector<OutgoingMessage>& m) override {
    sent += m.size();
    return ok_status();
  }
  std::size_t sent = 0;
};

Json summons_event(const std::string& id) {
  return testing::summons_event(
      id, {{"mobile", "+8613812345678"}, {"wechat_openid", "oWeChat0001"}, {"app_user", "zhangsan"}});
}

class Pipeline : public LedgerRedis {
 protected:
  void SetUp() override {
    LedgerRedis::SetUp();
    auto loaded = load_config_file(std::string(SONGDA_SOURCE_DIR) + "/config/gateway.yaml");
    ASSERT_TRUE(loaded.config.has_value());
    config_ = *loaded.config;
    validator_ = std::make_unique<EventValidator>(EventValidator::default_schema_path(), 1 << 20);
    ingest_ = std::make_unique<IngestPipeline>(config_, *validator_, *store_, dlq_, PlanOptions{}, ingest_counters_);
    dispatcher_ = std::make_unique<Dispatcher>(*store_, config_.dispatch, RetryPolicy{}, dispatch_counters_);
    dispatcher_->set_receipt_key([](const SendOutcome& o) { return o.provider + ":" + o.provider_message_id; });
    receipts_ = std::make_unique<ReceiptProcessor>(*store_, receipt_counters_);
    timers_ = std::make_unique<FallbackTimers>(*store_);
    install_evidence(*ingest_, *dispatcher_, *receipts_, *timers_, *store_, kCtx);
  }

  // One summons, one recipient: in-app delivered and read, WeChat refused → SMS fallback delivered.
  void serve(const std::string& event_id) {
    const std::int64_t t0 = now_unix_ms();
    std::vector<KafkaMessage> batch = {{"court.case-events", 0, offset_++, "k", summons_event(event_id).dump(), {}},
                                       {"court.case-events", 0, offset_++, "k", "{broken", {}}};
    const std::size_t dead_before = dlq_.sent;
    ASSERT_TRUE(ingest_->process(batch, t0).ok());
    EXPECT_EQ(dlq_.sent, dead_before + 1);
    InAppChannel inapp(*store_);  // the real one: writes the inbox
    FakeChannel wechat("wechat", SendOutcome::Kind::kAccepted, "wechat");
    FakeChannel sms("sms", SendOutcome::Kind::kAccepted, "aliyun");
    ASSERT_EQ(dispatcher_->run_once(inapp, now_unix_ms()).value(), 1);
    ASSERT_EQ(dispatcher_->run_once(wechat, now_unix_ms()).value(), 1);
    EXPECT_EQ(dispatcher_->run_once(sms, now_unix_ms()).value(), 0);  // held behind WeChat
    const std::string wx_id = delivery_id(event_id, "P-001", "wechat");
    const std::string sms_id = delivery_id(event_id, "P-001", "sms");
    const std::string wx_key = "wechat:wechat-" + wx_id.substr(3, 8);
    ASSERT_EQ(receipts_
                  ->apply({{wx_key, "wechat", false, "43004 require subscribe (openid oWeChat0001)", now_unix_ms(),
                            "<xml>43004</xml>"}},
                          now_unix_ms())
                  .value(),
              0);
    ASSERT_EQ(timers_->run_once(now_unix_ms() + 1).value(), 1);  // the refusal wakes the SMS fallback
    ASSERT_EQ(dispatcher_->run_once(sms, now_unix_ms() + 2).value(), 1);
    delivered_at_ = now_unix_ms();
    ASSERT_EQ(receipts_
                  ->apply({{"aliyun:aliyun-" + sms_id.substr(3, 8), "sms", true, "DELIVRD", delivered_at_,
                            "<report phone=\"13812345678\">DELIVRD</report>"}},
                          now_unix_ms())
                  .value(),
              0);
    auto inbox = store_->get_delivery(delivery_id(event_id, "P-001", "inapp"));
    ASSERT_TRUE(inbox.ok() && inbox.value());
    const Delivery& d = inbox.value()->delivery;
    ASSERT_TRUE(store_->mark_read(d.address, d.id, now_unix_ms(), read_evidence(d, now_unix_ms())).ok());
  }

  // Another instance on the same Redis: its own objects and delivery cache; its evidence makers read from `reads`.
  struct Instance {
    Instance(const Config& config, const EventValidator& validator, DeliveryStore& store, DeadLetterSink& dlq,
             DeliveryStore& reads)
        : ingest(config, validator, store, dlq, PlanOptions{}, ingest_counters),
          dispatcher(store, config.dispatch, RetryPolicy{}, dispatch_counters),
          receipts(store, receipt_counters),
          timers(store) {
      install_evidence(ingest, dispatcher, receipts, timers, reads, kCtx);
    }
    IngestCounters ingest_counters;
    DispatchCounters dispatch_counters;
    ReceiptCounters receipt_counters;
    IngestPipeline ingest;
    Dispatcher dispatcher;
    ReceiptProcessor receipts;
    FallbackTimers timers;
  };
  std::unique_ptr<Instance> other_instance(DeliveryStore& reads) {
    return std::make_unique<Instance>(config_, *validator_, *store_, dlq_, reads);
  }

  Config config_;
  NoDlq dlq_;
  std::unique_ptr<EventValidator> validator_;
  IngestCounters ingest_counters_;
  DispatchCounters dispatch_counters_;
  ReceiptCounters receipt_counters_;
  std::unique_ptr<IngestPipeline> ingest_;
  std::unique_ptr<Dispatcher> dispatcher_;
  std::unique_ptr<ReceiptProcessor> receipts_;
  std::unique_ptr<FallbackTimers> timers_;
  std::int64_t offset_ = 100;
  std::int64_t delivered_at_ = 0;
};

TEST_F(Pipeline, TheBundleOfAServedSummonsVerifiesAndATamperedOneDoesNot) {
  serve("EVT-SUMMONS-1");
  ProofService proofs(*pool_, *store_, *key_, ProofOptions{2});
  auto sms = store_->get_delivery(delivery_id("EVT-SUMMONS-1", "P-001", "sms"));
  ASSERT_TRUE(sms.ok() && sms.value());

  // Before any checkpoint: pending, not a bundle that cannot verify.
  auto pending = proofs.proof_for(sms.value()->delivery);
  ASSERT_TRUE(pending.ok()) << pending.error().message;
  EXPECT_EQ(pending->state, RecipientProof::State::kPendingCheckpoint);
  EXPECT_EQ(pending->checkpoint_size, 0u);

  auto cp = checkpointer("A");
  sign_now(*cp);
  const std::int64_t asked_at = now_unix_ms();
  auto ready = proofs.proof_for(sms.value()->delivery);
  ASSERT_TRUE(ready.ok()) << ready.error().message;
  ASSERT_EQ(ready->state, RecipientProof::State::kReady);
  const Json& bundle = ready->bundle;
  // Attested complete by the log's key, as of when the records were read.
  EXPECT_EQ(bundle["version"], evidence::kBundleVersion);
  EXPECT_EQ(bundle["attestation"]["key_id"], key_->key_id());
  EXPECT_GE(bundle["attestation"]["attested_at"].get<std::int64_t>(), asked_at);
  EXPECT_LE(bundle["attestation"]["attested_at"].get<std::int64_t>(), now_unix_ms());
  std::multiset<std::string> types;
  for (const auto& r : bundle["records"]) types.insert(r["type"].get<std::string>());
  for (const char* t : {"SUBMISSION_ACCEPTED", "CONSENT_RECORDED", "DISPATCHED", "PROVIDER_ACCEPTED", "DELIVERED",
                        "DELIVERY_FAILED", "FALLBACK", "READ"}) {
    EXPECT_TRUE(types.contains(t)) << t << " missing from " << bundle["records"].dump();
  }
  EXPECT_EQ(types.count("CONSENT_RECORDED"), 3u);  // in-app, WeChat, SMS
  EXPECT_EQ(types.count("DELIVERED"), 2u);         // in-app inbox write, SMS receipt
  EXPECT_EQ(bundle["document_sha256"], sha256_hex("the summons"));
  // In-app reached the recipient's system first: that is the service (earliest effective channel).
  EXPECT_EQ(bundle["service"]["status"], "SERVED");
  EXPECT_EQ(bundle["service"]["channel"], "inapp");
  EXPECT_EQ(bundle["service"]["rule"], evidence::kRuleArrival);
  EXPECT_EQ(bundle.dump().find("13812345678"), std::string::npos);  // no raw address anywhere
  EXPECT_EQ(bundle.dump().find("oWeChat0001"), std::string::npos);
  const auto report = evidence::verify_parsed_bundle(bundle, pem_.public_pem);
  EXPECT_TRUE(report.ok) << report.text();

  // The rejected message left its own record in the log.
  auto leaves = pool_->command({"LRANGE", kLeavesKey, "0", "-1"});
  const bool rejected = std::any_of(leaves->elements.begin(), leaves->elements.end(), [](const RedisReply& r) {
    return r.str.find("SUBMISSION_REJECTED") != std::string::npos && r.str.find("invalid_json") != std::string::npos;
  });
  EXPECT_TRUE(rejected);

  // songda verify: 0 for the genuine file, 1 with a reason for a changed one, 2 without a key file.
  evidence::testing::TempDir dir;
  std::ofstream(dir.path() / "bundle.json") << bundle.dump(2);
  std::ofstream(dir.path() / "court.pub") << pem_.public_pem;
  std::ofstream(dir.path() / "summons.pdf") << "the summons";
  std::ostringstream out;
  EXPECT_EQ(run_verify({(dir.path() / "bundle.json").string(), "--pubkey", (dir.path() / "court.pub").string(),
                        "--document", (dir.path() / "summons.pdf").string()},
                       out),
            0)
      << out.str();
  Json changed = bundle;
  for (auto& r : changed["records"]) {
    if (r["type"] == "DELIVERY_FAILED") r["details"]["reason"] = "user accepted";  // a rewritten refusal
  }
  std::ofstream(dir.path() / "changed.json") << changed.dump(2);
  std::ostringstream bad;
  EXPECT_EQ(run_verify({(dir.path() / "changed.json").string(), "--pubkey", (dir.path() / "court.pub").string()}, bad),
            1);
  EXPECT_NE(bad.str().find("[FAIL]"), std::string::npos);
  EXPECT_NE(bad.str().find("记录被改动"), std::string::npos) << bad.str();
  std::ostringstream usage;
  EXPECT_EQ(run_verify({(dir.path() / "bundle.json").string(), "--pubkey", (dir.path() / "none.pub").string()}, usage),
            2);

  // A newer record of this recipient than the checkpoint: pending again until the next one.
  const Delivery& d = sms.value()->delivery;
  ASSERT_TRUE(
      store_->append_evidence(to_leaves({fallback_record(d, TimerOutcome{d.id, false, "x", "READ", 0}, now_unix_ms())}))
          .ok());
  EXPECT_EQ(proofs.proof_for(d)->state, RecipientProof::State::kPendingCheckpoint);
  sign_now(*cp);
  EXPECT_EQ(proofs.proof_for(d)->state, RecipientProof::State::kReady);

  // The case summary decides from the same records.
  auto summary = proofs.service_summary({kCourt}, "(2026)豫14民初123号");
  ASSERT_TRUE(summary.ok()) << summary.error().message;
  ASSERT_EQ((*summary)["count"], 1);
  EXPECT_EQ((*summary)["recipients"][0]["service"]["status"], "SERVED");
  EXPECT_EQ((*summary)["recipients"][0]["channels"].size(), 3u);
}

// Ingest wakes the dispatcher loop of each channel it queued new deliveries on: a loop that would poll only
// once every ten minutes sends them at once.
TEST_F(Pipeline, RecordedDeliveriesWakeTheIdleLoopOfTheirChannel) {
  DispatchConfig slow_poll = config_.dispatch;
  slow_poll.poll_ms = 600000;
  Dispatcher dispatcher(*store_, slow_poll, RetryPolicy{}, dispatch_counters_);
  ingest_->set_on_queued([&](const std::string& channel) { dispatcher.wake(channel); });
  FakeChannel wechat("wechat", SendOutcome::Kind::kAccepted, "wechat");
  std::atomic<bool> stop{false};
  std::thread loop([&] { dispatcher.run(wechat, stop); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // its first claim finds nothing: it waits
  EXPECT_EQ(wechat.sent.load(), 0);

  const std::vector<KafkaMessage> batch = {
      {"court.case-events", 0, offset_++, "k", summons_event("evt-wake-1").dump(), {}}};
  ASSERT_TRUE(ingest_->process(batch, now_unix_ms()).ok());
  for (int i = 0; i < 100 && wechat.sent.load() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(wechat.sent.load(), 1) << "the WeChat delivery waited for the next poll";

  stop = true;
  dispatcher.wake("wechat");  // a stopping loop leaves its wait at once
  loop.join();
}

// Receipts for deliveries another instance sent (not in this one's cache) still get their DELIVERED evidence,
// naming the delivery: one push with several of them reads their records together.
TEST_F(Pipeline, ReceiptsForDeliveriesAnotherInstanceSentGetTheirEvidence) {
  FakeChannel wechat("wechat", SendOutcome::Kind::kAccepted, "wechat");
  std::vector<std::string> ids;
  for (const std::string event : {"EVT-OTHER-1", "EVT-OTHER-2", "EVT-OTHER-3"}) {
    const std::vector<KafkaMessage> batch = {{"court.case-events", 0, offset_++, "k", summons_event(event).dump(), {}}};
    ASSERT_TRUE(ingest_->process(batch, now_unix_ms()).ok());
    ids.push_back(delivery_id(event, "P-001", "wechat"));
  }
  ASSERT_EQ(dispatcher_->run_once(wechat, now_unix_ms()).value(), 3);

  // A second instance: its own cache, which has none of them.
  auto other = other_instance(*store_);
  ReceiptProcessor& receipts = other->receipts;

  std::vector<ReceiptUpdate> push;
  for (const auto& id : ids) {
    push.push_back(
        {"wechat:wechat-" + id.substr(3, 8), "wechat", true, "success", now_unix_ms(), "<xml>" + id + "</xml>"});
  }
  ASSERT_EQ(receipts.apply(push, now_unix_ms()).value(), 0);
  for (const auto& id : ids) {
    auto v = store_->get_delivery(id);
    ASSERT_TRUE(v.ok() && v.value());
    EXPECT_EQ(v.value()->status, "DELIVERED");
    ASSERT_FALSE(v.value()->evidence_indexes.empty());
    auto leaf = pool_->command({"LINDEX", kLeavesKey, std::to_string(v.value()->evidence_indexes.back())});
    ASSERT_TRUE(leaf.ok());
    const auto j = Json::parse(leaf->str);
    EXPECT_EQ(j["type"], "DELIVERED") << id;
    EXPECT_EQ(j["delivery_id"], id);
    EXPECT_EQ(j["details"]["provider"], "wechat");
    EXPECT_EQ(j["details"]["receipt_sha256"], sha256_hex("<xml>" + id + "</xml>"));
  }
}

// A receipt whose delivery cannot be read (Redis does not answer) is not applied without its evidence: the push
// fails, so the provider pushes it again. Before, it was applied with "evidence LOST" in the log and no DELIVERED
// record in the log for good.
TEST_F(Pipeline, AReceiptIsNotAppliedWithoutItsEvidenceWhenItsDeliveryCannotBeRead) {
  FakeChannel wechat("wechat", SendOutcome::Kind::kAccepted, "wechat");
  const std::vector<KafkaMessage> batch = {
      {"court.case-events", 0, offset_++, "k", summons_event("EVT-UNREAD-1").dump(), {}}};
  ASSERT_TRUE(ingest_->process(batch, now_unix_ms()).ok());
  const std::string id = delivery_id("EVT-UNREAD-1", "P-001", "wechat");
  ASSERT_EQ(dispatcher_->run_once(wechat, now_unix_ms()).value(), 1);

  // Another instance whose evidence makers read from a Redis that does not answer (nothing listens on port 1).
  auto dead_ep = parse_redis_url("redis://127.0.0.1:1");
  ASSERT_TRUE(dead_ep.ok());
  RedisPool dead_pool(dead_ep.value(), 1, 200);
  DeliveryStore dead_store(dead_pool);
  auto other = other_instance(dead_store);
  ReceiptProcessor& receipts = other->receipts;

  const std::vector<ReceiptUpdate> push{
      {"wechat:wechat-" + id.substr(3, 8), "wechat", true, "success", now_unix_ms(), "<xml>ok</xml>"}};
  auto refused = receipts.apply(push, now_unix_ms());
  ASSERT_FALSE(refused.ok()) << "applied without reading its delivery";
  EXPECT_TRUE(refused.error().retryable);
  EXPECT_NE(refused.error().message.find("reading delivery " + id + " for its evidence record"), std::string::npos)
      << refused.error().message;
  EXPECT_EQ(store_->get_delivery(id).value()->status, "SENT");

  // The provider pushes again; Redis answers this time.
  ASSERT_EQ(receipts_->apply(push, now_unix_ms()).value(), 0);
  auto v = store_->get_delivery(id);
  ASSERT_TRUE(v.ok() && v.value());
  EXPECT_EQ(v.value()->status, "DELIVERED");
  auto leaf = pool_->command({"LINDEX", kLeavesKey, std::to_string(v.value()->evidence_indexes.back())});
  ASSERT_TRUE(leaf.ok());
  EXPECT_EQ(Json::parse(leaf->str)["type"], "DELIVERED");
}

// A fallback timer whose record cannot be made (a bug) is settled all the same. Before, the exception ended every
// round: that timer, and the others fired with it, were found unsettled and failed again, every round, for good.
TEST_F(Pipeline, AFallbackWhoseEvidenceCannotBeMadeIsSettledAndDoesNotStopTheOthers) {
  FakeChannel wechat("wechat", SendOutcome::Kind::kAccepted, "wechat");
  std::vector<std::string> wechat_ids;
  for (const std::string event : {"EVT-FB-1", "EVT-FB-2"}) {
    const std::vector<KafkaMessage> batch = {{"court.case-events", 0, offset_++, "k", summons_event(event).dump(), {}}};
    ASSERT_TRUE(ingest_->process(batch, now_unix_ms()).ok());
    wechat_ids.push_back(delivery_id(event, "P-001", "wechat"));
  }
  ASSERT_EQ(dispatcher_->run_once(wechat, now_unix_ms()).value(), 2);
  std::vector<ReceiptUpdate> refusals;
  for (const auto& id : wechat_ids) {
    refusals.push_back({"wechat:wechat-" + id.substr(3, 8), "wechat", false, "43004 require subscribe", now_unix_ms(),
                        "<xml>43004</xml>"});
  }
  ASSERT_EQ(receipts_->apply(refusals, now_unix_ms()).value(), 0);  // both refusals wake their SMS fallback

  const std::string poison = delivery_id("EVT-FB-1", "P-001", "sms");
  timers_->set_evidence([&](const TimerOutcome& t, std::int64_t now) -> Result<std::vector<EvidenceLeaf>> {
    if (t.delivery_id == poison) throw std::logic_error("fallback maker bug");
    auto held = store_->get_delivery(t.delivery_id);
    if (!held.ok() || !held.value()) return Error::transient("test", "cannot read " + t.delivery_id);
    return fallback_evidence(held.value()->delivery, t, now);
  });
  const auto errors_before = internal_errors();
  auto fired = timers_->run_once(now_unix_ms() + 1);
  ASSERT_TRUE(fired.ok()) << fired.error().message;
  EXPECT_EQ(fired.value(), 2);
  EXPECT_EQ(internal_errors(), errors_before + 1);
  auto unsettled = store_->unsettled_timers(now_unix_ms() + 60000, 100);
  ASSERT_TRUE(unsettled.ok());
  EXPECT_TRUE(unsettled->empty()) << unsettled->size() << " timers left unsettled";
  auto other = store_->get_delivery(delivery_id("EVT-FB-2", "P-001", "sms"));
  ASSERT_TRUE(other.ok() && other.value());
  ASSERT_FALSE(other.value()->evidence_indexes.empty());
  auto leaf = pool_->command({"LINDEX", kLeavesKey, std::to_string(other.value()->evidence_indexes.back())});
  ASSERT_TRUE(leaf.ok());
  EXPECT_EQ(Json::parse(leaf->str)["type"], "FALLBACK");
}

// The config check accepts "[::1]:8080"; the server must then bind it (it used to keep the brackets in the host).
TEST_F(Pipeline, TheApiListensOnAnIPv6Address) {
  HttpConfig http;
  http.listen = "[::1]:0";
  http.threads = 2;
  ApiKeys keys;
  keys.add_key(kCourt, "court-key-HN-SQ-ZY-0123456789abcdef");
  ApiServer server(http, *store_, keys, HealthProbes{}, [] { return std::string(); });
  ASSERT_NO_THROW(server.start());
  EXPECT_EQ(server.host(), "::1");
  EXPECT_EQ(server.authority(), "[::1]:" + std::to_string(server.port()));
  httplib::Client client("::1", server.port());
  auto r = client.Get("/v1/deliveries/sd-anything");
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->status, 401) << r->body;  // the API answered, and asked for a key
  server.stop();
}

TEST_F(Pipeline, HttpRoutes) {
  serve("EVT-HTTP-1");
  ProofService proofs(*pool_, *store_, *key_, ProofOptions{2});
  HttpConfig http;
  http.listen = "127.0.0.1:0";
  http.threads = 4;
  ApiKeys keys;
  const std::string mine = "court-key-HN-SQ-ZY-0123456789abcdef";
  const std::string theirs = "court-key-OTHER-0123456789abcdefgh";
  keys.add_key(kCourt, mine);
  keys.add_key("HN-OTHER", theirs);
  ApiServer server(http, *store_, keys, HealthProbes{}, [] { return std::string(); });
  register_proof_routes(server, proofs);
  server.start();
  httplib::Client client("127.0.0.1", server.port());
  const httplib::Headers auth{{"Authorization", "Bearer " + mine}};
  const httplib::Headers other{{"Authorization", "Bearer " + theirs}};
  const std::string id = delivery_id("EVT-HTTP-1", "P-001", "sms");
  const std::string proof = "/v1/deliveries/" + id + "/proof";

  EXPECT_EQ(client.Get(proof)->status, 401);
  EXPECT_EQ(client.Get(proof, other)->status, 403);
  EXPECT_EQ(client.Get("/v1/deliveries/sd-nope/proof", auth)->status, 404);
  auto pending = client.Get(proof, auth);
  EXPECT_EQ(pending->status, 202);
  EXPECT_EQ(Json::parse(pending->body)["status"], "pending_checkpoint");
  EXPECT_EQ(pending->get_header_value("Retry-After"), "2");
  EXPECT_EQ(client.Get(proof + ".html", auth)->status, 202);
  EXPECT_EQ(client.Get("/v1/evidence/checkpoints/latest", auth)->status, 404);

  auto cp = checkpointer("A");
  const auto first = sign_now(*cp);
  auto ok = client.Get(proof, auth);
  ASSERT_EQ(ok->status, 200) << ok->body;
  EXPECT_TRUE(evidence::verify_bundle(ok->body, pem_.public_pem).ok);
  auto html = client.Get(proof + ".html", auth);
  ASSERT_EQ(html->status, 200);
  EXPECT_NE(html->get_header_value("Content-Type").find("text/html"), std::string::npos);
  EXPECT_NE(html->body.find("电子送达凭证"), std::string::npos);
  EXPECT_NE(html->body.find("张三"), std::string::npos);
  EXPECT_NE(html->body.find("如何核验"), std::string::npos);
  EXPECT_EQ(html->body.find("13812345678"), std::string::npos);
  EXPECT_EQ(client.Get(proof + ".html", other)->status, 403);

  const std::string summary =
      "/v1/cases/" + httplib::detail::encode_query_param("(2026)豫14民初123号") + "/service-summary";
  auto s = client.Get(summary, auth);
  ASSERT_EQ(s->status, 200) << s->body;
  EXPECT_EQ(Json::parse(s->body)["recipients"][0]["service"]["status"], "SERVED");
  EXPECT_EQ(client.Get(summary, other)->status, 403);
  EXPECT_EQ(client.Get("/v1/cases/nope/service-summary", auth)->status, 404);

  auto latest = client.Get("/v1/evidence/checkpoints/latest", auth);
  ASSERT_EQ(latest->status, 200);
  EXPECT_EQ(evidence::checkpoint_from_json(Json::parse(latest->body))->root_hash, first.root_hash);
  serve("EVT-HTTP-2");
  const auto second = sign_now(*cp);
  auto cons = client.Get(
      "/v1/evidence/consistency?from=" + std::to_string(first.tree_size) + "&to=" + std::to_string(second.tree_size),
      auth);
  ASSERT_EQ(cons->status, 200) << cons->body;
  const Json cons_json = Json::parse(cons->body);
  std::vector<std::string> raw;
  for (const auto& h : cons_json["proof"]) raw.push_back(from_hex(h.get<std::string>()));
  EXPECT_TRUE(
      evidence::verify_consistency(first.tree_size, second.tree_size, raw, first.root_hash, second.root_hash).ok());
  EXPECT_EQ(client.Get("/v1/evidence/consistency?from=x", auth)->status, 400);
  EXPECT_EQ(client.Get("/v1/evidence/consistency?from=1&to=999999", auth)->status, 400);
  EXPECT_EQ(client.Get("/v1/evidence/consistency?from=1", other)->status, 200);  // public material, any key

  // A clerk who kept the first checkpoint checks that the log only grew since (--since/--consistency).
  evidence::testing::TempDir dir;
  std::ofstream(dir.path() / "bundle.json") << client.Get(proof, auth)->body;
  std::ofstream(dir.path() / "old.json") << latest->body;
  std::ofstream(dir.path() / "proof.json") << cons->body;
  auto pub = client.Get("/v1/evidence/public-key", auth);
  ASSERT_EQ(pub->status, 200);
  EXPECT_EQ(pub->body, pem_.public_pem);
  std::ofstream(dir.path() / "court.pub") << pub->body;
  std::ostringstream out;
  EXPECT_EQ(
      run_verify({(dir.path() / "bundle.json").string(), "--pubkey", (dir.path() / "court.pub").string(), "--since",
                  (dir.path() / "old.json").string(), "--consistency", (dir.path() / "proof.json").string()},
                 out),
      0)
      << out.str();
  EXPECT_NE(out.str().find("nothing was rewritten"), std::string::npos);
  EXPECT_EQ(client.Get("/v1/evidence/public-key")->status, 401);
  server.stop();
}

TEST_F(LedgerRedis, TsaTokenOnACheckpointVerifiesWithTheTsaCa) {
  if (!evidence::testing::have_openssl_cli()) GTEST_SKIP() << "openssl command line not installed";
  evidence::testing::TempDir dir;
  fs::create_directories(dir.path() / "tsa");
  fs::create_directories(dir.path() / "other");
  auto tsa = evidence::testing::LocalTsa::create(dir.path() / "tsa");
  ASSERT_TRUE(tsa.ok()) << tsa.error().message;
  auto other_tsa = evidence::testing::LocalTsa::create(dir.path() / "other");
  ASSERT_TRUE(other_tsa.ok()) << other_tsa.error().message;

  auto cp = checkpointer("A", [](const std::string&) { return ok_status(); });
  cp->set_timestamper([&](const std::string& body) { return tsa->stamp(body, true); });
  record_events(0, 3);
  sign_now(*cp);
  ASSERT_EQ(cp->publish_pending().value(), 1);
  auto latest = read_latest_checkpoint(*pool_);
  ASSERT_TRUE(latest.ok() && latest->has_value());
  ASSERT_TRUE((*latest)->checkpoint.tsa_token.has_value());
  EXPECT_TRUE(evidence::verify_checkpoint((*latest)->checkpoint, *pub_).ok());  // the signature is untouched

  ProofService proofs(*pool_, *store_, *key_, ProofOptions{1});
  auto d = store_->get_delivery(delivery_id("evt-1", "R1", "sms"));
  ASSERT_TRUE(d.ok() && d.value());
  auto p = proofs.proof_for(d.value()->delivery);
  ASSERT_TRUE(p.ok() && p->state == RecipientProof::State::kReady);
  ASSERT_TRUE(p->bundle["checkpoint"].contains("tsa_token"));
  std::ofstream(dir.path() / "bundle.json") << p->bundle.dump();
  std::ofstream(dir.path() / "court.pub") << pem_.public_pem;
  std::ofstream(dir.path() / "tsa-ca.pem") << tsa->ca_pem();
  std::ofstream(dir.path() / "other-ca.pem") << other_tsa->ca_pem();
  std::ostringstream out;
  EXPECT_EQ(run_verify({(dir.path() / "bundle.json").string(), "--pubkey", (dir.path() / "court.pub").string(),
                        "--tsa-ca", (dir.path() / "tsa-ca.pem").string()},
                       out),
            0)
      << out.str();
  EXPECT_NE(out.str().find("RFC 3161 token from the trusted TSA"), std::string::npos) << out.str();
  std::ostringstream wrong;
  EXPECT_EQ(run_verify({(dir.path() / "bundle.json").string(), "--pubkey", (dir.path() / "court.pub").string(),
                        "--tsa-ca", (dir.path() / "other-ca.pem").string()},
                       wrong),
            1);
  EXPECT_NE(wrong.str().find("[FAIL] TSA"), std::string::npos) << wrong.str();
}

TEST_F(LedgerRedis, CheckpointsAreWitnessedOnTheKafkaTopic) {
  const char* brokers = std::getenv("SONGDA_TEST_KAFKA_BROKERS");
  if (brokers == nullptr || *brokers == '\0')
    GTEST_SKIP() << "SONGDA_TEST_KAFKA_BROKERS not set (with-services --kafka)";
  KafkaConfig kc;
  kc.brokers = brokers;
  kc.checkpoint_topic = testing::unique_name("evidence-checkpoints");
  testing::create_topic(kc.brokers, kc.checkpoint_topic, 1);
  KafkaProducer producer(kc);
  auto cp = checkpointer("A", kafka_checkpoint_publisher(producer, kc.checkpoint_topic, "songda/test"));
  record_events(0, 2);
  sign_now(*cp);
  record_events(10, 2);
  sign_now(*cp);
  ASSERT_EQ(cp->publish_pending().value(), 2);
  auto seen = testing::read_all(kc.brokers, kc.checkpoint_topic);
  ASSERT_EQ(seen.size(), 2u);
  auto stored = read_checkpoints(*pool_, 0, 2);
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(seen[i].key, "songda/test");
    EXPECT_EQ(seen[i].value, (*stored)[i].json);
    EXPECT_TRUE(evidence::verify_checkpoint(*evidence::checkpoint_from_json(Json::parse(seen[i].value)), *pub_).ok());
  }
  // What a new signer reads back as the witnesses' newest: the topic's end, this origin's only.
  ASSERT_TRUE(producer.produce_all({{kc.checkpoint_topic, "another/log", "{}", {}}}).ok());
  auto tail = kafka_checkpoint_witness(kc, kc.checkpoint_topic, "songda/test")();
  ASSERT_TRUE(tail.ok()) << tail.error().message;
  EXPECT_EQ(*tail, (std::vector<std::string>{(*stored)[0].json, (*stored)[1].json}));
  auto none = kafka_checkpoint_witness(kc, testing::unique_name("no-such-topic"), "songda/test")();
  ASSERT_TRUE(none.ok()) << none.error().message;
  EXPECT_TRUE(none->empty());
}

}  // namespace
}  // namespace songda::ledger
