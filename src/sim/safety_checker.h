// sim/safety_checker.h — Raft's safety properties, checked on a running
// simulated cluster of full keel::Raft servers from what can be seen from
// outside them: what each state machine applies, what each server publishes
// (stats, observations) and what its stores hold.
//
//   state-machine safety  no two servers apply different entries at one index
//                         (over every server and every incarnation);
//   contiguous apply      a server applies indices 1, 2, 3, ... in order; the
//                         entries its FSM never sees (keel's own: term-start,
//                         barrier, configuration) are read from its log store
//                         (before the next command, or as soon as the server
//                         publishes an applied index past them) and must not
//                         be commands;
//   election safety       at most one leader per term (stats, kStateChanged,
//                         kLeaderReady and kLeaderChanged observations);
//   monotonic             per incarnation: term, commit and applied never go
//                         back; applied <= committed <= last index;
//   leader completeness   a ready leader of term T stores every entry known to
//                         be committed while no term above T - 1 existed;
//   log matching          two stores holding an entry with the same index and
//                         term hold the same entries up to it;
//   persistence ordering  no message leaves a server before what it implies is
//                         durable in that server's stores: a message of term T
//                         (pre-votes aside) only once T is in the stable store,
//                         a granted vote only once that vote is, an append
//                         acknowledgement only once the entries are in the log
//                         store, unless a leader of a newer term has replaced
//                         them since (Figure 2: "before responding to RPCs");
//   lease promise         a voter that acknowledged a leader's heartbeat neither
//                         campaigns nor votes for another server while the lease
//                         that heartbeat could confirm may still run and that
//                         leader still leads (thesis §6.4.1), whether or not any
//                         client reads then, unless a TimeoutNow (a transfer)
//                         was sent in a term from that leader's up to the
//                         vote's: by it (it gave its lease up) or by a newer
//                         leader (whose election shows its lease is over);
//   lease reads           a lease read is not served after a leader of a higher
//                         term was elected, nor once the leases its voters'
//                         acknowledgements give it have run out: a quorum of
//                         voters (the leader counting itself) must have
//                         acknowledged a round of its term sent less than
//                         lease_timeout (on its clock) before the read was
//                         invoked;
//   read confirmation     a linearizable read a leader serves (leading in one
//                         term from the call to the answer) was confirmed by a
//                         quorum acknowledging a round it sent after the read
//                         was invoked (thesis §6.4, step 3);
//   removed servers       a server whose latest configuration does not list
//                         a server at all (and has not for a while: an answer
//                         decided earlier may wait for a disk write) never
//                         answers its vote or pre-vote requests unless the
//                         request's log is at least as up to date as its own
//                         store's: a removed server, whose log lacks its
//                         removal, cannot raise the terms of the servers that
//                         hold it;
//   read freshness        a linearizable or lease read reflects every entry
//                         committed before it was invoked: the index it returns
//                         is at least the highest commit index any server had
//                         published by then (thesis §6.4). Checked on the
//                         index alone, so a stale read is caught even when the
//                         value it returned happens to be the same;
//   fail-stop without     no server stops itself on Corruption (stats().failure):
//   damage                no fault damages bytes a store made durable, so that
//                         means keel broke its own log, snapshot or restore
//                         rules (a snapshot inside a restore's run, say).
//
// Quorums are those of the configuration the leader published (a majority
// of its voters; of both halves' voters while it is joint), at the read's
// call or at its answer; without one (tests), of set_voters().
//
// Leader completeness, precisely: when an entry is first seen applied, the
// highest term any server has published bounds the term of the leader that
// committed it (that leader published its term before it could commit). Raft
// promises the entry to every leader of a higher term (§5.4), so a leader of
// term T > bound must hold it. The check runs when a leader is first seen
// ready (its term-start entry applied, so everything before it is durable in
// its store) and at checkpoints.
//
// A violation is reported through the callback (the simulator stops the run
// and writes a report); the checker never aborts.
//
// Thread safety: none; the simulator's one thread calls it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/message.h"
#include "keel/log_store.h"
#include "keel/raft.h"
#include "keel/types.h"

namespace keel::sim {

class SafetyChecker {
 public:
  using Report = std::function<void(const std::string& violation)>;

  explicit SafetyChecker(Report report) : report_(std::move(report)) {}

  // Server `id` starts (again): its FSM starts empty and re-applies from 1.
  void on_start(ServerId id);
  // Server `id`'s FSM is about to apply `entry`; `store` is its log store.
  void on_apply(ServerId id, const LogEntry& entry, const LogStore& store);
  // Server `id`'s FSM now holds a snapshot's state through (index, term):
  // at open, or a leader's snapshot installed. Its applies continue after
  // it. The snapshot must end at an entry that was committed, or at one
  // that is (a later apply by anyone must find the same entry there).
  void on_restore(ServerId id, Index index, Term term);
  void on_observation(ServerId id, const Observation& observation);
  // What server `id` published, read after one of its tasks ran.
  void on_stats(ServerId id, const RaftStats& stats, const LogStore& store);
  // Log matching between the stores of running servers, and leader
  // completeness for the ready leaders among them.
  void check_logs(const std::map<ServerId, const LogStore*>& stores,
                  const std::map<ServerId, RaftStats>& stats);
  // What the simulator knows of a frame beyond its bytes.
  struct SendContext {
    Duration now{0};  // virtual time
    // For a heartbeat: the latest (virtual) time the lease its round could
    // confirm may end.
    Duration lease_end{0};
  };
  // Server `id` is about to send `message`; its stores hold what it made
  // durable (persistence ordering, lease promise).
  void on_send(ServerId id, const core::Message& message, const LogStore& log,
               const StableStore& stable, const SendContext& context);
  // What a read saw of the cluster when it was invoked.
  struct ReadCall {
    Duration time{0};
    Term target_term;             // the term the server it goes to published then
    bool target_led = false;      // ... and whether it led then
    Index floor;                  // highest_commit() then
    Configuration configuration;  // the target's latest configuration then
    Term newest_leader_term;      // the newest leader known then
    ServerId newest_leader;
  };
  ReadCall read_call(ServerId target, Duration now) const;
  // The voters (the others are learners) of servers that published no
  // configuration of their own (set_configuration).
  void set_voters(const std::set<ServerId>& voters);
  // The latest configuration server `id` published (at `now`): its
  // quorums, and whom it may answer.
  void set_configuration(ServerId id, Configuration latest, Duration now);
  // Every answer to a vote request `id` sent in its last step went to a
  // server its configurations listed within `grace` before `now` (call
  // after set_configuration, once the step is over).
  void settle_vote_answers(ServerId id, Duration now, Duration grace);
  // Server `id` lost its disk and starts again as a new server: what its
  // stores made durable and the leases it promised are gone with them.
  void on_wipe(ServerId id);
  // A read of server `id` at `consistency`, invoked as `call` says, returned
  // Ok with `served` at `now` (read freshness; lease reads too). Whether its
  // voters confirmed it is judged under the configuration of the call or of
  // the answer; the latter reaches the checker only once the server's step
  // is over (set_configuration), so a read no quorum confirmed waits for
  // settle_reads.
  void on_read_served(ServerId id, Consistency consistency, const ReadCall& call, Index served,
                      Duration now);
  // Judges the reads of server `id` left waiting by on_read_served in an
  // earlier instant than `now`, under its configuration now.
  void settle_reads(ServerId id, Duration now);
  // Leases are promised only while clocks drift within the bound: the
  // simulator turns the lease checks off when they may not.
  void set_lease_checks(bool on) { lease_checks_ = on; }
  // Whether `servers` hold a quorum of `configuration`: a majority of its
  // voters, of both halves' while it is joint.
  static bool quorum(const Configuration& configuration, const std::set<ServerId>& servers);
  // The highest commit index any server has published so far.
  Index highest_commit() const { return highest_commit_; }

  // (index, term) of every entry the current incarnation of `id` applied.
  const std::vector<std::pair<Index, Term>>& applied(ServerId id) const;
  // Entries applied by any server so far (a prefix of the log: 1..n).
  std::size_t committed_entries() const { return committed_.size(); }
  Term highest_term() const { return highest_term_; }
  // Every (term, leader) seen.
  const std::map<Term, ServerId>& leaders() const { return leaders_; }

 private:
  struct Committed {
    LogEntry entry;
    ServerId first_applied_by;
    Term bound;  // see the top of this file
    // False for an entry no server applied one by one yet: a server that
    // restored a snapshot past the known prefix skipped it (filled in when
    // another server applies it).
    bool known = true;
  };
  struct NodeState {
    std::vector<std::pair<Index, Term>> applied;
    // Entries up to here this incarnation's FSM reflects without the checker
    // having seen them one by one: a restored snapshot's, and keel's own
    // entries that compaction removed before a command followed them.
    Index unseen_through;
    bool seen_stats = false;
    RaftStats last;
    std::set<Term> completeness_checked;  // terms in which a ready leader was checked
    bool reported_corruption = false;     // a fail-stop on Corruption, reported once
  };
  // Terms in which a leader sent TimeoutNow: its lease is void for the rest
  // of the term (see check_lease_promise).
  std::set<Term> timeout_now_terms_;

  void record_applied(ServerId id, const LogEntry& entry);
  void check_unverified_snapshots(const LogEntry& entry, ServerId id);
  void record_leader(ServerId id, Term term, const char* source);
  // keel's own entries (term-start, barrier, configuration) that a server
  // has applied, up to the applied index it published, read from its store:
  // seen at once, not only once a command follows them (a configuration a
  // minority decided may be overwritten before one does).
  void record_own_entries(ServerId id, NodeState& node, Index applied, const LogStore& store);
  void check_monotonic(ServerId id, NodeState& node, const RaftStats& stats);
  void check_leader_completeness(ServerId id, Term term, const LogStore& store);
  void check_log_matching(ServerId a, const std::vector<LogEntry>& x, ServerId b,
                          const std::vector<LogEntry>& y);
  void violation(const std::string& what);

  Report report_;
  // Snapshot ends (index -> term, server) past what was applied when they
  // were restored; checked once the entry there is recorded.
  std::multimap<Index, std::pair<Term, ServerId>> unverified_snapshots_;
  std::map<ServerId, NodeState> nodes_;
  std::vector<Committed> committed_;  // committed_[i] is index i + 1
  std::map<Term, ServerId> leaders_;
  Term highest_term_;
  Index highest_commit_;
  // Per server, the newest hard state its stable store was seen to hold (it
  // is read again only when a message carries a newer term or a vote).
  std::map<ServerId, std::pair<Term, ServerId>> durable_votes_;
  // Lease promises: per leader, the rounds it sent lately ((term, round) ->
  // when a lease from it would end); per voter and leader, the latest such
  // lease end the voter acknowledged.
  struct LeaseRound {
    Term term;
    Duration sent{0};
    Duration lease_end{0};
  };
  // How many voters (the server itself included) acknowledged a round of
  // `id`'s, of `term` or later, sent at `sent_after` or later and giving a
  // lease past `lease_past`.
  std::set<ServerId> voters_acknowledging(ServerId id, Term term, Duration sent_after,
                                          Duration lease_past) const;
  const Configuration& configuration_of(ServerId id) const;
  void check_lease_promise(ServerId voter, ServerId candidate, Term term, Duration now,
                           const core::Message& m);
  std::map<ServerId, std::map<std::pair<Term, std::uint64_t>, LeaseRound>> rounds_sent_;
  std::map<ServerId, std::map<ServerId, LeaseRound>> promises_;
  bool lease_checks_ = true;
  Configuration default_configuration_;
  std::map<ServerId, Configuration> configurations_;
  // Per server, when each server its configuration dropped was last listed.
  std::map<ServerId, std::map<ServerId, Duration>> last_listed_;
  // Per candidate, the log position its latest vote or pre-vote request named.
  std::map<ServerId, std::pair<Term, Index>> candidate_logs_;
  // Per server, its log's last position as of its latest send and the one
  // before it changed: a server answers a vote request with the log it held
  // when the request was processed, which the rest of its step (an append
  // of a new leader among the same messages) may have moved past.
  struct LogPositions {
    std::pair<Term, Index> latest;
    std::pair<Term, Index> before;
  };
  std::map<ServerId, LogPositions> log_positions_;
  // Vote answers to servers the sender's configuration did not list before
  // the step, judged at a later instant (settle_vote_answers).
  struct UnlistedAnswer {
    Duration sent{0};
    ServerId to;
    std::string what;
  };
  std::map<ServerId, std::vector<UnlistedAnswer>> unlisted_answers_;
  // Reads whose confirming servers were no quorum of the configuration of
  // their call nor of the one the checker knew at their answer.
  struct UnconfirmedRead {
    Duration answered{0};
    std::set<ServerId> confirming;
    std::string what;  // the violation, should the answer's configuration not excuse it
  };
  std::map<ServerId, std::vector<UnconfirmedRead>> unconfirmed_reads_;
};

// "(index 5, term 2, command "put k v")": an entry, readable.
std::string describe(const LogEntry& entry);

}  // namespace keel::sim
