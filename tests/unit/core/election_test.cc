// Leader election (§5.2, §5.4.1): randomized timeouts, durable votes, one vote
// per term, the up-to-date rule, and what a winner does first.
#include <set>

#include <gtest/gtest.h>

#include "test_util.h"

namespace keel::core {
namespace {

using namespace testutil;  // NOLINT(google-build-using-namespace): test vocabulary

// Ticks until a fresh follower (with no leader) starts campaigning.
std::uint32_t ticks_until_campaign(std::uint64_t seed, std::uint32_t election_timeout_ticks) {
  CoreConfig config;
  config.election_timeout_ticks = election_timeout_ticks;
  config.random_seed = seed;
  Node node = make_node(1, 3, config);
  for (std::uint32_t tick = 1; tick <= 10 * election_timeout_ticks; ++tick) {
    node.tick();
    if (node.role() != Role::kFollower) return tick;
  }
  return 0;
}

TEST(LeaderElection, ElectionTimeoutIsRandomizedWithinTToTwoT) {
  for (std::uint64_t seed = 1; seed <= 64; ++seed) {
    const std::uint32_t ticks = ticks_until_campaign(seed, 10);
    EXPECT_GE(ticks, 10u) << "seed " << seed;
    EXPECT_LT(ticks, 20u) << "seed " << seed;
  }
}

TEST(LeaderElection, ElectionTimeoutDiffersAcrossSeeds) {
  std::set<std::uint32_t> seen;
  for (std::uint64_t seed = 1; seed <= 64; ++seed) seen.insert(ticks_until_campaign(seed, 10));
  // 64 draws from 10 values: all ten appear unless the PRNG is broken.
  EXPECT_GE(seen.size(), 8u);
}

TEST(LeaderElection, ElectionTimeoutIsTheSameForTheSameSeed) {
  for (std::uint64_t seed = 1; seed <= 8; ++seed) {
    EXPECT_EQ(ticks_until_campaign(seed, 10), ticks_until_campaign(seed, 10));
  }
}

TEST(LeaderElection, CandidateSendsVoteRequestsOnlyAfterTermAndVoteArePersisted) {
  Node node = make_node(1, 3);
  node.campaign();
  Ready ready = node.ready();
  ASSERT_TRUE(ready.hard_state.has_value());
  EXPECT_EQ(ready.hard_state->term, T(1));
  EXPECT_EQ(ready.hard_state->vote, S(1));
  EXPECT_TRUE(only(ready.messages, MessageType::kVoteRequest).empty());
  std::vector<Message> requests = only(ready.messages_after_persist, MessageType::kVoteRequest);
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].term, T(1));
}

// A single voter wins in the step that raises its term. Its first appends
// (and every later message of the term) wait until the term is durable: sent
// earlier, a learner could keep entries of a term the leader forgets in a
// crash, and later accept other entries at the same index and term.
TEST(LeaderElection, LeaderElectedInTheStepThatRaisedItsTermSendsNothingBeforeTheTermIsDurable) {
  CoreConfig config = plain_config();
  config.id = S(1);
  BootState boot;
  boot.configuration.servers = {Server{S(1), "node-1", Suffrage::kVoter},
                                Server{S(2), "node-2", Suffrage::kLearner}};
  Node node(config, boot);
  node.campaign();
  ASSERT_TRUE(node.is_leader());
  ASSERT_TRUE(node.propose(EntryType::kCommand, "y").is_ok());
  Ready first = node.ready();
  ASSERT_TRUE(first.hard_state.has_value());
  EXPECT_TRUE(first.messages.empty());
  EXPECT_EQ(only(first.messages_after_persist, MessageType::kAppendRequest, S(2)).size(), 1u);
  // Heartbeats before the acknowledgement wait too.
  for (int i = 0; i < 3; ++i) node.tick();
  Ready second = node.ready();
  EXPECT_TRUE(second.messages.empty());
  EXPECT_FALSE(second.messages_after_persist.empty());

  node.on_persisted(first.entries.back().index, first.entries.back().term);
  node.on_term_persisted(first.hard_state->term);
  ASSERT_TRUE(node.propose(EntryType::kCommand, "z").is_ok());
  for (int i = 0; i < 3; ++i) node.tick();
  Ready third = node.ready();
  // Now the term is durable: appends and heartbeats leave at once again, in
  // parallel with the write of their entries.
  EXPECT_FALSE(third.messages.empty());
  EXPECT_TRUE(only(third.messages_after_persist, MessageType::kAppendRequest).empty());
}

TEST(LeaderElection, VoteIsDurableBeforeTheReplyIsSent) {
  Node voter = make_node(2, 3);
  voter.step(vote_request(1, 2, 1, 0, 0));
  Ready ready = voter.ready();
  ASSERT_TRUE(ready.hard_state.has_value());
  EXPECT_EQ(ready.hard_state->term, T(1));
  EXPECT_EQ(ready.hard_state->vote, S(1));
  EXPECT_TRUE(ready.messages.empty());
  std::vector<Message> replies = only(ready.messages_after_persist, MessageType::kVoteResponse);
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_FALSE(replies[0].reject);
}

TEST(LeaderElection, NoVoteResponseLeavesAVoterBeforeItsVoteIsPersisted) {
  sim::CoreCluster cluster(cluster_options(3, plain_config()));
  cluster.set_manual_persist(S(2), true);
  cluster.set_manual_persist(S(3), true);
  cluster.campaign(S(1));
  cluster.deliver(of_type(MessageType::kVoteRequest));

  // Both voters granted in memory, but nothing reached their disks, so nothing left.
  EXPECT_EQ(cluster.node(S(2)).vote(), S(1));
  EXPECT_EQ(cluster.durable_hard_state(S(2)).vote, kNoServer);
  for (const Message& m : cluster.in_flight()) EXPECT_NE(m.type, MessageType::kVoteResponse);

  cluster.persist(S(2));
  EXPECT_EQ(cluster.durable_hard_state(S(2)).vote, S(1));
  ASSERT_EQ(cluster.in_flight().size(), 1u);
  EXPECT_EQ(cluster.in_flight()[0].type, MessageType::kVoteResponse);
  EXPECT_EQ(cluster.in_flight()[0].from, S(2));

  cluster.deliver();
  EXPECT_TRUE(cluster.node(S(1)).is_leader());
}

TEST(LeaderElection, VoterGrantsAtMostOneVotePerTerm) {
  Node voter = make_node(3, 3);
  voter.step(vote_request(1, 3, 1, 0, 0));
  drain(voter);
  voter.step(vote_request(2, 3, 1, 0, 0));
  Ready ready = drain(voter);
  std::vector<Message> replies = only(ready.messages_after_persist, MessageType::kVoteResponse);
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].to, S(2));
  EXPECT_TRUE(replies[0].reject);
  EXPECT_EQ(voter.vote(), S(1));
}

TEST(LeaderElection, RepeatedVoteRequestFromTheSameCandidateIsGrantedAgain) {
  Node voter = make_node(3, 3);
  voter.step(vote_request(1, 3, 1, 0, 0));
  drain(voter);
  voter.step(vote_request(1, 3, 1, 0, 0));  // e.g. the first reply was lost
  Ready ready = drain(voter);
  std::vector<Message> replies = only(ready.messages_after_persist, MessageType::kVoteResponse);
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_FALSE(replies[0].reject);
  EXPECT_EQ(voter.vote(), S(1));
}

TEST(LeaderElection, NewTermFreesTheVote) {
  Node voter = make_node(3, 3);
  voter.step(vote_request(1, 3, 1, 0, 0));
  drain(voter);
  voter.step(vote_request(2, 3, 2, 0, 0));
  Ready ready = drain(voter);
  ASSERT_EQ(ready.messages_after_persist.size(), 1u);
  EXPECT_FALSE(ready.messages_after_persist[0].reject);
  EXPECT_EQ(voter.term(), T(2));
  EXPECT_EQ(voter.vote(), S(2));
}

// The voter's log ends with terms ..., 2, 2 at index 3.
bool grants(std::uint64_t candidate_last_index, std::uint64_t candidate_last_term) {
  Node voter = make_node(3, 3, plain_config(), log_with_terms({1, 2, 2}));
  voter.step(vote_request(1, 3, 5, candidate_last_index, candidate_last_term));
  Ready ready = drain(voter);
  std::vector<Message> replies = only(ready.messages_after_persist, MessageType::kVoteResponse);
  EXPECT_EQ(replies.size(), 1u);
  EXPECT_EQ(voter.term(), T(5));  // the term is adopted either way
  return !replies.empty() && !replies[0].reject;
}

TEST(LeaderElection, VoterRejectsCandidateWhoseLastTermIsOlder) {
  EXPECT_FALSE(grants(/*last index*/ 9, /*last term*/ 1));  // longer, but older
}

TEST(LeaderElection, VoterRejectsCandidateWithAShorterLogInTheSameLastTerm) {
  EXPECT_FALSE(grants(2, 2));
}

TEST(LeaderElection, VoterGrantsCandidateWhoseLogIsAtLeastAsUpToDate) {
  EXPECT_TRUE(grants(3, 2));  // identical
  EXPECT_TRUE(grants(4, 2));  // longer
  EXPECT_TRUE(grants(1, 3));  // shorter, but a later last term
}

TEST(LeaderElection, RejectedVoteIsNotRecorded) {
  Node voter = make_node(3, 3, plain_config(), log_with_terms({1, 2, 2}));
  voter.step(vote_request(1, 3, 5, 9, 1));
  drain(voter);
  EXPECT_EQ(voter.vote(), kNoServer);
}

TEST(LeaderElection, CandidateWithAQuorumBecomesLeaderAndAppendsATermStartEntry) {
  Node node = make_node(1, 3, plain_config(), log_with_terms({1, 1}));
  node.campaign();
  drain(node);
  EXPECT_EQ(node.role(), Role::kCandidate);
  node.step(vote_response(3, 1, 2, true));
  ASSERT_TRUE(node.is_leader());
  EXPECT_EQ(node.leader(), S(1));

  const LogEntry& last = node.log().at(node.last_index());
  EXPECT_EQ(last.index, I(3));
  EXPECT_EQ(last.term, T(2));
  EXPECT_EQ(last.type, EntryType::kTermStart);

  Ready ready = node.ready();
  ASSERT_EQ(ready.entries.size(), 1u);
  EXPECT_EQ(ready.entries[0], last);
  EXPECT_TRUE(has_event(ready.events, EventKind::kRoleChanged));
  // The appends carrying it leave at once, in parallel with the leader's write.
  std::vector<Message> appends = only(ready.messages, MessageType::kAppendRequest);
  ASSERT_EQ(appends.size(), 2u);
  for (const Message& m : appends) {
    EXPECT_EQ(m.prev_log_index, I(2));
    EXPECT_EQ(m.prev_log_term, T(1));
    ASSERT_EQ(m.entries.size(), 1u);
    EXPECT_EQ(m.entries[0].type, EntryType::kTermStart);
  }
}

TEST(LeaderElection, CandidateRejectedByAQuorumReturnsToFollowerInItsTerm) {
  Node node = make_node(1, 5);
  node.campaign();
  drain(node);
  node.step(vote_response(2, 1, 1, false));
  node.step(vote_response(3, 1, 1, false));
  EXPECT_EQ(node.role(), Role::kCandidate);  // 2 of 5 rejected: undecided
  node.step(vote_response(4, 1, 1, false));
  EXPECT_EQ(node.role(), Role::kFollower);
  EXPECT_EQ(node.term(), T(1));
  EXPECT_EQ(node.vote(), S(1));  // the vote it cast for itself stands
}

TEST(LeaderElection, DuplicateGrantFromOneVoterCountsOnce) {
  Node node = make_node(1, 5);
  node.campaign();
  drain(node);
  node.step(vote_response(2, 1, 1, true));
  node.step(vote_response(2, 1, 1, true));
  EXPECT_EQ(node.role(), Role::kCandidate);
  node.step(vote_response(3, 1, 1, true));
  EXPECT_TRUE(node.is_leader());
}

TEST(LeaderElection, ClusterElectsExactlyOneLeaderByTimeoutAndAllLogsAgree) {
  sim::CoreCluster cluster(cluster_options(5, CoreConfig{}, 7));
  for (int tick = 0; tick < 100 && !cluster.leader(); ++tick) {
    cluster.tick_all();
    cluster.stabilize();
  }
  ASSERT_TRUE(cluster.leader().has_value());
  const ServerId leader = *cluster.leader();
  int leaders = 0;
  for (ServerId id : cluster.ids()) {
    leaders += cluster.node(id).is_leader() ? 1 : 0;
    EXPECT_EQ(cluster.node(id).leader(), leader);
    EXPECT_EQ(entries_of(cluster.node(id).log()), entries_of(cluster.node(leader).log()));
  }
  EXPECT_EQ(leaders, 1);
}

}  // namespace
}  // namespace keel::core
