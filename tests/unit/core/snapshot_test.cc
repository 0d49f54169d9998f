// Snapshots and log compaction in the core: the bounds on compaction, the
// leader's switch to sending a snapshot when a follower's next entry is
// compacted away, the follower's install (Figure 13, rule 7: a matching log
// is kept, a conflicting one dropped), stale and failed transfers, and a
// restart from a snapshot.
#include <gtest/gtest.h>

#include "test_util.h"

namespace keel::core {
namespace {

using namespace testutil;  // NOLINT(google-build-using-namespace): test vocabulary

Message snapshot_request(std::uint64_t from, std::uint64_t to, std::uint64_t term,
                         std::uint64_t index, std::uint64_t snapshot_term,
                         std::uint64_t commit = 0) {
  return Message{.type = MessageType::kSnapshotRequest,
                 .from = S(from),
                 .to = S(to),
                 .term = T(term),
                 .prev_log_index = I(index),
                 .prev_log_term = T(snapshot_term),
                 .commit = I(commit)};
}

// A leader of a 3-node cluster that applied `commands` commands, took a
// snapshot at its applied index and compacted its whole log, while node 3
// heard nothing (its links were cut).
sim::CoreCluster cluster_with_compacted_leader(std::size_t commands) {
  sim::CoreCluster cluster(cluster_options(3, plain_config()));
  elect_and_settle(cluster, S(1));
  cluster.cut(S(1), S(3));
  cluster.cut(S(3), S(1));
  for (std::size_t i = 0; i < commands; ++i) {
    EXPECT_TRUE(cluster.propose(S(1), "c" + std::to_string(i)).is_ok());
    cluster.stabilize();
  }
  EXPECT_TRUE(cluster.snapshot(S(1)).is_ok());
  EXPECT_TRUE(cluster.compact(S(1), cluster.node(S(1)).applied_index()).is_ok());
  return cluster;
}

// --- compaction ------------------------------------------------------------------

TEST(Compaction, RefusesEntriesThatAreNotApplied) {
  Node node = make_node(1, 1, plain_config(), log_with_terms({1, 1, 1}));
  node.on_snapshot(I(0), T(0));
  Status status = node.compact(I(2));
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("not applied"), std::string::npos);
  EXPECT_EQ(node.log().first_index(), I(1));
}

TEST(Compaction, RefusesEntriesNoDurableSnapshotCovers) {
  sim::CoreCluster cluster(cluster_options(1, plain_config()));
  elect_and_settle(cluster, S(1));
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(cluster.propose(S(1), "c").is_ok());
  const Index applied = cluster.node(S(1)).applied_index();
  ASSERT_EQ(applied, I(5));
  Status status = cluster.compact(S(1), I(3));
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("no durable snapshot"), std::string::npos);
  ASSERT_TRUE(cluster.snapshot(S(1)).is_ok());
  EXPECT_TRUE(cluster.compact(S(1), I(3)).is_ok());
  EXPECT_EQ(cluster.node(S(1)).log().first_index(), I(4));
  EXPECT_EQ(cluster.node(S(1)).log().base_term(), T(1));
  EXPECT_EQ(cluster.durable_log_base(S(1)), I(3));
  EXPECT_EQ(cluster.durable_log(S(1)).size(), 2u);  // entries 4 and 5
  // Compacting below the base changes nothing.
  EXPECT_TRUE(cluster.compact(S(1), I(2)).is_ok());
  EXPECT_EQ(cluster.node(S(1)).log().first_index(), I(4));
}

TEST(Compaction, TrailingEntriesStillServeAFollowerThatNeedsThem) {
  sim::CoreCluster cluster(cluster_options(3, plain_config()));
  elect_and_settle(cluster, S(1));
  cluster.cut(S(1), S(3));
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(cluster.propose(S(1), "c").is_ok());
  cluster.stabilize();
  ASSERT_TRUE(cluster.snapshot(S(1)).is_ok());
  // Node 3 holds entry 1; the leader keeps entries from 2 on.
  ASSERT_TRUE(cluster.compact(S(1), I(1)).is_ok());
  cluster.heal();
  cluster.tick(S(1), 2);
  ASSERT_TRUE(cluster.stabilize());
  EXPECT_EQ(cluster.installs(S(3)), 0u);
  EXPECT_EQ(cluster.applied_commands(S(3)), cluster.applied_commands(S(1)));
}

// --- the leader's side -------------------------------------------------------------

TEST(InstallSnapshot, LeaderSendsASnapshotWhenTheFollowersNextEntryIsCompacted) {
  sim::CoreCluster cluster = cluster_with_compacted_leader(5);
  const Index snapshot = cluster.node(S(1)).snapshot_index();
  cluster.heal();
  cluster.tick(S(1), 2);  // heartbeats; node 3 answers, the leader probes it
  std::vector<Message> requests;
  for (int round = 0; round < 10 && requests.empty(); ++round) {
    for (const Message& m : cluster.deliver()) {
      if (m.type == MessageType::kSnapshotRequest) requests.push_back(m);
    }
  }
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].to, S(3));
  EXPECT_EQ(requests[0].prev_log_index, snapshot);
  EXPECT_EQ(requests[0].prev_log_term, cluster.node(S(1)).snapshot_term());
  EXPECT_EQ(requests[0].snapshot_configuration, cluster.node(S(1)).configuration());
  ASSERT_TRUE(cluster.stabilize());
  EXPECT_EQ(cluster.installs(S(3)), 1u);
  EXPECT_EQ(cluster.node(S(1)).progress(S(3))->state, ProgressState::kReplicate);
  EXPECT_EQ(cluster.node(S(1)).progress(S(3))->match_index, cluster.node(S(1)).last_index());
  EXPECT_EQ(cluster.applied(S(3)), cluster.applied(S(1)));
  // Replication goes on from the log after the snapshot.
  ASSERT_TRUE(cluster.propose(S(1), "after").is_ok());
  ASSERT_TRUE(cluster.stabilize());
  EXPECT_EQ(cluster.applied_commands(S(3)).back(), "after");
  EXPECT_EQ(cluster.applied(S(3)), cluster.applied(S(1)));
}

TEST(InstallSnapshot, NoAppendGoesOutWhileTheSnapshotIsOnItsWay) {
  sim::CoreCluster cluster = cluster_with_compacted_leader(3);
  cluster.heal();
  cluster.tick(S(1), 2);
  for (int round = 0; round < 10; ++round) {
    cluster.deliver([](const Message& m) { return m.type != MessageType::kSnapshotRequest; });
    if (cluster.node(S(1)).progress(S(3))->state == ProgressState::kSnapshot) break;
  }
  ASSERT_EQ(cluster.node(S(1)).progress(S(3))->state, ProgressState::kSnapshot);
  cluster.drop(of_type(MessageType::kSnapshotRequest));
  ASSERT_TRUE(cluster.propose(S(1), "more").is_ok());
  cluster.tick(S(1), 3);
  for (const Message& m : cluster.in_flight()) {
    EXPECT_FALSE(m.type == MessageType::kAppendRequest && m.to == S(3)) << to_string(m);
  }
}

TEST(InstallSnapshot, AFailedTransferIsAskedForAgain) {
  sim::CoreCluster cluster = cluster_with_compacted_leader(3);
  cluster.heal();
  cluster.tick(S(1), 2);
  std::size_t requests = 0;
  for (int round = 0; round < 10 && requests == 0; ++round) {
    cluster.deliver([](const Message& m) { return m.type != MessageType::kSnapshotRequest; });
    requests = cluster.drop(of_type(MessageType::kSnapshotRequest));
  }
  ASSERT_EQ(requests, 1u);
  cluster.node(S(1)).report_snapshot_failed(S(3));
  EXPECT_EQ(cluster.node(S(1)).progress(S(3))->state, ProgressState::kProbe);
  cluster.process(S(1));
  EXPECT_EQ(cluster.node(S(1)).progress(S(3))->state, ProgressState::kSnapshot);
  ASSERT_EQ(cluster.drop(of_type_to(MessageType::kSnapshotRequest, 3)), 1u);
  // A report for a follower that is not being sent a snapshot changes nothing.
  cluster.node(S(1)).report_snapshot_failed(S(2));
  EXPECT_EQ(cluster.node(S(1)).progress(S(2))->state, ProgressState::kReplicate);
}

// --- the follower's side -----------------------------------------------------------

TEST(InstallSnapshot, FollowerWithAConflictingLogDropsItAndInstalls) {
  // Node 2 holds entries of term 2 at 3..5 that the leader of term 3 never
  // had; the snapshot ends at 4 with term 3.
  Node follower = make_node(2, 3, plain_config(), log_with_terms({1, 1, 2, 2, 2}), 2);
  follower.step(snapshot_request(1, 2, 3, 4, 3, 4));
  Ready ready = follower.ready();
  ASSERT_TRUE(ready.snapshot.has_value());
  EXPECT_EQ(ready.snapshot->index, I(4));
  EXPECT_EQ(ready.snapshot->term, T(3));
  EXPECT_TRUE(ready.entries.empty());
  EXPECT_TRUE(ready.committed_entries.empty());  // the snapshot replaces them
  EXPECT_EQ(follower.log().base_index(), I(4));
  EXPECT_EQ(follower.last_index(), I(4));  // nothing of the old suffix is left
  EXPECT_EQ(follower.commit_index(), I(4));
  EXPECT_EQ(follower.snapshot_index(), I(4));
  // The acknowledgement waits until the install is durable.
  EXPECT_TRUE(ready.messages.empty());
  std::vector<Message> acks = only(ready.messages_after_persist, MessageType::kAppendResponse);
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_FALSE(acks[0].reject);
  EXPECT_EQ(acks[0].match_index, I(4));
  follower.on_persisted(I(4), T(3));
  EXPECT_EQ(follower.persisted_index(), I(4));
  follower.on_applied(I(4));
  EXPECT_EQ(follower.applied_index(), I(4));
  // Appends continue after the snapshot.
  follower.step(append(1, 2, 3, 4, 3, {entry(5, 3)}, 5));
  Ready next = drain(follower);
  ASSERT_EQ(next.entries.size(), 1u);
  Ready applied = drain(follower);  // applied once durable
  ASSERT_EQ(applied.committed_entries.size(), 1u);
  EXPECT_EQ(applied.committed_entries[0].index, I(5));
}

TEST(InstallSnapshot, FollowerWhoseLogEndsBeforeTheSnapshotInstalls) {
  Node follower = make_node(2, 3, plain_config(), log_with_terms({1, 1}), 1);
  follower.step(snapshot_request(1, 2, 2, 10, 2, 12));
  Ready ready = follower.ready();
  ASSERT_TRUE(ready.snapshot.has_value());
  EXPECT_EQ(follower.log().first_index(), I(11));
  EXPECT_EQ(follower.term(), T(2));
  EXPECT_EQ(follower.leader(), S(1));
}

TEST(InstallSnapshot, FollowerWhoseLogHoldsTheSnapshotsLastEntryKeepsWhatFollows) {
  // Figure 13, rule 7: entries after the snapshot's last one are retained.
  Node follower = make_node(2, 3, plain_config(), log_with_terms({1, 1, 2, 2, 2}), 2);
  follower.step(snapshot_request(1, 2, 2, 3, 2, 3));
  Ready ready = drain(follower);
  EXPECT_FALSE(ready.snapshot.has_value());
  EXPECT_EQ(follower.last_index(), I(5));
  EXPECT_EQ(follower.commit_index(), I(3));
  ASSERT_EQ(ready.committed_entries.size(), 3u);  // applied from the log, no restore
  std::vector<Message> acks = only(all_messages(ready), MessageType::kAppendResponse);
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].match_index, I(3));
}

TEST(InstallSnapshot, ASnapshotTheFollowerHasCommittedAlreadyIsAnsweredWithItsCommit) {
  Node follower = make_node(2, 3, plain_config(), log_with_terms({1, 1, 1, 1}), 1);
  follower.step(append(1, 2, 1, 4, 1, {}, 4));
  drain(follower);
  ASSERT_EQ(follower.commit_index(), I(4));
  follower.step(snapshot_request(1, 2, 1, 3, 1, 4));
  Ready ready = drain(follower);
  EXPECT_FALSE(ready.snapshot.has_value());
  EXPECT_EQ(follower.last_index(), I(4));
  std::vector<Message> acks = only(all_messages(ready), MessageType::kAppendResponse);
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].match_index, I(4));
}

TEST(InstallSnapshot, ARequestFromAnOldTermIsRefusedWithTheCurrentTerm) {
  Node follower = make_node(2, 3, plain_config(), log_with_terms({1, 3}), 3);
  follower.step(snapshot_request(1, 2, 2, 5, 2));
  Ready ready = drain(follower);
  EXPECT_FALSE(ready.snapshot.has_value());
  std::vector<Message> replies = only(all_messages(ready), MessageType::kAppendResponse);
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_TRUE(replies[0].reject);
  EXPECT_EQ(replies[0].term, T(3));
  EXPECT_EQ(follower.last_index(), I(2));
}

TEST(InstallSnapshot, AStaleAcknowledgementOfTheReplacedLogIsIgnored) {
  Node follower = make_node(2, 3, plain_config(), log_with_terms({1}), 1);
  follower.step(append(1, 2, 2, 1, 1, {entry(2, 2), entry(3, 2)}));
  Ready first = follower.ready();  // the write of 2..3 is "in flight"
  ASSERT_EQ(first.entries.size(), 2u);
  follower.step(snapshot_request(3, 2, 3, 6, 3, 6));
  Ready install = follower.ready();
  ASSERT_TRUE(install.snapshot.has_value());
  follower.on_persisted(I(3), T(2));  // the earlier write completes
  EXPECT_LT(follower.persisted_index(), I(6));
  follower.on_persisted(I(6), T(3));
  EXPECT_EQ(follower.persisted_index(), I(6));
}

// --- whole clusters ----------------------------------------------------------------

TEST(InstallSnapshot, FarBehindFollowerWithAConflictingLogConvergesWithoutLooping) {
  // The hashicorp/raft #697 shape: a follower holding a long conflicting
  // suffix of an old term rejoins a leader that compacted past it. It must
  // install once, drop the suffix and follow; never install again and again.
  // (Check-quorum off: node 3 would otherwise refuse node 2 its vote for an
  // election timeout after hearing from node 1.)
  CoreConfig config = plain_config();
  config.check_quorum = false;
  sim::CoreCluster cluster(cluster_options(3, config));
  elect_and_settle(cluster, S(1));
  cluster.isolate(S(1));
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(cluster.propose(S(1), "lost").is_ok());
  // Node 1 goes down with its uncommitted suffix; 2 and 3 elect 2 and carry on.
  cluster.crash(S(1));
  cluster.drop(any_message);  // its appends were lost to the partition
  cluster.heal();
  elect_and_settle(cluster, S(2));
  for (int i = 0; i < 8; ++i) {
    ASSERT_TRUE(cluster.propose(S(2), "kept" + std::to_string(i)).is_ok());
    cluster.stabilize();
  }
  ASSERT_TRUE(cluster.snapshot(S(2)).is_ok());
  ASSERT_TRUE(cluster.compact(S(2), cluster.node(S(2)).applied_index()).is_ok());
  cluster.restart(S(1));
  cluster.heal();
  for (int round = 0; round < 20; ++round) {
    cluster.tick(S(2));
    cluster.stabilize();
  }
  EXPECT_EQ(cluster.installs(S(1)), 1u);
  EXPECT_EQ(cluster.applied(S(1)), cluster.applied(S(2)));
  for (const std::string& command : cluster.applied_commands(S(1))) EXPECT_NE(command, "lost");
  EXPECT_EQ(cluster.node(S(2)).progress(S(1))->state, ProgressState::kReplicate);
}

TEST(InstallSnapshot, AFollowerRestartsFromTheSnapshotItInstalled) {
  sim::CoreCluster cluster = cluster_with_compacted_leader(4);
  cluster.heal();
  cluster.tick(S(1), 2);
  ASSERT_TRUE(cluster.stabilize());
  ASSERT_EQ(cluster.installs(S(3)), 1u);
  const std::vector<LogEntry> state = cluster.applied(S(3));
  cluster.crash(S(3));
  cluster.restart(S(3));
  EXPECT_EQ(cluster.node(S(3)).applied_index(), cluster.node(S(3)).snapshot_index());
  EXPECT_EQ(cluster.node(S(3)).log().base_index(), cluster.node(S(3)).snapshot_index());
  EXPECT_EQ(cluster.applied(S(3)), state);
  ASSERT_TRUE(cluster.propose(S(1), "after restart").is_ok());
  ASSERT_TRUE(cluster.stabilize());
  EXPECT_EQ(cluster.applied(S(3)), cluster.applied(S(1)));
}

TEST(InstallSnapshot, ANewLeaderWithACompactedLogServesFollowersFromItsOwnSnapshot) {
  CoreConfig config = plain_config();
  config.check_quorum = false;  // node 2 takes over at once (see above)
  sim::CoreCluster cluster(cluster_options(3, config));
  elect_and_settle(cluster, S(1));
  cluster.cut(S(1), S(3));
  cluster.cut(S(2), S(3));
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(cluster.propose(S(1), "c" + std::to_string(i)).is_ok());
    cluster.stabilize();
  }
  cluster.tick(S(1), 2);
  cluster.stabilize();
  ASSERT_TRUE(cluster.snapshot(S(2)).is_ok());
  ASSERT_TRUE(cluster.compact(S(2), cluster.node(S(2)).applied_index()).is_ok());
  cluster.crash(S(1));
  cluster.heal();
  elect_and_settle(cluster, S(2));
  cluster.tick(S(2), 3);
  ASSERT_TRUE(cluster.stabilize());
  EXPECT_EQ(cluster.installs(S(3)), 1u);
  EXPECT_EQ(cluster.applied(S(3)), cluster.applied(S(2)));
}

}  // namespace
}  // namespace keel::core
