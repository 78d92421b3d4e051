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
  int batch_max = 500;        // messages handled per Redis round trip
  int batch_wait_ms = 20;     // how long a batch may wait to fill
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
  std::string public_base_url;  // base of links sent to parties; default http://<listen>
};

struct DispatchConfig {
  int batch = 100;          // deliveries claimed per Redis round trip
  int lease_ms = 30000;     // a claimed delivery not completed within this is resumed by any instance
  int poll_ms = 50;         // idle wait between claims
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
  std::string event_type;          // one of the event v1 types
  std::vector<std::string> roles;  // party | lawyer | agent | other; empty = all
  std::vector<std::string> channels;  // inapp | sms | wechat | email, in order of preference
  std::string template_name;
  bool urgent = false;             // urgent routes never wait for quiet hours
  int line = 0;
  int column = 0;
};

struct Config {
  KafkaConfig kafka;
  RedisConfig redis;
  HttpConfig http;
  DispatchConfig dispatch;
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
  std::optional<Config> config;    // set only when issues is empty
  std::vector<ConfigIssue> issues;  // every problem found, not just the first
};

ConfigLoad load_config_file(const std::string& path);
ConfigLoad load_config_text(const std::string& yaml, const std::string& file_name);

// Applies SONGDA_KAFKA_BROKERS, SONGDA_REDIS_URL, SONGDA_HTTP_LISTEN. `getenv` is injected for tests.
void apply_env_overrides(Config& config, const std::function<const char*(const char*)>& getenv);

}  // namespace songda
