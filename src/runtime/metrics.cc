// The null metrics sink (keel/metrics.h).
#include "keel/metrics.h"

namespace keel {

namespace {

class NullMetrics final : public MetricsSink {
 public:
  using MetricsSink::add;
  using MetricsSink::observe;
  using MetricsSink::set;
  void add(std::string_view, std::uint64_t, std::span<const MetricLabel>) override {}
  void set(std::string_view, double, std::span<const MetricLabel>) override {}
  void observe(std::string_view, double, std::span<const MetricLabel>) override {}
};

}  // namespace

std::shared_ptr<MetricsSink> make_null_metrics() { return std::make_shared<NullMetrics>(); }

}  // namespace keel
