// DeliveryStore scripts on a real redis-server: fallback timers, receipts, rate limits.
#include <gtest/gtest.h>

#include <thread>

#include "gateway/core/text.h"
#include "gateway/receipts/receipts.h"
#include "gateway/store/store.h"
#include "tests/support/kafka_util.h"

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
    std::string url = testing::require_env("SONGDA_TEST_REDIS_URL");
    url = url.substr(0, url.rfind('/')) + "/2";
    auto ep = parse_redis_url(url);
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
  EXPECT_EQ(p.apply({stranger}, now + 800).value(), 1);
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
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  auto later = other.claim_due("sms", now, 30000, 100, 10.0);
  EXPECT_GE(later->size(), 3u);
  EXPECT_LE(later->size(), 7u);
}

}  // namespace
}  // namespace songda
