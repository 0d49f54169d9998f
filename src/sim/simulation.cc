#include "sim/simulation.h"

#include <algorithm>
#include <utility>

#include "core/prng.h"
#include "sim/kv_fsm.h"
#include "sim/kv_workload.h"
#include "sim/linearizability.h"
#include "sim/seed.h"
#include "sim/sim_cluster.h"

#ifdef KEEL_CANARIES
#include "core/canary.h"
#endif

namespace keel::sim {

using namespace std::chrono_literals;

namespace {

std::string millis(Duration d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) + "ms";
}

std::string describe(const Config& config) {
  return "heartbeat=" + millis(config.heartbeat_interval) +
         " election=" + millis(config.election_timeout) + " lease=" + millis(config.lease_timeout) +
         " drift_bound=" + std::to_string(config.clock_drift_percent) + "%" +
         " pre_vote=" + (config.pre_vote ? "on" : "off") +
         " check_quorum=" + (config.check_quorum ? "on" : "off") +
         " append_entries=" + std::to_string(config.max_append_entries) +
         " inflight=" + std::to_string(config.max_inflight_appends) +
         " apply_batch=" + std::to_string(config.max_apply_batch) +
         " write_batch=" + std::to_string(config.max_write_batch_entries) +
         " commit_notice=" + std::to_string(config.commit_notice_delay.count()) + "us" +
         " snapshot_every=" + std::to_string(config.snapshot_threshold_entries) +
         " trailing=" + std::to_string(config.trailing_log_entries) +
         " chunk=" + std::to_string(config.max_snapshot_chunk_bytes) + "x" +
         std::to_string(config.max_inflight_snapshot_chunks) +
         " retain=" + std::to_string(config.snapshot_retain) +
         (config.shutdown_on_remove ? "" : " shutdown_on_remove=off");
}

template <typename T, std::size_t N>
T pick(core::Prng& prng, const T (&from)[N]) {
  return from[prng.uniform(0, N)];
}

}  // namespace

Config swarm_config(std::uint64_t seed, bool vary) {
  Config config;
  config.heartbeat_interval = 20ms;
  config.election_timeout = 200ms;
  config.lease_timeout = 100ms;
  if (!vary) return config;
  core::Prng prng(seed);
  const std::chrono::milliseconds heartbeats[] = {10ms, 20ms, 50ms};
  config.heartbeat_interval = pick(prng, heartbeats);
  config.election_timeout = config.heartbeat_interval * static_cast<int>(prng.uniform(5, 16));
  const std::uint32_t drifts[] = {5, 10, 20};
  config.clock_drift_percent = pick(prng, drifts);
  // The longest lease Config::validate allows, or a shorter one, or none.
  const auto room = config.election_timeout - 2 * config.heartbeat_interval;
  const auto longest = room * 100 / (100 + config.clock_drift_percent);
  // No lease in one run of five: a restarted server then votes at once (with
  // leases it waits an election timeout), which exposes lost votes.
  const double share = prng.uniform(0, 5) == 0 ? 0.0 : (prng.uniform(0, 2) == 0 ? 1.0 : 0.5);
  config.lease_timeout = std::chrono::milliseconds(
      static_cast<std::chrono::milliseconds::rep>(static_cast<double>(longest.count()) * share));
  config.pre_vote = prng.uniform(0, 5) != 0;
  // Without leases, check-quorum is optional: off in one such run of three.
  // Followers then vote as soon as asked, and a deposed leader lingers.
  if (config.lease_timeout == Duration::zero()) config.check_quorum = prng.uniform(0, 3) != 0;
  const std::size_t append_entries[] = {1, 3, 64};
  config.max_append_entries = pick(prng, append_entries);
  const std::size_t inflight[] = {1, 4, 256};
  config.max_inflight_appends = pick(prng, inflight);
  const std::size_t apply_batches[] = {1, 16, 1024};
  config.max_apply_batch = pick(prng, apply_batches);
  const std::size_t write_batches[] = {1, 8, 4096};
  config.max_write_batch_entries = pick(prng, write_batches);
  // Commit notices at once, after the default delay, or as late as allowed:
  // a late one leaves followers behind the leader's commit for longer.
  const std::chrono::microseconds notice_delays[] = {0us, 1000us, config.heartbeat_interval};
  config.commit_notice_delay = pick(prng, notice_delays);
  return config;
}

namespace {

// Snapshots are always on, with thresholds small enough that a run takes
// many, compacts, and sends them (in several chunks) to servers that were
// down or cut off. Drawn from a stream of their own.
void snapshot_config(Config& config, std::uint64_t seed, bool vary) {
  config.snapshot_interval = config.heartbeat_interval;
  config.snapshot_transfer_idle_timeout = 2 * config.election_timeout;
  config.max_snapshot_chunk_bytes = 1024;
  config.snapshot_threshold_entries = 25;
  config.trailing_log_entries = 5;
  if (!vary) return;
  core::Prng prng(seed);
  const std::uint64_t thresholds[] = {8, 25, 80};
  config.snapshot_threshold_entries = pick(prng, thresholds);
  const std::uint64_t trailing[] = {0, 3, 20};
  config.trailing_log_entries = pick(prng, trailing);
  const std::uint64_t chunks[] = {1024, 4096};
  config.max_snapshot_chunk_bytes = pick(prng, chunks);
  const std::size_t inflight[] = {1, 4};
  config.max_inflight_snapshot_chunks = pick(prng, inflight);
  // One retained snapshot is where a transfer or a restore most easily
  // loses its snapshot to the next one (Config::snapshot_retain).
  const std::size_t retained[] = {1, 2};
  config.snapshot_retain = pick(prng, retained);
}

}  // namespace

ClusterShape cluster_shape(const SimulationOptions& options) {
  core::Prng prng(derive_seed(options.seed, "shape"));
  // 1 voter in 3 of 20 seeds, 3 in 11, 5 in 6; no learner in half the seeds.
  const std::size_t voters[] = {1, 1, 1, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 5, 5, 5, 5, 5, 5};
  const std::size_t learners[] = {0, 0, 0, 0, 0, 1, 1, 1, 2, 2};
  ClusterShape shape;
  shape.voters = pick(prng, voters);
  shape.learners = pick(prng, learners);
  if (options.nodes != 0) shape.voters = options.nodes;
  if (options.learners) shape.learners = *options.learners;
  return shape;
}

// The objects of one run, and its phases. They exist while run() works (and
// after, for report()).
struct Simulation::Run {
  ClusterShape shape;
  Config config;
  FaultPlan plan;
  KvWorkloadOptions workload_options;
  std::unique_ptr<SimCluster> cluster;
  std::unique_ptr<KvWorkload> workload;
  std::unique_ptr<Nemesis> nemesis;
  std::string linearizability_explanation;

  void set_up(const SimulationOptions& options);
  void clients_under_faults(Duration time_limit);
  void heal();
  void check_liveness();
  void check_convergence();
  void check_linearizability();
  SimulationResult result();
  // Within this after healing, a write is acknowledged and then every server
  // has applied it.
  Duration bound() const { return 30 * config.election_timeout; }
};

void Simulation::Run::set_up(const SimulationOptions& options) {
  shape = cluster_shape(options);
  config = swarm_config(derive_seed(options.seed, "config"), options.swarm);
  snapshot_config(config, derive_seed(options.seed, "snapshots"), options.swarm);
#ifdef KEEL_CANARIES
  config.canary = options.canary;
#endif
  // Memory stores cannot fail a write: disk errors need the simulated disk.
  std::set<Fault> faults = options.faults;
  if (!options.disk) faults.erase(Fault::kDiskError);
  plan = plan_faults(derive_seed(options.seed, "swarm"), faults, options.subset, options.swarm,
                     shape.voters, config);

  SimClusterOptions cluster_options;
  cluster_options.nodes = shape.voters + shape.learners;
  cluster_options.learners = shape.learners;
  cluster_options.seed = options.seed;
  cluster_options.trace_frames = options.trace_frames;
  if (options.disk) cluster_options.storage_factory = make_disk_storage;
  cluster_options.fsm_factory = [](ServerId) { return std::make_shared<KvFsm>(); };
  if (plan.enabled.contains(Fault::kMembership)) {
    // A removed server that stays up (a non-member that never campaigns)
    // in one run of three.
    core::Prng membership(derive_seed(options.seed, "membership"));
    config.shutdown_on_remove = membership.uniform(0, 3) != 0;
  }
  cluster_options.tune_config = [shared = config](Config& c) {
    const ServerId id = c.id;
    c = shared;
    c.id = id;
  };
  cluster = std::make_unique<SimCluster>(cluster_options);
  cluster->checker().set_lease_checks(plan.lease_safe());

  workload_options.clients = options.clients;
  workload_options.ops = options.ops;
  core::Prng reads(derive_seed(options.seed, "follower-reads"));
  // Follower reads, from rare to most of them: a follower's read pending at
  // the leader while the follower crashes must be a common schedule.
  const double follower_reads[] = {0.1, 0.25, 0.5, 0.8};
  workload_options.follower_read_fraction = options.swarm ? pick(reads, follower_reads) : 0.25;
  workload_options.lease_reads_checked = plan.lease_safe();
  // Restores: in every run, from rare to frequent, so that a restore meets
  // crashes, partitions, snapshots and elections mid-run.
  core::Prng restores(derive_seed(options.seed, "restores"));
  const double restore_fractions[] = {0.005, 0.02, 0.05};
  workload_options.restore_fraction = options.swarm ? pick(restores, restore_fractions) : 0.02;
  // On-demand snapshots, at points the thresholds would not choose.
  const double snapshot_fractions[] = {0.0, 0.01, 0.03};
  workload_options.snapshot_fraction = options.swarm ? pick(restores, snapshot_fractions) : 0.01;
  // Leadership transfers under load, to a named server or the best voter.
  const double transfer_fractions[] = {0.0, 0.01, 0.03};
  workload_options.transfer_fraction = options.swarm ? pick(restores, transfer_fractions) : 0.01;
  // A value of about a chunk: a restore is a run of several entries.
  workload_options.restore_value_padding = config.max_snapshot_chunk_bytes;
  workload_options.op_timeout = std::max<Duration>(5 * config.election_timeout, 500ms);
  // Spread the operations over 20 to 60 election timeouts, so that the
  // nemesis has time to act while they run.
  core::Prng prng(derive_seed(options.seed, "workload"));
  const Duration span = config.election_timeout * static_cast<int>(prng.uniform(20, 61));
  const auto per_client =
      std::max<std::uint64_t>(1, options.ops / std::max<std::size_t>(1, options.clients));
  workload_options.think_high = 2 * span / static_cast<Duration::rep>(per_client);
  workload = std::make_unique<KvWorkload>(*cluster, workload_options);
  nemesis = std::make_unique<Nemesis>(*cluster, plan, derive_seed(options.seed, "nemesis"));
}

void Simulation::Run::clients_under_faults(Duration time_limit) {
  workload->start();
  nemesis->start();
  cluster->run_until([&] { return workload->finished(); }, time_limit);
  workload->stop_issuing();
}

void Simulation::Run::heal() {
  nemesis->heal();
  // The clients give up on an operation after 1.5 timeouts and 100 ms.
  cluster->run_until([&] { return workload->finished(); }, 2 * workload_options.op_timeout + 1s);
}

void Simulation::Run::check_liveness() {
  if (cluster->failed()) return;
  bool acknowledged = false;
  bool probing = false;
  Duration next_probe{0};
  auto probe = [&] {
    if (acknowledged || probing || !workload->finished() || cluster->now() < next_probe) return;
    probing = true;
    workload->probe_write([&](bool ok) {
      probing = false;
      acknowledged = ok;
      next_probe = cluster->now() + config.heartbeat_interval;  // retry, unhurried
    });
  };
  const Duration healed_at = cluster->now();
  cluster->run_until(
      [&] {
        probe();
        return acknowledged;
      },
      bound());
  if (!acknowledged && !cluster->failed()) {
    cluster->report_violation("liveness: no write acknowledged within " + millis(bound()) +
                              " (30 election timeouts) after healing at " + format_time(healed_at));
  }
}

void Simulation::Run::check_convergence() {
  if (cluster->failed()) return;
  // Over the servers of the configuration in force: one that was removed
  // (and perhaps stopped itself) holds what it held when it left.
  std::vector<ServerId> members;
  for (ServerId id : cluster->ids()) {
    if (cluster->is_member(id)) members.push_back(id);
  }
  auto same_index_everywhere = [&] {
    std::optional<Index> applied;
    for (ServerId id : members) {
      std::optional<RaftStats> stats = cluster->stats(id);
      if (!stats || stats->applied_index != stats->commit_index) return false;
      if (applied && *applied != stats->applied_index) return false;
      applied = stats->applied_index;
    }
    return true;
  };
  if (!cluster->run_until(same_index_everywhere, bound())) {
    if (!cluster->failed()) {
      cluster->report_violation("convergence: servers did not all apply the same index within " +
                                millis(bound()) + " of the acknowledged write");
    }
    return;
  }
  const ServerId first = members.front();
  const auto& reference = cluster->checker().applied(first);
  auto reference_fsm = std::dynamic_pointer_cast<KvFsm>(cluster->fsm(first));
  // A server that restored a snapshot applied only what followed it, and
  // keel's own entries are seen only once a command follows them (or as a
  // snapshot's end): the sequences (in index order) must agree at every
  // index both hold. That all reached the same index was checked above.
  auto agree = [](const std::vector<std::pair<Index, Term>>& a,
                  const std::vector<std::pair<Index, Term>>& b) {
    auto x = a.begin();
    auto y = b.begin();
    while (x != a.end() && y != b.end()) {
      if (x->first < y->first) {
        ++x;
      } else if (y->first < x->first) {
        ++y;
      } else {
        if (x->second != y->second) return false;
        ++x;
        ++y;
      }
    }
    return true;
  };
  for (ServerId id : members) {
    const std::string which = "convergence: server " + std::to_string(id.value);
    const auto& mine = cluster->checker().applied(id);
    if (!agree(mine, reference)) {
      auto last = [](const std::vector<std::pair<Index, Term>>& applied) {
        return applied.empty() ? std::string("nothing")
                               : std::to_string(applied.back().first.value) + "/" +
                                     std::to_string(applied.back().second.value);
      };
      cluster->report_violation(which + " applied a different sequence of entries than server " +
                                std::to_string(first.value) + " (ending at " + last(mine) +
                                " and " + last(reference) + ")");
      return;
    }
    auto fsm = std::dynamic_pointer_cast<KvFsm>(cluster->fsm(id));
    if (fsm && reference_fsm && fsm->data() != reference_fsm->data()) {
      cluster->report_violation(which + " holds a different key-value state than server " +
                                std::to_string(first.value));
      return;
    }
  }
  cluster->check_logs();
}

void Simulation::Run::check_linearizability() {
  if (cluster->failed()) return;
  const CheckResult check = check_linearizable(workload->history());
  if (check.linearizable) return;
  linearizability_explanation = check.explanation;
  if (!check.failing_history.empty()) {
    linearizability_explanation +=
        "\nsmallest failing history found:\n" + check.failing_history.to_text();
  }
  cluster->report_violation(check.budget_exhausted
                                ? "linearizability not proven (search budget exhausted) for key " +
                                      quoted(check.key_that_failed)
                                : "linearizability: the history of key " +
                                      quoted(check.key_that_failed) + " is not linearizable");
}

SimulationResult Simulation::Run::result() {
  SimulationResult out;
  out.violations = cluster->violations();
  out.ok = out.violations.empty();
  out.safety_violated = cluster->safety_failed();
  out.voters = shape.voters;
  out.learners = shape.learners;
  Trace& trace = cluster->trace();
  trace.mix(workload->history().size());
  out.hash = trace.hash();
  out.operations = workload->history().size();
  out.outcomes = workload->summary();
  out.virtual_time = cluster->now();
  out.tasks = cluster->env().tasks_run();
  out.nemesis_actions = nemesis->actions();
  const double minutes = std::chrono::duration<double>(cluster->now()).count() / 60.0;
  out.terms_per_minute = minutes > 0 ? static_cast<double>(nemesis->term_rises()) / minutes : 0.0;
  out.plan = plan.describe();
  out.config = describe(config);
  return out;
}

Simulation::Simulation(SimulationOptions options) : options_(std::move(options)) {}

Simulation::~Simulation() = default;

std::string Simulation::replay_arguments() const {
  std::string faults;
  for (Fault fault : options_.faults) {
    if (!faults.empty()) faults += ',';
    faults += to_string(fault);
  }
  if (options_.faults.empty()) faults = "none";
  if (options_.faults == swarm_faults()) faults = options_.subset ? "swarm" : "all";
  const ClusterShape shape = cluster_shape(options_);
  std::string args =
      "--seed " + std::to_string(options_.seed) + " --nodes " + std::to_string(shape.voters) +
      " --learners " + std::to_string(shape.learners) + " --clients " +
      std::to_string(options_.clients) + " --ops " + std::to_string(options_.ops) + " --faults " +
      faults + " --time-limit " +
      std::to_string(std::chrono::duration_cast<std::chrono::seconds>(options_.time_limit).count());
  if (options_.subset && faults != "swarm" && faults != "none") args += " --subset";
  if (!options_.swarm) args += " --no-swarm";
  if (options_.disk) args += " --storage disk";
#ifdef KEEL_CANARIES
  if (options_.canary != 0) {
    args +=
        " --canary " + std::string(core::canary_name(static_cast<core::Canary>(options_.canary)));
  }
#endif
  return args;
}

SimulationResult Simulation::run() {
  run_ = std::make_unique<Run>();
  run_->set_up(options_);
  run_->clients_under_faults(options_.time_limit);
  run_->heal();
  run_->check_liveness();
  run_->check_convergence();
  run_->check_linearizability();
  return run_->result();
}

std::string Simulation::history_text() const {
  if (!run_ || !run_->workload) return {};
  return run_->workload->history().to_text();
}

std::string Simulation::report(const SimulationResult& result) const {
  std::string out = result.ok ? "keel-sim report (the seed passed)\n" : "keel-sim failure report\n";
  out += "replay: build/bin/keel-sim " + replay_arguments() + "\n";
  out += "\n== violations ==\n";
  if (result.violations.empty() && run_ && run_->cluster) {
    for (const std::string& v : run_->cluster->violations()) out += v + "\n";
  }
  for (const std::string& v : result.violations) out += v + "\n";
  if (run_) {
    out += "\n== run ==\nshape: " + std::to_string(run_->shape.voters) + " voters, " +
           std::to_string(run_->shape.learners) + " learners\nplan: " + run_->plan.describe() +
           "\n";
    out += "config: " + describe(run_->config) + "\n";
    if (run_->cluster) out += "virtual time: " + format_time(run_->cluster->now()) + "\n";
    if (run_->workload) {
      out += "operations: " + std::to_string(run_->workload->history().size()) + " (" +
             run_->workload->summary() + "); the history is in the .history file\n";
    }
  }
  if (run_ && !run_->linearizability_explanation.empty()) {
    out += "\n== linearizability ==\n" + run_->linearizability_explanation + "\n";
  }
  if (run_ && run_->cluster) {
    out += "\n== trace (virtual time, event) ==\n" + run_->cluster->trace().text();
  }
  return out;
}

}  // namespace keel::sim
