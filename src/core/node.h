// core/node.h — one Raft server as a pure, deterministic state machine.
//
// The shell (the runtime, a test, the simulator) feeds a Node three kinds of
// input — step(message), tick() and client calls (propose, read_index,
// campaign, transfer_leadership) — and collects its output with ready(),
// carrying it out in the order ready.h prescribes. Afterwards it reports what
// became durable (on_persisted) and what the state machine applied
// (on_applied). The Node never assumes durability it was not told about.
//
// A Node performs no I/O, reads no clock and draws randomness only from the
// PRNG seeded by CoreConfig::random_seed: the same inputs give the same
// outputs, bit for bit.
//
// Thread safety: none. A Node is a value owned by one thread (or one
// simulated executor) at a time.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <variant>
#include <vector>

#include "core/config.h"
#include "core/log.h"
#include "core/membership.h"
#include "core/message.h"
#include "core/prng.h"
#include "core/progress.h"
#include "core/quorum.h"
#include "core/read_index.h"
#include "core/ready.h"
#include "keel/status.h"
#include "keel/types.h"

namespace keel::core {

// What a node recovers from its stores when it starts.
struct BootState {
  HardState hard_state;
  // The durable log: entries after (base_index, base_term).
  Index log_base_index;
  Term log_base_term;
  std::vector<LogEntry> entries;
  // The highest index the state machine is known to have applied.
  Index applied;
  // The configuration in force at the log base (the snapshot's; empty with
  // no snapshot) and the index of the entry that held it. The node reads the
  // configuration entries of `entries` itself: the newest is in force.
  Configuration configuration;
  Index configuration_index;
  // The newest durable snapshot (zero if none): it covers the log base, so
  // log_base_index <= snapshot_index.
  Index snapshot_index;
  Term snapshot_term;
};

// Votes gathered by a pre-candidate or candidate; quorum_.vote_result says
// what they add up to.
struct VoteTally {
  std::map<ServerId, bool> responses;  // voter -> granted
};

struct FollowerRole {};

struct PreCandidateRole {
  VoteTally votes;
};

struct CandidateRole {
  VoteTally votes;
};

struct LeaderRole {
  std::map<ServerId, Progress> progress;  // every other server in the configuration
  Index term_start_index;
  bool ready_announced = false;
  // Read rounds, the reads waiting for them, and the lease (thesis §6.4).
  ReadRounds reads;
  // Bytes of this leader's entries not yet committed (bounded by config).
  std::uint64_t uncommitted_bytes = 0;
  // Leadership transfer in progress: the target and when it started.
  ServerId transfer_target;
  std::uint64_t transfer_started_tick = 0;
  // A TimeoutNow went out in this term: lease reads are off for good.
  bool sent_timeout_now = false;
  // Servers the latest configuration removed that are still being told
  // (their progress is in `progress`, marked leaving_at).
  std::map<ServerId, Server> leaving;
};

using RoleState = std::variant<FollowerRole, PreCandidateRole, CandidateRole, LeaderRole>;

class Node {
 public:
  // Requires config.validate() to be ok.
  Node(CoreConfig config, BootState boot);

  // --- inputs ---------------------------------------------------------------
  void tick();
  void step(const Message& message);
  // Appends an entry as leader; returns its index, or NotLeader (with the
  // known leader), LeadershipTransferInProgress or ResourceExhausted.
  // Configuration entries go through propose_configuration_change.
  Result<Index> propose(EntryType type, Payload data);
  // Appends the configuration entry that `changes` lead to (thesis ch. 4):
  // the new configuration when at most one voter comes or goes, else the
  // joint one, which this leader leaves for the new one by itself once it
  // commits. Returns the entry's index; the change is done when the latest
  // configuration is no longer joint and is committed. Refused with
  // ConfigurationChangeInProgress while an earlier change is not committed
  // (or its joint configuration not left) and when `prev_index` is not 0 and
  // not the latest configuration's index; with Unavailable until an entry of
  // this leader's term has committed (the single-server change bug of 2015:
  // a change appended before that may be decided by a configuration a
  // previous leader's uncommitted change already left); with InvalidArgument
  // (apply_changes). Changes that change nothing return the latest index.
  Result<Index> propose_configuration_change(const std::vector<ConfigurationChange>& changes,
                                             Index prev_index);
  // Appends one entry of `type` per element of `data`, at consecutive
  // indices, all or none, and returns the first index: a run nothing may be
  // interleaved with (Raft::restore's pieces). Not held to
  // max_uncommitted_bytes (the caller bounds the run); counted in it.
  Result<Index> propose_run(EntryType type, const std::vector<std::string>& data);
  // Starts a ReadIndex read (thesis §6.4). On a leader the read index is its
  // commit index, released as a ReadState once a quorum confirms leadership;
  // refused (Unavailable) until an entry of the leader's term has committed,
  // since before that the leader's commit index may be behind. A follower
  // forwards the request to its leader.
  Status read_index(std::uint64_t request_id);
  // The read index for a lease read, if this leader holds a lease now (see
  // CoreConfig::lease_ticks) and has committed an entry of its term.
  Result<Index> lease_read_index() const;
  // Starts an election now (as if the election timeout fired).
  void campaign();
  // Hands leadership to `target` (thesis §3.10): once the target's log is
  // current, it is told to campaign at once. Proposals are refused meanwhile;
  // the transfer is abandoned after an election timeout.
  Status transfer_leadership(ServerId target);
  // Gives a transfer in progress up: proposals are accepted again. A
  // TimeoutNow already sent cannot be recalled (its target may still win),
  // so this leader's lease stays void for the rest of its term.
  void abort_leadership_transfer();
  // The target of the transfer in progress, or kNoServer (also on a
  // follower, and once the transfer was abandoned after an election timeout).
  ServerId transfer_target() const;

  // --- snapshots ------------------------------------------------------------
  // The shell made a snapshot of the state machine through `index` (whose
  // entry has `term`) durable. A leader sends the newest one to followers
  // whose next entry is compacted away.
  void on_snapshot(Index index, Term term);
  // Drops the log's entries up to `through`, which must be applied and in a
  // durable snapshot (InvalidArgument otherwise); the shell cuts its log
  // store to match. A `through` at or below the log base changes nothing.
  Status compact(Index through);
  // The shell gave up sending `peer` the snapshot asked for (a failed read,
  // no progress): the leader probes the follower again, which asks for a
  // snapshot anew if it is still needed.
  void report_snapshot_failed(ServerId peer);

  // --- output ---------------------------------------------------------------
  // Whether ready() may have something (it may still return an empty Ready).
  bool has_ready() const;
  Ready ready();
  // Leader: whether a follower is owed a commit notice, i.e. the commit
  // index it could learn moved past what it was last sent, and nothing
  // carried it since (CoreConfig::commit_notices_at_once false).
  bool commit_notice_due() const;
  // Leader: sends every commit notice that is due; the next ready() holds
  // them. Nothing otherwise.
  void send_commit_notices();

  // --- acknowledgements -----------------------------------------------------
  // Entries up to `index`, whose entry has `term`, are durable. A stale
  // acknowledgement (the entry was replaced since) is ignored.
  void on_persisted(Index index, Term term);
  // The hard state of `term` (the term and the vote cast in it) is durable.
  // Until then no message of `term` leaves this node before the write that
  // holds it (see send() in node.cc); an acknowledgement of an older term
  // changes nothing.
  void on_term_persisted(Term term);
  // The state machine has applied every committed entry up to `index`.
  void on_applied(Index index);

  // --- observation ----------------------------------------------------------
  ServerId id() const { return config_.id; }
  Role role() const;
  bool is_leader() const { return std::holds_alternative<LeaderRole>(role_); }
  Term term() const { return term_; }
  ServerId vote() const { return vote_; }
  ServerId leader() const { return leader_; }
  Index commit_index() const { return commit_; }
  Index applied_index() const { return applied_; }
  Index persisted_index() const { return persisted_; }
  Index snapshot_index() const { return snapshot_index_; }
  Term snapshot_term() const { return snapshot_term_; }
  Index last_index() const { return log_.last_index(); }
  const RaftLog& log() const { return log_; }
  // The latest configuration (in force), and both with their indices.
  const Configuration& configuration() const { return configurations_.latest(); }
  ConfigurationState configuration_state() const;  // copies both
  Index committed_configuration_index() const { return configurations_.at(commit_).first; }
  Index latest_configuration_index() const { return configurations_.latest_index(); }
  // The configuration in force at `index` (>= the log base), and its index:
  // what a snapshot through `index` records.
  const std::pair<Index, Configuration>& configuration_at(Index index) const {
    return configurations_.at(index);
  }
  // A server this node sends to: a member of the latest or the committed
  // configuration, or one a leader removed and is still telling so. Null
  // otherwise.
  const Server* peer(ServerId id) const;
  // This server was a member of a committed configuration and the committed
  // configuration no longer holds it.
  bool removed() const { return removed_; }
  HardState hard_state() const {
    return HardState{term_, vote_, commit_, catch_up_floor_, catch_up_floor_term_};
  }
  // Nonzero while this server, started with empty stores, has not yet
  // matched a leader's log through the index its first leader named (where
  // its present membership began, Message::catch_up_floor): until then it
  // does not campaign, and votes only for candidates whose log is at least
  // as up to date as (that leader's term, the floor): theirs hold this
  // life's history. Its earlier life (a wiped identity) may have acknowledged
  // entries that its log now lacks, and the configurations it learns on
  // the way (an old snapshot's, say) may list it as a voter of a cluster
  // long gone, where its vote would elect a stale removed server.
  Index catch_up_floor() const { return catch_up_floor_; }
  // The leader's view of a follower, or nullptr when not leading.
  const Progress* progress(ServerId peer) const;
  // Whether this leader has committed an entry of its own term.
  bool committed_in_current_term() const;
  // Ticks since the node started (the core's only notion of time).
  std::uint64_t ticks() const { return ticks_; }

 private:
  // Term handling shared by every message; false means "drop the message".
  bool step_term(const Message& m);
  void step_by_type(const Message& m);

  void tick_election();
  void tick_leader();

  void become_follower(Term term, ServerId leader);
  void become_pre_candidate();
  void become_candidate(bool leadership_transfer);
  void become_leader();
  void set_role(RoleState role);
  void set_leader(ServerId leader);
  bool may_campaign() const;
  void start_campaign(bool leadership_transfer);
  void reset_election_timer();

  // A leader's append or snapshot arrived: follow it, restart the timers.
  void follow_sender(const Message& m);
  void handle_append(const Message& m);
  void handle_heartbeat(const Message& m);
  void handle_vote_request(const Message& m);
  void handle_vote_response(const Message& m);
  void handle_append_response(const Message& m);
  void handle_heartbeat_response(const Message& m);
  void handle_read_index_request(const Message& m);
  void handle_read_index_response(const Message& m);
  void handle_timeout_now(const Message& m);
  void handle_snapshot(const Message& m);
  void install_snapshot(const Message& m);

  void append_from_leader(const Message& m);
  void advance_commit_to(Index index);
  void maybe_commit();
  void on_commit_advanced(Index old_commit);
  void maybe_announce_ready();

  Index self_match() const;
  // Whether this node must refuse to help elect another leader now: it heard
  // from a leader within the election timeout (or just started, see .cc).
  bool in_leader_lease() const;
  // The round a new read joins: one whose heartbeats have not gone out yet.
  std::uint64_t round_for_new_read();
  bool quorum_active(const LeaderRole& leader) const;
  // A configuration entry entered the log at `index` (either role).
  void append_configuration(Index index, Configuration configuration);
  // The latest configuration changed (appended, truncated away, installed):
  // the quorum rules and a leader's followers follow it.
  void on_configuration_changed();
  // After the commit index moved (either role): a leader leaves a committed
  // joint configuration and steps down from one that no longer holds it as
  // a voter; every node notes whether it was removed.
  void after_commit();
  // Whether the committed configuration tells this server it was removed.
  bool below_catch_up_floor(const Message& vote_request) const;
  void pass_catch_up_floor(Index matched);
  Index catch_up_floor_for(ServerId peer, const Progress& progress) const;
  void update_removed();
  void step_down_removed();
  // A leader stops telling removed servers once they know, or in time.
  void forget_told_servers();
  Progress* find_progress(ServerId peer);
  // This leader, if it may propose now (not while a leadership transfer
  // runs); else null, and refusal_to_propose() says why.
  LeaderRole* proposing_leader();
  Status refusal_to_propose() const;
  // A leader's own new entry: ResourceExhausted if it would take the bytes
  // not yet committed past max_uncommitted_bytes; append_own appends it
  // (without asking) and counts it.
  Status check_uncommitted_room(const LeaderRole& leader, const LogEntry& entry) const;
  Index append_own(LeaderRole& leader, const LogEntry& entry);
  // A follower's progress as this leader starts it, probing from `next`.
  Progress new_progress(Index next) const;
  // This node is the configuration's only voter.
  bool sole_voter() const;
  // A response answers this progress's life (see Progress::epoch).
  bool current_epoch(const Progress& progress, const Message& m) const;

  void flush_replication();
  void send_appends(ServerId peer, Progress& progress);
  void send_snapshot(ServerId peer, Progress& progress);
  // The commit index `progress`'s follower is owed a notice of, if any.
  std::optional<Index> commit_notice_owed(const Progress& progress) const;
  void send_commit_notice(ServerId peer, Progress& progress);
  void send_heartbeats();
  std::uint64_t open_read_round();
  void release_confirmed_reads();
  void fail_pending_reads(LeaderRole& leader);
  void maybe_send_timeout_now(ServerId peer);

  void send(Message message);
  Index apply_limit() const;
  void check_invariants();

  CoreConfig config_;
  ConfigurationLog configurations_;
  bool was_member_ = false;  // of a committed configuration, ever
  bool removed_ = false;
  // The leader's last heartbeat said this server is not in its latest
  // configuration (Message::removed).
  bool told_removed_ = false;
  Index catch_up_floor_;
  Term catch_up_floor_term_;  // the term of the leader that named it
  bool opened_ = false;       // the constructor is done
  Prng prng_;

  Term term_;
  ServerId vote_;
  ServerId leader_;
  RaftLog log_;
  Index commit_;
  Index applied_;
  Index applied_handed_;  // the last committed entry handed to the shell to apply
  Index persisted_;       // the log is durable up to here
  Term durable_term_;     // the newest term the shell reported durable (on_term_persisted)
  Index unstable_from_;   // the first entry not yet handed to the shell to persist
  HardState last_hard_state_;
  Index snapshot_index_;  // the newest durable snapshot (the shell's or an installed one)
  Term snapshot_term_;
  std::optional<SnapshotInstall> pending_install_;  // not yet handed to the shell

  std::uint64_t ticks_ = 0;
  std::uint32_t election_elapsed_ = 0;
  // Ticks since a leader's append or heartbeat last reached this node (in
  // whatever term). Unlike election_elapsed_, a term change does not reset
  // it: the promise a follower gives a leader's lease -- no vote for anyone
  // else for an election timeout -- outlives a term it adopts from a
  // response (see in_leader_lease in node.cc).
  std::uint64_t leader_contact_elapsed_ = 0;
  std::uint32_t heartbeat_elapsed_ = 0;
  std::uint32_t randomized_election_timeout_ = 0;

  RoleState role_;
  bool needs_flush_ = false;

  // ReadIndex requests this follower forwarded, by request id: only an
  // answer from the leader it asked, in the term it asked in, releases one.
  struct ForwardedRead {
    ServerId leader;
    Term term;
  };
  std::map<std::uint64_t, ForwardedRead> forwarded_reads_;

  std::vector<Message> messages_;
  std::vector<Message> messages_after_persist_;
  std::vector<ReadState> read_states_;
  std::vector<Event> events_;

  // Who decides, derived from the latest configuration
  // (on_configuration_changed keeps the two together); every majority
  // question goes to it.
  JointConfig quorum_;
  std::vector<std::uint64_t> quorum_scratch_;  // reused by quorum_.committed's callers

  // For the monotonicity invariants.
  Term checked_term_;
  Index checked_commit_;
};

}  // namespace keel::core
