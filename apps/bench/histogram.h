// apps/bench/histogram.h — latencies in a log-linear histogram.
//
// 100 sub-buckets per power of two of nanoseconds, so a bucket is under 1 %
// wide, up to about 18 minutes. Not thread-safe: each client thread records
// into its own and they are merged at the end.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>

namespace keel_bench {

class Histogram {
 public:
  void record(std::chrono::nanoseconds latency) {
    const auto ns = static_cast<std::uint64_t>(std::max<std::int64_t>(1, latency.count()));
    ++counts_[bucket_of(ns)];
    ++total_;
  }
  void merge(const Histogram& other) {
    for (std::size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
    total_ += other.total_;
  }
  std::uint64_t total() const { return total_; }
  // The latency below which `quantile` of the samples fall (bucket midpoint).
  double percentile_us(double quantile) const {
    if (total_ == 0) return 0;
    const auto rank = static_cast<std::uint64_t>(std::ceil(quantile * static_cast<double>(total_)));
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (seen >= rank) return value_of(i) / 1000.0;
    }
    return value_of(counts_.size() - 1) / 1000.0;
  }

 private:
  static constexpr std::size_t kSubBuckets = 100;
  static constexpr std::size_t kPowers = 40;
  static std::size_t bucket_of(std::uint64_t ns) {
    const int power = 63 - __builtin_clzll(ns);
    const double base = std::ldexp(1.0, power);
    const auto sub = static_cast<std::size_t>((static_cast<double>(ns) - base) / base *
                                              static_cast<double>(kSubBuckets));
    return std::min(static_cast<std::size_t>(power) * kSubBuckets + std::min(sub, kSubBuckets - 1),
                    kPowers * kSubBuckets - 1);
  }
  static double value_of(std::size_t bucket) {
    const std::size_t power = bucket / kSubBuckets;
    const std::size_t sub = bucket % kSubBuckets;
    const double base = std::ldexp(1.0, static_cast<int>(power));
    return base + base * (static_cast<double>(sub) + 0.5) / static_cast<double>(kSubBuckets);
  }

  std::array<std::uint64_t, kSubBuckets * kPowers> counts_{};
  std::uint64_t total_ = 0;
};

}  // namespace keel_bench
