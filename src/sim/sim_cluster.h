// sim/sim_cluster.h — a cluster of full keel::Raft servers (runtime, core,
// stores, in-memory network, your Fsm) on one thread, in virtual time, under
// a seeded scheduler, with the faults a nemesis needs and Raft's safety
// properties checked after every step.
//
//   keel::sim::SimClusterOptions options;
//   options.nodes = 3;
//   options.seed = 42;
//   options.fsm_factory = [](keel::ServerId) { return std::make_shared<MyFsm>(); };
//   keel::sim::SimCluster cluster(options);
//   cluster.run_until([&] { return cluster.leader().has_value(); }, 5s);
//   keel::Raft* leader = cluster.raft(*cluster.leader());
//   leader->apply("...", 1s).then([](const keel::Result<keel::ApplyResult>& r) { ... });
//   cluster.run_for(1s);
//   if (cluster.failed()) { ... cluster.violations() ... }
//
// Everything runs on one ManualEnv (DESIGN §2.2): each server sees it
// through its own NodeEnv (own clock, pausable executors), frames travel on
// an InMemoryNetwork on the same env, and workload code runs on executors
// from make_executor(). Never block (Future::get) on the driving thread:
// nothing would run. Use then() callbacks and posted tasks.
//
// Same options and same calls give the same run, bit for bit; trace().hash()
// summarises it.
//
// Checks (sim/safety_checker.h) run after every task of a server and at
// checkpoints; the first violation stops run_until/run_for and is kept in
// violations(). A broken invariant inside the core still aborts the process
// (KEEL_CHECK), as it would in production.
//
// Thread safety: none; one thread drives a SimCluster.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/message.h"
#include "keel/config.h"
#include "keel/env.h"
#include "keel/fsm.h"
#include "keel/raft.h"
#include "keel/transport.h"
#include "sim/node_env.h"
#include "sim/node_storage.h"
#include "sim/safety_checker.h"
#include "sim/trace.h"

namespace keel::sim {

struct SimClusterOptions {
  std::size_t nodes = 3;
  // The last `learners` of the `nodes` servers are learners: they receive the
  // log and apply it but never vote or campaign. At least one voter remains.
  std::size_t learners = 0;
  std::uint64_t seed = 1;
  // A fresh state machine for every start of every server (a restarted
  // server re-applies its log from the beginning). Required.
  std::function<std::shared_ptr<Fsm>(ServerId)> fsm_factory;
  // Adjusts each server's Config after the simulator's defaults (heartbeat
  // 20 ms, election timeout 200 ms, lease 100 ms). The id is set already.
  std::function<void(Config&)> tune_config;
  // Where each server's log and hard state live, and what a crash loses.
  NodeStorageFactory storage_factory = make_memory_storage;
  // Readable trace lines kept for failure reports (older ones are dropped).
  std::size_t trace_lines = 200'000;
  // Log matching and leader completeness over the stores this often.
  Duration checkpoint_interval = std::chrono::milliseconds(500);
  // Also write every delivered frame, decoded, to the trace ("n2 <- ..."):
  // verbose, for reading one failing seed (keel-sim --trace-frames).
  bool trace_frames = false;
};

// What becomes of a frame a server sends (SimCluster::set_frame_rule).
struct FrameFate {
  enum class Kind : std::uint8_t { kPass, kDrop, kHold };
  Kind kind = Kind::kPass;
  Duration hold{0};  // kHold: how long the frame waits before it enters the network
};
using FrameRule = std::function<FrameFate(ServerId from, ServerId to, const core::Message&)>;

// Safety violations break a promise Raft or keel makes about data; liveness
// violations say the cluster stopped making progress it should have made.
enum class ViolationKind : std::uint8_t { kSafety, kLiveness };

class SimCluster {
 public:
  explicit SimCluster(SimClusterOptions options);
  ~SimCluster();
  SimCluster(const SimCluster&) = delete;
  SimCluster& operator=(const SimCluster&) = delete;

  // --- driving -----------------------------------------------------------------
  // Runs tasks (jumping virtual time when nothing is runnable) until done()
  // holds, `limit` of virtual time passes or a check fails. Returns done()
  // (false after a violation).
  bool run_until(const std::function<bool()>& done, Duration limit);
  void run_for(Duration duration);
  // An executor on the shared scheduler, for workload code (clients, a
  // nemesis). Its tasks interleave with the servers' under the seed.
  std::shared_ptr<Executor> make_executor(const std::string& name);
  // Virtual time (the servers' clocks may drift from it).
  Duration now() const;
  // A seed of its own for each named stream of randomness (sim/seed.h).
  std::uint64_t seed_for(std::string_view stream, std::uint64_t index = 0) const;
  ManualEnv& env() { return *env_; }

  // --- servers -----------------------------------------------------------------
  // Every server the cluster ever had (add_server appends; none leaves).
  const std::vector<ServerId>& ids() const { return ids_; }
  // The configuration in force: the latest configuration of the ready
  // leader of the highest term seen so far (the bootstrap configuration
  // until one is ready). Joint while a joint change is under way.
  const Configuration& configuration() const { return configuration_; }
  // The committed configuration of that same leader: while configuration()
  // is a change not yet committed, the servers that never received it still
  // elect by this one.
  const Configuration& committed_configuration() const { return committed_configuration_; }
  // The voters of configuration() (of both halves while joint).
  const std::vector<ServerId>& voters() const { return voters_; }
  bool is_voter(ServerId id) const;
  // Listed in configuration(), as a voter or a learner.
  bool is_member(ServerId id) const { return configuration_.contains(id); }
  // Called, after a step, when configuration() changed. It must not drive
  // the cluster itself: post a task instead.
  void on_configuration_change(std::function<void(const Configuration&)> listener);
  // A new server, started on empty stores without a configuration: it waits
  // for a leader to add it (Raft::add_learner, add_voter). Returns its id
  // (one above every id so far); its address is "n<id>".
  ServerId add_server();
  // The server's disk is lost: it crashes, its stores are replaced by empty
  // ones, and it starts again under the same id as a new server, waiting
  // to be added. Reusing an identity is safe only once it was removed.
  void wipe(ServerId id);
  // The address the cluster's servers know `id` by.
  static std::string address_of(ServerId id);
  // Null while the server is crashed.
  Raft* raft(ServerId id);
  // The state machine of the server's running incarnation (null while crashed).
  std::shared_ptr<Fsm> fsm(ServerId id);
  // The log store of the server's running incarnation (null while crashed).
  std::shared_ptr<LogStore> log_store(ServerId id);
  const Config& config(ServerId id) const;
  bool is_up(ServerId id) const;
  bool is_paused(ServerId id) const;
  // The running server that says it leads, with the highest term.
  std::optional<ServerId> leader() const;
  // Ready leader: leads, and its term-start entry is applied (kLeaderReady).
  std::optional<ServerId> ready_leader() const;
  std::optional<RaftStats> stats(ServerId id) const;

  // --- faults --------------------------------------------------------------------
  // Kills the server's executors (in-flight work, unsent messages and
  // unfinished writes are lost), stops its transport, drops the Raft and its
  // FSM, then tells its storage to crash. Its clients' futures never resolve.
  void crash(ServerId id);
  // Starts a crashed server again from its stores, with a fresh FSM.
  void restart(ServerId id);
  // Arms an I/O error in the server's storage (NodeStorage::inject_io_error):
  // its next matching write fails and the server stops itself (fail-stop).
  // False if its storage cannot fail (memory).
  bool inject_io_error(ServerId id, std::uint64_t draw);
  void pause(ServerId id);
  // Releases what the pause held, in `order` (sim/node_env.h), or in an order
  // drawn from the seed.
  void resume(ServerId id, std::optional<ReleaseOrder> order = std::nullopt);
  // The server's clock runs at `rate` times virtual time (1 = exact).
  void set_clock_rate(ServerId id, double rate);
  double clock_rate(ServerId id) const;
  // Each write batch of the server's log writer waits [low, high] first.
  void set_disk_latency(ServerId id, Duration low, Duration high);
  // Each batch the server's applier hands to the FSM waits [low, high] first.
  void set_apply_latency(ServerId id, Duration low, Duration high);

  InMemoryNetwork& network() { return *network_; }
  // Frames from `from` to `to` are lost (until heal_links()).
  void cut_link(ServerId from, ServerId to);
  void heal_links();
  bool link_up(ServerId from, ServerId to) const;
  // Frames from `from` to `to` wait `delay` (virtual time) before entering
  // the network, on top of its own delay. Zero removes it.
  void set_link_delay(ServerId from, ServerId to, Duration delay);
  // Decides the fate of every frame sent from now on: pass, drop, or hold
  // for a while (stale responses, late acknowledgements). A held frame
  // crosses its link when sent (lost if the link is cut then) and reaches
  // the receiving process after the hold, whatever the links do meanwhile;
  // if that process crashed in between, it is lost. One rule at a time; an
  // empty one passes everything.
  void set_frame_rule(FrameRule rule);
  // Called with every frame a running server sends, decoded, before its fate
  // is decided (a nemesis reacting to what servers do). It must not drive
  // the cluster itself: post a task instead.
  void on_send(std::function<void(ServerId from, const core::Message&)> listener);
  // Called when a running server starts writing a snapshot into its store
  // (SnapshotStore::create: one it took, one a leader sends, one a restore
  // stages). It must not drive the cluster itself: post a task instead.
  void on_snapshot_write(std::function<void(ServerId)> listener);

  // --- checking -------------------------------------------------------------------
  bool failed() const { return !violations_.empty(); }
  const std::vector<std::string>& violations() const { return violations_; }
  // Whether a safety violation (not only liveness ones) was recorded.
  bool safety_failed() const { return safety_failed_; }
  // Records a violation found by the caller (a workload, a final check).
  void report_violation(const std::string& what, ViolationKind kind = ViolationKind::kSafety);
  // Log matching and leader completeness now (also run every checkpoint).
  void check_logs();
  // Called, after a step, when a server's published state, term or ready
  // term changed (a nemesis reacting to elections). It must not drive the
  // cluster itself: post a task instead.
  void on_state_change(std::function<void(ServerId, const RaftStats&)> listener);
  SafetyChecker& checker() { return checker_; }
  Trace& trace() { return trace_; }

 private:
  class RecordingFsm;
  class SimTransport;
  struct Node {
    ServerId id;
    Config config;
    std::unique_ptr<NodeStorage> storage;
    std::shared_ptr<NodeClock> clock;
    std::uint64_t incarnation = 0;
    // Whether start() must write the bootstrap configuration first (the
    // servers made at construction, once); a server added later, or wiped,
    // starts without one and waits to be added.
    bool needs_bootstrap = false;
    std::uint64_t wipes = 0;
    // The configuration state its running incarnation last published.
    std::optional<ConfigurationState> published_configuration;
    // The running incarnation (all null while crashed).
    std::shared_ptr<NodeEnv> env;
    NodeStores stores;
    std::shared_ptr<Fsm> fsm;  // the user's
    std::shared_ptr<Transport> transport;
    std::shared_ptr<SimTransport> sim_transport;  // the same, typed
    std::unique_ptr<Raft> raft;
    Duration disk_latency_low{0}, disk_latency_high{0};
    Duration apply_latency_low{0}, apply_latency_high{0};
    bool dirty = false;  // ran a task since the last check
    std::optional<RaftStats> last_traced;
  };

  Node& node(ServerId id);
  const Node& node(ServerId id) const;
  // A server's Node, not started: its Config, fresh storage and clock.
  Node& make_node(ServerId id);
  void start(Node& node);
  // Hands a changed published configuration to the checker, and follows the
  // ready leader's into configuration().
  void follow_configuration(Node& node, const RaftStats& stats);
  void hold_frame(ServerId from, ServerId to, Duration hold, std::string frame);
  // The executor that delivers frames to `id` (one per server, made at its
  // first start and kept across restarts).
  std::shared_ptr<Executor> network_executor(ServerId id);
  void after_step();
  void check_node(Node& node);
  void trace_changes(Node& node, const RaftStats& stats);

  SimClusterOptions options_;
  std::shared_ptr<ManualEnv> env_;
  std::unique_ptr<InMemoryNetwork> network_;
  std::vector<ServerId> ids_;
  std::vector<ServerId> voters_;
  // What the servers made at construction are bootstrapped with.
  Configuration bootstrap_configuration_;
  Configuration configuration_;
  Configuration committed_configuration_;
  Term configuration_term_;  // the term of the leader configuration_ follows
  std::vector<std::function<void(const Configuration&)>> configuration_listeners_;
  std::map<ServerId, Node> nodes_;
  std::map<ServerId, std::shared_ptr<Executor>> link_executors_;
  std::map<ServerId, std::shared_ptr<Executor>> network_executors_;
  std::set<std::pair<ServerId, ServerId>> cut_links_;
  std::map<std::pair<ServerId, ServerId>, Duration> link_delays_;
  FrameRule frame_rule_;
  std::vector<std::function<void(ServerId, const core::Message&)>> send_listeners_;
  std::vector<std::function<void(ServerId)>> snapshot_write_listeners_;
  class NotifyingSnapshotStore;
  class TraceLogger;
  Trace trace_;
  SafetyChecker checker_;
  std::vector<std::string> violations_;
  bool safety_failed_ = false;
  // Tasks run at the current virtual instant (a livelock is reported before
  // the ManualEnv's own guard would abort).
  Duration instant_{-1};
  std::size_t tasks_this_instant_ = 0;
  std::vector<std::function<void(ServerId, const RaftStats&)>> state_listeners_;
  Duration next_checkpoint_{0};
  std::vector<ServerId> dirty_;
};

}  // namespace keel::sim
