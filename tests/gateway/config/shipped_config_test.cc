// The config/gateway.yaml we ship: it loads cleanly, routes every event type,
// its templates only use placeholders an event can fill, and every channel a route
// uses is configured, with WeChat fields that fit WeChat's limits once filled in.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>

#include "channels/wechat/wechat_protocol.h"
#include "gateway/config/config.h"
#include "gateway/core/text.h"

namespace songda {
namespace {

using ::testing::IsEmpty;

std::string shipped_path() { return std::string(SONGDA_SOURCE_DIR) + "/config/gateway.yaml"; }

Config shipped() {
  const ConfigLoad load = load_config_file(shipped_path());
  std::string issues;
  for (const auto& i : load.issues) issues += "  " + i.to_string() + "\n";
  EXPECT_THAT(load.issues, IsEmpty()) << issues;
  return load.config.value_or(Config{});
}

// Realistic values for every placeholder the shipped templates use.
const std::map<std::string, std::string>& sample() {
  static const std::map<std::string, std::string> values = {
      {"court_name", "商丘市中级人民法院"},
      {"case_number", "(2026)豫14民初123号"},
      {"case_title", "张三诉李四买卖合同纠纷"},
      {"recipient_name", "张三"},
      {"document_title", "民事判决书"},
      {"link", ""},  // not counted towards the SMS length
      {"hearing_time", "2026-12-10 09:30"},
      {"courtroom", "第三法庭"},
      {"amount", "1250.00"},
      {"due_date", "2026-12-20"},
      {"mediation_time", "2026-12-05 10:00"},
      {"notice_title", "关于调整立案窗口办公时间的通知"},
      {"notice_text", "自2027年1月1日起，立案窗口办公时间调整为工作日8:30至17:30。"},
  };
  return values;
}

std::set<std::string> placeholders(const std::string& text) {
  std::set<std::string> names;
  for (std::size_t at = text.find("{{"); at != std::string::npos; at = text.find("{{", at + 2)) {
    const std::size_t close = text.find("}}", at);
    if (close == std::string::npos) break;
    names.insert(text.substr(at + 2, close - at - 2));
  }
  return names;
}

std::string render(std::string text) {
  for (const auto& [name, value] : sample()) {
    const std::string marker = "{{" + name + "}}";
    for (std::size_t at = text.find(marker); at != std::string::npos; at = text.find(marker, at + value.size())) {
      text.replace(at, marker.size(), value);
    }
  }
  return text;
}

TEST(ShippedConfig, LoadsWithoutIssues) {
  const Config c = shipped();
  EXPECT_EQ(c.source, shipped_path());
  EXPECT_EQ(c.kafka.topic, "court.case-events");
  EXPECT_EQ(c.kafka.dlq_topic, "court.case-events.dlq");
}

TEST(ShippedConfig, RoutesEveryEventTypeExactlyOnce) {
  const Config c = shipped();
  std::map<std::string, const RouteConfig*> by_type;
  for (const auto& r : c.routes) {
    EXPECT_TRUE(by_type.emplace(r.event_type, &r).second) << "two routes for " << r.event_type;
    EXPECT_EQ(c.templates.count(r.template_name), 1u) << r.event_type;
  }
  for (const char* type : {"case.filed", "summons.issued", "hearing.scheduled", "hearing.rescheduled",
                           "hearing.cancelled", "document.served", "judgment.issued", "payment.due",
                           "mediation.invited", "notice.general", "notice.broadcast"}) {
    EXPECT_EQ(by_type.count(type), 1u) << "no route for " << type;
  }
  ASSERT_EQ(by_type.size(), 11u);

  const std::vector<std::string> all_roles = {"party", "lawyer", "agent", "other"};
  const std::vector<std::string> all_channels = {"inapp", "sms", "wechat", "email"};
  for (const char* type : {"summons.issued", "judgment.issued", "document.served"}) {
    EXPECT_EQ(by_type[type]->roles, all_roles) << type;
    EXPECT_EQ(by_type[type]->channels, all_channels) << type;
  }
  for (const char* type : {"summons.issued", "hearing.rescheduled", "hearing.cancelled"}) {
    EXPECT_TRUE(by_type[type]->urgent) << type << " must not wait for quiet hours";
  }
  EXPECT_FALSE(by_type["notice.broadcast"]->urgent);
}

TEST(ShippedConfig, TemplatesUseOnlyPlaceholdersAnEventCanFill) {
  const Config c = shipped();
  EXPECT_EQ(c.templates.size(), 11u);
  for (const auto& [name, t] : c.templates) {
    EXPECT_FALSE(t.title.empty()) << name;
    EXPECT_FALSE(t.body.empty()) << name;
    EXPECT_FALSE(t.sms.empty()) << name;
    for (const std::string* text : {&t.title, &t.body, &t.sms}) {
      for (const auto& p : placeholders(*text)) {
        EXPECT_EQ(sample().count(p), 1u) << name << " uses {{" << p << "}}, which no event provides";
      }
    }
    EXPECT_NE(t.body.find("{{link}}"), std::string::npos) << name << ": the body should carry the link";
    EXPECT_NE(t.sms.find("{{link}}"), std::string::npos) << name << ": the SMS should carry the link";
  }
}

TEST(ShippedConfig, SmsTextsFitOneMessage) {
  const Config c = shipped();
  for (const auto& [name, t] : c.templates) {
    const std::string text = render(t.sms);
    EXPECT_EQ(text.find("{{"), std::string::npos) << name;
    EXPECT_LE(utf8_length(text), 70u) << name << ": \"" << text << "\" is too long for one SMS";
  }
}

TEST(ShippedConfig, EveryChannelARouteUsesIsConfigured) {
  const Config c = shipped();
  const ChannelsConfig& ch = c.channels;
  ASSERT_EQ(ch.sms.providers.size(), 2u);
  EXPECT_EQ(ch.sms.providers[0].name, "aliyun-main");
  EXPECT_EQ(ch.sms.providers[0].kind, "aliyun");
  EXPECT_EQ(ch.sms.providers[0].endpoint, "https://dysmsapi.aliyuncs.com");
  EXPECT_EQ(ch.sms.providers[0].credentials_env, "SONGDA_ALIYUN");
  EXPECT_EQ(ch.sms.providers[1].name, "tencent-backup");
  EXPECT_EQ(ch.sms.providers[1].kind, "tencent");
  EXPECT_EQ(ch.sms.providers[1].endpoint, "https://sms.tencentcloudapi.com");
  EXPECT_EQ(ch.sms.providers[1].region, "ap-guangzhou");
  EXPECT_LT(ch.sms.providers[0].priority, ch.sms.providers[1].priority) << "Aliyun first, Tencent as backup";
  EXPECT_TRUE(ch.wechat.enabled);
  EXPECT_EQ(ch.wechat.kind, "official_account");
  EXPECT_EQ(ch.wechat.endpoint, "https://api.weixin.qq.com");
  EXPECT_TRUE(ch.email.enabled);
  EXPECT_EQ(ch.email.starttls, "required");

  for (const auto& r : c.routes) {
    for (const auto& channel : r.channels) {
      if (channel == "sms") {
        for (const auto& p : ch.sms.providers) {
          EXPECT_EQ(p.templates.count(r.template_name), 1u) << p.name << " has no code for " << r.template_name;
        }
      } else if (channel == "wechat") {
        EXPECT_EQ(ch.wechat.templates.count(r.template_name), 1u) << "no WeChat template for " << r.template_name;
      }
    }
  }
}

TEST(ShippedConfig, TencentTemplateParamsAreVariablesASmsDeliveryCarries) {
  const Config c = shipped();
  // What channels/http delivery_template_vars gives a provider template: the event's params and
  // these built-ins; case_title and document_title are not among them.
  const std::set<std::string> builtins = {"court_name", "case_number", "recipient_name", "link"};
  for (const auto& p : c.channels.sms.providers) {
    if (p.kind != "tencent") continue;
    EXPECT_EQ(p.template_params.size(), p.templates.size()) << p.name << ": every Tencent template needs its params";
    for (const auto& [name, params] : p.template_params) {
      ASSERT_EQ(c.templates.count(name), 1u) << name;
      const std::set<std::string> used = placeholders(c.templates.at(name).sms);
      for (const auto& param : params) {
        EXPECT_TRUE(builtins.count(param) != 0 ||
                    (used.count(param) != 0 && param != "case_title" && param != "document_title"))
            << p.name << "." << name << ": '" << param << "' is not a variable an SMS delivery carries";
      }
    }
  }
}

TEST(ShippedConfig, WechatFieldsFitWechatsLimitsOnceFilledIn) {
  const Config c = shipped();
  ASSERT_FALSE(c.channels.wechat.templates.empty());
  for (const auto& [name, t] : c.channels.wechat.templates) {
    EXPECT_EQ(c.templates.count(name), 1u) << name;
    EXPECT_FALSE(t.template_id.empty()) << name;
    EXPECT_FALSE(t.fields.empty()) << name;
    for (const auto& [key, text] : t.fields) {
      for (const auto& p : placeholders(text)) {
        EXPECT_EQ(sample().count(p), 1u) << name << "." << key << " uses {{" << p << "}}, which no event provides";
      }
      const std::string value = render(text);
      const Status st = wechat::check_template_field(key, value);
      EXPECT_TRUE(st.ok()) << name << "." << key << " = \"" << value << "\": " << (st.ok() ? "" : st.error().message);
    }
  }
}

TEST(ShippedConfig, QuietHoursAndSummonsFallback) {
  const Config c = shipped();
  EXPECT_TRUE(c.quiet_hours.enabled);
  EXPECT_EQ(c.quiet_hours.start, "22:00");
  EXPECT_EQ(c.quiet_hours.end, "08:00");
  EXPECT_EQ(c.quiet_hours.utc_offset_minutes, 8 * 60);
  EXPECT_EQ(c.quiet_hours.channels, (std::vector<std::string>{"sms"}));

  const auto summons = std::find_if(c.routes.begin(), c.routes.end(),
                                    [](const RouteConfig& r) { return r.event_type == "summons.issued"; });
  ASSERT_NE(summons, c.routes.end());
  ASSERT_EQ(summons->fallback.size(), 2u);
  EXPECT_EQ(summons->fallback[0].from, "wechat");
  EXPECT_EQ(summons->fallback[0].to, "sms");
  EXPECT_EQ(summons->fallback[0].unless, "DELIVERED");
  EXPECT_EQ(summons->fallback[0].after_s, 600);
  EXPECT_EQ(summons->fallback[1].from, "inapp");
  EXPECT_EQ(summons->fallback[1].unless, "READ");
  EXPECT_EQ(summons->fallback[1].after_s, 24 * 3600);
}

// The shipped file is the example: its placeholders point at the real providers, so `songda run` refuses it as it is
// (every send would be refused at the provider), and accepts it once the court's own values are in, or when the
// endpoints are a simulator on loopback (the demo, the tests).
TEST(ShippedConfig, ItsPlaceholdersAreRefusedForARealProviderOnly) {
  Config c = shipped();
  const auto found = example_placeholders(c);
  EXPECT_THAT(found, ::testing::Contains("channels.wechat.app_id: wx0123456789abcdef"));
  EXPECT_THAT(found, ::testing::Contains("channels.sms.providers[tencent-backup].sdk_app_id: 1400000000"));
  EXPECT_THAT(found, ::testing::Contains("channels.sms.providers[aliyun-main].templates.summons: SMS_000000002"));
  EXPECT_THAT(found, ::testing::Contains("channels.wechat.templates.summons.template_id: REPLACE-ME-SUMMONS"));

  Config simulated = c;
  for (auto& p : simulated.channels.sms.providers) p.endpoint = "http://127.0.0.1:18080";
  simulated.channels.wechat.endpoint = "http://127.0.0.1:18080";
  EXPECT_THAT(example_placeholders(simulated), IsEmpty());

  Config own = c;
  int n = 0;
  for (auto& p : own.channels.sms.providers) {
    p.sdk_app_id = "1400123456";
    for (auto& [name, code] : p.templates) code = "SMS_4815" + std::to_string(++n);
  }
  own.channels.wechat.app_id = "wx5f2c0a9b8d7e6f10";
  for (auto& [name, t] : own.channels.wechat.templates) t.template_id = "tpl-" + name;
  EXPECT_THAT(example_placeholders(own), IsEmpty());
}

}  // namespace
}  // namespace songda
