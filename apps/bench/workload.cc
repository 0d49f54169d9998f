// apps/bench/workload.cc — closed-loop clients and their figures.
#include "workload.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

#include "process_usage.h"

namespace keel_bench {
namespace {

using Clock = std::chrono::steady_clock;

// How long one operation may take before it counts as failed.
constexpr std::chrono::seconds kOperationTimeout{10};
// How long the servers may take to apply everything after the run.
constexpr std::chrono::seconds kCatchUpBound{10};

void sleep_seconds(double seconds) {
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
}

}  // namespace

Results run_clients(const Options& options, const std::vector<keel::Raft*>& servers,
                    keel::Raft& target, const std::function<void(bool)>& on_window) {
  const std::string payload(options.payload, 'x');
  const keel::Consistency consistency =
      options.consistency == "lease" ? keel::Consistency::kLease : keel::Consistency::kLinearizable;
  std::atomic<int> phase{0};  // 0 warm-up, 1 measuring, 2 done
  std::vector<Histogram> histograms(options.clients);
  std::vector<std::uint64_t> counts(options.clients, 0);
  std::vector<std::uint64_t> failures(options.clients, 0);
  std::vector<std::thread> clients;
  for (std::size_t c = 0; c < options.clients; ++c) {
    clients.emplace_back([&, c] {
      while (phase.load(std::memory_order_relaxed) < 2) {
        const auto started = Clock::now();
        const bool ok = options.reads() ? target.read(consistency, kOperationTimeout).get().is_ok()
                                        : target.apply(payload, kOperationTimeout).get().is_ok();
        if (phase.load(std::memory_order_relaxed) != 1) continue;
        if (!ok) {
          ++failures[c];
          continue;
        }
        histograms[c].record(Clock::now() - started);
        ++counts[c];
      }
    });
  }
  sleep_seconds(options.warmup_s);
  const Usage before = usage_of_self();
  const std::uint64_t heap_before = heap_in_use_bytes();
  const keel::Index index_before = target.stats().last_index;
  on_window(true);
  const auto started = Clock::now();
  phase = 1;
  sleep_seconds(options.duration_s);
  phase = 2;
  const auto elapsed = std::chrono::duration<double>(Clock::now() - started).count();
  on_window(false);
  for (auto& client : clients) client.join();
  const Usage after = usage_of_self();

  Results results;
  for (std::size_t c = 0; c < options.clients; ++c) {
    results.latency.merge(histograms[c]);
    results.operations += counts[c];
    results.failures += failures[c];
  }
  results.ops_per_sec = static_cast<double>(results.operations) / elapsed;
  const double ops = std::max<double>(1, static_cast<double>(results.operations));
  results.cpu_us_per_op = (after.cpu_s - before.cpu_s) * 1e6 / ops;
  results.context_switches_per_op =
      static_cast<double>(after.context_switches - before.context_switches) / ops;
  results.disk_bytes_per_op =
      static_cast<double>(after.disk_write_bytes - before.disk_write_bytes) / ops;
  results.peak_rss_kb = after.peak_rss_kb;
  if (options.reads()) return results;

  // Every client has its answer; once the servers have applied everything
  // (a quiet moment), what is allocated beyond the start is what the logs
  // hold.
  const keel::Index index_after = target.stats().last_index;
  const auto caught_up = Clock::now() + kCatchUpBound;
  while (Clock::now() < caught_up) {
    bool all = true;
    for (keel::Raft* server : servers) all = all && server->stats().applied_index >= index_after;
    if (all) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const std::uint64_t heap_after = heap_in_use_bytes();
  const double entries = static_cast<double>(index_after - index_before);
  if (entries > 0 && heap_after > heap_before) {
    results.log_bytes_per_entry_per_server = static_cast<double>(heap_after - heap_before) /
                                             (entries * static_cast<double>(servers.size()));
  }
  return results;
}

void print_results(const Options& options, const Results& r, const std::string& extra_json,
                   const std::string& extra_text) {
  const Histogram& l = r.latency;
  if (options.json) {
    std::printf(
        "{\"mode\": \"%s\", \"log\": \"%s\", \"servers\": %zu, \"clients\": %zu, "
        "\"payload_bytes\": %zu, \"workload\": \"%s\", \"read\": \"%s\", \"on\": \"%s\", "
        "\"duration_s\": %.1f, \"operations\": %llu, \"failures\": %llu, \"ops_per_sec\": %.0f, "
        "\"latency_us\": {\"p50\": %.1f, \"p95\": %.1f, \"p99\": %.1f, \"p99_9\": %.1f, "
        "\"p99_99\": %.1f}, "
        "\"cpu_us_per_op\": %.2f, \"context_switches_per_op\": %.2f, "
        "\"disk_bytes_per_op\": %.0f, \"peak_rss_kb\": %ld, "
        "\"log_bytes_per_entry_per_server\": %.0f%s}\n",
        options.mode.c_str(), options.log.c_str(), options.servers, options.clients,
        options.payload, options.workload.c_str(),
        options.reads() ? options.consistency.c_str() : "", options.on.c_str(), options.duration_s,
        static_cast<unsigned long long>(r.operations), static_cast<unsigned long long>(r.failures),
        r.ops_per_sec, l.percentile_us(0.50), l.percentile_us(0.95), l.percentile_us(0.99),
        l.percentile_us(0.999), l.percentile_us(0.9999), r.cpu_us_per_op, r.context_switches_per_op,
        r.disk_bytes_per_op, r.peak_rss_kb, r.log_bytes_per_entry_per_server, extra_json.c_str());
    return;
  }
  if (options.reads()) {
    std::printf("keel-bench %s, %s log: %zu servers, %zu clients, %s reads on the %s, %.1f s\n",
                options.mode.c_str(), options.log.c_str(), options.servers, options.clients,
                options.consistency.c_str(), options.on.c_str(), options.duration_s);
  } else {
    std::printf("keel-bench %s, %s log: %zu servers, %zu clients, %zu-byte commands, %.1f s\n",
                options.mode.c_str(), options.log.c_str(), options.servers, options.clients,
                options.payload, options.duration_s);
  }
  std::printf("  %.0f ops/s (%llu operations, %llu failed)\n", r.ops_per_sec,
              static_cast<unsigned long long>(r.operations),
              static_cast<unsigned long long>(r.failures));
  std::printf("  latency us: p50 %.1f  p95 %.1f  p99 %.1f  p99.9 %.1f  p99.99 %.1f\n",
              l.percentile_us(0.50), l.percentile_us(0.95), l.percentile_us(0.99),
              l.percentile_us(0.999), l.percentile_us(0.9999));
  std::printf(
      "  this process: cpu %.2f us/op, %.2f context switches/op, %.0f disk bytes/op, "
      "peak rss %ld KiB\n",
      r.cpu_us_per_op, r.context_switches_per_op, r.disk_bytes_per_op, r.peak_rss_kb);
  if (!options.reads() && options.mode != "processes") {
    std::printf("  log memory %.0f bytes per entry per server\n", r.log_bytes_per_entry_per_server);
  }
  std::printf("%s", extra_text.c_str());
}

}  // namespace keel_bench
