// Terms order everything (§5.1): a message from an earlier term changes no
// progress, vote count or log; a later term makes leaders and candidates step
// down.
#include <gtest/gtest.h>

#include "test_util.h"

namespace keel::core {
namespace {

using namespace testutil;  // NOLINT(google-build-using-namespace): test vocabulary

// Leader 1 of three at term 3 (booted at term 2), term-start entry at 1.
Node leader_of_term_3() {
  Node leader = make_node(1, 3, plain_config(), {}, 2);
  make_leader(leader);
  EXPECT_EQ(leader.term(), T(3));
  return leader;
}

TEST(StaleMessages, AppendResponseFromAnEarlierTermChangesNoMatchIndex) {
  Node leader = leader_of_term_3();
  leader.step(append_ack(2, 1, 2, 1));  // an answer to the term-2 leader
  EXPECT_EQ(leader.progress(S(2))->match_index, I(0));
  EXPECT_EQ(leader.progress(S(2))->state, ProgressState::kProbe);
  EXPECT_FALSE(leader.progress(S(2))->recent_active);
  EXPECT_EQ(leader.commit_index(), I(0));
  leader.step(append_ack(2, 1, 3, 1));  // the control: the same answer in term 3
  EXPECT_EQ(leader.progress(S(2))->match_index, I(1));
  EXPECT_EQ(leader.commit_index(), I(1));
}

TEST(StaleMessages, HeartbeatResponseFromAnEarlierTermConfirmsNoReadRound) {
  Node leader = leader_of_term_3();
  leader.step(append_ack(2, 1, 3, 1));
  drain(leader);
  ASSERT_TRUE(leader.read_index(7).is_ok());
  drain(leader);
  leader.step(Message{.type = MessageType::kHeartbeatResponse,
                      .from = S(2),
                      .to = S(1),
                      .term = T(2),
                      .read_round = 1});
  EXPECT_TRUE(leader.ready().read_states.empty());
  EXPECT_EQ(leader.progress(S(2))->read_round_acked, 0u);
}

TEST(StaleMessages, VoteResponseFromAnEarlierTermIsNotCounted) {
  Node candidate = make_node(1, 3, plain_config(), {}, 2);
  candidate.campaign();  // term 3
  candidate.step(vote_response(2, 1, 2, true));
  candidate.step(vote_response(3, 1, 2, true));
  EXPECT_EQ(candidate.role(), Role::kCandidate);
  candidate.step(vote_response(2, 1, 3, true));
  EXPECT_TRUE(candidate.is_leader());
}

TEST(StaleMessages, PreVoteGrantForAnEarlierRoundIsNotCounted) {
  CoreConfig config;
  config.pre_vote = true;
  Node node = make_node(1, 3, config, {}, 2);
  node.campaign();  // asks for term 3
  // A grant for term 2, answering a pre-vote from before the node reached term 2.
  node.step(Message{.type = MessageType::kPreVoteResponse, .from = S(2), .to = S(1), .term = T(2)});
  EXPECT_EQ(node.role(), Role::kPreCandidate);
  EXPECT_EQ(node.term(), T(2));
}

TEST(StaleMessages, AppendFromAnOldLeaderIsRejectedWithTheCurrentTerm) {
  Node follower = make_node(2, 3, plain_config(), log_with_terms({1}), 3);
  follower.step(append(1, 2, 2, 1, 1, {entry(2, 2)}, 2));
  std::vector<Message> replies = all_messages(drain(follower));
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].type, MessageType::kAppendResponse);
  EXPECT_TRUE(replies[0].reject);
  EXPECT_EQ(replies[0].term, T(3));  // so that the old leader steps down
  EXPECT_EQ(follower.last_index(), I(1));
  EXPECT_EQ(follower.commit_index(), I(0));
  EXPECT_EQ(follower.leader(), kNoServer);
}

TEST(StaleMessages, LeaderStepsDownOnAMessageWithAHigherTerm) {
  Node leader = leader_of_term_3();
  Message reply = append_ack(2, 1, 5, 0);
  reply.reject = true;
  leader.step(reply);
  EXPECT_EQ(leader.role(), Role::kFollower);
  EXPECT_EQ(leader.term(), T(5));
  EXPECT_EQ(leader.vote(), kNoServer);
  EXPECT_EQ(leader.leader(), kNoServer);
  Ready ready = leader.ready();
  ASSERT_TRUE(ready.hard_state.has_value());
  EXPECT_EQ(ready.hard_state->term, T(5));
  EXPECT_TRUE(has_event(ready.events, EventKind::kRoleChanged));
}

TEST(StaleMessages, LeaderStepsDownOnAHeartbeatFromANewerLeader) {
  Node leader = leader_of_term_3();
  leader.step(heartbeat(2, 1, 4));
  EXPECT_EQ(leader.role(), Role::kFollower);
  EXPECT_EQ(leader.term(), T(4));
  EXPECT_EQ(leader.leader(), S(2));
}

TEST(StaleMessages, CandidateStepsDownOnAnAppendFromALeaderOfItsTerm) {
  Node candidate = make_node(1, 3);
  candidate.campaign();
  candidate.step(append(2, 1, 1, 0, 0, {entry(1, 1)}));
  EXPECT_EQ(candidate.role(), Role::kFollower);
  EXPECT_EQ(candidate.term(), T(1));
  EXPECT_EQ(candidate.leader(), S(2));
  EXPECT_EQ(candidate.vote(), S(1));  // its own vote in term 1 stands
  EXPECT_EQ(candidate.last_index(), I(1));
}

TEST(StaleMessages, CandidateStepsDownOnAVoteRequestWithAHigherTerm) {
  Node candidate = make_node(1, 3);
  candidate.campaign();
  drain(candidate);
  candidate.step(vote_request(2, 1, 2, 0, 0));
  EXPECT_EQ(candidate.role(), Role::kFollower);
  EXPECT_EQ(candidate.term(), T(2));
  EXPECT_EQ(candidate.vote(), S(2));
}

TEST(StaleMessages, LateRejectionDoesNotRewindAReplicatingFollower) {
  Node leader = make_node(1, 3);
  make_leader(leader);
  leader.step(append_ack(2, 1, 1, 1));
  ASSERT_TRUE(leader.propose(EntryType::kCommand, "x").is_ok());
  drain(leader);
  leader.step(append_ack(2, 1, 1, 2));
  // A rejection of an append at prev index 1, sent before the ack above.
  Message late = append_ack(2, 1, 1, 1);
  late.reject = true;
  late.hint_index = I(1);
  leader.step(late);
  const Progress* progress = leader.progress(S(2));
  EXPECT_EQ(progress->state, ProgressState::kReplicate);
  EXPECT_EQ(progress->match_index, I(2));
  EXPECT_EQ(progress->next_index, I(3));
}

}  // namespace
}  // namespace keel::core
