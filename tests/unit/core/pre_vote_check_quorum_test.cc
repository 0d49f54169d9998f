// Pre-vote (thesis §9.6) and check-quorum with disruptive-server protection
// (thesis §6.2, §4.2.3): a node that cannot win never raises anybody's term,
// and a leader that lost its quorum steps down.
#include <algorithm>

#include <gtest/gtest.h>

#include "test_util.h"

namespace keel::core {
namespace {

using namespace testutil;  // NOLINT(google-build-using-namespace): test vocabulary

CoreConfig pre_vote_config() {
  CoreConfig config;
  config.pre_vote = true;
  config.check_quorum = true;
  config.election_timeout_ticks = 10;
  config.heartbeat_interval_ticks = 1;
  return config;
}

Message pre_vote_request(std::uint64_t from, std::uint64_t to, std::uint64_t term) {
  return Message{
      .type = MessageType::kPreVoteRequest, .from = S(from), .to = S(to), .term = T(term)};
}

TEST(PreVote, PreCandidateDoesNotRaiseItsTermOrVote) {
  Node node = make_node(1, 3, pre_vote_config(), log_with_terms({1}), 4);
  node.campaign();
  EXPECT_EQ(node.role(), Role::kPreCandidate);
  EXPECT_EQ(node.term(), T(4));
  EXPECT_EQ(node.vote(), kNoServer);
  Ready ready = node.ready();
  EXPECT_FALSE(ready.hard_state.has_value());
  std::vector<Message> requests = only(all_messages(ready), MessageType::kPreVoteRequest);
  ASSERT_EQ(requests.size(), 2u);
  for (const Message& m : requests) {
    EXPECT_EQ(m.term, T(5));  // the term it would take
    EXPECT_EQ(m.last_log_index, I(1));
    EXPECT_EQ(m.last_log_term, T(1));
  }
}

TEST(PreVote, GrantingAPreVoteChangesNeitherTermNorVote) {
  Node voter = make_node(2, 3, pre_vote_config());
  voter.step(pre_vote_request(1, 2, 1));
  Ready ready = voter.ready();
  EXPECT_FALSE(ready.hard_state.has_value());
  EXPECT_EQ(voter.term(), T(0));
  EXPECT_EQ(voter.vote(), kNoServer);
  std::vector<Message> replies = only(all_messages(ready), MessageType::kPreVoteResponse);
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_FALSE(replies[0].reject);
  EXPECT_EQ(replies[0].term, T(1));  // echoes the requested term
}

TEST(PreVote, PreCandidateWithAQuorumOfPreVotesBecomesCandidateAndRaisesItsTerm) {
  Node node = make_node(1, 3, pre_vote_config());
  node.campaign();
  drain(node);
  node.step(Message{.type = MessageType::kPreVoteResponse, .from = S(2), .to = S(1), .term = T(1)});
  EXPECT_EQ(node.role(), Role::kCandidate);
  EXPECT_EQ(node.term(), T(1));
  EXPECT_EQ(node.vote(), S(1));
  EXPECT_EQ(only(node.ready().messages_after_persist, MessageType::kVoteRequest).size(), 2u);
}

// Three nodes, node 1 leads; node 3 is cut off for 100 ticks and comes back.
// Returns the highest term in the cluster before and after.
std::pair<Term, Term> partition_and_return_node_3(bool pre_vote) {
  CoreConfig config = pre_vote_config();
  config.pre_vote = pre_vote;
  sim::CoreCluster cluster(cluster_options(3, config));
  elect_and_settle(cluster, S(1));
  const Term before = cluster.node(S(1)).term();

  cluster.isolate(S(3));
  for (int tick = 0; tick < 100; ++tick) {
    cluster.tick_all();
    cluster.stabilize();  // what crosses the cut is lost
  }
  EXPECT_EQ(cluster.node(S(3)).term() > before, !pre_vote);
  cluster.heal();
  for (int tick = 0; tick < 100; ++tick) {
    cluster.tick_all();
    cluster.stabilize();
  }
  EXPECT_TRUE(cluster.leader().has_value());
  Term after;
  for (ServerId id : cluster.ids()) after = std::max(after, cluster.node(id).term());
  return {before, after};
}

TEST(PreVote, ReturningPartitionedNodeDoesNotRaiseTheClusterTerm) {
  auto [before, after] = partition_and_return_node_3(/*pre_vote=*/true);
  EXPECT_EQ(after, before);
}

TEST(PreVote, WithoutPreVoteAReturningPartitionedNodeRaisesTheClusterTerm) {
  // The control for the test above: the same schedule does disrupt the
  // cluster when the node campaigns for real while cut off.
  auto [before, after] = partition_and_return_node_3(/*pre_vote=*/false);
  EXPECT_GT(after, before);
}

TEST(CheckQuorum, LeaderCutOffFromTheQuorumStepsDownWithinTwoElectionTimeouts) {
  sim::CoreCluster cluster(cluster_options(3, pre_vote_config()));
  elect_and_settle(cluster, S(1));
  cluster.tick(S(1));
  cluster.stabilize();  // followers have just answered: the current window is active

  cluster.isolate(S(1));
  std::size_t ticks = 0;
  while (cluster.node(S(1)).is_leader() && ticks < 100) {
    cluster.tick(S(1));
    cluster.drop(any_message);
    ++ticks;
  }
  EXPECT_EQ(cluster.node(S(1)).role(), Role::kFollower);
  EXPECT_EQ(cluster.node(S(1)).leader(), kNoServer);
  EXPECT_LE(ticks, 2u * 10u);
  EXPECT_GT(ticks, 0u);
}

TEST(CheckQuorum, LeaderInTouchWithAQuorumStaysLeader) {
  sim::CoreCluster cluster(cluster_options(3, pre_vote_config()));
  elect_and_settle(cluster, S(1));
  cluster.isolate(S(3));  // one follower lost: still a quorum
  for (int tick = 0; tick < 100; ++tick) {
    cluster.tick(S(1));
    cluster.tick(S(2));
    cluster.stabilize();
  }
  EXPECT_TRUE(cluster.node(S(1)).is_leader());
  EXPECT_EQ(cluster.node(S(1)).term(), T(1));
}

// A follower at term 1 that has just heard from leader 1.
Node follower_in_contact() {
  Node follower = make_node(2, 3, pre_vote_config());
  follower.step(heartbeat(1, 2, 1));
  drain(follower);
  EXPECT_EQ(follower.leader(), S(1));
  return follower;
}

TEST(CheckQuorum, FollowerInContactWithItsLeaderIgnoresAHigherTermVoteRequest) {
  Node follower = follower_in_contact();
  follower.step(vote_request(3, 2, 5, 0, 0));
  Ready ready = drain(follower);
  EXPECT_TRUE(all_messages(ready).empty());  // not even a rejection
  EXPECT_EQ(follower.term(), T(1));
  EXPECT_EQ(follower.vote(), kNoServer);
  EXPECT_EQ(follower.leader(), S(1));
}

TEST(CheckQuorum, FollowerInContactWithItsLeaderIgnoresAHigherTermPreVoteRequest) {
  Node follower = follower_in_contact();
  follower.step(pre_vote_request(3, 2, 5));
  EXPECT_TRUE(all_messages(drain(follower)).empty());
  EXPECT_EQ(follower.term(), T(1));
}

TEST(CheckQuorum, LeadershipTransferVoteRequestIsHonouredDespiteARecentLeader) {
  Node follower = follower_in_contact();
  follower.step(vote_request(3, 2, 2, 0, 0, /*transfer=*/true));
  Ready ready = drain(follower);
  std::vector<Message> replies = only(all_messages(ready), MessageType::kVoteResponse);
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_FALSE(replies[0].reject);
  EXPECT_EQ(follower.term(), T(2));
  EXPECT_EQ(follower.vote(), S(3));
}

TEST(CheckQuorum, FollowerThatHasNotHeardFromItsLeaderForAnElectionTimeoutVotes) {
  Node follower = follower_in_contact();
  for (int tick = 0; tick < 10; ++tick) follower.tick();
  drain(follower);
  follower.step(vote_request(3, 2, 5, 0, 0));
  std::vector<Message> replies = only(all_messages(drain(follower)), MessageType::kVoteResponse);
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_FALSE(replies[0].reject);
  EXPECT_EQ(follower.term(), T(5));
}

}  // namespace
}  // namespace keel::core
