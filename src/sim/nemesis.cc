#include "sim/nemesis.h"

#include <algorithm>
#include <map>
#include <utility>

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
      // Drift beyond the lease bound takes lease reads out of the check, so
      // it is rarer than the rest.
      if (unit(prng) < (fault == Fault::kDriftBeyond ? 0.25 : 0.5)) plan.enabled.insert(fault);
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
    plan.drift_percent =
        static_cast<double>(config.clock_drift_percent) * (swarm ? unit(prng) : 1.0);
  }
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
  std::uint64_t generation = 0;  // bumped by every change of the fault state
  std::uint64_t partition = 0;   // the partition in force (0: none)
  std::uint64_t actions_taken = 0;
  std::set<ServerId> crashed;
  std::set<ServerId> paused;

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
    if (plan.enabled.contains(Fault::kElectionCrash) ||
        plan.enabled.contains(Fault::kLeaderChurn)) {
      cluster.on_state_change([weak = weak_from_this()](ServerId id, const RaftStats& stats) {
        if (auto self = weak.lock(); self && self->running) self->react(id, stats);
      });
    }
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

  double draw_rate() { return 1.0 + unit(prng) * plan.drift_percent / 100.0; }

  void act() {
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
    if (is_partition(fault)) {
      partition_now(fault, hold);
    } else if (fault == Fault::kCrash || fault == Fault::kPause) {
      take_down(fault, hold);
    } else {
      const ServerId id = pick(prng, cluster.ids());
      cluster.set_clock_rate(id, draw_rate());
      log("clock of n" + std::to_string(id.value) + " runs at " +
          std::to_string(cluster.clock_rate(id)));
    }
    changed();
    const Duration next = between(prng, plan.interval_low, plan.interval_high);
    after(hold ? std::max(next, *hold + 1ms) : next, &State::act_later);
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
        if (variant < 0.4) {
          const ServerId deaf = leader_or_any();
          for (ServerId id : ids) cluster.cut_link(id, deaf);
          what = "n" + std::to_string(deaf.value) + " hears nobody";
        } else if (variant < 0.6) {
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
    const std::uint64_t id = ++partition;
    const Duration lasts = hold ? *hold : between(prng, plan.duration_low, plan.duration_high);
    log("partition " + what + " for " + millis(lasts));
    after(lasts, [id](State& self) {
      if (self.partition != id) return;  // replaced meanwhile
      self.partition = 0;
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

  // --- reactions -------------------------------------------------------------------

  // Called after a step (see SimCluster::on_state_change): only schedules.
  void react(ServerId id, const RaftStats& stats) {
    const Duration heartbeat = cluster.config(id).heartbeat_interval;
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
  }

  void crash_voter(ServerId candidate) {
    if (crashed.size() + paused.size() >= plan.max_down) return;
    std::vector<ServerId> voters;
    for (ServerId id : cluster.ids()) {
      if (id != candidate && cluster.is_up(id) && !paused.contains(id)) voters.push_back(id);
    }
    if (voters.empty()) return;
    const ServerId victim = pick(prng, voters);
    crashed.insert(victim);
    cluster.crash(victim);
    log("crash n" + std::to_string(victim.value) + " while n" + std::to_string(candidate.value) +
        " campaigns");
    after(between(prng, 0ms, 20ms), [victim](State& self) {
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
      const std::uint64_t id = ++partition;
      const Duration lasts = between(prng, election / 2, 3 * election);
      log("partition isolate new leader n" + std::to_string(leader.value) + " for " +
          millis(lasts));
      after(lasts, [id](State& self) {
        if (self.partition != id) return;
        self.partition = 0;
        self.cluster.heal_links();
        self.log("partition healed");
        self.changed();
      });
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
    if (plan.enabled.contains(Fault::kDrop) && plan.drop_rate > 0.05) return false;
    Duration hop{0};
    if (plan.enabled.contains(Fault::kDelay)) hop += plan.delay_high;
    if (plan.enabled.contains(Fault::kLinkDelay)) hop += plan.link_delay_high;
    Duration round = 2 * hop;
    if (plan.enabled.contains(Fault::kDisk))
      round += plan.disk_latency_high + plan.apply_latency_high;
    for (ServerId id : cluster.ids()) {
      const Config& config = cluster.config(id);
      if (!config.pre_vote) return false;
      const double real_timeout =
          static_cast<double>(config.election_timeout.count()) / cluster.clock_rate(id);
      if (4.0 * static_cast<double>(round.count()) > real_timeout) return false;
    }
    return true;
  }

  void changed() {
    const std::uint64_t seen = ++generation;
    if (!liveness_promised()) return;
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

  std::vector<ServerId> live() const {
    std::vector<ServerId> out;
    for (ServerId id : cluster.ids()) {
      if (cluster.is_up(id) && !cluster.is_paused(id)) out.push_back(id);
    }
    return out;
  }

  bool majority_clique_exists(const std::vector<ServerId>& servers, std::size_t quorum) const {
    const std::size_t n = servers.size();
    for (std::uint32_t mask = 0; mask < (1U << n); ++mask) {
      if (static_cast<std::size_t>(__builtin_popcount(mask)) < quorum) continue;
      bool clique = true;
      for (std::size_t i = 0; i < n && clique; ++i) {
        for (std::size_t j = i + 1; j < n && clique; ++j) {
          if ((mask >> i & 1U) && (mask >> j & 1U)) clique = talk(servers[i], servers[j]);
        }
      }
      if (clique) return true;
    }
    return false;
  }

  void check_liveness() {
    const std::size_t quorum = cluster.ids().size() / 2 + 1;
    const std::vector<ServerId> servers = live();
    if (!majority_clique_exists(servers, quorum)) return;
    for (ServerId candidate : servers) {
      const std::optional<RaftStats> stats = cluster.stats(candidate);
      if (!stats || stats->state != RaftState::kLeader || stats->ready_term != stats->term)
        continue;
      std::size_t reached = 1;
      for (ServerId other : servers) {
        if (other != candidate && talk(candidate, other)) ++reached;
      }
      if (reached >= quorum) return;
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
                             " nothing changed and a majority of running servers can all talk, "
                             "yet no ready leader reaches a majority:" +
                             state);
  }

  void heal() {
    running = false;
    executor->stop();
    cluster.heal_links();
    InMemoryNetwork& network = cluster.network();
    network.set_drop_rate(0.0);
    network.set_duplicate_rate(0.0);
    network.set_delay(0ms, 0ms);
    for (ServerId id : cluster.ids()) {
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
  }
};

Nemesis::Nemesis(SimCluster& cluster, FaultPlan plan, std::uint64_t seed)
    : state_(std::make_shared<State>(cluster, std::move(plan), seed)) {}

Nemesis::~Nemesis() { state_->executor->stop(); }

void Nemesis::start() { state_->start(); }

void Nemesis::heal() { state_->heal(); }

std::uint64_t Nemesis::actions() const { return state_->actions_taken; }

}  // namespace keel::sim
