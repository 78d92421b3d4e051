// The service-date rules, one table row per situation the law distinguishes.
#include "gateway/evidence/rules.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "tests/gateway/evidence/support.h"

namespace songda::evidence {

// Readable failures instead of gtest's byte dump.
void PrintTo(const ServiceDecision& d, std::ostream* os) { *os << to_json(d).dump(); }

namespace {

using T = EvidenceType;
constexpr std::int64_t kMin = 60'000;
constexpr std::int64_t kT0 = testing::kT0;

EvidenceRecord consent(const std::string& channel, const std::string& basis, std::int64_t at = kT0 - kMin) {
  return testing::make_record(channel, T::kConsentRecorded, at, testing::details_for(T::kConsentRecorded, basis));
}

EvidenceRecord ev(const std::string& channel, T type, std::int64_t at) {
  return testing::make_record(channel, type, at);
}

struct Row {
  const char* name;
  std::vector<EvidenceRecord> records;
  ServiceStatus status;
  std::optional<std::int64_t> time;
  const char* rule;
  const char* channel;  // the effective channel, "" when not served
};

std::vector<Row> table() {
  const EvidenceRecord sms_delivered = ev("sms", T::kDelivered, kT0 + 2 * kMin);
  EvidenceRecord voiding = ev("sms", T::kCorrection, kT0 + 9 * kMin);
  voiding.details = {{"corrects", sms_delivered.evidence_id}, {"reason", "receipt was for another message"}};
  return {
      {"provided: served when DELIVERED",
       {consent("sms", "provided"), ev("sms", T::kDispatched, kT0), ev("sms", T::kProviderAccepted, kT0 + 1000),
        ev("sms", T::kDelivered, kT0 + 5000)},
       ServiceStatus::kServed,
       kT0 + 5000,
       kRuleArrival,
       "sms"},
      {"confirmed: served when DELIVERED, not when read later",
       {consent("email", "confirmed"), ev("email", T::kDelivered, kT0), ev("email", T::kRead, kT0 + 60 * kMin)},
       ServiceStatus::kServed,
       kT0,
       kRuleArrival,
       "email"},
      {"provided: a repeated receipt keeps the earliest arrival",
       {consent("sms", "provided"), ev("sms", T::kDelivered, kT0 + 3 * kMin), ev("sms", T::kDelivered, kT0 + kMin)},
       ServiceStatus::kServed,
       kT0 + kMin,
       kRuleArrival,
       "sms"},
      {"provided: dispatched only is pending",
       {consent("sms", "provided"), ev("sms", T::kDispatched, kT0), ev("sms", T::kProviderAccepted, kT0 + 1)},
       ServiceStatus::kPending,
       std::nullopt,
       kRulePending,
       ""},
      {"provided: final failure is not served",
       {consent("sms", "provided"), ev("sms", T::kDispatched, kT0), ev("sms", T::kDeliveryFailed, kT0 + kMin)},
       ServiceStatus::kNotServed,
       std::nullopt,
       kRuleAllFailed,
       ""},
      {"provided: failed then delivered on retry",
       {consent("sms", "provided"), ev("sms", T::kDeliveryFailed, kT0), ev("sms", T::kDelivered, kT0 + 5 * kMin)},
       ServiceStatus::kServed,
       kT0 + 5 * kMin,
       kRuleArrival,
       "sms"},
      {"provided: no receipt but the recipient read it",
       {consent("inapp", "provided"), ev("inapp", T::kRead, kT0 + 7 * kMin)},
       ServiceStatus::kServed,
       kT0 + 7 * kMin,
       kRuleArrivalByAccess,
       "inapp"},
      {"obtained: arrival alone does not serve",
       {consent("wechat", "obtained"), ev("wechat", T::kDelivered, kT0)},
       ServiceStatus::kPending,
       std::nullopt,
       kRulePendingObtained,
       ""},
      {"obtained and confirmed both open: pending, awaiting a read on one and arrival on the other",
       {consent("wechat", "obtained"), ev("wechat", T::kDelivered, kT0), consent("email", "confirmed"),
        ev("email", T::kDispatched, kT0)},
       ServiceStatus::kPending,
       std::nullopt,
       kRulePendingMixed,
       ""},
      {"obtained open, confirmed failed: pending on the obtained one",
       {consent("wechat", "obtained"), ev("wechat", T::kDelivered, kT0), consent("email", "confirmed"),
        ev("email", T::kDeliveryFailed, kT0)},
       ServiceStatus::kPending,
       std::nullopt,
       kRulePendingObtained,
       ""},
      {"obtained: presumed served when read",
       {consent("wechat", "obtained"), ev("wechat", T::kDelivered, kT0), ev("wechat", T::kRead, kT0 + 30 * kMin)},
       ServiceStatus::kServed,
       kT0 + 30 * kMin,
       kRulePresumedRead,
       "wechat"},
      {"obtained: presumed served when the document is retrieved",
       {consent("email", "obtained"), ev("email", T::kRetrieved, kT0 + 40 * kMin)},
       ServiceStatus::kServed,
       kT0 + 40 * kMin,
       kRulePresumedRead,
       "email"},
      {"obtained: a reply serves, even after a read",
       {consent("wechat", "obtained"), ev("wechat", T::kRead, kT0 + kMin),
        ev("wechat", T::kAcknowledged, kT0 + 90 * kMin)},
       ServiceStatus::kServed,
       kT0 + 90 * kMin,
       kRuleReply,
       "wechat"},
      {"none: informational only, however much evidence",
       {consent("sms", "none"), ev("sms", T::kDelivered, kT0), ev("sms", T::kAcknowledged, kT0 + kMin)},
       ServiceStatus::kInformationalOnly,
       std::nullopt,
       kRuleNoConsent,
       ""},
      {"no consent record at all: informational only",
       {ev("sms", T::kDelivered, kT0)},
       ServiceStatus::kInformationalOnly,
       std::nullopt,
       kRuleNoConsent,
       ""},
      {"two channels: the earliest effective one wins",
       {consent("sms", "provided"), ev("sms", T::kDelivered, kT0 + 5 * kMin), consent("email", "confirmed"),
        ev("email", T::kDelivered, kT0 + 3 * kMin)},
       ServiceStatus::kServed,
       kT0 + 3 * kMin,
       kRuleArrival,
       "email"},
      {"two channels: a presumed read beats a later arrival",
       {consent("sms", "provided"), ev("sms", T::kDelivered, kT0 + 5 * kMin), consent("inapp", "obtained"),
        ev("inapp", T::kRead, kT0 + 2 * kMin)},
       ServiceStatus::kServed,
       kT0 + 2 * kMin,
       kRulePresumedRead,
       "inapp"},
      {"two channels: an unconsented early read does not count",
       {consent("sms", "none"), ev("sms", T::kRead, kT0), consent("email", "provided"),
        ev("email", T::kDelivered, kT0 + 10 * kMin)},
       ServiceStatus::kServed,
       kT0 + 10 * kMin,
       kRuleArrival,
       "email"},
      {"all channels failed: not served",
       {consent("sms", "provided"), ev("sms", T::kDeliveryFailed, kT0), consent("email", "confirmed"),
        ev("email", T::kDeliveryFailed, kT0 + kMin)},
       ServiceStatus::kNotServed,
       std::nullopt,
       kRuleAllFailed,
       ""},
      {"one failed, one still open: pending",
       {consent("sms", "provided"), ev("sms", T::kDeliveryFailed, kT0), consent("email", "confirmed"),
        ev("email", T::kDispatched, kT0 + kMin)},
       ServiceStatus::kPending,
       std::nullopt,
       kRulePending,
       ""},
      {"consented channel failed, other had no consent: not served",
       {consent("sms", "provided"), ev("sms", T::kDeliveryFailed, kT0), consent("wechat", "none"),
        ev("wechat", T::kDelivered, kT0)},
       ServiceStatus::kNotServed,
       std::nullopt,
       kRuleAllFailed,
       ""},
      {"a correction voids the receipt it names",
       {consent("sms", "provided"), sms_delivered, voiding},
       ServiceStatus::kPending,
       std::nullopt,
       kRulePending,
       ""},
      {"the latest consent record decides the basis",
       {consent("wechat", "obtained", kT0 - 2 * kMin), consent("wechat", "confirmed", kT0 - kMin),
        ev("wechat", T::kDelivered, kT0)},
       ServiceStatus::kServed,
       kT0,
       kRuleArrival,
       "wechat"},
      {"earlier rule outputs are ignored",
       {consent("sms", "provided"), ev("sms", T::kServiceDeemedComplete, kT0)},
       ServiceStatus::kPending,
       std::nullopt,
       kRulePending,
       ""},
      {"no delivery at all", {}, ServiceStatus::kNotServed, std::nullopt, kRuleNoDelivery, ""},
  };
}

ServiceDecision decide(const std::vector<EvidenceRecord>& records) {
  auto deliveries = deliveries_from_records(records);
  EXPECT_TRUE(deliveries.ok());
  return decide_service(*deliveries);
}

TEST(Rules, Table) {
  const auto rows = table();
  ASSERT_GE(rows.size(), 12u);
  for (const Row& row : rows) {
    SCOPED_TRACE(row.name);
    const ServiceDecision d = decide(row.records);
    EXPECT_EQ(to_string(d.status), to_string(row.status));
    EXPECT_EQ(d.service_time_ms, row.time);
    EXPECT_EQ(d.rule, row.rule);
    EXPECT_EQ(d.channel, row.channel);
    EXPECT_EQ(d.rule_version, std::string(kRulesVersion));
    EXPECT_FALSE(d.note.empty());
    if (d.status == ServiceStatus::kServed) {
      // The deciding record and the consent behind it are named.
      const auto it = std::find_if(row.records.begin(), row.records.end(), [&](const EvidenceRecord& r) {
        return r.channel == d.channel && r.event_time_ms == *d.service_time_ms && r.type != T::kConsentRecorded;
      });
      ASSERT_NE(it, row.records.end());
      EXPECT_NE(std::find(d.evidence_ids.begin(), d.evidence_ids.end(), it->evidence_id), d.evidence_ids.end());
      EXPECT_EQ(d.delivery_id, testing::delivery_of(d.channel));
    }
  }
}

// A decision made with cn-olr-2021.1 (a bundle printed before 2021.2) is recomputed the same way: only the PENDING
// rule text differs, which 2021.1 gave as "no arrival" for every open channel.
TEST(Rules, AnEarlierRulesVersionIsRecomputedAsItWasDecided) {
  ASSERT_TRUE(known_rules_version(kRulesVersion));
  ASSERT_TRUE(known_rules_version(kRulesVersion2021_1));
  EXPECT_FALSE(known_rules_version("cn-olr-2030.1"));
  int differing = 0;
  for (const Row& row : table()) {
    SCOPED_TRACE(row.name);
    auto deliveries = deliveries_from_records(row.records);
    ASSERT_TRUE(deliveries.ok());
    const ServiceDecision now = decide_service(*deliveries);
    const ServiceDecision then = decide_service(*deliveries, kRulesVersion2021_1);
    EXPECT_EQ(then.rule_version, std::string(kRulesVersion2021_1));
    EXPECT_EQ(then.status, now.status);
    EXPECT_EQ(then.service_time_ms, now.service_time_ms);
    EXPECT_EQ(then.evidence_ids, now.evidence_ids);
    EXPECT_EQ(then.note, now.note);
    if (then.status == ServiceStatus::kPending) {
      EXPECT_EQ(then.rule, std::string(kRulePending));
    } else {
      EXPECT_EQ(then.rule, now.rule);
    }
    differing += then.rule != now.rule ? 1 : 0;
  }
  EXPECT_EQ(differing, 3) << "the rows with an obtained address still open";
}

TEST(Rules, OrderOfRecordsDoesNotMatter) {
  std::mt19937 rng(31);
  for (const Row& row : table()) {
    const ServiceDecision expected = decide(row.records);
    auto shuffled = row.records;
    for (int i = 0; i < 5; ++i) {
      std::shuffle(shuffled.begin(), shuffled.end(), rng);
      EXPECT_EQ(decide(shuffled), expected) << row.name;
    }
  }
}

TEST(Rules, NoteListsEveryChannel) {
  const ServiceDecision d = decide({consent("sms", "provided"), ev("sms", T::kDelivered, kT0 + 5 * kMin),
                                    consent("email", "confirmed"), ev("email", T::kDeliveryFailed, kT0)});
  EXPECT_EQ(d.note,
            "earliest effective service 最早有效送达 of 2 channels: sms served 2025-11-28T01:05:00.000Z (DELIVERED); "
            "email failed");
}

TEST(Rules, ExplicitDeliveriesWithoutConsentRecords) {
  ChannelDelivery d{"sd-x", "sms", "provided", {ev("sms", T::kDelivered, kT0)}};
  const ServiceDecision out = decide_service(std::vector{d});
  EXPECT_EQ(out.status, ServiceStatus::kServed);
  EXPECT_EQ(out.delivery_id, "sd-x");
}

TEST(Rules, OneDeliveryOnTwoChannelsIsRefused) {
  EvidenceRecord a = ev("sms", T::kDelivered, kT0);
  EvidenceRecord b = ev("email", T::kRead, kT0);
  b.delivery_id = a.delivery_id;
  EXPECT_EQ(deliveries_from_records(std::vector{a, b}).error().code, "schema");
}

TEST(Rules, DecisionJsonRoundTripsStrictly) {
  for (const Row& row : table()) {
    const ServiceDecision d = decide(row.records);
    const nlohmann::json j = to_json(d);
    auto back = service_decision_from_json(j);
    ASSERT_TRUE(back.ok()) << back.error().message;
    EXPECT_EQ(*back, d);
  }
  nlohmann::json j = to_json(decide(table()[0].records));
  j.erase("service_time");
  EXPECT_FALSE(service_decision_from_json(j).ok()) << "SERVED needs a time";
  j = to_json(decide(table()[0].records));
  j["extra"] = true;
  EXPECT_FALSE(service_decision_from_json(j).ok());
  j = to_json(decide(table()[0].records));
  j["status"] = "served";
  EXPECT_FALSE(service_decision_from_json(j).ok());
}

}  // namespace
}  // namespace songda::evidence
