// keel-kv's /metrics: counters add up, gauges keep the last value,
// histograms count into cumulative buckets chosen by the name's unit, and
// everything renders in Prometheus' text format with sorted, escaped labels.
#include "kv/prometheus_metrics.h"

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace keel::kv {
namespace {

using testing::ElementsAre;
using testing::ElementsAreArray;

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Every sample line: series (name and labels) -> value as rendered.
std::map<std::string, std::string> samples_of(const std::string& text) {
  std::map<std::string, std::string> samples;
  for (const std::string& line : lines_of(text)) {
    if (line.empty() || line[0] == '#') continue;
    const auto space = line.rfind(' ');
    EXPECT_NE(space, std::string::npos) << line;
    if (space == std::string::npos) continue;
    EXPECT_TRUE(samples.emplace(line.substr(0, space), line.substr(space + 1)).second)
        << "series twice: " << line;
  }
  return samples;
}

struct Bucket {
  double le;
  std::uint64_t count;
};

// The `name_bucket{<labels>le="..."} N` lines in order; `labels` is what
// precedes le (`peer="2",`), empty for none.
std::vector<Bucket> buckets_of(const std::string& text, const std::string& name,
                               const std::string& labels = "") {
  const std::string start = name + "_bucket{" + labels + "le=\"";
  std::vector<Bucket> buckets;
  for (const std::string& line : lines_of(text)) {
    if (line.rfind(start, 0) != 0) continue;
    const std::string rest = line.substr(start.size());
    const auto quote = rest.find("\"} ");
    EXPECT_NE(quote, std::string::npos) << line;
    if (quote == std::string::npos) continue;
    const std::string le = rest.substr(0, quote);
    char* end = nullptr;
    const double bound = std::strtod(le.c_str(), &end);
    EXPECT_EQ(*end, '\0') << "le is not a number: " << line;
    buckets.push_back({bound, std::stoull(rest.substr(quote + 3))});
  }
  return buckets;
}

std::vector<double> bounds_of(const std::vector<Bucket>& buckets) {
  std::vector<double> bounds;
  for (const Bucket& b : buckets) bounds.push_back(b.le);
  return bounds;
}

double number(const std::string& rendered) {
  char* end = nullptr;
  const double v = std::strtod(rendered.c_str(), &end);
  EXPECT_EQ(*end, '\0') << "not a number: " << rendered;
  return v;
}

TEST(KvPrometheusMetricsTest, nothing_recorded_renders_nothing) {
  PrometheusMetrics metrics;
  EXPECT_EQ(metrics.render(), "");
}

TEST(KvPrometheusMetricsTest, counters_add_up_under_a_counter_type_line) {
  PrometheusMetrics metrics;
  metrics.add("keel_kv_requests_total", 2, {});
  metrics.add("keel_kv_requests_total", 3, {});
  metrics.add("keel_kv_requests_total", 0, {});
  EXPECT_EQ(metrics.render(),
            "# TYPE keel_kv_requests_total counter\n"
            "keel_kv_requests_total 5\n");
}

TEST(KvPrometheusMetricsTest, each_label_set_is_its_own_series) {
  PrometheusMetrics metrics;
  metrics.add("keel_kv_requests_total", 1, {{"code", "200"}});
  metrics.add("keel_kv_requests_total", 4, {{"code", "404"}});
  metrics.add("keel_kv_requests_total", 2, {{"code", "200"}});
  metrics.add("keel_kv_requests_total", 7, {});
  EXPECT_EQ(samples_of(metrics.render()),
            (std::map<std::string, std::string>{{"keel_kv_requests_total", "7"},
                                                {"keel_kv_requests_total{code=\"200\"}", "3"},
                                                {"keel_kv_requests_total{code=\"404\"}", "4"}}));
}

TEST(KvPrometheusMetricsTest, gauges_keep_the_last_value_under_a_gauge_type_line) {
  PrometheusMetrics metrics;
  metrics.set("keel_kv_keys", 10, {});
  metrics.set("keel_kv_keys", 3, {});
  metrics.set("keel_kv_term", -1.5, {{"peer", 2}});
  metrics.set("keel_kv_term", 0.25, {{"peer", 2}});
  EXPECT_EQ(metrics.render(),
            "# TYPE keel_kv_keys gauge\n"
            "keel_kv_keys 3\n"
            "# TYPE keel_kv_term gauge\n"
            "keel_kv_term{peer=\"2\"} 0.25\n");
}

TEST(KvPrometheusMetricsTest, histogram_buckets_are_cumulative_and_inf_is_the_count) {
  PrometheusMetrics metrics;
  const std::vector<double> observed = {0.0001, 0.003, 0.003, 0.7, 7, 11};
  double sum = 0;
  for (double v : observed) {
    metrics.observe("keel_kv_apply_seconds", v, {});
    sum += v;
  }
  const std::string text = metrics.render();
  EXPECT_THAT(lines_of(text), testing::Contains("# TYPE keel_kv_apply_seconds histogram"));
  const std::vector<Bucket> buckets = buckets_of(text, "keel_kv_apply_seconds");
  ASSERT_EQ(buckets.size(), 17u);  // 16 bounds and +Inf
  std::uint64_t previous = 0;
  for (const Bucket& b : buckets) {
    // Cumulative: every bucket counts the observations at or below its bound.
    std::uint64_t expected = 0;
    for (double v : observed) expected += v <= b.le ? 1 : 0;
    EXPECT_EQ(b.count, expected) << "le=" << b.le;
    EXPECT_GE(b.count, previous) << "le=" << b.le;
    previous = b.count;
  }
  EXPECT_TRUE(std::isinf(buckets.back().le));
  EXPECT_EQ(buckets.back().count, observed.size());  // 11 is above every bound
  const std::map<std::string, std::string> samples = samples_of(text);
  EXPECT_EQ(samples.at("keel_kv_apply_seconds_count"), "6");
  EXPECT_EQ(number(samples.at("keel_kv_apply_seconds_sum")), sum);
}

TEST(KvPrometheusMetricsTest, an_observation_on_a_bound_counts_in_that_bucket) {
  PrometheusMetrics metrics;
  metrics.observe("keel_kv_batch", 5, {});
  const std::vector<Bucket> buckets = buckets_of(metrics.render(), "keel_kv_batch");
  ASSERT_GE(buckets.size(), 4u);
  EXPECT_EQ(buckets[1].le, 2);
  EXPECT_EQ(buckets[1].count, 0u);
  EXPECT_EQ(buckets[2].le, 5);
  EXPECT_EQ(buckets[2].count, 1u);
}

TEST(KvPrometheusMetricsTest, seconds_histograms_use_buckets_from_100us_to_10s) {
  PrometheusMetrics metrics;
  metrics.observe("keel_x_seconds", 1, {});
  const std::vector<Bucket> buckets = buckets_of(metrics.render(), "keel_x_seconds");
  EXPECT_THAT(bounds_of(buckets),
              ElementsAreArray({0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, HUGE_VAL}));
}

TEST(KvPrometheusMetricsTest, bytes_histograms_use_powers_of_four_from_1KiB_to_16GiB) {
  PrometheusMetrics metrics;
  metrics.observe("keel_x_bytes", 1024, {});
  metrics.observe("keel_x_bytes", 1025, {});
  const std::vector<Bucket> buckets = buckets_of(metrics.render(), "keel_x_bytes");
  std::vector<double> expected;
  for (int shift = 10; shift <= 34; shift += 2) expected.push_back(double(1ULL << shift));
  expected.push_back(HUGE_VAL);
  EXPECT_THAT(bounds_of(buckets), ElementsAreArray(expected));
  ASSERT_GE(buckets.size(), 2u);
  EXPECT_EQ(buckets[0].count, 1u);  // 1024 <= 1024
  EXPECT_EQ(buckets[1].count, 2u);  // 1025 <= 4096
}

TEST(KvPrometheusMetricsTest, other_histograms_use_plain_number_buckets) {
  PrometheusMetrics metrics;
  metrics.observe("keel_x_entries", 3, {});
  EXPECT_THAT(bounds_of(buckets_of(metrics.render(), "keel_x_entries")),
              ElementsAreArray({1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0,
                                10000.0, 100000.0, HUGE_VAL}));
}

TEST(KvPrometheusMetricsTest, histogram_labels_come_before_le_and_on_sum_and_count) {
  PrometheusMetrics metrics;
  metrics.observe("keel_x_seconds", 0.5, {{"peer", 2}});
  metrics.observe("keel_x_seconds", 0.5, {{"peer", 3}});
  metrics.observe("keel_x_seconds", 0.5, {{"peer", 3}});
  const std::string text = metrics.render();
  const std::vector<Bucket> peer2 = buckets_of(text, "keel_x_seconds", "peer=\"2\",");
  const std::vector<Bucket> peer3 = buckets_of(text, "keel_x_seconds", "peer=\"3\",");
  ASSERT_EQ(peer2.size(), 17u);
  ASSERT_EQ(peer3.size(), 17u);
  EXPECT_EQ(peer2.back().count, 1u);
  EXPECT_EQ(peer3.back().count, 2u);
  const std::map<std::string, std::string> samples = samples_of(text);
  EXPECT_EQ(samples.at("keel_x_seconds_count{peer=\"2\"}"), "1");
  EXPECT_EQ(samples.at("keel_x_seconds_count{peer=\"3\"}"), "2");
  EXPECT_EQ(samples.at("keel_x_seconds_sum{peer=\"3\"}"), "1");
}

TEST(KvPrometheusMetricsTest, labels_render_sorted_by_name_and_order_does_not_matter) {
  PrometheusMetrics metrics;
  metrics.add("keel_x_total", 1, {{"zeta", "1"}, {"alpha", "2"}, {"mid", "3"}});
  metrics.add("keel_x_total", 1, {{"alpha", "2"}, {"mid", "3"}, {"zeta", "1"}});
  EXPECT_EQ(metrics.render(),
            "# TYPE keel_x_total counter\n"
            "keel_x_total{alpha=\"2\",mid=\"3\",zeta=\"1\"} 2\n");
}

TEST(KvPrometheusMetricsTest, label_values_escape_quotes_backslashes_and_newlines) {
  PrometheusMetrics metrics;
  metrics.add("keel_x_total", 1, {{"path", "a\"b\\c\nd"}});
  EXPECT_EQ(metrics.render(),
            "# TYPE keel_x_total counter\n"
            R"(keel_x_total{path="a\"b\\c\nd"} 1)"
            "\n");
}

TEST(KvPrometheusMetricsTest, families_render_in_name_order_each_after_its_type_line) {
  PrometheusMetrics metrics;
  metrics.set("keel_b", 1, {});
  metrics.add("keel_c_total", 1, {});
  metrics.observe("keel_a_seconds", 1, {});
  std::vector<std::string> types;
  for (const std::string& line : lines_of(metrics.render())) {
    if (line.rfind("# TYPE ", 0) == 0) types.push_back(line);
  }
  EXPECT_THAT(types, ElementsAre("# TYPE keel_a_seconds histogram", "# TYPE keel_b gauge",
                                 "# TYPE keel_c_total counter"));
  const std::vector<std::string> lines = lines_of(metrics.render());
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines.front(), "# TYPE keel_a_seconds histogram");
}

// A name keeps the kind it was first used as; a stray use as another kind
// (a caller's mistake) must still leave a well-formed render.
TEST(KvPrometheusMetricsTest, a_histogram_name_also_used_as_a_counter_still_renders_well_formed) {
  PrometheusMetrics metrics;
  metrics.observe("keel_x_seconds", 1, {{"a", "1"}});
  metrics.add("keel_x_seconds", 1, {{"a", "2"}});
  const std::string text = metrics.render();
  for (const char* labels : {"a=\"1\",", "a=\"2\","}) {
    for (const Bucket& b : buckets_of(text, "keel_x_seconds", labels)) {
      EXPECT_LE(b.count, 1u) << labels << " le=" << b.le;
    }
  }
}

TEST(KvPrometheusMetricsTest, concurrent_updates_from_many_threads_all_count) {
  PrometheusMetrics metrics;
  constexpr int kThreads = 8;
  constexpr int kPerThread = 20'000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&metrics, t] {
      for (int i = 0; i < kPerThread; ++i) {
        metrics.add("keel_x_total", 1, {});
        metrics.add("keel_x_total", 2, {{"thread", static_cast<std::uint64_t>(t)}});
        metrics.observe("keel_x_seconds", 0.001, {});
        if (i % 1000 == 0) (void)metrics.render();
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  const std::map<std::string, std::string> samples = samples_of(metrics.render());
  EXPECT_EQ(samples.at("keel_x_total"), std::to_string(kThreads * kPerThread));
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(samples.at("keel_x_total{thread=\"" + std::to_string(t) + "\"}"),
              std::to_string(2 * kPerThread));
  }
  EXPECT_EQ(samples.at("keel_x_seconds_count"), std::to_string(kThreads * kPerThread));
}

}  // namespace
}  // namespace keel::kv
