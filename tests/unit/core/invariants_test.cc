// Broken invariants abort, naming the invariant (STYLE: "broken invariants
// abort with a message that names the invariant"): in RaftLog, in Node, and in
// the cluster-wide checker.
#include <gtest/gtest.h>

#include "core/cluster_invariants.h"
#include "test_util.h"

namespace keel::core {
namespace {

using namespace testutil;  // NOLINT(google-build-using-namespace): test vocabulary

// A node alone in a configuration of its own, booted with `log` and `commit`.
Node lone_node(std::uint64_t id, std::vector<LogEntry> log = {}, std::uint64_t commit = 0) {
  CoreConfig config = plain_config();
  config.id = S(id);
  BootState boot;
  boot.hard_state.term = log.empty() ? T(0) : log.back().term;
  boot.hard_state.commit = I(commit);
  boot.entries = std::move(log);
  boot.configuration.servers.push_back(Server{S(id), "node"});
  return Node(config, std::move(boot));
}

TEST(InvariantsDeathTest, AppendingANonContiguousEntryAbortsTheLog) {
  RaftLog log(I(0), T(0), log_with_terms({1}));
  EXPECT_DEATH(log.append(entry(3, 1)), "log indices are contiguous");
}

TEST(InvariantsDeathTest, AppendingAnEntryOfAnOlderTermAbortsTheLog) {
  RaftLog log(I(0), T(0), log_with_terms({2}));
  EXPECT_DEATH(log.append(entry(2, 1)), "log terms never decrease");
}

TEST(InvariantsDeathTest, TruncatingAtTheLogBaseAbortsTheLog) {
  RaftLog log(I(4), T(2), {});
  EXPECT_DEATH(log.truncate_from(I(4)), "truncation stays after the log base");
}

TEST(InvariantsDeathTest, ReadingOutsideTheLogAborts) {
  RaftLog log(I(0), T(0), log_with_terms({1, 1}));
  EXPECT_DEATH(log.at(I(3)), "log access in range");
  EXPECT_DEATH(log.first_index_of_term_at(I(3)), "hint search starts inside the log");
}

TEST(InvariantsDeathTest, InvalidConfigAbortsNodeConstruction) {
  CoreConfig config;
  config.election_timeout_ticks = 1;  // not above the heartbeat interval
  EXPECT_DEATH(make_node(1, 3, config), "config is valid");
}

TEST(InvariantsDeathTest, MessageForAnotherNodeAbortsTheNode) {
  Node node = make_node(2, 3);
  EXPECT_DEATH(node.step(heartbeat(1, 3, 1)), "message is addressed to this node");
}

TEST(InvariantsDeathTest, AppendFromAnotherLeaderOfTheSameTermAbortsTheLeader) {
  Node leader = make_node(1, 3);
  make_leader(leader);
  EXPECT_DEATH(leader.step(append(2, 1, 1, 0, 0)), "election safety: one leader per term");
}

TEST(InvariantsDeathTest, ApplyingEntriesThatWereNotHandedOutAborts) {
  Node node = make_node(1, 3);
  EXPECT_DEATH(node.on_applied(I(1)), "only handed-out entries are applied");
}

TEST(InvariantsDeathTest, TwoLeadersInOneTermAbortTheClusterChecker) {
  Node a = lone_node(1);
  Node b = lone_node(2);
  a.campaign();
  b.campaign();
  ASSERT_TRUE(a.is_leader() && b.is_leader());
  ASSERT_EQ(a.term(), b.term());
  ClusterInvariants invariants;
  EXPECT_DEATH(invariants.check({&a, &b}), "election safety: at most one leader per term");
}

TEST(InvariantsDeathTest, TwoEntriesCommittedAtOneIndexAbortTheClusterChecker) {
  Node a = lone_node(1, {LogEntry{T(1), I(1), EntryType::kCommand, "a"}}, 1);
  Node b = lone_node(2, {LogEntry{T(1), I(1), EntryType::kCommand, "b"}}, 1);
  ClusterInvariants invariants;
  invariants.check({&a});  // seen at different times: still caught
  EXPECT_DEATH(invariants.check({&b}), "state machine safety: one committed entry per index");
}

TEST(InvariantsDeathTest, LogsAgreeingAtAnEntryButNotBeforeItAbortTheClusterChecker) {
  Node a = lone_node(1, {LogEntry{T(1), I(1), EntryType::kCommand, "a"}, entry(2, 2, "x")});
  Node b = lone_node(2, {LogEntry{T(1), I(1), EntryType::kCommand, "b"}, entry(2, 2, "x")});
  ClusterInvariants invariants;
  EXPECT_DEATH(invariants.check({&a, &b}), "log matching: same index and term means same prefix");
}

TEST(InvariantsDeathTest, LeaderMissingACommittedEntryAbortsTheClusterChecker) {
  Node committed = lone_node(1, {entry(1, 1, "a")}, 1);
  Node leader = lone_node(2);
  // Node 2 leads term 1 alone, hears of term 2, then leads term 3: its entry
  // at 1 is its own term-start entry, not the committed "a".
  leader.campaign();
  leader.step(
      Message{.type = MessageType::kHeartbeatRequest, .from = S(3), .to = S(2), .term = T(2)});
  leader.campaign();
  ASSERT_TRUE(leader.is_leader());
  ASSERT_EQ(leader.term(), T(3));
  ClusterInvariants invariants;
  invariants.check({&committed});
  EXPECT_DEATH(invariants.check({&leader}), "leader completeness");
}

TEST(Invariants, HealthyClusterPassesTheCheckerAfterEveryStep) {
  sim::CoreCluster cluster(cluster_options(3));
  elect_and_settle(cluster, S(1));
  for (const char* data : {"a", "b"}) ASSERT_TRUE(cluster.propose(S(1), data).is_ok());
  ASSERT_TRUE(cluster.stabilize());
  cluster.check_invariants();
  EXPECT_EQ(cluster.invariants().committed().size(), 3u);  // term start, a, b
}

}  // namespace
}  // namespace keel::core
