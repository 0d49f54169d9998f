// apps/kv/prometheus_metrics.cc — see prometheus_metrics.h.
#include "kv/prometheus_metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace keel::kv {
namespace {

std::string escape_label(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') {
      out.push_back('\\');
      out.push_back(c);
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// `a="1",b="x"`: the label set as the series' key and as rendered.
std::string label_key(std::span<const MetricLabel> labels) {
  std::vector<std::pair<std::string_view, const std::string*>> sorted;
  sorted.reserve(labels.size());
  for (const MetricLabel& label : labels) sorted.emplace_back(label.name, &label.value);
  std::sort(sorted.begin(), sorted.end());
  std::string out;
  for (const auto& [name, value] : sorted) {
    if (!out.empty()) out.push_back(',');
    out.append(name);
    out += "=\"" + escape_label(*value) + "\"";
  }
  return out;
}

// The shortest text that reads back as the same double (0.1, not
// 0.10000000000000001).
std::string number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  char buffer[64];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, v);
  return ec == std::errc() ? std::string(buffer, end) : std::string("NaN");
}

bool ends_with(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

std::vector<double> bounds_for(std::string_view name) {
  if (ends_with(name, "_seconds")) {
    return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
            0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
  }
  if (ends_with(name, "_bytes")) {
    std::vector<double> bounds;
    for (double b = 1024; b <= double(1ULL << 34); b *= 4) bounds.push_back(b);
    return bounds;
  }
  return {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 10000, 100000};
}

}  // namespace

PrometheusMetrics::Family* PrometheusMetrics::family(std::string_view name, Type type) {
  auto it = families_.find(name);
  if (it == families_.end()) {
    Family f;
    f.type = type;
    if (type == Type::kHistogram) f.bounds = bounds_for(name);
    it = families_.emplace(std::string(name), std::move(f)).first;
  }
  // A name keeps the kind it was first used as: a use as another kind (a
  // caller's mistake) is dropped rather than render a malformed page.
  return it->second.type == type ? &it->second : nullptr;
}

void PrometheusMetrics::add(std::string_view name, std::uint64_t delta,
                            std::span<const MetricLabel> labels) {
  std::lock_guard lock(mutex_);
  if (Family* f = family(name, Type::kCounter)) f->series[label_key(labels)].value += double(delta);
}

void PrometheusMetrics::set(std::string_view name, double value,
                            std::span<const MetricLabel> labels) {
  std::lock_guard lock(mutex_);
  if (Family* f = family(name, Type::kGauge)) f->series[label_key(labels)].value = value;
}

void PrometheusMetrics::observe(std::string_view name, double value,
                                std::span<const MetricLabel> labels) {
  std::lock_guard lock(mutex_);
  Family* f = family(name, Type::kHistogram);
  if (f == nullptr) return;
  Series& s = f->series[label_key(labels)];
  if (s.counts.empty()) s.counts.assign(f->bounds.size(), 0);
  auto bucket = std::lower_bound(f->bounds.begin(), f->bounds.end(), value);
  if (bucket != f->bounds.end()) ++s.counts[bucket - f->bounds.begin()];
  s.sum += value;
  ++s.count;
}

std::optional<double> PrometheusMetrics::gauge(std::string_view name,
                                               std::initializer_list<MetricLabel> labels) const {
  std::lock_guard lock(mutex_);
  auto f = families_.find(name);
  if (f == families_.end() || f->second.type != Type::kGauge) return std::nullopt;
  auto s = f->second.series.find(label_key(std::span(labels.begin(), labels.size())));
  if (s == f->second.series.end()) return std::nullopt;
  return s->second.value;
}

std::string PrometheusMetrics::render() const {
  std::lock_guard lock(mutex_);
  std::string out;
  for (const auto& [name, f] : families_) {
    const char* type = f.type == Type::kCounter ? "counter"
                       : f.type == Type::kGauge ? "gauge"
                                                : "histogram";
    out += "# TYPE " + name + " " + type + "\n";
    for (const auto& [labels, s] : f.series) {
      if (f.type != Type::kHistogram) {
        out += name + (labels.empty() ? "" : "{" + labels + "}") + " " + number(s.value) + "\n";
        continue;
      }
      const std::string sep = labels.empty() ? "" : ",";
      std::uint64_t cumulative = 0;
      for (std::size_t i = 0; i < f.bounds.size(); ++i) {
        cumulative += s.counts[i];
        out += name + "_bucket{" + labels + sep + "le=\"" + number(f.bounds[i]) + "\"} " +
               std::to_string(cumulative) + "\n";
      }
      out += name + "_bucket{" + labels + sep + "le=\"+Inf\"} " + std::to_string(s.count) + "\n";
      const std::string braces = labels.empty() ? "" : "{" + labels + "}";
      out += name + "_sum" + braces + " " + number(s.sum) + "\n";
      out += name + "_count" + braces + " " + std::to_string(s.count) + "\n";
    }
  }
  return out;
}

}  // namespace keel::kv
