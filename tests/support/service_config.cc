#include "tests/support/service_config.h"

#include <stdexcept>
#include <string_view>

#include "gateway/store/redis.h"
#include "tests/support/kafka_util.h"

namespace songda::testing {

std::string redis_url_with_db(const std::string& base, int db) {
  const auto slash = base.rfind('/');
  const bool has_db = slash != std::string::npos && slash > std::string_view("redis://").size();
  return (has_db ? base.substr(0, slash) : base) + "/" + std::to_string(db);
}

Config config_for_test_services(const std::string& name, int redis_db, int partitions) {
  auto loaded = load_config_file(std::string(SONGDA_SOURCE_DIR) + "/config/gateway.yaml");
  if (!loaded.config) {
    throw std::runtime_error("config/gateway.yaml does not load: " +
                             (loaded.issues.empty() ? std::string("?") : loaded.issues[0].to_string()));
  }
  Config config = *loaded.config;
  config.kafka.brokers = require_env("SONGDA_TEST_KAFKA_BROKERS");
  config.kafka.topic = unique_name(name + "-events");
  config.kafka.dlq_topic = config.kafka.topic + ".dlq";
  config.kafka.group_id = unique_name("songda-" + name);
  config.redis.url = redis_url_with_db(require_env("SONGDA_TEST_REDIS_URL"), redis_db);
  config.http.listen = "127.0.0.1:0";
  config.dispatch.poll_ms = 10;
  config.quiet_hours.enabled = false;
  create_topic(config.kafka.brokers, config.kafka.topic, partitions);
  create_topic(config.kafka.brokers, config.kafka.dlq_topic, 1);

  auto ep = parse_redis_url(config.redis.url);
  if (!ep.ok()) throw std::runtime_error("bad Redis URL " + config.redis.url + ": " + ep.error().message);
  auto conn = RedisConnection::connect(ep.value(), 2000);
  if (!conn.ok()) throw std::runtime_error("cannot connect to " + config.redis.url + ": " + conn.error().message);
  if (!conn.value()->command({"FLUSHDB"}).ok()) throw std::runtime_error("FLUSHDB failed on " + config.redis.url);
  return config;
}

}  // namespace songda::testing
