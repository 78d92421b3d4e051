#include "gateway/app/metrics.h"

#include <prometheus/client_metric.h>
#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

namespace songda {

std::string render_metrics(const std::vector<MetricSource>& sources) {
  std::vector<prometheus::MetricFamily> families;
  families.reserve(sources.size());
  for (const auto& s : sources) {
    prometheus::MetricFamily f;
    f.name = s.name;
    f.help = s.help;
    f.type = s.counter ? prometheus::MetricType::Counter : prometheus::MetricType::Gauge;
    prometheus::ClientMetric m;
    if (s.counter) {
      m.counter.value = s.read();
    } else {
      m.gauge.value = s.read();
    }
    f.metric.push_back(m);
    families.push_back(std::move(f));
  }
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace songda
