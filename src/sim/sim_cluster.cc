// SimCluster (sim/sim_cluster.h): assembling full servers on one ManualEnv,
// crashing and restarting them, and checking them after every step.
//
// The hooks that make checking possible from outside a server:
//   - each server's Env is a NodeEnv whose on_task callback marks the server
//     "dirty"; before the scheduler runs the next task, run_until reads the
//     stats of every dirty server and hands them to the SafetyChecker;
//   - the Fsm is wrapped (RecordingFsm) so every applied entry is checked
//     (and hashed) before the user's Fsm sees it;
//   - the Transport is wrapped (SimTransport) so every delivered frame is
//     hashed, every sent frame is checked against what its sender holds
//     durably (SafetyChecker::on_send) and then passed, dropped or held by
//     the frame rule, and per-link delays apply;
//   - an observer subscribed at open feeds election safety.
#include "sim/sim_cluster.h"

#include <algorithm>
#include <span>
#include <utility>

#include "core/check.h"
#include "core/codec.h"
#include "core/message.h"
#include "sim/seed.h"

namespace keel::sim {

using namespace std::chrono_literals;

namespace {

// What persisting a snapshot takes besides the disk's latency (see start).
constexpr Duration kSnapshotLatencyLow = 1ms;
constexpr Duration kSnapshotLatencyHigh = 30ms;

std::string node_name(ServerId id) { return "n" + std::to_string(id.value); }

std::string describe(const Observation& observation) {
  switch (observation.kind) {
    case Observation::Kind::kStateChanged:
      return std::string("state ") + to_string(observation.state) +
             " term=" + std::to_string(observation.term.value);
    case Observation::Kind::kLeaderChanged:
      return "leader " + std::to_string(observation.leader.id.value) +
             " term=" + std::to_string(observation.term.value);
    case Observation::Kind::kLeaderReady:
      return "leader-ready term=" + std::to_string(observation.term.value) +
             " index=" + std::to_string(observation.index.value);
    case Observation::Kind::kSnapshotTaken:
      return "snapshot-taken index=" + std::to_string(observation.index.value) +
             " bytes=" + std::to_string(observation.snapshot.size_bytes);
    case Observation::Kind::kSnapshotInstalled:
      return "snapshot-installed index=" + std::to_string(observation.index.value) +
             " bytes=" + std::to_string(observation.snapshot.size_bytes);
    case Observation::Kind::kRestored:
      return "restored index=" + std::to_string(observation.index.value) +
             " bytes=" + std::to_string(observation.snapshot.size_bytes);
    case Observation::Kind::kPeerContactLost:
      return "contact-lost peer=" + std::to_string(observation.peer.value);
    case Observation::Kind::kPeerContactResumed:
      return "contact-resumed peer=" + std::to_string(observation.peer.value);
    case Observation::Kind::kVoteRequested:
      return std::string(observation.pre_vote ? "pre-vote" : "vote") +
             "-requested by=" + std::to_string(observation.peer.value) +
             " term=" + std::to_string(observation.term.value);
    case Observation::Kind::kPeerAdded:
      return "peer-added peer=" + std::to_string(observation.peer.value) +
             " index=" + std::to_string(observation.index.value);
    case Observation::Kind::kPeerPromoted:
      return "peer-promoted peer=" + std::to_string(observation.peer.value) +
             " index=" + std::to_string(observation.index.value);
    case Observation::Kind::kPeerDemoted:
      return "peer-demoted peer=" + std::to_string(observation.peer.value) +
             " index=" + std::to_string(observation.index.value);
    case Observation::Kind::kPeerRemoved:
      return "peer-removed peer=" + std::to_string(observation.peer.value) +
             " index=" + std::to_string(observation.index.value);
    case Observation::Kind::kRemoved:
      return "removed index=" + std::to_string(observation.index.value);
  }
  return "?";
}

std::string describe(const Configuration& configuration) {
  auto list = [](const std::vector<Server>& servers) {
    std::string out;
    for (const Server& server : servers) {
      if (!out.empty()) out += ',';
      out += node_name(server.id);
      if (server.suffrage == Suffrage::kLearner) out += "(learner)";
    }
    return "{" + out + "}";
  };
  if (!configuration.joint()) return list(configuration.servers);
  return list(configuration.outgoing) + "->" + list(configuration.servers);
}

}  // namespace

// Checks and hashes every entry before the user's Fsm applies it. A
// BatchingFsm itself, so a user's BatchingFsm keeps receiving batches.
class SimCluster::RecordingFsm final : public BatchingFsm {
 public:
  RecordingFsm(SimCluster& cluster, ServerId id, std::shared_ptr<Fsm> inner,
               std::shared_ptr<LogStore> store)
      : cluster_(cluster),
        id_(id),
        inner_(std::move(inner)),
        batching_(dynamic_cast<BatchingFsm*>(inner_.get())),
        store_(std::move(store)) {}

  std::vector<std::string> apply_batch(std::span<const LogEntry> entries) override {
    for (const LogEntry& entry : entries) {
      Trace& trace = cluster_.trace_;
      trace.mix(static_cast<std::uint64_t>(cluster_.now().count()));
      trace.mix(id_.value);
      trace.mix(entry.index.value);
      trace.mix(entry.term.value);
      trace.mix(entry.data);
      cluster_.checker_.on_apply(id_, entry, *store_);
    }
    if (batching_ != nullptr) return batching_->apply_batch(entries);
    std::vector<std::string> responses;
    responses.reserve(entries.size());
    for (const LogEntry& entry : entries) responses.push_back(inner_->apply(entry));
    return responses;
  }

  Result<std::unique_ptr<FsmSnapshot>> snapshot() override { return inner_->snapshot(); }

  Status restore(const SnapshotMeta& meta, SnapshotReader& reader) override {
    Status status = inner_->restore(meta, reader);
    if (status.is_ok()) cluster_.checker_.on_restore(id_, meta.index, meta.term);
    return status;
  }

 private:
  SimCluster& cluster_;
  const ServerId id_;
  const std::shared_ptr<Fsm> inner_;
  BatchingFsm* const batching_;
  const std::shared_ptr<LogStore> store_;
};

// Hashes delivered frames and holds frames back by the link's extra delay.
// Tells the on_snapshot_write listeners when a server starts a snapshot.
class SimCluster::NotifyingSnapshotStore final : public SnapshotStore {
 public:
  NotifyingSnapshotStore(SimCluster& cluster, ServerId id, std::shared_ptr<SnapshotStore> store)
      : cluster_(cluster), id_(id), store_(std::move(store)) {}

  Result<std::unique_ptr<SnapshotSink>> create(const SnapshotMeta& meta) override {
    for (const auto& listener : cluster_.snapshot_write_listeners_) listener(id_);
    return store_->create(meta);
  }
  Result<SnapshotList> list() const override { return store_->list(); }
  Result<Opened> open(const std::string& id) override { return store_->open(id); }
  Status remove(const std::string& id) override { return store_->remove(id); }

 private:
  SimCluster& cluster_;
  ServerId id_;
  std::shared_ptr<SnapshotStore> store_;
};

// A server's log lines go into the trace (and so into a failure's report),
// at every level.
class SimCluster::TraceLogger final : public Logger {
 public:
  TraceLogger(SimCluster& cluster, ServerId id) : cluster_(cluster), id_(id) {}
  using Logger::log;

  bool enabled(LogLevel) const override { return true; }
  void log(LogLevel level, std::string_view message, std::span<const LogField> fields) override {
    std::string line = node_name(id_) + " log " + to_string(level) + " " + std::string(message);
    for (const LogField& field : fields) {
      if (field.key == "server") continue;  // the line names it already
      line += " " + std::string(field.key) + "=" + field.value;
    }
    cluster_.trace_.event(cluster_.now(), line);
  }

 private:
  SimCluster& cluster_;
  ServerId id_;
};

class SimCluster::SimTransport final : public Transport {
 public:
  SimTransport(SimCluster& cluster, ServerId id, std::shared_ptr<Transport> inner)
      : cluster_(cluster), id_(id), inner_(std::move(inner)) {}

  // The network delivers on this server's own "net-<id>" executor of the
  // shared scheduler (kept across restarts), which hands each frame on to
  // `deliver_on`, the server's loop, as its own task: the interleavings the
  // seed explores include frames waiting to be stepped.
  Status start(Receiver receiver, std::shared_ptr<Executor> deliver_on) override {
    receive_ = [&cluster = cluster_, id = id_, receiver = std::move(receiver),
                deliver_on](std::string frame) {
      Trace& trace = cluster.trace_;
      trace.mix(static_cast<std::uint64_t>(cluster.now().count()));
      trace.mix(id.value);
      trace.mix(frame);
      if (cluster.options_.trace_frames) {
        Result<core::Message> message = core::decode(frame);
        trace.event(cluster.now(),
                    node_name(id) + " <- " +
                        (message.is_ok() ? core::to_string(*message) : "undecodable frame"));
      }
      if (!deliver_on) {
        receiver(std::move(frame));
        return;
      }
      deliver_on->post(
          [receiver, frame = std::move(frame)]() mutable { receiver(std::move(frame)); });
    };
    return inner_->start([this](std::string frame) { receive(std::move(frame)); },
                         cluster_.network_executor(id_));
  }
  using Transport::start;

  // Hands a frame to this server as if it came off the network now (a held
  // frame, already past the network: see SimCluster::hold_frame).
  void receive(std::string frame) {
    if (!stopped_) receive_(std::move(frame));
  }

  void send(const Server& to, Lane lane, std::string frame) override {
    Duration wait{0};
    if (Result<core::Message> message = core::decode(frame); message.is_ok()) {
      Duration hold{0};
      if (!fate(to.id, *message, hold)) return;
      if (hold > Duration::zero()) {
        cluster_.hold_frame(id_, to.id, hold, std::move(frame));
        return;
      }
    }
    if (auto delay = cluster_.link_delays_.find({id_, to.id});
        delay != cluster_.link_delays_.end()) {
      wait += delay->second;
    }
    if (wait == Duration::zero()) {
      inner_->send(to, lane, std::move(frame));
      return;
    }
    // On the wire already: a crash of the sender does not recall it.
    cluster_.link_executors_.at(id_)->post_after(
        wait,
        [inner = std::weak_ptr<Transport>(inner_), to, lane, frame = std::move(frame)]() mutable {
          if (auto transport = inner.lock()) transport->send(to, lane, std::move(frame));
        });
  }

  void stop() override {
    stopped_ = true;
    inner_->stop();
  }

 private:
  // Checks what the frame promises, tells the listeners, and applies the
  // frame rule: false if the frame is dropped, else `hold` says how long it
  // is held (zero: not at all).
  bool fate(ServerId to, const core::Message& message, Duration& hold) {
    Node& sender = cluster_.node(id_);
    if (sender.stores.log && sender.stores.stable) {
      SafetyChecker::SendContext context;
      context.now = cluster_.now();
      if (message.type == core::MessageType::kHeartbeatRequest) {
        // The leader measures its lease on its own clock, which may slow
        // down to the true rate (1, the slowest the drift bound allows) at
        // any moment: its lease ends no later than this.
        context.lease_end = context.now + sender.config.lease_timeout;
      }
      cluster_.checker_.on_send(id_, message, *sender.stores.log, *sender.stores.stable, context);
    }
    for (const auto& listener : cluster_.send_listeners_) listener(id_, message);
    if (!cluster_.frame_rule_) return true;
    const FrameFate fate = cluster_.frame_rule_(id_, to, message);
    if (fate.kind == FrameFate::Kind::kDrop) return false;
    if (fate.kind == FrameFate::Kind::kHold) hold = fate.hold;
    return true;
  }

  SimCluster& cluster_;
  const ServerId id_;
  const std::shared_ptr<Transport> inner_;
  Receiver receive_;
  bool stopped_ = false;
};

// --- construction -----------------------------------------------------------------

SimCluster::SimCluster(SimClusterOptions options)
    : options_(std::move(options)),
      env_(std::make_shared<ManualEnv>(derive_seed(options_.seed, "scheduler"))),
      network_(std::make_unique<InMemoryNetwork>(env_)),
      trace_(options_.trace_lines),
      checker_([this](const std::string& violation) { report_violation(violation); }) {
  KEEL_CHECK("SimCluster needs an fsm_factory", options_.fsm_factory != nullptr);
  KEEL_CHECK("SimCluster needs at least one server", options_.nodes > 0);
  KEEL_CHECK("SimCluster keeps at least one voter", options_.learners < options_.nodes);
  for (std::size_t i = 1; i <= options_.nodes; ++i) {
    const ServerId id{i};
    const bool learner = i > options_.nodes - options_.learners;
    ids_.push_back(id);
    bootstrap_configuration_.servers.push_back(
        Server{id, address_of(id), learner ? Suffrage::kLearner : Suffrage::kVoter});
  }
  configuration_ = bootstrap_configuration_;
  committed_configuration_ = bootstrap_configuration_;
  voters_ = configuration_.voters();
  checker_.set_voters(std::set<ServerId>(voters_.begin(), voters_.end()));
  for (ServerId id : ids_) make_node(id).needs_bootstrap = true;
  for (ServerId id : ids_) start(node(id));
}

SimCluster::Node& SimCluster::make_node(ServerId id) {
  Node& n = nodes_[id];
  n.id = id;
  n.config.id = id;
  n.config.heartbeat_interval = 20ms;
  n.config.election_timeout = 200ms;
  n.config.lease_timeout = 100ms;
  if (options_.tune_config) options_.tune_config(n.config);
  n.config.id = id;
  n.storage = options_.storage_factory(id, seed_for("storage", id.value));
  // Clocks have arbitrary epochs: up to ~1000 s apart.
  const auto offset =
      Duration(static_cast<Duration::rep>(seed_for("clock", id.value) % (1ULL << 40)));
  n.clock = std::make_shared<NodeClock>(env_, offset);
  link_executors_[id] = env_->make_executor("link-" + std::to_string(id.value));
  return n;
}

std::string SimCluster::address_of(ServerId id) { return node_name(id); }

ServerId SimCluster::add_server() {
  const ServerId id{ids_.back().value + 1};
  ids_.push_back(id);
  Node& n = make_node(id);
  trace_.event(now(), node_name(id) + " added, waiting to join");
  start(n);
  return id;
}

void SimCluster::wipe(ServerId id) {
  Node& n = node(id);
  crash(id);
  ++n.wipes;
  n.storage =
      options_.storage_factory(id, seed_for("storage-after-wipe", id.value * 1'000 + n.wipes));
  n.needs_bootstrap = false;
  n.published_configuration.reset();
  checker_.on_wipe(id);
  trace_.event(now(), node_name(id) + " wiped, waiting to join again");
  start(n);
}

void SimCluster::on_configuration_change(std::function<void(const Configuration&)> listener) {
  configuration_listeners_.push_back(std::move(listener));
}

SimCluster::~SimCluster() {
  // Kill every server first: their tasks hold references into this object.
  for (auto& [id, n] : nodes_) {
    if (n.env) n.env->kill();
    if (n.transport) n.transport->stop();
    n.raft.reset();
    n.fsm.reset();
    n.transport.reset();
    n.env.reset();
  }
  for (auto& [id, executor] : link_executors_) executor->stop();
  for (auto& [id, executor] : network_executors_) executor->stop();
  network_.reset();
}

std::uint64_t SimCluster::seed_for(std::string_view stream, std::uint64_t index) const {
  return derive_seed(options_.seed, stream, index);
}

SimCluster::Node& SimCluster::node(ServerId id) {
  auto it = nodes_.find(id);
  KEEL_CHECK("simulated server exists", it != nodes_.end());
  return it->second;
}

const SimCluster::Node& SimCluster::node(ServerId id) const {
  auto it = nodes_.find(id);
  KEEL_CHECK("simulated server exists", it != nodes_.end());
  return it->second;
}

void SimCluster::start(Node& n) {
  ++n.incarnation;
  Result<NodeStores> stores = n.storage->open();
  if (!stores.is_ok()) {
    report_violation("restart: " + node_name(n.id) +
                     " cannot open its stores: " + stores.status().to_string());
    return;
  }
  if (n.needs_bootstrap) {
    Status status = bootstrap_cluster(*stores->log, *stores->stable, bootstrap_configuration_);
    KEEL_CHECK("fresh simulated stores accept the bootstrap", status.is_ok());
    n.needs_bootstrap = false;
  }
  const ServerId id = n.id;
  n.env = std::make_shared<NodeEnv>(
      env_, n.clock, seed_for("node-env", id.value * 100'003 + n.incarnation), [this, id] {
        Node& self = node(id);
        if (!self.dirty) {
          self.dirty = true;
          dirty_.push_back(id);
        }
      });
  n.env->set_latency("keel-writer", n.disk_latency_low, n.disk_latency_high);
  n.env->set_latency("keel-apply", n.apply_latency_low, n.apply_latency_high);
  // Persisting and transferring snapshots touch the disk too, and an FSM's
  // persist takes its time even on a fast disk: a crash can land while one
  // is under way.
  n.env->set_latency("keel-snapshot", n.disk_latency_low + kSnapshotLatencyLow,
                     n.disk_latency_high + kSnapshotLatencyHigh);
  n.env->set_latency("keel-transfer", n.disk_latency_low, n.disk_latency_high);
  checker_.on_start(id);
  std::shared_ptr<Fsm> user_fsm = options_.fsm_factory(id);
  (void)network_executor(id);  // made where the network used to make its own: same schedule
  auto transport = std::make_shared<SimTransport>(*this, id, network_->transport(id));
  n.sim_transport = transport;
  RaftDependencies deps{n.config,
                        std::make_shared<RecordingFsm>(*this, id, user_fsm, stores->log),
                        stores->log,
                        stores->stable,
                        std::make_shared<NotifyingSnapshotStore>(*this, id, stores->snapshots),
                        transport,
                        n.env,
                        {}};
  deps.logger = std::make_shared<TraceLogger>(*this, id);
  deps.observers.push_back([this, id](const Observation& observation) {
    checker_.on_observation(id, observation);
    trace_.event(now(), node_name(id) + " " + describe(observation));
  });
  Result<std::unique_ptr<Raft>> raft = Raft::open(std::move(deps));
  if (!raft.is_ok()) {
    n.env->kill();
    n.env.reset();
    report_violation("restart: " + node_name(id) + " does not open: " + raft.status().to_string());
    return;
  }
  n.raft = std::move(raft).value();
  n.stores = std::move(stores).value();
  n.fsm = std::move(user_fsm);
  n.transport = std::move(transport);
  n.last_traced.reset();
  trace_.event(now(), node_name(id) + " start (incarnation " + std::to_string(n.incarnation) + ")");
}

// --- driving ------------------------------------------------------------------------

bool SimCluster::run_until(const std::function<bool()>& done, Duration limit) {
  if (failed()) return false;
  // Far more tasks than a healthy cluster runs at one instant, and below the
  // ManualEnv's own guard (which aborts): a task that re-posts itself forever
  // is a liveness failure with a report, not a crash.
  constexpr std::size_t kLivelockTasks = 500'000;
  env_->run_until(
      [&] {
        after_step();
        if (now() != instant_) {
          instant_ = now();
          tasks_this_instant_ = 0;
        } else if (++tasks_this_instant_ == kLivelockTasks) {
          report_violation("liveness: livelock, " + std::to_string(kLivelockTasks) +
                               " tasks ran without virtual time moving",
                           ViolationKind::kLiveness);
        }
        return failed() || done();
      },
      limit);
  after_step();
  return !failed() && done();
}

void SimCluster::run_for(Duration duration) {
  run_until([] { return false; }, duration);
}

std::shared_ptr<Executor> SimCluster::make_executor(const std::string& name) {
  return env_->make_executor(name);
}

Duration SimCluster::now() const { return env_->now(); }

void SimCluster::after_step() {
  if (!dirty_.empty()) {
    std::vector<ServerId> dirty;
    dirty.swap(dirty_);
    for (ServerId id : dirty) {
      Node& n = node(id);
      n.dirty = false;
      check_node(n);
    }
  }
  if (now() >= next_checkpoint_) {
    check_logs();
    next_checkpoint_ = now() + options_.checkpoint_interval;
  }
}

void SimCluster::check_node(Node& n) {
  if (!n.raft) return;
  const RaftStats stats = n.raft->stats();
  checker_.on_stats(n.id, stats, *n.stores.log);
  follow_configuration(n, stats);
  // An answer decided before its configuration changed may wait for the
  // disk: a removal an election timeout old has no such excuse.
  checker_.settle_vote_answers(n.id, now(), n.config.election_timeout);
  checker_.settle_reads(n.id, now());
  trace_changes(n, stats);
}

void SimCluster::follow_configuration(Node& n, const RaftStats& stats) {
  // Read after every step: a configuration can change with nothing else in
  // the stats (an entry replaced at the same last index).
  ConfigurationState state = n.raft->configuration();
  if (!n.published_configuration || n.published_configuration->latest != state.latest) {
    checker_.set_configuration(n.id, state.latest, now());
    if (n.published_configuration) {
      trace_.event(now(), node_name(n.id) + " configuration " + describe(state.latest) + " at " +
                              std::to_string(state.latest_index.value));
    }
  }
  n.published_configuration = std::move(state);
  if (stats.state != RaftState::kLeader || stats.ready_term != stats.term ||
      stats.term < configuration_term_) {
    return;
  }
  configuration_term_ = stats.term;
  if (!n.published_configuration->committed.empty()) {
    committed_configuration_ = n.published_configuration->committed;
  }
  const Configuration& latest = n.published_configuration->latest;
  if (latest.empty() || latest == configuration_) return;
  configuration_ = latest;
  voters_ = configuration_.voters();
  trace_.event(now(), "configuration in force " + describe(configuration_));
  for (const auto& listener : configuration_listeners_) listener(configuration_);
}

void SimCluster::trace_changes(Node& n, const RaftStats& stats) {
  const bool changed = !n.last_traced || n.last_traced->state != stats.state ||
                       n.last_traced->term != stats.term ||
                       n.last_traced->ready_term != stats.ready_term;
  n.last_traced = stats;
  if (!changed) return;
  trace_.event(now(), node_name(n.id) + " is " + to_string(stats.state) +
                          " term=" + std::to_string(stats.term.value) +
                          " ready_term=" + std::to_string(stats.ready_term.value) +
                          " last=" + std::to_string(stats.last_index.value) +
                          " commit=" + std::to_string(stats.commit_index.value) +
                          " applied=" + std::to_string(stats.applied_index.value));
  for (const auto& listener : state_listeners_) listener(n.id, stats);
}

void SimCluster::on_state_change(std::function<void(ServerId, const RaftStats&)> listener) {
  state_listeners_.push_back(std::move(listener));
}

void SimCluster::check_logs() {
  std::map<ServerId, const LogStore*> stores;
  std::map<ServerId, RaftStats> published;
  for (auto& [id, n] : nodes_) {
    checker_.settle_reads(id, now());  // also of servers that crashed since
    if (!n.raft) continue;
    stores.emplace(id, n.stores.log.get());
    published.emplace(id, n.raft->stats());
  }
  checker_.check_logs(stores, published);
}

void SimCluster::report_violation(const std::string& what, ViolationKind kind) {
  if (kind == ViolationKind::kSafety) safety_failed_ = true;
  violations_.push_back(what);
  trace_.event(now(), "VIOLATION " + what);
}

// --- servers ------------------------------------------------------------------------

Raft* SimCluster::raft(ServerId id) { return node(id).raft.get(); }

std::shared_ptr<Fsm> SimCluster::fsm(ServerId id) { return node(id).fsm; }

std::shared_ptr<LogStore> SimCluster::log_store(ServerId id) { return node(id).stores.log; }

const Config& SimCluster::config(ServerId id) const { return node(id).config; }

bool SimCluster::is_up(ServerId id) const { return node(id).raft != nullptr; }

bool SimCluster::is_paused(ServerId id) const {
  const Node& n = node(id);
  return n.env && n.env->paused();
}

std::optional<RaftStats> SimCluster::stats(ServerId id) const {
  const Node& n = node(id);
  if (!n.raft) return std::nullopt;
  return n.raft->stats();
}

std::optional<ServerId> SimCluster::leader() const {
  std::optional<ServerId> found;
  Term best;
  for (const auto& [id, n] : nodes_) {
    if (!n.raft) continue;
    const RaftStats stats = n.raft->stats();
    if (stats.state == RaftState::kLeader && (!found || stats.term > best)) {
      found = id;
      best = stats.term;
    }
  }
  return found;
}

std::optional<ServerId> SimCluster::ready_leader() const {
  std::optional<ServerId> found;
  Term best;
  for (const auto& [id, n] : nodes_) {
    if (!n.raft) continue;
    const RaftStats stats = n.raft->stats();
    if (stats.state == RaftState::kLeader && stats.ready_term == stats.term &&
        (!found || stats.term > best)) {
      found = id;
      best = stats.term;
    }
  }
  return found;
}

// --- faults ---------------------------------------------------------------------------

void SimCluster::crash(ServerId id) {
  Node& n = node(id);
  if (!n.raft) return;
  trace_.event(now(), node_name(id) + " crash");
  n.env->kill();  // first: nothing of this incarnation runs again
  n.transport->stop();
  n.raft.reset();  // shutdown() returns at once on a NodeEnv (driven_by_caller)
  n.fsm.reset();
  n.transport.reset();
  n.sim_transport.reset();
  n.env.reset();
  n.stores = NodeStores{};
  n.storage->crash();
  n.last_traced.reset();
}

bool SimCluster::inject_io_error(ServerId id, std::uint64_t draw) {
  Node& n = node(id);
  if (!n.raft || !n.storage->inject_io_error(draw)) return false;
  trace_.event(now(), node_name(id) + " disk error armed (" + std::to_string(draw % 16) + ")");
  return true;
}

void SimCluster::restart(ServerId id) {
  Node& n = node(id);
  if (n.raft) return;
  start(n);
}

void SimCluster::pause(ServerId id) {
  Node& n = node(id);
  if (!n.env || n.env->paused()) return;
  trace_.event(now(), node_name(id) + " pause");
  n.env->pause();
}

void SimCluster::resume(ServerId id, std::optional<ReleaseOrder> order) {
  Node& n = node(id);
  if (!n.env || !n.env->paused()) return;
  trace_.event(now(), node_name(id) + " resume");
  n.env->resume(order);
}

void SimCluster::set_clock_rate(ServerId id, double rate) {
  Node& n = node(id);
  if (n.clock->rate() == rate) return;
  trace_.event(now(), node_name(id) + " clock rate " + std::to_string(rate));
  n.clock->set_rate(rate);
}

double SimCluster::clock_rate(ServerId id) const { return node(id).clock->rate(); }

void SimCluster::set_disk_latency(ServerId id, Duration low, Duration high) {
  Node& n = node(id);
  n.disk_latency_low = low;
  n.disk_latency_high = high;
  if (n.env) {
    n.env->set_latency("keel-writer", low, high);
    n.env->set_latency("keel-snapshot", low + kSnapshotLatencyLow, high + kSnapshotLatencyHigh);
    n.env->set_latency("keel-transfer", low, high);
  }
}

void SimCluster::set_apply_latency(ServerId id, Duration low, Duration high) {
  Node& n = node(id);
  n.apply_latency_low = low;
  n.apply_latency_high = high;
  if (n.env) n.env->set_latency("keel-apply", low, high);
}

void SimCluster::cut_link(ServerId from, ServerId to) {
  if (from == to || !cut_links_.insert({from, to}).second) return;
  network_->cut(from, to);
}

void SimCluster::heal_links() {
  cut_links_.clear();
  network_->heal();
}

bool SimCluster::is_voter(ServerId id) const { return configuration_.is_voter(id); }

void SimCluster::set_frame_rule(FrameRule rule) { frame_rule_ = std::move(rule); }

std::shared_ptr<Executor> SimCluster::network_executor(ServerId id) {
  std::shared_ptr<Executor>& executor = network_executors_[id];
  if (!executor) executor = env_->make_executor("net-" + std::to_string(id.value));
  return executor;
}

void SimCluster::hold_frame(ServerId from, ServerId to, Duration hold, std::string frame) {
  // The frame crosses the link now -- so a cut link loses it, and a later
  // cut does not -- and reaches the receiving process after `hold`: a stale
  // frame that was on its way, or sat in a buffer, when things changed. Only
  // the process that was running when it arrived may read it.
  Node& receiver = node(to);
  if (!link_up(from, to) || !receiver.raft) return;
  std::weak_ptr<SimTransport> transport = receiver.sim_transport;
  link_executors_.at(from)->post_after(hold, [transport, frame = std::move(frame)]() mutable {
    if (auto alive = transport.lock()) alive->receive(std::move(frame));
  });
}

void SimCluster::on_send(std::function<void(ServerId, const core::Message&)> listener) {
  send_listeners_.push_back(std::move(listener));
}

void SimCluster::on_snapshot_write(std::function<void(ServerId)> listener) {
  snapshot_write_listeners_.push_back(std::move(listener));
}

bool SimCluster::link_up(ServerId from, ServerId to) const {
  return from == to || !cut_links_.contains({from, to});
}

void SimCluster::set_link_delay(ServerId from, ServerId to, Duration delay) {
  if (delay <= Duration::zero()) {
    link_delays_.erase({from, to});
  } else {
    link_delays_[{from, to}] = delay;
  }
}

}  // namespace keel::sim
