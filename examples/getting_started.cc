// examples/getting_started.cc — a replicated counter: three keel servers in
// one process over the in-memory network. docs/getting-started.md walks
// through it; ctest runs it as example_getting_started.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <keel/raft.h>

using namespace std::chrono_literals;

int fail(const auto& why) {
  std::cerr << "getting_started: " << why << "\n";
  return EXIT_FAILURE;
}

// The state machine: one number. keel calls apply() on its applier thread;
// value() is read from ours, hence the atomic.
class Counter final : public keel::Fsm {
 public:
  std::string apply(const keel::LogEntry& entry) override {  // "add N"
    const std::string command = entry.data.str();
    if (command.rfind("add ", 0) != 0) return "error: expected 'add N'";
    return std::to_string(value_ += std::stoll(command.substr(4)));
  }
  keel::Result<std::unique_ptr<keel::FsmSnapshot>> snapshot() override {
    return std::unique_ptr<keel::FsmSnapshot>(
        std::make_unique<keel::CopiedSnapshot>(std::to_string(value_)));
  }
  keel::Status restore(const keel::SnapshotMeta&, keel::SnapshotReader& reader) override {
    keel::Result<std::string> bytes = keel::read_whole_snapshot(reader, 64);
    if (!bytes.is_ok()) return bytes.status();
    value_ = std::stoll(*bytes);
    return keel::Status::ok();
  }
  std::int64_t value() const { return value_; }

 private:
  std::atomic<std::int64_t> value_{0};
};

int main() {
  std::shared_ptr<keel::Env> env = keel::make_thread_env();
  keel::InMemoryNetwork network(env);  // outlives the servers below
  keel::Configuration cluster;
  for (std::uint64_t id = 1; id <= 3; ++id)
    cluster.servers.push_back({keel::ServerId{id}, "server-" + std::to_string(id)});

  // The first server to say kLeaderReady: it leads, and its FSM holds every
  // entry committed before its term began.
  keel::Promise<keel::ServerId> leader_ready;
  std::vector<std::shared_ptr<Counter>> counters;
  std::vector<std::unique_ptr<keel::Raft>> servers;
  for (const keel::Server& server : cluster.servers) {
    auto log = std::make_shared<keel::MemoryLogStore>();
    auto stable = std::make_shared<keel::MemoryStableStore>();
    if (keel::Status s = keel::bootstrap_cluster(*log, *stable, cluster); !s) return fail(s);
    keel::RaftDependencies deps;  // every Config setting but the id keeps its default
    deps.config.id = server.id;
    deps.fsm = counters.emplace_back(std::make_shared<Counter>());
    deps.log_store = log;
    deps.stable_store = stable;
    deps.snapshot_store = std::make_shared<keel::MemorySnapshotStore>();
    deps.transport = network.transport(server.id);
    deps.env = env;
    deps.observers.push_back([leader_ready](const keel::Observation& o) {
      if (o.kind == keel::Observation::Kind::kLeaderReady) leader_ready.resolve(o.leader.id);
    });
    keel::Result<std::unique_ptr<keel::Raft>> opened = keel::Raft::open(std::move(deps));
    if (!opened.is_ok()) return fail(opened.status());
    servers.push_back(std::move(opened).value());
  }

  keel::Future<keel::ServerId> ready = leader_ready.future();
  if (!ready.wait_for(15s)) return fail("no leader within 15 s");
  const std::size_t leader = ready.get().value().value - 1;  // ids 1..3 at 0..2
  for (int n : {1, 2, 3}) {
    keel::Result<keel::ApplyResult> r =
        servers[leader]->apply("add " + std::to_string(n), 5s).get();
    if (!r.is_ok()) return fail(r.status());
    std::cout << "add " << n << " -> " << r->response << " (index " << r->index << ")\n";
  }

  // On a follower: read() resolves once its FSM holds every write committed
  // before the call (one quorum round through the leader). Then read it.
  const std::size_t follower = (leader + 1) % servers.size();
  keel::Result<keel::Index> safe =
      servers[follower]->read(keel::Consistency::kLinearizable, 5s).get();
  if (!safe.is_ok()) return fail(safe.status());
  std::cout << "follower reads " << counters[follower]->value() << "\n";
  for (auto& server : servers) server->shutdown();
  return counters[follower]->value() == 6 ? EXIT_SUCCESS : EXIT_FAILURE;
}
