// keel/metrics.h — the numbers keel reports while it runs, for the user's
// metrics system: a sink of counters, gauges and histograms with labels that
// keel::Raft (RaftDependencies::metrics) and the TCP transport
// (TcpTransportOptions::metrics) call. The default sink does nothing; keel
// adds no metrics library of its own. Names follow Prometheus' conventions
// (`keel_` prefix, `_total` counters, `_seconds` histograms); docs/operations.md
// lists every one with its labels.
//
// keel calls the sink per batch, per tick or per event, never per command on
// a path that batches: a sink may take a lock.
//
// Thread safety: every method is called from any of keel's threads (the
// raft loop, the log writer, the applier, the transport's I/O thread),
// concurrently; an implementation must be thread-safe, must not block for
// long and must not call back into the Raft or the transport.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace keel {

// One label of a series: `peer="2"`, `lane="replication"`.
struct MetricLabel {
  std::string_view name;
  std::string value;

  MetricLabel(std::string_view n, std::string v) : name(n), value(std::move(v)) {}
  MetricLabel(std::string_view n, const char* v) : name(n), value(v) {}
  MetricLabel(std::string_view n, std::uint64_t v) : name(n), value(std::to_string(v)) {}
};

class MetricsSink {
 public:
  virtual ~MetricsSink() = default;
  // A counter grows by `delta`.
  virtual void add(std::string_view name, std::uint64_t delta,
                   std::span<const MetricLabel> labels) = 0;
  // A gauge is now `value`.
  virtual void set(std::string_view name, double value, std::span<const MetricLabel> labels) = 0;
  // A histogram observes `value` (seconds for `_seconds`, bytes for `_bytes`).
  virtual void observe(std::string_view name, double value,
                       std::span<const MetricLabel> labels) = 0;

  // The same with labels written in place: sink.add("keel_x_total", 1, {{"peer", 2}}).
  void add(std::string_view name, std::uint64_t delta, std::initializer_list<MetricLabel> labels) {
    add(name, delta, std::span<const MetricLabel>(labels.begin(), labels.size()));
  }
  void set(std::string_view name, double value, std::initializer_list<MetricLabel> labels) {
    set(name, value, std::span<const MetricLabel>(labels.begin(), labels.size()));
  }
  void observe(std::string_view name, double value, std::initializer_list<MetricLabel> labels) {
    observe(name, value, std::span<const MetricLabel>(labels.begin(), labels.size()));
  }
};

// Does nothing: the default.
std::shared_ptr<MetricsSink> make_null_metrics();

}  // namespace keel
