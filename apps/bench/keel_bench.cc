// apps/bench/keel_bench.cc — keel-bench: the cluster benchmark (BENCHMARKS.md).
//
//   keel-bench --mode in-process --clients 32 --payload 256 --duration 10 --warmup 2
//   keel-bench --clients 1 --json
//
// Modes, all with N servers (default 3), the thread Env and an FSM that
// does nothing (it declares itself cheap):
//   --mode processes       each server a process of its own (keel-bench
//                          starts `keel-bench node` N times) over keel's TCP
//                          transport on 127.0.0.1, as peers are measured; the
//                          clients run in the process of the server elected;
//   --mode in-process      all in this process, over the in-memory network;
//   --mode tcp-in-process  all in this process, over TCP on 127.0.0.1.
// Logs: --log memory (no disk: what peers publish) or --log wal (keel's
// write-ahead log and stable store on disk, fdatasync on every write, in
// --dir or a fresh temporary folder removed afterwards; a --dir that holds
// anything is refused).
//
//   keel-bench floor [--dir DIR] [--samples N] [--json]
// measures this machine's floor: one fdatasync of a 4 KiB append, one
// loopback TCP round trip, and their sum (what one durable replicated write
// cannot beat).
//
// The clients: Closed-loop clients on the leader: each
// submits one command of --payload bytes with apply() and waits until it is
// committed and applied on the leader before submitting the next. Reports
// ops/s; latency percentiles from a log-linear histogram (about 1 % wide
// buckets); CPU per operation and context switches per operation, of the
// whole process, from getrusage(); peak RSS; and the heap the servers' logs
// grew by (glibc's bytes in use, measured at a quiet moment after the
// run), per entry and server. As text, or as JSON with --json.
//
// Uses the public API only.
#include <arpa/inet.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "keel/file_stores.h"
#include "keel/raft.h"
#include "keel/tcp_transport.h"

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::duration_cast;
using std::chrono::nanoseconds;

bool verbose = false;  // --verbose: keel's log lines from info up

struct Options {
  std::string mode = "processes";  // or in-process, tcp-in-process
  // `keel-bench node`: one server of a --mode processes run (started by
  // keel-bench itself): its id and every server's address, in id order.
  bool node = false;
  std::size_t node_id = 0;
  std::string addresses;
  std::string log = "memory";  // or wal
  std::string dir;             // --log wal, and floor: where files go
  bool floor = false;          // `keel-bench floor`
  std::size_t samples = 500;   // floor: measurements of each kind
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
       keel-bench floor [--dir DIR] [--samples N] [--json]
  --mode processes     each server a process of its own, over TCP on 127.0.0.1 (default);
                       the clients run in the elected leader's process
  --mode in-process    servers in this process over the in-memory network
  --mode tcp-in-process  servers in this process over the TCP transport on 127.0.0.1
  --log memory|wal     memory stores (default), or the write-ahead log on disk
  --dir DIR            where --log wal (and floor) write; must be empty or absent
                       (default: a fresh temporary folder, removed afterwards)
  --samples N          floor: measurements of each kind (default 500)
  --servers N          servers in the cluster (default 3)
  --clients N          closed-loop clients on the leader (default 1)
  --payload BYTES      bytes per command (default 256)
  --duration SECONDS   measured time (default 10)
  --warmup SECONDS     time before measuring (default 2)
  --json               one JSON object instead of text
  --verbose            keel's log lines (info and up) on stderr
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
    if (i == 1 && flag == "floor") {
      options.floor = true;
    } else if (i == 1 && flag == "node") {
      options.node = true;
    } else if (flag == "--id") {
      options.node_id = static_cast<std::size_t>(parse_number(value(), "server id"));
    } else if (flag == "--addresses") {
      options.addresses = value();
    } else if (flag == "--mode") {
      options.mode = value();
      if (options.mode != "processes" && options.mode != "in-process" &&
          options.mode != "tcp-in-process") {
        usage("--mode: processes, in-process or tcp-in-process");
      }
    } else if (flag == "--log") {
      options.log = value();
      if (options.log != "memory" && options.log != "wal") usage("--log: memory or wal");
    } else if (flag == "--dir") {
      options.dir = value();
    } else if (flag == "--samples") {
      options.samples = static_cast<std::size_t>(parse_number(value(), "sample count"));
      if (options.samples < 1 || options.samples > 1'000'000) usage("--samples must be 1..1000000");
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
    } else if (flag == "--verbose") {
      verbose = true;
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

// Where --log wal (and floor) write: --dir, which must be empty or absent,
// or a fresh temporary folder removed when the run ends.
class DataDir {
 public:
  static std::optional<DataDir> make(const std::string& requested) {
    DataDir dir;
    std::error_code ec;
    if (requested.empty()) {
      std::string pattern = (std::filesystem::temp_directory_path() / "keel-bench-XXXXXX").string();
      if (mkdtemp(pattern.data()) == nullptr) {
        std::cerr << "keel-bench: cannot make a temporary folder: " << std::strerror(errno) << "\n";
        return std::nullopt;
      }
      dir.path_ = pattern;
      dir.remove_ = true;
      return dir;
    }
    dir.path_ = requested;
    if (std::filesystem::exists(dir.path_, ec) && !std::filesystem::is_empty(dir.path_, ec)) {
      std::cerr << "keel-bench: --dir " << requested
                << " holds files already (perhaps a cluster): give an empty or new folder\n";
      return std::nullopt;
    }
    std::filesystem::create_directories(dir.path_, ec);
    if (ec) {
      std::cerr << "keel-bench: --dir " << requested << ": " << ec.message() << "\n";
      return std::nullopt;
    }
    return dir;
  }
  // The folder a --mode processes run made (not removed by this process).
  static DataDir existing(const std::string& path) {
    DataDir dir;
    dir.path_ = path;
    return dir;
  }
  DataDir() = default;
  DataDir(DataDir&& other) noexcept
      : path_(std::move(other.path_)), remove_(std::exchange(other.remove_, false)) {}
  DataDir& operator=(DataDir&&) = delete;
  ~DataDir() {
    std::error_code ec;
    if (remove_) std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  bool remove_ = false;
};

// Errors only, unless --verbose: the benchmark's output is its figures.
std::shared_ptr<keel::Logger> quiet_logger() {
  return keel::make_stderr_logger(verbose ? keel::LogLevel::kInfo : keel::LogLevel::kError);
}

// Opens one server of `configuration` on `transport`, with the stores
// --log asks for (under `dir` for wal), bootstrapped.
std::unique_ptr<keel::Raft> open_server(const Options& options, const keel::Server& server,
                                        const keel::Configuration& configuration,
                                        std::shared_ptr<keel::Transport> transport,
                                        const DataDir* dir, std::shared_ptr<keel::Env> env,
                                        std::chrono::milliseconds election_timeout) {
  std::shared_ptr<keel::LogStore> log;
  std::shared_ptr<keel::StableStore> stable;
  std::shared_ptr<keel::SnapshotStore> snapshots;
  if (options.log == "wal") {
    const std::filesystem::path base = dir->path() / ("server-" + std::to_string(server.id.value));
    auto wal = keel::WalLogStore::open((base / "wal").string());
    auto state = keel::FileStableStore::open((base / "stable").string());
    auto files = keel::FileSnapshotStore::open((base / "snapshots").string(), {});
    if (!wal.is_ok() || !state.is_ok() || !files.is_ok()) {
      std::cerr << "keel-bench: stores in " << base.string() << ": " << wal.status() << " "
                << state.status() << " " << files.status() << "\n";
      return nullptr;
    }
    log = *wal;
    stable = *state;
    snapshots = *files;
  } else {
    log = std::make_shared<keel::MemoryLogStore>();
    stable = std::make_shared<keel::MemoryStableStore>();
    snapshots = std::make_shared<keel::MemorySnapshotStore>();
  }
  if (!keel::bootstrap_cluster(*log, *stable, configuration).is_ok()) return nullptr;
  keel::Config config;
  config.id = server.id;
  config.election_timeout = election_timeout;
  keel::RaftDependencies deps{
      config, std::make_shared<NullFsm>(), log, stable, snapshots, transport, std::move(env)};
  deps.logger = quiet_logger();
  auto opened = keel::Raft::open(std::move(deps));
  if (!opened.is_ok()) {
    std::cerr << "keel-bench: open: " << opened.status() << "\n";
    return nullptr;
  }
  return std::move(opened).value();
}

struct Cluster {
  std::shared_ptr<keel::Env> env = keel::make_thread_env();
  keel::InMemoryNetwork network{env};
  std::vector<std::unique_ptr<keel::Raft>> servers;

  bool start(const Options& options, const DataDir* dir) {
    const std::size_t count = options.servers;
    std::vector<std::shared_ptr<keel::Transport>> transports;
    keel::Configuration configuration;
    for (std::size_t i = 1; i <= count; ++i) {
      const keel::ServerId id{i};
      std::string address = "server-" + std::to_string(i);
      if (options.mode == "tcp-in-process") {
        keel::TcpTransportOptions tcp;
        tcp.id = id;
        tcp.cluster_id = 0x6b65656c;
        tcp.listen_address = "127.0.0.1:0";
        tcp.logger = quiet_logger();  // connections closing at the end are no news
        auto made = keel::make_tcp_transport(tcp);
        if (!made.is_ok()) {
          std::cerr << "keel-bench: tcp transport: " << made.status() << "\n";
          return false;
        }
        address = (*made)->listen_address();
        transports.push_back(*made);
      } else {
        transports.push_back(network.transport(id));
      }
      configuration.servers.push_back(keel::Server{id, address, keel::Suffrage::kVoter});
    }
    for (std::size_t i = 0; i < count; ++i) {
      auto server = open_server(options, configuration.servers[i], configuration, transports[i],
                                dir, env, keel::Config().election_timeout);
      if (!server) return false;
      servers.push_back(std::move(server));
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

// The measurement: closed-loop clients on `leader`; `servers` are the ones
// in this process (all of them caught up after the run, for the heap
// figure). `on_window(true)` is called as the measured window opens,
// `on_window(false)` as it closes.
Results run(const Options& options, const std::vector<keel::Raft*>& servers, keel::Raft& leader,
            const std::function<void(bool)>& on_window) {
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
        keel::Result<keel::ApplyResult> result =
            leader.apply(payload, std::chrono::seconds(10)).get();
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
  std::this_thread::sleep_for(
      duration_cast<nanoseconds>(std::chrono::duration<double>(options.warmup_s)));
  const Usage before = usage_now();
  const std::uint64_t heap_before = heap_in_use_bytes();
  const keel::Index index_before = leader.stats().last_index;
  on_window(true);
  const auto started = Clock::now();
  phase = 1;
  std::this_thread::sleep_for(
      duration_cast<nanoseconds>(std::chrono::duration<double>(options.duration_s)));
  phase = 2;
  const auto elapsed = std::chrono::duration<double>(Clock::now() - started).count();
  on_window(false);
  for (auto& client : clients) client.join();
  const Usage after = usage_now();
  // Every client has its answer and the followers have caught up (a quiet
  // moment): what is allocated now beyond the start is what the logs hold.
  const keel::Index index_after = leader.stats().last_index;
  const auto caught_up = Clock::now() + std::chrono::seconds(10);
  while (Clock::now() < caught_up) {
    bool all = true;
    for (keel::Raft* server : servers) all = all && server->stats().applied_index >= index_after;
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
    results.log_bytes_per_entry_per_server = static_cast<double>(heap_after - heap_before) /
                                             (entries * static_cast<double>(servers.size()));
  }
  return results;
}

void print(const Options& options, const Results& r) {
  if (options.json) {
    std::printf(
        "{\"mode\": \"%s\", \"log\": \"%s\", \"servers\": %zu, \"clients\": %zu, "
        "\"payload_bytes\": %zu, "
        "\"duration_s\": %.1f, \"operations\": %llu, \"failures\": %llu, \"ops_per_sec\": %.0f, "
        "\"latency_us\": {\"p50\": %.1f, \"p95\": %.1f, \"p99\": %.1f, \"p99_9\": %.1f, "
        "\"p99_99\": %.1f}, "
        "\"cpu_us_per_op\": %.2f, \"context_switches_per_op\": %.2f, \"peak_rss_kb\": %ld, "
        "\"log_bytes_per_entry_per_server\": %.0f}\n",
        options.mode.c_str(), options.log.c_str(), options.servers, options.clients,
        options.payload, options.duration_s, static_cast<unsigned long long>(r.operations),
        static_cast<unsigned long long>(r.failures), r.ops_per_sec, r.latency.percentile_us(0.50),
        r.latency.percentile_us(0.95), r.latency.percentile_us(0.99),
        r.latency.percentile_us(0.999), r.latency.percentile_us(0.9999), r.cpu_us_per_op,
        r.context_switches_per_op, r.peak_rss_kb, r.log_bytes_per_entry_per_server);
    return;
  }
  std::printf("keel-bench %s, %s log: %zu servers, %zu clients, %zu-byte commands, %.1f s\n",
              options.mode.c_str(), options.log.c_str(), options.servers, options.clients,
              options.payload, options.duration_s);
  std::printf("  %.0f ops/s (%llu operations, %llu failed)\n", r.ops_per_sec,
              static_cast<unsigned long long>(r.operations),
              static_cast<unsigned long long>(r.failures));
  std::printf("  latency us: p50 %.1f  p95 %.1f  p99 %.1f  p99.9 %.1f  p99.99 %.1f\n",
              r.latency.percentile_us(0.50), r.latency.percentile_us(0.95),
              r.latency.percentile_us(0.99), r.latency.percentile_us(0.999),
              r.latency.percentile_us(0.9999));
  std::printf("  cpu %.2f us/op, %.2f context switches/op, peak rss %ld KiB\n", r.cpu_us_per_op,
              r.context_switches_per_op, r.peak_rss_kb);
  std::printf("  log memory %.0f bytes per entry per server\n", r.log_bytes_per_entry_per_server);
}

// --- the floor ---------------------------------------------------------------

// One fdatasync of a 4 KiB append, `samples` times, in a file of `dir`.
bool measure_fsync(const std::filesystem::path& dir, std::size_t samples, Histogram& out) {
  const std::filesystem::path file = dir / "floor.dat";
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_TRUNC, 0644);
  if (fd < 0) {
    std::cerr << "keel-bench floor: " << file.string() << ": " << std::strerror(errno) << "\n";
    return false;
  }
  const std::string block(4096, 'f');
  bool ok = true;
  for (std::size_t i = 0; i < samples && ok; ++i) {
    const auto started = Clock::now();
    ok = ::write(fd, block.data(), block.size()) == static_cast<ssize_t>(block.size()) &&
         ::fdatasync(fd) == 0;
    out.record(Clock::now() - started);
  }
  if (!ok) std::cerr << "keel-bench floor: write or fdatasync: " << std::strerror(errno) << "\n";
  ::close(fd);
  std::filesystem::remove(file);
  return ok;
}

// One byte there and back over a loopback TCP connection (TCP_NODELAY on
// both ends, a thread echoing), `samples` times.
bool measure_round_trip(std::size_t samples, Histogram& out) {
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (listener < 0 ||
      ::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::listen(listener, 1) != 0 ||
      ::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    std::cerr << "keel-bench floor: loopback listener: " << std::strerror(errno) << "\n";
    if (listener >= 0) ::close(listener);
    return false;
  }
  const int one = 1;
  std::thread echo([&] {
    const int peer = ::accept(listener, nullptr, nullptr);
    if (peer < 0) return;
    ::setsockopt(peer, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char byte = 0;
    while (::read(peer, &byte, 1) == 1 && ::write(peer, &byte, 1) == 1) {
    }
    ::close(peer);
  });
  const int client = ::socket(AF_INET, SOCK_STREAM, 0);
  bool ok =
      client >= 0 && ::connect(client, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  if (ok) ::setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  char byte = 'r';
  for (std::size_t i = 0; i < samples + samples / 10 && ok; ++i) {
    const auto started = Clock::now();
    ok = ::write(client, &byte, 1) == 1 && ::read(client, &byte, 1) == 1;
    if (i >= samples / 10) out.record(Clock::now() - started);  // the first tenth warms up
  }
  if (!ok) std::cerr << "keel-bench floor: loopback round trip: " << std::strerror(errno) << "\n";
  if (client >= 0) ::close(client);  // ends the echo thread's read
  ::shutdown(listener, SHUT_RDWR);
  echo.join();
  ::close(listener);
  return ok;
}

int run_floor(const Options& options) {
  auto dir = DataDir::make(options.dir);
  if (!dir) return 2;
  Histogram fsync;
  Histogram round_trip;
  if (!measure_fsync(dir->path(), options.samples, fsync)) return 1;
  if (!measure_round_trip(options.samples, round_trip)) return 1;
  const double fsync_p50 = fsync.percentile_us(0.5);
  const double rtt_p50 = round_trip.percentile_us(0.5);
  if (options.json) {
    std::printf(
        "{\"floor_us\": %.1f, \"fdatasync_4k_us\": {\"p50\": %.1f, \"p99\": %.1f}, "
        "\"tcp_round_trip_us\": {\"p50\": %.1f, \"p99\": %.1f}, \"samples\": %zu, "
        "\"dir\": \"%s\"}\n",
        fsync_p50 + rtt_p50, fsync_p50, fsync.percentile_us(0.99), rtt_p50,
        round_trip.percentile_us(0.99), options.samples, dir->path().c_str());
    return 0;
  }
  std::printf("keel-bench floor (%zu samples each, files in %s)\n", options.samples,
              dir->path().c_str());
  std::printf("  fdatasync of a 4 KiB append: p50 %.1f us  p99 %.1f us\n", fsync_p50,
              fsync.percentile_us(0.99));
  std::printf("  loopback TCP round trip:     p50 %.1f us  p99 %.1f us\n", rtt_p50,
              round_trip.percentile_us(0.99));
  std::printf("  floor (one of each):         %.1f us\n", fsync_p50 + rtt_p50);
  return 0;
}

// --- separate processes ------------------------------------------------------

std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) out.push_back(item);
  return out;
}

// `keel-bench node`: one server. The one that is elected runs the clients,
// printing "window-start" and "window-end" around the measured window and
// then its results (one JSON line). Every node serves until SIGTERM.
int run_node(Options options) {
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);  // before any thread starts
  const std::vector<std::string> addresses = split_commas(options.addresses);
  if (options.node_id < 1 || options.node_id > addresses.size()) usage("node: bad --id");
  keel::Configuration configuration;
  for (std::size_t i = 1; i <= addresses.size(); ++i) {
    configuration.servers.push_back(
        keel::Server{keel::ServerId{i}, addresses[i - 1], keel::Suffrage::kVoter});
  }
  const keel::Server& self = configuration.servers[options.node_id - 1];
  keel::TcpTransportOptions tcp;
  tcp.id = self.id;
  tcp.cluster_id = 0x6b65656c;
  tcp.listen_address = self.address;
  tcp.logger = quiet_logger();
  auto transport = keel::make_tcp_transport(tcp);
  if (!transport.is_ok()) {
    std::cerr << "keel-bench node " << options.node_id << ": " << transport.status() << "\n";
    return 1;
  }
  std::optional<DataDir> dir;
  if (options.log == "wal") dir.emplace(DataDir::existing(options.dir));
  auto server = open_server(options, self, configuration, *transport, dir ? &*dir : nullptr,
                            keel::make_thread_env(), keel::Config().election_timeout);
  if (!server) return 1;
  // Wait for an election; the winner runs the clients.
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  bool leads = false;
  bool follows = false;
  while (!leads && !follows && Clock::now() < deadline) {
    const keel::RaftStats stats = server->stats();
    leads = stats.state == keel::RaftState::kLeader && stats.ready_term == stats.term;
    follows = stats.leader.id != keel::kNoServer && stats.leader.id != self.id;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (!leads && !follows) {
    std::cerr << "keel-bench node " << options.node_id << ": no leader within 30 s\n";
    server->shutdown();
    return 1;
  }
  if (leads) {
    options.json = true;
    const Results results = run(options, {server.get()}, *server, [](bool start) {
      std::printf("%s\n", start ? "window-start" : "window-end");
      std::fflush(stdout);
    });
    print(options, results);
    std::fflush(stdout);
  }
  const timespec second{1, 0};
  while (sigtimedwait(&stop_signals, nullptr, &second) < 0) {
    if (!verbose) continue;
    const keel::RaftStats stats = server->stats();
    std::cerr << "keel-bench node " << options.node_id << ": " << keel::to_string(stats.state)
              << " in term " << stats.term.value << ", last index " << stats.last_index.value
              << ", commit " << stats.commit_index.value << ", leader " << stats.leader.id.value
              << "\n";
  }
  server->shutdown();
  return 0;
}

// A child's user + system CPU seconds so far, from /proc.
double process_cpu_s(pid_t pid) {
  std::string text;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::getline(in, text);  // one line
  const auto close = text.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream fields(text.substr(close + 2));
  std::string field;
  double ticks = 0;
  for (int n = 3; n <= 15 && fields >> field; ++n) {  // field 3 is the state
    if (n == 14 || n == 15) ticks += std::strtod(field.c_str(), nullptr);
  }
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// A child's peak resident set (VmHWM), in KiB.
long process_peak_rss_kb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmHWM:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return 0;
}

// The number after "key": in a JSON line (the first such key).
double json_number(const std::string& line, const std::string& key) {
  const auto at = line.find("\"" + key + "\": ");
  return at == std::string::npos ? 0 : std::strtod(line.c_str() + at + key.size() + 4, nullptr);
}

// A free port on 127.0.0.1 (bound and released: good enough here).
std::uint16_t free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

// --mode processes: starts the servers, reads server 1's window and
// results, measures every process's CPU over the window and its peak RSS,
// stops them all (also on failure), and reports.
int run_processes(const Options& options) {
  auto dir = DataDir::make(options.dir);
  if (!dir) return 2;
  std::string addresses;
  for (std::size_t i = 0; i < options.servers; ++i) {
    addresses += (i ? "," : "") + std::string("127.0.0.1:") + std::to_string(free_loopback_port());
  }
  char self[4096] = {};
  if (::readlink("/proc/self/exe", self, sizeof self - 1) <= 0) return 1;
  int pipe_fds[2];
  if (::pipe(pipe_fds) != 0) return 1;
  std::vector<pid_t> pids;
  for (std::size_t id = 1; id <= options.servers; ++id) {
    std::vector<std::string> args = {self,          "node",
                                     "--id",        std::to_string(id),
                                     "--addresses", addresses,
                                     "--log",       options.log,
                                     "--dir",       dir->path().string(),
                                     "--clients",   std::to_string(options.clients),
                                     "--payload",   std::to_string(options.payload),
                                     "--duration",  std::to_string(options.duration_s),
                                     "--warmup",    std::to_string(options.warmup_s)};
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the benchmark
      ::dup2(pipe_fds[1], 1);              // only the leader prints
      ::close(pipe_fds[0]);
      ::close(pipe_fds[1]);
      ::execv(self, argv.data());
      ::_exit(127);
    }
    if (pid > 0) pids.push_back(pid);
  }
  ::close(pipe_fds[1]);
  auto stop_all = [&] {
    for (pid_t pid : pids) ::kill(pid, SIGTERM);
    for (pid_t pid : pids) {
      int status = 0;
      for (int waited = 0; waited < 1000 && ::waitpid(pid, &status, WNOHANG) == 0; ++waited) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      if (::waitpid(pid, &status, WNOHANG) == 0) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
      }
    }
  };
  if (pids.size() != options.servers) {
    std::cerr << "keel-bench: could not start " << options.servers << " processes\n";
    stop_all();
    return 1;
  }
  std::vector<double> cpu_before(pids.size(), 0);
  std::vector<double> cpu_after(pids.size(), 0);
  std::string result;
  // Lines from the leader, until its results, the nodes' end, or a bound.
  const auto deadline = Clock::now() + duration_cast<nanoseconds>(std::chrono::duration<double>(
                                           options.warmup_s + options.duration_s + 90));
  std::string pending;
  while (result.empty() && Clock::now() < deadline) {
    pollfd readable{pipe_fds[0], POLLIN, 0};
    if (::poll(&readable, 1, 200) <= 0) continue;
    char buffer[4096];
    const ssize_t n = ::read(pipe_fds[0], buffer, sizeof buffer);
    if (n <= 0) break;  // every node has exited
    pending.append(buffer, static_cast<std::size_t>(n));
    for (auto end = pending.find('\n'); end != std::string::npos; end = pending.find('\n')) {
      const std::string text = pending.substr(0, end);
      pending.erase(0, end + 1);
      if (text == "window-start") {
        for (std::size_t i = 0; i < pids.size(); ++i) cpu_before[i] = process_cpu_s(pids[i]);
      } else if (text == "window-end") {
        for (std::size_t i = 0; i < pids.size(); ++i) cpu_after[i] = process_cpu_s(pids[i]);
      } else if (text.rfind("{", 0) == 0) {
        result = text;
      }
    }
  }
  ::close(pipe_fds[0]);
  std::vector<long> rss(pids.size(), 0);
  for (std::size_t i = 0; i < pids.size(); ++i) rss[i] = process_peak_rss_kb(pids[i]);
  stop_all();
  if (result.empty()) {
    std::cerr << "keel-bench: no results from the leader (see the lines above)\n";
    return 1;
  }
  const double operations = std::max(1.0, json_number(result, "operations"));
  double cluster_cpu = 0;
  std::string processes = "[";
  for (std::size_t i = 0; i < pids.size(); ++i) {
    const double cpu_us_per_op = (cpu_after[i] - cpu_before[i]) * 1e6 / operations;
    cluster_cpu += cpu_us_per_op;
    char item[160];
    std::snprintf(item, sizeof item,
                  "%s{\"server\": %zu, \"cpu_us_per_op\": %.2f, \"peak_rss_kb\": %ld}",
                  i ? ", " : "", i + 1, cpu_us_per_op, rss[i]);
    processes += item;
  }
  processes += "]";
  if (options.json) {
    std::printf("%s, \"processes\": %s, \"cluster_cpu_us_per_op\": %.2f}\n",
                result.substr(0, result.size() - 1).c_str(), processes.c_str(), cluster_cpu);
  } else {
    std::printf(
        "keel-bench processes, %s log: %zu servers, %zu clients, %zu-byte commands, %.1f s\n",
        options.log.c_str(), options.servers, options.clients, options.payload, options.duration_s);
    std::printf("  %.0f ops/s (%.0f operations, %.0f failed)\n", json_number(result, "ops_per_sec"),
                json_number(result, "operations"), json_number(result, "failures"));
    std::printf("  latency us: p50 %.1f  p95 %.1f  p99 %.1f  p99.9 %.1f  p99.99 %.1f\n",
                json_number(result, "p50"), json_number(result, "p95"), json_number(result, "p99"),
                json_number(result, "p99_9"), json_number(result, "p99_99"));
    std::printf("  cpu %.2f us/op over all processes\n", cluster_cpu);
    for (std::size_t i = 0; i < pids.size(); ++i) {
      std::printf("  server %zu: cpu %.2f us/op, peak rss %ld KiB\n", i + 1,
                  (cpu_after[i] - cpu_before[i]) * 1e6 / operations, rss[i]);
    }
  }
  return json_number(result, "operations") > 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = parse(argc, argv);
  if (options.floor) return run_floor(options);
  if (options.node) return run_node(options);
  if (options.mode == "processes") return run_processes(options);
  std::optional<DataDir> dir = options.log == "wal" ? DataDir::make(options.dir) : std::nullopt;
  if (options.log == "wal" && !dir) return 2;
  Cluster cluster;
  if (!cluster.start(options, dir ? &*dir : nullptr)) return 1;
  keel::Raft* leader = cluster.ready_leader(std::chrono::seconds(30));
  if (leader == nullptr) {
    std::cerr << "keel-bench: no ready leader within 30 s\n";
    return 1;
  }
  std::vector<keel::Raft*> all;
  for (auto& server : cluster.servers) all.push_back(server.get());
  const Results results = run(options, all, *leader, [](bool) {});
  print(options, results);
  for (auto& server : cluster.servers) server->shutdown();
  return results.operations > 0 ? 0 : 1;
}
