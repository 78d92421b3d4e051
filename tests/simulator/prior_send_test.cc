// After a crash an SMS attempt's outcome can be unknown: the provider may have taken the message even though
// Songda never recorded its answer. SmsChannel::find_prior_sends asks the providers' own records (Aliyun
// QuerySendDetails, Tencent PullSmsSendStatusByPhoneNumber), here the simulator's, through the real adapters
// and HTTP client: a message the provider took is found with its fate, one it never got is not, and a
// provider that cannot answer makes the answer "unknown" (so nothing is resent blindly).
#include <gtest/gtest.h>

#include <cstdlib>

#include "channels/http/http_client.h"
#include "channels/sms/sms_channel.h"
#include "tests/simulator/sim_test_support.h"

namespace songda::sim {
namespace {

using nlohmann::json;

const char* sim_env(const char* name) {
  static const std::map<std::string, std::string> env = {
      {"SIMA_ACCESS_KEY_ID", std::string(kDefaultAliyunAccessKeyId)},
      {"SIMA_ACCESS_KEY_SECRET", std::string(kDefaultAliyunAccessKeySecret)},
      {"SIMT_SECRET_ID", std::string(kDefaultTencentSecretId)},
      {"SIMT_SECRET_KEY", std::string(kDefaultTencentSecretKey)},
  };
  const auto it = env.find(name);
  return it == env.end() ? nullptr : it->second.c_str();
}

SmsProviderConfig provider(const std::string& kind, int port) {
  SmsProviderConfig p;
  p.name = kind + "-sim";
  p.kind = kind;
  p.endpoint = "http://127.0.0.1:" + std::to_string(port);
  p.sign_name = "商丘中院";
  p.templates = {{"summons", kind == "aliyun" ? "SMS_71390007" : "449739"}};
  p.credentials_env = kind == "aliyun" ? "SIMA" : "SIMT";
  if (kind == "tencent") {
    p.region = "ap-guangzhou";
    p.sdk_app_id = "1400000000";
  }
  p.timeout_ms = 2000;
  return p;
}

Delivery summons(const std::string& id, const std::string& mobile) {
  Delivery d;
  d.id = id;
  d.channel = "sms";
  d.address = mobile;
  d.template_name = "summons";
  d.text = "【商丘中院】请查收传票";
  d.params = {{"case_number", "(2026)豫14民初123号"}};
  return d;
}

class PriorSendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto o = testing::test_options();
    for (ProviderBehaviour* b : {&o.aliyun, &o.tencent}) b->receipt.delay_ms = 50;
    o.callback_base = songda_.base_url();
    sim_ = std::make_unique<Simulator>(o);
    sim_->start();
  }

  // A channel over one provider of `kind`, as the gateway builds it.
  std::unique_ptr<sms::SmsChannel> channel(const std::string& kind) {
    SmsConfig c;
    c.providers = {provider(kind, sim_->port())};
    return std::make_unique<sms::SmsChannel>(c, http_, sim_env);
  }

  testing::FakeSongda songda_;
  std::unique_ptr<Simulator> sim_;
  CurlHttpClient http_;
};

TEST_F(PriorSendTest, AliyunFindsWhatItTookAndNotWhatItNeverGot) {
  auto ch = channel("aliyun");
  const std::int64_t since = now_unix_ms();
  const std::vector<Delivery> sent = {summons("dlv-a1", "+8613800000001")};
  const auto out = ch->send(sent);
  ASSERT_EQ(out.size(), 1u);
  ASSERT_EQ(out[0].kind, SendOutcome::Kind::kAccepted) << out[0].code << " " << out[0].message;
  // Its report is in after 50 ms: asked then, the provider has it, delivered.
  ASSERT_TRUE(testing::wait_until([&] { return songda_.count() >= 1; }));
  const std::vector<Delivery> asked = {summons("dlv-a1", "+8613800000001"), summons("dlv-a2", "+8613800000002"),
                                       summons("dlv-a3", "+8613800000001")};
  const auto prior = ch->find_prior_sends(asked, since);
  ASSERT_EQ(prior.size(), 3u);
  EXPECT_EQ(prior[0].kind, PriorSend::Kind::kSent);
  EXPECT_EQ(prior[0].outcome.kind, SendOutcome::Kind::kDelivered) << prior[0].outcome.message;
  EXPECT_EQ(prior[0].outcome.code, "DELIVERED");
  EXPECT_EQ(prior[1].kind, PriorSend::Kind::kNotSent) << "a number the provider never got";
  EXPECT_EQ(prior[2].kind, PriorSend::Kind::kNotSent) << "another delivery to the same number";
  EXPECT_EQ(sim_->stats()["aliyun"]["accepted"], 1) << "asking sends nothing";
}

TEST_F(PriorSendTest, AliyunWaitingForItsReportIsUnknownNotResent) {
  ASSERT_TRUE(sim_->configure({{"provider", "aliyun"}, {"receipt", {{"outcome", "none"}}}}).ok());
  auto ch = channel("aliyun");
  const std::int64_t since = now_unix_ms();
  const std::vector<Delivery> sent = {summons("dlv-w1", "+8613800000011")};
  ASSERT_EQ(ch->send(sent)[0].kind, SendOutcome::Kind::kAccepted);
  const auto prior = ch->find_prior_sends(sent, since);
  ASSERT_EQ(prior.size(), 1u);
  EXPECT_EQ(prior[0].kind, PriorSend::Kind::kUnknown) << "taken but not reported: ask again, do not resend";
}

TEST_F(PriorSendTest, AliyunBatchedSendIsFoundByNumberAndTemplate) {
  auto ch = channel("aliyun");
  const std::int64_t since = now_unix_ms();
  // Same template and params: one request for both numbers, OutId "b-...".
  const std::vector<Delivery> sent = {summons("dlv-b1", "+8613800000021"), summons("dlv-b2", "+8613800000022")};
  const auto out = ch->send(sent);
  ASSERT_EQ(out[0].kind, SendOutcome::Kind::kAccepted);
  EXPECT_EQ(sim_->stats()["aliyun"]["requests"], 1) << "expected one batched request";
  ASSERT_TRUE(testing::wait_until([&] { return songda_.count() >= 1; }));
  const auto prior = ch->find_prior_sends(sent, since);
  ASSERT_EQ(prior.size(), 2u);
  EXPECT_EQ(prior[0].kind, PriorSend::Kind::kSent);
  EXPECT_EQ(prior[1].kind, PriorSend::Kind::kSent);
  // A batch sent before the attempt in doubt began (beyond the clock slack) is not taken for it.
  const auto later = ch->find_prior_sends(sent, now_unix_ms() + 120'000);
  EXPECT_EQ(later[0].kind, PriorSend::Kind::kNotSent);
}

TEST_F(PriorSendTest, TencentFindsReportedSendsBySessionContext) {
  auto ch = channel("tencent");
  const std::int64_t since = now_unix_ms();
  const std::vector<Delivery> sent = {summons("dlv-t1", "+8613800000031")};
  const auto out = ch->send(sent);
  ASSERT_EQ(out[0].kind, SendOutcome::Kind::kAccepted) << out[0].code << " " << out[0].message;
  ASSERT_TRUE(testing::wait_until([&] { return songda_.count() >= 1; }));
  const std::vector<Delivery> asked = {sent[0], summons("dlv-t2", "+8613800000032")};
  const auto prior = ch->find_prior_sends(asked, since);
  ASSERT_EQ(prior.size(), 2u);
  EXPECT_EQ(prior[0].kind, PriorSend::Kind::kSent);
  EXPECT_EQ(prior[0].outcome.kind, SendOutcome::Kind::kDelivered);
  EXPECT_EQ(prior[0].outcome.provider_message_id, out[0].provider_message_id);
  EXPECT_EQ(prior[1].kind, PriorSend::Kind::kNotSent);
}

TEST_F(PriorSendTest, AProviderThatCannotAnswerMakesItUnknown) {
  auto ch = channel("aliyun");
  ASSERT_TRUE(sim_->configure({{"provider", "aliyun"}, {"down", true}}).ok());
  const std::vector<Delivery> asked = {summons("dlv-d1", "+8613800000041")};
  const auto prior = ch->find_prior_sends(asked, now_unix_ms());
  ASSERT_EQ(prior.size(), 1u);
  EXPECT_EQ(prior[0].kind, PriorSend::Kind::kUnknown);
}

}  // namespace
}  // namespace songda::sim
