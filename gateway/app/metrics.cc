#include "gateway/app/metrics.h"

#include <prometheus/client_metric.h>
#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include <utility>

namespace songda {
namespace {

prometheus::MetricFamily family(const std::string& name, const std::string& help, bool counter) {
  prometheus::MetricFamily f;
  f.name = name;
  f.help = help;
  f.type = counter ? prometheus::MetricType::Counter : prometheus::MetricType::Gauge;
  return f;
}

void add_sample(prometheus::MetricFamily& f, double value, std::vector<prometheus::ClientMetric::Label> labels) {
  prometheus::ClientMetric m;
  m.label = std::move(labels);
  if (f.type == prometheus::MetricType::Counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
  f.metric.push_back(std::move(m));
}

}  // namespace

std::string render_metrics(const std::vector<MetricSource>& sources,
                           const std::vector<LabelledMetricSource>& labelled) {
  std::vector<prometheus::MetricFamily> families;
  families.reserve(sources.size() + labelled.size());
  for (const auto& s : sources) {
    families.push_back(family(s.name, s.help, s.counter));
    add_sample(families.back(), s.read(), {});
  }
  for (const auto& s : labelled) {
    families.push_back(family(s.name, s.help, s.counter));
    for (const auto& v : s.read()) add_sample(families.back(), v.value, {{s.label, v.label_value}});
  }
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace songda
