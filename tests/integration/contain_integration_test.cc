// An exception where none was expected (a bug) is contained, on a real redis-server: the loop it happened in goes
// on, what it was doing is resumed or refused with the reason, and nothing is lost or sent twice.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "channels/channel.h"
#include "gateway/config/config.h"
#include "gateway/core/contain.h"
#include "gateway/core/crypto.h"
#include "gateway/core/text.h"
#include "gateway/dispatch/dispatcher.h"
#include "gateway/dispatch/quiet_hours.h"
#include "gateway/ingest/ingest.h"
#include "gateway/ingest/validator.h"
#include "gateway/ledger/evidence_makers.h"
#include "gateway/store/store.h"
#include "tests/support/events.h"
#include "tests/support/kafka_util.h"
#include "tests/support/service_config.h"

namespace songda {
namespace {

using Json = nlohmann::json;

// A channel with a bug: its first send throws (poison empty), or every send whose batch holds `poison` does.
class ThrowingChannel final : public Channel {
 public:
  explicit ThrowingChannel(std::string poison = "") : poison_(std::move(poison)) {}
  [[nodiscard]] std::string_view name() const override { return "wechat"; }
  std::vector<SendOutcome> send(std::span<const Delivery> batch) override {
    const bool first = calls.fetch_add(1) == 0;
    if (poison_.empty() && first) throw std::logic_error("channel bug on its first batch");
    for (const auto& d : batch) {
      if (d.id == poison_) throw std::invalid_argument("channel bug on one delivery");
    }
    std::vector<SendOutcome> out;
    for (const auto& d : batch) {
      {
        const std::lock_guard lock(mu);
        ++sends[d.id];
      }
      SendOutcome o;
      o.kind = SendOutcome::Kind::kAccepted;
      o.provider = "wechat";
      o.provider_message_id = "msg-" + d.id.substr(3, 8);
      out.push_back(o);
    }
    return out;
  }
  std::atomic<int> calls{0};
  std::mutex mu;
  std::map<std::string, int> sends;

 private:
  std::string poison_;
};

class KeptDlq final : public DeadLetterSink {
 public:
  Status send(const std::vector<OutgoingMessage>& m) override {
    if (unavailable > 0) {
      --unavailable;
      return Error::transient("kafka_produce", "broker did not acknowledge within 30000 ms");
    }
    sent.insert(sent.end(), m.begin(), m.end());
    return ok_status();
  }
  std::vector<OutgoingMessage> sent;
  int unavailable = 0;  // sends that fail before it takes them again
};

std::string header(const OutgoingMessage& m, const std::string& name) {
  for (const auto& [k, v] : m.headers) {
    if (k == name) return v;
  }
  return "";
}

Json summons(const std::string& id) { return testing::summons_event(id, {{"wechat_openid", "oWeChat0001"}}); }

class ContainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ep = parse_redis_url(testing::redis_url_with_db(testing::require_env("SONGDA_TEST_REDIS_URL"), 9));
    ASSERT_TRUE(ep.ok());
    pool_ = std::make_unique<RedisPool>(ep.value(), 4, 2000);
    ASSERT_TRUE(pool_->command({"FLUSHDB"}).ok());
    store_ = std::make_unique<DeliveryStore>(*pool_);
    auto loaded = load_config_file(std::string(SONGDA_SOURCE_DIR) + "/config/gateway.yaml");
    ASSERT_TRUE(loaded.config.has_value());
    config_ = *loaded.config;
    validator_ = std::make_unique<EventValidator>(EventValidator::default_schema_path(), 1 << 20);
    ingest_ = std::make_unique<IngestPipeline>(config_, *validator_, *store_, dlq_, PlanOptions{}, ingest_counters_);
  }

  KafkaMessage message(const std::string& event_id) {
    return {"court.case-events", 0, offset_++, event_id, summons(event_id).dump(), {}};
  }

  std::string status(const std::string& id) {
    auto v = store_->get_delivery(id);
    return v.ok() && v.value() ? v.value()->status : "(none)";
  }

  std::unique_ptr<RedisPool> pool_;
  std::unique_ptr<DeliveryStore> store_;
  Config config_;
  std::unique_ptr<EventValidator> validator_;
  KeptDlq dlq_;
  IngestCounters ingest_counters_;
  std::unique_ptr<IngestPipeline> ingest_;
  std::int64_t offset_ = 0;
};

// Before, the exception ended the process (std::terminate on the dispatch thread); after a restart the same batch
// was claimed again. Now the loop goes on, and the batch cut off mid-send is in doubt like one whose process died:
// asked about, then sent once.
TEST_F(ContainTest, ADispatchLoopOutlivesAChannelThatThrowsAndItsBatchIsSentOnce) {
  ASSERT_TRUE(ingest_->process({message("EVT-C-1"), message("EVT-C-2")}, now_unix_ms()).ok());
  const std::string first = delivery_id("EVT-C-1", "P-001", "wechat");
  const std::string second = delivery_id("EVT-C-2", "P-001", "wechat");
  ASSERT_EQ(status(first), "ACCEPTED");

  DispatchConfig fast = config_.dispatch;
  fast.lease_ms = 300;
  fast.in_doubt_wait_ms = 100;
  fast.poll_ms = 20;
  DispatchCounters counters;
  Dispatcher dispatcher(*store_, fast, RetryPolicy{}, counters);
  ThrowingChannel wechat;
  const auto errors_before = internal_errors();
  std::atomic<bool> stop{false};
  std::thread loop([&] { dispatcher.run(wechat, stop); });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline && (status(first) != "SENT" || status(second) != "SENT")) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  // A third event after the failure: the same loop sends it.
  ASSERT_TRUE(ingest_->process({message("EVT-C-3")}, now_unix_ms()).ok());
  const std::string third = delivery_id("EVT-C-3", "P-001", "wechat");
  while (std::chrono::steady_clock::now() < deadline && status(third) != "SENT") {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  stop = true;
  dispatcher.wake("wechat");
  loop.join();

  EXPECT_EQ(status(first), "SENT");
  EXPECT_EQ(status(second), "SENT");
  EXPECT_EQ(status(third), "SENT");
  EXPECT_EQ(internal_errors(), errors_before + 1);
  EXPECT_EQ(counters.in_doubt_asked.load(), 2u) << "the cut-off batch was not treated as in doubt";
  const std::lock_guard lock(wechat.mu);
  EXPECT_EQ(wechat.sends, (std::map<std::string, int>{{first, 1}, {second, 1}, {third, 1}}));
}

// One delivery that makes the channel throw every time does not take the deliveries claimed with it down: after the
// first throw they are sent each on its own, and only it fails, once its attempts run out. It is never sent.
TEST_F(ContainTest, ADeliveryThatAlwaysMakesTheChannelThrowFailsAloneAndTheOthersAreSentOnce) {
  std::vector<KafkaMessage> batch;
  for (int i = 1; i <= 5; ++i) batch.push_back(message("EVT-P-" + std::to_string(i)));
  ASSERT_TRUE(ingest_->process(batch, now_unix_ms()).ok());
  const std::string poison = delivery_id("EVT-P-3", "P-001", "wechat");

  DispatchConfig fast = config_.dispatch;
  fast.lease_ms = 2000;
  fast.in_doubt_wait_ms = 50;
  fast.poll_ms = 20;
  RetryPolicy retry;
  retry.max_attempts = 3;
  DispatchCounters counters;
  Dispatcher dispatcher(*store_, fast, retry, counters);
  dispatcher.set_evidence([](const Delivery& d, const SendOutcome& o, const std::string& st, std::int64_t) {
    const std::string record = R"({"status":")" + st + R"(","code":")" + o.code + "\"}";
    return std::vector<EvidenceLeaf>{{d.id, record, sha256_hex(d.id + record)}};
  });
  ThrowingChannel wechat(poison);
  const auto errors_before = internal_errors();
  std::atomic<bool> stop{false};
  std::thread loop([&] { dispatcher.run(wechat, stop); });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  const auto settled = [&] {
    for (int i = 1; i <= 5; ++i) {
      const std::string id = delivery_id("EVT-P-" + std::to_string(i), "P-001", "wechat");
      if (status(id) != (id == poison ? "FAILED" : "SENT")) return false;
    }
    return true;
  };
  while (std::chrono::steady_clock::now() < deadline && !settled()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  stop = true;
  dispatcher.wake("wechat");
  loop.join();

  std::map<std::string, int> expected;
  for (int i = 1; i <= 5; ++i) {
    const std::string id = delivery_id("EVT-P-" + std::to_string(i), "P-001", "wechat");
    EXPECT_EQ(status(id), id == poison ? "FAILED" : "SENT") << id;
    if (id != poison) expected[id] = 1;
  }
  {
    const std::lock_guard lock(wechat.mu);
    EXPECT_EQ(wechat.sends, expected) << "each other delivery is sent once; the poison one never";
  }
  // Thrown with the batch (attempt 1), then alone at attempts 2 and 3; the 4th claim finds its attempts spent.
  EXPECT_EQ(internal_errors(), errors_before + 3);
  auto v = store_->get_delivery(poison);
  ASSERT_TRUE(v.ok() && v.value());
  ASSERT_FALSE(v.value()->history.empty());
  EXPECT_NE(v.value()->history.back().detail.find("attempts exhausted (4)"), std::string::npos)
      << v.value()->history.back().detail;
  // Its final failure is recorded as evidence like any other (before, FAILED came without a record).
  auto indexes = pool_->command({"LRANGE", "sd:ev:dlv:{" + poison + "}", "0", "-1"});
  ASSERT_TRUE(indexes.ok());
  ASSERT_EQ(indexes->elements.size(), 1u);
  auto leaf = pool_->command({"LINDEX", "sd:ev:leaves", indexes->elements[0].str});
  EXPECT_EQ(leaf->str, R"({"status":"FAILED","code":"attempts_exhausted"})");
  bool cut_off_shown = false;
  for (const auto& h : v.value()->history) {
    cut_off_shown |= h.detail.find(
                         "cut off by an internal error; asking the provider before sending again: sending: "
                         "unexpected std::invalid_argument: channel bug on one delivery") != std::string::npos;
  }
  EXPECT_TRUE(cut_off_shown) << "the timeline does not say why the attempt was cut off";
}

// A delivery that comes due inside the quiet window (here: a fallback released by its timer, queued at "now") is not
// sent then: before, only ingest and retries looked at quiet hours, so a WeChat fallback to SMS at 23:15 went out at
// 23:15. It waits for the window to end.
TEST_F(ContainTest, ADeliveryThatComesDueInTheQuietWindowWaitsForItsEnd) {
  const std::int64_t now = now_unix_ms();
  const int minute = static_cast<int>((now / 60000 + 8 * 60) % 1440);  // China Standard Time
  const auto hhmm = [](int m) {
    m = ((m % 1440) + 1440) % 1440;
    char buf[6];
    std::snprintf(buf, sizeof buf, "%02d:%02d", m / 60, m % 60);
    return std::string(buf);
  };
  QuietHoursConfig quiet;  // a window from an hour ago to two hours from now
  quiet.enabled = true;
  quiet.start = hhmm(minute - 60);
  quiet.end = hhmm(minute + 120);
  quiet.channels = {"wechat"};
  const std::int64_t release = quiet_hours_release(quiet, "wechat", false, now);
  ASSERT_GT(release, now + 60 * 60 * 1000);

  for (auto& r : config_.routes) r.urgent = false;  // the shipped summons route is urgent (never quiet)
  ingest_ = std::make_unique<IngestPipeline>(config_, *validator_, *store_, dlq_, PlanOptions{}, ingest_counters_);
  ASSERT_TRUE(ingest_->process({message("EVT-Q-1")}, now).ok());  // due now: no quiet hours at ingest here
  const std::string id = delivery_id("EVT-Q-1", "P-001", "wechat");
  DispatchCounters counters;
  Dispatcher dispatcher(*store_, config_.dispatch, RetryPolicy{}, counters);
  dispatcher.set_quiet_hours(quiet);
  ThrowingChannel wechat("none of these");
  ASSERT_TRUE(dispatcher.run_once(wechat, now).ok());
  EXPECT_EQ(wechat.calls.load(), 0) << "nothing sent inside the quiet window";
  EXPECT_EQ(status(id), "ACCEPTED");
  auto score = pool_->command({"ZSCORE", "sd:q:wechat", id});
  ASSERT_TRUE(score.ok());
  EXPECT_EQ(score->str, std::to_string(release)) << "queued for the window's end";
  auto v = store_->get_delivery(id).value();
  ASSERT_TRUE(v);
  EXPECT_NE(v->history.back().detail.find("quiet hours: held until"), std::string::npos) << v->history.back().detail;

  // At the window's end it goes out.
  ASSERT_TRUE(dispatcher.run_once(wechat, release).ok());
  EXPECT_EQ(wechat.calls.load(), 1);
  EXPECT_EQ(status(id), "SENT");
}

// A provider or mail server that repeats the address in its refusal (an SMTP 550 names the mailbox) must not show it
// whole in the timeline, where the clerk sees the address masked.
TEST_F(ContainTest, ARefusalThatNamesTheAddressShowsItMaskedInTheTimeline) {
  class Refusing final : public Channel {
   public:
    [[nodiscard]] std::string_view name() const override { return "wechat"; }
    std::vector<SendOutcome> send(std::span<const Delivery> batch) override {
      std::vector<SendOutcome> out;
      for (const auto& d : batch) {
        SendOutcome o;
        o.kind = SendOutcome::Kind::kPermanent;
        o.provider = "wechat";
        o.code = "43101";
        o.message = "user refuse to accept the msg: " + d.address;
        out.push_back(o);
      }
      return out;
    }
  } refusing;
  const std::int64_t now = now_unix_ms();
  ASSERT_TRUE(ingest_->process({message("EVT-MASK-1")}, now).ok());
  const std::string id = delivery_id("EVT-MASK-1", "P-001", "wechat");
  DispatchCounters counters;
  Dispatcher dispatcher(*store_, config_.dispatch, RetryPolicy{}, counters);
  ASSERT_TRUE(dispatcher.run_once(refusing, now).ok());
  auto v = store_->get_delivery(id).value();
  ASSERT_TRUE(v);
  EXPECT_EQ(v->status, "FAILED");
  const std::string& detail = v->history.back().detail;
  EXPECT_EQ(detail.find("oWeChat0001"), std::string::npos) << detail;
  EXPECT_NE(detail.find("43101 user refuse to accept the msg: oWeC***"), std::string::npos) << detail;
}

// A maker that throws for one outcome (a bug) must not undo the send: the provider has the message. Before, the
// exception cut the whole batch off after its send; its lease ran out, and the batch was asked about and sent
// again (this channel, like one that cannot tell, says it does not have them), or failed when attempts ran out.
// Now each outcome is recorded once; the one without its record says so in its timeline.
TEST_F(ContainTest, AnOutcomeWhoseEvidenceCannotBeMadeIsRecordedOnceAndItsTimelineSaysWhy) {
  std::vector<KafkaMessage> batch;
  for (int i = 1; i <= 3; ++i) batch.push_back(message("EVT-E-" + std::to_string(i)));
  ASSERT_TRUE(ingest_->process(batch, now_unix_ms()).ok());
  const std::string poison = delivery_id("EVT-E-2", "P-001", "wechat");

  DispatchConfig fast = config_.dispatch;
  fast.lease_ms = 300;
  fast.in_doubt_wait_ms = 50;
  fast.poll_ms = 20;
  DispatchCounters counters;
  Dispatcher dispatcher(*store_, fast, RetryPolicy{}, counters);
  const ledger::EvidenceContext ctx{"contain-test-salt-0123456789"};
  dispatcher.set_evidence([&](const Delivery& d, const SendOutcome& o, const std::string& status, std::int64_t now) {
    if (d.id == poison) throw std::logic_error("outcome maker bug");
    return ledger::outcome_evidence(d, o, status, now, ctx);
  });
  ThrowingChannel wechat("no-delivery-has-this-id");
  const auto errors_before = internal_errors();
  std::atomic<bool> stop{false};
  std::thread loop([&] { dispatcher.run(wechat, stop); });
  // Long enough for a lease to run out and the in-doubt deliveries to be asked about and sent again.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  stop = true;
  dispatcher.wake("wechat");
  loop.join();

  std::map<std::string, int> expected;
  for (int i = 1; i <= 3; ++i) {
    const std::string id = delivery_id("EVT-E-" + std::to_string(i), "P-001", "wechat");
    expected[id] = 1;
    auto v = store_->get_delivery(id);
    ASSERT_TRUE(v.ok() && v.value()) << id;
    EXPECT_EQ(v.value()->status, "SENT") << id;
    // No evidence at ingest here (no makers installed there): only the outcome's records.
    EXPECT_EQ(v.value()->evidence_indexes.empty(), id == poison) << id;
  }
  {
    const std::lock_guard lock(wechat.mu);
    EXPECT_EQ(wechat.sends, expected) << "each delivery is sent once";
  }
  EXPECT_EQ(counters.in_doubt_asked.load(), 0u);
  EXPECT_EQ(internal_errors(), errors_before + 1);
  auto v = store_->get_delivery(poison);
  ASSERT_TRUE(v.ok() && v.value());
  ASSERT_FALSE(v.value()->history.empty());
  EXPECT_NE(v.value()->history.back().detail.find(
                "; recorded without its evidence record: outcome evidence: unexpected std::logic_error: outcome maker "
                "bug"),
            std::string::npos)
      << v.value()->history.back().detail;
}

// A stored record that does not read back (a bug, or written by a newer version during a roll-out). Before, the
// claim skipped it without a word, and it was claimed again at every lease for ever. Now each claim of it is
// counted and logged as an internal error, the deliveries claimed with it are sent, and it is neither sent nor
// failed: it stays in the queue, and an instance that reads it sends it once its lease is out.
TEST_F(ContainTest, ADeliveryWhoseRecordDoesNotReadIsCountedAndLeftQueuedAndTheOthersAreSent) {
  ASSERT_TRUE(ingest_->process({message("EVT-U-1"), message("EVT-U-2"), message("EVT-U-3")}, now_unix_ms()).ok());
  const std::string bad = delivery_id("EVT-U-2", "P-001", "wechat");
  const std::string key = "sd:dlv:{" + bad + "}";
  auto original = pool_->command({"HGET", key, "record"});
  ASSERT_TRUE(original.ok());
  ASSERT_TRUE(pool_->command({"HSET", key, "record", R"({"id": 7, "channel": )"}).ok());

  DispatchConfig fast = config_.dispatch;
  fast.lease_ms = 1000;
  fast.in_doubt_wait_ms = 0;
  DispatchCounters counters;
  Dispatcher dispatcher(*store_, fast, RetryPolicy{}, counters);
  ThrowingChannel wechat("no-such-delivery");
  const auto errors_before = internal_errors();
  const std::int64_t now = now_unix_ms();
  ASSERT_TRUE(dispatcher.run_once(wechat, now).ok());
  EXPECT_EQ(status(delivery_id("EVT-U-1", "P-001", "wechat")), "SENT");
  EXPECT_EQ(status(delivery_id("EVT-U-3", "P-001", "wechat")), "SENT");
  EXPECT_EQ(internal_errors(), errors_before + 1);
  EXPECT_EQ(pool_->command({"HGET", key, "status"})->str, "ACCEPTED");
  EXPECT_NE(pool_->command({"ZSCORE", "sd:q:wechat", bad})->type, RedisReply::Type::kNil) << "taken off the queue";
  ASSERT_TRUE(dispatcher.run_once(wechat, now + fast.lease_ms + 1).ok());
  EXPECT_EQ(internal_errors(), errors_before + 2) << "a claim after its lease is counted again";

  // An instance that reads it (here: the record restored) sends it, once.
  ASSERT_TRUE(pool_->command({"HSET", key, "record", original->str}).ok());
  ASSERT_TRUE(dispatcher.run_once(wechat, now + 2 * (fast.lease_ms + 1)).ok());
  EXPECT_EQ(status(bad), "SENT");
  EXPECT_EQ(internal_errors(), errors_before + 2);
  const std::lock_guard lock(wechat.mu);
  EXPECT_EQ(wechat.sends.size(), 3u);
  EXPECT_EQ(wechat.sends[bad], 1);
}

// A message that makes Songda throw goes to the DLQ with the reason; the messages around it are recorded in the
// same batch. Before, the exception ended the process, and after a restart the same message ended it again.
TEST_F(ContainTest, AnEventThatMakesIngestThrowGoesToTheDlqAndTheRestAreRecorded) {
  ingest_->set_due_policy([](const Delivery& d, std::int64_t now_ms) -> std::int64_t {
    if (d.event_id == "EVT-BOOM") throw std::out_of_range("due policy bug");
    return now_ms;
  });
  const auto errors_before = internal_errors();
  auto s = ingest_->process({message("EVT-OK-1"), message("EVT-BOOM"), message("EVT-OK-2")}, now_unix_ms());
  ASSERT_TRUE(s.ok()) << s.error().message;

  ASSERT_EQ(dlq_.sent.size(), 1u);
  const OutgoingMessage& dead = dlq_.sent.front();
  EXPECT_EQ(dead.key, "EVT-BOOM");
  EXPECT_EQ(Json::parse(dead.value)["original"]["value"], summons("EVT-BOOM").dump())
      << "the DLQ keeps the message as it came";
  EXPECT_EQ(Json::parse(dead.value)["error"]["code"], "internal_error");
  EXPECT_EQ(header(dead, "songda.error.code"), "internal_error");
  EXPECT_EQ(header(dead, "songda.error.message"),
            "ingest: unexpected std::out_of_range: due policy bug. Hint: this is a bug in Songda; report it with "
            "this message");
  EXPECT_EQ(header(dead, "songda.source.offset"), "1");
  EXPECT_EQ(internal_errors(), errors_before + 1);

  EXPECT_EQ(status(delivery_id("EVT-OK-1", "P-001", "wechat")), "ACCEPTED");
  EXPECT_EQ(status(delivery_id("EVT-OK-2", "P-001", "wechat")), "ACCEPTED");
  EXPECT_EQ(status(delivery_id("EVT-BOOM", "P-001", "wechat")), "(none)");
  EXPECT_EQ(ingest_counters_.accepted.load(), 2u);
  EXPECT_EQ(ingest_counters_.rejected.load(), 1u);
}

// A message refused for a reason of its own still goes to the DLQ when its rejection record cannot be made (a bug).
// Before, the exception escaped the batch: it was read again and failed again, holding up its partition for good.
TEST_F(ContainTest, ARefusedMessageWhoseRecordCannotBeMadeStillGoesToTheDlq) {
  ingest_->set_evidence({}, [](const KafkaMessage&, const Error&, std::int64_t) -> std::vector<EvidenceLeaf> {
    throw std::logic_error("rejection maker bug");
  });
  const auto errors_before = internal_errors();
  KafkaMessage broken{"court.case-events", 0, offset_++, "EVT-BROKEN", "{not json", {}};
  auto s = ingest_->process({broken, message("EVT-AFTER")}, now_unix_ms());
  ASSERT_TRUE(s.ok()) << s.error().message;
  ASSERT_EQ(dlq_.sent.size(), 1u);
  EXPECT_EQ(dlq_.sent.front().key, "EVT-BROKEN");
  EXPECT_EQ(header(dlq_.sent.front(), "songda.error.code"), "invalid_json");
  EXPECT_EQ(status(delivery_id("EVT-AFTER", "P-001", "wechat")), "ACCEPTED");
  EXPECT_EQ(internal_errors(), errors_before + 1);
}

// A batch whose records would be too large for one Redis command is recorded in parts; each event's outcome is
// the same as in one call (here every event is its own part).
using IngestBatchTest = ContainTest;
TEST_F(IngestBatchTest, ABatchRecordedInPartsGivesTheSameOutcomes) {
  ingest_->set_record_bytes_per_call(1);
  Json changed = summons("EVT-S-1");
  changed["case"]["title"] = "篡改";
  KafkaMessage conflicting{"court.case-events", 0, offset_++, "EVT-S-1", changed.dump(), {}};
  KafkaMessage broken{"court.case-events", 0, offset_++, "EVT-BROKEN", "{not json", {}};
  auto s = ingest_->process({message("EVT-S-1"), broken, message("EVT-S-2"), conflicting, message("EVT-S-1")},
                            now_unix_ms());
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(status(delivery_id("EVT-S-1", "P-001", "wechat")), "ACCEPTED");
  EXPECT_EQ(status(delivery_id("EVT-S-2", "P-001", "wechat")), "ACCEPTED");
  EXPECT_EQ(ingest_counters_.accepted.load(), 2u);
  EXPECT_EQ(ingest_counters_.duplicates.load(), 1u);
  ASSERT_EQ(dlq_.sent.size(), 2u);
  EXPECT_EQ(header(dlq_.sent[0], "songda.error.code"), "invalid_json");
  EXPECT_EQ(header(dlq_.sent[1], "songda.error.code"), "conflict");
}

// Before, a batch's rejection records rode as one pseudo-event named by the batch's first offset: read again in a
// larger batch (after a crash before the offsets were committed) the new refusals' records were lost as a
// "duplicate", and a conflict's record was appended again at every retry of its batch.
TEST_F(IngestBatchTest, ARejectionIsRecordedOnceHoweverOftenItsMessageIsReadAgain) {
  ingest_->set_evidence({}, ledger::rejected_evidence);
  ASSERT_TRUE(ingest_->process({message("EVT-R-1")}, now_unix_ms()).ok());
  Json changed = summons("EVT-R-1");
  changed["case"]["title"] = "篡改";
  KafkaMessage conflicting{"court.case-events", 0, offset_++, "EVT-R-1", changed.dump(), {}};
  KafkaMessage broken{"court.case-events", 0, offset_++, "EVT-BROKEN", "{not json", {}};
  KafkaMessage later{"court.case-events", 0, offset_++, "EVT-BROKEN-2", "[]", {}};
  const auto rejected = [&] {
    auto leaves = pool_->command({"LRANGE", "sd:ev:leaves", "0", "-1"});
    std::map<std::string, int> codes;
    for (const auto& leaf : leaves->elements) {
      const auto r = Json::parse(leaf.str, nullptr, false);
      if (r.is_object() && r.value("type", "") == "SUBMISSION_REJECTED") codes[r["details"]["code"]]++;
    }
    return codes;
  };
  dlq_.unavailable = 2;  // the batch is tried three times
  for (int i = 0; i < 2; ++i) EXPECT_FALSE(ingest_->process({conflicting, broken}, now_unix_ms()).ok());
  ASSERT_TRUE(ingest_->process({conflicting, broken}, now_unix_ms()).ok());
  EXPECT_EQ(rejected(), (std::map<std::string, int>{{"conflict", 1}, {"invalid_json", 1}}));
  // Read again in a larger batch, as after a crash before the commit.
  ASSERT_TRUE(ingest_->process({conflicting, broken, later}, now_unix_ms()).ok());
  EXPECT_EQ(rejected(), (std::map<std::string, int>{{"conflict", 1}, {"invalid_json", 2}}));
}

}  // namespace
}  // namespace songda
