// `songda demo`: the whole pipeline on embedded parts. Kafka is librdkafka's
// in-process mock cluster; Redis is the one SONGDA_REDIS_URL names (scripts/demo
// starts a private redis-server). It publishes schemas/examples/*.json plus a
// redelivered duplicate, a malformed message and a conflicting reuse of an
// event id, waits until every delivery reached the recipient's system, opens
// one inbox message through the HTTP API, and prints what happened.
#pragma once

#include <string>

namespace songda {

struct DemoOptions {
  std::string config_path;   // default: <source>/config/gateway.yaml
  std::string examples_dir;  // default: <source>/schemas/examples
  bool serve = false;        // keep running after the table, print URLs
  int timeout_s = 60;
};

// Returns the process exit code: 0 when every expected delivery and DLQ record was seen.
int run_demo(const DemoOptions& options);

}  // namespace songda
