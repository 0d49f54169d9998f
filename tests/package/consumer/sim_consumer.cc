// tests/package/consumer/sim_consumer.cc — a user's test of their own state
// machine in keel's simulator (keel::sim, docs/simulation.md "Running your
// own Fsm"), built against the installed package: three servers in virtual
// time, one command through the ready leader, every server's state machine
// must see it and no check may fail. Exits 0 when so, 1 otherwise.
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <keel/fsm.h>
#include <keel/raft.h>

#include "sim/sim_cluster.h"

namespace {

using namespace std::chrono_literals;

// The user's state machine: counts the commands it applies (one thread
// drives the whole simulation, so no lock).
class CountingFsm final : public keel::Fsm {
 public:
  std::string apply(const keel::LogEntry&) override { return std::to_string(++applied_); }
  keel::Result<std::unique_ptr<keel::FsmSnapshot>> snapshot() override {
    return std::unique_ptr<keel::FsmSnapshot>(
        std::make_unique<keel::CopiedSnapshot>(std::to_string(applied_)));
  }
  keel::Status restore(const keel::SnapshotMeta&, keel::SnapshotReader& reader) override {
    keel::Result<std::string> bytes = keel::read_whole_snapshot(reader, 32);
    if (!bytes.is_ok()) return bytes.status();
    applied_ = std::stoi(*bytes);
    return keel::Status::ok();
  }
  int applied() const { return applied_; }

 private:
  int applied_ = 0;
};

int fail(const std::string& why) {
  std::cerr << "keel-sim-consumer FAILED: " << why << "\n";
  return EXIT_FAILURE;
}

}  // namespace

int main() {
  std::map<std::uint64_t, std::shared_ptr<CountingFsm>> latest;  // each server's current FSM
  keel::sim::SimClusterOptions options;
  options.nodes = 3;
  options.seed = 7;
  options.fsm_factory = [&latest](keel::ServerId id) {
    auto fsm = std::make_shared<CountingFsm>();
    latest[id.value] = fsm;
    return fsm;
  };
  keel::sim::SimCluster cluster(options);
  if (!cluster.run_until([&] { return cluster.ready_leader().has_value(); }, 10s)) {
    return fail("no ready leader in 10 s of virtual time");
  }
  bool applied = false;
  cluster.raft(*cluster.ready_leader())
      ->apply("count me", 2s)
      .then([&applied](const keel::Result<keel::ApplyResult>& r) { applied = r.is_ok(); });
  cluster.run_until([&] { return applied; }, 5s);
  if (!applied) return fail("the command was not applied");
  cluster.run_for(2s);  // let the followers apply it too
  if (cluster.failed()) return fail("a check failed: " + cluster.violations().front());
  for (const auto& [id, fsm] : latest) {
    if (fsm->applied() != 1) return fail("server " + std::to_string(id) + " did not apply it");
  }
  std::cout << "3 simulated servers applied the command; every check held\n";
  return EXIT_SUCCESS;
}
