// sim/simulation.h — one complete simulated run, as keel-sim does it for
// each seed: a SimCluster of KvFsm servers, KvWorkload clients, a Nemesis
// carrying out a (swarm-chosen) FaultPlan, and every check.
//
// The run, in virtual time:
//   1. the clients issue `ops` operations while the nemesis acts (until
//      they are all answered, or `time_limit` passes: then no new ones);
//   2. the nemesis heals everything (links, crashed and paused servers,
//      clocks, loss, latency) and the clients' last operations finish;
//   3. liveness: a ready leader acknowledges a write within 30 election
//      timeouts;
//   4. convergence: every server applies the same sequence of entries (and
//      the KV states agree) within 30 more election timeouts;
//   5. log matching and leader completeness over the stores;
//   6. the history is linearizable (sim/linearizability.h): stale reads are
//      left out, lease reads too when the plan drifts clocks beyond the lease
//      bound.
// Safety checks (sim/safety_checker.h) run throughout, after every step;
// the first violation ends the run.
//
// Everything random derives from `seed` (sim/seed.h), so a run replays bit
// for bit: the same options give the same SimulationResult::hash.
//
// Thread safety: none; one thread runs a Simulation.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "sim/history.h"
#include "sim/nemesis.h"

namespace keel::sim {

struct SimulationOptions {
  std::uint64_t seed = 1;
  // Voters; 0 draws the cluster's shape per seed: 1, 3 or 5 voters, so that
  // a one-voter cluster (which elects itself in one step) is as common a
  // schedule as a five-voter one.
  std::size_t nodes = 0;
  // Learners besides the voters (they receive the log, never vote); unset:
  // drawn per seed, 0 to 2.
  std::optional<std::size_t> learners;
  std::size_t clients = 5;
  std::uint64_t ops = 300;
  // Faults the run uses. With `subset`, each seed enables a random subset of
  // them instead of all ("swarm testing"). With `swarm`, each seed draws the
  // faults' rates and the servers' Config; without it both are fixed.
  std::set<Fault> faults;
  bool subset = true;
  bool swarm = true;
  // Virtual time allowed for the clients' phase.
  std::chrono::nanoseconds time_limit = std::chrono::seconds(120);
  // A core::Canary to break (builds with KEEL_CANARIES only; 0 otherwise).
  std::uint8_t canary = 0;
  // Decoded frames in the trace too (SimClusterOptions::trace_frames).
  bool trace_frames = false;
  // The servers' stores: memory, or the durable stores on a simulated disk
  // (sim/node_storage.h).
  bool disk = false;
};

struct SimulationResult {
  bool ok = false;
  std::vector<std::string> violations;
  // Whether some violation was of safety (not only of liveness).
  bool safety_violated = false;
  // The cluster's shape, as drawn or given.
  std::size_t voters = 0;
  std::size_t learners = 0;
  // Terms begun (the highest term's rises) per virtual minute of the run.
  double terms_per_minute = 0.0;
  std::uint64_t hash = 0;
  std::uint64_t operations = 0;  // recorded in the history
  std::string outcomes;          // "ok=.. failed=.. unknown=.."
  std::chrono::nanoseconds virtual_time{0};
  std::uint64_t tasks = 0;
  std::uint64_t nemesis_actions = 0;
  std::string plan;    // FaultPlan::describe()
  std::string config;  // the servers' Config, in short
};

class Simulation {
 public:
  explicit Simulation(SimulationOptions options);
  ~Simulation();
  Simulation(const Simulation&) = delete;
  Simulation& operator=(const Simulation&) = delete;

  SimulationResult run();

  // The failure report: how to replay, the violations, the plan, the
  // history's size and the linearizability explanation, then the trace. May
  // be called during run() (keel-sim does so when an invariant aborts the
  // process), with what is known so far.
  std::string report(const SimulationResult& result) const;
  // The history so far, in the text form of sim/history.h.
  std::string history_text() const;
  // `keel-sim ...` arguments that replay this run.
  std::string replay_arguments() const;

  struct Run;

 private:
  SimulationOptions options_;
  std::unique_ptr<Run> run_;
};

// The servers' Config for a seed (the swarm's timing and bounds).
Config swarm_config(std::uint64_t seed, bool vary);

struct ClusterShape {
  std::size_t voters = 3;
  std::size_t learners = 0;
};
// The shape of the cluster for a seed: what `options` fixes, the rest drawn.
ClusterShape cluster_shape(const SimulationOptions& options);

}  // namespace keel::sim
