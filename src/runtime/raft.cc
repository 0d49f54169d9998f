// keel::Raft: opening a server from its stores, and the public facade over
// RaftServer. Also bootstrap_cluster and has_existing_state.
#include "keel/raft.h"

#include <algorithm>
#include <cstdio>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <utility>

#include "core/codec.h"
#include "runtime/core_config.h"
#include "runtime/log_writer.h"
#include "runtime/raft_server.h"
#include "runtime/recovery.h"
#include "runtime/snapshot_retention.h"

namespace keel {

const char* to_string(RaftState state) {
  switch (state) {
    case RaftState::kFollower:
      return "follower";
    case RaftState::kPreCandidate:
      return "pre-candidate";
    case RaftState::kCandidate:
      return "candidate";
    case RaftState::kLeader:
      return "leader";
    case RaftState::kShutdown:
      return "shutdown";
  }
  return "unknown";
}

namespace {

// What bootstrap_cluster stores before its first entry: the configuration
// it is about to write (so that an interrupted bootstrap is told apart from
// a server that merely heard a term-1 leader), then this hard state.
constexpr char kBootstrapKey[] = "keel.bootstrap_configuration";
constexpr core::HardState kBootstrapHardState{Term{1}, kNoServer, Index{0}};

// What the stores hold, as bootstrap_cluster and has_existing_state see it.
struct StoredState {
  bool existing = false;  // a term, a vote or entries worth keeping
  // The configuration of a bootstrap a crash interrupted (its
  // configuration and hard state stored, the log still empty).
  std::optional<std::string> interrupted_bootstrap;
};

Result<StoredState> inspect(const LogStore& log_store, const StableStore& stable_store) {
  if (log_store.last_index() >= Index{1}) return StoredState{true, std::nullopt};
  Result<core::HardState> hard_state = runtime::load_hard_state(stable_store);
  if (!hard_state.is_ok()) return hard_state.status();
  if (hard_state->term.is_zero()) return StoredState{false, std::nullopt};
  if (*hard_state != kBootstrapHardState) return StoredState{true, std::nullopt};
  Result<std::string> configuration = stable_store.get(kBootstrapKey);
  if (configuration.is_ok()) return StoredState{false, *configuration};
  if (configuration.status().code() == StatusCode::kNotFound) {
    return StoredState{true, std::nullopt};  // term 1 heard from a leader
  }
  return configuration.status();
}

Status check_configuration(const Configuration& configuration) {
  std::set<ServerId> ids;
  std::size_t voters = 0;
  for (const Server& server : configuration.servers) {
    if (server.id.is_zero()) return Status::invalid_argument("configuration: server id 0");
    if (!ids.insert(server.id).second) {
      return Status::invalid_argument("configuration: server " + std::to_string(server.id.value) +
                                      " listed twice");
    }
    if (server.suffrage == Suffrage::kVoter) ++voters;
  }
  if (voters == 0) return Status::invalid_argument("configuration: no voters");
  return Status::ok();
}

class RaftHandle final : public Raft {
 public:
  explicit RaftHandle(std::shared_ptr<runtime::RaftServer> server) : server_(std::move(server)) {}
  ~RaftHandle() override { server_->shutdown(); }

  Future<ApplyResult> apply(std::string command, Duration timeout) override {
    return server_->apply(std::move(command), timeout);
  }
  std::vector<Future<ApplyResult>> apply_batch(std::vector<std::string> commands,
                                               Duration timeout) override {
    return server_->apply_batch(std::move(commands), timeout);
  }
  Future<Index> barrier(Duration timeout) override { return server_->barrier(timeout); }
  Future<Index> verify_leader(Duration timeout) override { return server_->verify_leader(timeout); }
  Future<Index> read(Consistency consistency, Duration timeout) override {
    return server_->read(consistency, timeout);
  }
  RaftState state() const override { return server_->stats().state; }
  LeaderInfo leader() const override { return server_->stats().leader; }
  Term term() const override { return server_->stats().term; }
  Index commit_index() const override { return server_->stats().commit_index; }
  Index applied_index() const override { return server_->stats().applied_index; }
  Index last_index() const override { return server_->stats().last_index; }
  Duration last_contact() const override { return server_->last_contact(); }
  RaftStats stats() const override { return server_->stats(); }
  ConfigurationState configuration() const override { return server_->configuration(); }
  Future<Index> add_learner(ServerId id, std::string address, Index prev_index,
                            Duration timeout) override {
    return server_->change_membership(
        {ConfigurationChange{ConfigurationChange::Kind::kAddLearner, id, std::move(address)}},
        prev_index, false, timeout);
  }
  Future<Index> add_voter(ServerId id, std::string address, Index prev_index,
                          Duration timeout) override {
    return server_->change_membership(
        {ConfigurationChange{ConfigurationChange::Kind::kAddVoter, id, std::move(address)}},
        prev_index, true, timeout);
  }
  Future<Index> demote_voter(ServerId id, Index prev_index, Duration timeout) override {
    return server_->change_membership(
        {ConfigurationChange{ConfigurationChange::Kind::kDemoteVoter, id, {}}}, prev_index, false,
        timeout);
  }
  Future<Index> remove_server(ServerId id, Index prev_index, Duration timeout) override {
    return server_->change_membership(
        {ConfigurationChange{ConfigurationChange::Kind::kRemoveServer, id, {}}}, prev_index, false,
        timeout);
  }
  Future<Index> change_membership(std::vector<ConfigurationChange> changes, Index prev_index,
                                  Duration timeout) override {
    return server_->change_membership(std::move(changes), prev_index, false, timeout);
  }
  Result<std::uint64_t> subscribe(std::function<void(const Observation&)> observer) override {
    return server_->subscribe(std::move(observer));
  }
  void unsubscribe(std::uint64_t subscription) override { server_->unsubscribe(subscription); }
  void shutdown() override { server_->shutdown(); }
  Future<Index> stopped() const override { return server_->stopped(); }
  Future<SnapshotMeta> snapshot(Duration timeout) override { return server_->snapshot(timeout); }
  Future<LeaderInfo> transfer_leadership(std::optional<ServerId> target,
                                         Duration timeout) override {
    return server_->transfer_leadership(target, timeout);
  }
  Future<Index> restore(const SnapshotMeta& meta, std::unique_ptr<SnapshotReader> reader,
                        Duration timeout) override {
    return server_->restore(meta, std::move(reader), timeout);
  }
  Result<SnapshotStore::Opened> open_snapshot(const std::string& id) override {
    return server_->open_snapshot(id);
  }

 private:
  std::shared_ptr<runtime::RaftServer> server_;
};

}  // namespace

Result<std::unique_ptr<Raft>> Raft::open(RaftDependencies deps) {
  Result<std::shared_ptr<runtime::RaftServer>> server = runtime::RaftServer::open(std::move(deps));
  if (!server.is_ok()) return server.status();
  return std::unique_ptr<Raft>(std::make_unique<RaftHandle>(std::move(server).value()));
}

Status bootstrap_cluster(LogStore& log_store, StableStore& stable_store,
                         const Configuration& configuration) {
  Status valid = check_configuration(configuration);
  if (!valid.is_ok()) return valid;
  Result<StoredState> stored_state = inspect(log_store, stable_store);
  if (!stored_state.is_ok()) return stored_state.status();
  if (stored_state->existing) {
    return Status::invalid_argument("bootstrap: the stores already hold Raft state");
  }
  const std::string encoded = core::encode_configuration(configuration);
  const std::optional<std::string>& interrupted = stored_state->interrupted_bootstrap;
  if (interrupted && *interrupted != encoded) {
    return Status::invalid_argument(
        "bootstrap: an interrupted bootstrap of these stores named another configuration");
  }
  // The configuration and the hard state first, as the log writer stores
  // the hard state first: a log never exists without one. A crash before
  // the append leaves both and an empty log, which has_existing_state
  // counts as empty, so bootstrapping again (with the same configuration)
  // completes it.
  Status stored = stable_store.set(kBootstrapKey, encoded);
  if (stored.is_ok()) {
    stored = stable_store.set(runtime::kHardStateKey, core::encode_hard_state(kBootstrapHardState));
  }
  if (!stored.is_ok()) return stored;
  const LogEntry first{Term{1}, Index{1}, EntryType::kConfiguration, encoded};
  return log_store.append(std::span<const LogEntry>(&first, 1));
}

Status recover_cluster(LogStore& log_store, StableStore& stable_store,
                       const Configuration& configuration) {
  Status valid = check_configuration(configuration);
  if (!valid.is_ok()) return valid;
  if (configuration.joint()) {
    return Status::invalid_argument("recover_cluster: the configuration must not be joint");
  }
  Result<StoredState> stored_state = inspect(log_store, stable_store);
  if (!stored_state.is_ok()) return stored_state.status();
  if (!stored_state->existing) {
    return Status::invalid_argument(
        "recover_cluster: the stores hold no Raft state to recover (bootstrap_cluster starts a "
        "new cluster)");
  }
  Result<core::HardState> hard_state = runtime::load_hard_state(stable_store);
  if (!hard_state.is_ok()) return hard_state.status();
  Term last_term;
  const Index last = log_store.last_index();
  if (last >= Index{1} && last >= log_store.first_index()) {
    Result<std::vector<LogEntry>> read = log_store.read(last, last);
    if (!read.is_ok()) return read.status();
    if (read->size() != 1) {
      return Status::corruption("recover_cluster: the log store did not return its last entry");
    }
    last_term = read->front().term;
  }
  // A term no server of the old cluster reached through these stores' log,
  // with no vote cast: the recovered server campaigns in the next one.
  const Term term{std::max(hard_state->term, last_term).value + 1};
  if (term > kMaxTerm) return Status::invalid_argument("recover_cluster: terms are exhausted");
  std::fprintf(stderr,
               "keel: recover_cluster: forcing a configuration of %zu server(s) at log entry %llu, "
               "term %llu. This is unsafe: entries the lost servers held may be gone for good, "
               "and it must be done on one surviving server only.\n",
               configuration.servers.size(), static_cast<unsigned long long>(last.next().value),
               static_cast<unsigned long long>(term.value));
  const core::HardState raised{term, kNoServer, hard_state->commit};
  Status stored = stable_store.set(runtime::kHardStateKey, core::encode_hard_state(raised));
  if (!stored.is_ok()) return stored;
  const LogEntry entry{term, last.next(), EntryType::kConfiguration,
                       core::encode_configuration(configuration)};
  return log_store.append(std::span<const LogEntry>(&entry, 1));
}

Result<bool> has_existing_state(const LogStore& log_store, const StableStore& stable_store) {
  Result<StoredState> stored_state = inspect(log_store, stable_store);
  if (!stored_state.is_ok()) return stored_state.status();
  return stored_state->existing;
}

namespace runtime {

namespace {

// The newest snapshot that restores (or, without restoring, the newest
// listed). A damaged one is skipped with a log line and the next older one
// tried; if none restores, an error: starting from an empty FSM with a log
// that no longer begins at 1 would lose the state.
Result<std::optional<SnapshotMeta>> restore_newest(const RaftDependencies& deps) {
  Result<SnapshotList> list = deps.snapshot_store->list();
  if (!list.is_ok()) return list.status();
  for (const DamagedSnapshot& damaged : list->damaged) {
    deps.logger->log(LogLevel::kWarn, "skips a damaged snapshot",
                     {{"server", deps.config.id.value},
                      {"snapshot", damaged.id},
                      {"error", damaged.status.to_string()}});
  }
  if (list->snapshots.empty()) return std::optional<SnapshotMeta>();
  if (!deps.config.restore_snapshot_on_start) {
    return std::optional<SnapshotMeta>(list->snapshots.front());
  }
  Status last_failure;
  for (const SnapshotMeta& meta : list->snapshots) {
    Result<SnapshotStore::Opened> opened = deps.snapshot_store->open(meta.id);
    Status status = opened.status();
    if (status.is_ok()) status = deps.fsm->restore(opened->meta, *opened->reader);
    if (status.is_ok()) return std::optional<SnapshotMeta>(opened->meta);
    deps.logger->log(
        LogLevel::kWarn, "skips a snapshot that does not restore",
        {{"server", deps.config.id.value}, {"snapshot", meta.id}, {"error", status.to_string()}});
    last_failure = status;
  }
  return Status::corruption(
      "open: no snapshot restores (the last error: " + last_failure.to_string() + ")");
}

}  // namespace

Result<std::shared_ptr<RaftServer>> RaftServer::open(RaftDependencies deps) {
  if (!deps.fsm || !deps.log_store || !deps.stable_store || !deps.snapshot_store ||
      !deps.transport || !deps.env) {
    return Status::invalid_argument("open: fsm, stores, transport and env are all required");
  }
  Status valid = deps.config.validate();
  if (!valid.is_ok()) return valid;
  const std::uint64_t seed = deps.env->random_seed();
  Status core_valid = to_core_config(deps.config, seed).validate();
  if (!core_valid.is_ok()) return core_valid;

  if (deps.observers.size() > deps.config.max_subscriptions) {
    return Status::invalid_argument("open: more observers than max_subscriptions (" +
                                    std::to_string(deps.config.max_subscriptions) + ")");
  }
  if (!deps.logger) deps.logger = make_stderr_logger();
  if (!deps.metrics) deps.metrics = make_null_metrics();
  // Every snapshot this server stores or reads goes through the retention
  // rule (Config::snapshot_retain).
  std::shared_ptr<RetainingSnapshotStore> retention = RetainingSnapshotStore::make(
      std::move(deps.snapshot_store), deps.config.snapshot_retain,
      [logger = deps.logger, id = deps.config.id](const std::string& line) {
        logger->log(LogLevel::kWarn, line, {{"server", id.value}});
      });
  deps.snapshot_store = retention;
  Result<std::optional<SnapshotMeta>> snapshot = restore_newest(deps);
  if (!snapshot.is_ok()) return snapshot.status();
  Result<Recovered> recovered = recover(*deps.log_store, *deps.stable_store, *snapshot);
  if (!recovered.is_ok()) return recovered.status();
  core::BootState boot;
  boot.hard_state = recovered->hard_state;
  boot.log_base_index = recovered->base_index;
  boot.log_base_term = recovered->base_term;
  boot.entries = std::move(recovered->entries);
  boot.applied = recovered->base_index;
  if (*snapshot) {
    boot.configuration = (*snapshot)->configuration;
    boot.configuration_index = (*snapshot)->configuration_index;
  }
  boot.snapshot_index = recovered->base_index;
  boot.snapshot_term = recovered->base_term;
  retention->set_applied(boot.applied);
  std::shared_ptr<RaftServer> server(new RaftServer(std::move(deps), std::move(retention),
                                                    std::move(boot), seed, *snapshot,
                                                    recovered->entries_read));
  Status started = server->start();
  if (!started.is_ok()) return started;
  return server;
}

}  // namespace runtime
}  // namespace keel
