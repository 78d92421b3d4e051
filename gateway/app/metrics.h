// /metrics in the Prometheus text format, via prometheus-cpp: a Collectable
// that reads Songda's counters at scrape time.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace songda {

struct LabelledValue {
  std::string label_value;
  double value = 0;
};

struct MetricSource {
  std::string name;  // e.g. songda_ingest_messages_total
  std::string help;
  bool counter = true;  // false: gauge
  std::function<double()> read;
};

// A family with one sample per value of `label` (e.g. one per SMS provider).
struct LabelledMetricSource {
  std::string name;
  std::string help;
  bool counter = true;
  std::string label;
  std::function<std::vector<LabelledValue>()> read;
};

// Serialises the given sources as Prometheus text.
std::string render_metrics(const std::vector<MetricSource>& sources,
                           const std::vector<LabelledMetricSource>& labelled = {});

}  // namespace songda
