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
//                         and must not be commands;
//   election safety       at most one leader per term (stats, kStateChanged,
//                         kLeaderReady and kLeaderChanged observations);
//   monotonic             per incarnation: term, commit and applied never go
//                         back; applied <= committed <= last index;
//   leader completeness   a ready leader of term T stores every entry known to
//                         be committed while no term above T - 1 existed;
//   log matching          two stores holding an entry with the same index and
//                         term hold the same entries up to it.
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
  void on_observation(ServerId id, const Observation& observation);
  // What server `id` published, read after one of its tasks ran.
  void on_stats(ServerId id, const RaftStats& stats, const LogStore& store);
  // Log matching between the stores of running servers, and leader
  // completeness for the ready leaders among them.
  void check_logs(const std::map<ServerId, const LogStore*>& stores,
                  const std::map<ServerId, RaftStats>& stats);

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
  };
  struct NodeState {
    std::vector<std::pair<Index, Term>> applied;
    bool seen_stats = false;
    RaftStats last;
    std::set<Term> completeness_checked;  // terms in which a ready leader was checked
  };

  void record_applied(ServerId id, const LogEntry& entry);
  void record_leader(ServerId id, Term term, const char* source);
  void check_monotonic(ServerId id, NodeState& node, const RaftStats& stats);
  void check_leader_completeness(ServerId id, Term term, const LogStore& store);
  void check_log_matching(ServerId a, const std::vector<LogEntry>& x, ServerId b,
                          const std::vector<LogEntry>& y);
  void violation(const std::string& what);

  Report report_;
  std::map<ServerId, NodeState> nodes_;
  std::vector<Committed> committed_;  // committed_[i] is index i + 1
  std::map<Term, ServerId> leaders_;
  Term highest_term_;
};

// "(index 5, term 2, command "put k v")": an entry, readable.
std::string describe(const LogEntry& entry);

}  // namespace keel::sim
