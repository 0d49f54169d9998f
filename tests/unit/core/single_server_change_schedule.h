// The schedule of the single-server change bug (found in Raft in 2015): two
// single-server changes, each from a different leader, whose majorities do
// not overlap, because the second leader changes the configuration before
// an entry of its own term has committed. Shared by the rule's test
// (membership_test.cc: the change waits, nothing committed is lost) and its
// canary's (membership_canary_test.cc: a committed entry is overwritten).
//
//   C0 = {1, 2, 3, 4}, leader 1 (term 1).
//   1. 1 adds 5 as a learner, which catches up; then it promotes 5:
//      C1 = C0 + 5 reaches only 5; then 1 crashes.
//   2. 2 is elected by 2, 3, 4 under C0 (term 2); its term-start entry
//      reaches nobody yet.
//   3. 2, now hearing only 3, removes 1: C2 = {2, 3, 4}, which 2 and 3 alone
//      commit -- if 2 may append it before its term-start entry commits.
//   4. 1 restarts, campaigns under C1 and wins with 1, 4 and 5 (term 3): none of them
//      holds an entry of term 2, so 4 votes for it. It commits its own entries
//      at the indices where C2 was committed.
//
// Waiting for the term-start entry breaks the schedule at step 3: committing
// it needs three of C0, so one of 4 and 1 would have it and refuse 1's
// votes, or the change is never appended.
//
// Thread safety: test code; one thread.
#pragma once

#include <optional>

#include <gtest/gtest.h>

#include "test_util.h"

namespace keel::core::testutil {

struct SingleServerChangeRun {
  Index added_at;                   // where 1 appended C1
  std::optional<Index> removed_at;  // where 2 appended C2, if it could
  Term second_term;                 // 2's term
};

// Runs the schedule on a cluster of four voters; 5 is added to it here.
inline void run_single_server_change_schedule(sim::CoreCluster& cluster,
                                              SingleServerChangeRun& run) {
  using Kind = ConfigurationChange::Kind;
  elect_and_settle(cluster, S(1));
  // 1.
  cluster.add_server(S(5));
  ASSERT_TRUE(
      cluster.change_configuration(S(1), {ConfigurationChange{Kind::kAddLearner, S(5), "node-5"}})
          .is_ok());
  for (int round = 0; round < 3; ++round) {
    cluster.tick(S(1));
    ASSERT_TRUE(cluster.stabilize());
  }
  ASSERT_TRUE(cluster.node(S(5)).catch_up_floor().is_zero());
  cluster.partition({{S(1), S(5)}, {S(2), S(3), S(4)}});
  Result<Index> added =
      cluster.change_configuration(S(1), {ConfigurationChange{Kind::kAddVoter, S(5), "node-5"}});
  ASSERT_TRUE(added.is_ok()) << added.status().to_string();
  run.added_at = *added;
  ASSERT_TRUE(cluster.stabilize());
  ASSERT_EQ(cluster.node(S(5)).last_index(), run.added_at);
  ASSERT_LT(cluster.node(S(2)).last_index(), run.added_at);
  cluster.crash(S(1));
  // 2.
  ASSERT_TRUE(win_election(cluster, S(2)));
  run.second_term = cluster.node(S(2)).term();
  ASSERT_FALSE(cluster.node(S(2)).committed_in_current_term());
  // 3.
  cluster.partition({{S(1), S(5)}, {S(2), S(3)}, {S(4)}});
  Result<Index> removed =
      cluster.change_configuration(S(2), {ConfigurationChange{Kind::kRemoveServer, S(1), ""}});
  if (removed.is_ok()) run.removed_at = *removed;
  for (int round = 0; round < 3; ++round) {
    cluster.tick(S(2));
    ASSERT_TRUE(cluster.stabilize());
  }
  // 4.
  cluster.restart(S(1));
  cluster.partition({{S(1), S(4), S(5)}, {S(2), S(3)}});
  ASSERT_TRUE(win_election(cluster, S(1)));
  for (int round = 0; round < 3; ++round) {
    cluster.tick(S(1));
    ASSERT_TRUE(cluster.stabilize());
  }
}

}  // namespace keel::core::testutil
