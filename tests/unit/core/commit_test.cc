// Commitment (§5.4): the Figure 8 rule, the follower commit clamp, the
// leader's own durability, stale persistence acknowledgements, and the bound
// on uncommitted bytes.
#include <gtest/gtest.h>

#include "test_util.h"

namespace keel::core {
namespace {

using namespace testutil;  // NOLINT(google-build-using-namespace): test vocabulary

// --- Figure 8 ------------------------------------------------------------------

// Five nodes, one entry per append so that entries travel one at a time.
sim::CoreCluster figure8_cluster() {
  CoreConfig config = plain_config();
  config.check_quorum = false;
  config.max_append_entries = 1;
  return sim::CoreCluster(cluster_options(5, config));
}

// Plays Figure 8 (a)-(c) with term-start entries:
//   S1 leads term 1; "x" (2/1) reaches S2 only; S1 crashes.
//   S5 wins term 2 with S3 and S4, appends 2/2, replicates nothing, crashes.
//   S1 restarts and wins term 3 (log 1/1 2/1 3/3); 2/1 reaches S3, so 2/1 is
//   on S1, S2, S3 — a majority — while 3/3 is only on S1 and S2.
void play_figure8_until_old_entry_is_on_a_majority(sim::CoreCluster& cluster) {
  elect_and_settle(cluster, S(1));
  ASSERT_EQ(*cluster.propose(S(1), "x"), I(2));
  cluster.deliver(of_type_to(MessageType::kAppendRequest, 2));
  cluster.drop(any_message);
  cluster.crash(S(1));

  ASSERT_TRUE(win_election(cluster, S(5)));
  ASSERT_EQ(cluster.node(S(5)).term(), T(2));
  cluster.drop(any_message);
  cluster.crash(S(5));

  cluster.restart(S(1));
  ASSERT_TRUE(win_election(cluster, S(1)));
  ASSERT_EQ(cluster.node(S(1)).term(), T(3));
  // In flight: appends of 3/3 after 2/1. S2 holds 2/1 and takes 3/3; S3
  // lacks 2/1, rejects, and is sent 2/1 alone.
  cluster.deliver([](const Message& m) { return m.to == S(2) || m.to == S(3); });
  cluster.deliver(of_type(MessageType::kAppendResponse));
  cluster.drop([](const Message& m) { return m.to != S(3); });
  cluster.deliver(of_type_to(MessageType::kAppendRequest, 3));
  cluster.deliver(of_type(MessageType::kAppendResponse));
  for (std::uint64_t id : {1, 2, 3}) ASSERT_EQ(cluster.node(S(id)).log().term_at(I(2)), T(1));
  ASSERT_EQ(cluster.node(S(1)).progress(S(3))->match_index, I(2));
  ASSERT_EQ(cluster.node(S(1)).progress(S(2))->match_index, I(3));
}

TEST(Commit, LeaderDoesNotCommitEntryFromPreviousTermByCounting) {
  sim::CoreCluster cluster = figure8_cluster();
  play_figure8_until_old_entry_is_on_a_majority(cluster);
  if (HasFatalFailure()) return;
  EXPECT_EQ(cluster.node(S(1)).commit_index(), I(1));

  // Figure 8 (d): that was right. S1 crashes before 3/3 spreads; S5 (last
  // term 2) can still win with S3 and S4, and replaces 2/1 everywhere. Had
  // S1 committed 2/1, the invariant checker would abort here.
  cluster.drop(any_message);
  cluster.crash(S(1));
  cluster.restart(S(5));
  ASSERT_TRUE(win_election(cluster, S(5), 4));
  ASSERT_TRUE(cluster.stabilize());
  for (std::uint64_t id : {2, 3, 4, 5}) {
    EXPECT_EQ(cluster.node(S(id)).log().term_at(I(2)), T(2)) << "node " << id;
  }
  EXPECT_EQ(cluster.invariants().committed().at(I(2)).term, T(2));
}

TEST(Commit, EntryFromPreviousTermCommitsWithAnEntryOfTheCurrentTerm) {
  sim::CoreCluster cluster = figure8_cluster();
  play_figure8_until_old_entry_is_on_a_majority(cluster);
  if (HasFatalFailure()) return;

  // Figure 8 (e): 3/3 reaches S3 too; a current-term entry on a majority
  // commits, and 2/1 with it.
  cluster.deliver(of_type_to(MessageType::kAppendRequest, 3));
  cluster.deliver(of_type(MessageType::kAppendResponse));
  EXPECT_EQ(cluster.node(S(1)).commit_index(), I(3));
  EXPECT_EQ(cluster.invariants().committed().at(I(2)).data, "x");
}

// --- follower clamp -------------------------------------------------------------

// Follower 2 holds 1/1 2/1 3/1 from an old leader: 2 and 3 may be stale.
Node follower_with_stale_suffix() {
  return make_node(2, 3, plain_config(), log_with_terms({1, 1, 1}));
}

TEST(Commit, FollowerCommitIsClampedToWhatAnEmptyAppendVerified) {
  Node follower = follower_with_stale_suffix();
  // The term-2 leader's log matches only up to 1; its commit index is 5.
  follower.step(append(1, 2, 2, 1, 1, {}, 5));
  EXPECT_EQ(follower.commit_index(), I(1));  // not 3: 2/1 and 3/1 were not verified
}

TEST(Commit, FollowerCommitIsClampedToTheEntriesTheAppendCarried) {
  Node follower = follower_with_stale_suffix();
  follower.step(append(1, 2, 2, 1, 1, {entry(2, 2)}, 5));
  EXPECT_EQ(follower.last_index(), I(2));
  EXPECT_EQ(follower.commit_index(), I(2));
}

TEST(Commit, FollowerCommitFollowsTheLeaderWithinVerifiedEntries) {
  Node follower = follower_with_stale_suffix();
  follower.step(append(1, 2, 1, 3, 1, {}, 2));
  EXPECT_EQ(follower.commit_index(), I(2));
}

// --- commit notices -----------------------------------------------------------------

// Appends to each follower that carry no entries: commit notices.
std::vector<Message> commit_notices(const std::vector<Message>& messages) {
  std::vector<Message> notices;
  for (const Message& m : messages) {
    if (m.type == MessageType::kAppendRequest && m.entries.empty()) notices.push_back(m);
  }
  return notices;
}

// Proposes "x" on leader 1 and delivers its appends and their answers:
// "x" commits on the leader, and nothing else is in flight.
Index commit_x_on_the_leader(sim::CoreCluster& cluster) {
  elect_and_settle(cluster, S(1));
  const Index x = *cluster.propose(S(1), "x");
  cluster.deliver(of_type(MessageType::kAppendRequest));
  cluster.deliver(of_type(MessageType::kAppendResponse));
  return x;
}

TEST(Commit, ACommitNoticeGoesAtOnceByDefault) {
  sim::CoreCluster cluster(cluster_options(3));
  const Index x = commit_x_on_the_leader(cluster);
  ASSERT_EQ(cluster.node(S(1)).commit_index(), x);
  EXPECT_EQ(commit_notices(cluster.in_flight()).size(), 2u);
  EXPECT_FALSE(cluster.node(S(1)).commit_notice_due());
}

TEST(Commit, DeferredCommitNoticesWaitForTheShellAndGoOnlyWhereStillOwed) {
  CoreConfig config = plain_config();
  config.commit_notices_at_once = false;
  sim::CoreCluster cluster(cluster_options(3, config));
  const Index x = commit_x_on_the_leader(cluster);
  ASSERT_EQ(cluster.node(S(1)).commit_index(), x);
  EXPECT_TRUE(commit_notices(cluster.in_flight()).empty());
  EXPECT_TRUE(cluster.node(S(1)).commit_notice_due());
  for (ServerId follower : {S(2), S(3)}) EXPECT_LT(cluster.node(follower).commit_index(), x);

  // An append carries the commit to both followers: nobody is owed a notice.
  const Index y = *cluster.propose(S(1), "y");
  EXPECT_FALSE(cluster.node(S(1)).commit_notice_due());
  cluster.deliver(of_type(MessageType::kAppendRequest));
  for (ServerId follower : {S(2), S(3)}) EXPECT_EQ(cluster.node(follower).commit_index(), x);
  cluster.deliver(of_type(MessageType::kAppendResponse));
  ASSERT_EQ(cluster.node(S(1)).commit_index(), y);

  // Now the shell sends the notices it was holding back: one per follower,
  // and they commit "y".
  EXPECT_TRUE(cluster.node(S(1)).commit_notice_due());
  cluster.node(S(1)).send_commit_notices();
  cluster.process(S(1));
  EXPECT_EQ(commit_notices(cluster.in_flight()).size(), 2u);
  EXPECT_FALSE(cluster.node(S(1)).commit_notice_due());
  cluster.deliver(of_type(MessageType::kAppendRequest));
  for (ServerId follower : {S(2), S(3)}) EXPECT_EQ(cluster.node(follower).commit_index(), y);
  // Sent once: asking again sends nothing.
  cluster.node(S(1)).send_commit_notices();
  cluster.process(S(1));
  EXPECT_TRUE(commit_notices(cluster.in_flight()).empty());
}

TEST(Commit, OnlyALeaderOwesCommitNotices) {
  CoreConfig config = plain_config();
  config.commit_notices_at_once = false;
  sim::CoreCluster cluster(cluster_options(3, config));
  commit_x_on_the_leader(cluster);
  EXPECT_FALSE(cluster.node(S(2)).commit_notice_due());
  cluster.node(S(2)).send_commit_notices();
  cluster.process(S(2));
  EXPECT_TRUE(cluster.in_flight().empty());
}

// --- the leader's own write -------------------------------------------------------

TEST(Commit, LeaderCommitsWithTwoFollowerAcksWhileItsOwnWriteIsPending) {
  sim::CoreCluster cluster(cluster_options(3));
  elect_and_settle(cluster, S(1));
  cluster.set_manual_persist(S(1), true);
  const Index x = *cluster.propose(S(1), "x");
  ASSERT_TRUE(cluster.stabilize());
  EXPECT_LT(cluster.node(S(1)).persisted_index(), x);
  EXPECT_EQ(cluster.node(S(1)).commit_index(), x);  // followers 2 and 3 are a quorum
  // ...but it applies only what it holds durably.
  EXPECT_TRUE(cluster.applied_commands(S(1)).empty());
  cluster.persist(S(1));
  EXPECT_EQ(cluster.applied_commands(S(1)), std::vector<std::string>{"x"});
}

TEST(Commit, LeaderCountsItselfOnlyAfterItsOwnWriteIsPersisted) {
  sim::CoreCluster cluster(cluster_options(3));
  elect_and_settle(cluster, S(1));
  cluster.crash(S(3));
  cluster.set_manual_persist(S(1), true);
  const Index x = *cluster.propose(S(1), "x");
  ASSERT_TRUE(cluster.stabilize());
  EXPECT_EQ(cluster.node(S(1)).progress(S(2))->match_index, x);
  EXPECT_LT(cluster.node(S(1)).commit_index(), x);  // follower 2 and an unwritten leader
  cluster.persist(S(1));
  EXPECT_EQ(cluster.node(S(1)).commit_index(), x);
}

TEST(Commit, StaleOnPersistedForAReplacedEntryIsIgnored) {
  Node follower = make_node(2, 3, plain_config(), log_with_terms({1}));
  follower.step(append(1, 2, 1, 1, 1, {entry(2, 1), entry(3, 1)}));
  Ready old_write = follower.ready();  // the shell starts writing 2/1 3/1...
  ASSERT_EQ(old_write.entries.size(), 2u);
  // ...when the term-2 leader replaces index 2.
  follower.step(append(3, 2, 2, 1, 1, {entry(2, 2)}));
  Ready new_write = follower.ready();
  ASSERT_EQ(new_write.entries.size(), 1u);

  follower.on_persisted(I(3), T(1));  // the old write completes: entry 3 is gone
  EXPECT_EQ(follower.persisted_index(), I(1));
  follower.on_persisted(I(2), T(1));  // 2/1 is not the entry at 2 any more
  EXPECT_EQ(follower.persisted_index(), I(1));
  follower.on_persisted(I(2), T(2));
  EXPECT_EQ(follower.persisted_index(), I(2));
}

TEST(Commit, StaleOnPersistedDoesNotCountTowardTheLeadersQuorum) {
  // Node 1 starts writing 2/1 3/1 from leader 2; leader 3 of term 2 replaces
  // them with 2/2; node 1 then wins term 3 and appends 3/3. None of it is
  // durable yet when the first write reports done.
  Node node = make_node(1, 3, plain_config(), log_with_terms({1}));
  node.step(append(2, 1, 1, 1, 1, {entry(2, 1), entry(3, 1)}));
  node.ready();
  node.step(append(3, 1, 2, 1, 1, {entry(2, 2)}));
  node.ready();
  node.campaign();
  node.step(vote_response(2, 1, 3, true));
  ASSERT_TRUE(node.is_leader());
  ASSERT_EQ(node.log().at(I(3)).type, EntryType::kTermStart);
  node.ready();

  node.on_persisted(I(3), T(1));  // the entry at 3 is now 3/3, not 3/1
  EXPECT_EQ(node.persisted_index(), I(1));
  node.step(append_ack(2, 1, 3, 3));
  EXPECT_EQ(node.commit_index(), I(0));  // follower 2 alone is no quorum
  node.on_persisted(I(3), T(3));
  EXPECT_EQ(node.commit_index(), I(3));
}

// --- bounds --------------------------------------------------------------------

TEST(Commit, ProposalsAreRefusedOnceUncommittedBytesWouldExceedTheBound) {
  CoreConfig config = plain_config();
  config.max_uncommitted_bytes = 200;
  Node leader = make_node(1, 3, config);
  make_leader(leader);  // its term-start entry: 24 uncommitted bytes
  const std::string data(100 - kEntryOverheadBytes, 'x');
  EXPECT_TRUE(leader.propose(EntryType::kCommand, data).is_ok());     // 124
  Result<Index> refused = leader.propose(EntryType::kCommand, data);  // would be 224
  EXPECT_EQ(refused.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(leader.last_index(), I(2));
  // Commitment frees the budget.
  drain(leader);
  leader.step(append_ack(2, 1, 1, 2));
  EXPECT_TRUE(leader.propose(EntryType::kCommand, data).is_ok());
}

TEST(Commit, FollowerIsRefusedAProposalWithTheLeaderAsHint) {
  sim::CoreCluster cluster(cluster_options(3));
  elect_and_settle(cluster, S(1));
  Result<Index> refused = cluster.propose(S(2), "x");
  EXPECT_EQ(refused.status().code(), StatusCode::kNotLeader);
  EXPECT_EQ(refused.status().leader_hint(), S(1));
}

}  // namespace
}  // namespace keel::core
