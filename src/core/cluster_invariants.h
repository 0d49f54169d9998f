// core/cluster_invariants.h — safety properties that span several nodes,
// checked by tests, scenario scripts and the simulator after every event.
//
// One node cannot check them alone: election safety (at most one leader per
// term, §5.2), log matching (§5.3), leader completeness (§5.4) and state
// machine safety (no two nodes commit different entries at one index). The
// checker remembers what it has seen (leaders by term, committed entries),
// so a violation spread over time is caught too. A violation aborts with the
// invariant's name, like KEEL_CHECK.
//
// Thread safety: a value; use from the thread that drives the nodes.
#pragma once

#include <map>
#include <vector>

#include "core/node.h"
#include "keel/types.h"

namespace keel::core {

class ClusterInvariants {
 public:
  // Checks the nodes as they are now. Crashed nodes may simply be left out.
  void check(const std::vector<const Node*>& nodes);

  // Every entry any node has reported committed, by index.
  const std::map<Index, LogEntry>& committed() const { return committed_; }

 private:
  void check_election_safety(const Node& node);
  void check_committed_prefix(const Node& node);
  void check_leader_completeness(const Node& node);
  static void check_log_matching(const Node& a, const Node& b);

  std::map<Term, ServerId> leaders_;
  std::map<Index, LogEntry> committed_;
  // The term of the node first seen holding each entry committed: no earlier
  // than the term of the leader that committed it, which is what leader
  // completeness counts from (an entry of term 1 committed in term 3 need
  // not be in the log of a leader of term 2).
  std::map<Index, Term> committed_by_;
};

}  // namespace keel::core
