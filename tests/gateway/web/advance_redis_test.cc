// DeliveryStore::advance_status on a real redis-server (SONGDA_TEST_REDIS_URL, db 6): the one Lua call the
// party pages use for READ, RETRIEVED (a fact recorded once, not a status) and ACKNOWLEDGED.
//   tests/services/with-services --redis -- ctest -L integration -R Advance
#include <gtest/gtest.h>

#include "gateway/core/crypto.h"
#include "gateway/ledger/evidence_makers.h"
#include "gateway/store/redis.h"
#include "gateway/store/store.h"
#include "tests/support/kafka_util.h"

namespace songda {
namespace {

class AdvanceStatus : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string url = testing::require_env("SONGDA_TEST_REDIS_URL");
    auto ep = parse_redis_url(url.substr(0, url.rfind('/')) + "/6");
    ASSERT_TRUE(ep.ok());
    pool_ = std::make_unique<RedisPool>(ep.value(), 2, 2000);
    ASSERT_TRUE(pool_->command({"FLUSHDB"}).ok());
    store_ = std::make_unique<DeliveryStore>(*pool_);
    d_.id = delivery_id("evt-web-1", "P-1", "sms");
    d_.event_id = "evt-web-1";
    d_.event_type = "document.served";
    d_.court_id = "HN-SQ-ZY";
    d_.court_name = "商丘市中级人民法院";
    d_.case_number = "(2026)豫14民初1号";
    d_.recipient_id = "P-1";
    d_.recipient_role = "party";
    d_.recipient_name = "张三";
    d_.channel = "sms";
    d_.address = "+8613800000001";
    d_.consent_basis = "confirmed";
    d_.title = "送达";
    d_.text = "请查看";
    d_.document = Document{"DOC-1", "裁定书", sha256_hex("doc"), "", 1};
    EventToRecord e;
    e.event_id = d_.event_id;
    e.digest = "digest";
    e.court_id = d_.court_id;
    e.case_number = d_.case_number;
    e.deliveries = {d_};
    ASSERT_TRUE(store_->record_batch({e}, 1000).ok());
  }
  std::vector<std::string> history() {
    auto v = store_->get_delivery(d_.id);
    std::vector<std::string> out;
    for (const auto& h : v.value()->history) out.push_back(h.status);
    return out;
  }
  std::size_t evidence() { return store_->get_delivery(d_.id).value()->evidence_indexes.size(); }

  std::unique_ptr<RedisPool> pool_;
  std::unique_ptr<DeliveryStore> store_;
  Delivery d_;
};

TEST_F(AdvanceStatus, ReadOnceRetrievedOnceThenAcknowledged) {
  const auto read = ledger::link_read_evidence(d_, 2000, "test-agent");
  ASSERT_EQ(read.size(), 1U);
  auto r = store_->advance_status(d_.id, "READ", "link opened", 2000, read);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r.value());
  EXPECT_FALSE(store_->advance_status(d_.id, "READ", "link opened", 2100, read).value()) << "READ only once";
  EXPECT_EQ(evidence(), 1U);

  const auto got = ledger::retrieved_evidence(d_, sha256_hex("doc"), 3, 3000, "test-agent");
  ASSERT_EQ(got.size(), 1U);
  EXPECT_TRUE(store_->advance_status(d_.id, "", "downloaded", 3000, got, "retrieved_at", "RETRIEVED").value());
  EXPECT_FALSE(store_->advance_status(d_.id, "", "downloaded", 3100, got, "retrieved_at", "RETRIEVED").value());
  EXPECT_EQ(store_->get_delivery(d_.id).value()->status, "READ") << "RETRIEVED is not a status";
  EXPECT_EQ(evidence(), 2U);

  const auto ack = ledger::acknowledged_evidence(d_, 4000, "test-agent");
  EXPECT_TRUE(store_->advance_status(d_.id, "ACKNOWLEDGED", "确认收到", 4000, ack).value());
  EXPECT_FALSE(store_->advance_status(d_.id, "READ", "link opened again", 5000, read).value()) << "never back";
  EXPECT_EQ(store_->get_delivery(d_.id).value()->status, "ACKNOWLEDGED");
  EXPECT_EQ(evidence(), 3U);
  EXPECT_EQ(history(), (std::vector<std::string>{"ACCEPTED", "READ", "RETRIEVED", "ACKNOWLEDGED"}));
}

// A carrier's failure report can be wrong (a false negative, or a send that timed out but went through). Before,
// the recipient opening the link and pressing 「确认收到」 on a FAILED delivery recorded nothing while the page
// said nothing of it; now their own act moves it on, with its evidence, and so does the operator's later report
// that it arrived after all (the proof needs that arrival). Nothing moves it back to SENT.
TEST_F(AdvanceStatus, TheRecipientsOwnActOrALateArrivalMovesAFailedDeliveryOn) {
  ASSERT_TRUE(store_->advance_status(d_.id, "FAILED", "carrier: UNDELIV", 1500, {}).value());
  EXPECT_FALSE(store_->advance_status(d_.id, "SENT", "x", 1550, {}).value());
  EXPECT_TRUE(store_->advance_status(d_.id, "DELIVERED", "late receipt", 1600, {}).value());
  auto r = store_->advance_status(d_.id, "READ", "link opened", 2000, ledger::link_read_evidence(d_, 2000, "agent"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r.value());
  EXPECT_TRUE(
      store_->advance_status(d_.id, "ACKNOWLEDGED", "确认收到", 3000, ledger::acknowledged_evidence(d_, 3000, "agent"))
          .value());
  EXPECT_EQ(store_->get_delivery(d_.id).value()->status, "ACKNOWLEDGED");
  EXPECT_EQ(evidence(), 2U);
  EXPECT_EQ(history(), (std::vector<std::string>{"ACCEPTED", "FAILED", "DELIVERED", "READ", "ACKNOWLEDGED"}));
}

TEST_F(AdvanceStatus, ACancelledDeliveryStaysCancelled) {
  ASSERT_TRUE(store_->advance_status(d_.id, "CANCELLED", "broadcast cancelled", 1500, {}).value());
  EXPECT_FALSE(store_->advance_status(d_.id, "READ", "link opened", 2000, {}).value());
  EXPECT_FALSE(store_->advance_status(d_.id, "ACKNOWLEDGED", "确认收到", 2000, {}).value());
  EXPECT_EQ(store_->get_delivery(d_.id).value()->status, "CANCELLED");
}

TEST_F(AdvanceStatus, UnknownDeliveryAndBadArguments) {
  auto r = store_->advance_status("sd-nope", "READ", "x", 1, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "not_found");
  EXPECT_EQ(store_->advance_status(d_.id, "", "x", 1, {}).error().code, "invalid_argument");
  EXPECT_EQ(history(), (std::vector<std::string>{"ACCEPTED"}));
}

}  // namespace
}  // namespace songda
