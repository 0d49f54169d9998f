// Log replication (§5.3): the consistency check, conflict truncation (the
// Figure 7 follower logs), rejection hints, probe/replicate flow control,
// batching, per-append bounds and heartbeats.
#include <ostream>

#include <gtest/gtest.h>

#include "test_util.h"

namespace keel::core {
namespace {

using namespace testutil;  // NOLINT(google-build-using-namespace): test vocabulary

// --- follower side -------------------------------------------------------------

// Follower 2 of leader 1, term 2, with log terms 1, 1, 2.
Node follower_with_log() { return make_node(2, 3, plain_config(), log_with_terms({1, 1, 2})); }

Message only_reply(Node& node) {
  std::vector<Message> replies = only(all_messages(drain(node)), MessageType::kAppendResponse);
  EXPECT_EQ(replies.size(), 1u);
  return replies.empty() ? Message{} : replies[0];
}

TEST(LogReplication, FollowerRejectsAppendWhosePrevEntryHasAnotherTerm) {
  Node follower = follower_with_log();
  follower.step(append(1, 2, 3, 3, 3, {entry(4, 3)}));
  Message reply = only_reply(follower);
  EXPECT_TRUE(reply.reject);
  EXPECT_EQ(reply.match_index, I(3));  // the prev index that failed
  EXPECT_EQ(follower.last_index(), I(3));
}

TEST(LogReplication, RejectionHintNamesTheFirstIndexOfTheConflictingTerm) {
  Node follower = make_node(2, 3, plain_config(), log_with_terms({1, 3, 3, 3}));
  follower.step(append(1, 2, 5, 4, 4));
  Message reply = only_reply(follower);
  EXPECT_TRUE(reply.reject);
  EXPECT_EQ(reply.hint_term, T(3));
  EXPECT_EQ(reply.hint_index, I(2));
}

TEST(LogReplication, RejectionHintNamesTheEndOfAShortLog) {
  Node follower = follower_with_log();
  follower.step(append(1, 2, 3, 7, 3));
  Message reply = only_reply(follower);
  EXPECT_TRUE(reply.reject);
  EXPECT_EQ(reply.hint_term, T(0));
  EXPECT_EQ(reply.hint_index, I(4));  // "my log ends before 4"
}

TEST(LogReplication, FollowerAcceptsAppendWhosePrevEntryMatchesAndAcksTheLastEntry) {
  Node follower = follower_with_log();
  follower.step(append(1, 2, 2, 3, 2, {entry(4, 2), entry(5, 2)}));
  Ready ready = follower.ready();
  ASSERT_EQ(ready.entries.size(), 2u);
  EXPECT_EQ(ready.entries[0].index, I(4));
  // The acknowledgement promises durability: it waits for the write.
  EXPECT_TRUE(only(ready.messages, MessageType::kAppendResponse).empty());
  std::vector<Message> acks = only(ready.messages_after_persist, MessageType::kAppendResponse);
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_FALSE(acks[0].reject);
  EXPECT_EQ(acks[0].match_index, I(5));
}

TEST(LogReplication, ConflictingSuffixIsTruncatedAndReplaced) {
  Node follower = follower_with_log();
  drain(follower);
  follower.step(append(1, 2, 4, 1, 1, {entry(2, 4, "x")}));
  EXPECT_EQ(follower.last_index(), I(2));
  EXPECT_EQ(follower.log().at(I(2)).term, T(4));
  Ready ready = follower.ready();
  ASSERT_EQ(ready.entries.size(), 1u);
  EXPECT_EQ(ready.entries[0].index, I(2));  // the shell drops its stored 2..3 first
}

TEST(LogReplication, ReorderedOlderAppendDoesNotTruncateLaterEntries) {
  Node follower = follower_with_log();
  follower.step(append(1, 2, 2, 3, 2, {entry(4, 2), entry(5, 2)}));
  drain(follower);
  follower.step(append(1, 2, 2, 3, 2, {entry(4, 2)}));  // an earlier send, late
  Message reply = only_reply(follower);
  EXPECT_FALSE(reply.reject);
  EXPECT_EQ(reply.match_index, I(4));
  EXPECT_EQ(follower.last_index(), I(5));
}

// --- Figure 7 ------------------------------------------------------------------

struct Figure7Case {
  const char* name;
  std::vector<std::uint64_t> follower_terms;
  // Rejections the follower may send before its log matches: one per
  // conflicting term (or missing tail), not one per entry.
  int max_rejections;
};

void PrintTo(const Figure7Case& figure7_case, std::ostream* out) { *out << figure7_case.name; }

class Figure7 : public ::testing::TestWithParam<Figure7Case> {};

// Carries the leader's messages (starting with `first`) to follower 2 and
// back until both are quiet; messages to node 3 are lost. Returns the number
// of rejections the follower sent.
int exchange_until_quiet(Node& leader, Node& follower, const Ready& first) {
  int rejections = 0;
  std::vector<Message> to_follower = only(all_messages(first), MessageType::kAppendRequest, S(2));
  for (int round = 0; round < 100; ++round) {
    for (const Message& m : to_follower) follower.step(m);
    std::vector<Message> to_leader = all_messages(drain(follower));
    for (const Message& m : to_leader) {
      rejections += m.reject ? 1 : 0;
      leader.step(m);
    }
    to_follower = only(all_messages(drain(leader)), MessageType::kAppendRequest, S(2));
    if (to_follower.empty() && to_leader.empty()) return rejections;
  }
  ADD_FAILURE() << "leader and follower never went quiet";
  return rejections;
}

TEST_P(Figure7, FollowerLogEndsIdenticalToTheLeadersWithFewRejections) {
  // The leader of term 8 in Figure 7, with log terms 1 1 1 4 4 5 5 6 6 6.
  Node leader = make_node(1, 3, plain_config(), log_with_terms({1, 1, 1, 4, 4, 5, 5, 6, 6, 6}), 7);
  Node follower = make_node(2, 3, plain_config(), log_with_terms(GetParam().follower_terms));
  // A vote is fed to it (logs like (c) and (d) would refuse it).
  Ready first = make_leader(leader);
  ASSERT_EQ(leader.term(), T(8));
  ASSERT_EQ(leader.last_index(), I(11));  // its term-start entry

  const int rejections = exchange_until_quiet(leader, follower, first);

  EXPECT_EQ(entries_of(follower.log()), entries_of(leader.log()));
  EXPECT_LE(rejections, GetParam().max_rejections);
  EXPECT_EQ(leader.commit_index(), I(11));  // leader and follower 2 are a quorum
  EXPECT_EQ(follower.commit_index(), I(11));
}

INSTANTIATE_TEST_SUITE_P(
    LogReplication, Figure7,
    ::testing::Values(Figure7Case{"a_missing_one", {1, 1, 1, 4, 4, 5, 5, 6, 6}, 1},
                      Figure7Case{"b_missing_many", {1, 1, 1, 4}, 1},
                      Figure7Case{"c_extra_entry", {1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6}, 0},
                      Figure7Case{"d_extra_term", {1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7}, 0},
                      Figure7Case{"e_missing_and_conflicting", {1, 1, 1, 4, 4, 4, 4}, 2},
                      Figure7Case{"f_conflicting_terms", {1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3}, 2}),
    [](const ::testing::TestParamInfo<Figure7Case>& param_info) {
      return std::string(param_info.param.name);
    });

// --- leader side ---------------------------------------------------------------

// Leader 1 of three at term 1 whose term-start entry follower 2 acknowledged,
// so follower 2 is in the replicate state; follower 3 never answers.
Node leader_replicating_to_2(CoreConfig config = plain_config()) {
  Node leader = make_node(1, 3, config);
  make_leader(leader);
  leader.step(append_ack(2, 1, 1, 1));
  drain(leader);
  EXPECT_EQ(leader.progress(S(2))->state, ProgressState::kReplicate);
  return leader;
}

std::vector<Message> appends_to(const Ready& ready, std::uint64_t peer) {
  return only(ready.messages, MessageType::kAppendRequest, S(peer));
}

TEST(LogReplication, NewFollowerIsProbedThenReplicatedAfterItsFirstAcknowledgement) {
  Node leader = make_node(1, 3);
  make_leader(leader);
  EXPECT_EQ(leader.progress(S(2))->state, ProgressState::kProbe);
  leader.step(append_ack(2, 1, 1, 1));
  EXPECT_EQ(leader.progress(S(2))->state, ProgressState::kReplicate);
  EXPECT_EQ(leader.progress(S(2))->match_index, I(1));
  EXPECT_EQ(leader.progress(S(3))->state, ProgressState::kProbe);
}

TEST(LogReplication, ProbedFollowerGetsOneAppendAtATime) {
  Node leader = leader_replicating_to_2();
  int appends_to_3 = 0;
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(leader.propose(EntryType::kCommand, "x").is_ok());
    appends_to_3 += static_cast<int>(appends_to(drain(leader), 3).size());
  }
  EXPECT_EQ(appends_to_3, 0);  // the term-start append to 3 is still unanswered
  EXPECT_EQ(leader.progress(S(3))->next_index, I(1));
}

TEST(LogReplication, InflightAppendsToAFollowerThatStoppedAnsweringAreBoundedInCount) {
  CoreConfig config = plain_config();
  config.max_inflight_appends = 4;
  Node leader = leader_replicating_to_2(config);
  int appends = 0;
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(leader.propose(EntryType::kCommand, "x").is_ok());
    appends += static_cast<int>(appends_to(drain(leader), 2).size());
  }
  EXPECT_EQ(appends, 4);
  EXPECT_EQ(leader.progress(S(2))->inflights.count(), 4u);
  // One acknowledgement frees room for exactly one more append.
  leader.step(append_ack(2, 1, 1, 2));
  std::vector<Message> more = appends_to(drain(leader), 2);
  ASSERT_EQ(more.size(), 1u);
  EXPECT_EQ(more[0].prev_log_index, I(5));
}

TEST(LogReplication, InflightAppendsToAFollowerThatStoppedAnsweringAreBoundedInBytes) {
  CoreConfig config = plain_config();
  config.max_inflight_bytes = 250;
  Node leader = leader_replicating_to_2(config);
  const std::string data(100 - kEntryOverheadBytes, 'x');  // 100 bytes an entry
  int appends = 0;
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(leader.propose(EntryType::kCommand, data).is_ok());
    appends += static_cast<int>(appends_to(drain(leader), 2).size());
  }
  // Sends while under 250 bytes: 0, 100, 200 -> three appends, then stop.
  EXPECT_EQ(appends, 3);
  EXPECT_EQ(leader.progress(S(2))->inflights.bytes(), 300u);
}

TEST(LogReplication, ProposalsBetweenTwoReadiesGoOutInOneAppend) {
  Node leader = leader_replicating_to_2();
  for (const char* data : {"a", "b", "c"}) {
    ASSERT_TRUE(leader.propose(EntryType::kCommand, data).is_ok());
  }
  std::vector<Message> appends = appends_to(drain(leader), 2);
  ASSERT_EQ(appends.size(), 1u);
  ASSERT_EQ(appends[0].entries.size(), 3u);
  EXPECT_EQ(appends[0].entries[0].data, "a");
  EXPECT_EQ(appends[0].entries[2].data, "c");
}

TEST(LogReplication, AppendsCarryAtMostMaxEntriesPerAppend) {
  CoreConfig config = plain_config();
  config.max_append_entries = 2;
  Node leader = leader_replicating_to_2(config);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(leader.propose(EntryType::kCommand, "x").is_ok());
  std::vector<Message> appends = appends_to(drain(leader), 2);
  ASSERT_EQ(appends.size(), 3u);
  EXPECT_EQ(appends[0].entries.size(), 2u);
  EXPECT_EQ(appends[1].entries.size(), 2u);
  EXPECT_EQ(appends[2].entries.size(), 1u);
  EXPECT_EQ(appends[2].entries[0].index, I(6));
}

TEST(LogReplication, AppendsCarryAtMostMaxBytesPerAppendButAtLeastOneEntry) {
  CoreConfig config = plain_config();
  config.max_append_bytes = 250;
  Node leader = leader_replicating_to_2(config);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(
        leader.propose(EntryType::kCommand, std::string(100 - kEntryOverheadBytes, 'x')).is_ok());
  }
  ASSERT_TRUE(leader.propose(EntryType::kCommand, std::string(1000, 'y')).is_ok());
  std::vector<Message> appends = appends_to(drain(leader), 2);
  ASSERT_EQ(appends.size(), 3u);
  EXPECT_EQ(appends[0].entries.size(), 2u);  // 200 bytes; a third would make 300
  EXPECT_EQ(appends[1].entries.size(), 1u);
  ASSERT_EQ(appends[2].entries.size(), 1u);  // 1024 bytes, alone
  EXPECT_EQ(appends[2].entries[0].data.size(), 1000u);
}

TEST(LogReplication, LeaderSendsHeartbeatsEveryHeartbeatInterval) {
  CoreConfig config = plain_config();
  config.heartbeat_interval_ticks = 3;
  config.election_timeout_ticks = 30;
  Node leader = leader_replicating_to_2(config);
  std::vector<int> heartbeat_ticks;
  for (int tick = 1; tick <= 9; ++tick) {
    leader.tick();
    std::vector<Message> heartbeats = only(drain(leader).messages, MessageType::kHeartbeatRequest);
    if (!heartbeats.empty()) {
      EXPECT_EQ(heartbeats.size(), 2u);  // one per follower
      heartbeat_ticks.push_back(tick);
    }
  }
  EXPECT_EQ(heartbeat_ticks, (std::vector<int>{3, 6, 9}));
}

TEST(LogReplication, HeartbeatCommitIsClampedToWhatTheFollowerHolds) {
  Node leader = leader_replicating_to_2();
  ASSERT_TRUE(leader.propose(EntryType::kCommand, "x").is_ok());
  drain(leader);
  leader.step(append_ack(2, 1, 1, 2));
  ASSERT_EQ(leader.commit_index(), I(2));
  leader.tick();
  for (const Message& m : only(drain(leader).messages, MessageType::kHeartbeatRequest)) {
    // Follower 3 never acknowledged anything: a commit index beyond its
    // match would point at entries it may not have.
    EXPECT_EQ(m.commit, m.to == S(2) ? I(2) : I(0)) << to_string(m);
  }
}

TEST(LogReplication, ClusterReplicatesProposalsToEveryNodeInOrder) {
  sim::CoreCluster cluster(cluster_options(3));
  elect_and_settle(cluster, S(1));
  for (const char* data : {"a", "b", "c"}) ASSERT_TRUE(cluster.propose(S(1), data).is_ok());
  ASSERT_TRUE(cluster.stabilize());
  for (ServerId id : cluster.ids()) {
    EXPECT_EQ(cluster.applied_commands(id), (std::vector<std::string>{"a", "b", "c"}));
  }
}

// Liveness: appends lost on the wire (a partition) must be resent once the
// follower is reachable again, even if nothing new is proposed.
TEST(LogReplication, FollowerWhoseAppendWasLostCatchesUpWithoutNewProposals) {
  sim::CoreCluster cluster(cluster_options(3));
  elect_and_settle(cluster, S(1));
  ASSERT_TRUE(cluster.propose(S(1), "x").is_ok());
  ASSERT_EQ(cluster.drop(of_type_to(MessageType::kAppendRequest, 3)), 1u);
  ASSERT_TRUE(cluster.stabilize());
  for (int tick = 0; tick < 5; ++tick) {
    cluster.tick_all();
    cluster.stabilize();
  }
  EXPECT_EQ(cluster.node(S(3)).last_index(), cluster.node(S(1)).last_index());
  EXPECT_EQ(cluster.applied_commands(S(3)), std::vector<std::string>{"x"});
}

// Node 3 is cut off while `commands` are proposed one Ready at a time, with a
// window of two appends; then the cut heals. Returns what node 3 applied.
std::vector<std::string> catch_up_after_window_filled(const std::vector<std::string>& commands) {
  CoreConfig config;
  config.max_inflight_appends = 2;
  sim::CoreCluster cluster(cluster_options(3, config));
  elect_and_settle(cluster, S(1));
  cluster.isolate(S(3));
  for (const std::string& command : commands) {
    EXPECT_TRUE(cluster.propose(S(1), command).is_ok());
    cluster.stabilize();
  }
  EXPECT_TRUE(cluster.node(S(1)).progress(S(3))->inflights.full());
  cluster.heal();
  for (int tick = 0; tick < 5; ++tick) {
    cluster.tick_all();
    cluster.stabilize();
  }
  return cluster.applied_commands(S(3));
}

TEST(LogReplication, FollowerCutOffWhileTheWindowFilledCatchesUpAfterHeal) {
  const std::vector<std::string> commands{"a", "b", "c", "d"};  // c, d never sent to 3
  EXPECT_EQ(catch_up_after_window_filled(commands), commands);
}

TEST(LogReplication, FollowerCutOffWhileTheWindowFilledCatchesUpWithNothingLeftToSend) {
  const std::vector<std::string> commands{"a", "b"};  // both sent to 3, both lost
  EXPECT_EQ(catch_up_after_window_filled(commands), commands);
}

// --- runs (Raft::restore's pieces) -------------------------------------------------

TEST(LogReplication, ARunIsAppendedAtConsecutiveIndicesAllOrNone) {
  CoreConfig config = plain_config();
  config.max_uncommitted_bytes = 100;
  Node leader = make_node(1, 3, config);
  make_leader(leader);
  const Index before = leader.last_index();
  Result<Index> first =
      leader.propose_run(EntryType::kRestore, {std::string(80, 'a'), std::string(80, 'b'), "c"});
  ASSERT_TRUE(first.is_ok()) << first.status();
  EXPECT_EQ(*first, before.next());
  EXPECT_EQ(leader.last_index(), before + 3);
  for (std::uint64_t i = 0; i < 3; ++i) {
    EXPECT_EQ(leader.log().at(before + (i + 1)).type, EntryType::kRestore);
    EXPECT_EQ(leader.log().at(before + (i + 1)).term, leader.term());
  }
  // Beyond max_uncommitted_bytes (the caller bounds a run), and counted in
  // it: a command must now wait.
  EXPECT_EQ(leader.propose(EntryType::kCommand, std::string(50, 'x')).status().code(),
            StatusCode::kResourceExhausted);
  EXPECT_EQ(leader.propose_run(EntryType::kRestore, {}).status().code(),
            StatusCode::kInvalidArgument);
  Node follower = make_node(2, 3);
  EXPECT_EQ(follower.propose_run(EntryType::kRestore, {"x"}).status().code(),
            StatusCode::kNotLeader);
  EXPECT_EQ(follower.last_index(), Index{0});
}

// A follower that lost its log under its old id (a wiped disk, which an
// operator must not bring back as the same server: docs/operations.md)
// refuses entries it once acknowledged, and the leader cannot rewind below
// what was acknowledged. Each refused probe used to be sent again at once,
// as fast as the network turned it around, forever (keel-sim found it as a
// livelock: seed 4056 of the swarm). Now a probe the answer taught nothing
// waits for the next heartbeat's answer.
TEST(LogReplication, AFollowerThatLostItsLogIsProbedOncePerHeartbeatNotInALoop) {
  sim::CoreCluster cluster(cluster_options(3));
  elect_and_settle(cluster, S(1));
  ASSERT_TRUE(cluster.propose(S(1), "a").is_ok());
  ASSERT_TRUE(cluster.stabilize());
  ASSERT_EQ(cluster.node(S(1)).progress(S(3))->match_index, cluster.node(S(1)).last_index());
  cluster.wipe(S(3));
  ASSERT_TRUE(cluster.propose(S(1), "b").is_ok());
  ASSERT_TRUE(cluster.stabilize());
  for (int heartbeat = 1; heartbeat <= 3; ++heartbeat) {
    cluster.tick(S(1));
    std::size_t appends_to_3 = 0;
    for (int round = 0; round < 20 && !cluster.in_flight().empty(); ++round) {
      for (const Message& m : cluster.deliver()) {
        if (m.type == MessageType::kAppendRequest && m.to == S(3)) ++appends_to_3;
      }
    }
    EXPECT_TRUE(cluster.in_flight().empty()) << "heartbeat " << heartbeat << ": still probing";
    // The heartbeat's answer resumes the probe: the re-sent last entry and
    // one probe below it, each refused.
    EXPECT_LE(appends_to_3, 2u) << "heartbeat " << heartbeat;
  }
  EXPECT_EQ(cluster.node(S(1)).commit_index(), cluster.node(S(1)).last_index());
}

}  // namespace
}  // namespace keel::core
