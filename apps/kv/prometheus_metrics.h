// apps/kv/prometheus_metrics.h — a keel::MetricsSink that keeps every series
// in memory and renders them in Prometheus' text exposition format, for
// keel-kv's GET /metrics.
//
// Counters (names ending in _total) add up; gauges hold the last value;
// histograms count observations into fixed buckets: seconds for names
// ending in _seconds, bytes for _bytes, plain numbers otherwise.
//
// Thread safety: every method may be called from any thread (one mutex).
#pragma once

#include <initializer_list>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "keel/metrics.h"

namespace keel::kv {

class PrometheusMetrics final : public MetricsSink {
 public:
  void add(std::string_view name, std::uint64_t delta,
           std::span<const MetricLabel> labels) override;
  void set(std::string_view name, double value, std::span<const MetricLabel> labels) override;
  void observe(std::string_view name, double value, std::span<const MetricLabel> labels) override;
  using MetricsSink::add;
  using MetricsSink::observe;
  using MetricsSink::set;

  // Every series, families sorted by name ("# TYPE" line first).
  std::string render() const;

  // A gauge's last value; nullopt if it was never set with these labels.
  // (keel-kv's status reads keel's per-peer replication lag back.)
  std::optional<double> gauge(std::string_view name,
                              std::initializer_list<MetricLabel> labels) const;

 private:
  enum class Type { kCounter, kGauge, kHistogram };
  struct Series {
    double value = 0;                   // counter, gauge
    std::vector<std::uint64_t> counts;  // histogram: per bucket (not cumulative)
    double sum = 0;
    std::uint64_t count = 0;
  };
  struct Family {
    Type type = Type::kCounter;
    std::vector<double> bounds;            // histogram bucket upper bounds
    std::map<std::string, Series> series;  // by rendered label set
  };
  // Null if `name` was first used as another type.
  Family* family(std::string_view name, Type type);

  mutable std::mutex mutex_;
  std::map<std::string, Family, std::less<>> families_;
};

}  // namespace keel::kv
