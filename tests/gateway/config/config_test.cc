// The config loader as an operator meets it: what a good file turns into, and
// what each mistake in a bad one is reported as (file, line, column, message).

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "gateway/config/config.h"

namespace songda {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
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
  EXPECT_THAT(load.issues, ::testing::Not(IsEmpty()));
  return load.issues;
}

// Exactly one issue, at line:column, whose message contains `text`.
void expect_one(const std::string& yaml, int line, int column, const std::string& text) {
  const auto issues = load_bad(yaml);
  ASSERT_THAT(issues, SizeIs(1)) << dump(issues);
  EXPECT_EQ(issues[0].file, "test.yaml");
  EXPECT_EQ(issues[0].line, line) << issues[0].to_string();
  EXPECT_EQ(issues[0].column, column) << issues[0].to_string();
  EXPECT_THAT(issues[0].message, HasSubstr(text));
}

// A minimal valid template, to which tests add their mistake.
constexpr const char* kTemplatesYaml =
    "templates:\n"
    "  summons:\n"
    "    title: \"{{court_name}}传票\"\n"
    "    body: \"{{recipient_name}}：请于{{hearing_time}}到庭。{{link}}\"\n";
const std::string& templates_yaml() {
  static const std::string text = kTemplatesYaml;
  return text;
}

// Configured SMS and email channels, for routes that use them (a route on an unconfigured channel is
// an error). Tests append it after the part under test, so the lines they check stay put.
std::string channels_yaml(bool with_codes = true) {
  return std::string(
             "channels:\n"
             "  sms:\n"
             "    providers:\n"
             "      - {name: sim, kind: aliyun, endpoint: \"http://127.0.0.1:9\", sign_name: 法院, "
             "credentials_env: SONGDA_SIM") +
         (with_codes ? ", templates: {summons: SMS_1}}\n" : "}\n") + "  email: {enabled: true}\n";
}

// ---- good files -------------------------------------------------------------------------------

TEST(ConfigLoad, EmptyFileGivesEveryDefault) {
  const Config c = load_ok("");
  EXPECT_EQ(c.kafka.brokers, "127.0.0.1:9092");
  EXPECT_EQ(c.kafka.topic, "court.case-events");
  EXPECT_EQ(c.kafka.dlq_topic, "court.case-events.dlq");
  EXPECT_EQ(c.kafka.batch_max, 500);
  EXPECT_EQ(c.kafka.max_event_bytes, 1024u * 1024u);
  EXPECT_EQ(c.redis.url, "redis://127.0.0.1:6379/0");
  EXPECT_EQ(c.http.listen, "127.0.0.1:8080");
  EXPECT_EQ(c.dispatch.lease_ms, 30000);
  EXPECT_THAT(c.routes, IsEmpty());
  EXPECT_THAT(c.templates, IsEmpty());
  EXPECT_EQ(c.source, "test.yaml");
}

TEST(ConfigLoad, AbsentKeysKeepTheirDefaults) {
  const Config c = load_ok(
      "kafka:\n"
      "  topic: court.events.test\n"
      "redis:\n"
      "http:\n"
      "  threads: 2\n");
  EXPECT_EQ(c.kafka.topic, "court.events.test");
  EXPECT_EQ(c.kafka.brokers, "127.0.0.1:9092");
  EXPECT_EQ(c.kafka.group_id, "songda");
  EXPECT_EQ(c.kafka.batch_wait_ms, 20);
  EXPECT_EQ(c.redis.pool_size, 8);
  EXPECT_EQ(c.redis.timeout_ms, 2000);
  EXPECT_EQ(c.http.threads, 2);
  EXPECT_EQ(c.http.listen, "127.0.0.1:8080");
  EXPECT_EQ(c.dispatch.batch, 100);
  EXPECT_EQ(c.dispatch.poll_ms, 50);
  EXPECT_EQ(c.dispatch.max_attempts, 12);
  EXPECT_EQ(c.dispatch.retry_max_ms, 600000);
}

TEST(ConfigLoad, ReadsEveryField) {
  const Config c = load_ok(
      "kafka:\n"
      "  brokers: [k1:9092, k2:9092]\n"
      "  topic: t.in\n"
      "  dlq_topic: t.dlq\n"
      "  checkpoint_topic: t.cp\n"
      "  group_id: g1\n"
      "  batch_max: 10000\n"
      "  batch_wait_ms: 0\n"
      "  max_event_bytes: 64KiB\n"
      "  properties: {fetch.wait.max.ms: 10, socket.keepalive.enable: true}\n"
      "redis: {url: \"redis://cache:6380/2\", pool_size: 256, timeout_ms: 1}\n"
      "http: {listen: \"[::1]:0\", threads: 1, public_base_url: \"https://sd.court.example/\"}\n"
      "dispatch: {batch: 1, lease_ms: 1000, poll_ms: 5, max_attempts: 3, retry_base_ms: 200, retry_max_ms: 5000}\n" +
      templates_yaml() +
      "    sms: \"{{recipient_name}}：传票{{link}}\"\n"
      "routes:\n"
      "  - event: summons.issued\n"
      "    roles: [party, lawyer]\n"
      "    channels: [sms, inapp]\n"
      "    template: summons\n"
      "    urgent: true\n"
      "  - {event: judgment.issued, channels: email, template: summons}\n" +
      channels_yaml());
  EXPECT_EQ(c.kafka.brokers, "k1:9092,k2:9092");
  EXPECT_EQ(c.kafka.topic, "t.in");
  EXPECT_EQ(c.kafka.dlq_topic, "t.dlq");
  EXPECT_EQ(c.kafka.checkpoint_topic, "t.cp");
  EXPECT_EQ(c.kafka.group_id, "g1");
  EXPECT_EQ(c.kafka.batch_max, 10000);
  EXPECT_EQ(c.kafka.batch_wait_ms, 0);
  EXPECT_EQ(c.kafka.max_event_bytes, 64u * 1024u);
  EXPECT_EQ(c.kafka.properties,
            (std::map<std::string, std::string>{{"fetch.wait.max.ms", "10"}, {"socket.keepalive.enable", "true"}}));
  EXPECT_EQ(c.redis.url, "redis://cache:6380/2");
  EXPECT_EQ(c.redis.pool_size, 256);
  EXPECT_EQ(c.redis.timeout_ms, 1);
  EXPECT_EQ(c.http.listen, "[::1]:0");
  EXPECT_EQ(c.http.threads, 1);
  EXPECT_EQ(c.http.public_base_url, "https://sd.court.example");  // trailing slash dropped
  EXPECT_EQ(c.dispatch.batch, 1);
  EXPECT_EQ(c.dispatch.lease_ms, 1000);
  EXPECT_EQ(c.dispatch.poll_ms, 5);
  EXPECT_EQ(c.dispatch.max_attempts, 3);
  EXPECT_EQ(c.dispatch.retry_base_ms, 200);
  EXPECT_EQ(c.dispatch.retry_max_ms, 5000);

  ASSERT_EQ(c.templates.count("summons"), 1u);
  const TemplateConfig& t = c.templates.at("summons");
  EXPECT_EQ(t.name, "summons");
  EXPECT_EQ(t.title, "{{court_name}}传票");
  EXPECT_EQ(t.body, "{{recipient_name}}：请于{{hearing_time}}到庭。{{link}}");
  EXPECT_EQ(t.sms, "{{recipient_name}}：传票{{link}}");
  EXPECT_EQ(t.line, 15);
  EXPECT_EQ(t.column, 3);

  ASSERT_THAT(c.routes, SizeIs(2));
  EXPECT_EQ(c.routes[0].event_type, "summons.issued");
  EXPECT_EQ(c.routes[0].roles, (std::vector<std::string>{"party", "lawyer"}));
  EXPECT_EQ(c.routes[0].channels, (std::vector<std::string>{"sms", "inapp"}));
  EXPECT_EQ(c.routes[0].template_name, "summons");
  EXPECT_TRUE(c.routes[0].urgent);
  EXPECT_EQ(c.routes[0].line, 20);
  EXPECT_EQ(c.routes[0].column, 5);
  EXPECT_THAT(c.routes[1].roles, IsEmpty());  // all roles
  EXPECT_EQ(c.routes[1].channels, (std::vector<std::string>{"email"}));
  EXPECT_FALSE(c.routes[1].urgent);
}

TEST(ConfigLoad, AcceptsAByteOrderMark) {
  const Config c = load_ok("\xEF\xBB\xBFkafka:\n  topic: t.bom\n");
  EXPECT_EQ(c.kafka.topic, "t.bom");
}

// ---- syntax -----------------------------------------------------------------------------------

TEST(ConfigLoad, SyntaxErrorNamesItsPosition) {
  expect_one("kafka:\n  brokers: [a:1, b:2\nredis:\n  url: redis://x\n", 3, 6, "YAML syntax error");
}

TEST(ConfigLoad, UnquotedTemplateTextGetsAHint) {
  const auto issues = load_bad("templates:\n  t:\n    title: x\n    body: {{x}}：你好\n");
  ASSERT_THAT(issues, SizeIs(1)) << dump(issues);
  EXPECT_EQ(issues[0].line, 4);
  EXPECT_THAT(issues[0].message, AllOf(HasSubstr("YAML syntax error"), HasSubstr("must be in quotes")));
}

TEST(ConfigLoad, TemplateTextParsedAsAMappingSaysToQuote) {
  expect_one("templates:\n  t:\n    title: x\n    body: {{x}}\n", 4, 11,
             "templates.t.body: expected a string, got a mapping (text that starts with '{', '[' or contains ': ' "
             "must be in quotes)");
}

TEST(ConfigLoad, InvalidUtf8IsReportedWhereItStarts) {
  // "传票" in GBK, as a Windows editor might save it.
  expect_one("templates:\n  t:\n    title: \"\xB4\xAB\xC6\xB1\"\n", 3, 13, "not valid UTF-8");
}

TEST(ConfigLoad, TopLevelMustBeAMapping) {
  expect_one("- kafka\n- redis\n", 1, 1, "the top level: expected a mapping");
}

// ---- keys -------------------------------------------------------------------------------------

TEST(ConfigLoad, UnknownKeyListsTheAllowedOnes) {
  expect_one("kafka:\n  brokerz: k:9092\n", 2, 3,
             "unknown key 'brokerz' in kafka; allowed: brokers, topic, dlq_topic, checkpoint_topic, group_id, "
             "batch_max, batch_wait_ms, max_event_bytes, properties; did you mean 'brokers'?");
}

TEST(ConfigLoad, UnknownKeysAreFoundAtEveryLevel) {
  const auto issues = load_bad("kafak: {}\n" + templates_yaml() +
                               "    subject: x\n"
                               "routes:\n"
                               "  - {event: summons.issued, channels: [sms], template: summons, urgnet: true}\n" +
                               channels_yaml());
  ASSERT_THAT(issues, SizeIs(3)) << dump(issues);
  EXPECT_EQ(issues[0].line, 1);
  EXPECT_EQ(issues[0].column, 1);
  EXPECT_THAT(issues[0].message,
              HasSubstr("unknown key 'kafak' at the top level; allowed: kafka, redis, http, dispatch, channels, "
                        "quiet_hours, templates, routes; did you mean 'kafka'?"));
  EXPECT_EQ(issues[1].line, 6);
  EXPECT_EQ(issues[1].column, 5);
  EXPECT_THAT(issues[1].message, HasSubstr("unknown key 'subject' in templates.summons; allowed: title, body, sms"));
  EXPECT_EQ(issues[2].line, 8);
  EXPECT_EQ(issues[2].column, 65);
  EXPECT_THAT(issues[2].message,
              HasSubstr("unknown key 'urgnet' in routes[0]; allowed: event, roles, channels, template, urgent, "
                        "fallback; did you mean 'urgent'?"));
}

TEST(ConfigLoad, DuplicateKeyIsReported) {
  expect_one("redis:\n  pool_size: 4\n  pool_size: 5\n", 3, 3, "duplicate key 'pool_size' in redis (first at line 2)");
}

// ---- types and ranges -------------------------------------------------------------------------

TEST(ConfigLoad, WrongTypeSaysWhatWasExpected) {
  expect_one("kafka:\n  batch_max: abc\n", 2, 14, "kafka.batch_max: expected an integer, got 'abc'");
  expect_one("redis:\n  url: [a, b]\n", 2, 8, "redis.url: expected a string, got a list");
  expect_one("http: 8080\n", 1, 7, "http: expected a mapping, got '8080'");
  expect_one("routes:\n  - {event: case.filed, channels: [sms], template: summons, urgent: maybe}\n" +
                 templates_yaml() + channels_yaml(),
             2, 69, "routes[0].urgent: expected true or false, got 'maybe'");
  expect_one("routes: {event: case.filed}\n", 1, 9, "routes: expected a list");
}

TEST(ConfigLoad, AnEmptyValuePointsAtItsKey) {
  expect_one("kafka:\n  topic:\n  group_id: g\n", 2, 3, "kafka.topic: expected a string, got nothing");
}

TEST(ConfigLoad, OutOfRangeValuesAreRefused) {
  expect_one("kafka: {batch_max: 0}\n", 1, 20, "kafka.batch_max: 0 is out of range (allowed: 1..10000 messages)");
  expect_one("kafka: {batch_max: 10001}\n", 1, 20, "kafka.batch_max: 10001 is out of range");
  expect_one("redis: {pool_size: 257}\n", 1, 20, "redis.pool_size: 257 is out of range (allowed: 1..256");
  expect_one("redis: {timeout_ms: 0}\n", 1, 21, "redis.timeout_ms: 0 is out of range (allowed: 1..");
  expect_one("dispatch: {lease_ms: -5}\n", 1, 22, "dispatch.lease_ms: -5 is out of range");
  expect_one("dispatch: {poll_ms: 0}\n", 1, 21, "dispatch.poll_ms: 0 is out of range");
  expect_one("dispatch: {max_attempts: 0}\n", 1, 26, "dispatch.max_attempts: 0 is out of range");
  expect_one("kafka: {batch_max: 99999999999999999999}\n", 1, 20, "kafka.batch_max: expected an integer");
}

TEST(ConfigLoad, MaxEventBytesIsBetweenOneKiBAndSixteenMiB) {
  expect_one("kafka: {max_event_bytes: 512}\n", 1, 26,
             "kafka.max_event_bytes: 512 is out of range (allowed: 1 KiB..16 MiB");
  expect_one("kafka: {max_event_bytes: 17MiB}\n", 1, 26, "kafka.max_event_bytes: 17MiB is out of range");
  expect_one("kafka: {max_event_bytes: big}\n", 1, 26, "kafka.max_event_bytes: expected a size in bytes");
  EXPECT_EQ(load_ok("kafka: {max_event_bytes: 1024}\n").kafka.max_event_bytes, 1024u);
  EXPECT_EQ(load_ok("kafka: {max_event_bytes: 16MiB}\n").kafka.max_event_bytes, 16u * 1024u * 1024u);
}

TEST(ConfigLoad, ListenMustBeHostPort) {
  expect_one("http:\n  listen: \"8080\"\n", 2, 11, "http.listen: expected host:port (e.g. 127.0.0.1:8080");
  expect_one("http:\n  listen: localhost\n", 2, 11, "got 'localhost'");
  expect_one("http:\n  listen: localhost:99999\n", 2, 11, "expected host:port");
  expect_one("http:\n  listen: \"::1:8080\"\n", 2, 11, "expected host:port");
  EXPECT_EQ(load_ok("http: {listen: \"0.0.0.0:80\"}\n").http.listen, "0.0.0.0:80");
}

TEST(ConfigLoad, OtherValuesAreChecked) {
  expect_one("redis: {url: \"localhost:6379\"}\n", 1, 14, "redis.url: expected redis://host:port/db");
  expect_one("http: {public_base_url: \"sd.court.example\"}\n", 1, 25, "http.public_base_url: expected an http://");
  expect_one("kafka: {topic: \"court events\"}\n", 1, 16, "not a valid Kafka topic name");
  expect_one("kafka: {dlq_topic: court.case-events}\n", 1, 20, "kafka.dlq_topic: must differ from kafka.topic");
  expect_one("kafka:\n  properties:\n    bootstrap.servers: x:1\n", 3, 5,
             "kafka.properties.bootstrap.servers: not allowed here; set kafka.brokers instead");
  expect_one("kafka:\n  properties:\n    enable.auto.commit: true\n", 3, 5, "Songda commits offsets itself");
}

// ---- routes and templates ---------------------------------------------------------------------

TEST(ConfigLoad, UnknownEventTypeIsRefused) {
  expect_one(
      templates_yaml() + "routes:\n  - {event: summons.issue, channels: [sms], template: summons}\n" + channels_yaml(),
      6, 13,
      "routes[0].event: unknown event type 'summons.issue'; allowed: case.filed, summons.issued, "
      "hearing.scheduled, hearing.rescheduled, hearing.cancelled, document.served, judgment.issued, "
      "payment.due, mediation.invited, notice.general, notice.broadcast; did you mean 'summons.issued'?");
}

TEST(ConfigLoad, EveryEventTypeIsAccepted) {
  const char* types[] = {"case.filed",        "summons.issued",  "hearing.scheduled", "hearing.rescheduled",
                         "hearing.cancelled", "document.served", "judgment.issued",   "payment.due",
                         "mediation.invited", "notice.general",  "notice.broadcast"};
  std::string yaml = templates_yaml() + "routes:\n";
  for (const char* t : types) yaml += std::string("  - {event: ") + t + ", channels: [inapp], template: summons}\n";
  EXPECT_THAT(load_ok(yaml).routes, SizeIs(11));
}

TEST(ConfigLoad, UnknownRoleAndChannelAreRefused) {
  const auto issues = load_bad(templates_yaml() +
                               "routes:\n"
                               "  - event: summons.issued\n"
                               "    roles: [party, judge]\n"
                               "    channels: [sms, fax]\n"
                               "    template: summons\n" +
                               channels_yaml());
  ASSERT_THAT(issues, SizeIs(2)) << dump(issues);
  EXPECT_EQ(issues[0].line, 7);
  EXPECT_EQ(issues[0].column, 20);
  EXPECT_THAT(issues[0].message,
              HasSubstr("routes[0].roles: unknown role 'judge'; allowed: party, lawyer, agent, other"));
  EXPECT_EQ(issues[1].line, 8);
  EXPECT_EQ(issues[1].column, 21);
  EXPECT_THAT(issues[1].message,
              HasSubstr("routes[0].channels: unknown channel 'fax'; allowed: inapp, sms, wechat, email"));
}

TEST(ConfigLoad, RouteNamingAMissingTemplate) {
  expect_one(
      templates_yaml() + "routes:\n  - {event: summons.issued, channels: [sms], template: sumons}\n" + channels_yaml(),
      6, 56, "routes[0].template: no template named 'sumons'; did you mean 'summons'?");
  expect_one("routes:\n  - {event: summons.issued, channels: [sms], template: summons}\n" + channels_yaml(false), 2, 56,
             "no template named 'summons'; define it under templates");
}

TEST(ConfigLoad, RouteWithoutChannels) {
  expect_one(templates_yaml() + "routes:\n  - {event: summons.issued, channels: [], template: summons}\n", 6, 39,
             "routes[0].channels: a route needs at least one channel");
  expect_one(templates_yaml() + "routes:\n  - {event: summons.issued, template: summons}\n", 6, 5,
             "routes[0]: a route needs at least one channel");
}

TEST(ConfigLoad, RouteMissingEventOrTemplate) {
  const auto issues = load_bad("routes:\n  - {channels: [sms]}\n" + channels_yaml(false));
  ASSERT_THAT(issues, SizeIs(2)) << dump(issues);
  EXPECT_THAT(issues[0].message, HasSubstr("routes[0]: missing 'event'"));
  EXPECT_THAT(issues[1].message, HasSubstr("routes[0]: missing 'template'"));
}

TEST(ConfigLoad, TwoRoutesForTheSameRecipientsAreRefused) {
  expect_one(templates_yaml() +
                 "routes:\n"
                 "  - {event: summons.issued, roles: [party, lawyer], channels: [sms], template: summons}\n"
                 "  - {event: summons.issued, roles: [agent], channels: [sms], template: summons}\n"
                 "  - {event: summons.issued, roles: [lawyer], channels: [email], template: summons}\n" +
                 channels_yaml(),
             8, 5, "routes[2]: 'summons.issued' for role 'lawyer' is already routed by routes[0] (line 6)");
}

TEST(ConfigLoad, MalformedPlaceholdersArePinpointed) {
  const auto issues = load_bad(
      "templates:\n"
      "  t:\n"
      "    title: \"传票{{court_name\"\n"                   // unclosed
      "    body: \"您好{{}}，请于{{Hearing Time}}到庭\"\n"  // empty; bad name
      "    sms: 案号{{case_number}}}}\n");                  // stray }}
  ASSERT_THAT(issues, SizeIs(4)) << dump(issues);
  EXPECT_EQ(issues[0].line, 3);
  EXPECT_EQ(issues[0].column, 15);
  EXPECT_THAT(issues[0].message, HasSubstr("templates.t.title: '{{' without '}}' in '{{court_name'"));
  EXPECT_EQ(issues[1].line, 4);
  EXPECT_EQ(issues[1].column, 14);
  EXPECT_THAT(issues[1].message, HasSubstr("templates.t.body: empty placeholder '{{}}'"));
  EXPECT_EQ(issues[2].line, 4);
  EXPECT_EQ(issues[2].column, 21);
  EXPECT_THAT(issues[2].message,
              HasSubstr("templates.t.body: placeholder '{{Hearing Time}}' has an invalid name; names must be "
                        "[a-z0-9_]+ (e.g. {{hearing_time}})"));
  EXPECT_EQ(issues[3].line, 5);
  EXPECT_EQ(issues[3].column, 27);
  EXPECT_THAT(issues[3].message, HasSubstr("templates.t.sms: '}}' without '{{'"));
}

TEST(ConfigLoad, PlaceholderInABlockScalarIsPinpointed) {
  expect_one(
      "templates:\n"
      "  t:\n"
      "    title: 传票\n"
      "    body: |\n"
      "      {{recipient_name}}：\n"
      "      请于{{hearing-time}}到庭。\n",
      6, 9, "placeholder '{{hearing-time}}' has an invalid name");
}

TEST(ConfigLoad, DuplicateTemplateNames) {
  expect_one(templates_yaml() + "  summons:\n    title: a\n    body: b\n", 5, 3,
             "duplicate template 'summons' (first defined at line 2)");
}

TEST(ConfigLoad, TemplateNeedsTitleAndBody) {
  const auto issues = load_bad("templates:\n  t:\n    sms: 你好\n");
  ASSERT_THAT(issues, SizeIs(2)) << dump(issues);
  EXPECT_EQ(issues[0].line, 2);
  EXPECT_EQ(issues[0].column, 3);
  EXPECT_THAT(issues[0].message, HasSubstr("templates.t: missing 'title'"));
  EXPECT_THAT(issues[1].message, HasSubstr("templates.t: missing 'body'"));
}

// ---- secrets ----------------------------------------------------------------------------------

TEST(ConfigLoad, SecretsAreRefusedWherever) {
  const auto issues = load_bad(
      "redis:\n"
      "  url: redis://127.0.0.1:6379/0\n"
      "  password: hunter2\n"
      "kafka:\n"
      "  properties:\n"
      "    sasl.password: x\n"
      "sms_api_key: abc\n"
      "routes:\n"
      "  - {token: t}\n");
  ASSERT_THAT(issues, SizeIs(7)) << dump(issues);  // 4 secrets + the route's missing event, channels, template
  EXPECT_EQ(issues[0].line, 3);
  EXPECT_EQ(issues[0].column, 3);
  EXPECT_THAT(issues[0].message,
              HasSubstr("redis.password: secrets do not belong in YAML; set SONGDA_REDIS_PASSWORD in the environment"));
  EXPECT_EQ(issues[1].line, 6);
  EXPECT_THAT(issues[1].message, HasSubstr("kafka.properties.sasl.password: secrets do not belong in YAML; set "
                                           "SONGDA_KAFKA_SASL_PASSWORD in the environment"));
  EXPECT_EQ(issues[2].line, 7);
  EXPECT_THAT(issues[2].message,
              HasSubstr("sms_api_key: secrets do not belong in YAML; Songda reads its secrets from the "
                        "environment only"));
  EXPECT_EQ(issues[6].line, 9);
  EXPECT_EQ(issues[6].column, 6);
  EXPECT_THAT(issues[6].message, HasSubstr("routes[0].token: secrets do not belong in YAML"));
  for (const auto& i : issues) EXPECT_THAT(i.message, ::testing::Not(HasSubstr("unknown key"))) << i.to_string();
}

TEST(ConfigLoad, PasswordInsideTheRedisUrlIsASecret) {
  expect_one("redis: {url: \"redis://:hunter2@127.0.0.1:6379/0\"}\n", 1, 14,
             "redis.url: contains a password; secrets do not belong in YAML");
}

TEST(ConfigLoad, NamingAFileThatHoldsASecretIsFine) {
  const Config c = load_ok("kafka:\n  properties:\n    ssl.key.location: /etc/songda/kafka.key\n");
  EXPECT_EQ(c.kafka.properties.at("ssl.key.location"), "/etc/songda/kafka.key");
}

// ---- many problems at once --------------------------------------------------------------------

TEST(ConfigLoad, EveryProblemInAFileIsReportedInOrder) {
  const auto issues = load_bad(
      "kafka:\n"
      "  batch_max: lots\n"       // 2: type
      "  max_event_bytes: 100\n"  // 3: range
      "redis:\n"
      "  pool_size: 0\n"  // 5: range
      "  secret: x\n"     // 6: secret
      "http:\n"
      "  listen: nowhere\n"  // 8: host:port
      "  colour: blue\n"     // 9: unknown key
      "templates:\n"
      "  t: {title: \"{{x\", body: ok}\n"  // 11: placeholder
      "routes:\n"
      "  - {event: hearing.moved, roles: [judge], channels: [pigeon], template: nope}\n");  // 13: four problems
  ASSERT_THAT(issues, SizeIs(11)) << dump(issues);
  const std::vector<int> lines = {2, 3, 5, 6, 8, 9, 11, 13, 13, 13, 13};
  for (std::size_t i = 0; i < issues.size(); ++i) EXPECT_EQ(issues[i].line, lines[i]) << issues[i].to_string();
  EXPECT_THAT(issues[7].message, HasSubstr("unknown event type 'hearing.moved'"));
  EXPECT_THAT(issues[8].message, HasSubstr("unknown role 'judge'"));
  EXPECT_THAT(issues[9].message, HasSubstr("unknown channel 'pigeon'"));
  EXPECT_THAT(issues[10].message, HasSubstr("no template named 'nope'"));
}

// ---- files, messages, environment -------------------------------------------------------------

TEST(ConfigIssue, ToStringNamesFileLineAndColumn) {
  EXPECT_EQ((ConfigIssue{"gateway.yaml", 3, 7, "bad"}).to_string(), "gateway.yaml:3:7: bad");
  EXPECT_EQ((ConfigIssue{"gateway.yaml", 0, 0, "cannot read"}).to_string(), "gateway.yaml: cannot read");
}

TEST(ConfigFile, MissingFileGivesAClearIssue) {
  const ConfigLoad load = load_config_file("/nonexistent/songda/gateway.yaml");
  EXPECT_FALSE(load.config.has_value());
  ASSERT_THAT(load.issues, SizeIs(1));
  EXPECT_EQ(load.issues[0].line, 0);
  EXPECT_EQ(load.issues[0].to_string(),
            "/nonexistent/songda/gateway.yaml: cannot read the config file: No such file or directory; check the "
            "path and its permissions");
}

TEST(ConfigFile, DirectoryGivesAClearIssue) {
  const ConfigLoad load = load_config_file(::testing::TempDir());
  ASSERT_THAT(load.issues, SizeIs(1));
  EXPECT_THAT(load.issues[0].message, HasSubstr("it is a directory"));
}

class TempFile {
 public:
  explicit TempFile(const std::string& content)
      : path_(std::filesystem::path(::testing::TempDir()) /
              ("songda_config_" + std::to_string(::getpid()) + "_" + std::to_string(counter_++) + ".yaml")) {
    std::ofstream(path_) << content;
  }
  ~TempFile() { std::filesystem::remove(path_); }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  std::string path() const { return path_.string(); }

 private:
  static inline int counter_ = 0;
  std::filesystem::path path_;
};

TEST(ConfigFile, UnreadableFileGivesAClearIssue) {
  if (::geteuid() == 0) GTEST_SKIP() << "root can read any file";
  TempFile file("kafka: {}\n");
  std::filesystem::permissions(file.path(), std::filesystem::perms::none);
  const ConfigLoad load = load_config_file(file.path());
  ASSERT_THAT(load.issues, SizeIs(1));
  EXPECT_EQ(load.issues[0].to_string(),
            file.path() + ": cannot read the config file: Permission denied; check the path and its permissions");
}

TEST(ConfigFile, PathThroughAFileGivesAClearIssue) {
  TempFile file("kafka: {}\n");
  const ConfigLoad load = load_config_file(file.path() + "/gateway.yaml");
  ASSERT_THAT(load.issues, SizeIs(1));
  EXPECT_EQ(load.issues[0].line, 0);
  EXPECT_THAT(load.issues[0].message, HasSubstr("cannot read the config file: Not a directory"));
}

TEST(ConfigFile, IssuesNameTheFile) {
  TempFile file("kafka:\n  batch_max: x\n");
  const ConfigLoad load = load_config_file(file.path());
  ASSERT_THAT(load.issues, SizeIs(1));
  EXPECT_EQ(load.issues[0].to_string(), file.path() + ":2:14: kafka.batch_max: expected an integer, got 'x'");
}

TEST(ConfigEnv, EnvironmentWinsOverTheFile) {
  Config c =
      load_ok("kafka: {brokers: file:9092}\nredis: {url: \"redis://file:6379/0\"}\nhttp: {listen: \"file:8080\"}\n");
  const std::map<std::string, std::string> env = {{"SONGDA_KAFKA_BROKERS", "env1:9092,env2:9092"},
                                                  {"SONGDA_REDIS_URL", "redis://env:6379/1"},
                                                  {"SONGDA_HTTP_LISTEN", "0.0.0.0:9000"},
                                                  {"SONGDA_PUBLIC_BASE_URL", "https://sd.court.example"}};
  apply_env_overrides(c, [&env](const char* name) -> const char* {
    const auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
  EXPECT_EQ(c.kafka.brokers, "env1:9092,env2:9092");
  EXPECT_EQ(c.redis.url, "redis://env:6379/1");
  EXPECT_EQ(c.http.listen, "0.0.0.0:9000");
  EXPECT_EQ(c.http.public_base_url, "https://sd.court.example");
}

TEST(ConfigEnv, UnsetOrEmptyVariablesChangeNothing) {
  Config c = load_ok("kafka: {brokers: file:9092}\n");
  apply_env_overrides(
      c, [](const char* name) -> const char* { return std::string(name) == "SONGDA_KAFKA_BROKERS" ? "" : nullptr; });
  EXPECT_EQ(c.kafka.brokers, "file:9092");
  EXPECT_EQ(c.redis.url, "redis://127.0.0.1:6379/0");
  EXPECT_EQ(c.http.listen, "127.0.0.1:8080");
  EXPECT_THAT(c.kafka.properties, IsEmpty());
}

// A Kafka that needs a password: the check refuses it in YAML and names a variable; that variable is the one read,
// and its value reaches librdkafka's settings (before, nothing read it, so such a Kafka could not be configured).
TEST(ConfigEnv, KafkaSecretsComeFromTheVariableTheCheckNames) {
  const auto issues = load_bad("kafka:\n  properties:\n    sasl.password: hunter2\n");
  ASSERT_THAT(issues, SizeIs(1)) << dump(issues);
  const std::string& m = issues[0].message;
  const auto at = m.find("SONGDA_");
  ASSERT_NE(at, std::string::npos) << m;
  const std::string variable = m.substr(at, m.find(' ', at) - at);
  EXPECT_EQ(variable, "SONGDA_KAFKA_SASL_PASSWORD");

  // A private key in PEM form is a secret too, though its name says nothing of one.
  const auto pem = load_bad("kafka:\n  properties:\n    ssl.key.pem: \"-----BEGIN PRIVATE KEY-----\"\n");
  ASSERT_THAT(pem, SizeIs(1)) << dump(pem);
  EXPECT_THAT(pem[0].message, HasSubstr("set SONGDA_KAFKA_SSL_KEY_PEM in the environment"));

  Config c = load_ok("kafka:\n  properties: {security.protocol: SASL_SSL, sasl.mechanisms: PLAIN, sasl.username: u}\n");
  const std::map<std::string, std::string> env = {
      {variable, "s3cret"}, {"SONGDA_KAFKA_SSL_KEY_PASSWORD", "k3y"}, {"SONGDA_KAFKA_SSL_KEYSTORE_PASSWORD", ""}};
  apply_env_overrides(c, [&env](const char* name) -> const char* {
    const auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
  EXPECT_EQ(c.kafka.properties.at("sasl.password"), "s3cret");
  EXPECT_EQ(c.kafka.properties.at("ssl.key.password"), "k3y");
  EXPECT_EQ(c.kafka.properties.at("sasl.username"), "u");
  EXPECT_EQ(c.kafka.properties.count("ssl.keystore.password"), 0u);  // empty: not set
}

}  // namespace
}  // namespace songda
