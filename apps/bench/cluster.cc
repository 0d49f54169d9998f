// apps/bench/cluster.cc — opening the measured servers.
#include "cluster.h"

#include <iostream>
#include <string>
#include <thread>

#include "keel/file_stores.h"

namespace keel_bench {
namespace {

using Clock = std::chrono::steady_clock;

// The cluster id of every keel-bench cluster ("keel").
constexpr std::uint64_t kBenchClusterId = 0x6b65656c;

// An FSM that does nothing: the benchmark measures keel.
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

}  // namespace

std::shared_ptr<keel::Logger> bench_logger(const Options& options) {
  return keel::make_stderr_logger(options.verbose ? keel::LogLevel::kInfo : keel::LogLevel::kError);
}

std::unique_ptr<keel::Raft> open_server(const Options& options, const keel::Server& server,
                                        const keel::Configuration& configuration,
                                        std::shared_ptr<keel::Transport> transport,
                                        const DataDir* dir, std::shared_ptr<keel::Env> env) {
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
  // Over TCP, the loop runs on the transport's I/O thread (BENCHMARKS.md).
  config.thread_policy = keel::ThreadPolicy::kShareWithTransport;
  keel::RaftDependencies deps{
      config, std::make_shared<NullFsm>(), log, stable, snapshots, transport, std::move(env)};
  deps.logger = bench_logger(options);
  auto opened = keel::Raft::open(std::move(deps));
  if (!opened.is_ok()) {
    std::cerr << "keel-bench: open: " << opened.status() << "\n";
    return nullptr;
  }
  return std::move(opened).value();
}

std::shared_ptr<keel::TcpTransport> tcp_transport_for(const Options& options, keel::ServerId id,
                                                      const std::string& listen_address) {
  keel::TcpTransportOptions tcp;
  tcp.id = id;
  tcp.cluster_id = kBenchClusterId;
  tcp.listen_address = listen_address;
  tcp.logger = bench_logger(options);  // connections closing at the end are no news
  auto made = keel::make_tcp_transport(tcp);
  if (!made.is_ok()) {
    std::cerr << "keel-bench: tcp transport on " << listen_address << ": " << made.status() << "\n";
    return nullptr;
  }
  return *made;
}

bool Cluster::start(const Options& options, const DataDir* dir) {
  std::vector<std::shared_ptr<keel::Transport>> transports;
  keel::Configuration configuration;
  for (std::size_t i = 1; i <= options.servers; ++i) {
    const keel::ServerId id{i};
    std::string address = "server-" + std::to_string(i);
    if (options.mode == "tcp-in-process") {
      auto tcp = tcp_transport_for(options, id, "127.0.0.1:0");
      if (!tcp) return false;
      address = tcp->listen_address();
      transports.push_back(tcp);
    } else {
      transports.push_back(network_.transport(id));
    }
    configuration.servers.push_back(keel::Server{id, address, keel::Suffrage::kVoter});
  }
  for (std::size_t i = 0; i < options.servers; ++i) {
    auto server =
        open_server(options, configuration.servers[i], configuration, transports[i], dir, env_);
    if (!server) return false;
    servers_.push_back(std::move(server));
  }
  return true;
}

keel::Raft* Cluster::ready_leader(std::chrono::seconds bound) const {
  const auto deadline = Clock::now() + bound;
  while (Clock::now() < deadline) {
    for (const auto& server : servers_) {
      const keel::RaftStats stats = server->stats();
      if (stats.state == keel::RaftState::kLeader && stats.ready_term == stats.term) {
        return server.get();
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return nullptr;
}

keel::Raft* Cluster::follower_of(const keel::Raft& leader, std::chrono::seconds bound) const {
  const keel::ServerId leader_id = leader.stats().leader.id;  // itself
  const auto deadline = Clock::now() + bound;
  while (Clock::now() < deadline) {
    for (const auto& server : servers_) {
      if (server.get() != &leader && server->stats().leader.id == leader_id) return server.get();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return nullptr;
}

std::vector<keel::Raft*> Cluster::servers() const {
  std::vector<keel::Raft*> out;
  for (const auto& server : servers_) out.push_back(server.get());
  return out;
}

}  // namespace keel_bench
