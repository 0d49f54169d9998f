#include "sim/nemesis.h"

#include <algorithm>
#include <map>
#include <utility>

#include "core/message.h"
#include "core/prng.h"

namespace keel::sim {

using namespace std::chrono_literals;

namespace {

struct FaultName {
  Fault fault;
  const char* name;
};

constexpr FaultName kFaultNames[] = {
    {Fault::kHalves, "halves"},
    {Fault::kIsolate, "isolate"},
    {Fault::kIsolateLeader, "isolate-leader"},
    {Fault::kBridge, "bridge"},
    {Fault::kRing, "ring"},
    {Fault::kOneWay, "one-way"},
    {Fault::kCrash, "crash"},
    {Fault::kPause, "pause"},
    {Fault::kDrift, "drift"},
    {Fault::kDriftBeyond, "drift-beyond"},
    {Fault::kElectionCrash, "election-crash"},
    {Fault::kLeaderChurn, "leader-churn"},
    {Fault::kDrop, "drop"},
    {Fault::kDuplicate, "duplicate"},
    {Fault::kDelay, "delay"},
    {Fault::kLinkDelay, "link-delay"},
    {Fault::kDisk, "disk"},
    {Fault::kStall, "stall"},
    {Fault::kLossyAcks, "lossy-acks"},
    {Fault::kReadCrash, "read-crash"},
    {Fault::kHold, "hold"},
    {Fault::kDepose, "depose"},
    {Fault::kDiskError, "disk-error"},
    {Fault::kMembership, "membership"},
    {Fault::kSnapshotCrash, "snapshot-crash"},
};

// Faults the nemesis acts out over time (the others are settings).
bool is_action(Fault fault) {
  switch (fault) {
    case Fault::kHalves:
    case Fault::kIsolate:
    case Fault::kIsolateLeader:
    case Fault::kBridge:
    case Fault::kRing:
    case Fault::kOneWay:
    case Fault::kCrash:
    case Fault::kPause:
    case Fault::kDrift:
    case Fault::kDriftBeyond:
    case Fault::kStall:
    case Fault::kLossyAcks:
    case Fault::kDepose:
    case Fault::kDiskError:
    case Fault::kMembership:
      return true;
    default:
      return false;
  }
}

bool is_partition(Fault fault) {
  return fault == Fault::kHalves || fault == Fault::kIsolate || fault == Fault::kIsolateLeader ||
         fault == Fault::kBridge || fault == Fault::kRing || fault == Fault::kOneWay;
}

double unit(core::Prng& prng) { return static_cast<double>(prng.next() >> 11) * 0x1.0p-53; }

Duration between(core::Prng& prng, Duration low, Duration high) {
  if (high <= low) return low;
  const auto span = static_cast<std::uint64_t>((high - low).count());
  return low + Duration(static_cast<Duration::rep>(prng.uniform(0, span + 1)));
}

template <typename T>
const T& pick(core::Prng& prng, const std::vector<T>& from) {
  return from[prng.uniform(0, from.size())];
}

std::string millis(Duration d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) + "ms";
}

}  // namespace

const char* to_string(Fault fault) {
  for (const FaultName& entry : kFaultNames) {
    if (entry.fault == fault) return entry.name;
  }
  return "?";
}

std::optional<Fault> fault_from_name(const std::string& name) {
  for (const FaultName& entry : kFaultNames) {
    if (name == entry.name) return entry.fault;
  }
  return std::nullopt;
}

std::vector<Fault> all_faults() {
  std::vector<Fault> faults;
  for (const FaultName& entry : kFaultNames) faults.push_back(entry.fault);
  return faults;
}

std::set<Fault> swarm_faults() {
  const std::vector<Fault> all = all_faults();
  return std::set<Fault>(all.begin(), all.end());
}

std::string FaultPlan::describe() const {
  std::string out = "faults=";
  bool first = true;
  for (Fault fault : enabled) {
    if (!first) out += ',';
    out += to_string(fault);
    first = false;
  }
  if (enabled.empty()) out += "none";
  out += " every=" + millis(interval_low) + ".." + millis(interval_high) +
         " for=" + millis(duration_low) + ".." + millis(duration_high) +
         " max_down=" + std::to_string(max_down) + " hold=" + std::to_string(hold_probability);
  if (enabled.contains(Fault::kDrop)) out += " drop=" + std::to_string(drop_rate);
  if (enabled.contains(Fault::kDuplicate)) out += " dup=" + std::to_string(duplicate_rate);
  if (enabled.contains(Fault::kDelay))
    out += " delay=" + millis(delay_low) + ".." + millis(delay_high);
  if (enabled.contains(Fault::kLinkDelay)) out += " link_delay<=" + millis(link_delay_high);
  if (enabled.contains(Fault::kDisk)) {
    out += " disk<=" + millis(disk_latency_high) + " apply<=" + millis(apply_latency_high);
  }
  if (drift_percent > 0) out += " drift=" + std::to_string(drift_percent) + "%";
  if (enabled.contains(Fault::kLossyAcks)) out += " lossy_acks=" + std::to_string(lossy_ack_rate);
  if (enabled.contains(Fault::kReadCrash)) {
    out += " read_crash=" + std::to_string(read_crash_probability);
  }
  if (enabled.contains(Fault::kSnapshotCrash)) {
    out += " snapshot_crash=" + std::to_string(snapshot_crash_probability);
  }
  if (enabled.contains(Fault::kHold)) {
    out += " hold=" + std::to_string(hold_rate) + " for " + millis(hold_low) + ".." +
           millis(hold_high);
  }
  if (enabled.contains(Fault::kMembership)) {
    out += " membership_on_election=" + std::to_string(membership_on_election) +
           " split_change=" + std::to_string(split_change);
  }
  return out;
}

FaultPlan plan_faults(std::uint64_t seed, const std::set<Fault>& allowed, bool subset, bool swarm,
                      std::size_t nodes, const Config& config) {
  core::Prng prng(seed);
  FaultPlan plan;
  if (!subset) {
    plan.enabled = allowed;
  } else {
    for (Fault fault : allowed) {
      // Drawn below, each on its own.
      if (fault == Fault::kDiskError || fault == Fault::kMembership ||
          fault == Fault::kSnapshotCrash) {
        continue;
      }
      // Drift beyond the lease bound takes lease reads out of the check, so
      // it is rarer than the rest.
      if (unit(prng) < (fault == Fault::kDriftBeyond ? 0.25 : 0.5)) plan.enabled.insert(fault);
    }
    core::Prng disk_error_prng(seed ^ 0xd15cea5eULL);
    if (allowed.contains(Fault::kDiskError) && unit(disk_error_prng) < 0.5) {
      plan.enabled.insert(Fault::kDiskError);
    }
    core::Prng membership_prng(seed ^ 0x3e3be45ULL);
    if (allowed.contains(Fault::kMembership) && unit(membership_prng) < 0.5) {
      plan.enabled.insert(Fault::kMembership);
    }
    core::Prng snapshot_crash_prng(seed ^ 0x5a9c4a54ULL);
    if (allowed.contains(Fault::kSnapshotCrash) && unit(snapshot_crash_prng) < 0.5) {
      plan.enabled.insert(Fault::kSnapshotCrash);
    }
    // At least one thing happens in every run that allows anything.
    if (plan.enabled.empty() && !allowed.empty()) {
      std::vector<Fault> choices(allowed.begin(), allowed.end());
      plan.enabled.insert(pick(prng, choices));
    }
  }
  const Duration election = config.election_timeout;
  if (swarm) {
    plan.interval_low = between(prng, 20ms, 2 * election);
    plan.interval_high = plan.interval_low * static_cast<int>(prng.uniform(2, 11));
    plan.duration_low = between(prng, 5ms, 3 * election);
    plan.duration_high = plan.duration_low + between(prng, election, 25 * election);
  }
  // Holds make the liveness check possible but slow the churn that safety
  // bugs need: half the seeds have none.
  const double holds[] = {0.0, 0.0, 0.05, 0.2};
  if (swarm) plan.hold_probability = holds[prng.uniform(0, 4)];
  const std::size_t minority = (nodes - 1) / 2;
  plan.max_down = std::max<std::size_t>(1, minority);
  if (swarm && unit(prng) < 0.25) plan.max_down = nodes;  // sometimes no quorum at all
  const double drops[] = {0.01, 0.03, 0.1, 0.3};
  const double duplicates[] = {0.01, 0.05, 0.2};
  plan.drop_rate = swarm ? drops[prng.uniform(0, 4)] : 0.03;
  plan.duplicate_rate = swarm ? duplicates[prng.uniform(0, 3)] : 0.05;
  plan.delay_low = swarm ? between(prng, 0ms, 3ms) : 0ms;
  plan.delay_high = plan.delay_low + (swarm ? between(prng, 1ms, election / 4) : 10ms);
  plan.link_delay_high = swarm ? between(prng, 2ms, election / 3) : 20ms;
  // fsync stalls of a good part of an election timeout happen on real disks.
  plan.disk_latency_high = swarm ? between(prng, 1ms, election / 2) : 5ms;
  plan.apply_latency_high = swarm ? between(prng, 1ms, election / 8) : 5ms;
  if (plan.enabled.contains(Fault::kDriftBeyond)) {
    // Far enough beyond the bound to break a lease: up to twice as fast.
    plan.drift_percent = static_cast<double>(config.clock_drift_percent) * 2 + 20 + unit(prng) * 60;
  } else if (plan.enabled.contains(Fault::kDrift)) {
    // A lease is tightest at the bound itself: half the seeds drift up to it.
    const double share = !swarm || unit(prng) < 0.5 ? 1.0 : unit(prng);
    plan.drift_percent = static_cast<double>(config.clock_drift_percent) * share;
  }
  const double lossy[] = {0.5, 0.9, 1.0};
  plan.lossy_ack_rate = swarm ? lossy[prng.uniform(0, 3)] : 0.9;
  const double read_crashes[] = {0.1, 0.3, 0.6};
  plan.read_crash_probability = swarm ? read_crashes[prng.uniform(0, 3)] : 0.3;
  const double holds_rates[] = {0.005, 0.02, 0.05};
  plan.hold_rate = swarm ? holds_rates[prng.uniform(0, 3)] : 0.02;
  plan.hold_low = election;
  plan.hold_high = 3 * election;
  core::Prng membership_prng(seed ^ 0x3e3be45ULL ^ 0x1);
  const double on_election[] = {0.1, 0.3, 0.6};
  plan.membership_on_election = swarm ? on_election[membership_prng.uniform(0, 3)] : 0.3;
  const double splits[] = {0.1, 0.3, 0.5};
  plan.split_change = swarm ? splits[membership_prng.uniform(0, 3)] : 0.3;
  core::Prng snapshot_crash_prng(seed ^ 0x5a9c4a54ULL ^ 0x1);
  const double snapshot_crashes[] = {0.1, 0.3, 0.6};
  plan.snapshot_crash_probability =
      swarm ? snapshot_crashes[snapshot_crash_prng.uniform(0, 3)] : 0.3;
  return plan;
}

// --- the nemesis ---------------------------------------------------------------------

struct Nemesis::State : std::enable_shared_from_this<Nemesis::State> {
  SimCluster& cluster;
  FaultPlan plan;
  core::Prng prng;
  std::shared_ptr<Executor> executor;
  std::vector<Fault> actions;
  bool running = false;
  std::uint64_t generation = 0;       // bumped by every change of the fault state
  std::uint64_t partition = 0;        // the partition in force (0: none)
  std::uint64_t partitions_made = 0;  // ids are never reused: a stale heal timer finds its own gone
  std::uint64_t actions_taken = 0;
  std::set<ServerId> crashed;
  std::set<ServerId> paused;
  bool healed = false;            // heal() ran: no fault is left in force
  bool lossy_acks = false;        // lossy-acks is acting now
  ServerId late_to;               // depose: frames to this server are held ...
  Duration late_until{0};         // ... until then
  std::uint64_t lossy_round = 0;  // which lossy-acks action is in force
  // Term churn (see nemesis.h): the highest term seen, how often it rose,
  // and since when a ready leader of it has reached a majority with no
  // fault in force.
  struct ChurnWatch {
    ServerId leader;
    Term term;
    Duration since{0};
  };
  Term highest_term;
  std::uint64_t term_rises = 0;
  std::optional<ChurnWatch> churn_watch;
  // (target, term) of every TimeoutNow sent: a transfer's target campaigns
  // when it arrives, however late that is.
  std::set<std::pair<ServerId, Term>> timeout_now_to;

  State(SimCluster& c, FaultPlan p, std::uint64_t seed)
      : cluster(c), plan(std::move(p)), prng(seed), executor(c.make_executor("nemesis")) {
    for (Fault fault : plan.enabled) {
      if (is_action(fault)) actions.push_back(fault);
    }
  }

  void log(const std::string& what) { cluster.trace().event(cluster.now(), "nemesis " + what); }

  template <typename F>
  void after(Duration delay, F action) {
    executor->post_after(delay, [weak = weak_from_this(), action = std::move(action)]() mutable {
      auto self = weak.lock();
      if (self && self->running) action(*self);
    });
  }

  void start() {
    running = true;
    cluster.on_state_change([weak = weak_from_this()](ServerId id, const RaftStats& stats) {
      if (auto self = weak.lock()) self->on_state(id, stats);
    });
    if (plan.enabled.contains(Fault::kHold) || plan.enabled.contains(Fault::kLossyAcks) ||
        plan.enabled.contains(Fault::kDepose)) {
      cluster.set_frame_rule(
          [weak = weak_from_this()](ServerId, ServerId to, const core::Message& message) {
            auto self = weak.lock();
            return self ? self->frame_fate(to, message) : FrameFate{};
          });
    }
    // A leadership transfer raises the term on purpose: not churn.
    cluster.on_send([weak = weak_from_this()](ServerId, const core::Message& message) {
      auto self = weak.lock();
      if (self && message.type == core::MessageType::kTimeoutNow) {
        self->timeout_now_to.insert({message.to, message.term});
      }
    });
    if (plan.enabled.contains(Fault::kReadCrash)) {
      cluster.on_send([weak = weak_from_this()](ServerId from, const core::Message& message) {
        auto self = weak.lock();
        if (self && self->running && message.type == core::MessageType::kReadIndexRequest) {
          self->on_forwarded_read(from);
        }
      });
    }
    if (plan.enabled.contains(Fault::kSnapshotCrash)) {
      cluster.on_snapshot_write([weak = weak_from_this()](ServerId id) {
        auto self = weak.lock();
        if (self && self->running) self->on_snapshot_write(id);
      });
    }
    // A configuration taking effect is a change: liveness waits anew.
    cluster.on_configuration_change([weak = weak_from_this()](const Configuration&) {
      if (auto self = weak.lock()) self->changed();
    });
    InMemoryNetwork& network = cluster.network();
    if (plan.enabled.contains(Fault::kDrop)) network.set_drop_rate(plan.drop_rate);
    if (plan.enabled.contains(Fault::kDuplicate)) network.set_duplicate_rate(plan.duplicate_rate);
    if (plan.enabled.contains(Fault::kDelay)) network.set_delay(plan.delay_low, plan.delay_high);
    for (ServerId from : cluster.ids()) {
      for (ServerId to : cluster.ids()) {
        if (from != to && plan.enabled.contains(Fault::kLinkDelay) && unit(prng) < 0.4) {
          cluster.set_link_delay(from, to, between(prng, 1ms, plan.link_delay_high));
        }
      }
      if (plan.enabled.contains(Fault::kDisk)) {
        cluster.set_disk_latency(from, 0ms, between(prng, 0ms, plan.disk_latency_high));
        cluster.set_apply_latency(from, 0ms, between(prng, 0ms, plan.apply_latency_high));
      }
      if (plan.drift_percent > 0) cluster.set_clock_rate(from, draw_rate());
    }
    log("plan " + plan.describe());
    changed();
    if (!actions.empty())
      after(between(prng, plan.interval_low, plan.interval_high), &State::act_later);
  }

  static void act_later(State& self) { self.act(); }

  // Half the time the top of the range: a lease is tightest where a clock
  // runs fastest within the bound.
  double draw_rate() {
    const double share = unit(prng) < 0.5 ? 1.0 : unit(prng);
    return 1.0 + share * plan.drift_percent / 100.0;
  }

  // A split change plays out undisturbed (see nemesis.h).
  bool split_in_progress() const {
    return split_in_force && split_in_force->partition == partition && partition != 0;
  }

  void act() {
    if (split_in_progress()) {
      after(between(prng, plan.interval_low, plan.interval_high), &State::act_later);
      return;
    }
    ++actions_taken;
    const Fault fault = pick(prng, actions);
    // Now and then the fault is held, and nothing else happens, for longer
    // than the liveness window: the cluster must then make progress under
    // it (see the top of nemesis.h), and the check gets its chance.
    std::optional<Duration> hold;
    if (unit(prng) < plan.hold_probability) {
      const Duration window = liveness_window();
      hold = window + window / 5 + between(prng, 0ms, window);
    }
    // Stall and depose stage one schedule and need it to play out: nothing
    // else happens until they are over.
    Duration busy{0};
    if (is_partition(fault)) {
      partition_now(fault, hold);
    } else if (fault == Fault::kCrash || fault == Fault::kPause || fault == Fault::kDiskError) {
      take_down(fault, hold);
    } else if (fault == Fault::kStall) {
      busy = stall(hold);
    } else if (fault == Fault::kLossyAcks) {
      lose_acks();
    } else if (fault == Fault::kDepose) {
      busy = depose(hold);
    } else if (fault == Fault::kMembership) {
      if (const std::optional<ServerId> leader = cluster.ready_leader()) change_membership(*leader);
    } else {
      const ServerId id = pick(prng, cluster.ids());
      cluster.set_clock_rate(id, draw_rate());
      log("clock of n" + std::to_string(id.value) + " runs at " +
          std::to_string(cluster.clock_rate(id)));
    }
    changed();
    Duration next = between(prng, plan.interval_low, plan.interval_high);
    if (hold) next = std::max(next, *hold + 1ms);
    after(std::max(next, busy + 1ms), &State::act_later);
  }

  ServerId leader_or_any() {
    std::optional<ServerId> leader = cluster.leader();
    return leader ? *leader : pick(prng, cluster.ids());
  }

  std::vector<ServerId> shuffled() {
    std::vector<ServerId> ids = cluster.ids();
    for (std::size_t i = ids.size(); i > 1; --i) std::swap(ids[i - 1], ids[prng.uniform(0, i)]);
    return ids;
  }

  void cut_between(const std::vector<std::vector<ServerId>>& groups) {
    for (std::size_t i = 0; i < groups.size(); ++i) {
      for (std::size_t j = 0; j < groups.size(); ++j) {
        if (i == j) continue;
        for (ServerId a : groups[i]) {
          for (ServerId b : groups[j]) cluster.cut_link(a, b);
        }
      }
    }
  }

  void partition_now(Fault fault, std::optional<Duration> hold) {
    cluster.heal_links();
    std::vector<ServerId> ids = shuffled();
    const std::size_t n = ids.size();
    std::string what;
    switch (fault) {
      case Fault::kHalves: {
        const std::size_t split = n / 2 + (n % 2 == 1 && unit(prng) < 0.5 ? 1 : 0);
        cut_between({{ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(split)},
                     {ids.begin() + static_cast<std::ptrdiff_t>(split), ids.end()}});
        what = "halves";
        break;
      }
      case Fault::kIsolate:
      case Fault::kIsolateLeader: {
        const ServerId alone = fault == Fault::kIsolate ? ids.front() : leader_or_any();
        std::vector<ServerId> rest;
        for (ServerId id : ids) {
          if (id != alone) rest.push_back(id);
        }
        cut_between({{alone}, rest});
        what = "isolate n" + std::to_string(alone.value);
        break;
      }
      case Fault::kBridge: {
        // ids[0] is the bridge; the rest split into A and C, which do not meet.
        const std::size_t half = (n - 1) / 2;
        std::vector<ServerId> a(ids.begin() + 1,
                                ids.begin() + 1 + static_cast<std::ptrdiff_t>(half));
        std::vector<ServerId> c(ids.begin() + 1 + static_cast<std::ptrdiff_t>(half), ids.end());
        cut_between({a, c});
        what = "bridge through n" + std::to_string(ids.front().value);
        break;
      }
      case Fault::kRing: {
        // Each server reaches the servers within `reach` places on the ring:
        // itself and 2 * reach others make a majority, and with five or more
        // servers no two of them see the same majority.
        const std::size_t quorum = n / 2 + 1;
        const std::size_t reach = quorum / 2;
        for (std::size_t i = 0; i < n; ++i) {
          for (std::size_t j = 0; j < n; ++j) {
            const std::size_t distance = std::min((i + n - j) % n, (j + n - i) % n);
            if (distance > reach) cluster.cut_link(ids[i], ids[j]);
          }
        }
        what = "ring";
        break;
      }
      case Fault::kOneWay: {
        const double variant = unit(prng);
        if (variant < 0.3) {
          const ServerId deaf = leader_or_any();
          for (ServerId id : ids) cluster.cut_link(id, deaf);
          what = "n" + std::to_string(deaf.value) + " hears nobody";
        } else if (variant < 0.7) {
          const ServerId mute = leader_or_any();
          for (ServerId id : ids) cluster.cut_link(mute, id);
          what = "nobody hears n" + std::to_string(mute.value);
        } else {
          for (ServerId a : ids) {
            for (ServerId b : ids) {
              if (a != b && unit(prng) < 0.3) cluster.cut_link(a, b);
            }
          }
          what = "random one-way cuts";
        }
        break;
      }
      default:
        return;
    }
    partition = ++partitions_made;
    const std::uint64_t id = partition;
    const Duration lasts = hold ? *hold : between(prng, plan.duration_low, plan.duration_high);
    log("partition " + what + " for " + millis(lasts));
    heal_partition_after(lasts, id);
  }

  // Heals partition `id` after `delay`, unless another replaced it.
  void heal_partition_after(Duration delay, std::uint64_t id) {
    after(delay, [id](State& self) {
      if (self.partition != id) return;  // replaced meanwhile
      self.partition = 0;
      if (self.split_in_force && self.split_in_force->partition == id) self.split_in_force.reset();
      self.cluster.heal_links();
      self.log("partition healed");
      self.changed();
    });
  }

  void take_down(Fault fault, std::optional<Duration> hold) {
    if (crashed.size() + paused.size() >= plan.max_down) return;
    std::vector<ServerId> candidates;
    for (ServerId id : cluster.ids()) {
      if (!crashed.contains(id) && !paused.contains(id)) candidates.push_back(id);
    }
    if (candidates.empty()) return;
    ServerId victim = pick(prng, candidates);
    std::optional<ServerId> leader = cluster.leader();
    if (leader && unit(prng) < 0.5 &&
        std::find(candidates.begin(), candidates.end(), *leader) != candidates.end()) {
      victim = *leader;
    }
    // Sometimes only briefly: a restart right after a crash finds elections
    // and writes still in flight.
    const Duration lasts = hold ? *hold
                           : unit(prng) < 0.3
                               ? between(prng, 0ms, 30ms)
                               : between(prng, plan.duration_low, plan.duration_high);
    if (fault == Fault::kCrash) {
      crashed.insert(victim);
      cluster.crash(victim);
      after(lasts, [victim](State& self) {
        self.crashed.erase(victim);
        self.cluster.restart(victim);
        self.changed();
      });
    } else if (fault == Fault::kDiskError) {
      // The server runs on until a write fails and it stops itself; it
      // counts as down from now on. An operator's restart then brings it
      // back from what its disk holds.
      if (!cluster.inject_io_error(victim, prng.next())) return;
      crashed.insert(victim);
      after(lasts, [victim](State& self) {
        self.crashed.erase(victim);
        self.cluster.crash(victim);
        self.cluster.restart(victim);
        self.changed();
      });
    } else {
      paused.insert(victim);
      cluster.pause(victim);
      after(lasts, [victim](State& self) {
        self.paused.erase(victim);
        self.cluster.resume(victim);
        self.changed();
      });
    }
  }

  // A follower stalls with the leader's heartbeats queued at it, while the
  // leader is cut off from everyone else; just before it resumes, the
  // leader's frames stop reaching it (its own still reach the leader; see
  // nemesis.h). On resume its overdue ticks and the queued frames run in an
  // order a real thread could run them. The stall is a little longer than an
  // election timeout: long enough for its ticks to overrun, short enough
  // that the leader, which hears nobody meanwhile, is often still leading
  // (its check-quorum looks once per election timeout).
  // Returns how long the schedule runs (zero if it could not start).
  Duration stall(std::optional<Duration> hold) {
    const std::optional<ServerId> leader = cluster.leader();
    if (!leader || crashed.size() + paused.size() >= plan.max_down) return {};
    std::vector<ServerId> followers;
    for (ServerId id : cluster.voters()) {
      if (id != *leader && cluster.is_up(id) && !paused.contains(id)) followers.push_back(id);
    }
    if (followers.empty()) return {};
    const ServerId stalled = pick(prng, followers);
    const Duration election = cluster.config(stalled).election_timeout;
    // On the stalled server's own clock, so that its ticks overrun.
    const Duration local = between(prng, election, 3 * election / 2);
    const Duration lasts_for = Duration(static_cast<Duration::rep>(
        static_cast<double>(local.count()) / cluster.clock_rate(stalled)));
    cluster.heal_links();
    for (ServerId id : cluster.ids()) {
      if (id == *leader || id == stalled) continue;
      cluster.cut_link(*leader, id);
      cluster.cut_link(id, *leader);
    }
    paused.insert(stalled);
    cluster.pause(stalled);
    partition = ++partitions_made;
    const std::uint64_t id = partition;
    log("stall n" + std::to_string(stalled.value) + " for " + millis(lasts_for) + ", leader n" +
        std::to_string(leader->value) + " cut off from the others");
    // Once the follower's answers to the queued heartbeats can have reached
    // the leader (renewing its lease), the leader is cut off altogether: it
    // keeps serving its clients, and only its lease protects them.
    const Duration answers_arrive = plan.delay_high + plan.link_delay_high + 1ms;
    after(lasts_for, [id, stalled, leader = *leader, answers_arrive](State& self) {
      if (self.partition == id) {
        self.cluster.cut_link(leader, stalled);
        self.log("n" + std::to_string(stalled.value) + " stops hearing n" +
                 std::to_string(leader.value) + " as it resumes");
        self.after(answers_arrive, [id, stalled, leader](State& later) {
          if (later.partition != id) return;
          later.cluster.cut_link(stalled, leader);
          later.log("n" + std::to_string(leader.value) + " cut off from n" +
                    std::to_string(stalled.value) + " too");
        });
      }
      self.paused.erase(stalled);
      self.cluster.resume(stalled);
      self.changed();
    });
    const Duration partition_for = hold ? std::max(*hold, lasts_for + election)
                                        : lasts_for + between(prng, election, 3 * election);
    heal_partition_after(partition_for, id);
    return partition_for;
  }

  // The leader is cut off from its peers, its clients still reach it, and
  // the schedule leans on its lease as hard as the rules allow (nemesis.h).
  // Returns how long the schedule runs (zero if it could not start).
  Duration depose(std::optional<Duration> hold) {
    const std::optional<ServerId> leader = cluster.leader();
    if (!leader) return {};
    if (plan.enabled.contains(Fault::kDrift) && plan.lease_safe()) {
      // Followers' clocks fast at the configured bound, the leader's true:
      // their election timeouts end as early, in real time, as the bound
      // lets them, and its lease is measured on the slowest clock allowed.
      for (ServerId id : cluster.ids()) {
        const double bound = cluster.config(id).clock_drift_percent / 100.0;
        cluster.set_clock_rate(id, id == *leader ? 1.0 : 1.0 + bound);
      }
    }
    cluster.heal_links();
    partition = ++partitions_made;
    const std::uint64_t id = partition;
    const Duration election = cluster.config(*leader).election_timeout;
    const Duration lasts = hold ? *hold : between(prng, election, 4 * election);
    if (unit(prng) < 0.5) {
      for (ServerId other : cluster.ids()) {
        if (other == *leader) continue;
        cluster.cut_link(*leader, other);
        cluster.cut_link(other, *leader);
      }
      log("depose n" + std::to_string(leader->value) + ": cut off for " + millis(lasts));
    } else {
      // Answers to its last heartbeats linger on the way (they reach it one
      // to two election timeouts late); then it is cut off.
      late_to = *leader;
      late_until = cluster.now() + cluster.config(*leader).heartbeat_interval;
      log("depose n" + std::to_string(leader->value) + ": answers to it held, then cut off, for " +
          millis(lasts));
      after(cluster.config(*leader).heartbeat_interval, [id, leader = *leader](State& self) {
        if (self.partition != id) return;
        for (ServerId other : self.cluster.ids()) {
          if (other == leader) continue;
          self.cluster.cut_link(leader, other);
          self.cluster.cut_link(other, leader);
        }
      });
    }
    heal_partition_after(lasts, id);
    return lasts;
  }

  // For a while, heartbeat responses to the leader are lost: read rounds
  // stall with reads pending (writes still commit on append responses).
  void lose_acks() {
    lossy_acks = true;
    const std::uint64_t round = ++lossy_round;
    const Duration lasts = between(prng, plan.duration_low, plan.duration_high);
    log("heartbeat responses lost (" + std::to_string(plan.lossy_ack_rate) + ") for " +
        millis(lasts));
    after(lasts, [round](State& self) {
      if (self.lossy_round != round) return;
      self.lossy_acks = false;
      self.log("heartbeat responses flow again");
      self.changed();
    });
  }

  FrameFate frame_fate(ServerId to, const core::Message& message) {
    if (!running) return {};
    if (to == late_to && cluster.now() < late_until) {
      const Duration election = cluster.config(to).election_timeout;
      return FrameFate{FrameFate::Kind::kHold, between(prng, election, 2 * election)};
    }
    if (lossy_acks && message.type == core::MessageType::kHeartbeatResponse &&
        unit(prng) < plan.lossy_ack_rate) {
      return FrameFate{FrameFate::Kind::kDrop};
    }
    if (plan.enabled.contains(Fault::kHold) && unit(prng) < plan.hold_rate) {
      return FrameFate{FrameFate::Kind::kHold, between(prng, plan.hold_low, plan.hold_high)};
    }
    return {};
  }

  // --- reactions -------------------------------------------------------------------

  // Every published change of a server (SimCluster::on_state_change).
  void on_state(ServerId id, const RaftStats& stats) {
    if (running) react(id, stats);
    // A server the configuration no longer lists may raise its own term as
    // it likes (it does not know it was removed): only members' terms count.
    if (stats.term > highest_term && cluster.is_member(id)) {
      check_churn(id, stats.term);
      if (!highest_term.is_zero()) ++term_rises;
      highest_term = stats.term;
    }
    update_churn_watch();
  }

  // Called after a step (see SimCluster::on_state_change): only schedules,
  // but for the move of a split change, which must beat the new leader's
  // first frames (a cut takes effect on frames in flight).
  void react(ServerId id, const RaftStats& stats) {
    const Duration heartbeat = cluster.config(id).heartbeat_interval;
    if (stats.state == RaftState::kLeader && stats.ready_term != stats.term) on_split_leader(id);
    // A split change plays out undisturbed: no crash, churn or change of
    // its own may undo the move it makes.
    if (split_in_progress()) return;
    if (stats.state == RaftState::kCandidate && plan.enabled.contains(Fault::kElectionCrash) &&
        unit(prng) < 0.5) {
      // Soon enough to catch a voter between its reply and its disk write.
      after(between(prng, 0ms, heartbeat / 2), [id](State& self) { self.crash_voter(id); });
    }
    if (stats.state == RaftState::kLeader && stats.ready_term != stats.term &&
        plan.enabled.contains(Fault::kLeaderChurn) && unit(prng) < 0.3) {
      after(between(prng, 0ms, 3 * heartbeat),
            [id, term = stats.term](State& self) { self.churn_leader(id, term); });
    }
    if (stats.state == RaftState::kLeader && stats.ready_term != stats.term &&
        plan.enabled.contains(Fault::kMembership) && unit(prng) < plan.membership_on_election) {
      after(0ms, [id, term = stats.term](State& self) {
        const std::optional<RaftStats> now = self.cluster.stats(id);
        if (now && now->state == RaftState::kLeader && now->term == term) {
          self.change_membership(id);
        }
      });
    }
  }

  // --- membership -------------------------------------------------------------------

  // Servers at most (every server ever added counts, removed ones too).
  static constexpr std::size_t kMaxServers = 9;
  std::size_t membership_calls = 0;  // calls of ours under way
  // The split change in force (see nemesis.h): the partition that splits
  // it, the side of the leader that started it, and whether that side has
  // been given a voter of the other's new leader yet.
  struct SplitChange {
    std::uint64_t partition = 0;
    ServerId leader;
    std::vector<ServerId> side;
    bool single = false;
    bool moved = false;
  };
  std::optional<SplitChange> split_in_force;

  // Asks `leader` for one membership change, drawn from what the
  // configuration in force allows (see nemesis.h).
  void change_membership(ServerId leader) {
    Raft* raft = cluster.raft(leader);
    const Configuration& configuration = cluster.configuration();
    if (membership_calls != 0 || raft == nullptr || configuration.joint()) return;
    std::vector<ServerId> voters = configuration.voters();
    std::vector<ServerId> learners;
    for (const Server& server : configuration.servers) {
      if (server.suffrage == Suffrage::kLearner) learners.push_back(server.id);
    }
    std::vector<ServerId> other_voters;
    for (ServerId id : voters) {
      if (id != leader) other_voters.push_back(id);
    }
    const bool room = cluster.ids().size() < kMaxServers;
    // Voters stay between one and five; below three only now and then.
    const bool may_shrink = voters.size() > 3 || (voters.size() > 1 && unit(prng) < 0.3);
    const bool may_grow = voters.size() < 5;
    // Four voters is where a single change splits (see split_change): there
    // the play is twice as likely.
    const double split = voters.size() == 4 ? 2 * plan.split_change : plan.split_change;
    if (unit(prng) < split && split_change(leader, other_voters, learners)) return;
    const double variant = unit(prng);
    if (variant < 0.15 && room) {
      const ServerId fresh = cluster.add_server();
      call("add learner n" + std::to_string(fresh.value),
           raft->add_learner(fresh, SimCluster::address_of(fresh), Index{0}, timeout()));
    } else if (variant < 0.35 && may_grow && (room || !learners.empty())) {
      const bool promote = !learners.empty() && (!room || unit(prng) < 0.5);
      const ServerId id = promote ? pick(prng, learners) : cluster.add_server();
      call(std::string(promote ? "promote learner n" : "add voter n") + std::to_string(id.value),
           raft->add_voter(id, SimCluster::address_of(id), Index{0}, timeout()));
    } else if (variant < 0.5 && ((may_shrink && !other_voters.empty()) || !learners.empty())) {
      const bool voter =
          may_shrink && !other_voters.empty() && (learners.empty() || unit(prng) < 0.6);
      const ServerId id = pick(prng, voter ? other_voters : learners);
      call("remove n" + std::to_string(id.value), raft->remove_server(id, Index{0}, timeout()));
    } else if (variant < 0.6 && may_shrink) {
      call("remove the leader n" + std::to_string(leader.value),
           raft->remove_server(leader, Index{0}, timeout()));
    } else if (variant < 0.72 && room && !other_voters.empty()) {
      replace_voter(leader, other_voters);
    } else if (variant < 0.88 && (may_grow || may_shrink)) {
      joint_change(leader, other_voters, learners);
    } else if (!other_voters.empty() || !learners.empty()) {
      std::vector<ServerId> members = other_voters;
      members.insert(members.end(), learners.begin(), learners.end());
      const ServerId id = pick(prng, members);
      if (configuration.is_voter(id) && !may_shrink) return;
      wipe_and_rejoin(leader, id, configuration.is_voter(id));
    }
  }

  Duration timeout() const { return 20 * cluster.config(cluster.ids().front()).election_timeout; }

  // Starts one call; `then` runs (on the nemesis' executor) if it succeeds.
  void call(const std::string& what, const Future<Index>& future,
            std::function<void(State&)> then = nullptr) {
    ++membership_calls;
    log("membership: " + what);
    changed();
    future.then(executor, [weak = weak_from_this(), what,
                           then = std::move(then)](const Result<Index>& result) {
      auto self = weak.lock();
      if (!self) return;
      --self->membership_calls;
      self->log("membership: " + what + ": " +
                (result.is_ok() ? "done at " + std::to_string(result->value)
                                : result.status().to_string()));
      if (!self->running) return;
      self->changed();
      if (result.is_ok() && then) then(*self);
    });
  }

  // A voter crashes (or is down already) and a fresh server takes its
  // place; the old one comes back later, perhaps after the leader stopped
  // telling it that it was removed.
  void replace_voter(ServerId leader, const std::vector<ServerId>& others) {
    std::vector<ServerId> down;
    for (ServerId id : others) {
      if (crashed.contains(id)) down.push_back(id);
    }
    ServerId victim;
    if (!down.empty()) {
      victim = pick(prng, down);
    } else {
      if (crashed.size() + paused.size() >= plan.max_down) return;
      victim = pick(prng, others);
      crashed.insert(victim);
      cluster.crash(victim);
      const Duration election = cluster.config(victim).election_timeout;
      after(between(prng, election, 20 * election), [victim](State& self) {
        self.crashed.erase(victim);
        self.cluster.restart(victim);
        self.changed();
      });
    }
    Raft* raft = cluster.raft(leader);
    if (raft == nullptr) return;
    call("replace n" + std::to_string(victim.value) + ": remove it",
         raft->remove_server(victim, Index{0}, timeout()), [leader](State& self) {
           Raft* now = self.cluster.raft(leader);
           if (now == nullptr || self.cluster.ids().size() >= kMaxServers) return;
           const ServerId fresh = self.cluster.add_server();
           self.call(
               "replace: add voter n" + std::to_string(fresh.value),
               now->add_voter(fresh, SimCluster::address_of(fresh), Index{0}, self.timeout()));
         });
  }

  // The learners that hold `leader`'s committed log and run.
  std::vector<ServerId> caught_up(ServerId leader, const std::vector<ServerId>& learners) const {
    std::vector<ServerId> out;
    const std::optional<RaftStats> leading = cluster.stats(leader);
    for (ServerId id : learners) {
      const std::optional<RaftStats> stats = cluster.stats(id);
      if (stats && leading && stats->last_index >= leading->commit_index) out.push_back(id);
    }
    return out;
  }

  // A split change (see nemesis.h): a caught-up learner promoted by one
  // entry, or a joint change that adds one or two, with the partition in
  // place before the leader appends it. False if nothing fits.
  bool split_change(ServerId leader, const std::vector<ServerId>& others,
                    const std::vector<ServerId>& learners) {
    using Kind = ConfigurationChange::Kind;
    if (partition != 0) return false;  // one partition at a time
    std::vector<ServerId> joiners = caught_up(leader, learners);
    if (joiners.empty()) return false;
    for (std::size_t i = joiners.size(); i > 1; --i) {
      std::swap(joiners[i - 1], joiners[prng.uniform(0, i)]);
    }
    const std::size_t voters = others.size() + 1;
    std::vector<ConfigurationChange> changes;
    const double variant = unit(prng);
    // One entry splits the cluster only with an even number of voters: a
    // majority of the voters with the joiner need not meet one without.
    const bool single = variant < 0.7 && voters == 4;
    if (single) {
      changes = {{Kind::kAddVoter, joiners[0], SimCluster::address_of(joiners[0])}};
    } else if (unit(prng) < 0.5 && !others.empty()) {
      changes = {{Kind::kRemoveServer, pick(prng, others), ""},
                 {Kind::kAddVoter, joiners[0], SimCluster::address_of(joiners[0])}};
    } else if (joiners.size() >= 2 && voters + 2 <= 5) {
      changes = {{Kind::kAddVoter, joiners[0], SimCluster::address_of(joiners[0])},
                 {Kind::kAddVoter, joiners[1], SimCluster::address_of(joiners[1])}};
    } else {
      return false;
    }
    // The leader's side: the leader and who the change adds; for a joint
    // change, then remaining voters until it holds a majority of the new
    // voters.
    std::vector<ServerId> side{leader};
    std::vector<ServerId> incoming{leader};
    for (ServerId id : others) {
      bool leaving = false;
      for (const ConfigurationChange& c : changes) {
        leaving = leaving || (c.kind == Kind::kRemoveServer && c.id == id);
      }
      if (!leaving) incoming.push_back(id);
    }
    for (const ConfigurationChange& c : changes) {
      if (c.kind == Kind::kAddVoter) {
        side.push_back(c.id);
        incoming.push_back(c.id);
      }
    }
    if (!single) {
      for (ServerId id : incoming) {
        if (2 * side.size() > incoming.size()) break;
        if (std::find(side.begin(), side.end(), id) == side.end()) side.push_back(id);
      }
    }
    Raft* raft = cluster.raft(leader);
    if (raft == nullptr) return false;
    const Duration election = cluster.config(leader).election_timeout;
    split_now(SplitChange{0, leader, side, single, false},
              between(prng, 5 * election, 10 * election));
    std::string what = "split change:";
    for (const ConfigurationChange& c : changes) {
      what += std::string(" ") + to_string(c.kind) + " n" + std::to_string(c.id.value);
    }
    call(what, raft->change_membership(std::move(changes), Index{0}, timeout()));
    return true;
  }

  // Puts `change.side` and the other servers on two sides of a new
  // partition, healed after `lasts`.
  void split_now(SplitChange change, Duration lasts) {
    cluster.heal_links();
    std::vector<ServerId> rest;
    for (ServerId id : cluster.ids()) {
      if (std::find(change.side.begin(), change.side.end(), id) == change.side.end()) {
        rest.push_back(id);
      }
    }
    cut_between({change.side, rest});
    std::string what;
    for (ServerId id : change.side) what += " n" + std::to_string(id.value);
    partition = ++partitions_made;
    change.partition = partition;
    log(std::string("partition split change") + (change.moved ? " moved" : "") + ": leader side" +
        what + " for " + millis(lasts));
    heal_partition_after(lasts, change.partition);
    split_in_force = std::move(change);
    changed();
  }

  // A leader elected on the far side of a split single change: one of its
  // voters moves to the old leader's side before it hears the new leader,
  // and the new leader is asked to remove the old leader or that voter.
  void on_split_leader(ServerId leader) {
    if (!split_in_force || split_in_force->partition != partition || !split_in_force->single ||
        split_in_force->moved) {
      return;
    }
    SplitChange moved = *split_in_force;
    if (std::find(moved.side.begin(), moved.side.end(), leader) != moved.side.end()) return;
    std::vector<ServerId> followers;
    for (ServerId id : cluster.configuration().voters()) {
      if (id != leader && cluster.is_up(id) &&
          std::find(moved.side.begin(), moved.side.end(), id) == moved.side.end()) {
        followers.push_back(id);
      }
    }
    Raft* raft = cluster.raft(leader);
    if (followers.empty() || raft == nullptr) return;
    const ServerId follower = pick(prng, followers);
    const ServerId lost = unit(prng) < 0.5 ? follower : moved.leader;
    moved.side.push_back(follower);
    moved.moved = true;
    // Long enough for the old leader to step down and win with the moved
    // voter: that voter granted its vote in this term already.
    const Duration election = cluster.config(leader).election_timeout;
    split_now(std::move(moved), between(prng, 4 * election, 8 * election));
    call("split change: the new leader n" + std::to_string(leader.value) + " removes n" +
             std::to_string(lost.value),
         raft->remove_server(lost, Index{0}, timeout()));
  }

  // Two voters change at once (joint consensus): a voter leaves and a
  // learner joins, or two learners join, or two voters leave. Learners
  // only: a fresh server made a voter at once votes only once a leader
  // reached it, and if the leader falls before, nobody may be able to win.
  void joint_change(ServerId leader, const std::vector<ServerId>& others,
                    const std::vector<ServerId>& learners) {
    using Kind = ConfigurationChange::Kind;
    const std::size_t voters = others.size() + 1;
    std::vector<ConfigurationChange> changes;
    // A learner joins only once it caught up, as an operator would make
    // sure (Raft::change_membership): running, and holding the leader's
    // committed log.
    const std::vector<ServerId> ready = caught_up(leader, learners);
    auto joiner = [&]() -> std::optional<ServerId> {
      for (ServerId id : ready) {
        bool taken = false;
        for (const ConfigurationChange& c : changes) taken = taken || c.id == id;
        if (!taken) return id;
      }
      return std::nullopt;
    };
    const double variant = unit(prng);
    if (variant < 0.5 && !others.empty()) {
      const ServerId leaving = pick(prng, others);
      const std::optional<ServerId> joining = joiner();
      if (!joining) return;
      changes = {{Kind::kRemoveServer, leaving, ""},
                 {Kind::kAddVoter, *joining, SimCluster::address_of(*joining)}};
    } else if (variant < 0.75 && voters + 2 <= 5) {
      const std::optional<ServerId> a = joiner();
      if (!a) return;
      changes.push_back({Kind::kAddVoter, *a, SimCluster::address_of(*a)});
      const std::optional<ServerId> b = joiner();
      if (!b) return;
      changes.push_back({Kind::kAddVoter, *b, SimCluster::address_of(*b)});
    } else if (others.size() >= 3) {
      std::vector<ServerId> pool = others;
      const ServerId a = pool[prng.uniform(0, pool.size())];
      pool.erase(std::find(pool.begin(), pool.end(), a));
      const ServerId b = pick(prng, pool);
      changes = {{Kind::kRemoveServer, a, ""}, {Kind::kRemoveServer, b, ""}};
    } else {
      return;
    }
    Raft* raft = cluster.raft(leader);
    if (raft == nullptr) return;
    std::string what = "joint change:";
    for (const ConfigurationChange& c : changes) {
      what += std::string(" ") + to_string(c.kind) + " n" + std::to_string(c.id.value);
    }
    call(what, raft->change_membership(std::move(changes), Index{0}, timeout()));
  }

  // A server leaves, loses its disk, and is added back under its id.
  void wipe_and_rejoin(ServerId leader, ServerId id, bool voter) {
    Raft* raft = cluster.raft(leader);
    if (raft == nullptr) return;
    call("remove n" + std::to_string(id.value) + " to wipe it",
         raft->remove_server(id, Index{0}, timeout()), [leader, id, voter](State& self) {
           self.crashed.erase(id);
           self.paused.erase(id);
           self.cluster.wipe(id);
           Raft* now = self.cluster.raft(leader);
           if (now == nullptr) return;
           const std::string address = SimCluster::address_of(id);
           self.call(std::string("add the wiped n") + std::to_string(id.value) +
                         (voter ? " back as a voter" : " back as a learner"),
                     voter ? now->add_voter(id, address, Index{0}, self.timeout())
                           : now->add_learner(id, address, Index{0}, self.timeout()));
         });
  }

  void crash_voter(ServerId candidate) {
    std::vector<ServerId> voters;
    for (ServerId id : cluster.voters()) {
      if (id != candidate && cluster.is_up(id) && !paused.contains(id)) voters.push_back(id);
    }
    if (voters.empty()) return;
    crash_briefly(pick(prng, voters), "while n" + std::to_string(candidate.value) + " campaigns",
                  20ms);
  }

  // read-crash: the follower's reads stay pending at the leader while it
  // restarts and reads again.
  void on_forwarded_read(ServerId follower) {
    if (unit(prng) >= plan.read_crash_probability) return;
    const Duration heartbeat = cluster.config(follower).heartbeat_interval;
    after(between(prng, 0ms, heartbeat), [follower](State& self) {
      self.crash_briefly(follower, "after it forwarded a read", 30ms);
    });
  }

  // snapshot-crash: a persist or an install is cut short by a crash.
  void on_snapshot_write(ServerId id) {
    if (unit(prng) >= plan.snapshot_crash_probability) return;
    after(between(prng, 0ms, 30ms),
          [id](State& self) { self.crash_briefly(id, "while it writes a snapshot", 30ms); });
  }

  // Crashes `victim` and restarts it within `restart_within`.
  void crash_briefly(ServerId victim, const std::string& why, Duration restart_within) {
    if (crashed.size() + paused.size() >= plan.max_down || !cluster.is_up(victim) ||
        paused.contains(victim)) {
      return;
    }
    crashed.insert(victim);
    cluster.crash(victim);
    log("crash n" + std::to_string(victim.value) + " " + why);
    after(between(prng, 0ms, restart_within), [victim](State& self) {
      self.crashed.erase(victim);
      self.cluster.restart(victim);
      self.changed();
    });
    changed();
  }

  void churn_leader(ServerId leader, Term term) {
    const std::optional<RaftStats> stats = cluster.stats(leader);
    if (!stats || stats->state != RaftState::kLeader || stats->term != term) return;
    const Duration election = cluster.config(leader).election_timeout;
    const double variant = unit(prng);
    const bool room = crashed.size() + paused.size() < plan.max_down;
    if (variant < 0.3 && room) {
      paused.insert(leader);
      cluster.pause(leader);
      log("pause new leader n" + std::to_string(leader.value));
      after(between(prng, 5ms, 3 * election), [leader](State& self) {
        self.paused.erase(leader);
        self.cluster.resume(leader);
        self.changed();
      });
    } else if (variant < 0.6 && room) {
      crashed.insert(leader);
      cluster.crash(leader);
      log("crash new leader n" + std::to_string(leader.value));
      after(between(prng, 5ms, 2 * election), [leader](State& self) {
        self.crashed.erase(leader);
        self.cluster.restart(leader);
        self.changed();
      });
    } else {
      cluster.heal_links();
      for (ServerId id : cluster.ids()) {
        cluster.cut_link(id, leader);
        cluster.cut_link(leader, id);
      }
      partition = ++partitions_made;
      const std::uint64_t id = partition;
      const Duration lasts = between(prng, election / 2, 3 * election);
      log("partition isolate new leader n" + std::to_string(leader.value) + " for " +
          millis(lasts));
      heal_partition_after(lasts, id);
    }
    changed();
  }

  // --- liveness under partial failure -------------------------------------------------

  // Raft promises progress only when messages and disk writes are fast next
  // to the election timeout (§5.6: broadcast time << election timeout) and,
  // under partial partitions, only with pre-vote (§9.6: without it a server
  // that cannot win keeps deposing those that could). Elsewhere the liveness
  // check stays off.
  bool liveness_promised() const {
    for (ServerId id : cluster.voters()) {
      if (!cluster.config(id).pre_vote || !cluster.config(id).check_quorum) return false;
    }
    return timing_sane();
  }

  // Messages and disk writes fast next to the election timeout (§5.6).
  bool timing_sane() const {
    if (healed) return true;  // no loss, latency or drift left
    if (lossy_acks) return false;
    if (plan.enabled.contains(Fault::kDrop) && plan.drop_rate > 0.05) return false;
    Duration hop{0};
    if (plan.enabled.contains(Fault::kDelay)) hop += plan.delay_high;
    if (plan.enabled.contains(Fault::kLinkDelay)) hop += plan.link_delay_high;
    Duration round = 2 * hop;
    if (plan.enabled.contains(Fault::kDisk))
      round += plan.disk_latency_high + plan.apply_latency_high;
    for (ServerId id : cluster.ids()) {
      const Config& config = cluster.config(id);
      const double real_timeout =
          static_cast<double>(config.election_timeout.count()) / cluster.clock_rate(id);
      if (4.0 * static_cast<double>(round.count()) > real_timeout) return false;
    }
    return true;
  }

  void changed() {
    const std::uint64_t seen = ++generation;
    update_churn_watch();
    if (!running || !liveness_promised()) return;
    after(liveness_window(), [seen](State& self) {
      if (self.generation == seen) self.check_liveness();
    });
  }

  Duration liveness_window() const {
    Duration longest{0};
    double slowest = 1.0;
    for (ServerId id : cluster.ids()) {
      longest = std::max<Duration>(longest, cluster.config(id).election_timeout);
      slowest = std::min(slowest, cluster.clock_rate(id));
    }
    return Duration(
        static_cast<Duration::rep>(12.0 * static_cast<double>(longest.count()) / slowest));
  }

  bool talk(ServerId a, ServerId b) const { return cluster.link_up(a, b) && cluster.link_up(b, a); }

  // Running, unpaused voters of the configuration in force or of its
  // committed one (a server that stopped itself after a disk error is up
  // but not running).
  std::vector<ServerId> live() const {
    std::vector<ServerId> out;
    std::set<ServerId> voters(cluster.voters().begin(), cluster.voters().end());
    for (ServerId id : cluster.committed_configuration().voters()) voters.insert(id);
    for (ServerId id : voters) {
      if (!cluster.is_up(id) || cluster.is_paused(id)) continue;
      const std::optional<RaftStats> stats = cluster.stats(id);
      if (stats && stats->state != RaftState::kShutdown) out.push_back(id);
    }
    return out;
  }

  // Whether some of `servers` that all talk to each other hold a quorum of
  // the configuration in force and of its leader's committed one: while a
  // change is not committed, the servers that never received it elect by
  // the committed configuration (a leader cut off just after appending a
  // change leaves the rest unable to elect under the new one).
  bool quorum_clique_exists(const std::vector<ServerId>& servers) const {
    const std::size_t n = servers.size();
    const Configuration& committed = cluster.committed_configuration();
    for (std::uint32_t mask = 0; mask < (1U << n); ++mask) {
      std::vector<ServerId> group;
      for (std::size_t i = 0; i < n; ++i) {
        if (mask >> i & 1U) group.push_back(servers[i]);
      }
      if (!quorum(group) ||
          !SafetyChecker::quorum(committed, std::set<ServerId>(group.begin(), group.end()))) {
        continue;
      }
      bool clique = true;
      for (std::size_t i = 0; i < group.size() && clique; ++i) {
        for (std::size_t j = i + 1; j < group.size() && clique; ++j) {
          clique = talk(group[i], group[j]);
        }
      }
      if (clique) return true;
    }
    return false;
  }

  // Whether `group` holds a quorum of the configuration in force: a
  // majority of its voters, of both halves' while it is joint.
  bool quorum(const std::vector<ServerId>& group) const {
    return SafetyChecker::quorum(cluster.configuration(),
                                 std::set<ServerId>(group.begin(), group.end()));
  }

  // The servers of `among` that `leader` talks to both ways, itself too.
  std::vector<ServerId> reached_by(ServerId leader, const std::vector<ServerId>& among) const {
    std::vector<ServerId> reached{leader};
    for (ServerId other : among) {
      if (other != leader && talk(leader, other)) reached.push_back(other);
    }
    return reached;
  }

  void check_liveness() {
    if (!liveness_promised()) return;  // an ack loss may have begun since
    const std::vector<ServerId> servers = live();
    if (!quorum_clique_exists(servers)) return;
    for (ServerId candidate : servers) {
      const std::optional<RaftStats> stats = cluster.stats(candidate);
      if (!stats || stats->state != RaftState::kLeader || stats->ready_term != stats->term)
        continue;
      if (quorum(reached_by(candidate, servers))) return;
    }
    std::string state;
    for (ServerId id : cluster.ids()) {
      const std::optional<RaftStats> stats = cluster.stats(id);
      state +=
          " n" + std::to_string(id.value) + "=" +
          (stats ? std::string(to_string(stats->state)) + "/t" + std::to_string(stats->term.value)
                 : std::string("down"));
      if (cluster.is_paused(id)) state += "(paused)";
    }
    cluster.report_violation("liveness: for " + millis(liveness_window()) +
                                 " nothing changed and a majority of running voters can all "
                                 "talk, yet no ready leader reaches a majority:" +
                                 state,
                             ViolationKind::kLiveness);
  }

  // --- term churn -------------------------------------------------------------------

  // The ready leader of the highest term, if it reaches a majority of running
  // voters both ways with every server up and no fault in force. Then no
  // correct server starts an election, pre-vote or not: pre-vote is only
  // needed once some server cannot hear the leader.
  std::optional<ServerId> churn_guard() const {
    // A disk-error victim is up, yet down for this purpose.
    if (partition != 0 || lossy_acks || !timing_sane() || !crashed.empty()) return std::nullopt;
    // A membership call under way may elect on purpose (a removed leader
    // hands over).
    if (membership_calls != 0) return std::nullopt;
    for (ServerId id : cluster.ids()) {
      if (cluster.is_member(id) && (!cluster.is_up(id) || cluster.is_paused(id))) {
        return std::nullopt;
      }
    }
    for (ServerId id : cluster.voters()) {
      const std::optional<RaftStats> stats = cluster.stats(id);
      if (!stats || stats->state != RaftState::kLeader || stats->ready_term != stats->term ||
          stats->term != highest_term) {
        continue;
      }
      if (quorum(reached_by(id, cluster.voters()))) return id;
    }
    return std::nullopt;
  }

  void update_churn_watch() {
    const std::optional<ServerId> leader = churn_guard();
    if (!leader) {
      churn_watch.reset();
    } else if (!churn_watch || churn_watch->leader != *leader ||
               churn_watch->term != highest_term) {
      churn_watch = ChurnWatch{*leader, highest_term, cluster.now()};
    }
  }

  // Long enough after the last fault for its effects (a campaign begun while
  // cut off, a timer that ran out during a pause) to have played out.
  Duration settle_window() const { return liveness_window() / 6; }

  void check_churn(ServerId riser, Term new_term) {
    if (!churn_watch || churn_watch->term != highest_term) return;
    const Duration quiet_for = cluster.now() - churn_watch->since;
    if (quiet_for < settle_window()) return;
    // A transfer's target campaigning is no churn.
    if (timeout_now_to.lower_bound({riser, churn_watch->term}) != timeout_now_to.end() &&
        timeout_now_to.lower_bound({riser, churn_watch->term})->first == riser) {
      return;
    }
    cluster.report_violation("term churn: n" + std::to_string(riser.value) + " began term " +
                                 std::to_string(new_term.value) + " while n" +
                                 std::to_string(churn_watch->leader.value) + " led term " +
                                 std::to_string(churn_watch->term.value) +
                                 ", ready and reaching a majority, with no fault in force for " +
                                 millis(quiet_for),
                             ViolationKind::kLiveness);
  }

  void heal() {
    running = false;
    healed = true;
    lossy_acks = false;
    partition = 0;
    executor->stop();
    cluster.set_frame_rule(nullptr);
    cluster.heal_links();
    InMemoryNetwork& network = cluster.network();
    network.set_drop_rate(0.0);
    network.set_duplicate_rate(0.0);
    network.set_delay(0ms, 0ms);
    for (ServerId id : cluster.ids()) {
      // A disk-error victim is still up, perhaps stopped, perhaps with its
      // error still armed: an operator's restart brings it back.
      if (crashed.contains(id) && cluster.is_up(id)) cluster.crash(id);
      for (ServerId to : cluster.ids()) cluster.set_link_delay(id, to, 0ms);
      cluster.set_disk_latency(id, 0ms, 0ms);
      cluster.set_apply_latency(id, 0ms, 0ms);
      cluster.set_clock_rate(id, 1.0);
      if (!cluster.is_up(id)) cluster.restart(id);
      cluster.resume(id);
    }
    crashed.clear();
    paused.clear();
    log("healed everything");
    changed();
  }
};

Nemesis::Nemesis(SimCluster& cluster, FaultPlan plan, std::uint64_t seed)
    : state_(std::make_shared<State>(cluster, std::move(plan), seed)) {}

Nemesis::~Nemesis() { state_->executor->stop(); }

void Nemesis::start() { state_->start(); }

void Nemesis::heal() { state_->heal(); }

std::uint64_t Nemesis::actions() const { return state_->actions_taken; }

std::uint64_t Nemesis::term_rises() const { return state_->term_rises; }

}  // namespace keel::sim
