// examples/sim_own_fsm.cc — your own state machine in keel's deterministic
// simulator: three full keel::Raft servers on one thread, in virtual time,
// with a crash, a cut link and Raft's safety properties checked after every
// step. docs/simulation.md ("Running your own Fsm") shows it whole.
//
// It links keel::sim (the simulator library) besides keel, and includes its
// headers as "sim/...". ctest runs it as example_sim_own_fsm.
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include <keel/fsm.h>
#include <keel/raft.h>

#include "sim/sim_cluster.h"

using namespace std::chrono_literals;

// Your FSM, unchanged: the simulator calls it exactly as a real server does.
// Everything runs on one thread, so no lock is needed here.
class Counter final : public keel::Fsm {
 public:
  std::string apply(const keel::LogEntry& entry) override {
    return std::to_string(value_ += std::stoll(entry.data.str()));
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
  std::int64_t value_ = 0;
};

int main() {
  keel::sim::SimClusterOptions options;
  options.nodes = 3;
  options.seed = 42;  // the same seed replays the same run, bit for bit
  options.fsm_factory = [](keel::ServerId) { return std::make_shared<Counter>(); };
  options.tune_config = [](keel::Config& c) { c.snapshot_threshold_entries = 16; };
  keel::sim::SimCluster cluster(options);

  // Never block on a future here (get(), wait_for()): nothing else would
  // run. Chain with then(), and let run_until() move virtual time.
  int applied = 0;
  auto add = [&](int n) {
    std::optional<keel::ServerId> leader = cluster.ready_leader();
    if (!leader) return;
    cluster.raft(*leader)
        ->apply(std::to_string(n), 1s)
        .then([&](const keel::Result<keel::ApplyResult>& r) { applied += r.is_ok(); });
  };

  cluster.run_until([&] { return cluster.ready_leader().has_value(); }, 10s);
  for (int i = 0; i < 20; ++i) add(1);
  cluster.run_until([&] { return applied == 20; }, 10s);

  // Faults, whenever you like.
  cluster.crash(keel::ServerId{1});
  cluster.cut_link(keel::ServerId{2}, keel::ServerId{3});  // one direction
  cluster.run_for(3s);
  cluster.heal_links();
  cluster.restart(keel::ServerId{1});
  cluster.run_until([&] { return cluster.ready_leader().has_value(); }, 10s);
  for (int i = 0; i < 20; ++i) add(1);
  cluster.run_until([&] { return applied == 40; }, 10s);
  cluster.run_for(2s);  // let every server apply what the leader has

  if (cluster.failed()) {
    for (const std::string& violation : cluster.violations()) std::cerr << violation << "\n";
    std::cerr << cluster.trace().text();
    return EXIT_FAILURE;
  }
  // Convergence is yours to check: the simulator compares applied entries,
  // not your FSM's state.
  for (keel::ServerId id : cluster.ids()) {
    auto counter = std::static_pointer_cast<Counter>(cluster.fsm(id));
    std::cout << "server " << id << ": " << counter->value() << "\n";
    if (counter->value() != 40) return EXIT_FAILURE;
  }
  std::cout << "applied " << applied << " commands; trace hash " << std::hex
            << cluster.trace().hash() << "\n";
  return applied == 40 ? EXIT_SUCCESS : EXIT_FAILURE;
}
