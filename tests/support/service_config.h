// The repository's config/gateway.yaml pointed at the test services that
// tests/services/with-services started (SONGDA_TEST_KAFKA_BROKERS, SONGDA_TEST_REDIS_URL),
// for the in-process integration tier. For tests only.
#pragma once

#include <string>

#include "gateway/config/config.h"

namespace songda::testing {

// `base` (redis://host:port[/db]) with database `db` instead of its own.
std::string redis_url_with_db(const std::string& base, int db);

// config/gateway.yaml with: a fresh topic `<name>-…` of `partitions` partitions and its `.dlq` (both
// created), a fresh consumer group, Redis database `redis_db` of the test Redis (emptied by FLUSHDB),
// HTTP on a free port, dispatch polling every 10 ms, quiet hours off. Throws std::runtime_error naming
// what is missing or failed.
Config config_for_test_services(const std::string& name, int redis_db, int partitions = 2);

}  // namespace songda::testing
