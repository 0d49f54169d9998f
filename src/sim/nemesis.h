// sim/nemesis.h — the faults a simulated run suffers, and the swarm that
// picks them.
//
// A FaultPlan says which faults are on and how hard they hit; plan_faults()
// draws one from a seed ("swarm testing": each seed enables a random subset
// with random rates, so runs differ in kind and a fault that masks another
// is often absent). The Nemesis carries a plan out on a SimCluster:
//
//   network, set once:  drop rate, duplicate rate, per-frame delay range
//                       (which reorders frames), extra delay on some links;
//   machines, set once: disk latency (log writer) and apply latency (FSM);
//   actions, at random intervals, each undone after a random duration:
//     halves          two random groups (sizes differ by at most one)
//     isolate         one random server cut off both ways
//     isolate-leader  the current leader cut off both ways
//     bridge          groups A and C that reach each other only through B
//     ring            each server reaches only its neighbours on a ring
//                     (every server sees a majority, no two the same one)
//     one-way         the leader hears nobody (or nobody hears it), or a
//                     random set of one-direction cuts
//     crash           a server (often the leader) crashes; restarted later
//     pause           a server (often the leader) is paused; resumed later
//     drift           a server's clock rate changes, within the lease bound
//                     (Config::clock_drift_percent) ...
//     drift-beyond    ... or beyond it (lease reads are then not checked)
//   reactions, to what the servers publish:
//     election-crash  when a server becomes a candidate, often crash another
//                     server a moment later and restart it soon: a voter
//                     dies while its vote is being made durable
//     leader-churn    when a server becomes leader, often crash, pause or isolate it
//                     a moment later: it leaves entries behind that did not
//                     reach a majority (the stuff of Figure 8)
//
// While the nemesis runs it also checks liveness under partial failure:
// whenever nothing has changed for a window (12 election timeouts, on the
// slowest clock) and some majority of running, unpaused servers can all talk
// to each other both ways, some ready leader must be able to talk both ways
// to a majority. Pre-vote and check-quorum exist to guarantee that (a leader
// that hears nobody must step down). Raft promises it only where timing is
// sane, so the check is off without pre-vote, with frame loss above 5 %, or
// when a round trip plus a disk write and an apply could exceed a quarter of
// an election timeout (§5.6: broadcast time << election timeout). Quiet
// spells longer than the window are part of the plan.
//
// Thread safety: none; runs on the simulator's thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "keel/env.h"
#include "sim/sim_cluster.h"

namespace keel::sim {

enum class Fault : std::uint8_t {
  kHalves,
  kIsolate,
  kIsolateLeader,
  kBridge,
  kRing,
  kOneWay,
  kCrash,
  kPause,
  kDrift,
  kDriftBeyond,
  kElectionCrash,
  kLeaderChurn,
  kDrop,
  kDuplicate,
  kDelay,
  kLinkDelay,
  kDisk,
};

const char* to_string(Fault fault);
std::optional<Fault> fault_from_name(const std::string& name);
std::vector<Fault> all_faults();

struct FaultPlan {
  std::set<Fault> enabled;
  // Between two nemesis actions; and how long an action lasts.
  Duration interval_low = std::chrono::milliseconds(100);
  Duration interval_high = std::chrono::milliseconds(1500);
  Duration duration_low = std::chrono::milliseconds(50);
  Duration duration_high = std::chrono::milliseconds(3000);
  // Crashed or paused servers at once, at most.
  std::size_t max_down = 1;
  // The chance that an action is held, with nothing else happening, for
  // longer than the liveness window (see above).
  double hold_probability = 0.1;
  double drop_rate = 0.0;
  double duplicate_rate = 0.0;
  Duration delay_low{0};
  Duration delay_high{0};
  Duration link_delay_high{0};
  Duration disk_latency_high{0};
  Duration apply_latency_high{0};
  // Clock rates are drawn from [1, 1 + drift_percent / 100].
  double drift_percent = 0.0;
  // Whether lease reads stay within their promise (no drift beyond the bound).
  bool lease_safe() const { return !enabled.contains(Fault::kDriftBeyond); }
  // One line: "faults=crash,halves,drop drop=0.05 ...".
  std::string describe() const;
};

// The plan for a run, drawn from `seed`: the `allowed` faults (with `subset`,
// a random half of them, "swarm testing"), at random rates with `swarm`,
// else at fixed moderate ones. `nodes` and the servers' config bound them.
FaultPlan plan_faults(std::uint64_t seed, const std::set<Fault>& allowed, bool subset, bool swarm,
                      std::size_t nodes, const Config& config);

class Nemesis {
 public:
  Nemesis(SimCluster& cluster, FaultPlan plan, std::uint64_t seed);
  ~Nemesis();
  Nemesis(const Nemesis&) = delete;
  Nemesis& operator=(const Nemesis&) = delete;

  // Applies the plan's settings and starts acting.
  void start();
  // Stops acting and undoes everything: links heal, crashed servers restart,
  // paused ones resume, clocks run true, no loss, duplication or latency.
  void heal();
  std::uint64_t actions() const;

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace keel::sim
