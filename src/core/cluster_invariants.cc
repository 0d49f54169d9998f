#include "core/cluster_invariants.h"

#include <algorithm>

#include "core/check.h"

namespace keel::core {

void ClusterInvariants::check(const std::vector<const Node*>& nodes) {
  for (const Node* node : nodes) {
    check_election_safety(*node);
    check_committed_prefix(*node);
  }
  for (const Node* node : nodes) check_leader_completeness(*node);
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    for (std::size_t j = i + 1; j < nodes.size(); ++j) check_log_matching(*nodes[i], *nodes[j]);
  }
}

void ClusterInvariants::check_election_safety(const Node& node) {
  if (!node.is_leader()) return;
  auto [it, inserted] = leaders_.emplace(node.term(), node.id());
  KEEL_CHECK("election safety: at most one leader per term", inserted || it->second == node.id());
}

void ClusterInvariants::check_committed_prefix(const Node& node) {
  // State machine safety: whatever a node holds as committed must agree with
  // what every other node has held as committed at the same index.
  const RaftLog& log = node.log();
  if (!log.base_index().is_zero()) {
    // The log base is the end of a snapshot: committed, so its term must be
    // that of the entry committed there.
    auto it = committed_.find(log.base_index());
    KEEL_CHECK("state machine safety: a snapshot ends at a committed entry",
               it == committed_.end() || it->second.term == log.base_term());
  }
  for (Index i = std::max(log.first_index(), Index{1}); i <= node.commit_index(); i = i.next()) {
    const LogEntry& entry = log.at(i);
    auto [it, inserted] = committed_.emplace(i, entry);
    KEEL_CHECK("state machine safety: one committed entry per index",
               inserted || it->second == entry);
    if (inserted) committed_by_.emplace(i, node.term());
  }
}

void ClusterInvariants::check_leader_completeness(const Node& node) {
  if (!node.is_leader()) return;
  // §5.4: a leader's log holds every entry committed in earlier terms.
  const RaftLog& log = node.log();
  for (const auto& [index, entry] : committed_) {
    if (committed_by_.at(index) >= node.term() || index < log.first_index()) continue;
    KEEL_CHECK("leader completeness: leader holds every committed entry",
               index <= log.last_index() && log.at(index) == entry);
  }
}

void ClusterInvariants::check_log_matching(const Node& a, const Node& b) {
  // §5.3: if two logs hold an entry with the same index and term, they are
  // identical up to it. Find the highest such index and compare below it,
  // down to where both logs still have entries.
  const RaftLog& x = a.log();
  const RaftLog& y = b.log();
  const Index low = std::max(x.first_index(), y.first_index());
  Index top = std::min(x.last_index(), y.last_index());
  while (top >= low && !top.is_zero() && x.at(top).term != y.at(top).term) top = top.prev();
  for (Index i = top; i >= low && !i.is_zero(); i = i.prev()) {
    KEEL_CHECK("log matching: same index and term means same prefix", x.at(i) == y.at(i));
  }
}

}  // namespace keel::core
