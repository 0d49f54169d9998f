// runtime/raft_server.h — the implementation behind keel::Raft.
//
// One RaftServer owns one core::Node and drives it from the raft loop, a
// serial executor: every input (a client call, a received message, a tick, a
// completed write, an applied batch) is a task posted to the loop, and after
// each burst of inputs one flush() collects the core's Ready and hands its
// parts out: messages to the transport, writes to the LogWriter, committed
// entries to the Applier, read results and observations to their waiters.
// Nothing on the loop blocks; disk and FSM work run on their own executors
// and report back by posting tasks (DESIGN §2.2).
//
// Snapshots: the loop decides when (thresholds checked every
// Config::snapshot_interval, or Raft::snapshot()), the applier captures the
// FSM's view in order with the entries, the Snapshotter persists it on its
// own executor, and once it is durable the loop cuts the log (the core's
// and, through the writer, the store's) to keep trailing_log_entries.
// Sending and receiving snapshots is SnapshotTransfers' job.
//
// Futures: every call's promise lives in a table owned by the loop, with a
// deadline timer; whichever comes first — completion, deadline, leadership
// loss or shutdown — resolves it, and later attempts are no-ops.
//
// Thread safety: the public methods may be called from any thread. Fields
// marked "loop" are touched only on the loop executor; the published
// snapshot is guarded by its mutex.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/codec.h"
#include "core/node.h"
#include "keel/raft.h"
#include "runtime/applier.h"
#include "runtime/log_writer.h"
#include "runtime/membership_change.h"
#include "runtime/observer_hub.h"
#include "runtime/peer_contact.h"
#include "runtime/snapshot_retention.h"
#include "runtime/snapshot_transfer.h"
#include "runtime/snapshotter.h"

namespace keel::runtime {

class RaftServer : public std::enable_shared_from_this<RaftServer> {
 public:
  static Result<std::shared_ptr<RaftServer>> open(RaftDependencies deps);

  Future<ApplyResult> apply(std::string command, Duration timeout);
  std::vector<Future<ApplyResult>> apply_batch(std::vector<std::string> commands, Duration timeout);
  Future<Index> barrier(Duration timeout);
  Future<Index> verify_leader(Duration timeout);
  Future<Index> read(Consistency consistency, Duration timeout);
  Future<SnapshotMeta> snapshot(Duration timeout);
  Future<Index> restore(const SnapshotMeta& meta, std::unique_ptr<SnapshotReader> reader,
                        Duration timeout);
  Future<LeaderInfo> transfer_leadership(std::optional<ServerId> target, Duration timeout);
  Result<SnapshotStore::Opened> open_snapshot(const std::string& id);
  // Every membership call: see MembershipChange.
  Future<Index> change_membership(std::vector<ConfigurationChange> changes, Index prev_index,
                                  bool promote_after_catch_up, Duration timeout);

  RaftStats stats() const;
  ConfigurationState configuration() const;
  Duration last_contact() const;
  Result<std::uint64_t> subscribe(std::function<void(const Observation&)> observer);
  void unsubscribe(std::uint64_t subscription);
  void shutdown();
  Future<Index> stopped() const;

 private:
  // Proposals' deadlines, earliest first, with the index each belongs to.
  using Deadlines = std::multimap<Duration, Index>;
  // Reads' deadlines, earliest first, with each read's id. One timer is set
  // for the earliest (as for proposals), not one per read: a read resolved
  // early leaves nothing behind in the loop's timers.
  using ReadDeadlines = std::multimap<Duration, std::uint64_t>;
  struct Proposal {
    Term term;
    bool handed_to_applier = false;  // committed; the applier resolves it
    std::optional<Promise<ApplyResult>> apply;
    std::optional<Promise<Index>> barrier;  // or a restore's, on its run's last entry
    Deadlines::iterator deadline;
    // A command a restore overtook (runtime/applier.h): that restore's run.
    // Kept here until the run is applied, so that a deadline or a shutdown
    // still resolves it while the applier waits for the run.
    Index overtaken_by;
    Index overtaken_until;
  };
  // A restore this leader appended, until it is applied or leadership is lost.
  struct RestoreRun {
    Term term;
    Index first;
    Index last;
  };
  enum class ReadKind : std::uint8_t { kLinearizable, kLease, kVerifyLeader };
  // A read stays here from the call until it resolves, so its deadline and
  // max_pending_reads hold at every stage: waiting for a leader, for the
  // quorum round (in_core), then for the FSM to reach wait_index.
  struct PendingRead {
    ReadKind kind = ReadKind::kLinearizable;
    Promise<Index> promise;
    bool in_core = false;  // handed to the core, waiting for its ReadState
    Duration issued_at{0};
    std::optional<Index> wait_index;
    ReadDeadlines::iterator deadline;
  };
  struct Published {
    RaftStats stats;
    ConfigurationState configuration;
    Duration last_contact{0};
  };

  // deps.snapshot_store is `retention` (RaftServer::open wraps the user's).
  RaftServer(RaftDependencies deps, std::shared_ptr<RetainingSnapshotStore> retention,
             core::BootState boot, std::uint64_t seed, std::optional<SnapshotMeta> restored,
             std::uint64_t entries_read);
  // The loop's executor: on the transport's I/O thread when the thread
  // policy allows and the transport offers one, else one the Env makes.
  std::shared_ptr<Executor> loop_executor();
  // An executor for a component: sharing the loop's thread if it never
  // blocks and the thread policy allows (Config::thread_policy).
  std::shared_ptr<Executor> component_executor(const std::string& name, bool never_blocks);
  Status start();

  // Posts `task` to the loop unless shut down; returns false if it was not.
  // `refuse` runs instead of `task` if the server stops first, so the
  // promises a client task carries are always resolved.
  // Every input first catches up the ticks that fell due while the loop was
  // busy, so it is judged against the present: a frame stepped before an
  // overdue tick would restart a follower's election timer that the tick
  // then pushes past its timeout at once.
  bool post_to_loop(std::function<void(RaftServer&)> task, std::function<void()> refuse = {});
  void post_timer(Duration delay, std::function<void(RaftServer&)> task);
  void on_tick();
  void catch_up_ticks();
  // A received frame, on the loop (the transport delivers there): decoded,
  // checked and stepped.
  void on_frame(const std::string& frame);
  void schedule_flush();
  void flush();
  // Leader: sends the commit notices the core holds back once
  // Config::commit_notice_delay has passed, unless an append carried the
  // commit meanwhile.
  void arm_commit_notice();
  void handle_ready(core::Ready& ready);
  void send_message(const core::Message& message);
  void on_write_done(WriteCompletion completion);
  void on_applied(Index index);
  void hand_to_applier(std::vector<LogEntry> entries);
  void handle_events(const std::vector<core::Event>& events);
  void publish_observations();
  void handle_read_states(const std::vector<core::ReadState>& states);

  // Snapshots (all on the loop).
  void on_snapshot_timer();
  void maybe_snapshot();
  void start_snapshot();
  void on_snapshot_done(Result<SnapshotMeta> result);
  void on_snapshot_unchanged();
  void observe_snapshot(Observation::Kind kind, const SnapshotMeta& meta, Duration duration);
  void resolve_snapshot_waiters(const Result<SnapshotMeta>& result);
  // `trailing`: keep trailing_log_entries before the snapshot (false for a
  // restore's, whose run and everything before it are in it).
  void compact_after(const SnapshotMeta& meta, bool trailing = true);
  void on_snapshot_received(const core::Message& install, const SnapshotMeta& meta,
                            Duration started);
  // False if the install cannot be carried out (the server then stops).
  bool install_snapshot(const core::SnapshotInstall& install);
  // Restores (all on the loop): appending the run once its bytes are read,
  // and the applier's report that the FSM holds it.
  void append_restore(const std::string& bytes, Term term, Promise<Index> promise,
                      Duration deadline);
  void on_restored(const SnapshotMeta& meta);
  void finish_restored();
  // Leadership transfers (on the loop): started, then judged after every
  // flush (check_transfer) and at their deadline.
  void start_transfer(std::optional<ServerId> target, const Promise<LeaderInfo>& promise,
                      Duration deadline);
  void check_transfer();
  void on_transfer_deadline(std::uint64_t number);
  // Membership (on the loop): the call under way, judged after every flush
  // and every heartbeat interval while a new voter catches up; and what a
  // newly committed configuration changed (observations, removal).
  void check_membership();
  void on_membership_round();
  void observe_configuration(const ConfigurationState& state);
  // Where to send to `peer`: from the configurations, else the address a
  // leader announced in its frames (a server just added knows nobody).
  std::optional<Server> address_of(ServerId peer) const;
  // Observations about other servers, from the frames they send and the tick.
  void observe_peer(const core::Message& message);
  void check_peer_contact();
  void report_gauges();
  static double seconds(Duration d);
  // The servers of the latest configuration but this one.
  std::vector<ServerId> other_servers() const;
  void observe_about(Observation::Kind kind, ServerId peer, Duration duration);
  void log_line(LogLevel level, const std::string& line) const;

  void propose(EntryType type, Payload data, std::optional<Promise<ApplyResult>> apply,
               std::optional<Promise<Index>> barrier, Duration timeout);
  // Every proposal's deadline sits in proposal_deadlines_, and one timer is
  // armed for the earliest (not one timer per proposal: that costs a timer
  // and an allocation per command, held for the whole timeout).
  void arm_proposal_deadline(Duration deadline);
  void expire_due_proposals();
  // Removes a proposal and its deadline; returns the next one.
  std::map<Index, Proposal>::iterator erase_proposal(std::map<Index, Proposal>::iterator it);
  Duration deadline_after(Duration timeout) const;
  void abandon_proposals(const char* why);
  void start_read(std::uint64_t id);
  void retry_parked_reads();
  void track_read(ReadKind kind, Promise<Index> promise, Duration deadline);
  void wait_for_apply(std::uint64_t id, Index index);
  void reissue_forwarded_reads(bool leader_changed);
  void resolve_apply_waiters();
  void expire_read(std::map<std::uint64_t, PendingRead>::iterator it);
  void arm_read_deadline(Duration deadline);
  void expire_due_reads();
  void erase_read(std::map<std::uint64_t, PendingRead>::iterator it);
  Status not_leader_status() const;
  LeaderInfo leader_info(ServerId id) const;
  void publish();
  void fail(const Status& status);
  void shutdown_on_loop();

  // --- fixed at open ---------------------------------------------------------
  RaftDependencies deps_;
  // loop_inner_ runs on the transport's I/O thread. Set by loop_executor()
  // as loop_inner_ is made: declared before it.
  bool loop_on_transport_ = false;
  std::shared_ptr<Executor> loop_inner_;  // the loop's executor (loop_executor())
  std::shared_ptr<Executor> loop_;        // the same (threads marked at start())
  std::shared_ptr<Executor> writer_executor_;
  std::shared_ptr<Executor> applier_executor_;
  std::shared_ptr<Executor> snapshot_executor_;        // persist: may block for long
  std::shared_ptr<Executor> transfer_executor_;        // snapshot chunks' store I/O
  std::shared_ptr<RetainingSnapshotStore> retention_;  // is deps_.snapshot_store
  std::shared_ptr<LogWriter> writer_;
  std::shared_ptr<Applier> applier_;
  std::shared_ptr<Snapshotter> snapshotter_;
  std::unique_ptr<SnapshotTransfers> transfers_;
  const Index boot_applied_index_;
  const Term boot_applied_term_;
  const std::uint64_t entries_read_at_open_;
  ObserverHub observers_;
  const core::DecodeLimits decode_limits_;

  // --- loop ------------------------------------------------------------------
  // The term and vote last handed to the writer (initialised before node_,
  // which consumes the boot state).
  Term persisted_term_;
  ServerId persisted_vote_;
  core::Node node_;
  MembershipChange membership_;
  bool membership_round_armed_ = false;
  // The committed configuration last observed (kPeer* observations).
  Configuration observed_configuration_;
  Index observed_configuration_index_;
  bool removed_ = false;  // kRemoved observed
  // Addresses leaders announced (Message::from_address) that no
  // configuration holds yet, at most kMaxLearnedAddresses.
  std::map<ServerId, std::string> learned_addresses_;
  bool flush_scheduled_ = false;
  bool commit_notice_armed_ = false;  // arm_commit_notice()'s timer is pending
  bool stopped_ = false;
  bool failed_ = false;  // a write failed: refuse everything, shutdown follows
  Status failure_;       // why (stats().failure)
  // The core's time is ticks; they are derived from the Env's clock so that a
  // loop held up (a pause, a slow task) catches up instead of losing time —
  // a lease measured in lost ticks would outlive its real duration.
  Duration ticks_epoch_{0};
  std::uint64_t ticks_done_ = 0;
  Term ready_term_;
  std::vector<Observation> unpublished_observations_;  // until the flush publishes stats
  std::map<Index, Proposal> proposals_;
  Deadlines proposal_deadlines_;
  Duration armed_proposal_deadline_ = Duration::max();  // the timer set, if any
  std::map<std::uint64_t, PendingRead> reads_;
  ReadDeadlines read_deadlines_;
  Duration armed_read_deadline_ = Duration::max();  // the timer set, if any
  std::vector<std::uint64_t> parked_reads_;         // waiting for a leader or its term-start commit
  std::multimap<Index, std::uint64_t> apply_waiters_;  // read ids by index to reach
  std::uint64_t next_read_id_;  // random start: unique across runs (see first_read_id)
  std::size_t writes_outstanding_ = 0;
  Index applied_;
  Duration last_contact_{0};
  std::uint64_t log_writes_ = 0;
  std::uint64_t entries_written_ = 0;
  // Snapshots.
  std::optional<SnapshotMeta> last_snapshot_;  // the newest durable one
  Duration last_snapshot_duration_{0};
  bool snapshot_in_progress_ = false;
  Duration snapshot_started_{0};
  Duration snapshot_retry_at_{0};  // after a failure, no automatic one before this
  std::vector<Promise<SnapshotMeta>> snapshot_waiters_;
  std::uint64_t bytes_since_snapshot_ = 0;  // of entries handed to the applier
  std::uint64_t snapshots_taken_ = 0;
  std::uint64_t snapshot_failures_ = 0;
  std::uint64_t snapshots_installed_ = 0;
  // Snapshots received whole, by index, until the core installs them.
  // Snapshots received whole, not yet installed or passed over, with when
  // their transfer began.
  struct ReceivedSnapshot {
    SnapshotMeta meta;
    Duration started{0};
  };
  std::map<Index, ReceivedSnapshot> received_snapshots_;
  std::optional<ReceivedSnapshot> installing_;  // handed to the applier to restore
  // Restores: one at a time, from the call until applied here or abandoned.
  // The restore whose bytes are being read, and its number (so that a
  // deadline timer knows whether it still reads the one it was set for).
  std::optional<Promise<Index>> restore_reading_;
  std::uint64_t restores_started_ = 0;
  std::optional<RestoreRun> restoring_;  // appended
  // Restored by the applier, in order; each finished once applied_ reaches it.
  std::deque<SnapshotMeta> restored_;
  std::uint64_t restores_applied_ = 0;
  // The leadership transfer in progress.
  struct PendingTransfer {
    Promise<LeaderInfo> promise;
    ServerId target;
    bool any = false;  // no target was named
    std::uint64_t number = 0;
  };
  std::optional<PendingTransfer> transfer_;
  PeerContact peer_contact_;           // while leading: which followers answer
  Index peer_contact_index_;           // the configuration entry peer_contact_ follows
  std::set<ServerId> peers_reported_;  // the per-peer gauges last reported (report_gauges)
  std::uint64_t transfers_started_ = 0;

  // --- any thread ---------------------------------------------------------------
  std::atomic<std::uint64_t> frames_rejected_{0};
  std::mutex shutdown_mutex_;  // orders "check stopping + post" against shutdown
  bool stopping_ = false;
  Promise<Index> stopped_promise_;
  mutable std::mutex published_mutex_;
  Published published_;
};

}  // namespace keel::runtime
