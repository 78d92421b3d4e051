// DeliveryStore scripts on a real redis-server: fallback timers, receipts, rate limits.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <thread>

#include "gateway/core/contain.h"
#include "gateway/core/crypto.h"
#include "gateway/core/text.h"
#include "gateway/receipts/receipts.h"
#include "gateway/store/store.h"
#include "tests/support/kafka_util.h"
#include "tests/support/service_config.h"

namespace songda {
namespace {

// A completion as dispatch or a receipt would make it.
Completion done(const std::string& id, const std::string& channel, const std::string& status, const std::string& detail,
                const std::string& provider, const std::string& pmid, const std::string& receipt_key) {
  Completion c;
  c.id = id;
  c.channel = channel;
  c.status = status;
  c.detail = detail;
  c.provider = provider;
  c.provider_message_id = pmid;
  c.receipt_key = receipt_key;
  return c;
}

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ep = parse_redis_url(testing::redis_url_with_db(testing::require_env("SONGDA_TEST_REDIS_URL"), 2));
    ASSERT_TRUE(ep.ok());
    pool_ = std::make_unique<RedisPool>(ep.value(), 4, 2000);
    ASSERT_TRUE(pool_->command({"FLUSHDB"}).ok());
    store_ = std::make_unique<DeliveryStore>(*pool_);
  }

  Delivery make(const std::string& event, const std::string& channel, const std::string& hold_from = "",
                int after_s = 0) {
    Delivery d;
    d.id = delivery_id(event, "R1", channel);
    d.event_id = event;
    d.event_type = "summons.issued";
    d.court_id = "HN-SQ-ZY";
    d.case_number = "(2026)豫14民初1号";
    d.recipient_id = "R1";
    d.channel = channel;
    d.address = channel == "sms" ? "+8613800000001" : "oOPENID";
    d.text = "传票";
    d.hold_from = hold_from;
    d.hold_unless = hold_from.empty() ? "" : "DELIVERED";
    d.hold_after_s = after_s;
    return d;
  }

  // Empties a token bucket and moves its last take `ms` back by Redis' clock (the one the bucket uses), so the next
  // take sees exactly that much refill, without sleeping and hoping the machine keeps time.
  void set_bucket_taken_ago(const std::string& key, int ms) {
    auto t = pool_->command({"TIME"});
    ASSERT_TRUE(t.ok() && t->elements.size() == 2);
    const long long redis_ms = std::stoll(t->elements[0].str) * 1000 + std::stoll(t->elements[1].str) / 1000;
    ASSERT_TRUE(pool_->command({"HSET", key, "tokens", "0", "ts", std::to_string(redis_ms - ms)}).ok());
  }

  void record(const std::string& event, std::vector<Delivery> ds, std::int64_t now) {
    EventToRecord e;
    e.event_id = event;
    e.digest = "digest-" + event;
    e.court_id = "HN-SQ-ZY";
    e.case_number = "(2026)豫14民初1号";
    e.deliveries = std::move(ds);
    auto r = store_->record_batch({e}, now);
    ASSERT_TRUE(r.ok()) << r.error().message;
  }

  // `n` WeChat deliveries (events "<prefix><i>") recorded, claimed and SENT with receipt keys
  // "wechat:<first_msg + i>"; their completions, in order.
  std::vector<Completion> sent_wechat(const std::string& prefix, int n, int first_msg, std::int64_t now) {
    std::vector<Completion> sent;
    for (int i = 0; i < n; ++i) {
      const std::string event = prefix + std::to_string(i);
      auto wx = make(event, "wechat");
      record(event, {wx}, now);
      sent.push_back(done(wx.id, "wechat", "SENT", "accepted", "wechat-oa", std::to_string(first_msg + i),
                          "wechat:" + std::to_string(first_msg + i)));
    }
    EXPECT_EQ(store_->claim_due("wechat", now, 30000, n)->size(), static_cast<std::size_t>(n));
    EXPECT_TRUE(store_->complete_batch(sent, now + 100).ok());
    return sent;
  }

  std::string status(const std::string& id) {
    auto v = store_->get_delivery(id);
    return v.ok() && v.value() ? v.value()->status : "?";
  }

  std::unique_ptr<RedisPool> pool_;
  std::unique_ptr<DeliveryStore> store_;
};

TEST_F(StoreTest, FallbackIsReleasedWhenTheFirstChannelDoesNotArriveInTime) {
  const auto now = now_unix_ms();
  auto wx = make("e1", "wechat");
  auto sms = make("e1", "sms", wx.id, 10);
  record("e1", {wx, sms}, now);
  EXPECT_EQ(store_->queue_length("sms").value(), 0);  // held, not queued
  {
    auto st = store_->complete_batch({done(wx.id, "wechat", "SENT", "ok", "wechat-oa", "m1", "wechat:m1")}, now);
    ASSERT_TRUE(st.ok()) << st.error().message;
  }
  auto early = store_->fire_due_timers(now + 5000, 100);
  ASSERT_TRUE(early.ok());
  EXPECT_TRUE(early->empty());
  auto fired = store_->fire_due_timers(now + 10'001, 100);
  ASSERT_TRUE(fired.ok());
  ASSERT_EQ(fired->size(), 1u);
  EXPECT_TRUE(fired->front().released);
  EXPECT_EQ(fired->front().from_status, "SENT");
  EXPECT_EQ(store_->queue_length("sms").value(), 1);
  // It fires once only.
  EXPECT_TRUE(store_->fire_due_timers(now + 20'000, 100)->empty());
  auto v = store_->get_delivery(sms.id).value();
  ASSERT_TRUE(v);
  EXPECT_EQ(v->history.back().status, "FALLBACK");
}

TEST_F(StoreTest, FallbackIsCancelledWhenTheFirstChannelArrived) {
  const auto now = now_unix_ms();
  auto wx = make("e2", "wechat");
  auto sms = make("e2", "sms", wx.id, 10);
  record("e2", {wx, sms}, now);
  ASSERT_TRUE(store_->complete_batch({done(wx.id, "wechat", "DELIVERED", "receipt", "wechat-oa", "m2", "")}, now).ok());
  auto fired = store_->fire_due_timers(now + 11'000, 100);
  ASSERT_EQ(fired->size(), 1u);
  EXPECT_FALSE(fired->front().released);
  EXPECT_EQ(status(sms.id), "CANCELLED");
  EXPECT_EQ(store_->queue_length("sms").value(), 0);
}

// A mail server may refuse in its own charset (GBK here: "拒收" is D3 DC CA D5); its reply is the outcome's
// detail. The outcome is still recorded, with the bad bytes shown as U+FFFD in the status history.
TEST_F(StoreTest, AnOutcomeWhoseServerReplyIsNotUtf8IsStillRecorded) {
  const auto now = now_unix_ms();
  auto mail = make("e-gbk", "email");
  record("e-gbk", {mail}, now);
  const std::string reply = "550 \xD3\xDC\xCA\xD5 mailbox unavailable";
  ASSERT_TRUE(store_->complete_batch({done(mail.id, "email", "FAILED", reply, "smtp", "", "")}, now + 10).ok());
  auto v = store_->get_delivery(mail.id);
  ASSERT_TRUE(v.ok() && v.value());
  EXPECT_EQ(v.value()->status, "FAILED");
  ASSERT_FALSE(v.value()->history.empty());
  EXPECT_EQ(v.value()->history.back().detail, "550 \uFFFD\uFFFD\uFFFD\uFFFD mailbox unavailable");
}

// A receipt that names no delivery yet is parked with its raw body; a body that is not UTF-8 is parked too.
TEST_F(StoreTest, AnUnknownReceiptWhoseBodyIsNotUtf8IsParked) {
  ReceiptCounters counters;
  ReceiptProcessor p(*store_, counters);
  const auto now = now_unix_ms();
  ReceiptUpdate u{"wechat:900", "wechat", false, "failed: \xB2\xBB", now, "<xml>\xB2\xBB</xml>"};
  auto parked = p.apply({u}, now);
  ASSERT_TRUE(parked.ok()) << parked.error().message;
  EXPECT_EQ(parked.value(), 1);
  EXPECT_EQ(store_->parked_receipt_count().value(), 1);
}

TEST_F(StoreTest, FinalFailureOfTheFirstChannelReleasesTheFallbackAtOnce) {
  const auto now = now_unix_ms();
  auto wx = make("e3", "wechat");
  auto sms = make("e3", "sms", wx.id, 600);
  record("e3", {wx, sms}, now);
  ASSERT_TRUE(
      store_->complete_batch({done(wx.id, "wechat", "FAILED", "43004 unsubscribed", "wechat-oa", "", "")}, now + 100)
          .ok());
  auto fired = store_->fire_due_timers(now + 200, 100);  // long before the 600 s deadline
  ASSERT_EQ(fired->size(), 1u);
  EXPECT_TRUE(fired->front().released);
  EXPECT_EQ(fired->front().from_status, "FAILED");
}

TEST_F(StoreTest, EachTimerFiresExactlyOnceAcrossConcurrentInstances) {
  const auto now = now_unix_ms();
  for (int i = 0; i < 200; ++i) {
    const std::string ev = "t" + std::to_string(i);
    auto wx = make(ev, "wechat");
    record(ev, {wx, make(ev, "sms", wx.id, 1)}, now);
  }
  std::atomic<int> released{0};
  std::vector<std::thread> instances;
  for (int t = 0; t < 4; ++t) {
    instances.emplace_back([&] {
      DeliveryStore mine(*pool_);
      for (int k = 0; k < 20; ++k) {
        auto f = mine.fire_due_timers(now + 2000, 7);
        if (f.ok()) {
          for (const auto& o : f.value()) released += o.released ? 1 : 0;
        }
      }
    });
  }
  for (auto& t : instances) t.join();
  EXPECT_EQ(released.load(), 200);
  EXPECT_EQ(store_->queue_length("sms").value(), 200);
}

TEST_F(StoreTest, RepeatedReceiptChangesNothingAndUnknownOnesAreReported) {
  const auto now = now_unix_ms();
  auto sms = make("e4", "sms");
  record("e4", {sms}, now);
  ASSERT_TRUE(store_->claim_due("sms", now, 30000, 10).ok());
  ASSERT_TRUE(
      store_
          ->complete_batch(
              {done(sms.id, "sms", "SENT", "accepted", "aliyun-main", "B1:13800000001", "aliyun:B1:13800000001")}, now)
          .ok());
  ReceiptCounters counters;
  ReceiptProcessor p(*store_, counters);
  ReceiptUpdate u{"aliyun:B1:13800000001", "sms", true, "DELIVERED 用户接收成功", now + 500, "{}"};
  EXPECT_EQ(p.apply({u}, now + 600).value(), 0);
  EXPECT_EQ(p.apply({u}, now + 700).value(), 0);  // the provider pushed it again
  ReceiptUpdate stranger{"aliyun:B9:13900000000", "sms", true, "DELIVERED", now, "{}"};
  EXPECT_EQ(p.apply({stranger}, now + 800).value(), 1);  // parked: it names nothing we know
  EXPECT_EQ(store_->parked_receipt_count().value(), 1);
  auto v = store_->get_delivery(sms.id).value();
  ASSERT_TRUE(v);
  EXPECT_EQ(v->status, "DELIVERED");
  int delivered = 0;
  for (const auto& h : v->history) delivered += h.status == "DELIVERED" ? 1 : 0;
  EXPECT_EQ(delivered, 1);
  EXPECT_EQ(v->history.back().at_ms, now + 500);  // the provider's time, not ours
  // A late FAILED receipt cannot undo DELIVERED.
  ReceiptUpdate late{"aliyun:B1:13800000001", "sms", false, "UNDELIV", now + 900, "{}"};
  EXPECT_EQ(p.apply({late}, now + 1000).value(), 0);
  EXPECT_EQ(status(sms.id), "DELIVERED");
}

TEST_F(StoreTest, RateLimitIsSharedThroughRedis) {
  const auto now = now_unix_ms();
  for (int i = 0; i < 50; ++i) record("r" + std::to_string(i), {make("r" + std::to_string(i), "sms")}, now);
  auto first = store_->claim_due("sms", now, 30000, 100, 10.0);
  ASSERT_TRUE(first.ok());
  EXPECT_LE(first->size(), 10u);
  EXPECT_GE(first->size(), 9u);
  DeliveryStore other(*pool_);  // another instance shares the bucket
  auto second = other.claim_due("sms", now, 30000, 100, 10.0);
  ASSERT_TRUE(second.ok());
  EXPECT_LE(second->size(), 2u);
  // Half a second later by Redis' clock (the bucket's last take moved back, not a sleep): 5 tokens at 10/s.
  set_bucket_taken_ago("sd:rate:sms", 500);
  auto later = other.claim_due("sms", now, 30000, 100, 10.0);
  ASSERT_TRUE(later.ok());
  EXPECT_EQ(later->size(), 5u);
}

// Pushes arriving together are applied together (group commit); each provider must still get the answer for
// its own push, and a push that fails to apply must not stop the ones after it.
TEST_F(StoreTest, ConcurrentPushesEachGetTheirOwnResult) {
  const auto now = now_unix_ms();
  constexpr int kPushes = 16;
  const std::vector<Completion> sent = sent_wechat("e9-", kPushes, 900, now);

  ReceiptCounters counters;
  ReceiptProcessor p(*store_, counters);
  std::atomic<int> evidence_calls{0};
  p.set_evidence([&](const std::string&, const ReceiptUpdate&, std::int64_t) -> Result<std::vector<EvidenceLeaf>> {
    if (evidence_calls.fetch_add(1) == 0) return Error::transient("redis_unavailable", "a read that fails once");
    return std::vector<EvidenceLeaf>{};
  });
  // The first push fails while it is applied (the HTTP server answers 503; the provider pushes again) ...
  const std::vector<ReceiptUpdate> first{{"wechat:900", "wechat", true, "success", now + 200, "<xml/>"}};
  auto failed = p.apply(first, now + 300);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().code, "redis_unavailable");
  EXPECT_EQ(status(sent[0].id), "SENT");

  // ... and does not hold up the next ones: every push, odd ones with a receipt naming nothing we know.
  std::vector<Result<int>> results(kPushes, Result<int>(-1));
  std::vector<std::thread> threads;
  for (int i = 0; i < kPushes; ++i) {
    threads.emplace_back([&, i] {
      std::vector<ReceiptUpdate> push{
          {"wechat:" + std::to_string(900 + i), "wechat", true, "success", now + 200 + i, "<xml/>"}};
      if (i % 2 == 1)
        push.push_back({"wechat:stranger-" + std::to_string(i), "wechat", true, "success", now, "<xml/>"});
      results[static_cast<std::size_t>(i)] = p.apply(push, now + 400);
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kPushes; ++i) {
    const auto& r = results[static_cast<std::size_t>(i)];
    ASSERT_TRUE(r.ok()) << "push " << i << ": " << r.error().message;
    EXPECT_EQ(r.value(), i % 2) << "push " << i << " parked its own unknown receipt only";
    EXPECT_EQ(status(sent[static_cast<std::size_t>(i)].id), "DELIVERED") << "push " << i;
  }
  EXPECT_EQ(store_->parked_receipt_count().value(), kPushes / 2);
  EXPECT_EQ(counters.applied.load(), static_cast<std::uint64_t>(kPushes));
  EXPECT_EQ(counters.unknown.load(), static_cast<std::uint64_t>(kPushes / 2));
}

// A push whose signature came with another body before is a forgery: it is refused (signature_reused) and nothing
// of it is applied or parked, also when it is applied in one group with genuine pushes; the provider's own retry
// (same signature, same body) is not refused. The check rides in the lookup's round trip.
TEST_F(StoreTest, AReusedSignatureIsRefusedAndTheGenuinePushesOfItsGroupAreApplied) {
  const auto now = now_unix_ms();
  constexpr int kPushes = 8;
  const std::vector<Completion> sent = sent_wechat("e11-", kPushes, 700, now);
  ReceiptCounters counters;
  ReceiptProcessor p(*store_, counters);
  const auto receipt = [&](int i, bool delivered) {
    return std::vector<ReceiptUpdate>{{"wechat:" + std::to_string(700 + i), "wechat", delivered,
                                       delivered ? "success" : "failed:user block", now + 200, "<xml/>"}};
  };
  const DeliveryStore::CallbackBinding captured{"wechat:1:captured", sha256_hex("the genuine body")};
  const auto genuine = receipt(0, false);
  ASSERT_EQ(p.apply(genuine, now + 300, captured).value(), 0);
  ASSERT_EQ(p.apply(genuine, now + 300, captured).value(), 0) << "the provider's retry of the same push";

  std::vector<Result<int>> results(kPushes, Result<int>(-1));
  std::vector<std::thread> threads;
  for (int i = 1; i < kPushes; ++i) {
    threads.emplace_back([&, i] {
      // Odd: the captured signature with a forged body ("delivered"); even: their own signatures.
      const DeliveryStore::CallbackBinding b =
          i % 2 == 1 ? DeliveryStore::CallbackBinding{captured.id, sha256_hex("forged " + std::to_string(i))}
                     : DeliveryStore::CallbackBinding{"wechat:1:own-" + std::to_string(i), sha256_hex("body")};
      const auto updates = receipt(i, true);
      results[static_cast<std::size_t>(i)] = p.apply(updates, now + 400, b);
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 1; i < kPushes; ++i) {
    const auto& r = results[static_cast<std::size_t>(i)];
    if (i % 2 == 1) {
      ASSERT_FALSE(r.ok()) << "push " << i << " with a reused signature was applied";
      EXPECT_EQ(r.error().code, "signature_reused");
      EXPECT_EQ(status(sent[static_cast<std::size_t>(i)].id), "SENT") << "push " << i;
    } else {
      ASSERT_TRUE(r.ok()) << "push " << i << ": " << r.error().message;
      EXPECT_EQ(status(sent[static_cast<std::size_t>(i)].id), "DELIVERED") << "push " << i;
    }
  }
  EXPECT_EQ(status(sent[0].id), "FAILED");
  EXPECT_EQ(store_->parked_receipt_count().value(), 0) << "a forged receipt was parked";
  EXPECT_EQ(counters.received.load(), 2u + 3u) << "forged receipts counted as received";
}

// A receipt is a fact: a maker that throws for it (a bug) must not make the provider push it again and again until
// it gives up, which lost it. It is applied without its record, and the delivery's timeline says why.
TEST_F(StoreTest, AReceiptWhoseEvidenceCannotBeMadeIsAppliedAndItsTimelineSaysWhy) {
  const auto now = now_unix_ms();
  const std::vector<Completion> sent = sent_wechat("e10-", 2, 600, now);

  ReceiptCounters counters;
  ReceiptProcessor p(*store_, counters);
  p.set_evidence([&](const std::string& id, const ReceiptUpdate&, std::int64_t) -> Result<std::vector<EvidenceLeaf>> {
    if (id == sent[0].id) throw std::logic_error("receipt maker bug");
    return std::vector<EvidenceLeaf>{{id, R"({"type":"DELIVERED"})", std::string(64, 'c')}};
  });
  const auto errors_before = internal_errors();
  auto r = p.apply({{"wechat:600", "wechat", true, "success", now + 200, "<xml/>"},
                    {"wechat:601", "wechat", true, "success", now + 200, "<xml/>"}},
                   now + 300);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value(), 0);
  EXPECT_EQ(internal_errors(), errors_before + 1);
  for (const auto& c : sent) {
    auto v = store_->get_delivery(c.id);
    ASSERT_TRUE(v.ok() && v.value());
    EXPECT_EQ(v.value()->status, "DELIVERED") << c.id;
    EXPECT_EQ(v.value()->evidence_indexes.size(), c.id == sent[0].id ? 0u : 1u) << c.id;
    const std::string& last = v.value()->history.back().detail;
    const bool says_why =
        last.find(
            "; recorded without its evidence record: receipt evidence: unexpected std::logic_error: receipt "
            "maker bug") != std::string::npos;
    EXPECT_EQ(says_why, c.id == sent[0].id) << last;
  }
}

// Receipts that will never match (a send retried under a new id after the provider had taken the first, another
// system's message on a shared account) used to be tried every second for ever: 500 a second out of a growing
// backlog, so a genuinely early receipt waited behind them. Now each is tried again after as long as it has been
// parked (1 s to 10 min), and moved aside after 7 days.
TEST_F(StoreTest, AParkedReceiptIsTriedLessOftenAsItAgesAndSetAsideAfterAWeek) {
  const std::int64_t t0 = now_unix_ms();
  ReceiptCounters counters;
  ReceiptProcessor p(*store_, counters);
  ASSERT_EQ(p.apply({{"wechat:424242", "wechat", true, "success", t0, "<xml/>"}}, t0).value(), 1);
  const auto next_try = [&] {
    auto r = pool_->command({"ZSCORE", "sd:rcpt:parked:tried", "wechat:424242"});
    return r.ok() && r->type == RedisReply::Type::kString ? std::stoll(r->str) : -1;
  };
  EXPECT_EQ(next_try(), t0 + 1000);
  ASSERT_TRUE(p.retry_parked(t0 + 500).ok());
  EXPECT_EQ(next_try(), t0 + 1000) << "tried before it was due";
  ASSERT_TRUE(p.retry_parked(t0 + 1000).ok());
  EXPECT_EQ(next_try(), t0 + 2000);
  ASSERT_TRUE(p.retry_parked(t0 + 60'000).ok());
  EXPECT_EQ(next_try(), t0 + 120'000);
  ASSERT_TRUE(p.retry_parked(t0 + 3 * 3600'000).ok());
  EXPECT_EQ(next_try(), t0 + 3 * 3600'000 + 600'000) << "at most 10 minutes apart";

  constexpr std::int64_t kWeek = 7LL * 24 * 3600'000;
  ASSERT_TRUE(p.retry_parked(t0 + kWeek).ok());
  EXPECT_EQ(store_->parked_receipt_count().value(), 1) << "set aside before 7 days";
  ASSERT_TRUE(p.retry_parked(t0 + kWeek + 600'001).ok());
  EXPECT_EQ(store_->parked_receipt_count().value(), 0);
  EXPECT_EQ(store_->unmatched_receipt_count().value(), 1) << "kept for an operator";
  EXPECT_EQ(next_try(), -1) << "no longer tried";
  EXPECT_EQ(counters.given_up.load(), 1u);
  // Kept 30 days for an operator, then deleted: it names no delivery of ours, and it holds a phone number.
  constexpr std::int64_t kDay = 24LL * 3600'000;
  ASSERT_TRUE(p.retry_parked(t0 + kWeek + 600'001 + 30 * kDay).ok());
  EXPECT_EQ(store_->unmatched_receipt_count().value(), 1);
  ASSERT_TRUE(p.retry_parked(t0 + kWeek + 600'002 + 30 * kDay).ok());
  EXPECT_EQ(store_->unmatched_receipt_count().value(), 0);
  EXPECT_EQ(pool_->command({"EXISTS", "sd:rcpt:unmatched:at"})->integer, 0);

  // One set aside before its time was kept (an older version) counts from the first pass after the upgrade.
  ASSERT_TRUE(pool_->command({"DEL", "sd:rcpt:unmatched:dated"}).ok());
  ASSERT_TRUE(pool_->command({"HSET", "sd:rcpt:unmatched", "aliyun:OLD:13800000009", "{}"}).ok());
  const std::int64_t upgraded = t0 + 60 * kDay;
  ASSERT_TRUE(p.retry_parked(upgraded).ok());
  EXPECT_EQ(store_->unmatched_receipt_count().value(), 1);
  ASSERT_TRUE(p.retry_parked(upgraded + 30 * kDay + 1).ok());
  EXPECT_EQ(store_->unmatched_receipt_count().value(), 0);
}

TEST_F(StoreTest, AReceiptBeforeItsSendIsRecordedIsParkedThenAppliedOnce) {
  const auto now = now_unix_ms();
  auto wx = make("e6", "wechat");
  record("e6", {wx}, now);
  ASSERT_TRUE(store_->claim_due("wechat", now, 30000, 10).ok());
  ReceiptCounters counters;
  ReceiptProcessor p(*store_, counters);
  // The provider's receipt overtakes our own recording of its answer.
  ReceiptUpdate u{"wechat:777", "wechat", true, "success", now + 300, "<xml/>"};
  EXPECT_EQ(p.apply({u}, now + 400).value(), 1);
  EXPECT_EQ(store_->parked_receipt_count().value(), 1);
  EXPECT_EQ(p.retry_parked(now + 2000).value(), 0) << "its delivery is not known yet";
  EXPECT_EQ(status(wx.id), "ACCEPTED");
  ASSERT_TRUE(
      store_->complete_batch({done(wx.id, "wechat", "SENT", "accepted", "wechat-oa", "777", "wechat:777")}, now + 500)
          .ok());
  EXPECT_EQ(p.retry_parked(now + 2500).value(), 0) << "tried less than a second ago";
  EXPECT_EQ(p.retry_parked(now + 4000).value(), 1);
  EXPECT_EQ(status(wx.id), "DELIVERED");
  EXPECT_EQ(store_->parked_receipt_count().value(), 0);
  EXPECT_EQ(p.retry_parked(now + 6000).value(), 0);
  EXPECT_EQ(counters.applied_later.load(), 1u);
  auto v = store_->get_delivery(wx.id).value();
  ASSERT_TRUE(v);
  EXPECT_EQ(v->history.back().at_ms, now + 300);  // the provider's time
}

TEST_F(StoreTest, AnAttemptNeverCompletedIsInDoubtAtTheNextClaim) {
  const auto now = now_unix_ms();
  auto sms = make("e7", "sms");
  record("e7", {sms}, now);
  auto first = store_->claim_due("sms", now, 1000, 10);
  ASSERT_EQ(first->size(), 1u);
  EXPECT_EQ(first->front().in_doubt_since_ms, 0);
  // The claimer died: its lease runs out, and the next claim sees the attempt begun at `now` in doubt.
  auto second = store_->claim_due("sms", now + 1500, 1000, 10);
  ASSERT_EQ(second->size(), 1u);
  EXPECT_EQ(second->front().in_doubt_since_ms, now);
  // Still in doubt after a wait (the provider was asked and could not say) ...
  Completion wait;
  wait.id = sms.id;
  wait.channel = "sms";
  wait.retry_at_ms = now + 3000;
  wait.still_in_doubt = true;
  ASSERT_TRUE(store_->complete_batch({wait}, now + 1600).ok());
  auto third = store_->claim_due("sms", now + 3000, 1000, 10);
  ASSERT_EQ(third->size(), 1u);
  EXPECT_EQ(third->front().in_doubt_since_ms, now) << "the earliest unknown attempt is kept";
  // ... until an outcome is recorded; after that a new attempt starts clean.
  Completion retry;
  retry.id = sms.id;
  retry.channel = "sms";
  retry.retry_at_ms = now + 4000;
  ASSERT_TRUE(store_->complete_batch({retry}, now + 3100).ok());
  auto fourth = store_->claim_due("sms", now + 4000, 1000, 10);
  ASSERT_EQ(fourth->size(), 1u);
  EXPECT_EQ(fourth->front().in_doubt_since_ms, 0);
}

// Two claimers: A's send is slow and its lease runs out; B claims the delivery (in doubt) and asks the provider,
// which cannot tell yet, so B reports "try again later". Meanwhile A's attempt is recorded SENT. B's late retry must
// not put the sent delivery back in the queue, where the next claim would send it a second time.
TEST_F(StoreTest, ARetryReportedAfterAnotherClaimersAttemptWasRecordedDoesNotSendItAgain) {
  const auto now = now_unix_ms();
  auto sms = make("e12", "sms");
  record("e12", {sms}, now);
  ASSERT_EQ(store_->claim_due("sms", now, 1000, 10)->size(), 1u);  // A
  auto b = store_->claim_due("sms", now + 1500, 1000, 10);         // A's lease ran out: B
  ASSERT_EQ(b->size(), 1u);
  ASSERT_EQ(b->front().in_doubt_since_ms, now);
  ASSERT_TRUE(store_
                  ->complete_batch({done(sms.id, "sms", "SENT", "accepted", "aliyun-main", "B12:1", "aliyun:B12:1")},
                                   now + 1600)
                  .ok());  // A's outcome
  Completion later;        // B's, after it
  later.id = sms.id;
  later.channel = "sms";
  later.retry_at_ms = now + 3000;
  later.still_in_doubt = true;
  later.detail = "the provider cannot tell yet";
  ASSERT_TRUE(store_->complete_batch({later}, now + 1700).ok());
  EXPECT_EQ(status(sms.id), "SENT");
  EXPECT_TRUE(store_->claim_due("sms", now + 5000, 1000, 10)->empty()) << "sent once; nothing to send again";
  EXPECT_EQ(store_->queue_length("sms").value(), 0);

  // A settled delivery found in the queue (left there by an older version, or a race) is not handed out.
  auto other = make("e13", "sms");
  record("e13", {other}, now);
  ASSERT_TRUE(store_->complete_batch({done(other.id, "sms", "FAILED", "refused", "aliyun-main", "", "")}, now).ok());
  ASSERT_TRUE(pool_->command({"ZADD", "sd:q:sms", std::to_string(now), other.id}).ok());
  EXPECT_TRUE(store_->claim_due("sms", now + 5000, 1000, 10)->empty());
  EXPECT_EQ(store_->queue_length("sms").value(), 0) << "and it leaves the queue";
}

// complete_batch makes its queue and sent-set writes once per key at the end of the batch: a delivery written
// twice in one batch must end where the later write puts it, as if they had been made in turn.
TEST_F(StoreTest, ADeliveryWrittenTwiceInOneBatchEndsWhereTheLaterWritePutsIt) {
  const auto now = now_unix_ms();
  auto a = make("e8a", "sms");
  auto b = make("e8b", "sms");
  record("e8a", {a}, now);
  record("e8b", {b}, now);
  auto claimed = store_->claim_due("sms", now, 1000, 10);
  ASSERT_EQ(claimed->size(), 2u);
  for (const auto& c : claimed.value()) EXPECT_EQ(c.attempts, 1);

  // a: a retry, then the provider took it. b: a retry, then another retry later still.
  Completion retry_a;
  retry_a.id = a.id;
  retry_a.channel = "sms";
  retry_a.retry_at_ms = now + 2000;
  Completion retry_b = retry_a;
  retry_b.id = b.id;
  Completion later_b = retry_b;
  later_b.retry_at_ms = now + 4000;
  const auto sent_a = done(a.id, "sms", "SENT", "accepted", "aliyun", "biz-8a", "aliyun:biz-8a");
  ASSERT_TRUE(store_->complete_batch({retry_a, sent_a, retry_b, later_b}, now + 100).ok());
  EXPECT_EQ(status(a.id), "SENT");
  EXPECT_EQ(store_->sent_without_receipt("aliyun", now + 1000).value(), 1) << "a waits for its receipt";

  // Only b comes due again (a was sent: claiming it again would send a second SMS), and not before its later retry.
  EXPECT_TRUE(store_->claim_due("sms", now + 3000, 1000, 10)->empty());
  auto again = store_->claim_due("sms", now + 5000, 1000, 10);
  ASSERT_EQ(again->size(), 1u);
  EXPECT_EQ(again->front().delivery.id, b.id);
  EXPECT_EQ(again->front().attempts, 2);
  EXPECT_EQ(again->front().in_doubt_since_ms, 0) << "its first attempt's outcome was recorded";

  // a's receipt, twice in one batch: delivered once, and no longer waiting for a receipt.
  auto receipt = done(a.id, "sms", "DELIVERED", "DELIVRD", "aliyun", "biz-8a", "");
  ASSERT_TRUE(store_->complete_batch({receipt, receipt}, now + 200).ok());
  EXPECT_EQ(status(a.id), "DELIVERED");
  EXPECT_EQ(store_->sent_without_receipt("aliyun", now + 1000).value(), 0);
  auto view = store_->get_delivery(a.id);
  ASSERT_TRUE(view.ok() && view.value());
  EXPECT_EQ(std::count_if(view.value()->history.begin(), view.value()->history.end(),
                          [](const auto& h) { return h.status == "DELIVERED"; }),
            1);
}

TEST_F(StoreTest, ProviderTokenBucketsAreSharedAndSeparate) {
  EXPECT_EQ(store_->take_tokens("sms:aliyun-a", 5.0, 20).value(), 5);
  DeliveryStore other(*pool_);
  EXPECT_LE(other.take_tokens("sms:aliyun-a", 5.0, 20).value(), 1) << "another instance shares the bucket";
  EXPECT_EQ(other.take_tokens("sms:tencent-b", 5.0, 3).value(), 3) << "each provider has its own";
  set_bucket_taken_ago("sd:rate:sms:aliyun-a", 600);  // 0.6 s later by Redis' clock: 3 tokens at 5/s
  EXPECT_EQ(store_->take_tokens("sms:aliyun-a", 5.0, 20).value(), 3);
}

TEST_F(StoreTest, AFiredTimerKeepsItsFallbackEvidenceDueUntilSettledOnce) {
  const auto now = now_unix_ms();
  auto wx = make("e8", "wechat");
  auto sms = make("e8", "sms", wx.id, 10);
  record("e8", {wx, sms}, now);
  auto fired = store_->fire_due_timers(now + 10'001, 100);
  ASSERT_EQ(fired->size(), 1u);
  EXPECT_EQ(fired->front().fired_ms, now + 10'001);
  // The firer died before appending the evidence: the timer is found unsettled, and only once it is old enough.
  EXPECT_TRUE(store_->unsettled_timers(now + 10'001, 100)->empty());
  auto orphans = store_->unsettled_timers(now + 30'000, 100);
  ASSERT_EQ(orphans->size(), 1u);
  EXPECT_EQ(orphans->front().delivery_id, sms.id);
  EXPECT_TRUE(orphans->front().released);
  EXPECT_EQ(orphans->front().from_id, wx.id);
  EXPECT_EQ(orphans->front().fired_ms, now + 10'001);
  const auto leaves_before = pool_->command({"LLEN", "sd:ev:leaves"})->integer;
  EvidenceLeaf leaf{sms.id, R"({"type":"FALLBACK"})", std::string(64, 'a')};
  // Two instances settle it at once: the evidence is appended once.
  ASSERT_TRUE(store_->settle_timers({{sms.id, {leaf}}}).ok());
  ASSERT_TRUE(store_->settle_timers({{sms.id, {leaf}}}).ok());
  EXPECT_EQ(pool_->command({"LLEN", "sd:ev:leaves"})->integer, leaves_before + 1);
  EXPECT_TRUE(store_->unsettled_timers(now + 60'000, 100)->empty());
}

TEST_F(StoreTest, TheOperatorsReportAfterTheRecipientReadItIsStillRecordedOnce) {
  const auto now = now_unix_ms();
  auto sms = make("e9", "sms");
  record("e9", {sms}, now);
  ASSERT_TRUE(store_->claim_due("sms", now, 30000, 10).ok());
  ASSERT_TRUE(
      store_->complete_batch({done(sms.id, "sms", "SENT", "accepted", "aliyun-main", "B9:1", "aliyun:B9:1")}, now)
          .ok());
  // The party opened the link from the SMS before the operator's delivery report came.
  ASSERT_TRUE(store_->advance_status(sms.id, "READ", "link opened", now + 1000, {}).ok());
  const auto leaves_before = pool_->command({"LLEN", "sd:ev:leaves"})->integer;
  ReceiptCounters counters;
  ReceiptProcessor p(*store_, counters);
  p.set_evidence([](const std::string& id, const ReceiptUpdate&, std::int64_t) {
    return std::vector<EvidenceLeaf>{{id, R"({"type":"DELIVERED"})", std::string(64, 'd')}};
  });
  ReceiptUpdate u{"aliyun:B9:1", "sms", true, "DELIVERED 用户接收成功", now + 800, "{}"};
  ASSERT_EQ(p.apply({u}, now + 2000).value(), 0);
  ASSERT_EQ(p.apply({u}, now + 3000).value(), 0);  // pushed again
  EXPECT_EQ(status(sms.id), "READ") << "the status does not move back";
  EXPECT_EQ(pool_->command({"LLEN", "sd:ev:leaves"})->integer, leaves_before + 1) << "DELIVERED evidence, once";
  auto v = store_->get_delivery(sms.id).value();
  ASSERT_TRUE(v);
  int delivered = 0;
  for (const auto& h : v->history) {
    if (h.status == "DELIVERED") {
      ++delivered;
      EXPECT_EQ(h.at_ms, now + 800) << "the operator's time";
    }
  }
  EXPECT_EQ(delivered, 1);
}

// Reports that contradict the status: an arrival after a failure report moves the delivery to DELIVERED (it reached
// the recipient after all, and the proof needs that arrival); a failure after an arrival keeps the status and is
// kept once as evidence. Neither is lost, and a push repeated by the provider adds nothing.
TEST_F(StoreTest, AReportThatContradictsTheStatusIsKeptWithItsEvidence) {
  const auto now = now_unix_ms();
  auto first = make("e10", "sms");
  auto second = make("e11", "sms");
  record("e10", {first}, now);
  record("e11", {second}, now);
  ASSERT_TRUE(store_->claim_due("sms", now, 30000, 10).ok());
  ASSERT_TRUE(store_
                  ->complete_batch({done(first.id, "sms", "SENT", "accepted", "aliyun-main", "B10:1", "aliyun:B10:1"),
                                    done(second.id, "sms", "SENT", "accepted", "aliyun-main", "B11:1", "aliyun:B11:1")},
                                   now)
                  .ok());
  ReceiptCounters counters;
  ReceiptProcessor p(*store_, counters);
  p.set_evidence([](const std::string& id, const ReceiptUpdate& u, std::int64_t) {
    const std::string type = u.delivered ? "DELIVERED" : "DELIVERY_FAILED";
    return std::vector<EvidenceLeaf>{{id,
                                      R"({"type":")" + type + R"(","at":)" + std::to_string(u.provider_time_ms) + "}",
                                      sha256_hex(id + type + std::to_string(u.provider_time_ms))}};
  });
  const auto leaves = [&] { return pool_->command({"LLEN", "sd:ev:leaves"})->integer; };
  const auto start = leaves();

  // First: failure, then arrival after all.
  ASSERT_TRUE(p.apply({{"aliyun:B10:1", "sms", false, "UNDELIV", now + 500, "{}"}}, now + 600).ok());
  EXPECT_EQ(status(first.id), "FAILED");
  const ReceiptUpdate arrived{"aliyun:B10:1", "sms", true, "DELIVRD", now + 900, "{}"};
  ASSERT_TRUE(p.apply({arrived}, now + 1000).ok());
  ASSERT_TRUE(p.apply({arrived}, now + 1100).ok());  // pushed again
  EXPECT_EQ(status(first.id), "DELIVERED");
  EXPECT_EQ(leaves(), start + 2) << "the failure and the arrival, each once";
  EXPECT_EQ(pool_->command({"HGET", "sd:dlv:{" + first.id + "}", "delivered_at"})->str, std::to_string(now + 900));

  // Second: arrival, then a failure report after it, pushed twice.
  ASSERT_TRUE(p.apply({{"aliyun:B11:1", "sms", true, "DELIVRD", now + 500, "{}"}}, now + 600).ok());
  const ReceiptUpdate late{"aliyun:B11:1", "sms", false, "UNDELIV", now + 900, "{}"};
  ASSERT_TRUE(p.apply({late}, now + 1000).ok());
  ASSERT_TRUE(p.apply({late}, now + 1100).ok());
  EXPECT_EQ(status(second.id), "DELIVERED") << "a late failure report does not undo the arrival";
  EXPECT_EQ(leaves(), start + 4) << "the arrival and the late failure, each once";
  auto v = store_->get_delivery(second.id).value();
  ASSERT_TRUE(v);
  ASSERT_FALSE(v->history.empty());
  EXPECT_EQ(v->history.back().status, "FAILED");
  EXPECT_EQ(v->history.back().at_ms, now + 900);
  EXPECT_NE(v->history.back().detail.find("reported after arrival, status kept"), std::string::npos);
}

// One lawyer's app inbox holds notices of two courts. A court's key sees only its own: its pages must be full
// (they used to be cut from the whole inbox and then filtered, so a page could come back short or empty with more
// to come) and its counts its own. A repeated write (a crash before the send was recorded) must not make a read
// message unread again.
TEST_F(StoreTest, AnInboxIsPagedAndCountedPerCourt) {
  const auto now = now_unix_ms();
  std::vector<Delivery> ds;
  for (int i = 0; i < 6; ++i) {
    Delivery d = make("inb" + std::to_string(i), "inapp");
    d.address = "lawyer-7";
    d.court_id = i % 2 == 0 ? "HN-SQ-ZY" : "HN-ZZ-JS";
    ds.push_back(d);
  }
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(store_->write_inbox({ds[i]}, now + i).ok());

  auto first = store_->inbox("lawyer-7", "HN-SQ-ZY", 0, 2);
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->messages.size(), 2u);
  EXPECT_EQ(first->messages[0].id, ds[4].id);  // newest first
  EXPECT_EQ(first->messages[1].id, ds[2].id);
  EXPECT_EQ(first->total, 3);
  EXPECT_EQ(first->unread, 3);
  auto second = store_->inbox("lawyer-7", "HN-SQ-ZY", 2, 2);
  ASSERT_EQ(second->messages.size(), 1u);
  EXPECT_EQ(second->messages[0].id, ds[0].id);
  for (const auto& m : second->messages) EXPECT_EQ(m.json["court_id"], "HN-SQ-ZY");

  ASSERT_TRUE(store_->mark_read("lawyer-7", ds[2].id, now + 10).ok());
  EXPECT_EQ(store_->inbox("lawyer-7", "HN-SQ-ZY", 0, 50)->unread, 2);
  EXPECT_EQ(store_->inbox("lawyer-7", "HN-ZZ-JS", 0, 50)->unread, 3);
  auto all = store_->inbox("lawyer-7", "", 0, 50);
  EXPECT_EQ(all->total, 6);
  EXPECT_EQ(all->unread, 5);
  ASSERT_EQ(all->messages.size(), 6u);

  ASSERT_TRUE(store_->write_inbox(ds, now + 20).ok());  // written again
  all = store_->inbox("lawyer-7", "", 0, 50);
  EXPECT_EQ(all->total, 6);
  EXPECT_EQ(all->unread, 5) << "a read message stays read";
  EXPECT_EQ(store_->inbox("lawyer-7", "HN-OTHER", 0, 50)->total, 0);
  // Asking about an inbox that does not exist leaves nothing behind.
  EXPECT_EQ(store_->inbox("nobody-at-all", "", 0, 50)->total, 0);
  EXPECT_EQ(pool_->command({"KEYS", "sd:inbox:{nobody-at-all}*"})->elements.size(), 0u);
}

// An inbox written before the per-court and unread lists existed (the message hash and the one list only) is
// listed and counted the same once it is first read: nothing already sent disappears from a court's view.
TEST_F(StoreTest, AnInboxWrittenBeforeThePerCourtListsIsListedOnItsFirstRead) {
  const auto now = now_unix_ms();
  const std::string base = "sd:inbox:{lawyer-old}";
  const auto old_write = [&](const std::string& id, const std::string& court, long long read_at, long long at) {
    const nlohmann::json msg = {
        {"id", id}, {"court_id", court}, {"text", "通知"}, {"delivered_at", at}, {"read_at", read_at}};
    ASSERT_TRUE(pool_->command({"HSET", base + ":msg", id, msg.dump()}).ok());
    ASSERT_TRUE(pool_->command({"ZADD", base, std::to_string(at), id}).ok());
  };
  old_write("sd-old-1", "HN-SQ-ZY", 0, now - 3000);
  old_write("sd-old-2", "HN-ZZ-JS", 0, now - 2000);
  old_write("sd-old-3", "HN-SQ-ZY", now - 500, now - 1000);  // read already

  auto sq = store_->inbox("lawyer-old", "HN-SQ-ZY", 0, 50);
  ASSERT_TRUE(sq.ok()) << sq.error().message;
  ASSERT_EQ(sq->messages.size(), 2u);
  EXPECT_EQ(sq->messages[0].id, "sd-old-3");  // newest first
  EXPECT_EQ(sq->messages[1].id, "sd-old-1");
  EXPECT_EQ(sq->total, 2);
  EXPECT_EQ(sq->unread, 1);
  auto all = store_->inbox("lawyer-old", "", 0, 50);
  EXPECT_EQ(all->total, 3);
  EXPECT_EQ(all->unread, 2);
  ASSERT_TRUE(store_->mark_read("lawyer-old", "sd-old-1", now).ok());
  EXPECT_EQ(store_->inbox("lawyer-old", "HN-SQ-ZY", 0, 50)->unread, 0);
  EXPECT_EQ(store_->inbox("lawyer-old", "", 0, 50)->unread, 1);
}

}  // namespace
}  // namespace songda
