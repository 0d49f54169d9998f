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
//                     (Config::clock_drift_percent), often to the bound
//                     itself ...
//     drift-beyond    ... or beyond it (lease reads are then not checked)
//     stall           a follower stalls (paused) for one to one and a half
//                     election timeouts while the leader is cut off from the
//                     other servers; just before the follower resumes, it
//                     stops hearing the leader (the leader still hears it).
//                     It resumes with the leader's heartbeats queued and its
//                     own ticks overdue: the window in which a lease must hold
//     lossy-acks      heartbeat responses to the leader are lost (50-100 %)
//                     for a while: read rounds stall with reads pending
//     membership      the ready leader is asked to change the configuration:
//                     add a fresh server as a learner, or as a voter (a
//                     learner first, promoted once it caught up); promote a
//                     learner; remove a voter, a learner or the leader
//                     itself; replace a crashed voter by a fresh server (the
//                     crashed one comes back later, not knowing it was
//                     removed); a joint change of two voters at once; or
//                     remove a server, wipe its disk and add it back under
//                     the same id. One call at a time, each bounded by 20
//                     election timeouts
//     (split change)  some of those changes (twice as many with four
//                     voters) are split by a partition as they start: the
//                     leader and the servers the change adds (for a joint
//                     change, with enough of the new voters to make a
//                     majority of them) on one side, the rest on the other,
//                     for five to ten election timeouts, with no other
//                     action meanwhile. A single promotion (with four
//                     voters: of the sizes the churn keeps, the only one
//                     where one entry can split the cluster) is left
//                     without a majority: when the other
//                     side elects a leader, one of its voters moves to the
//                     old leader's side at once (before the new leader's
//                     first append reaches it) for four to eight election
//                     timeouts, and the new leader is asked to remove that
//                     voter or the old leader. The 2015 single-server change
//                     schedule, played on whatever four voters the churn
//                     left; a joint change on the side of its incoming
//                     majority must not commit without the outgoing one
//     depose          the leader is cut off from its peers but not from its
//                     clients, with the window its lease must cover made as
//                     narrow as the rules allow: with drift on, its clock
//                     runs true and every other clock at the top of the
//                     bound (Config::clock_drift_percent); half the time its peers' answers of the
//                     last heartbeat interval before the cut are held for one to two election
//                     timeouts, so stale acknowledgements reach it while it is cut off
//   reactions, to what the servers publish:
//     election-crash  when a server becomes a candidate, often crash another
//                     server a moment later and restart it soon: a voter
//                     dies while its vote is being made durable
//     leader-churn    when a server becomes leader, often crash, pause or isolate it
//                     a moment later: it leaves entries behind that did not
//                     reach a majority (the stuff of Figure 8)
//     read-crash      when a follower forwards a read to the leader, often crash
//                     it a moment later and restart it at once: the leader
//                     still holds the reads of its previous run
//     snapshot-crash  when a server starts writing a snapshot into its store
//                     (one it took, one a leader sends, one a restore
//                     stages), often crash it within the next 30 ms and
//                     restart it soon: persists and installs take 1-30 ms,
//                     so the crash lands inside them, tearing what was not
//                     synced on a simulated disk
//     (membership)    when a server becomes leader, often ask it at once for
//                     a membership change, before its term-start entry can
//                     have committed (where the single-server change bug of
//                     2015 lives)
//   network, per frame:
//     hold            a few frames on live links (0.5-5 %) are held for one to
//                     three election timeouts before they travel: late
//                     acknowledgements, stale responses, old vote requests
//
// While the nemesis runs it also checks two liveness properties (majorities
// are of the voters of the configuration in force, SimCluster::configuration,
// of both halves while it is joint; learners only listen):
//  - liveness under partial failure: whenever nothing has changed for a
//    window (12 election timeouts, on the slowest clock) and some majority
//    of running, unpaused voters can all talk to each other both ways (a
//    majority of the leader's committed configuration too, while the one in
//    force is not committed), some
//    ready leader must be able to talk both ways to a majority. Pre-vote and
//    check-quorum exist to guarantee that (a leader that hears nobody must
//    step down). Quiet spells longer than the window are part of the plan.
//  - no term churn: while a ready leader holds the highest term and reaches
//    a majority of running voters both ways, with no partition, crash, pause
//    or ack loss in force for two election timeouts, the highest term must
//    not rise: nothing explains a new election (but a leadership transfer:
//    the server a TimeoutNow of that term was sent to may campaign, however
//    late it arrives). This one keeps watching after heal().
// Raft promises either only where timing is sane, so both are off with
// frame loss above 5 %, or when a round trip plus a disk write and an apply
// could exceed a quarter of an election timeout (§5.6: broadcast time <<
// election timeout); the first is also off without pre-vote and
// check-quorum (thesis §9.6, §6.2).
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
  kStall,
  kLossyAcks,
  kReadCrash,
  kHold,
  kDepose,
  kDiskError,      // drawn apart, so that adding it moved no other draw
  kMembership,     // drawn apart too, for the same reason
  kSnapshotCrash,  // drawn apart too
};

const char* to_string(Fault fault);
std::optional<Fault> fault_from_name(const std::string& name);
std::vector<Fault> all_faults();
// The faults of the default swarm: all of them (each seed enables a random
// half; the disk errors and membership churn are drawn apart).
std::set<Fault> swarm_faults();

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
  // Clock rates are drawn from [1, 1 + drift_percent / 100], half the time
  // the top of it.
  double drift_percent = 0.0;
  // lossy-acks: the share of heartbeat responses lost while it acts.
  double lossy_ack_rate = 0.0;
  // read-crash: the chance that a forwarded read gets its follower crashed.
  double read_crash_probability = 0.0;
  // snapshot-crash: the chance that a snapshot write is followed by a crash.
  double snapshot_crash_probability = 0.0;
  // hold: the share of frames held, and for how long.
  double hold_rate = 0.0;
  Duration hold_low{0};
  Duration hold_high{0};
  // membership: the chance that a new leader is asked for a change at once,
  // and that a change is a split change (see above).
  double membership_on_election = 0.0;
  double split_change = 0.0;
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
  // Times the highest term rose (elections that got as far as a vote).
  std::uint64_t term_rises() const;

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace keel::sim
