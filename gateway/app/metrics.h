// /metrics in the Prometheus text format, via prometheus-cpp: a Collectable
// that reads Songda's counters at scrape time.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace songda {

struct MetricSource {
  std::string name;  // e.g. songda_ingest_messages_total
  std::string help;
  bool counter = true;  // false: gauge
  std::function<double()> read;
};

// Serialises the given sources as Prometheus text.
std::string render_metrics(const std::vector<MetricSource>& sources);

}  // namespace songda
