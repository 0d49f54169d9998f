// apps/bench/keel_bench.cc — keel-bench: the cluster benchmark (BENCHMARKS.md).
//
//   keel-bench --mode in-process --clients 32 --payload 256 --duration 10 --warmup 2
//   keel-bench --clients 1 --json
//
// In-process mode: N servers (default 3) in this process, over the in-memory
// network, with memory stores, the thread Env and an FSM that does nothing
// (it declares itself cheap). Closed-loop clients on the leader: each
// submits one command of --payload bytes with apply() and waits until it is
// committed and applied on the leader before submitting the next. Reports
// ops/s; latency percentiles from a log-linear histogram (about 1 % wide
// buckets); CPU per operation and context switches per operation, of the
// whole process, from getrusage(); peak RSS; and the heap the servers' logs
// grew by (glibc's bytes in use, measured at a quiet moment after the
// run), per entry and server. As text, or as JSON with --json.
//
// Uses the public API only.
#include <malloc.h>
#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "keel/raft.h"

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::duration_cast;
using std::chrono::nanoseconds;

struct Options {
  std::string mode = "in-process";
  std::size_t servers = 3;
  std::size_t clients = 1;
  std::size_t payload = 256;
  double duration_s = 10;
  double warmup_s = 2;
  bool json = false;
};

[[noreturn]] void usage(const std::string& error) {
  if (!error.empty()) std::cerr << "keel-bench: " << error << "\n\n";
  std::cerr << R"(usage: keel-bench [options]
  --mode in-process    servers in this process over the in-memory network (the only mode
                       so far; TCP and separate processes come with the transport)
  --servers N          servers in the cluster (default 3)
  --clients N          closed-loop clients on the leader (default 1)
  --payload BYTES      bytes per command (default 256)
  --duration SECONDS   measured time (default 10)
  --warmup SECONDS     time before measuring (default 2)
  --json               one JSON object instead of text
)";
  std::exit(2);
}

double parse_number(std::string_view text, const char* what) {
  double value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || value < 0) {
    usage(std::string("bad ") + what + ": '" + std::string(text) + "'");
  }
  return value;
}

Options parse(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(flag + " needs a value");
      return argv[++i];
    };
    if (flag == "--mode") {
      options.mode = value();
      if (options.mode != "in-process") usage("--mode: only in-process exists so far");
    } else if (flag == "--servers") {
      options.servers = static_cast<std::size_t>(parse_number(value(), "server count"));
      if (options.servers < 1 || options.servers > 9) usage("--servers must be 1..9");
    } else if (flag == "--clients") {
      options.clients = static_cast<std::size_t>(parse_number(value(), "client count"));
      if (options.clients < 1 || options.clients > 4096) usage("--clients must be 1..4096");
    } else if (flag == "--payload") {
      options.payload = static_cast<std::size_t>(parse_number(value(), "payload size"));
      if (options.payload > (1U << 20)) usage("--payload must be at most 1 MiB");
    } else if (flag == "--duration") {
      options.duration_s = parse_number(value(), "duration");
      if (options.duration_s <= 0) usage("--duration must be positive");
    } else if (flag == "--warmup") {
      options.warmup_s = parse_number(value(), "warmup");
    } else if (flag == "--json") {
      options.json = true;
    } else if (flag == "--help" || flag == "-h") {
      usage("");
    } else {
      usage("unknown option '" + flag + "'");
    }
  }
  return options;
}

// Latencies in a log-linear histogram: 100 sub-buckets per power of two of
// nanoseconds, so a bucket is under 1 % wide.
class Histogram {
 public:
  void record(nanoseconds latency) {
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
  static constexpr std::size_t kPowers = 40;  // up to about 18 minutes
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

// An FSM that does nothing but count: the benchmark measures keel.
class NullFsm final : public keel::Fsm {
 public:
  std::string apply(const keel::LogEntry& /*entry*/) override { return {}; }
  bool applies_quickly() const override { return true; }
  keel::Result<std::unique_ptr<keel::FsmSnapshot>> snapshot() override {
    return std::unique_ptr<keel::FsmSnapshot>(std::make_unique<keel::CopiedSnapshot>(""));
  }
  keel::Status restore(const keel::SnapshotMeta& /*meta*/,
                       keel::SnapshotReader& /*reader*/) override {
    return keel::Status::ok();
  }
};

struct Usage {
  double cpu_s = 0;
  std::uint64_t context_switches = 0;
  long max_rss_kb = 0;
};

Usage usage_now() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  Usage out;
  out.cpu_s = static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
              static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
  out.context_switches = static_cast<std::uint64_t>(usage.ru_nvcsw + usage.ru_nivcsw);
  out.max_rss_kb = usage.ru_maxrss;
  return out;
}

// Bytes the allocator has handed out and not taken back (glibc's count of
// bytes in use, chunk headers included): what the servers hold, unlike the
// RSS, which keeps what was freed.
std::uint64_t heap_in_use_bytes() {
  const struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd;
}

struct Cluster {
  std::shared_ptr<keel::Env> env = keel::make_thread_env();
  keel::InMemoryNetwork network{env};
  std::vector<std::unique_ptr<keel::Raft>> servers;

  bool start(std::size_t count) {
    keel::Configuration configuration;
    for (std::size_t i = 1; i <= count; ++i) {
      configuration.servers.push_back(
          keel::Server{keel::ServerId{i}, "server-" + std::to_string(i), keel::Suffrage::kVoter});
    }
    for (const keel::Server& server : configuration.servers) {
      auto log = std::make_shared<keel::MemoryLogStore>();
      auto stable = std::make_shared<keel::MemoryStableStore>();
      if (!keel::bootstrap_cluster(*log, *stable, configuration).is_ok()) return false;
      keel::Config config;
      config.id = server.id;
      auto opened = keel::Raft::open(keel::RaftDependencies{
          config, std::make_shared<NullFsm>(), log, stable,
          std::make_shared<keel::MemorySnapshotStore>(), network.transport(server.id), env});
      if (!opened.is_ok()) {
        std::cerr << "keel-bench: open: " << opened.status() << "\n";
        return false;
      }
      servers.push_back(std::move(opened).value());
    }
    return true;
  }

  keel::Raft* ready_leader(std::chrono::seconds bound) {
    const auto deadline = Clock::now() + bound;
    while (Clock::now() < deadline) {
      for (auto& server : servers) {
        const keel::RaftStats stats = server->stats();
        if (stats.state == keel::RaftState::kLeader && stats.ready_term == stats.term) {
          return server.get();
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return nullptr;
  }
};

struct Results {
  double ops_per_sec = 0;
  std::uint64_t operations = 0;
  std::uint64_t failures = 0;
  Histogram latency;
  double cpu_us_per_op = 0;
  double context_switches_per_op = 0;
  long peak_rss_kb = 0;
  double log_bytes_per_entry_per_server = 0;
};

Results run(const Options& options, Cluster& cluster, keel::Raft& leader) {
  const std::string payload(options.payload, 'x');
  std::atomic<int> phase{0};  // 0 warm-up, 1 measuring, 2 done
  std::vector<Histogram> histograms(options.clients);
  std::vector<std::uint64_t> counts(options.clients, 0);
  std::vector<std::uint64_t> failures(options.clients, 0);
  std::vector<std::thread> clients;
  for (std::size_t c = 0; c < options.clients; ++c) {
    clients.emplace_back([&, c] {
      while (phase.load(std::memory_order_relaxed) < 2) {
        const auto started = Clock::now();
        keel::Result<keel::ApplyResult> result = leader.apply(payload, std::chrono::seconds(10)).get();
        const bool measuring = phase.load(std::memory_order_relaxed) == 1;
        if (!measuring) continue;
        if (!result.is_ok()) {
          ++failures[c];
          continue;
        }
        histograms[c].record(Clock::now() - started);
        ++counts[c];
      }
    });
  }
  std::this_thread::sleep_for(duration_cast<nanoseconds>(std::chrono::duration<double>(options.warmup_s)));
  const Usage before = usage_now();
  const std::uint64_t heap_before = heap_in_use_bytes();
  const keel::Index index_before = leader.stats().last_index;
  const auto started = Clock::now();
  phase = 1;
  std::this_thread::sleep_for(duration_cast<nanoseconds>(std::chrono::duration<double>(options.duration_s)));
  phase = 2;
  const auto elapsed = std::chrono::duration<double>(Clock::now() - started).count();
  for (auto& client : clients) client.join();
  const Usage after = usage_now();
  // Every client has its answer and the followers have caught up (a quiet
  // moment): what is allocated now beyond the start is what the logs hold.
  const keel::Index index_after = leader.stats().last_index;
  const auto caught_up = Clock::now() + std::chrono::seconds(10);
  while (Clock::now() < caught_up) {
    bool all = true;
    for (auto& server : cluster.servers) all = all && server->stats().applied_index >= index_after;
    if (all) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const std::uint64_t heap_after = heap_in_use_bytes();

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
  results.peak_rss_kb = after.max_rss_kb;
  const double entries = static_cast<double>(index_after - index_before);
  if (entries > 0 && heap_after > heap_before) {
    results.log_bytes_per_entry_per_server =
        static_cast<double>(heap_after - heap_before) /
        (entries * static_cast<double>(cluster.servers.size()));
  }
  return results;
}

void print(const Options& options, const Results& r) {
  if (options.json) {
    std::printf(
        "{\"mode\": \"%s\", \"servers\": %zu, \"clients\": %zu, \"payload_bytes\": %zu, "
        "\"duration_s\": %.1f, \"operations\": %llu, \"failures\": %llu, \"ops_per_sec\": %.0f, "
        "\"latency_us\": {\"p50\": %.1f, \"p95\": %.1f, \"p99\": %.1f, \"p99_9\": %.1f}, "
        "\"cpu_us_per_op\": %.2f, \"context_switches_per_op\": %.2f, \"peak_rss_kb\": %ld, "
        "\"log_bytes_per_entry_per_server\": %.0f}\n",
        options.mode.c_str(), options.servers, options.clients, options.payload,
        options.duration_s, static_cast<unsigned long long>(r.operations),
        static_cast<unsigned long long>(r.failures), r.ops_per_sec, r.latency.percentile_us(0.50),
        r.latency.percentile_us(0.95), r.latency.percentile_us(0.99),
        r.latency.percentile_us(0.999), r.cpu_us_per_op, r.context_switches_per_op,
        r.peak_rss_kb, r.log_bytes_per_entry_per_server);
    return;
  }
  std::printf("keel-bench %s: %zu servers, %zu clients, %zu-byte commands, %.1f s\n",
              options.mode.c_str(), options.servers, options.clients, options.payload,
              options.duration_s);
  std::printf("  %.0f ops/s (%llu operations, %llu failed)\n", r.ops_per_sec,
              static_cast<unsigned long long>(r.operations),
              static_cast<unsigned long long>(r.failures));
  std::printf("  latency us: p50 %.1f  p95 %.1f  p99 %.1f  p99.9 %.1f\n",
              r.latency.percentile_us(0.50), r.latency.percentile_us(0.95),
              r.latency.percentile_us(0.99), r.latency.percentile_us(0.999));
  std::printf("  cpu %.2f us/op, %.2f context switches/op, peak rss %ld KiB\n", r.cpu_us_per_op,
              r.context_switches_per_op, r.peak_rss_kb);
  std::printf("  log memory %.0f bytes per entry per server\n",
              r.log_bytes_per_entry_per_server);
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = parse(argc, argv);
  Cluster cluster;
  if (!cluster.start(options.servers)) return 1;
  keel::Raft* leader = cluster.ready_leader(std::chrono::seconds(30));
  if (leader == nullptr) {
    std::cerr << "keel-bench: no ready leader within 30 s\n";
    return 1;
  }
  const Results results = run(options, cluster, *leader);
  print(options, results);
  for (auto& server : cluster.servers) server->shutdown();
  return results.operations > 0 ? 0 : 1;
}
