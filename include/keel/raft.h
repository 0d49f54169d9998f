// keel/raft.h — keel::Raft, one server of a replicated state machine.
//
// Open one per server with Raft::open(), hand it your Fsm, stores and
// transport, and talk to it through futures:
//
//   auto raft = keel::Raft::open(deps).value();  // aborts with the error if it fails
//   keel::Result<keel::ApplyResult> r = raft->apply("set x 1", 2s).get();
//   raft->read(keel::Consistency::kLinearizable, 1s).get();  // then read your FSM
//
// Safety by default: read(kLinearizable) never returns before this server's
// FSM reflects every write committed before the call (ReadIndex, thesis
// §6.4); the kLeaderReady observation is sent only once a new leader's
// term-start entry is committed and applied locally; every timeout covers the
// whole operation, and every failure says whether the write may still commit
// (kOutcomeUnknown) or certainly did not.
//
// Every timeout covers the whole call; a timeout that is not positive is
// refused at once with kTimeout (nothing was done), and Duration::max()
// means "no deadline".
//
// Thread safety: every method may be called from any thread, concurrently,
// including from observer callbacks and then() callbacks (the calls return
// futures and never block; no keel thread ever waits for a user callback).
// Blocking on a future (get/wait_for) is fine in your threads and in
// observer callbacks, never inside a then() callback that runs on a keel
// thread (see future.h). shutdown() may be called from anywhere, any number
// of times.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "keel/config.h"
#include "keel/env.h"
#include "keel/fsm.h"
#include "keel/future.h"
#include "keel/log_store.h"
#include "keel/logger.h"
#include "keel/metrics.h"
#include "keel/snapshot_store.h"
#include "keel/status.h"
#include "keel/transport.h"
#include "keel/types.h"

namespace keel {

enum class RaftState : std::uint8_t { kFollower, kPreCandidate, kCandidate, kLeader, kShutdown };
const char* to_string(RaftState state);

enum class Consistency : std::uint8_t {
  // ReadIndex: one quorum round proves leadership, then the read waits until
  // the local FSM has applied everything committed before it. Works on
  // followers too (the leader supplies the read index).
  kLinearizable,
  // Leader only: no quorum round while the leader's lease holds (see
  // Config::lease_timeout); relies on bounded clock drift.
  kLease,
  // Whatever this server's FSM holds now. May be arbitrarily old.
  kStale,
};

struct ApplyResult {
  Index index;           // where the command sits in the log
  std::string response;  // what Fsm::apply returned
};

struct LeaderInfo {
  ServerId id;  // kNoServer when no leader is known
  std::string address;
};

// What observers are told. kLeaderReady is the one to serve reads on.
struct Observation {
  enum class Kind : std::uint8_t {
    kStateChanged,       // this server's state is now `state` (in `term`)
    kLeaderChanged,      // the known leader is now `leader` (id 0: none)
    kLeaderReady,        // this server leads `term` and its FSM has applied every
                         // entry committed before the term began (index = term start)
    kSnapshotTaken,      // a snapshot through `index` is durable (`snapshot` says more)
    kSnapshotInstalled,  // the FSM now holds the leader's snapshot through `index`
    kRestored,           // the FSM now holds the snapshot restore() replicated, at `index`
    // This leader has not heard from `peer` for longer than
    // Config::peer_contact_timeout (`duration`: since its last answer;
    // `index`: how far the peer's log is known to match the leader's).
    // Every server of the latest configuration is watched, also one added
    // during the term.
    kPeerContactLost,
    // ...and now it answered again (`duration`: how long it was silent;
    // `index` as above).
    kPeerContactResumed,
    // `peer` asks this server for its vote (`pre_vote`: only whether it
    // would get it) in `term`, with its log ending at `index`.
    kVoteRequested,
    // A committed configuration changed `peer` (index: the entry's; on
    // every server that learns of the commit): it joined as a learner or a
    // voter, a learner became a voter, a voter a learner, or it left.
    kPeerAdded,
    kPeerPromoted,
    kPeerDemoted,
    kPeerRemoved,
    // This server is not in the committed configuration at `index` any
    // more (stats().removed); with Config::shutdown_on_remove it then shuts
    // itself down.
    kRemoved,
  };
  Kind kind = Kind::kStateChanged;
  RaftState state = RaftState::kFollower;
  Term term;
  LeaderInfo leader;
  Index index;
  // kSnapshotTaken, kSnapshotInstalled, kRestored: the snapshot.
  SnapshotMeta snapshot;
  // kSnapshotTaken: from snapshot() to durable; kSnapshotInstalled: from
  // the transfer's first chunk to the FSM restored; kPeerContact*: see above.
  Duration duration{0};
  // kPeerContactLost, kPeerContactResumed, kVoteRequested, kPeer*: the
  // other server.
  ServerId peer;
  Suffrage suffrage = Suffrage::kVoter;  // kPeerAdded: what it joined as
  bool pre_vote = false;                 // kVoteRequested
};

struct RaftStats {
  RaftState state = RaftState::kFollower;
  Term term;
  LeaderInfo leader;
  Index last_index;
  Index commit_index;
  Index applied_index;
  // The term in which this server leads and is ready (see kLeaderReady);
  // zero while it is not a ready leader.
  Term ready_term;
  std::uint64_t pending_proposals = 0;
  std::uint64_t pending_reads = 0;
  std::uint64_t log_writes = 0;  // durable writes (each may hold many entries)
  std::uint64_t entries_written = 0;
  std::uint64_t observer_events_dropped = 0;
  // Observer callbacks that threw (contained: delivery goes on).
  std::uint64_t observer_callback_failures = 0;
  // Frames received that failed to decode or were not meant for this server.
  std::uint64_t frames_rejected = 0;
  // Why this server stopped itself, if it did (state kShutdown): a write
  // or an fsync that failed, a committed entry it cannot apply, an FSM
  // restore that failed. Ok while it runs, and after a shutdown() asked for.
  Status failure;
  // This server was removed from the committed configuration (kRemoved).
  bool removed = false;

  // Snapshots and compaction.
  Index first_index;                       // the oldest entry still in the log
  std::uint64_t entries_read_at_open = 0;  // the log after the snapshot, no more
  SnapshotMeta last_snapshot;              // the newest durable one (taken or installed)
  Duration last_snapshot_duration{0};      // of the newest one taken here
  std::uint64_t snapshots_taken = 0;
  std::uint64_t snapshot_failures = 0;    // taken but not made durable (persist or store)
  std::uint64_t snapshots_installed = 0;  // received from a leader and restored
  std::uint64_t restores_applied = 0;     // Raft::restore runs applied here
  std::uint64_t snapshots_sent = 0;       // transfers to followers completed
  std::uint64_t snapshot_bytes_sent = 0;
};

// What a Raft needs. All pointers but the logger and the metrics sink are
// required and must outlive nothing: the Raft shares ownership.
struct RaftDependencies {
  Config config;
  std::shared_ptr<Fsm> fsm;
  std::shared_ptr<LogStore> log_store;
  std::shared_ptr<StableStore> stable_store;
  std::shared_ptr<SnapshotStore> snapshot_store;
  std::shared_ptr<Transport> transport;
  std::shared_ptr<Env> env;  // make_thread_env() in production
  // Where the server's log lines go (keel/logger.h); null: stderr, info and
  // above. Every line carries `server=<id>`.
  std::shared_ptr<Logger> logger;
  // Where the server's counters, gauges and histograms go (keel/metrics.h;
  // docs/operations.md lists them); null: nowhere. Every series carries
  // `server=<id>`.
  std::shared_ptr<MetricsSink> metrics;
  // Subscribed before the server starts, so that no observation (not even
  // the first kLeaderReady) can be missed. See Raft::subscribe.
  std::vector<std::function<void(const Observation&)>> observers;
};

class Raft {
 public:
  // Starts a server from its stores: restores the FSM from the newest valid
  // snapshot (see Config::restore_snapshot_on_start; a damaged one is
  // skipped with a log line and the next older one used), recovers term,
  // vote and the log after the snapshot, and joins the configuration found
  // in the log or the snapshot (see bootstrap_cluster). What the stores hand
  // back is checked: a log with gaps, terms that go down, term 0, unknown
  // entry types, fewer entries than it claims, or a log that starts after
  // what the newest snapshot covers is refused with Corruption; a bad
  // Config with InvalidArgument naming the field. Only the log after the
  // snapshot is read. From the moment it returns, stats() reflects the
  // stores.
  static Result<std::unique_ptr<Raft>> open(RaftDependencies deps);

  // Shuts down (see shutdown()).
  virtual ~Raft() = default;

  // Replicates `command`; resolves once it is applied here, with the FSM's
  // response. NotLeader (with a hint) if this server does not lead;
  // OutcomeUnknown if leadership was lost or the timeout passed after the
  // command entered the log (it may still commit).
  virtual Future<ApplyResult> apply(std::string command, Duration timeout) = 0;
  // Replicates several commands with one call; each gets its own future.
  virtual std::vector<Future<ApplyResult>> apply_batch(std::vector<std::string> commands,
                                                       Duration timeout) = 0;
  // Resolves once every entry before it is applied to this server's FSM
  // (leader only). Timeout or OutcomeUnknown as for apply.
  virtual Future<Index> barrier(Duration timeout) = 0;
  // One quorum round: resolves Ok if this server still leads. Its value is
  // the commit index the round confirmed.
  virtual Future<Index> verify_leader(Duration timeout) = 0;
  // Resolves when the local FSM may be read at `consistency` (see
  // Consistency). The value is the index the FSM has reached.
  virtual Future<Index> read(Consistency consistency, Duration timeout) = 0;

  // Hands leadership to `target`, or without one to the other voter whose
  // log is most up to date (thesis §3.10): once the target's log matches
  // this leader's, it is told to campaign at once (TimeoutNow), ahead of
  // every election timer. Meanwhile this leader refuses new commands with
  // LeadershipTransferInProgress (fail fast; nothing enters the log).
  // Resolves with the new leader once this server has heard from it. If the
  // target has not taken over within one election timeout, or by the
  // timeout if that comes first, this server goes on leading and the
  // future fails with Timeout (a TimeoutNow already sent may still let the
  // target win later; either way the cluster keeps a leader). Also:
  // NotLeader; InvalidArgument for a target that is not another voter (or
  // no other voter); LeadershipTransferInProgress while another runs;
  // NotLeader naming the winner if a server other than the target won.
  virtual Future<LeaderInfo> transfer_leadership(std::optional<ServerId> target,
                                                 Duration timeout) = 0;

  // Takes a snapshot now (on any server), whatever the thresholds say, and
  // cuts the log after it as the automatic ones do. Resolves with the
  // snapshot's metadata once it is durable; open it with open_snapshot()
  // (for a backup, say). Fails with the FSM's or the store's error, or with
  // Unavailable if a snapshot is being taken right now or a restore's run
  // is being applied. With nothing applied since the newest snapshot,
  // resolves with that one.
  virtual Future<SnapshotMeta> snapshot(Duration timeout) = 0;
  // Opens a snapshot of this server's store by id (SnapshotMeta::id).
  virtual Result<SnapshotStore::Opened> open_snapshot(const std::string& id) = 0;

  // Disaster recovery, on the leader: the cluster's state becomes the
  // snapshot `reader` yields (a backup taken with snapshot() and kept with
  // open_snapshot(), say), on every server, in log order. `meta` describes
  // it: its size_bytes (at most Config::max_restore_bytes) and crc32c are
  // checked against the bytes read; its index, term and configuration are
  // ignored (the restore keeps the present configuration). The bytes go
  // through the log as a run of kRestore entries appended in one step, so
  // every server, a follower that is behind or restarts halfway included,
  // restores exactly the same state at exactly the same index: the run's
  // last, where a snapshot of it is stored and the log is cut.
  // Resolves with that index once this server's FSM holds the restored
  // state (and stats() says so). Commands this leader had accepted but not
  // yet committed when the run entered the log are applied before it and
  // then undone by it: their futures fail with AbortedByRestore (their
  // effect is certainly gone), or get their responses after all if a change
  // of leader cut the run short. Commands accepted after it apply to the
  // restored state.
  // The bytes must be a state every server's Fsm::restore accepts: once the
  // run commits it cannot be taken back, and an FSM that refuses it stops
  // its server (fail-stop), again at every restart. Try a backup on a
  // scratch FSM first.
  // Failures that leave the log as it was: NotLeader; Unavailable while
  // another restore of this leader's is under way; InvalidArgument for a
  // size above the bound, a null reader or bytes that do not match `meta`;
  // the reader's own error; Timeout while the bytes were still being read;
  // Shutdown; LeadershipTransferInProgress. OutcomeUnknown once the run is
  // in the log and leadership is lost, the timeout passes or the server
  // stops (the restore may still take effect).
  virtual Future<Index> restore(const SnapshotMeta& meta, std::unique_ptr<SnapshotReader> reader,
                                Duration timeout) = 0;

  virtual RaftState state() const = 0;
  virtual LeaderInfo leader() const = 0;
  virtual Term term() const = 0;
  virtual Index commit_index() const = 0;
  virtual Index applied_index() const = 0;
  virtual Index last_index() const = 0;
  // Time of the last contact with a leader (now if this server leads), on
  // the Env's clock; zero if never.
  virtual Duration last_contact() const = 0;
  virtual RaftStats stats() const = 0;
  // The committed and the latest configuration with their entries' indices
  // (as of the last published state, like stats()).
  virtual ConfigurationState configuration() const = 0;

  // --- membership (leader only; thesis chapter 4) -------------------------
  // Each call changes the configuration by one log entry (or two, for a
  // joint change) and resolves with the index of the entry that completes
  // it, once that entry is committed. One change at a time: while another
  // (this server's or one in the log that is not committed) is in progress,
  // ConfigurationChangeInProgress. `prev_index` makes it a compare-and-set:
  // unless 0, the change is made only if the latest configuration is still
  // the one at that index (ConfigurationChangeInProgress otherwise).
  // A new leader's call waits until the leader has committed an entry of
  // its term (no change may start before: the single-server change bug of
  // 2015). Failures before anything entered the log: NotLeader;
  // InvalidArgument (a new server without an address, a voter added as a
  // learner, the last voter removed...); LeadershipTransferInProgress;
  // Timeout; Shutdown. Once the entry is in
  // the log: OutcomeUnknown if leadership is lost, the timeout passes or the
  // server stops first (the change may still take effect). A change that
  // is already true (adding a voter that is one, removing a server that is
  // not there) resolves at once with the latest configuration's index.
  //
  // A new learner: it receives the log (usually a snapshot first) and never
  // votes. Also moves a learner to a new address.
  virtual Future<Index> add_learner(ServerId id, std::string address, Index prev_index,
                                    Duration timeout) = 0;
  // A new voter, safely: a server that is not a member is added as a
  // learner first, then promoted once it has caught up (within
  // Config::promotion_max_lag_entries of this leader's log, at
  // Config::promotion_rounds heartbeat intervals in a row); a learner is
  // promoted once it has caught up. If it has not caught up by the timeout,
  // the future fails with Timeout and the server stays a learner (remove
  // it, or call add_voter again); if this server loses its leadership while
  // the learner catches up, the future fails with NotLeader and the learner
  // stays too. The address may be empty for a learner.
  virtual Future<Index> add_voter(ServerId id, std::string address, Index prev_index,
                                  Duration timeout) = 0;
  // A voter becomes a learner (keeps the log, stops voting). This leader
  // may demote itself: it steps down once the change commits.
  virtual Future<Index> demote_voter(ServerId id, Index prev_index, Duration timeout) = 0;
  // A voter or learner leaves. Removing this leader: it replicates the
  // change, and once a majority of the new configuration holds it, steps
  // down and tells the most caught-up remaining voter to campaign at once.
  // A removed server learns of its removal (kRemoved) when it can be
  // reached; its vote requests are dropped by every server that holds the
  // removal, so it cannot raise their terms.
  virtual Future<Index> remove_server(ServerId id, Index prev_index, Duration timeout) = 0;
  // Several changes at once. When at most one voter comes or goes, one
  // entry does it; otherwise joint consensus (thesis §4.3): the joint
  // configuration C_old,new, under which elections and commits need a
  // majority of both the old and the new voters, then C_new once that is
  // committed; the future resolves when C_new is. kAddVoter here adds a
  // voter at once, without a learner stage: add new servers as learners
  // first and promote them here once they caught up (stats on the leader
  // show their progress), or the new voters may hold commits back -- and
  // a server that knows no configuration yet votes for nobody (it may be
  // an identity reused after a wipe), so if this leader fails before it
  // reaches them, the new voters cannot help elect another.
  virtual Future<Index> change_membership(std::vector<ConfigurationChange> changes,
                                          Index prev_index, Duration timeout) = 0;

  // Observations are delivered on a thread of the subscription's own (so at
  // most Config::max_subscriptions at once: ResourceExhausted beyond), in
  // order, through a bounded queue (Config::observer_queue_capacity): the
  // callback may block or call any Raft method, including barrier().get(),
  // without holding up the Raft. A kLeaderReady observation is delivered
  // only after stats() agrees with it (ready_term, applied_index). A
  // callback that throws is contained and counted
  // (stats().observer_callback_failures). Returns an id for unsubscribe().
  virtual Result<std::uint64_t> subscribe(std::function<void(const Observation&)> observer) = 0;
  // After it returns (from any thread, the callback itself included), the
  // callback is not called again; a call already under way on the
  // subscription's thread finishes. Never waits for it.
  virtual void unsubscribe(std::uint64_t subscription) = 0;

  // Stops the server: resolves every pending future (Shutdown where the
  // command certainly did not commit, OutcomeUnknown where it may have),
  // stops the transport and the internal threads, and stops delivering
  // observations (no callback begins after it returns). Idempotent, safe
  // from any thread (including callbacks), never deadlocks.
  //  - From your own thread: returns once the server has stopped, then waits
  //    at most Config::observer_shutdown_wait for observer callbacks still
  //    running to return. A callback that outlives that (blocked for good)
  //    keeps running on its own thread and must not use this Raft once you
  //    destroy it.
  //  - From a keel thread (an observer or then() callback): returns at once;
  //    stopped() resolves when the server has stopped.
  virtual void shutdown() = 0;
  // Resolves (with the applied index) once the server has stopped.
  virtual Future<Index> stopped() const = 0;
};

// Writes the first configuration into empty stores (index 1, term 1), so that
// the servers of a new cluster can elect a leader. Every founding server is
// bootstrapped with the same configuration. InvalidArgument if the stores
// already hold state (see has_existing_state). A bootstrap that a crash
// interrupted (the term stored, the entry not) is completed by calling it
// again with the same configuration.
Status bootstrap_cluster(LogStore& log_store, StableStore& stable_store,
                         const Configuration& configuration);
// DELIBERATELY UNSAFE: the way out after a permanent loss of quorum (a
// majority of the voters destroyed for good), when nothing else can make
// the cluster available again. Writes `configuration` (usually: the
// surviving servers) into one stopped server's stores as a new last log
// entry, in a new term. Opened, that server campaigns under it after its
// election timeout and the survivors it names follow it (they need no
// recovery of their own). What is lost: every entry the lost servers held
// and this server did not, committed ones included; so pick the survivor
// whose log is most up to date (the highest last term, then the highest
// last index), and run this on that one server only:
// recovering two with different logs can make them diverge for good. Add
// replacements afterwards with add_voter. Logs a warning on stderr.
// InvalidArgument for a joint or voterless configuration, or stores with no
// state.
Status recover_cluster(LogStore& log_store, StableStore& stable_store,
                       const Configuration& configuration);
// Whether the stores hold any Raft state (a term, a vote or log entries),
// other than what an interrupted bootstrap_cluster left (its configuration,
// term 1, no vote, an empty log).
Result<bool> has_existing_state(const LogStore& log_store, const StableStore& stable_store);

}  // namespace keel
