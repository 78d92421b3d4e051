// The channels, quiet_hours and route fallback sections of the config, as an operator meets
// them: what a good file turns into, and what each mistake is reported as (file, line,
// column, message). Positions are 1-based; columns count characters, not bytes.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "gateway/config/config.h"

namespace songda {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;

std::string dump(const std::vector<ConfigIssue>& issues) {
  std::string out;
  for (const auto& i : issues) out += "  " + i.to_string() + "\n";
  return out;
}

Config load_ok(const std::string& yaml) {
  const ConfigLoad load = load_config_text(yaml, "test.yaml");
  EXPECT_THAT(load.issues, IsEmpty()) << dump(load.issues);
  EXPECT_TRUE(load.config.has_value());
  return load.config.value_or(Config{});
}

std::vector<ConfigIssue> load_bad(const std::string& yaml) {
  const ConfigLoad load = load_config_text(yaml, "test.yaml");
  EXPECT_FALSE(load.config.has_value()) << "a config with problems must not be returned";
  EXPECT_THAT(load.issues, Not(IsEmpty()));
  for (const auto& i : load.issues) {
    EXPECT_GT(i.line, 0) << "every problem names its line: " << i.to_string();
    EXPECT_GT(i.column, 0) << "every problem names its column: " << i.to_string();
  }
  return load.issues;
}

// Exactly one issue, at line:column, whose message contains `text`.
void expect_one(const std::string& yaml, int line, int column, const std::string& text) {
  const auto issues = load_bad(yaml);
  ASSERT_THAT(issues, SizeIs(1)) << dump(issues);
  EXPECT_EQ(issues[0].file, "test.yaml");
  EXPECT_EQ(issues[0].line, line) << issues[0].to_string();
  EXPECT_EQ(issues[0].column, column) << issues[0].to_string();
  EXPECT_THAT(issues[0].message, HasSubstr(text)) << issues[0].to_string();
}

void expect_issue(const ConfigIssue& issue, int line, int column, const std::string& text) {
  EXPECT_EQ(issue.line, line) << issue.to_string();
  EXPECT_EQ(issue.column, column) << issue.to_string();
  EXPECT_THAT(issue.message, HasSubstr(text)) << issue.to_string();
}

// A valid Aliyun provider on lines 1-8; the line a test appends is line 9, its key at column 9.
std::string aliyun_with(const std::string& line = "") {
  return "channels:\n"
         "  sms:\n"
         "    providers:\n"
         "      - name: aliyun-main\n"
         "        kind: aliyun\n"
         "        endpoint: \"https://dysmsapi.aliyuncs.com\"\n"
         "        sign_name: 商丘中院\n"
         "        credentials_env: SONGDA_ALIYUN\n" +
         line;
}

// A valid Tencent provider on lines 1-9; the line a test appends is line 10.
std::string tencent_with(const std::string& line = "") {
  return "channels:\n"
         "  sms:\n"
         "    providers:\n"
         "      - name: tencent-backup\n"
         "        kind: tencent\n"
         "        endpoint: \"https://sms.tencentcloudapi.com\"\n"
         "        sign_name: 商丘中院\n"
         "        sdk_app_id: \"1400000000\"\n"
         "        credentials_env: SONGDA_TENCENT\n" +
         line;
}

// Top-level templates a route can name; put at the end of a file so earlier lines stay put.
constexpr const char* kTemplates =
    "templates:\n"
    "  summons: {title: \"{{court_name}}传票\", body: \"请于{{hearing_time}}到庭。{{link}}\"}\n"
    "  judgment: {title: 裁判文书, body: \"请查收。{{link}}\"}\n";

// An enabled WeChat channel on lines 1-4; a test appends its templates from line 5.
std::string wechat_with(const std::string& lines, const std::string& kind = "official_account") {
  return "channels:\n"
         "  wechat:\n"
         "    enabled: true\n"
         "    kind: " +
         kind + "\n    app_id: wx0123456789abcdef\n" + lines;
}

// ---- a good file --------------------------------------------------------------------------------

TEST(ChannelsConfig, ReadsEveryField) {
  const Config c = load_ok(
      "channels:\n"
      "  sms:\n"
      "    circuit_failures: 3\n"
      "    circuit_open_s: 60\n"
      "    providers:\n"
      "      - {name: aliyun-main, kind: aliyun, endpoint: \"https://dysmsapi.aliyuncs.com/\", priority: 1, weight: "
      "70,\n"
      "         sign_name: 商丘中院, region: cn-shanghai, credentials_env: SONGDA_ALIYUN, concurrency: 8, "
      "rate_per_sec: 0.5,\n"
      "         timeout_ms: 3000, batch_max: 1000, receipt_timeout_s: 900,\n"
      "         templates: {summons: SMS_123456, judgment: SMS_654321}}\n"
      "      - {name: tencent-backup, kind: tencent, endpoint: \"http://127.0.0.1:18080\", priority: 2,\n"
      "         sign_name: 商丘中院, sdk_app_id: 1400000000, credentials_env: SONGDA_TENCENT, batch_max: 200,\n"
      "         templates: {summons: \"449739\", judgment: 449740}, template_params: {summons: [case_number, "
      "hearing_time]}}\n"
      "  wechat:\n"
      "    enabled: true\n"
      "    kind: mini_program\n"
      "    app_id: wx0123456789abcdef\n"
      "    endpoint: \"http://127.0.0.1:18081\"\n"
      "    credentials_env: SONGDA_WX\n"
      "    concurrency: 2\n"
      "    rate_per_sec: 10\n"
      "    timeout_ms: 4000\n"
      "    templates:\n"
      "      summons: {template_id: \"TPL-SUMMONS\", page: \"pages/notice/index\",\n"
      "                fields: {thing1: \"{{court_name}}\", character_string2: \"{{case_number}}\", time3: "
      "\"{{hearing_time}}\"}}\n"
      "  email:\n"
      "    enabled: true\n"
      "    smtp_url: \"smtps://mail.court.example:465\"\n"
      "    starttls: optional\n"
      "    from: \"noreply@court.example\"\n"
      "    from_name: 商丘市中级人民法院\n"
      "    credentials_env: SONGDA_MAIL\n"
      "    ca_file: /etc/songda/smtp-ca.pem\n"
      "    concurrency: 3\n"
      "    rate_per_sec: 5\n"
      "    timeout_ms: 20000\n"
      "quiet_hours: {enabled: true, start: \"21:30\", end: \"7:00\", utc_offset: \"+08:00\", channels: [sms, "
      "wechat]}\n" +
      std::string(kTemplates) +
      "routes:\n"
      "  - {event: summons.issued, channels: [inapp, sms, wechat, email], template: summons,\n"
      "     fallback: [{from: wechat, to: sms, unless: DELIVERED, after: 10m}, {from: inapp, to: email, unless: READ, "
      "after: 24h}]}\n"
      "  - {event: judgment.issued, channels: [sms], template: judgment}\n");

  EXPECT_EQ(c.channels.sms.circuit_failures, 3);
  EXPECT_EQ(c.channels.sms.circuit_open_s, 60);
  ASSERT_THAT(c.channels.sms.providers, SizeIs(2));
  const SmsProviderConfig& a = c.channels.sms.providers[0];
  EXPECT_EQ(a.name, "aliyun-main");
  EXPECT_EQ(a.kind, "aliyun");
  EXPECT_EQ(a.endpoint, "https://dysmsapi.aliyuncs.com");  // trailing slash dropped
  EXPECT_EQ(a.priority, 1);
  EXPECT_EQ(a.weight, 70);
  EXPECT_EQ(a.sign_name, "商丘中院");
  EXPECT_EQ(a.region, "cn-shanghai");
  EXPECT_EQ(a.credentials_env, "SONGDA_ALIYUN");
  EXPECT_EQ(a.concurrency, 8);
  EXPECT_DOUBLE_EQ(a.rate_per_sec, 0.5);
  EXPECT_EQ(a.timeout_ms, 3000);
  EXPECT_EQ(a.batch_max, 1000);
  EXPECT_EQ(a.receipt_timeout_s, 900);
  EXPECT_EQ(a.templates, (std::map<std::string, std::string>{{"summons", "SMS_123456"}, {"judgment", "SMS_654321"}}));
  EXPECT_EQ(a.line, 6);
  EXPECT_EQ(a.column, 9);
  const SmsProviderConfig& t = c.channels.sms.providers[1];
  EXPECT_EQ(t.kind, "tencent");
  EXPECT_EQ(t.endpoint, "http://127.0.0.1:18080");
  EXPECT_EQ(t.priority, 2);
  EXPECT_EQ(t.weight, 100);  // default
  EXPECT_EQ(t.sdk_app_id, "1400000000");
  EXPECT_EQ(t.region, "ap-guangzhou");  // Tencent's default, not Aliyun's
  EXPECT_EQ(t.batch_max, 200);
  EXPECT_EQ(t.templates.at("judgment"), "449740");
  EXPECT_EQ(t.template_params,
            (std::map<std::string, std::vector<std::string>>{{"summons", {"case_number", "hearing_time"}}}));
  EXPECT_THAT(a.template_params, IsEmpty());
  EXPECT_EQ(t.line, 10);

  const WechatConfig& w = c.channels.wechat;
  EXPECT_TRUE(w.enabled);
  EXPECT_EQ(w.kind, "mini_program");
  EXPECT_EQ(w.app_id, "wx0123456789abcdef");
  EXPECT_EQ(w.endpoint, "http://127.0.0.1:18081");
  EXPECT_EQ(w.credentials_env, "SONGDA_WX");
  EXPECT_EQ(w.concurrency, 2);
  EXPECT_DOUBLE_EQ(w.rate_per_sec, 10);
  EXPECT_EQ(w.timeout_ms, 4000);
  ASSERT_EQ(w.templates.count("summons"), 1u);
  const WechatTemplateConfig& wt = w.templates.at("summons");
  EXPECT_EQ(wt.template_id, "TPL-SUMMONS");
  EXPECT_EQ(wt.page, "pages/notice/index");
  EXPECT_EQ(wt.fields, (std::map<std::string, std::string>{{"thing1", "{{court_name}}"},
                                                           {"character_string2", "{{case_number}}"},
                                                           {"time3", "{{hearing_time}}"}}));
  EXPECT_EQ(wt.line, 23);
  EXPECT_EQ(wt.column, 7);

  const EmailConfig& e = c.channels.email;
  EXPECT_TRUE(e.enabled);
  EXPECT_EQ(e.smtp_url, "smtps://mail.court.example:465");
  EXPECT_EQ(e.starttls, "optional");
  EXPECT_EQ(e.from, "noreply@court.example");
  EXPECT_EQ(e.from_name, "商丘市中级人民法院");
  EXPECT_EQ(e.credentials_env, "SONGDA_MAIL");
  EXPECT_EQ(e.ca_file, "/etc/songda/smtp-ca.pem");
  EXPECT_EQ(e.concurrency, 3);
  EXPECT_DOUBLE_EQ(e.rate_per_sec, 5);
  EXPECT_EQ(e.timeout_ms, 20000);

  const QuietHoursConfig& q = c.quiet_hours;
  EXPECT_TRUE(q.enabled);
  EXPECT_EQ(q.start, "21:30");
  EXPECT_EQ(q.end, "07:00");  // normalised to HH:MM
  EXPECT_EQ(q.utc_offset_minutes, 480);
  EXPECT_EQ(q.channels, (std::vector<std::string>{"sms", "wechat"}));

  ASSERT_THAT(c.routes, SizeIs(2));
  ASSERT_THAT(c.routes[0].fallback, SizeIs(2));
  const FallbackConfig& f0 = c.routes[0].fallback[0];
  EXPECT_EQ(f0.from, "wechat");
  EXPECT_EQ(f0.to, "sms");
  EXPECT_EQ(f0.unless, "DELIVERED");
  EXPECT_EQ(f0.after_s, 600);
  EXPECT_EQ(f0.line, 42);
  EXPECT_EQ(f0.column, 17);
  const FallbackConfig& f1 = c.routes[0].fallback[1];
  EXPECT_EQ(f1.from, "inapp");
  EXPECT_EQ(f1.to, "email");
  EXPECT_EQ(f1.unless, "READ");
  EXPECT_EQ(f1.after_s, 24 * 3600);
  EXPECT_THAT(c.routes[1].fallback, IsEmpty());
}

TEST(ChannelsConfig, AbsentSectionsKeepTheirDefaults) {
  const Config c = load_ok("channels:\n  sms:\n  wechat:\n  email:\nquiet_hours:\n");
  const Config d;
  EXPECT_THAT(c.channels.sms.providers, IsEmpty());
  EXPECT_EQ(c.channels.sms.circuit_failures, 5);
  EXPECT_EQ(c.channels.sms.circuit_open_s, 30);
  EXPECT_FALSE(c.channels.wechat.enabled);
  EXPECT_EQ(c.channels.wechat.kind, "official_account");
  EXPECT_EQ(c.channels.wechat.endpoint, "https://api.weixin.qq.com");
  EXPECT_EQ(c.channels.wechat.credentials_env, "SONGDA_WECHAT");
  EXPECT_FALSE(c.channels.email.enabled);
  EXPECT_EQ(c.channels.email.smtp_url, d.channels.email.smtp_url);
  EXPECT_EQ(c.channels.email.starttls, "required");
  EXPECT_FALSE(c.quiet_hours.enabled);
  EXPECT_EQ(c.quiet_hours.start, "22:00");
  EXPECT_EQ(c.quiet_hours.end, "08:00");
  EXPECT_EQ(c.quiet_hours.utc_offset_minutes, 480);
  EXPECT_EQ(c.quiet_hours.channels, (std::vector<std::string>{"sms"}));

  const Config provider_defaults = load_ok(aliyun_with());
  ASSERT_THAT(provider_defaults.channels.sms.providers, SizeIs(1));
  const SmsProviderConfig& p = provider_defaults.channels.sms.providers[0];
  EXPECT_EQ(p.priority, 1);
  EXPECT_EQ(p.weight, 100);
  EXPECT_EQ(p.region, "cn-hangzhou");
  EXPECT_EQ(p.concurrency, 4);
  EXPECT_DOUBLE_EQ(p.rate_per_sec, 50);
  EXPECT_EQ(p.timeout_ms, 5000);
  EXPECT_EQ(p.batch_max, 0);
  EXPECT_EQ(p.receipt_timeout_s, 600);
  EXPECT_THAT(p.templates, IsEmpty());
}

// ---- keys ---------------------------------------------------------------------------------------

TEST(ChannelsConfig, UnknownKeysSuggestTheRightOne) {
  expect_one("channels:\n  smss: {}\n", 2, 3,
             "unknown key 'smss' in channels; allowed: sms, wechat, email; did you mean 'sms'?");
  expect_one(aliyun_with("        sing_name: x\n"), 9, 9,
             "unknown key 'sing_name' in channels.sms.providers[0]; allowed: name, kind, endpoint, priority, weight, "
             "sign_name, region, sdk_app_id, templates, template_params, credentials_env, concurrency, rate_per_sec, "
             "timeout_ms, batch_max, receipt_timeout_s; did you mean 'sign_name'?");
  expect_one("channels:\n  email:\n    start_tls: none\n", 3, 5, "did you mean 'starttls'?");
  expect_one("quiet_hours: {enabled: true, stop: \"08:00\"}\n", 1, 30,
             "unknown key 'stop' in quiet_hours; allowed: enabled, start, end, utc_offset, channels");
  expect_one("channels:\n  sms:\n    circuit_failure: 3\n", 3, 5, "did you mean 'circuit_failures'?");
}

TEST(ChannelsConfig, DuplicateKeysInAProvider) {
  expect_one(aliyun_with("        kind: tencent\n"), 9, 9,
             "duplicate key 'kind' in channels.sms.providers[0] (first at line 5); keep one");
}

// ---- SMS providers ------------------------------------------------------------------------------

TEST(SmsProviders, NamesAreUnique) {
  expect_one(
      aliyun_with() +
          "      - {name: aliyun-main, kind: tencent, endpoint: \"https://sms.tencentcloudapi.com\", sign_name: 法院,"
          " sdk_app_id: \"1\", credentials_env: SONGDA_TENCENT}\n",
      9, 16,
      "channels.sms.providers[1].name: duplicate provider name 'aliyun-main' (first at line 4); provider names "
      "must be unique");
}

TEST(SmsProviders, NameIsAPlainIdentifier) {
  expect_one(
      "channels:\n  sms:\n    providers:\n      - {name: Aliyun Main, kind: aliyun, endpoint: "
      "\"https://dysmsapi.aliyuncs.com\", sign_name: 法院, credentials_env: SONGDA_ALIYUN}\n",
      4, 16, "channels.sms.providers[0].name: 'Aliyun Main' is not a provider name; names are [a-z0-9_.-]+");
}

TEST(SmsProviders, KindIsAliyunOrTencent) {
  const std::string yaml =
      "channels:\n  sms:\n    providers:\n      - {name: a, kind: aliyn, endpoint: \"https://x.example\", sign_name: "
      "法院,"
      " credentials_env: SONGDA_A}\n";
  expect_one(yaml, 4, 25,
             "channels.sms.providers[0].kind: unknown SMS provider kind 'aliyn'; allowed: aliyun, tencent; did you "
             "mean 'aliyun'?");
}

TEST(SmsProviders, EndpointIsAnHttpUrl) {
  const std::string base =
      "channels:\n  sms:\n    providers:\n      - {name: a, kind: aliyun, sign_name: 法院, "
      "credentials_env: SONGDA_A, endpoint: ";
  // The value starts at column 85 of line 4.
  expect_one(base + "dysmsapi.aliyuncs.com}\n", 4, 85,
             "channels.sms.providers[0].endpoint: expected an http:// or https:// URL such as "
             "https://dysmsapi.aliyuncs.com, got 'dysmsapi.aliyuncs.com'");
  expect_one(base + "\"ftp://dysmsapi.aliyuncs.com\"}\n", 4, 85, "expected an http:// or https:// URL");
  expect_one(base + "\"https://:99999\"}\n", 4, 85, "expected an http:// or https:// URL");
  expect_one(base + "\"https://key:sekrit@dysmsapi.aliyuncs.com\"}\n", 4, 85,
             "channels.sms.providers[0].endpoint: must not carry a user or password");
  EXPECT_EQ(load_ok(base + "\"http://[::1]:18080/sms\"}\n").channels.sms.providers[0].endpoint,
            "http://[::1]:18080/sms");
  // Plain http only to a simulator on loopback: elsewhere the signed requests and parties' numbers go in clear.
  expect_one(base + "\"http://dysmsapi.aliyuncs.com\"}\n", 4, 85,
             "channels.sms.providers[0].endpoint: http:// would carry the signed requests, access tokens, parties' "
             "numbers and messages to dysmsapi.aliyuncs.com in clear text; use https://");
  EXPECT_EQ(load_ok(base + "\"http://127.0.0.1:18080\"}\n").channels.sms.providers[0].endpoint,
            "http://127.0.0.1:18080");
}

TEST(SmsProviders, CredentialsEnvIsAnEnvironmentPrefix) {
  const std::string base =
      "channels:\n  sms:\n    providers:\n      - {name: a, kind: aliyun, endpoint: "
      "\"https://x.example\", sign_name: 法院, credentials_env: ";
  expect_one(base + "songda_aliyun}\n", 4, 96,
             "channels.sms.providers[0].credentials_env: 'songda_aliyun' is not an environment variable prefix "
             "(^[A-Z][A-Z0-9_]*$, e.g. SONGDA_ALIYUN); the keys are read from variables that start with it; did you "
             "mean 'SONGDA_ALIYUN'?");
  expect_one(base + "1ALIYUN}\n", 4, 96, "'1ALIYUN' is not an environment variable prefix");
  expect_one(base + "\"SONGDA ALIYUN\"}\n", 4, 96, "did you mean 'SONGDA_ALIYUN'?");
}

TEST(SmsProviders, NumbersAreInRange) {
  expect_one(aliyun_with("        priority: 0\n"), 9, 19,
             "channels.sms.providers[0].priority: 0 is out of range (allowed: 1..100 (1 = preferred))");
  expect_one(aliyun_with("        weight: -1\n"), 9, 17,
             "channels.sms.providers[0].weight: -1 is out of range (allowed: "
             "0..10000)");
  expect_one(aliyun_with("        weight: 10001\n"), 9, 17, "weight: 10001 is out of range");
  expect_one(aliyun_with("        concurrency: 0\n"), 9, 22,
             "channels.sms.providers[0].concurrency: 0 is out of range (allowed: 1..256 requests in flight)");
  expect_one(aliyun_with("        concurrency: 257\n"), 9, 22, "concurrency: 257 is out of range");
  expect_one(aliyun_with("        timeout_ms: 0\n"), 9, 21, "timeout_ms: 0 is out of range");
  expect_one(aliyun_with("        receipt_timeout_s: 300000\n"), 9, 28, "receipt_timeout_s: 300000 is out of range");
  expect_one("channels:\n  sms:\n    circuit_failures: 0\n", 3, 23,
             "channels.sms.circuit_failures: 0 is out of range (allowed: 1..1000 consecutive errors)");
  expect_one("channels:\n  sms:\n    circuit_open_s: many\n", 3, 21,
             "channels.sms.circuit_open_s: expected an integer, got 'many'");
  EXPECT_EQ(load_ok(aliyun_with("        weight: 0\n      - {name: b, kind: aliyun, endpoint: \"https://x.example\", "
                                "sign_name: 法院, credentials_env: SONGDA_B, priority: 100, weight: 10000}\n"))
                .channels.sms.providers[1]
                .weight,
            10000);
}

TEST(SmsProviders, RateIsAPositiveNumber) {
  expect_one(aliyun_with("        rate_per_sec: 0\n"), 9, 23,
             "channels.sms.providers[0].rate_per_sec: 0 is out of range (allowed: more than 0, at most 100000 per "
             "second)");
  expect_one(aliyun_with("        rate_per_sec: -5\n"), 9, 23, "rate_per_sec: -5 is out of range");
  expect_one(aliyun_with("        rate_per_sec: fast\n"), 9, 23,
             "channels.sms.providers[0].rate_per_sec: expected a number of requests per second (e.g. 50 or 0.5), got "
             "'fast'");
  expect_one(aliyun_with("        rate_per_sec: .nan\n"), 9, 23, "expected a number of requests per second");
  EXPECT_DOUBLE_EQ(load_ok(aliyun_with("        rate_per_sec: 2.5\n")).channels.sms.providers[0].rate_per_sec, 2.5);
}

TEST(SmsProviders, BatchMaxFollowsTheProvidersLimit) {
  expect_one(aliyun_with("        batch_max: 1001\n"), 9, 20,
             "channels.sms.providers[0].batch_max: 1001 is out of range (allowed: 0..1000 numbers per request: "
             "Aliyun takes at most 1000; 0 = that maximum)");
  expect_one(tencent_with("        batch_max: 201\n"), 10, 20,
             "channels.sms.providers[0].batch_max: 201 is out of range (allowed: 0..200 numbers per request: Tencent "
             "takes at most 200; 0 = that maximum)");
  expect_one(tencent_with("        batch_max: -1\n"), 10, 20, "batch_max: -1 is out of range (allowed: 0..200");
  EXPECT_EQ(load_ok(aliyun_with("        batch_max: 1000\n")).channels.sms.providers[0].batch_max, 1000);
  EXPECT_EQ(load_ok(tencent_with("        batch_max: 200\n")).channels.sms.providers[0].batch_max, 200);
  EXPECT_EQ(load_ok(tencent_with("        batch_max: 0\n")).channels.sms.providers[0].batch_max, 0);
}

TEST(SmsProviders, BatchMaxIsCheckedWhereverTheKindIsWritten) {
  // batch_max before kind: still judged by Tencent's limit.
  expect_one(
      "channels:\n  sms:\n    providers:\n      - {batch_max: 500, name: t, kind: tencent, endpoint: "
      "\"https://sms.tencentcloudapi.com\", sign_name: 法院, sdk_app_id: \"1400000000\", credentials_env: "
      "SONGDA_T}\n",
      4, 21, "batch_max: 500 is out of range (allowed: 0..200");
}

TEST(SmsProviders, RequiredFieldsAreNamed) {
  const auto issues = load_bad("channels:\n  sms:\n    providers:\n      - {priority: 1}\n");
  ASSERT_THAT(issues, SizeIs(5)) << dump(issues);
  for (const auto& i : issues) {
    EXPECT_EQ(i.line, 4) << i.to_string();
    EXPECT_EQ(i.column, 9) << i.to_string();
  }
  EXPECT_THAT(issues[0].message, HasSubstr("channels.sms.providers[0]: missing 'name'"));
  EXPECT_THAT(issues[1].message, HasSubstr("missing 'kind' (aliyun or tencent)"));
  EXPECT_THAT(issues[2].message, HasSubstr("missing 'endpoint'"));
  EXPECT_THAT(issues[3].message, HasSubstr("missing 'sign_name' (the approved SMS signature"));
  EXPECT_THAT(issues[4].message, HasSubstr("missing 'credentials_env'"));
}

TEST(SmsProviders, TencentNeedsItsSdkAppIdAndAliyunDoesNotTakeOne) {
  expect_one(
      "channels:\n  sms:\n    providers:\n      - {name: t, kind: tencent, endpoint: \"https://x.example\", "
      "sign_name: 法院, credentials_env: SONGDA_T}\n",
      4, 9, "channels.sms.providers[0]: missing 'sdk_app_id' (kind tencent needs its SmsSdkAppId");
  expect_one(aliyun_with("        sdk_app_id: \"1400000000\"\n"), 9, 9,
             "channels.sms.providers[0].sdk_app_id: only used by kind tencent; remove it");
  expect_one(tencent_with("        region: ap_guangzhou\n"), 10, 17, "'ap_guangzhou' is not a region id");
  expect_one(
      "channels:\n  sms:\n    providers:\n      - {name: t, kind: tencent, endpoint: \"https://x.example\", "
      "sign_name: 法院, credentials_env: SONGDA_T, sdk_app_id: app-1}\n",
      4, 119, "channels.sms.providers[0].sdk_app_id: 'app-1' is not a Tencent SmsSdkAppId (digits");
}

TEST(SmsProviders, TencentRegionIsNotAnAliyunOne) {
  expect_one(tencent_with("        region: cn-hangzhou\n"), 10, 17,
             "channels.sms.providers[0].region: 'cn-hangzhou' is an Aliyun region; Tencent SMS regions look like "
             "ap-guangzhou");
  EXPECT_EQ(load_ok(tencent_with("        region: ap-nanjing\n")).channels.sms.providers[0].region, "ap-nanjing");
}

TEST(SmsProviders, TemplateParamsAreTencentsOrderedVariables) {
  const std::string codes = "        templates: {summons: \"449739\"}\n";  // line 10
  const Config c =
      load_ok(tencent_with(codes + "        template_params: {summons: [case_number, hearing_time]}\n") + kTemplates);
  EXPECT_EQ(c.channels.sms.providers[0].template_params.at("summons"),
            (std::vector<std::string>{"case_number", "hearing_time"}));
  expect_one(tencent_with(codes + "        template_params: {summons: [case_number, Hearing-Time]}\n") + kTemplates, 11,
             50,
             "channels.sms.providers[0].template_params.summons: 'Hearing-Time' is not a variable name; write the "
             "placeholder names ([a-z0-9_]+) whose values fill {1}, {2}, ... in order");
  expect_one(tencent_with(codes + "        template_params: {judgment: [case_number]}\n") + kTemplates, 11, 27,
             "channels.sms.providers[0].template_params.judgment: provider tencent-backup has no template code for "
             "'judgment' under templates");
  expect_one(tencent_with(codes + "        template_params: {sumons: [case_number]}\n") + kTemplates, 11, 27,
             "channels.sms.providers[0].template_params.sumons: no template named 'sumons'; did you mean 'summons'?");
  expect_one(tencent_with(codes + "        template_params: [case_number]\n") + kTemplates, 11, 26,
             "channels.sms.providers[0].template_params: expected a mapping of songda template name: [variable, ...]");
  expect_one(aliyun_with("        template_params: {summons: [case_number]}\n") + kTemplates, 9, 9,
             "channels.sms.providers[0].template_params: only used by kind tencent; Aliyun's TemplateParam sends every "
             "variable by name");
}

TEST(SmsProviders, SignNameIsWrittenWithoutBrackets) {
  expect_one(
      "channels:\n  sms:\n    providers:\n      - name: a\n        kind: aliyun\n        endpoint: "
      "\"https://x.example\"\n        sign_name: 【商丘中院】\n        credentials_env: SONGDA_A\n",
      7, 20, "channels.sms.providers[0].sign_name: write the signature without 【】");
}

TEST(SmsProviders, TemplateCodesFollowTheProvidersFormat) {
  expect_one(aliyun_with("        templates: {summons: summons}\n") + kTemplates, 9, 30,
             "channels.sms.providers[0].templates.summons: 'summons' is not an Aliyun template code (SMS_ and digits, "
             "e.g. SMS_123456)");
  expect_one(tencent_with("        templates: {summons: SMS_123456}\n") + kTemplates, 10, 30,
             "channels.sms.providers[0].templates.summons: 'SMS_123456' is not a Tencent template ID (digits");
  // A missing value in a flow mapping is pointed at where it should be written.
  expect_one(aliyun_with("        templates: {summons: }\n") + kTemplates, 9, 30,
             "channels.sms.providers[0].templates.summons: expected a string, got nothing");
  expect_one(aliyun_with("        templates: [SMS_1]\n") + kTemplates, 9, 20,
             "channels.sms.providers[0].templates: expected a mapping of songda template name: provider template code");
  expect_one(aliyun_with("        templates: {summons: SMS_1, summons: SMS_2}\n") + kTemplates, 9, 37,
             "duplicate key 'summons' in channels.sms.providers[0].templates (first at line 9)");
}

TEST(SmsProviders, AFaultyCodeIsReportedOnce) {
  // The route sends summons by SMS: a bad code, or templates that are not a mapping, is the one
  // problem; the provider is not also told it has no code for summons.
  const std::string route = "routes:\n  - {event: summons.issued, channels: [sms], template: summons}\n";
  expect_one(aliyun_with("        templates: {summons: 123456}\n") + kTemplates + route, 9, 30,
             "'123456' is not an Aliyun template code");
  expect_one(aliyun_with("        templates: SMS_1\n") + kTemplates + route, 9, 20,
             "channels.sms.providers[0].templates: expected a mapping");
  expect_one(wechat_with("    templates: [summons]\n") + kTemplates + route.substr(0, 9) +
                 "  - {event: summons.issued, channels: [wechat], template: summons}\n",
             6, 16,
             "channels.wechat.templates: expected a mapping of songda template name: {template_id, page, fields}");
}

TEST(SmsProviders, TemplateCodesNameExistingTemplates) {
  expect_one(aliyun_with("        templates: {sumons: SMS_1}\n") + kTemplates, 9, 21,
             "channels.sms.providers[0].templates.sumons: no template named 'sumons'; did you mean 'summons'?");
  expect_one(aliyun_with("        templates: {refund: SMS_1}\n") + kTemplates, 9, 21,
             "no template named 'refund'; define it under templates or remove this entry");
}

TEST(SmsProviders, SomeProviderMustGetTraffic) {
  expect_one(aliyun_with("        weight: 0\n"), 3, 5,
             "channels.sms.providers: every provider has weight 0, so none would get any traffic");
}

TEST(SmsProviders, ProvidersMustBeAListOfMappings) {
  expect_one("channels:\n  sms:\n    providers: {name: a}\n", 3, 16,
             "channels.sms.providers: expected a list of {name, kind, endpoint, sign_name, credentials_env, templates, "
             "...}, got a mapping");
  expect_one("channels:\n  sms:\n    providers:\n      - aliyun\n", 4, 9,
             "channels.sms.providers[0]: expected a mapping {name, kind, endpoint, ...}, got 'aliyun'");
}

// ---- routes and channels ------------------------------------------------------------------------

TEST(RouteChannels, EveryTemplateSentBySmsHasACodeInEveryProvider) {
  const std::string yaml =
      aliyun_with("        templates: {judgment: SMS_1}\n") +  // line 9
      "      - {name: tencent-backup, kind: tencent, endpoint: \"https://sms.tencentcloudapi.com\", sign_name: 法院, "
      "sdk_app_id: \"1400000000\", credentials_env: SONGDA_TENCENT, templates: {summons: \"1\", judgment: \"2\"}}\n" +
      kTemplates +  // lines 11-13
      "routes:\n"
      "  - {event: summons.issued, channels: [inapp, sms], template: summons}\n";
  expect_one(yaml, 9, 9,
             "channels.sms.providers[0].templates: provider aliyun-main has no template code for 'summons', which "
             "route summons.issued sends by sms");
}

TEST(RouteChannels, AProviderWithoutTemplatesIsPointedAtAndEveryRouteIsNamed) {
  const std::string yaml = aliyun_with() + kTemplates +  // templates on lines 9-11
                           "routes:\n"
                           "  - {event: summons.issued, channels: [sms], template: summons}\n"
                           "  - {event: hearing.scheduled, channels: [sms], template: summons}\n"
                           "  - {event: judgment.issued, channels: [inapp], template: judgment}\n";
  expect_one(yaml, 4, 9,
             "channels.sms.providers[0].templates: provider aliyun-main has no template code for 'summons', which "
             "routes summons.issued, hearing.scheduled send by sms");
}

TEST(RouteChannels, ARouteOnAnUnconfiguredChannelIsAnError) {
  const auto issues =
      load_bad(std::string(kTemplates) +
               "routes:\n"
               "  - {event: summons.issued, channels: [inapp, sms, wechat, email], template: summons}\n");
  ASSERT_THAT(issues, SizeIs(3)) << dump(issues);
  expect_issue(issues[0], 5, 47,
               "routes[0].channels: route summons.issued uses sms, but channels.sms has no providers; add one under "
               "channels.sms.providers or take sms off this route");
  expect_issue(issues[1], 5, 52,
               "routes[0].channels: route summons.issued uses wechat, but channels.wechat is not enabled; set "
               "channels.wechat.enabled: true");
  expect_issue(issues[2], 5, 60,
               "routes[0].channels: route summons.issued uses email, but channels.email is not enabled; set "
               "channels.email.enabled: true");
}

TEST(RouteChannels, DisabledChannelsAreStillChecked) {
  // wechat configured but not enabled: its templates are still read (a typo is a typo) ...
  expect_one(
      "channels:\n  wechat:\n    enabled: false\n    templates:\n      summons: {template_id: T1, fields: "
      "{thing1: \"{{court_name}}\", Thing2: x}}\n" +
          std::string(kTemplates),
      5, 69, "channels.wechat.templates.summons.fields.Thing2: not a WeChat data key");
  // ... and a route may not use it.
  expect_one("channels:\n  wechat: {enabled: false, app_id: wx0123456789abcdef}\n" + std::string(kTemplates) +
                 "routes:\n  - {event: summons.issued, channels: [wechat], template: summons}\n",
             7, 40, "route summons.issued uses wechat, but channels.wechat is not enabled");
}

TEST(RouteChannels, EveryTemplateSentByWechatHasAWechatTemplate) {
  const std::string yaml = wechat_with(
                               "    templates:\n"  // line 6
                               "      judgment: {template_id: T1, fields: {thing1: \"{{document_title}}\"}}\n") +
                           kTemplates +  // lines 8-10
                           "routes:\n"
                           "  - {event: summons.issued, channels: [wechat], template: summons}\n"
                           "  - {event: judgment.issued, channels: [wechat], template: judgment}\n";
  expect_one(yaml, 6, 5,
             "channels.wechat.templates: no WeChat template for 'summons', which route summons.issued sends by wechat; "
             "add channels.wechat.templates.summons");
  // Without a templates key the message points at channels.wechat.
  expect_one(
      wechat_with("") + kTemplates + "routes:\n  - {event: summons.issued, channels: [wechat], template: summons}\n", 2,
      3, "no WeChat template for 'summons'");
}

TEST(RouteChannels, TemplatesMissingAltogetherAreReportedOnce) {
  // The route's template does not exist: that is the one problem, not also a missing SMS code.
  expect_one(aliyun_with("        templates: {summons: SMS_1}\n") + kTemplates +
                 "routes:\n  - {event: summons.issued, channels: [sms], template: sumons}\n",
             14, 56, "routes[0].template: no template named 'sumons'; did you mean 'summons'?");
}

// ---- WeChat -------------------------------------------------------------------------------------

TEST(Wechat, AppIdIsRequiredWhenEnabledAndWellFormed) {
  expect_one("channels:\n  wechat:\n    enabled: true\n", 2, 3,
             "channels.wechat: enabled, but app_id is missing (the account's AppID, e.g. wx0123456789abcdef)");
  expect_one("channels:\n  wechat:\n    app_id: wx12345\n", 3, 13,
             "channels.wechat.app_id: 'wx12345' is not a WeChat AppID (wx and 16 hexadecimal digits");
  expect_one("channels:\n  wechat:\n    app_id: gh_0123456789abcd\n", 3, 13, "is not a WeChat AppID");
}

TEST(Wechat, KindAndEndpointAreChecked) {
  expect_one("channels:\n  wechat:\n    kind: miniprogram\n", 3, 11,
             "channels.wechat.kind: unknown WeChat kind 'miniprogram'; allowed: official_account, mini_program; did "
             "you mean 'mini_program'?");
  expect_one("channels:\n  wechat:\n    endpoint: api.weixin.qq.com\n", 3, 15,
             "channels.wechat.endpoint: expected an http:// or https:// URL such as https://api.weixin.qq.com");
  expect_one("channels:\n  wechat:\n    credentials_env: wechat\n", 3, 22,
             "channels.wechat.credentials_env: 'wechat' is not an environment variable prefix");
  expect_one("channels:\n  wechat:\n    concurrency: 0\n", 3, 18, "channels.wechat.concurrency: 0 is out of range");
  expect_one("channels:\n  wechat:\n    rate_per_sec: 0\n", 3, 19, "channels.wechat.rate_per_sec: 0 is out of range");
  expect_one("channels:\n  wechat:\n    enabled: sometimes\n", 3, 14,
             "channels.wechat.enabled: expected true or false, got 'sometimes'");
}

TEST(Wechat, TemplatesNeedAnIdAndFields) {
  const auto issues = load_bad(wechat_with("    templates:\n      summons: {page: pages/a/index}\n") + kTemplates);
  ASSERT_THAT(issues, SizeIs(2)) << dump(issues);
  expect_issue(issues[0], 7, 7, "channels.wechat.templates.summons: missing 'template_id'");
  expect_issue(issues[1], 7, 7, "channels.wechat.templates.summons: missing 'fields'");
  expect_one(wechat_with("    templates:\n      summons: {template_id: T1, fields: {}}\n") + kTemplates, 7, 42,
             "channels.wechat.templates.summons.fields: a WeChat template needs at least one field");
  expect_one(wechat_with("    templates:\n      summons: {template_id: \"T 1\", fields: {thing1: x}}\n") + kTemplates,
             7, 30, "channels.wechat.templates.summons.template_id: 'T 1' is not a WeChat template id");
  expect_one(
      wechat_with("    templates:\n      summons: {template_id: T1, page: \"https://x/y\", fields: {thing1: x}}\n") +
          kTemplates,
      7, 40, "channels.wechat.templates.summons.page: expected a mini-program page path");
  expect_one(
      wechat_with("    templates:\n      summons: {template_id: T1, fields: {thing1: x}, colour: red}\n") + kTemplates,
      7, 55, "unknown key 'colour' in channels.wechat.templates.summons; allowed: template_id, page, fields");
  expect_one(wechat_with("    templates:\n      sumons: {template_id: T1, fields: {thing1: x}}\n") + kTemplates, 7, 7,
             "channels.wechat.templates.sumons: no template named 'sumons'; did you mean 'summons'?");
}

TEST(Wechat, FieldKeysAreWechatDataKeys) {
  const auto issues = load_bad(wechat_with("    templates:\n"
                                           "      summons:\n"
                                           "        template_id: T1\n"
                                           "        fields:\n"
                                           "          thing: a\n"
                                           "          Thing2: b\n"
                                           "          3thing: c\n"
                                           "          character_string4: d\n") +
                               kTemplates);
  ASSERT_THAT(issues, SizeIs(3)) << dump(issues);
  expect_issue(issues[0], 10, 11,
               "channels.wechat.templates.summons.fields.thing: not a WeChat data key; keys are the field's type and "
               "number as the template shows them, e.g. thing1, time3, character_string2");
  expect_issue(issues[1], 11, 11, "fields.Thing2: not a WeChat data key");
  expect_issue(issues[2], 12, 11, "fields.3thing: not a WeChat data key");
}

TEST(Wechat, FixedFieldTextIsCheckedByWechatsRule) {
  const std::string head = "    templates:\n      summons:\n        template_id: T1\n        fields:\n";
  // 21 characters, no placeholder: WeChat's 20-character rule, from check_template_field.
  expect_one(wechat_with(head + "          thing1: 本案开庭时间已经变更请及时查看最新的开庭通知\n") + kTemplates, 10,
             19,
             "channels.wechat.templates.summons.fields.thing1: template field \"thing1\": 22 characters, at most 20 "
             "allowed");
  expect_one(wechat_with(head + "          thing1: \"开庭\\n通知\"\n") + kTemplates, 10, 19,
             "template field \"thing1\": contains a line break");
  EXPECT_EQ(load_ok(wechat_with(head + "          thing1: 开庭已取消，新安排另行通知\n") + kTemplates)
                .channels.wechat.templates.at("summons")
                .fields.at("thing1"),
            "开庭已取消，新安排另行通知");
}

TEST(Wechat, TextAroundPlaceholdersIsCheckedAndTheRestAtSendTime) {
  const std::string head = "    templates:\n      summons:\n        template_id: T1\n        fields:\n";
  expect_one(
      wechat_with(head + "          thing1: \"{{court_name}}定于开庭时间前将本案全部诉讼材料送达给您请查收\"\n") +
          kTemplates,
      10, 19,
      "channels.wechat.templates.summons.fields.thing1: the text around the placeholders alone breaks the rule: "
      "template field \"thing1\": 23 characters, at most 20 allowed");
  expect_one(
      wechat_with(head + "          thing1: \"{{court_name}}定于开庭时间前将本案全部诉讼材料送达给您请查收\"\n") +
          kTemplates,
      10, 19, "(the value with the placeholders filled in is checked at send time)");
  expect_one(
      wechat_with(head + "          thing1: \"{{court_name}}\\n传票\"\n") + kTemplates, 10, 19,
      "the text around the placeholders alone breaks the rule: template field \"thing1\": contains a line break");
  // A short literal next to a placeholder is fine here; the filled-in value is the sender's to check.
  const Config c = load_ok(wechat_with(head + "          amount2: \"{{amount}}元\"\n") + kTemplates);
  EXPECT_EQ(c.channels.wechat.templates.at("summons").fields.at("amount2"), "{{amount}}元");
}

TEST(Wechat, PlaceholdersInFieldsAreChecked) {
  const std::string head = "    templates:\n      summons:\n        template_id: T1\n        fields:\n";
  expect_one(wechat_with(head + "          thing1: \"法院{{Court Name}}\"\n") + kTemplates, 10, 22,
             "channels.wechat.templates.summons.fields.thing1: placeholder '{{Court Name}}' has an invalid name");
  expect_one(wechat_with(head + "          thing1: {{court_name}}\n") + kTemplates, 10, 19,
             "fields.thing1: expected a string, got a mapping (text that starts with '{', '[' or contains ': ' must be "
             "in quotes)");
}

TEST(Wechat, MiniProgramFieldsFollowTheSubscribeMessageLimits) {
  const std::string head = "    templates:\n      summons:\n        template_id: T1\n        fields:\n";
  // character_string allows 32 characters in a subscribe message (20 in a template message).
  const std::string long_code = "          character_string1: ABCDEFGHIJKLMNOPQRSTUVWXYZ\n";  // 26
  EXPECT_THAT(load_ok(wechat_with(head + long_code, "mini_program") + kTemplates).channels.wechat.templates, SizeIs(1));
  expect_one(wechat_with(head + long_code, "official_account") + kTemplates, 10, 30,
             "template field \"character_string1\": 26 characters, at most 20 allowed");
  expect_one(wechat_with(head + "          phrase2: 已经被取消了\n", "mini_program") + kTemplates, 10, 20,
             "subscribe field \"phrase2\": 6 characters, at most 5 allowed");
}

// ---- email --------------------------------------------------------------------------------------

TEST(Email, StarttlsNoneIsOnlyForALoopbackServer) {
  expect_one("channels:\n  email:\n    smtp_url: \"smtp://mail.court.example:587\"\n    starttls: none\n", 4, 15,
             "channels.email.starttls: 'none' would send mail to mail.court.example in clear text, so parties' "
             "personal data and the SMTP password could be read on the way; it is only allowed for a test server on "
             "loopback (127.0.0.1, localhost, ::1); use required, or smtps:// on port 465");
  // Written in the other order, the same.
  expect_one("channels:\n  email: {starttls: none, smtp_url: \"smtp://10.0.0.5:25\"}\n", 2, 21,
             "'none' would send mail to 10.0.0.5 in clear text");
  // 'optional' too: whoever can remove the server's STARTTLS offer reads the mail.
  expect_one("channels:\n  email: {enabled: true, starttls: optional, smtp_url: \"smtp://mail.court.example:587\"}\n",
             2, 36,
             "channels.email.starttls: 'optional' sends mail to mail.court.example in clear text whenever STARTTLS "
             "is not offered");
  EXPECT_EQ(load_ok("channels:\n  email: {starttls: optional, smtp_url: \"smtps://mail.court.example:465\"}\n")
                .channels.email.starttls,
            "optional");
  // A disabled channel may keep an old setting: it sends nothing.
  EXPECT_EQ(load_ok("channels:\n  email: {starttls: optional, smtp_url: \"smtp://mail.court.example:587\"}\n")
                .channels.email.starttls,
            "optional");
  for (const char* url : {"smtp://127.0.0.1:2525", "smtp://localhost:25", "smtp://[::1]:2525"}) {
    const Config c = load_ok(std::string("channels:\n  email: {starttls: none, smtp_url: \"") + url + "\"}\n");
    EXPECT_EQ(c.channels.email.starttls, "none") << url;
    EXPECT_EQ(c.channels.email.smtp_url, url);
  }
  expect_one("channels:\n  email: {starttls: off}\n", 2, 21,
             "channels.email.starttls: unknown starttls mode 'off'; allowed: required, optional, none");
}

TEST(Email, SmtpUrlIsChecked) {
  expect_one("channels:\n  email:\n    smtp_url: \"mail.court.example:587\"\n", 3, 15,
             "channels.email.smtp_url: expected smtp://host:587 (STARTTLS) or smtps://host:465, got "
             "'mail.court.example:587'");
  expect_one("channels:\n  email:\n    smtp_url: \"https://mail.court.example\"\n", 3, 15, "expected smtp://host:587");
  expect_one("channels:\n  email:\n    smtp_url: \"smtp://mail.court.example:0\"\n", 3, 15, "expected smtp://host:587");
  expect_one("channels:\n  email:\n    smtp_url: \"smtp://songda:hunter2@mail.court.example:587\"\n", 3, 15,
             "channels.email.smtp_url: contains a password; secrets do not belong in YAML; set SONGDA_SMTP_USER and "
             "SONGDA_SMTP_PASSWORD in the environment");
  expect_one(
      "channels:\n  email:\n    credentials_env: SONGDA_MAIL\n    smtp_url: \"smtp://songda@mail.court.example\"\n", 4,
      15, "channels.email.smtp_url: the user name belongs in SONGDA_MAIL_USER in the environment");
}

TEST(Email, SenderIsChecked) {
  expect_one("channels:\n  email:\n    from: \"人民法院 <noreply@court.example>\"\n", 3, 11,
             "channels.email.from: '人民法院 <noreply@court.example>' is not an email address; write the bare address "
             "(e.g. noreply@court.example) and the display name in from_name");
  expect_one("channels:\n  email:\n    from: noreply\n", 3, 11, "is not an email address");
  expect_one("channels:\n  email:\n    from_name: \"人民法院\\r\\nBcc: x@y.example\"\n", 3, 16,
             "channels.email.from_name: must be one line without control characters");
  expect_one("channels:\n  email:\n    concurrency: 300\n", 3, 18, "channels.email.concurrency: 300 is out of range");
  expect_one("channels:\n  email:\n    timeout_ms: soon\n", 3, 17, "channels.email.timeout_ms: expected an integer");
  EXPECT_EQ(load_ok("channels:\n  email:\n    from_name: \"\"\n").channels.email.from_name, "");
}

// ---- quiet hours --------------------------------------------------------------------------------

TEST(QuietHours, TimesAreHoursAndMinutes) {
  expect_one("quiet_hours:\n  start: \"25:00\"\n", 2, 10,
             "quiet_hours.start: expected a time of day HH:MM (00:00..23:59, court's local time), got '25:00'");
  expect_one("quiet_hours:\n  end: 10pm\n", 2, 8, "quiet_hours.end: expected a time of day HH:MM");
  expect_one("quiet_hours:\n  end: \"08:5\"\n", 2, 8, "quiet_hours.end: expected a time of day HH:MM");
  expect_one("quiet_hours:\n  start: \"08:00\"\n", 2, 10,
             "quiet_hours: start and end are both 08:00, which leaves no quiet time");
  const Config c = load_ok("quiet_hours: {start: \"0:00\", end: \"23:59\"}\n");
  EXPECT_EQ(c.quiet_hours.start, "00:00");
  EXPECT_EQ(c.quiet_hours.end, "23:59");
}

TEST(QuietHours, UtcOffsetIsSignedHoursAndMinutes) {
  expect_one("quiet_hours:\n  utc_offset: 8\n", 2, 15,
             "quiet_hours.utc_offset: expected ±HH:MM between -12:00 and +14:00 (e.g. \"+08:00\" for China), got '8'");
  expect_one("quiet_hours:\n  utc_offset: \"+8:00\"\n", 2, 15, "expected ±HH:MM");
  expect_one("quiet_hours:\n  utc_offset: \"+15:00\"\n", 2, 15, "expected ±HH:MM between -12:00 and +14:00");
  expect_one("quiet_hours:\n  utc_offset: \"+08:60\"\n", 2, 15, "expected ±HH:MM");
  EXPECT_EQ(load_ok("quiet_hours: {utc_offset: \"-05:30\"}\n").quiet_hours.utc_offset_minutes, -330);
  EXPECT_EQ(load_ok("quiet_hours: {utc_offset: \"+00:00\"}\n").quiet_hours.utc_offset_minutes, 0);
  EXPECT_EQ(load_ok("quiet_hours: {utc_offset: \"+14:00\"}\n").quiet_hours.utc_offset_minutes, 14 * 60);
}

TEST(QuietHours, ChannelsAreKnownAndListedOnce) {
  expect_one("quiet_hours:\n  channels: [sms, wehcat]\n", 2, 19,
             "quiet_hours.channels: unknown channel 'wehcat'; allowed: inapp, sms, wechat, email; did you mean "
             "'wechat'?");
  expect_one("quiet_hours:\n  channels: [sms, sms]\n", 2, 19, "quiet_hours.channels: channel 'sms' is listed twice");
  expect_one("quiet_hours:\n  enabled: true\n  channels: []\n", 3, 13,
             "quiet_hours.channels: enabled, but no channel keeps quiet");
  EXPECT_THAT(load_ok("quiet_hours:\n  enabled: false\n  channels: []\n").quiet_hours.channels, IsEmpty());
}

// ---- fallback -----------------------------------------------------------------------------------

// A route on inapp and sms (line 6) with the fallback a test writes on line 7, from column 7.
std::string route_with_fallback(const std::string& fallback_item) {
  return aliyun_with("        templates: {summons: SMS_1}\n") +  // lines 1-9
         kTemplates +                                            // lines 10-12
         "routes:\n"
         "  - event: summons.issued\n"
         "    channels: [inapp, sms]\n"
         "    template: summons\n"
         "    fallback:\n"
         "      - " +
         fallback_item + "\n";
}

TEST(Fallback, DurationsTakeUnits) {
  for (const auto& [text, seconds] : std::vector<std::pair<std::string, int>>{
           {"30s", 30}, {"10m", 600}, {"24h", 86400}, {"2d", 172800}, {"45", 45}, {"\"90\"", 90}, {"30d", 2592000}}) {
    const Config c = load_ok(route_with_fallback("{from: inapp, to: sms, unless: READ, after: " + text + "}"));
    ASSERT_THAT(c.routes, SizeIs(1));
    ASSERT_THAT(c.routes[0].fallback, SizeIs(1)) << text;
    EXPECT_EQ(c.routes[0].fallback[0].after_s, seconds) << text;
  }
  const Config c = load_ok(route_with_fallback("{from: inapp, to: sms, unless: READ}"));
  EXPECT_EQ(c.routes[0].fallback[0].after_s, 600);  // default
  EXPECT_EQ(c.routes[0].fallback[0].line, 18);
  EXPECT_EQ(c.routes[0].fallback[0].column, 9);
}

TEST(Fallback, BadDurationsAreRefused) {
  expect_one(route_with_fallback("{from: inapp, to: sms, unless: READ, after: 10 minutes}"), 18, 53,
             "routes[0].fallback[0].after: expected a duration such as 30s, 10m, 24h or a number of seconds, got '10 "
             "minutes'");
  expect_one(route_with_fallback("{from: inapp, to: sms, unless: READ, after: 0}"), 18, 53,
             "routes[0].fallback[0].after: 0 is out of range (allowed: 1s..30d)");
  expect_one(route_with_fallback("{from: inapp, to: sms, unless: READ, after: 31d}"), 18, 53,
             "after: 31d is out of range (allowed: 1s..30d)");
  expect_one(route_with_fallback("{from: inapp, to: sms, unless: READ, after: -5m}"), 18, 53, "expected a duration");
}

TEST(Fallback, UnlessIsAReceiptState) {
  expect_one(route_with_fallback("{from: inapp, to: sms, unless: delivered}"), 18, 40,
             "routes[0].fallback[0].unless: unknown receipt state 'delivered'; allowed: DELIVERED, READ, ACKNOWLEDGED; "
             "did you mean 'DELIVERED'?");
  expect_one(route_with_fallback("{from: inapp, to: sms, unless: OPENED}"), 18, 40, "unknown receipt state 'OPENED'");
  for (const char* state : {"DELIVERED", "READ", "ACKNOWLEDGED"}) {
    const Config c = load_ok(route_with_fallback(std::string("{from: inapp, to: sms, unless: ") + state + "}"));
    EXPECT_EQ(c.routes[0].fallback[0].unless, state);
  }
}

TEST(Fallback, ChannelsAreTwoDifferentChannelsOfTheRoute) {
  expect_one(route_with_fallback("{from: wechat, to: sms, unless: DELIVERED}"), 18, 16,
             "routes[0].fallback[0].from: 'wechat' is not one of this route's channels (inapp, sms); a fallback moves "
             "between the route's own channels");
  expect_one(route_with_fallback("{from: inapp, to: email, unless: READ}"), 18, 27,
             "routes[0].fallback[0].to: 'email' is not one of this route's channels (inapp, sms)");
  expect_one(route_with_fallback("{from: sms, to: sms, unless: DELIVERED}"), 18, 25,
             "routes[0].fallback[0].to: same channel as from ('sms'); a fallback sends on another channel");
  expect_one(route_with_fallback("{from: inapp, to: pigeon, unless: READ}"), 18, 27,
             "routes[0].fallback[0].to: unknown channel 'pigeon'; allowed: inapp, sms, wechat, email");
}

TEST(Fallback, RequiredKeysDuplicatesAndShape) {
  const auto issues = load_bad(route_with_fallback("{after: 10m}"));
  ASSERT_THAT(issues, SizeIs(3)) << dump(issues);
  expect_issue(issues[0], 18, 9, "routes[0].fallback[0]: missing 'from' (the channel whose receipt is awaited)");
  expect_issue(issues[1], 18, 9, "routes[0].fallback[0]: missing 'to'");
  expect_issue(issues[2], 18, 9, "routes[0].fallback[0]: missing 'unless' (DELIVERED, READ, ACKNOWLEDGED)");

  expect_one(route_with_fallback("{from: inapp, to: sms, unless: READ}\n      - {from: inapp, to: sms, unless: "
                                 "DELIVERED, after: 1h}"),
             19, 9, "routes[0].fallback[1]: inapp -> sms is already a fallback (line 18); keep one");
  expect_one(route_with_fallback("{from: inapp, to: sms, unless: READ, afer: 1h}"), 18, 46,
             "unknown key 'afer' in routes[0].fallback[0]; allowed: from, to, unless, after; did you mean 'after'?");
  expect_one(route_with_fallback("inapp -> sms"), 18, 9,
             "routes[0].fallback[0]: expected a mapping {from, to, unless, after}");
  expect_one(std::string(kTemplates) +
                 "routes:\n  - {event: summons.issued, channels: [inapp], template: summons, "
                 "fallback: {from: inapp}}\n",
             5, 77, "routes[0].fallback: expected a list of {from, to, unless, after}, got a mapping");
}

TEST(Fallback, WrittenBeforeTheChannelsStillWorks) {
  const Config c = load_ok(aliyun_with("        templates: {summons: SMS_1}\n") + kTemplates +
                           "routes:\n  - {fallback: [{from: inapp, to: sms, unless: READ, after: 1h}], event: "
                           "summons.issued, channels: [inapp, sms], template: summons}\n");
  ASSERT_THAT(c.routes[0].fallback, SizeIs(1));
  EXPECT_EQ(c.routes[0].fallback[0].after_s, 3600);
}

// ---- secrets ------------------------------------------------------------------------------------

TEST(ChannelSecrets, AreRefusedAndPointAtTheRightVariables) {
  const auto issues = load_bad(
      "channels:\n"
      "  sms:\n"
      "    providers:\n"
      "      - {name: a, kind: aliyun, endpoint: \"https://x.example\", sign_name: 法院, credentials_env: "
      "SONGDA_ALIYUN, access_key_secret: s}\n"
      "      - {name: t, kind: tencent, endpoint: \"https://x.example\", sign_name: 法院, sdk_app_id: \"1\", "
      "credentials_env: SONGDA_TX, secret_key: s}\n"
      "  wechat:\n"
      "    app_secret: s\n"
      "    templates:\n"
      "      summons: {template_id: T1, fields: {thing1: x}, token: t}\n"
      "  email:\n"
      "    credentials_env: SONGDA_MAIL\n"
      "    password: s\n"
      "  api_key: k\n" +
      std::string(kTemplates));
  ASSERT_THAT(issues, SizeIs(6)) << dump(issues);
  expect_issue(issues[0], 4, 111,
               "channels.sms.providers[0].access_key_secret: secrets do not belong in YAML; set "
               "SONGDA_ALIYUN_ACCESS_KEY_ID and SONGDA_ALIYUN_ACCESS_KEY_SECRET in the environment (the prefix is "
               "this provider's credentials_env)");
  expect_issue(issues[1], 5, 125,
               "channels.sms.providers[1].secret_key: secrets do not belong in YAML; set SONGDA_TX_SECRET_ID and "
               "SONGDA_TX_SECRET_KEY in the environment");
  expect_issue(issues[2], 7, 5,
               "channels.wechat.app_secret: secrets do not belong in YAML; set SONGDA_WECHAT_APP_SECRET and "
               "SONGDA_WECHAT_CALLBACK_TOKEN in the environment (the prefix is channels.wechat.credentials_env)");
  expect_issue(issues[3], 9, 55,
               "channels.wechat.templates.summons.token: secrets do not belong in YAML; set "
               "SONGDA_WECHAT_APP_SECRET");
  expect_issue(issues[4], 12, 5,
               "channels.email.password: secrets do not belong in YAML; set SONGDA_MAIL_USER and SONGDA_MAIL_PASSWORD "
               "in the environment");
  expect_issue(issues[5], 13, 3, "channels.api_key: secrets do not belong in YAML");
  for (const auto& i : issues) EXPECT_THAT(i.message, Not(HasSubstr("unknown key"))) << i.to_string();
}

TEST(ChannelSecrets, NamingWhereTheyLiveIsFine) {
  const Config c = load_ok("channels:\n  email:\n    credentials_env: SONGDA_SMTP\n    ca_file: /etc/ssl/court.pem\n");
  EXPECT_EQ(c.channels.email.ca_file, "/etc/ssl/court.pem");
}

// ---- many problems ------------------------------------------------------------------------------

TEST(ChannelsConfig, EveryProblemIsReportedInOrder) {
  const auto issues = load_bad(
      "channels:\n"
      "  sms:\n"
      "    providers:\n"
      "      - name: a\n"
      "        kind: aliyun\n"
      "        endpoint: \"https://x.example\"\n"
      "        sign_name: 法院\n"
      "        credentials_env: songda\n"  // 8
      "        weight: 20000\n"            // 9
      "  email:\n"
      "    enabled: true\n"
      "    smtp_url: \"smtp://mail.example\"\n"
      "    starttls: none\n"  // 13
      "quiet_hours:\n"
      "  start: \"8pm\"\n"  // 15
      "routes:\n"
      "  - {event: summons.issued, channels: [inapp, wechat], template: summons,\n"  // 17: wechat not enabled
      "     fallback: [{from: inapp, to: wechat, unless: SEEN}]}\n" +                // 18: unless
      std::string(kTemplates));
  ASSERT_THAT(issues, SizeIs(6)) << dump(issues);
  const std::vector<int> lines = {8, 9, 13, 15, 17, 18};
  for (std::size_t i = 0; i < issues.size(); ++i) EXPECT_EQ(issues[i].line, lines[i]) << issues[i].to_string();
  EXPECT_THAT(issues[4].message, AllOf(HasSubstr("wechat"), HasSubstr("not enabled")));
  EXPECT_THAT(issues[5].message, HasSubstr("unknown receipt state 'SEEN'"));
}

}  // namespace
}  // namespace songda
