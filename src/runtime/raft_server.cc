#include "runtime/raft_server.h"

#include <algorithm>
#include <utility>

#include "core/canary.h"
#include "core/codec.h"
#include "core/crc32c.h"
#include "runtime/core_config.h"
#include "runtime/keel_thread.h"
#include "runtime/restore_entry.h"

namespace keel::runtime {

namespace {

// Leaders' addresses a server keeps before its configuration names them
// (see on_frame): a few leaders in a row at most, in practice.
constexpr std::size_t kMaxLearnedAddresses = 64;

RaftState to_raft_state(core::Role role) {
  switch (role) {
    case core::Role::kFollower:
      return RaftState::kFollower;
    case core::Role::kPreCandidate:
      return RaftState::kPreCandidate;
    case core::Role::kCandidate:
      return RaftState::kCandidate;
    case core::Role::kLeader:
      return RaftState::kLeader;
  }
  return RaftState::kFollower;
}

// Forwarded reads are matched to their answers by id, and a leader may still
// hold the requests of this server's previous run: numbering from 1 again
// would let a late answer meant for the old run resolve a new read with an
// old read index. So each run starts at a random 64-bit id (never 0), and
// runs share no ids but by a chance of about one in 2^43 (a million reads
// per run).
std::uint64_t first_read_id(RaftDependencies& deps) {
#ifdef KEEL_CANARIES
  if (deps.config.canary == static_cast<std::uint8_t>(core::Canary::kReadIdReuseAfterRestart)) {
    return 1;
  }
#endif
  return deps.env->random_seed() | 1;
}

// Appends with entries are bulk; everything else is small and urgent and
// must not wait behind them (DESIGN §2.4).
Lane lane_of(const core::Message& message) {
  const bool bulk =
      (message.type == core::MessageType::kAppendRequest && !message.entries.empty()) ||
      message.type == core::MessageType::kSnapshotChunk;
  return bulk ? Lane::kReplication : Lane::kControl;
}

}  // namespace

// --- opening -----------------------------------------------------------------------

std::shared_ptr<Executor> RaftServer::loop_executor() {
  // Config::thread_policy: the loop runs where the frames are read, so that
  // stepping one (and writing the answer) wakes no other thread. Not under
  // an Env driven by its caller: the transport's thread keeps real time.
  if (deps_.config.thread_policy == ThreadPolicy::kShareWithTransport &&
      !deps_.env->driven_by_caller()) {
    if (auto io = deps_.transport->make_io_executor("keel-loop")) {
      loop_on_transport_ = true;
      return io;
    }
  }
  return deps_.env->make_executor("keel-loop");
}

std::shared_ptr<Executor> RaftServer::component_executor(const std::string& name,
                                                         bool never_blocks) {
  // Config::thread_policy: a component that never blocks shares the loop's
  // thread, so handing it work (and getting its results back) wakes nobody.
  if (never_blocks && deps_.config.thread_policy != ThreadPolicy::kThreadPerComponent) {
    if (loop_on_transport_) return deps_.transport->make_io_executor(name);
    return deps_.env->make_executor_sharing(name, *loop_inner_);
  }
  return deps_.env->make_executor(name);
}

RaftServer::RaftServer(RaftDependencies deps, std::shared_ptr<RetainingSnapshotStore> retention,
                       core::BootState boot, std::uint64_t seed,
                       std::optional<SnapshotMeta> restored, std::uint64_t entries_read)
    : deps_(std::move(deps)),
      loop_inner_(loop_executor()),
      loop_(loop_inner_),
      writer_executor_(component_executor("keel-writer", !deps_.log_store->may_block())),
      applier_executor_(component_executor("keel-apply", deps_.fsm->applies_quickly())),
      snapshot_executor_(deps_.env->make_executor("keel-snapshot")),
      transfer_executor_(deps_.env->make_executor("keel-transfer")),
      retention_(std::move(retention)),
      boot_applied_index_(boot.applied),
      boot_applied_term_(boot.snapshot_term),
      entries_read_at_open_(entries_read),
      observers_(make_marked_env(deps_.env), deps_.config.observer_queue_capacity,
                 deps_.config.max_subscriptions, deps_.logger, deps_.config.id),
      decode_limits_(to_decode_limits(deps_.config)),
      persisted_term_(boot.hard_state.term),
      persisted_vote_(boot.hard_state.vote),
      node_(to_core_config(deps_.config, seed), std::move(boot)),
      membership_(node_, deps_.config, [this] { return not_leader_status(); }),
      next_read_id_(first_read_id(deps_)),
      applied_(boot_applied_index_),
      last_snapshot_(std::move(restored)) {}

Status RaftServer::start() {
  // Stats agree with the stores from the moment open() returns; nothing else
  // touches the core yet (the transport starts below).
  publish();
  // The threads that run the loop, the writer and the applier run nothing
  // else: mark them once (shutdown() must not wait on them, see
  // keel_thread.h). An Env driven by its caller never waits anyway, and its
  // scheduler is left exactly as it was.
  if (!deps_.env->driven_by_caller()) {
    mark_threads_of(*loop_);
    mark_threads_of(*writer_executor_);
    mark_threads_of(*applier_executor_);
    mark_threads_of(*snapshot_executor_);
    mark_threads_of(*transfer_executor_);
  }
  std::weak_ptr<RaftServer> weak = weak_from_this();
  writer_ = std::make_shared<LogWriter>(
      deps_.log_store, deps_.stable_store, writer_executor_, deps_.config.max_write_batch_entries,
      [weak](WriteCompletion done) {
        if (auto self = weak.lock()) {
          self->loop_->post(
              [self, done = std::move(done)]() mutable { self->on_write_done(std::move(done)); });
        }
      },
      [env = deps_.env] { return env->now(); });
#ifdef KEEL_CANARIES
  writer_->set_canary(deps_.config.canary);
#endif
  Applier::Hooks applier_hooks;
  applier_hooks.on_applied = [weak, retention = retention_](Index index) {
    // At once, on the applier's thread: a snapshot the FSM captures next is
    // at most this index, and retention must count it as applied when it
    // commits (the loop hears of the index later).
    retention->set_applied(index);
    if (auto self = weak.lock()) self->loop_->post([self, index] { self->on_applied(index); });
  };
  applier_hooks.now = [env = deps_.env] { return env->now(); };
  applier_hooks.on_commands_applied = [metrics = deps_.metrics, server = deps_.config.id.value](
                                          std::size_t commands, Duration took) {
    metrics->add("keel_applied_commands_total", commands, {{"server", server}});
    metrics->observe("keel_apply_seconds", seconds(took), {{"server", server}});
  };
  applier_hooks.on_failed = [weak](const Status& failure) {
    if (auto self = weak.lock()) {
      self->loop_->post([self, failure] {
        if (!self->stopped_) self->fail(failure);
      });
    }
  };
  applier_hooks.on_restored = [weak](const SnapshotMeta& meta) {
    if (auto self = weak.lock()) {
      self->loop_->post([self, meta] {
        if (!self->stopped_) self->on_restored(meta);
      });
    }
  };
  applier_ =
      std::make_shared<Applier>(deps_.fsm, deps_.snapshot_store, applier_executor_,
                                boot_applied_index_, boot_applied_term_, std::move(applier_hooks));
#ifdef KEEL_CANARIES
  applier_->set_canary(deps_.config.canary);
#endif
  snapshotter_ = std::make_shared<Snapshotter>(
      deps_.snapshot_store, snapshot_executor_, [weak](Result<SnapshotMeta> result) {
        if (auto self = weak.lock()) {
          self->loop_->post([self, result = std::move(result)]() mutable {
            if (!self->stopped_) self->on_snapshot_done(std::move(result));
          });
        }
      });
  SnapshotTransfers::Hooks hooks;
  hooks.send = [weak](const core::Message& message) {
    if (auto self = weak.lock()) self->send_message(message);
  };
  hooks.post_to_loop = [weak](std::function<void()> task) {
    if (auto self = weak.lock()) {
      self->loop_->post([self, task = std::move(task)] {
        if (!self->stopped_ && !self->failed_) task();
      });
    }
  };
  hooks.post_to_loop_after = [weak](Duration delay, std::function<void()> task) {
    if (auto self = weak.lock()) {
      self->post_timer(delay, [task = std::move(task)](RaftServer& s) {
        if (!s.failed_) task();
      });
    }
  };
  hooks.send_failed = [weak](ServerId peer) {
    if (auto self = weak.lock()) {
      self->node_.report_snapshot_failed(peer);
      self->schedule_flush();
    }
  };
  hooks.received = [weak](const core::Message& install, const SnapshotMeta& meta,
                          Duration started) {
    if (auto self = weak.lock()) self->on_snapshot_received(install, meta, started);
  };
  hooks.log = [weak](const std::string& line) {
    if (auto self = weak.lock()) self->log_line(LogLevel::kWarn, line);
  };
  hooks.now = [env = deps_.env] { return env->now(); };
  transfers_ = std::make_unique<SnapshotTransfers>(
      deps_.config.id, deps_.config, deps_.snapshot_store, transfer_executor_, std::move(hooks));
  Status started = deps_.transport->start(
      [weak](const std::string& frame) {
        if (auto self = weak.lock()) self->on_frame(frame);
      },
      loop_);
  if (!started.is_ok()) {
    loop_->stop();
    writer_executor_->stop();
    applier_executor_->stop();
    snapshot_executor_->stop();
    transfer_executor_->stop();
    return started;
  }
  for (auto& observer : deps_.observers) {
    // open() checked the count against max_subscriptions.
    if (!observers_.subscribe(std::move(observer)).is_ok()) std::abort();
  }
  deps_.observers.clear();
  ticks_epoch_ = deps_.env->now();
  loop_->post([self = shared_from_this()] {
    self->publish();
    self->schedule_flush();
  });
  post_timer(deps_.config.heartbeat_interval, [](RaftServer& s) { s.on_tick(); });
  post_timer(deps_.config.snapshot_interval, [](RaftServer& s) { s.on_snapshot_timer(); });
  return Status::ok();
}

// --- posting -------------------------------------------------------------------------

bool RaftServer::post_to_loop(std::function<void(RaftServer&)> task, std::function<void()> refuse) {
  std::lock_guard lock(shutdown_mutex_);
  if (stopping_) return false;
  loop_->post([self = shared_from_this(), task = std::move(task), refuse = std::move(refuse)] {
    if (!self->stopped_ && !self->failed_) {
      self->catch_up_ticks();
      task(*self);
    } else if (refuse) {
      refuse();
    }
  });
  return true;
}

void RaftServer::post_timer(Duration delay, std::function<void(RaftServer&)> task) {
  if (delay.count() < 0) delay = Duration{0};
  std::weak_ptr<RaftServer> weak = weak_from_this();
  loop_->post_after(delay, [weak, task = std::move(task)] {
    auto self = weak.lock();
    if (self && !self->stopped_) task(*self);
  });
}

Duration RaftServer::deadline_after(Duration timeout) const {
  // Saturating: a timeout of Duration::max() means "no deadline", not a wrap.
  const Duration now = deps_.env->now();
  return timeout > Duration::max() - now ? Duration::max() : now + timeout;
}

namespace {

// A deadline that has already passed: the call is refused up front, and
// certainly did nothing.
Status expired_timeout() {
  return Status::timeout("the timeout was not positive: nothing was done");
}

}  // namespace

void RaftServer::schedule_flush() {
  if (flush_scheduled_ || stopped_) return;
  flush_scheduled_ = true;
  loop_->post([self = shared_from_this()] {
    self->flush_scheduled_ = false;
    if (!self->stopped_) self->flush();
  });
}

// --- inputs on the loop -------------------------------------------------------------

void RaftServer::on_tick() {
  catch_up_ticks();
  if (node_.is_leader()) last_contact_ = deps_.env->now();
  check_peer_contact();
  report_gauges();
  reissue_forwarded_reads(/*leader_changed=*/false);
  retry_parked_reads();
  transfers_->check_idle();
  schedule_flush();
  post_timer(deps_.config.heartbeat_interval, [](RaftServer& s) { s.on_tick(); });
}

void RaftServer::catch_up_ticks() {
  const auto due = static_cast<std::uint64_t>((deps_.env->now() - ticks_epoch_) /
                                              deps_.config.heartbeat_interval);
  if (due <= ticks_done_) return;
  // After a long stall, two election timeouts of ticks expire every lease,
  // vote protection and check-quorum window; the rest can be skipped.
  const std::uint64_t cap = 2 * (deps_.config.election_timeout / deps_.config.heartbeat_interval);
  const std::uint64_t run = std::min(due - ticks_done_, cap);
  for (std::uint64_t i = 0; i < run; ++i) node_.tick();
  ticks_done_ = due;
}

void RaftServer::on_frame(const std::string& frame) {
  // On the loop (the transport delivers there: no thread hop per frame).
  if (stopped_ || failed_) return;
  Result<core::Message> decoded = core::decode(frame, decode_limits_);
  if (!decoded.is_ok()) {
    // Hostile or corrupt: dropped and counted (stats().frames_rejected); the
    // first one is also reported, later ones would only flood the log.
    if (frames_rejected_.fetch_add(1) == 0) {
      log_line(LogLevel::kWarn, "drops a frame it cannot decode: " + decoded.status().to_string());
    }
    return;
  }
  core::Message message = std::move(decoded).value();
  if (message.to != deps_.config.id || message.from.is_zero()) {
    frames_rejected_.fetch_add(1);  // meant for another server
    return;
  }
  // From any server of the cluster (the transport checks the cluster id):
  // the core judges who may do what (a non-voter's vote request, a response
  // from a server it does not replicate to). A leader a new server does not
  // know yet says where to answer.
  if (!message.from_address.empty() && node_.peer(message.from) == nullptr) {
    if (learned_addresses_.size() >= kMaxLearnedAddresses) {
      learned_addresses_.erase(learned_addresses_.begin());
    }
    learned_addresses_[message.from] = message.from_address;
  }
#ifdef KEEL_CANARIES
  // The canary steps frames without catching up: only the next tick does.
  const bool catch_up_first =
      deps_.config.canary != static_cast<std::uint8_t>(core::Canary::kStepBeforeTickCatchUp);
#else
  const bool catch_up_first = true;
#endif
  if (catch_up_first) catch_up_ticks();
  if (message.type == core::MessageType::kSnapshotChunk) {
    transfers_->on_chunk(message, node_.term(), node_.leader());
    return;
  }
  if (message.type == core::MessageType::kSnapshotChunkResponse) {
    if (node_.is_leader()) transfers_->on_chunk_response(message);
    return;
  }
  if (message.type == core::MessageType::kSnapshotRequest) {
    // Made by a shell for its own core once it holds the whole snapshot;
    // from the network it would have the core install a snapshot it never
    // received.
    frames_rejected_.fetch_add(1);
    return;
  }
  observe_peer(message);
  node_.step(message);
  const bool from_leader = message.type == core::MessageType::kAppendRequest ||
                           message.type == core::MessageType::kHeartbeatRequest;
  if (from_leader && node_.leader() == message.from) last_contact_ = deps_.env->now();
  schedule_flush();
}

void RaftServer::flush() {
  for (int guard = 0; node_.has_ready() && guard < 64; ++guard) {
    core::Ready ready = node_.ready();
    handle_ready(ready);
    if (stopped_) return;
  }
  if (node_.has_ready()) schedule_flush();  // yield to other inputs, then go on
  if (node_.is_leader()) {
    transfers_->release_delivered([this](ServerId peer, Index index) {
      const core::Progress* progress = node_.progress(peer);
      return progress == nullptr || progress->match_index >= index;
    });
  }
  if (node_.is_leader() && node_.committed_in_current_term()) retry_parked_reads();
  if (transfer_) check_transfer();
  // The core may also learn it was removed after the entry committed (its
  // leader's word comes with a later heartbeat, core/message.h).
  if (node_.committed_configuration_index() != observed_configuration_index_ ||
      node_.removed() != removed_) {
    observe_configuration(node_.configuration_state());
  }
  // Stats first, then the observations: a kLeaderReady observer that reads
  // stats() at once sees the applied index and ready term it announces. A
  // membership call resolves after them too: configuration() agrees.
  publish();
  publish_observations();
  check_membership();
  arm_commit_notice();
}

void RaftServer::arm_commit_notice() {
  if (commit_notice_armed_ || stopped_ || !node_.commit_notice_due()) return;
  commit_notice_armed_ = true;
  post_timer(deps_.config.commit_notice_delay, [](RaftServer& s) {
    s.commit_notice_armed_ = false;
    s.node_.send_commit_notices();
    s.flush();
  });
}

void RaftServer::handle_ready(core::Ready& ready) {
  for (const core::Message& message : ready.messages) send_message(message);
  // Term and vote must be durable before anything that depends on them
  // leaves; the commit index need not be (a restarted server learns it
  // again). Writing the hard state for every commit advance would cost the
  // stable store's syncs on almost every group commit.
  std::optional<core::HardState> hard_state = ready.hard_state;
  if (hard_state && hard_state->term == persisted_term_ && hard_state->vote == persisted_vote_) {
    hard_state.reset();
  } else if (hard_state) {
    persisted_term_ = hard_state->term;
    persisted_vote_ = hard_state->vote;
  }
  const bool must_persist =
      hard_state.has_value() || !ready.entries.empty() || ready.snapshot.has_value();
  if (must_persist || (!ready.messages_after_persist.empty() && writes_outstanding_ > 0)) {
    // Through the writer even when only messages wait: they must not overtake
    // an earlier write they depend on (a vote reply after its term change).
    if (ready.snapshot && !install_snapshot(*ready.snapshot)) return;  // failed: stopping
    ++writes_outstanding_;
    writer_->submit(WriteJob{hard_state, std::move(ready.entries),
                             std::move(ready.messages_after_persist), ready.snapshot,
                             std::nullopt});
  } else {
    for (const core::Message& message : ready.messages_after_persist) send_message(message);
  }
  if (!ready.committed_entries.empty()) hand_to_applier(std::move(ready.committed_entries));
  handle_read_states(ready.read_states);
  handle_events(ready.events);
}

void RaftServer::send_message(const core::Message& message) {
  if (message.type == core::MessageType::kSnapshotRequest) {
    // The core wants the follower sent a snapshot: the transfer carries the
    // bytes, and the follower's core hears of it once they are durable. A
    // request that waited for a write while this server stepped down is
    // dropped (a stale transfer would hold compaction back).
    if (node_.is_leader() && message.term == node_.term()) transfers_->start_sending(message);
    return;
  }
  std::optional<Server> to = address_of(message.to);
  if (!to) return;  // nobody knows where: it asks again, or learns it from the log
  if (message.type == core::MessageType::kVoteRequest ||
      message.type == core::MessageType::kPreVoteRequest) {
    // Elections are rare, and a voter may know nobody yet (a new server a
    // joint change made a voter at once, before any leader reached it): a
    // candidate always says where to answer.
    if (const Server* self = node_.configuration().find(deps_.config.id)) {
      core::Message announced = message;
      announced.from_address = self->address;
      deps_.transport->send(*to, lane_of(message), core::encode(announced));
      return;
    }
  }
  if (node_.is_leader()) {
    // A follower that never answered, or has not lately (it may have
    // restarted and forgotten an address its configuration lacks), may not
    // know this leader: tell it where to answer.
    const core::Progress* progress = node_.progress(message.to);
    const Server* self = node_.configuration().find(deps_.config.id);
    if (progress != nullptr && (progress->match_index.is_zero() || !progress->recent_active) &&
        self != nullptr) {
      core::Message announced = message;
      announced.from_address = self->address;
      deps_.transport->send(*to, lane_of(message), core::encode(announced));
      return;
    }
  }
  deps_.transport->send(*to, lane_of(message), core::encode(message));
}

std::optional<Server> RaftServer::address_of(ServerId peer) const {
  if (const Server* server = node_.peer(peer)) return *server;
  auto learned = learned_addresses_.find(peer);
  if (learned != learned_addresses_.end()) {
    return Server{peer, learned->second, Suffrage::kVoter};
  }
  return std::nullopt;
}

void RaftServer::on_write_done(WriteCompletion completion) {
  catch_up_ticks();
  if (!completion.status.is_ok()) {
    // Fail-stop: the after-persist messages promise durability we no longer
    // have, so none of them may leave.
    fail(completion.status);
    return;
  }
  ++log_writes_;
  entries_written_ += completion.entries_written;
  deps_.metrics->observe("keel_log_write_seconds", seconds(completion.took),
                         {{"server", deps_.config.id.value}});
  deps_.metrics->add("keel_log_entries_written_total", completion.entries_written,
                     {{"server", deps_.config.id.value}});
  for (WriteJob& job : completion.jobs) {
    --writes_outstanding_;
    for (const core::Message& message : job.after_persist) send_message(message);
    if (!job.entries.empty()) {
      node_.on_persisted(job.entries.back().index, job.entries.back().term);
    } else if (job.install) {
      node_.on_persisted(job.install->index, job.install->term);
    }
    if (job.hard_state) node_.on_term_persisted(job.hard_state->term);
  }
  schedule_flush();
}

void RaftServer::hand_to_applier(std::vector<LogEntry> entries) {
  std::vector<ApplyItem> items;
  items.reserve(entries.size());
  for (LogEntry& entry : entries) {
    bytes_since_snapshot_ += entry_size_bytes(entry);
    ApplyItem item{std::move(entry), std::nullopt, std::nullopt, Index{}};
    auto it = proposals_.find(item.entry.index);
    if (it != proposals_.end()) {
      if (it->second.term == item.entry.term) {
        item.apply = it->second.apply;
        item.barrier = it->second.barrier;
        item.overtaken_by = it->second.overtaken_by;
        it->second.handed_to_applier = true;
      } else {
        // Another leader's entry committed at this index: ours never will.
        Status lost = Status::not_leader(node_.leader());
        if (it->second.apply) it->second.apply->resolve(lost);
        if (it->second.barrier) it->second.barrier->resolve(lost);
        erase_proposal(it);
      }
    }
    items.push_back(std::move(item));
  }
  applier_->submit(std::move(items));
}

void RaftServer::on_applied(Index index) {
  if (failed_) return;  // the applier failed: nothing it reports is trusted
  catch_up_ticks();
  if (installing_ && installing_->meta.index == index) {
    // The FSM restored the leader's snapshot.
    ++snapshots_installed_;
    last_snapshot_ = installing_->meta;
    const Duration took = deps_.env->now() - installing_->started;
    observe_snapshot(Observation::Kind::kSnapshotInstalled, installing_->meta, took);
    deps_.metrics->add("keel_snapshots_total", 1,
                       {{"server", deps_.config.id.value}, {"kind", "installed"}});
    deps_.metrics->observe("keel_snapshot_seconds", seconds(took),
                           {{"server", deps_.config.id.value}, {"kind", "installed"}});
    installing_.reset();
    bytes_since_snapshot_ = 0;
  }
  if (index <= applied_) return;
  applied_ = index;
  node_.on_applied(index);
  // Before the proposals go: a restore's future resolves there.
  while (!restored_.empty() && restored_.front().index <= index) finish_restored();
  for (auto it = proposals_.begin(); it != proposals_.end() && it->first <= index;) {
    if (it->second.overtaken_until > index) {
      ++it;  // the applier tells it once its restore's run is applied
      continue;
    }
    it = erase_proposal(it);
  }
  if (restoring_ && restoring_->last <= index) restoring_.reset();
  resolve_apply_waiters();
  // Besides the interval: a log that grows faster than the interval would
  // otherwise overshoot the threshold by what one interval applies.
  maybe_snapshot();
  schedule_flush();
}

void RaftServer::handle_events(const std::vector<core::Event>& events) {
  for (const core::Event& event : events) {
    Observation observation;
    observation.term = event.term;
    observation.state = to_raft_state(event.role);
    switch (event.kind) {
      case core::EventKind::kRoleChanged:
        observation.kind = Observation::Kind::kStateChanged;
        if (event.role == core::Role::kCandidate) {
          deps_.metrics->add("keel_elections_total", 1, {{"server", deps_.config.id.value}});
        }
        if (event.role != core::Role::kLeader) {
          abandon_proposals("leadership lost");
          ready_term_ = Term{};
          transfers_->stop_sending();
          peer_contact_.stop();
        } else {
          peer_contact_.start(other_servers(), deps_.env->now());
          peer_contact_index_ = node_.latest_configuration_index();
        }
        break;
      case core::EventKind::kLeaderChanged:
        observation.kind = Observation::Kind::kLeaderChanged;
        deps_.metrics->add("keel_leader_changes_total", 1, {{"server", deps_.config.id.value}});
        observation.leader = leader_info(event.leader);
        reissue_forwarded_reads(/*leader_changed=*/true);
        break;
      case core::EventKind::kLeaderReady:
        ready_term_ = event.term;
        observation.kind = Observation::Kind::kLeaderReady;
        observation.leader = leader_info(event.leader);
        observation.index = event.index;
        break;
    }
    // Delivered after the flush publishes the stats that agree with it.
    unpublished_observations_.push_back(observation);
  }
}

void RaftServer::publish_observations() {
  for (const Observation& observation : unpublished_observations_) observers_.publish(observation);
  unpublished_observations_.clear();
}

// --- proposals ----------------------------------------------------------------------

void RaftServer::propose(EntryType type, Payload data, std::optional<Promise<ApplyResult>> apply,
                         std::optional<Promise<Index>> barrier, Duration deadline) {
  auto refuse = [&](const Status& status) {
    if (apply) apply->resolve(status);
    if (barrier) barrier->resolve(status);
  };
  if (proposals_.size() >= deps_.config.max_pending_proposals) {
    refuse(Status::resource_exhausted("too many proposals waiting (max_pending_proposals)"));
    return;
  }
  Result<Index> index = node_.propose(type, std::move(data));
  if (!index.is_ok()) {
    refuse(index.status().code() == StatusCode::kNotLeader ? not_leader_status() : index.status());
    return;
  }
  const Term term = node_.term();
  const Deadlines::iterator at = proposal_deadlines_.emplace(deadline, *index);
  proposals_.emplace(
      *index, Proposal{term, false, std::move(apply), std::move(barrier), at, Index{}, Index{}});
  arm_proposal_deadline(deadline);
  schedule_flush();
}

void RaftServer::arm_proposal_deadline(Duration deadline) {
  if (deadline >= armed_proposal_deadline_) return;  // an earlier timer will look again
  armed_proposal_deadline_ = deadline;
  post_timer(deadline - deps_.env->now(), [](RaftServer& s) { s.expire_due_proposals(); });
}

void RaftServer::expire_due_proposals() {
  armed_proposal_deadline_ = Duration::max();
  const Duration now = deps_.env->now();
  // The entries are in the log: they may still commit. The caller must not
  // retry blindly (that could apply a command twice).
  const Status unknown = Status::outcome_unknown("deadline passed; the command may still commit");
  while (!proposal_deadlines_.empty() && proposal_deadlines_.begin()->first <= now) {
    auto it = proposals_.find(proposal_deadlines_.begin()->second);
    if (it->second.apply) it->second.apply->resolve(unknown);
    if (it->second.barrier) it->second.barrier->resolve(unknown);
    erase_proposal(it);
  }
  if (!proposal_deadlines_.empty()) arm_proposal_deadline(proposal_deadlines_.begin()->first);
}

std::map<Index, RaftServer::Proposal>::iterator RaftServer::erase_proposal(
    std::map<Index, Proposal>::iterator it) {
  proposal_deadlines_.erase(it->second.deadline);
  return proposals_.erase(it);
}

void RaftServer::abandon_proposals(const char* why) {
  restoring_.reset();  // its run is in the log or not: the applier will see
  const Status unknown =
      Status::outcome_unknown(std::string(why) + "; the command may still commit");
  for (auto it = proposals_.begin(); it != proposals_.end();) {
    if (it->second.handed_to_applier) {
      ++it;  // committed: the applier resolves it
      continue;
    }
    if (it->second.apply) it->second.apply->resolve(unknown);
    if (it->second.barrier) it->second.barrier->resolve(unknown);
    it = erase_proposal(it);
  }
}

// --- reads --------------------------------------------------------------------------

void RaftServer::track_read(ReadKind kind, Promise<Index> promise, Duration deadline) {
  if (reads_.size() >= deps_.config.max_pending_reads) {
    promise.resolve(Status::resource_exhausted("too many reads waiting (max_pending_reads)"));
    return;
  }
  const std::uint64_t id = next_read_id_++;
  const ReadDeadlines::iterator at = read_deadlines_.emplace(deadline, id);
  reads_.emplace(id, PendingRead{kind, std::move(promise), false, Duration{0}, std::nullopt, at});
  arm_read_deadline(deadline);
  start_read(id);
}

void RaftServer::arm_read_deadline(Duration deadline) {
  if (deadline >= armed_read_deadline_) return;  // an earlier timer will look again
  armed_read_deadline_ = deadline;
  post_timer(deadline - deps_.env->now(), [](RaftServer& s) { s.expire_due_reads(); });
}

void RaftServer::expire_due_reads() {
  armed_read_deadline_ = Duration::max();
  const Duration now = deps_.env->now();
  while (!read_deadlines_.empty() && read_deadlines_.begin()->first <= now) {
    expire_read(reads_.find(read_deadlines_.begin()->second));
  }
  if (!read_deadlines_.empty()) arm_read_deadline(read_deadlines_.begin()->first);
}

void RaftServer::erase_read(std::map<std::uint64_t, PendingRead>::iterator it) {
  read_deadlines_.erase(it->second.deadline);
  reads_.erase(it);
}

void RaftServer::start_read(std::uint64_t id) {
  auto it = reads_.find(id);
  if (it == reads_.end()) return;
  PendingRead& read = it->second;
  if (read.kind != ReadKind::kLinearizable && !node_.is_leader()) {
    read.promise.resolve(not_leader_status());
    erase_read(it);
    return;
  }
  if (read.kind == ReadKind::kLease) {
    catch_up_ticks();  // the lease must be judged against the present, not a stalled tick
    Result<Index> index = node_.lease_read_index();
    if (!index.is_ok()) {
      read.promise.resolve(index.status());
      erase_read(it);
      return;
    }
    wait_for_apply(id, *index);
    return;
  }
  Status status = node_.read_index(id);
  if (status.is_ok()) {
    read.in_core = true;
    read.issued_at = deps_.env->now();
    schedule_flush();
  } else if (status.code() == StatusCode::kUnavailable) {
    parked_reads_.push_back(id);  // no leader yet, or its term-start entry is not committed
  } else {
    read.promise.resolve(status);
    erase_read(it);
  }
}

void RaftServer::retry_parked_reads() {
  if (parked_reads_.empty()) return;
  std::vector<std::uint64_t> parked;
  parked.swap(parked_reads_);
  for (std::uint64_t id : parked) start_read(id);
}

void RaftServer::reissue_forwarded_reads(bool leader_changed) {
  // A read forwarded to the leader waits for its answer; if the request or
  // the answer was lost, or the leader changed, ask (the new leader) again.
  // A late answer to the first request finds the read gone and is ignored.
  if (node_.is_leader()) return;
  const Duration now = deps_.env->now();
  // A lost request or answer costs a couple of heartbeats, not an election
  // timeout; the leader answers a repeated request once (see the core).
  const Duration retry_after =
      deps_.config.forwarded_read_retry_heartbeats * deps_.config.heartbeat_interval;
  for (auto& [id, read] : reads_) {
    if (!read.in_core) continue;
    if (leader_changed || now - read.issued_at >= retry_after) {
      read.in_core = false;
      parked_reads_.push_back(id);
    }
  }
}

void RaftServer::handle_read_states(const std::vector<core::ReadState>& states) {
  for (const core::ReadState& state : states) {
    auto it = reads_.find(state.request_id);
    if (it == reads_.end() || !it->second.in_core) continue;  // expired or re-asked meanwhile
    it->second.in_core = false;
    if (!state.status.is_ok()) {
      // Leadership moved or the leader was not ready: ask again (on the next
      // tick or term-start commit) until the deadline.
      parked_reads_.push_back(state.request_id);
      continue;
    }
    if (it->second.kind == ReadKind::kVerifyLeader) {
      it->second.promise.resolve(state.index);
      erase_read(it);
    } else {
      wait_for_apply(state.request_id, state.index);
    }
  }
}

void RaftServer::wait_for_apply(std::uint64_t id, Index index) {
  auto it = reads_.find(id);
  if (it == reads_.end()) return;
  if (applied_ >= index) {
    it->second.promise.resolve(applied_);
    erase_read(it);
    return;
  }
  it->second.wait_index = index;
  apply_waiters_.emplace(index, id);
}

void RaftServer::resolve_apply_waiters() {
  while (!apply_waiters_.empty() && apply_waiters_.begin()->first <= applied_) {
    auto it = reads_.find(apply_waiters_.begin()->second);
    if (it != reads_.end()) {
      it->second.promise.resolve(applied_);
      erase_read(it);
    }
    apply_waiters_.erase(apply_waiters_.begin());
  }
}

void RaftServer::expire_read(std::map<std::uint64_t, PendingRead>::iterator it) {
  const std::uint64_t id = it->first;
  const bool confirmed = it->second.wait_index.has_value();
  it->second.promise.resolve(
      Status::timeout(confirmed ? "deadline passed before the FSM caught up"
                                : "deadline passed before leadership was confirmed"));
  if (confirmed) {
    // Drop its place among the waiters too, so they stay bounded by reads_.
    auto [first, last] = apply_waiters_.equal_range(*it->second.wait_index);
    for (auto w = first; w != last; ++w) {
      if (w->second == id) {
        apply_waiters_.erase(w);
        break;
      }
    }
  }
  erase_read(it);
}

// --- snapshots ----------------------------------------------------------------------

void RaftServer::log_line(LogLevel level, const std::string& line) const {
  deps_.logger->log(level, line, {{"server", deps_.config.id.value}});
}

void RaftServer::on_snapshot_timer() {
  post_timer(deps_.config.snapshot_interval, [](RaftServer& s) { s.on_snapshot_timer(); });
  maybe_snapshot();
}

void RaftServer::maybe_snapshot() {
  if (snapshot_in_progress_ || failed_ || deps_.env->now() < snapshot_retry_at_) return;
  const Index since = last_snapshot_ ? last_snapshot_->index : Index{0};
  if (applied_ <= since) return;
  if (applied_ - since >= deps_.config.snapshot_threshold_entries ||
      bytes_since_snapshot_ >= deps_.config.snapshot_threshold_bytes) {
    start_snapshot();
  }
}

void RaftServer::start_snapshot() {
  snapshot_in_progress_ = true;
  snapshot_started_ = deps_.env->now();
  bytes_since_snapshot_ = 0;
#ifdef KEEL_CANARIES
  if (deps_.config.canary == static_cast<std::uint8_t>(core::Canary::kCompactPastSnapshot)) {
    // The snapshot will reflect at least applied_: cut the log now, as if
    // it were durable already.
    const std::optional<Term> term = node_.log().term_at(applied_);
    if (term) {
      node_.on_snapshot(applied_, *term);
      SnapshotMeta claimed;
      claimed.index = applied_;
      claimed.term = *term;
      compact_after(claimed);
    }
  }
#endif
  std::weak_ptr<RaftServer> weak = weak_from_this();
  std::shared_ptr<Snapshotter> snapshotter = snapshotter_;
  const Index newest = last_snapshot_ ? last_snapshot_->index : Index{0};
  // On the applier's executor, between two applies: the FSM's view and the
  // entry it reflects. The slow part, persist, goes to the snapshotter.
  // (The loop's applied index may lag the applier's: only the applier
  // knows whether anything was applied since the newest snapshot.)
  applier_->capture([weak, snapshotter, newest](Captured captured) {
    if (captured.snapshot.is_ok() && *captured.snapshot == nullptr) {
      captured.snapshot = Status::invalid_argument("Fsm::snapshot() returned no snapshot");
    }
    if (captured.snapshot.is_ok() && !captured.index.is_zero() && captured.index <= newest) {
      (*captured.snapshot)->release();
      if (auto self = weak.lock()) {
        self->loop_->post([self] {
          if (!self->stopped_) self->on_snapshot_unchanged();
        });
      }
      return;
    }
    if (!captured.snapshot.is_ok() || captured.index.is_zero()) {
      Status why = captured.snapshot.is_ok()
                       ? Status::unavailable("nothing is applied yet: there is nothing to snapshot")
                       : captured.snapshot.status();
      if (captured.snapshot.is_ok()) (*captured.snapshot)->release();
      if (auto self = weak.lock()) {
        self->loop_->post([self, why] {
          if (!self->stopped_) self->on_snapshot_done(why);
        });
      }
      return;
    }
    // The configuration in force at the captured entry is the loop's to
    // tell (the core keeps every one the log still holds).
    auto snapshot = std::shared_ptr<FsmSnapshot>(std::move(captured.snapshot).value());
    auto self = weak.lock();
    if (!self) {
      snapshot->release();
      return;
    }
    self->loop_->post(
        [self, snapshotter, snapshot, index = captured.index, term = captured.term]() mutable {
          if (self->stopped_ || index < self->node_.log().base_index()) {
            // Stopped, or a newer snapshot was installed meanwhile: this one
            // would only be older than what the store holds.
            snapshot->release();
            if (!self->stopped_) self->on_snapshot_unchanged();
            return;
          }
          SnapshotMeta meta;
          meta.index = index;
          meta.term = term;
          const auto& [configuration_index, configuration] = self->node_.configuration_at(index);
          meta.configuration = configuration;
          meta.configuration_index = configuration_index;
          snapshotter->persist(std::move(snapshot), std::move(meta));
        });
  });
}

void RaftServer::observe_snapshot(Observation::Kind kind, const SnapshotMeta& meta,
                                  Duration duration) {
  Observation observation;
  observation.kind = kind;
  observation.state = to_raft_state(node_.role());
  observation.term = node_.term();
  observation.index = meta.index;
  observation.snapshot = meta;
  observation.duration = duration;
  unpublished_observations_.push_back(std::move(observation));
}

void RaftServer::resolve_snapshot_waiters(const Result<SnapshotMeta>& result) {
  std::vector<Promise<SnapshotMeta>> waiters;
  waiters.swap(snapshot_waiters_);
  for (auto& waiter : waiters) waiter.resolve(result);
}

void RaftServer::on_snapshot_unchanged() {
  // Nothing applied since the newest snapshot: that one is the answer.
  snapshot_in_progress_ = false;
  resolve_snapshot_waiters(*last_snapshot_);
}

void RaftServer::on_snapshot_done(Result<SnapshotMeta> result) {
  snapshot_in_progress_ = false;
  if (!result.is_ok()) {
    ++snapshot_failures_;
    // Automatic snapshots wait an interval before trying again.
    snapshot_retry_at_ = deps_.env->now() + deps_.config.snapshot_interval;
    log_line(LogLevel::kWarn, "could not take a snapshot: " + result.status().to_string());
    publish();  // stats agree with the outcome before anyone hears of it
    resolve_snapshot_waiters(result.status());
    return;
  }
  const SnapshotMeta& meta = *result;
  ++snapshots_taken_;
  last_snapshot_duration_ = deps_.env->now() - snapshot_started_;
  deps_.metrics->add("keel_snapshots_total", 1,
                     {{"server", deps_.config.id.value}, {"kind", "taken"}});
  deps_.metrics->observe("keel_snapshot_seconds", seconds(last_snapshot_duration_),
                         {{"server", deps_.config.id.value}, {"kind", "taken"}});
  deps_.metrics->observe("keel_snapshot_bytes", static_cast<double>(meta.size_bytes),
                         {{"server", deps_.config.id.value}});
  if (!last_snapshot_ || meta.index > last_snapshot_->index) last_snapshot_ = meta;
  node_.on_snapshot(meta.index, meta.term);
  compact_after(meta);
  observe_snapshot(Observation::Kind::kSnapshotTaken, meta, last_snapshot_duration_);
  publish();
  resolve_snapshot_waiters(meta);
  schedule_flush();
}

// Cuts the log after a durable snapshot, keeping trailing_log_entries before
// it, and never past a snapshot still being sent (the follower continues
// from the log once it holds that one).
void RaftServer::compact_after(const SnapshotMeta& meta, bool keep_trailing) {
  const std::uint64_t trailing = keep_trailing ? deps_.config.trailing_log_entries : 0;
  Index through = meta.index.value > trailing ? Index{meta.index.value - trailing} : Index{0};
  if (std::optional<Index> sending = transfers_->lowest_index_sent()) {
    through = std::min(through, *sending);
  }
  if (through <= node_.log().base_index()) return;
  Status compacted = node_.compact(through);
  if (!compacted.is_ok()) {
    log_line(LogLevel::kWarn, "does not compact its log: " + compacted.to_string());
    return;
  }
  ++writes_outstanding_;
  writer_->submit(WriteJob{std::nullopt, {}, {}, std::nullopt, through});
}

void RaftServer::on_snapshot_received(const core::Message& install, const SnapshotMeta& meta,
                                      Duration started) {
  // The whole snapshot is durable here: the core decides whether to install
  // it (its log conflicts or ends before it) or to keep its log (rule 7).
  received_snapshots_[meta.index] = ReceivedSnapshot{meta, started};
  if (!last_snapshot_ || meta.index > last_snapshot_->index) last_snapshot_ = meta;
  catch_up_ticks();
  node_.step(install);
  schedule_flush();
}

bool RaftServer::install_snapshot(const core::SnapshotInstall& install) {
  auto it = received_snapshots_.find(install.index);
  if (it == received_snapshots_.end()) {
    // Nothing of this Ready may be carried out: its write would reset the
    // log store with no snapshot behind it.
    fail(Status::corruption("the core installs snapshot " + std::to_string(install.index.value) +
                            ", which this server never received"));
    return false;
  }
  installing_ = it->second;
  received_snapshots_.erase(received_snapshots_.begin(), std::next(it));
  // In order with the entries: everything handed over before is applied
  // first, then the FSM takes the snapshot's state.
  applier_->restore(installing_->meta.id, install.index, install.term);
  return true;
}

Future<SnapshotMeta> RaftServer::snapshot(Duration timeout) {
  if (timeout <= Duration::zero()) return Future<SnapshotMeta>::ready(expired_timeout());
  Promise<SnapshotMeta> promise;
  const Duration deadline = deadline_after(timeout);
  auto refuse = [promise] { promise.resolve(Status::shutdown()); };
  if (!post_to_loop(
          [promise, deadline](RaftServer& s) {
            if (s.snapshot_in_progress_) {
              promise.resolve(Status::unavailable("a snapshot is being taken"));
              return;
            }
            s.snapshot_waiters_.push_back(promise);
            s.post_timer(deadline - s.deps_.env->now(), [promise](RaftServer&) {
              promise.resolve(Status::timeout("the snapshot was not durable before the deadline"));
            });
            s.start_snapshot();
          },
          refuse)) {
    refuse();
  }
  return promise.future();
}

// --- metrics --------------------------------------------------------------------------

double RaftServer::seconds(Duration d) { return std::chrono::duration<double>(d).count(); }

// Once a heartbeat interval: where this server stands and, as leader, how
// far behind each follower is and how many appends it has in flight.
void RaftServer::report_gauges() {
  MetricsSink& metrics = *deps_.metrics;
  const std::uint64_t server = deps_.config.id.value;
  metrics.set("keel_term", static_cast<double>(node_.term().value), {{"server", server}});
  metrics.set("keel_commit_index", static_cast<double>(node_.commit_index().value),
              {{"server", server}});
  metrics.set("keel_applied_index", static_cast<double>(applied_.value), {{"server", server}});
  metrics.set("keel_last_index", static_cast<double>(node_.log().last_index().value),
              {{"server", server}});
  metrics.set("keel_is_leader", node_.is_leader() ? 1.0 : 0.0, {{"server", server}});
  // Per peer only while leading, and only for the configuration's servers:
  // a series this server stops reporting (it stepped down, the peer left)
  // is set to 0 once, so that no dashboard shows an old leader's lag.
  std::set<ServerId> reported;
  if (node_.is_leader()) {
    const Index last = node_.log().last_index();
    for (ServerId peer : other_servers()) {
      const core::Progress* progress = node_.progress(peer);
      if (progress == nullptr) continue;
      const double lag =
          static_cast<double>(last.value - std::min(last, progress->match_index).value);
      metrics.set("keel_replication_lag_entries", lag, {{"server", server}, {"peer", peer.value}});
      metrics.set("keel_inflight_appends", static_cast<double>(progress->inflights.count()),
                  {{"server", server}, {"peer", peer.value}});
      reported.insert(peer);
    }
  }
  for (ServerId peer : peers_reported_) {
    if (reported.contains(peer)) continue;
    metrics.set("keel_replication_lag_entries", 0.0, {{"server", server}, {"peer", peer.value}});
    metrics.set("keel_inflight_appends", 0.0, {{"server", server}, {"peer", peer.value}});
  }
  peers_reported_ = std::move(reported);
}

// --- observations about other servers -----------------------------------------------

std::vector<ServerId> RaftServer::other_servers() const {
  std::vector<ServerId> peers;
  for (const Server& server : node_.configuration().servers) {
    if (server.id != deps_.config.id) peers.push_back(server.id);
  }
  return peers;
}

void RaftServer::observe_about(Observation::Kind kind, ServerId peer, Duration duration) {
  Observation observation;
  observation.kind = kind;
  observation.state = to_raft_state(node_.role());
  observation.term = node_.term();
  observation.leader = leader_info(node_.leader());
  // How far this leader knows the peer's log to match its own.
  if (const core::Progress* progress = node_.progress(peer))
    observation.index = progress->match_index;
  observation.peer = peer;
  observation.duration = duration;
  unpublished_observations_.push_back(std::move(observation));
}

void RaftServer::observe_peer(const core::Message& message) {
  using core::MessageType;
  switch (message.type) {
    case MessageType::kVoteRequest:
    case MessageType::kPreVoteRequest: {
      Observation observation;
      observation.kind = Observation::Kind::kVoteRequested;
      observation.state = to_raft_state(node_.role());
      observation.term = message.term;
      observation.leader = leader_info(node_.leader());
      observation.index = message.last_log_index;
      observation.peer = message.from;
      observation.pre_vote = message.type == MessageType::kPreVoteRequest;
      unpublished_observations_.push_back(std::move(observation));
      return;
    }
    case MessageType::kAppendResponse:
    case MessageType::kHeartbeatResponse:
      if (!peer_contact_.watching() || message.term != node_.term()) return;
      if (std::optional<Duration> silent =
              peer_contact_.heard_from(message.from, deps_.env->now())) {
        observe_about(Observation::Kind::kPeerContactResumed, message.from, *silent);
      }
      return;
    default:
      return;
  }
}

void RaftServer::check_peer_contact() {
  if (!peer_contact_.watching()) return;
  // While this server leads, its latest configuration's index only grows:
  // a new one is a new entry.
  if (node_.latest_configuration_index() != peer_contact_index_) {
    peer_contact_index_ = node_.latest_configuration_index();
    peer_contact_.follow(other_servers(), deps_.env->now());
  }
  const Duration timeout = deps_.config.peer_contact_timeout.count() == 0
                               ? Duration(deps_.config.election_timeout)
                               : Duration(deps_.config.peer_contact_timeout);
  for (const auto& [peer, silent_for] : peer_contact_.newly_silent(deps_.env->now(), timeout)) {
    observe_about(Observation::Kind::kPeerContactLost, peer, silent_for);
  }
}

// --- leadership transfer -----------------------------------------------------------

Future<LeaderInfo> RaftServer::transfer_leadership(std::optional<ServerId> target,
                                                   Duration timeout) {
  if (timeout <= Duration::zero()) return Future<LeaderInfo>::ready(expired_timeout());
  Promise<LeaderInfo> promise;
  const Duration deadline = deadline_after(timeout);
  auto refuse = [promise] { promise.resolve(Status::shutdown()); };
  if (!post_to_loop([target, promise,
                     deadline](RaftServer& s) { s.start_transfer(target, promise, deadline); },
                    refuse)) {
    refuse();
  }
  return promise.future();
}

void RaftServer::start_transfer(std::optional<ServerId> target, const Promise<LeaderInfo>& promise,
                                Duration deadline) {
  if (!node_.is_leader()) {
    promise.resolve(not_leader_status());
    return;
  }
  if (transfer_ || !node_.transfer_target().is_zero()) {
    promise.resolve(Status::with_code(StatusCode::kLeadershipTransferInProgress,
                                      "a leadership transfer is already in progress"));
    return;
  }
  ServerId chosen = target.value_or(kNoServer);
  if (!target) {
    // The voter that needs the least catching up: the transfer is quickest.
    Index best;
    for (ServerId voter : node_.configuration().voters()) {
      const core::Progress* progress = voter == deps_.config.id ? nullptr : node_.progress(voter);
      if (progress == nullptr) continue;
      if (chosen.is_zero() || progress->match_index > best) {
        chosen = voter;
        best = progress->match_index;
      }
    }
    if (chosen.is_zero()) {
      promise.resolve(
          Status::invalid_argument("there is no other voter to transfer leadership to"));
      return;
    }
  }
  Status started = node_.transfer_leadership(chosen);
  if (!started.is_ok()) {
    promise.resolve(started);
    return;
  }
  const std::uint64_t number = ++transfers_started_;
  transfer_ = PendingTransfer{promise, chosen, !target.has_value(), number};
  log_line(LogLevel::kInfo, "transfers leadership to server " + std::to_string(chosen.value));
  post_timer(deadline - deps_.env->now(),
             [number](RaftServer& s) { s.on_transfer_deadline(number); });
  schedule_flush();
}

void RaftServer::check_transfer() {
  if (node_.is_leader()) {
    if (node_.transfer_target().is_zero()) {
      // The core gave up: the target did not take over within an election
      // timeout, and this server leads on.
      transfer_->promise.resolve(Status::timeout(
          "server " + std::to_string(transfer_->target.value) +
          " did not take over within an election timeout; this server still leads"));
      transfer_.reset();
    }
    return;
  }
  const ServerId leader = node_.leader();
  if (leader.is_zero()) return;  // stepped down; the election is under way
  if (leader == transfer_->target || (transfer_->any && leader != deps_.config.id)) {
    transfer_->promise.resolve(leader_info(leader));
  } else {
    // Leadership moved, but not where it was asked to: the hint names the
    // server that won.
    const LeaderInfo winner = leader_info(leader);
    transfer_->promise.resolve(Status::not_leader(winner.id, winner.address));
  }
  transfer_.reset();
}

void RaftServer::on_transfer_deadline(std::uint64_t number) {
  if (!transfer_ || transfer_->number != number) return;
  if (node_.is_leader()) {
    node_.abort_leadership_transfer();
    transfer_->promise.resolve(Status::timeout(
        "server " + std::to_string(transfer_->target.value) +
        " did not take over before the deadline; this server leads on (a TimeoutNow already "
        "sent may still make it win an election)"));
    schedule_flush();
  } else {
    transfer_->promise.resolve(Status::timeout(
        "this server stepped down for the transfer, but no new leader was known by the deadline"));
  }
  transfer_.reset();
}

// --- membership --------------------------------------------------------------------

Future<Index> RaftServer::change_membership(std::vector<ConfigurationChange> changes,
                                            Index prev_index, bool promote_after_catch_up,
                                            Duration timeout) {
  if (timeout <= Duration::zero()) return Future<Index>::ready(expired_timeout());
  if (changes.empty()) {
    return Future<Index>::ready(Status::invalid_argument("no membership change given"));
  }
  Promise<Index> promise;
  const Duration deadline = deadline_after(timeout);
  auto refuse = [promise] { promise.resolve(Status::shutdown()); };
  const bool posted = post_to_loop(
      [changes = std::move(changes), prev_index, promote_after_catch_up, promise,
       deadline](RaftServer& s) mutable {
        const std::uint64_t before = s.membership_.number();
        s.membership_.start(MembershipChange::Request{std::move(changes), prev_index,
                                                      promote_after_catch_up, promise});
        // Armed only for a call that is now under way (not one refused
        // because another runs, nor one already resolved).
        if (!s.membership_.active() || s.membership_.number() == before) return;
        const std::uint64_t number = s.membership_.number();
        s.post_timer(deadline - s.deps_.env->now(),
                     [number](RaftServer& server) { server.membership_.on_deadline(number); });
        s.log_line(LogLevel::kInfo, "starts a membership change");
        s.schedule_flush();
      },
      refuse);
  if (!posted) refuse();
  return promise.future();
}

void RaftServer::check_membership() {
  membership_.check();
  if (membership_.waiting() && !membership_round_armed_) {
    membership_round_armed_ = true;
    post_timer(deps_.config.heartbeat_interval, [](RaftServer& s) { s.on_membership_round(); });
  }
}

void RaftServer::on_membership_round() {
  membership_round_armed_ = false;
  membership_.on_round();
  schedule_flush();  // a promotion appended; or the next round is armed there
}

void RaftServer::observe_configuration(const ConfigurationState& state) {
  const Configuration before = std::move(observed_configuration_);
  const bool first = observed_configuration_index_.is_zero();
  observed_configuration_ = state.committed;
  observed_configuration_index_ = state.committed_index;
  auto observe = [&](Observation::Kind kind, const Server& server) {
    Observation observation;
    observation.kind = kind;
    observation.state = to_raft_state(node_.role());
    observation.term = node_.term();
    observation.index = state.committed_index;
    observation.peer = server.id;
    observation.suffrage = server.suffrage;
    unpublished_observations_.push_back(observation);
  };
  // The first committed configuration this server sees (at open, or a new
  // server's first) is where it starts, not a change.
  if (!first && !before.empty()) {
    for (const Server& server : state.committed.members()) {
      const Server* old = before.find(server.id);
      const bool voter = state.committed.is_voter(server.id);
      if (old == nullptr) {
        observe(Observation::Kind::kPeerAdded, server);
      } else if (voter && !before.is_voter(server.id)) {
        observe(Observation::Kind::kPeerPromoted, server);
      } else if (!voter && before.is_voter(server.id)) {
        observe(Observation::Kind::kPeerDemoted, server);
      }
    }
    for (const Server& server : before.members()) {
      if (!state.committed.contains(server.id)) observe(Observation::Kind::kPeerRemoved, server);
    }
  }
  if (node_.removed() && !removed_) {
    removed_ = true;
    Observation observation;
    observation.kind = Observation::Kind::kRemoved;
    observation.state = to_raft_state(node_.role());
    observation.term = node_.term();
    observation.index = state.committed_index;
    observation.peer = deps_.config.id;
    unpublished_observations_.push_back(observation);
    log_line(
        LogLevel::kInfo,
        "was removed from the configuration at index " +
            std::to_string(state.committed_index.value) +
            (deps_.config.shutdown_on_remove ? "; it shuts down" : "; it stays, as a non-member"));
    if (deps_.config.shutdown_on_remove) {
      // After this flush publishes the observation.
      post_to_loop([](RaftServer& s) {
        s.publish();
        s.publish_observations();
        s.shutdown_on_loop();
      });
    }
  } else if (!node_.removed()) {
    removed_ = false;
  }
}

// --- restores ----------------------------------------------------------------------

Future<Index> RaftServer::restore(const SnapshotMeta& meta, std::unique_ptr<SnapshotReader> reader,
                                  Duration timeout) {
  if (timeout <= Duration::zero()) return Future<Index>::ready(expired_timeout());
  if (reader == nullptr) {
    return Future<Index>::ready(Status::invalid_argument("restore: no reader"));
  }
  if (meta.size_bytes > deps_.config.max_restore_bytes) {
    return Future<Index>::ready(
        Status::invalid_argument("restore: the snapshot holds " + std::to_string(meta.size_bytes) +
                                 " bytes, more than max_restore_bytes (" +
                                 std::to_string(deps_.config.max_restore_bytes) + ")"));
  }
  Promise<Index> promise;
  const Duration deadline = deadline_after(timeout);
  auto refuse = [promise] { promise.resolve(Status::shutdown()); };
  // shared_ptr: std::function needs a copyable task.
  auto shared_reader = std::shared_ptr<SnapshotReader>(std::move(reader));
  const bool posted = post_to_loop(
      [promise, deadline, meta, shared_reader](RaftServer& s) {
        if (!s.node_.is_leader()) {
          promise.resolve(s.not_leader_status());
          return;
        }
        if (s.restore_reading_ || s.restoring_) {
          promise.resolve(Status::unavailable("another restore is under way"));
          return;
        }
        s.restore_reading_ = promise;
        const std::uint64_t number = ++s.restores_started_;
        const Term term = s.node_.term();
        const std::uint64_t bound = s.deps_.config.max_restore_bytes;
        s.post_timer(deadline - s.deps_.env->now(), [promise, number](RaftServer& server) {
          // Once appended, the proposal's own deadline answers (OutcomeUnknown).
          if (!server.restore_reading_ || server.restores_started_ != number) return;
          server.restore_reading_.reset();
          promise.resolve(
              Status::timeout("the restore's snapshot was not read before the deadline"));
        });
        std::weak_ptr<RaftServer> weak = s.weak_from_this();
        // The reader may block on disk: read on the transfers' executor,
        // then append on the loop. Nothing is in the log until the bytes
        // were read whole and matched `meta`.
        s.transfer_executor_->post([weak, promise, deadline, meta, shared_reader, term, bound] {
          Result<std::string> bytes = read_whole_snapshot(*shared_reader, bound);
          if (bytes.is_ok() &&
              (bytes->size() != meta.size_bytes || core::crc32c(*bytes) != meta.crc32c)) {
            bytes = Status::invalid_argument(
                "restore: the bytes read (" + std::to_string(bytes->size()) +
                ") do not match the snapshot's size and checksum in its metadata");
          }
          auto self = weak.lock();
          if (!self) return;
          self->post_to_loop(
              [promise, deadline, term, bytes = std::move(bytes)](RaftServer& server) {
                if (promise.is_resolved()) return;  // its deadline passed
                server.restore_reading_.reset();
                if (!bytes.is_ok()) {
                  promise.resolve(bytes.status());
                  return;
                }
                server.append_restore(*bytes, term, promise, deadline);
              },
              [promise] { promise.resolve(Status::shutdown()); });
        });
      },
      refuse);
  if (!posted) refuse();
  return promise.future();
}

void RaftServer::append_restore(const std::string& bytes, Term term, Promise<Index> promise,
                                Duration deadline) {
  if (promise.is_resolved()) return;  // the deadline passed while it was read
  if (!node_.is_leader() || node_.term() != term) {
    promise.resolve(not_leader_status());
    return;
  }
  const Index first = node_.last_index().next();
  // The run's snapshot records the configuration in force at its entries:
  // the latest (a change appended later comes after the run).
  const ConfigurationState configurations = node_.configuration_state();
  std::vector<std::string> pieces =
      make_restore_entries(bytes, first, deps_.config.max_snapshot_chunk_bytes,
                           configurations.latest, configurations.latest_index);
  const auto count = pieces.size();
  Result<Index> appended = node_.propose_run(EntryType::kRestore, pieces);
  if (!appended.is_ok()) {
    promise.resolve(appended.status().code() == StatusCode::kNotLeader ? not_leader_status()
                                                                       : appended.status());
    return;
  }
  const Index last = first + (count - 1);
  // Commands not committed yet are applied before the run and undone by it.
  const Index committed = node_.commit_index();
  for (auto it = proposals_.upper_bound(committed); it != proposals_.end() && it->first < first;
       ++it) {
    if (!it->second.apply) continue;
    it->second.overtaken_by = first;
    it->second.overtaken_until = last;
  }
  const Deadlines::iterator at = proposal_deadlines_.emplace(deadline, last);
  proposals_.emplace(last,
                     Proposal{term, false, std::nullopt, std::move(promise), at, Index{}, Index{}});
  arm_proposal_deadline(deadline);
  restoring_ = RestoreRun{term, first, last};
  log_line(LogLevel::kInfo, "restores a snapshot of " + std::to_string(bytes.size()) +
                                " bytes as log entries " + std::to_string(first.value) + ".." +
                                std::to_string(last.value));
  schedule_flush();
}

void RaftServer::on_restored(const SnapshotMeta& meta) {
  restored_.push_back(meta);
  while (!restored_.empty() && restored_.front().index <= applied_) finish_restored();
}

void RaftServer::finish_restored() {
  const SnapshotMeta meta = restored_.front();
  restored_.pop_front();
  ++restores_applied_;
  if (!last_snapshot_ || meta.index > last_snapshot_->index) last_snapshot_ = meta;
  bytes_since_snapshot_ = 0;
  node_.on_snapshot(meta.index, meta.term);
  compact_after(meta, /*trailing=*/false);  // the run goes with the log before it
  observe_snapshot(Observation::Kind::kRestored, meta, Duration{0});
  publish();  // stats agree with the restore before its caller hears of it
  auto proposal = proposals_.find(meta.index);
  if (proposal != proposals_.end() && proposal->second.term == meta.term &&
      proposal->second.barrier) {
    proposal->second.barrier->resolve(meta.index);
  }
  schedule_flush();
}

Result<SnapshotStore::Opened> RaftServer::open_snapshot(const std::string& id) {
  return deps_.snapshot_store->open(id);
}

// --- helpers ------------------------------------------------------------------------

LeaderInfo RaftServer::leader_info(ServerId id) const {
  if (id.is_zero()) return LeaderInfo{};
  std::optional<Server> server = address_of(id);
  return LeaderInfo{id, server ? server->address : std::string()};
}

Status RaftServer::not_leader_status() const {
  LeaderInfo leader = leader_info(node_.leader());
  return Status::not_leader(leader.id, leader.address);
}

void RaftServer::publish() {
  std::lock_guard lock(published_mutex_);
  RaftStats& stats = published_.stats;
  stats.state = stopped_ ? RaftState::kShutdown : to_raft_state(node_.role());
  stats.term = node_.term();
  // A stopped server knows no leader: it would only name itself or a stale one.
  stats.leader = stopped_ ? LeaderInfo{} : leader_info(node_.leader());
  stats.last_index = node_.last_index();
  stats.commit_index = node_.commit_index();
  stats.applied_index = applied_;
  stats.ready_term = stopped_ ? Term{} : ready_term_;
  stats.pending_proposals = proposals_.size();
  stats.pending_reads = reads_.size();
  stats.log_writes = log_writes_;
  stats.entries_written = entries_written_;
  stats.observer_events_dropped = observers_.dropped();
  stats.observer_callback_failures = observers_.callback_failures();
  stats.frames_rejected = frames_rejected_.load();
  stats.first_index = node_.log().first_index();
  stats.entries_read_at_open = entries_read_at_open_;
  stats.last_snapshot = last_snapshot_.value_or(SnapshotMeta{});
  stats.last_snapshot_duration = last_snapshot_duration_;
  stats.snapshots_taken = snapshots_taken_;
  stats.snapshot_failures = snapshot_failures_;
  stats.snapshots_installed = snapshots_installed_;
  stats.restores_applied = restores_applied_;
  stats.failure = failure_;
  stats.removed = removed_;
  // Copied only when it changed: publish() runs after every flush. A
  // committed configuration is known by its index; the latest may also be
  // replaced at the same index (truncated, then another appended).
  const ConfigurationState& shown = published_.configuration;
  if (shown.committed_index != node_.committed_configuration_index() ||
      shown.latest_index != node_.latest_configuration_index() ||
      shown.latest != node_.configuration()) {
    published_.configuration = node_.configuration_state();
  }
  if (transfers_) {
    stats.snapshots_sent = transfers_->stats().sent;
    stats.snapshot_bytes_sent = transfers_->stats().bytes_sent;
  }
  published_.last_contact = last_contact_;
}

// --- shutdown -----------------------------------------------------------------------

void RaftServer::fail(const Status& status) {
  log_line(LogLevel::kError, "stops: " + status.to_string());
  failed_ = true;  // from now on queued client tasks refuse instead of running
  if (failure_.is_ok()) failure_ = status;  // the first cause, published at shutdown
  std::lock_guard lock(shutdown_mutex_);
  if (stopping_) return;
  stopping_ = true;
  // Posted behind every client task already queued (no new ones can be
  // queued now), so each of them is refused and resolved before the loop stops.
  loop_->post([self = shared_from_this()] { self->shutdown_on_loop(); });
}

void RaftServer::shutdown() {
  {
    std::lock_guard lock(shutdown_mutex_);
    if (!stopping_) {
      stopping_ = true;
      loop_->post([self = shared_from_this()] { self->shutdown_on_loop(); });
    }
  }
  // From a keel thread (an observer, a then() callback) waiting could
  // deadlock: that thread may be one the shutdown has to stop. A manual Env
  // runs nothing unless its driver does, so it must not wait either. Asked
  // of the Env, not by dynamic_cast<ManualEnv*>: an Env that wraps a
  // ManualEnv (the simulator gives each server such a view) used to make
  // shutdown() -- and so ~Raft() -- wait forever on the driving thread.
  if (on_keel_thread() || deps_.env->driven_by_caller()) return;
  (void)stopped_promise_.future().get();
  // Observer callbacks are the user's: no new one begins now, and one still
  // running (perhaps just woken by a future the shutdown resolved) gets a
  // bounded time to return before the Raft object may go away.
  (void)observers_.wait_idle(deps_.config.observer_shutdown_wait);
}

Future<Index> RaftServer::stopped() const { return stopped_promise_.future(); }

void RaftServer::shutdown_on_loop() {
  if (stopped_) return;
  stopped_ = true;
  deps_.transport->stop();
  writer_executor_->stop();   // waits for a write in progress
  applier_executor_->stop();  // waits for an FSM batch in progress
  snapshotter_->cancel();
  snapshot_executor_->stop();  // waits for a persist in progress (its writes now fail)
  transfer_executor_->stop();
  for (auto& [index, proposal] : proposals_) {
    // Proposed (or even committed but not yet applied here): it may commit
    // or may have; only "unknown" is honest.
    const Status unknown = Status::outcome_unknown("shut down before the outcome was known");
    if (proposal.apply) proposal.apply->resolve(unknown);
    if (proposal.barrier) proposal.barrier->resolve(unknown);
  }
  proposals_.clear();
  proposal_deadlines_.clear();
  for (auto& [id, read] : reads_) read.promise.resolve(Status::shutdown());
  reads_.clear();
  read_deadlines_.clear();
  for (auto& waiter : snapshot_waiters_) waiter.resolve(Status::shutdown());
  snapshot_waiters_.clear();
  if (restore_reading_) restore_reading_->resolve(Status::shutdown());  // nothing appended
  restore_reading_.reset();
  if (transfer_) transfer_->promise.resolve(Status::shutdown());
  transfer_.reset();
  membership_.stop();
  parked_reads_.clear();
  apply_waiters_.clear();
  observers_.stop_all();
  publish();
  stopped_promise_.resolve(applied_);
  loop_->stop();
}

// --- public calls -------------------------------------------------------------------

Future<ApplyResult> RaftServer::apply(std::string command, Duration timeout) {
  // The common call, without apply_batch's vectors.
  if (timeout <= Duration::zero()) return Future<ApplyResult>::ready(expired_timeout());
  if (command.size() > deps_.config.max_command_bytes) {
    return Future<ApplyResult>::ready(
        Status::invalid_argument("command larger than max_command_bytes"));
  }
  Promise<ApplyResult> promise;
  const Duration deadline = deadline_after(timeout);
  auto refuse = [promise] { promise.resolve(Status::shutdown()); };
  if (!post_to_loop(
          [command = std::move(command), promise, deadline](RaftServer& s) mutable {
            s.propose(EntryType::kCommand, Payload(command), promise, std::nullopt, deadline);
          },
          refuse)) {
    refuse();
  }
  return promise.future();
}

std::vector<Future<ApplyResult>> RaftServer::apply_batch(std::vector<std::string> commands,
                                                         Duration timeout) {
  std::vector<Future<ApplyResult>> futures;
  std::vector<Promise<ApplyResult>> promises(commands.size());
  for (std::size_t i = 0; i < commands.size(); ++i) {
    futures.push_back(promises[i].future());
    if (timeout <= Duration::zero()) {
      promises[i].resolve(expired_timeout());
    } else if (commands[i].size() > deps_.config.max_command_bytes) {
      promises[i].resolve(Status::invalid_argument("command larger than max_command_bytes"));
    }
  }
  if (timeout <= Duration::zero()) return futures;
  const Duration deadline = deadline_after(timeout);
  auto refuse = [promises] {
    for (const auto& promise : promises) promise.resolve(Status::shutdown());
  };
  const bool posted = post_to_loop(
      [commands = std::move(commands), promises, deadline](RaftServer& s) mutable {
        for (std::size_t i = 0; i < commands.size(); ++i) {
          if (promises[i].is_resolved()) continue;
          s.propose(EntryType::kCommand, Payload(commands[i]), promises[i], std::nullopt, deadline);
        }
      },
      refuse);
  if (!posted) refuse();
  return futures;
}

Future<Index> RaftServer::barrier(Duration timeout) {
  if (timeout <= Duration::zero()) return Future<Index>::ready(expired_timeout());
  Promise<Index> promise;
  const Duration deadline = deadline_after(timeout);
  auto refuse = [promise] { promise.resolve(Status::shutdown()); };
  if (!post_to_loop(
          [promise, deadline](RaftServer& s) {
            s.propose(EntryType::kBarrier, {}, std::nullopt, promise, deadline);
          },
          refuse)) {
    refuse();
  }
  return promise.future();
}

Future<Index> RaftServer::verify_leader(Duration timeout) {
  if (timeout <= Duration::zero()) return Future<Index>::ready(expired_timeout());
  Promise<Index> promise;
  const Duration deadline = deadline_after(timeout);
  auto refuse = [promise] { promise.resolve(Status::shutdown()); };
  if (!post_to_loop(
          [promise, deadline](RaftServer& s) {
            s.track_read(ReadKind::kVerifyLeader, promise, deadline);
          },
          refuse)) {
    refuse();
  }
  return promise.future();
}

Future<Index> RaftServer::read(Consistency consistency, Duration timeout) {
  if (timeout <= Duration::zero()) return Future<Index>::ready(expired_timeout());
  Promise<Index> promise;
  const Duration deadline = deadline_after(timeout);
  std::function<void(RaftServer&)> task;
  switch (consistency) {
    case Consistency::kStale:
      task = [promise](RaftServer& s) { promise.resolve(s.applied_); };
      break;
    case Consistency::kLease:
      task = [promise, deadline](RaftServer& s) {
        s.track_read(ReadKind::kLease, promise, deadline);
      };
      break;
    case Consistency::kLinearizable:
      task = [promise, deadline](RaftServer& s) {
        s.track_read(ReadKind::kLinearizable, promise, deadline);
      };
      break;
  }
  auto refuse = [promise] { promise.resolve(Status::shutdown()); };
  if (!post_to_loop(std::move(task), refuse)) refuse();
  return promise.future();
}

RaftStats RaftServer::stats() const {
  std::lock_guard lock(published_mutex_);
  return published_.stats;
}

Duration RaftServer::last_contact() const {
  std::lock_guard lock(published_mutex_);
  return published_.last_contact;
}

ConfigurationState RaftServer::configuration() const {
  std::lock_guard lock(published_mutex_);
  return published_.configuration;
}

Result<std::uint64_t> RaftServer::subscribe(std::function<void(const Observation&)> observer) {
  return observers_.subscribe(std::move(observer));
}

void RaftServer::unsubscribe(std::uint64_t subscription) { observers_.unsubscribe(subscription); }

}  // namespace keel::runtime
