// Songda's configuration: plain structs whose defaults are written here, and
// one loader that turns a YAML file into them or into a list of problems, each
// naming file:line:column. Unknown keys are errors. Secrets never live in the
// YAML: they come from the environment or from files named by it.
//
// The loaded Config is immutable after start-up and shared read-only by all
// threads.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace songda {

struct KafkaConfig {
  std::string brokers = "127.0.0.1:9092";  // env SONGDA_KAFKA_BROKERS wins
  std::string topic = "court.case-events";
  std::string dlq_topic = "court.case-events.dlq";
  std::string checkpoint_topic = "songda.evidence.checkpoints";
  std::string group_id = "songda";
  int batch_max = 500;     // messages handled per Redis round trip
  int batch_wait_ms = 20;  // how long a batch may wait to fill
  std::size_t max_event_bytes = 1024 * 1024;
  std::map<std::string, std::string> properties;  // extra librdkafka properties, passed through
};

struct RedisConfig {
  std::string url = "redis://127.0.0.1:6379/0";  // env SONGDA_REDIS_URL wins; password via env SONGDA_REDIS_PASSWORD
  int pool_size = 8;
  int timeout_ms = 2000;
};

struct HttpConfig {
  std::string listen = "127.0.0.1:8080";  // env SONGDA_HTTP_LISTEN wins
  int threads = 8;
  std::string public_base_url;  // base of links sent to parties (env SONGDA_PUBLIC_BASE_URL wins); `songda run`
                                // refuses to start without it (only the demo falls back to http://<listen>)
};

struct DispatchConfig {
  int batch = 100;       // deliveries claimed per Redis round trip
  int lease_ms = 30000;  // a claimed delivery not completed within this is resumed by any instance
  int poll_ms = 50;      // idle wait between claims
  // An attempt whose outcome was never recorded (the process died mid-send) is not simply sent again: after
  // this wait (long enough for the provider's delivery report) the channel asks the provider whether it has it.
  int in_doubt_wait_ms = 60000;
  // Retries of a transient failure (provider 5xx, timeout, rate limit): at most max_attempts attempts, waiting
  // about retry_base_ms·2^(n-1) (full jitter) after the n-th, capped at retry_max_ms. The defaults ride out about
  // 15-25 minutes of an outage before the delivery fails (and its fallback, if any, is sent).
  int max_attempts = 12;
  int retry_base_ms = 1000;
  int retry_max_ms = 600000;
};

// ---- Channels and providers (issue: channels). Secrets are never here: each provider
// names an environment prefix, e.g. credentials_env: SONGDA_ALIYUN reads
// SONGDA_ALIYUN_ACCESS_KEY_ID and SONGDA_ALIYUN_ACCESS_KEY_SECRET (Tencent:
// <prefix>_SECRET_ID and <prefix>_SECRET_KEY).

struct SmsProviderConfig {
  std::string name;      // unique, e.g. "aliyun-main"
  std::string kind;      // aliyun | tencent
  std::string endpoint;  // base URL: https://dysmsapi.aliyuncs.com, https://sms.tencentcloudapi.com, or the simulator
  int priority = 1;      // lower = preferred; equal priorities share traffic by weight
  int weight = 100;
  std::string sign_name;                         // 短信签名, e.g. "商丘中院"
  std::string region = "cn-hangzhou";            // Aliyun RegionId / Tencent region (ap-guangzhou)
  std::string sdk_app_id;                        // Tencent SmsSdkAppId
  std::map<std::string, std::string> templates;  // songda template name -> provider template code/id
  // Tencent only: songda template name -> the ordered variable names whose values fill
  // TemplateParamSet ({1}, {2}, ...); a template not listed here is sent with no parameters.
  std::map<std::string, std::vector<std::string>> template_params;
  std::string credentials_env;  // prefix of the environment variables holding the keys
  int concurrency = 4;          // requests in flight to this provider
  double rate_per_sec = 50;     // token bucket shared by all instances (Redis)
  int timeout_ms = 5000;
  int batch_max = 0;            // numbers per request; 0 = the provider's documented maximum
  int receipt_timeout_s = 600;  // no receipt for this long counts against the provider's health
  int line = 0;
  int column = 0;
};

struct WechatTemplateConfig {
  std::string template_id;
  std::map<std::string, std::string> fields;  // WeChat data key -> text with {{placeholders}} (<= 20 chars rendered)
  std::string page;                           // mini-program page (subscribe messages)
  int line = 0;
  int column = 0;
};

struct WechatConfig {
  bool enabled = false;
  std::string kind = "official_account";  // official_account (template message) | mini_program (subscribe message)
  std::string app_id;
  std::string endpoint = "https://api.weixin.qq.com";
  std::string credentials_env = "SONGDA_WECHAT";          // _APP_SECRET, _CALLBACK_TOKEN
  std::map<std::string, WechatTemplateConfig> templates;  // songda template name -> WeChat template
  int concurrency = 4;
  double rate_per_sec = 50;
  int timeout_ms = 5000;
};

struct EmailConfig {
  bool enabled = false;
  std::string smtp_url = "smtp://127.0.0.1:587";  // smtp://host:port (STARTTLS per `starttls`) or smtps://host:465
  std::string starttls = "required";              // required | optional | none (none only for loopback test servers)
  std::string from = "noreply@court.example";
  std::string from_name = "人民法院电子送达";
  std::string credentials_env = "SONGDA_SMTP";  // _USER, _PASSWORD (optional)
  std::string ca_file;                          // extra CA bundle for the SMTP server's certificate
  int concurrency = 2;
  double rate_per_sec = 20;
  int timeout_ms = 15000;
};

struct SmsConfig {
  std::vector<SmsProviderConfig> providers;  // empty = SMS disabled
  int circuit_failures = 5;                  // consecutive errors that open a provider's circuit
  int circuit_open_s = 30;                   // how long an open circuit sheds traffic before one trial request
};

struct ChannelsConfig {
  SmsConfig sms;
  WechatConfig wechat;
  EmailConfig email;
};

// Non-urgent deliveries due inside quiet hours wait until they end (court's local time).
struct QuietHoursConfig {
  bool enabled = false;
  std::string start = "22:00";      // HH:MM, local; the loader writes it with two-digit hours ("7:00" -> "07:00")
  std::string end = "08:00";        // end < start: the window spans midnight
  int utc_offset_minutes = 8 * 60;  // China Standard Time
  std::vector<std::string> channels = {"sms"};  // which channels keep quiet
};

// Receipt-driven fallback: if `from` has not reached `unless` within `after_s`, send on `to`.
struct FallbackConfig {
  std::string from;    // channel
  std::string to;      // channel
  std::string unless;  // DELIVERED | READ | ACKNOWLEDGED
  int after_s = 600;
  int line = 0;
  int column = 0;
};

struct TemplateConfig {
  std::string name;
  std::string title;  // e.g. "{{court_name}}传票"
  std::string body;   // e.g. "{{recipient_name}}：您好，……{{hearing_time}}……"
  std::string sms;    // optional shorter SMS text; body is used when empty
  int line = 0;       // where it was declared, for error messages
  int column = 0;
};

struct RouteConfig {
  std::string event_type;             // one of the event v1 types
  std::vector<std::string> roles;     // party | lawyer | agent | other; empty = all
  std::vector<std::string> channels;  // inapp | sms | wechat | email, in order of preference
  std::string template_name;
  bool urgent = false;                   // urgent routes never wait for quiet hours
  std::vector<FallbackConfig> fallback;  // e.g. {from: wechat, to: sms, unless: DELIVERED, after: 10m}
  int line = 0;
  int column = 0;
};

struct Config {
  KafkaConfig kafka;
  RedisConfig redis;
  HttpConfig http;
  DispatchConfig dispatch;
  ChannelsConfig channels;
  QuietHoursConfig quiet_hours;
  std::vector<RouteConfig> routes;
  std::map<std::string, TemplateConfig> templates;
  std::string source;  // the file it came from
};

struct ConfigIssue {
  std::string file;
  int line = 0;    // 1-based; 0 when the problem has no position (e.g. unreadable file)
  int column = 0;  // 1-based
  std::string message;
  std::string to_string() const;  // "file:line:column: message"
};

struct ConfigLoad {
  std::optional<Config> config;     // set only when issues is empty
  std::vector<ConfigIssue> issues;  // every problem found, not just the first
};

ConfigLoad load_config_file(const std::string& path);
ConfigLoad load_config_text(const std::string& yaml, const std::string& file_name);

// The librdkafka settings that hold secrets. They are refused in YAML and taken from the environment instead:
// SONGDA_KAFKA_SASL_PASSWORD, SONGDA_KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET, SONGDA_KAFKA_SASL_OAUTHBEARER_CONFIG,
// SONGDA_KAFKA_SSL_KEY_PASSWORD, SONGDA_KAFKA_SSL_KEYSTORE_PASSWORD, SONGDA_KAFKA_SSL_KEY_PEM (kafka_secret_env).
inline constexpr std::array<std::string_view, 6> kKafkaSecretProperties = {
    "sasl.password",    "sasl.oauthbearer.client.secret", "sasl.oauthbearer.config",
    "ssl.key.password", "ssl.keystore.password",          "ssl.key.pem"};
std::string kafka_secret_env(std::string_view property);
bool is_kafka_secret(std::string_view property);  // one of kKafkaSecretProperties

// The example config's placeholder values (REPLACE-ME template ids, SMS_000000001…, SmsSdkAppId 1400000000, AppID
// wx0123456789abcdef) left in a channel whose endpoint is a real provider's (not loopback), each as "path: value".
// `songda run` refuses to start with any (every send would fail at the provider); `config check` lists them as
// warnings, since the shipped file is the example.
std::vector<std::string> example_placeholders(const Config& config);

// Applies SONGDA_KAFKA_BROKERS, SONGDA_REDIS_URL, SONGDA_HTTP_LISTEN, SONGDA_PUBLIC_BASE_URL, and the Kafka secrets
// (kKafkaSecretProperties) into kafka.properties. `getenv` is injected for tests.
void apply_env_overrides(Config& config, const std::function<const char*(const char*)>& getenv);

}  // namespace songda
