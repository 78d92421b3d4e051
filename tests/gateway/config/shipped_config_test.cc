// The config/gateway.yaml we ship: it loads cleanly, routes every event type,
// and its templates only use placeholders an event can fill.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

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

}  // namespace
}  // namespace songda
