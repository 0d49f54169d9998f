// A cluster of keel::Raft servers in one process for runtime tests: thread
// Env, in-memory network and stores, and a small key-value FSM whose apply
// can be held back by a gate (to build "committed but not yet applied").
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "keel/env.h"
#include "keel/log_store.h"
#include "keel/logger.h"
#include "keel/metrics.h"
#include "keel/raft.h"
#include "keel/transport.h"

namespace keel::testing {

using namespace std::chrono_literals;

// "set KEY VALUE" stores VALUE; the response is the number of commands
// applied so far. Apply blocks while the gate is closed.
class KvFsm final : public Fsm {
 public:
  std::string apply(const LogEntry& entry) override {
    std::unique_lock lock(mutex_);
    ++waiting_at_gate_;
    gate_cv_.wait(lock, [&] { return gate_open_; });
    --waiting_at_gate_;
    const std::string_view data = entry.data;
    const auto space1 = data.find(' ');
    const auto space2 = data.find(' ', space1 + 1);
    if (space1 != std::string::npos && space2 != std::string::npos) {
      values_[std::string(data.substr(space1 + 1, space2 - space1 - 1))] =
          std::string(data.substr(space2 + 1));
    }
    ++applied_;
    return std::to_string(applied_);
  }
  void close_gate() {
    std::lock_guard lock(mutex_);
    gate_open_ = false;
  }
  void open_gate() {
    {
      std::lock_guard lock(mutex_);
      gate_open_ = true;
    }
    gate_cv_.notify_all();
  }
  // Whether apply() is blocked at the closed gate right now.
  bool blocked_at_gate() const {
    std::lock_guard lock(mutex_);
    return waiting_at_gate_ > 0;
  }
  std::size_t applied() const {
    std::lock_guard lock(mutex_);
    return applied_;
  }
  // The count and the values, one "KEY VALUE" line each after the count.
  Result<std::unique_ptr<FsmSnapshot>> snapshot() override {
    std::lock_guard lock(mutex_);
    std::string state = std::to_string(applied_) + "\n";
    for (const auto& [key, value] : values_) state += key + " " + value + "\n";
    return std::unique_ptr<FsmSnapshot>(std::make_unique<CopiedSnapshot>(std::move(state)));
  }
  Status restore(const SnapshotMeta& /*meta*/, SnapshotReader& reader) override {
    Result<std::string> state = read_whole_snapshot(reader, 1ULL << 30);
    if (!state.is_ok()) return state.status();
    std::lock_guard lock(mutex_);
    values_.clear();
    std::string_view rest = *state;
    const std::size_t first = rest.find('\n');
    if (first == std::string_view::npos) return Status::corruption("KvFsm: no count");
    applied_ = std::stoull(std::string(rest.substr(0, first)));
    rest.remove_prefix(first + 1);
    while (!rest.empty()) {
      const std::size_t end = rest.find('\n');
      const std::size_t space = rest.find(' ');
      if (end == std::string_view::npos || space > end)
        return Status::corruption("KvFsm: bad line");
      values_[std::string(rest.substr(0, space))] =
          std::string(rest.substr(space + 1, end - space - 1));
      rest.remove_prefix(end + 1);
    }
    ++restores_;
    return Status::ok();
  }
  std::size_t restores() const {
    std::lock_guard lock(mutex_);
    return restores_;
  }
  std::string get(const std::string& key) const {
    std::lock_guard lock(mutex_);
    auto it = values_.find(key);
    return it == values_.end() ? std::string() : it->second;
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable gate_cv_;
  bool gate_open_ = true;
  int waiting_at_gate_ = 0;
  std::size_t applied_ = 0;
  std::size_t restores_ = 0;
  std::map<std::string, std::string> values_;
};

// Keeps every line logged through it (keel/logger.h), as
// "<level> <message> key=value ...", for a test to look through.
class RecordingLogger final : public Logger {
 public:
  using Logger::log;
  bool enabled(LogLevel) const override { return true; }
  void log(LogLevel level, std::string_view message, std::span<const LogField> fields) override {
    std::string line = std::string(to_string(level)) + " " + std::string(message);
    for (const LogField& field : fields) line += " " + std::string(field.key) + "=" + field.value;
    std::lock_guard lock(mutex_);
    lines_.push_back(std::move(line));
  }
  bool logged(const std::string& needle) const {
    std::lock_guard lock(mutex_);
    for (const std::string& line : lines_) {
      if (line.find(needle) != std::string::npos) return true;
    }
    return false;
  }
  std::vector<std::string> lines() const {
    std::lock_guard lock(mutex_);
    return lines_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> lines_;
};

// Keeps what keel reports through keel/metrics.h: counters summed, the
// last value of each gauge, the number of observations of each histogram,
// each per name and labels ("name{peer=2,server=1}", labels in the order
// given).
class RecordingMetrics final : public MetricsSink {
 public:
  using MetricsSink::add;
  using MetricsSink::observe;
  using MetricsSink::set;
  void add(std::string_view name, std::uint64_t delta,
           std::span<const MetricLabel> labels) override {
    std::lock_guard lock(mutex_);
    counters_[series(name, labels)] += delta;
  }
  void set(std::string_view name, double value, std::span<const MetricLabel> labels) override {
    std::lock_guard lock(mutex_);
    gauges_[series(name, labels)] = value;
  }
  void observe(std::string_view name, double value, std::span<const MetricLabel> labels) override {
    std::lock_guard lock(mutex_);
    ++observations_[series(name, labels)];
    if (value < 0) ++negative_;
  }
  std::uint64_t counter(const std::string& series) const {
    std::lock_guard lock(mutex_);
    auto it = counters_.find(series);
    return it == counters_.end() ? 0 : it->second;
  }
  std::optional<double> gauge(const std::string& series) const {
    std::lock_guard lock(mutex_);
    auto it = gauges_.find(series);
    return it == gauges_.end() ? std::nullopt : std::optional<double>(it->second);
  }
  std::uint64_t observations(const std::string& series) const {
    std::lock_guard lock(mutex_);
    auto it = observations_.find(series);
    return it == observations_.end() ? 0 : it->second;
  }
  std::uint64_t negative_observations() const {
    std::lock_guard lock(mutex_);
    return negative_;
  }

 private:
  static std::string series(std::string_view name, std::span<const MetricLabel> labels) {
    std::string out(name);
    out += '{';
    for (std::size_t i = 0; i < labels.size(); ++i) {
      if (i > 0) out += ',';
      out += std::string(labels[i].name) + "=" + labels[i].value;
    }
    return out + '}';
  }
  mutable std::mutex mutex_;
  std::map<std::string, std::uint64_t> counters_;
  std::map<std::string, double> gauges_;
  std::map<std::string, std::uint64_t> observations_;
  std::uint64_t negative_ = 0;
};

// Waits for a condition with a generous liveness bound (never a fixed sleep
// standing in for the condition).
inline bool eventually(const std::function<bool()>& condition,
                       std::chrono::milliseconds bound = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + bound;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(2ms);
  }
  return condition();
}

// The dependencies of a one-server cluster (id 1, "solo") on bootstrapped
// memory stores, with short timeouts (it leads within a few hundred
// milliseconds); callers adjust deps.config and deps.observers.
inline RaftDependencies solo_server_deps(std::shared_ptr<Env> env, InMemoryNetwork& network) {
  Configuration configuration{{Server{ServerId{1}, "solo", Suffrage::kVoter}}};
  auto log = std::make_shared<MemoryLogStore>();
  auto stable = std::make_shared<MemoryStableStore>();
  if (!bootstrap_cluster(*log, *stable, configuration).is_ok()) std::abort();
  Config config;
  config.id = ServerId{1};
  config.heartbeat_interval = 20ms;
  config.election_timeout = 100ms;
  config.lease_timeout = 50ms;
  return RaftDependencies{config,
                          std::make_shared<KvFsm>(),
                          log,
                          stable,
                          std::make_shared<MemorySnapshotStore>(),
                          network.transport(ServerId{1}),
                          std::move(env)};
}

class TestCluster {
 public:
  explicit TestCluster(std::size_t size, std::function<void(Config&)> tune = {})
      : env_(make_thread_env()), network_(env_), tune_(std::move(tune)) {
    for (std::size_t i = 1; i <= size; ++i) {
      configuration_.servers.push_back(
          Server{ServerId{i}, "server-" + std::to_string(i), Suffrage::kVoter});
    }
    for (const Server& server : configuration_.servers) {
      Member& m = members_[server.id];
      m.log = std::make_shared<MemoryLogStore>();
      m.stable = std::make_shared<MemoryStableStore>();
      m.snapshots = std::make_shared<MemorySnapshotStore>();
      Status status = bootstrap_cluster(*m.log, *m.stable, configuration_);
      if (!status.is_ok()) std::abort();
    }
  }
  ~TestCluster() {
    for (auto& [id, m] : members_) {
      if (m.fsm) m.fsm->open_gate();
      m.raft.reset();
    }
  }

  Config config(ServerId id) const {
    Config config;
    config.id = id;
    config.heartbeat_interval = 20ms;
    config.election_timeout = 200ms;
    config.lease_timeout = 100ms;
    if (tune_) tune_(config);
    return config;
  }

  // Starts (or restarts) a server from its stores with a fresh FSM.
  Status start(ServerId id, bool gate_closed = false) {
    Member& m = members_.at(id);
    m.fsm = std::make_shared<KvFsm>();
    if (gate_closed) m.fsm->close_gate();
    std::shared_ptr<Transport> transport = network_.transport(id);
    if (wrap_transport) transport = wrap_transport(id, std::move(transport));
    RaftDependencies deps{config(id),           m.fsm, m.log, m.stable, m.snapshots,
                          std::move(transport), env_};
    deps.metrics = metrics_;
    Result<std::unique_ptr<Raft>> raft = Raft::open(std::move(deps));
    if (!raft.is_ok()) return raft.status();
    m.raft = std::move(raft).value();
    return Status::ok();
  }
  // The metrics sink of every server started from now on (null: none).
  void set_metrics(std::shared_ptr<MetricsSink> metrics) { metrics_ = std::move(metrics); }
  void start_all(bool gate_closed = false) {
    for (ServerId id : ids()) {
      if (!start(id, gate_closed).is_ok()) std::abort();
    }
  }
  void stop(ServerId id) {
    Member& m = members_.at(id);
    if (m.fsm) m.fsm->open_gate();
    m.raft.reset();
  }

  // A server with empty stores (not bootstrapped: it waits to be added),
  // at address "server-<id>"; start() it like any other.
  void add_server(ServerId id) {
    Member& m = members_[id];
    m.log = std::make_shared<MemoryLogStore>();
    m.stable = std::make_shared<MemoryStableStore>();
    m.snapshots = std::make_shared<MemorySnapshotStore>();
  }
  static std::string address(ServerId id) { return "server-" + std::to_string(id.value); }

  // Every server, founding or added.
  std::vector<ServerId> ids() const {
    std::vector<ServerId> out;
    for (const auto& [id, m] : members_) out.push_back(id);
    return out;
  }
  Raft& raft(ServerId id) { return *members_.at(id).raft; }
  // Open and not shut down (a removed server may shut itself down).
  bool running(ServerId id) const {
    const auto& raft = members_.at(id).raft;
    return raft != nullptr && raft->state() != RaftState::kShutdown;
  }
  KvFsm& fsm(ServerId id) { return *members_.at(id).fsm; }
  MemoryLogStore& log_store(ServerId id) { return *members_.at(id).log; }
  MemoryStableStore& stable_store(ServerId id) { return *members_.at(id).stable; }
  MemorySnapshotStore& snapshot_store(ServerId id) { return *members_.at(id).snapshots; }
  InMemoryNetwork& network() { return network_; }

  // Lets a test put a decorator around a server's transport (set before start).
  std::function<std::shared_ptr<Transport>(ServerId, std::shared_ptr<Transport>)> wrap_transport;

  // The one running server that says it leads, once exactly one does.
  ServerId wait_for_leader(std::chrono::milliseconds bound = 10s) {
    ServerId found;
    eventually(
        [&] {
          found = kNoServer;
          int leaders = 0;
          for (ServerId id : ids()) {
            if (running(id) && raft(id).state() == RaftState::kLeader) {
              found = id;
              ++leaders;
            }
          }
          return leaders == 1;
        },
        bound);
    return found;
  }

  // One line per server, for failure messages.
  std::string describe() {
    std::string out;
    for (ServerId id : ids()) {
      out += "\n  server " + std::to_string(id.value) + ": ";
      if (!running(id)) {
        out += "stopped";
        continue;
      }
      RaftStats s = raft(id).stats();
      out += std::string(to_string(s.state)) + " term=" + std::to_string(s.term.value) +
             " leader=" + std::to_string(s.leader.id.value) +
             " last=" + std::to_string(s.last_index.value) +
             " commit=" + std::to_string(s.commit_index.value) +
             " applied=" + std::to_string(s.applied_index.value);
    }
    return out;
  }

  ServerId any_follower(ServerId leader) const {
    for (ServerId id : ids()) {
      if (id != leader && running(id)) return id;
    }
    return kNoServer;
  }

 private:
  struct Member {
    std::shared_ptr<MemoryLogStore> log;
    std::shared_ptr<MemoryStableStore> stable;
    std::shared_ptr<MemorySnapshotStore> snapshots;
    std::shared_ptr<KvFsm> fsm;
    std::unique_ptr<Raft> raft;
  };

  std::shared_ptr<Env> env_;
  InMemoryNetwork network_;
  std::function<void(Config&)> tune_;
  Configuration configuration_;
  std::map<ServerId, Member> members_;
  std::shared_ptr<MetricsSink> metrics_;
};

}  // namespace keel::testing
