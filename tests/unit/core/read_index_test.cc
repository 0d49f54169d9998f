// Reads (thesis §6.4): ReadIndex rounds confirmed by a quorum of heartbeat
// responses, follower reads forwarded to the leader, failed reads on a lost
// leadership, lease reads bounded by lease_ticks, and barriers.
#include <algorithm>

#include <gtest/gtest.h>

#include "test_util.h"

namespace keel::core {
namespace {

using namespace testutil;  // NOLINT(google-build-using-namespace): test vocabulary

bool is_read_index_response(const Message& m) { return m.type == MessageType::kReadIndexResponse; }

TEST(ReadIndex, LeaderRefusesReadsUntilItsTermStartEntryCommits) {
  sim::CoreCluster cluster(cluster_options(3));
  ASSERT_TRUE(win_election(cluster, S(1)));  // its term-start append is still in flight
  EXPECT_EQ(cluster.read_index(S(1), 7).code(), StatusCode::kUnavailable);
  EXPECT_EQ(cluster.node(S(1)).lease_read_index().status().code(), StatusCode::kUnavailable);
  ASSERT_TRUE(cluster.stabilize());
  EXPECT_TRUE(cluster.read_index(S(1), 8).is_ok());
}

TEST(ReadIndex, ReadIsReleasedOnlyAfterAQuorumAnswersItsRound) {
  sim::CoreCluster cluster(cluster_options(5));
  elect_and_settle(cluster, S(1));
  const Index commit = cluster.node(S(1)).commit_index();
  ASSERT_TRUE(cluster.read_index(S(1), 7).is_ok());
  ASSERT_EQ(cluster.deliver(of_type(MessageType::kHeartbeatRequest)).size(), 4u);

  cluster.deliver([](const Message& m) { return m.from == S(2); });
  EXPECT_TRUE(cluster.read_states(S(1)).empty());  // leader and one follower of five
  cluster.deliver([](const Message& m) { return m.from == S(3); });
  ASSERT_EQ(cluster.read_states(S(1)).size(), 1u);
  const ReadState& read = cluster.read_states(S(1))[0];
  EXPECT_EQ(read.request_id, 7u);
  EXPECT_EQ(read.index, commit);
  EXPECT_TRUE(read.status.is_ok());
}

TEST(ReadIndex, AnswersToAnEarlierRoundDoNotReleaseARead) {
  sim::CoreCluster cluster(cluster_options(3));
  elect_and_settle(cluster, S(1));
  cluster.tick(S(1));  // a heartbeat round before the read
  std::vector<Message> early = cluster.deliver(of_type(MessageType::kHeartbeatRequest));
  ASSERT_FALSE(early.empty());
  const std::uint64_t early_round = early[0].read_round;

  ASSERT_TRUE(cluster.read_index(S(1), 7).is_ok());
  // Those answers prove leadership only as of before the read arrived.
  cluster.deliver([&](const Message& m) {
    return m.type == MessageType::kHeartbeatResponse && m.read_round == early_round;
  });
  EXPECT_TRUE(cluster.read_states(S(1)).empty());
  ASSERT_TRUE(cluster.stabilize());
  ASSERT_EQ(cluster.read_states(S(1)).size(), 1u);
  EXPECT_EQ(cluster.read_states(S(1))[0].request_id, 7u);
}

TEST(ReadIndex, ReadOnAFollowerIsForwardedToTheLeaderAndAnsweredAfterItsRound) {
  sim::CoreCluster cluster(cluster_options(3));
  elect_and_settle(cluster, S(1));
  ASSERT_TRUE(cluster.read_index(S(2), 9).is_ok());
  ASSERT_EQ(cluster.in_flight().size(), 1u);
  EXPECT_EQ(cluster.in_flight()[0].type, MessageType::kReadIndexRequest);
  EXPECT_EQ(cluster.in_flight()[0].to, S(1));

  cluster.deliver();  // the leader opens a round; no answer yet
  const std::vector<Message>& in_flight = cluster.in_flight();
  EXPECT_EQ(std::count_if(in_flight.begin(), in_flight.end(), is_read_index_response), 0);
  ASSERT_TRUE(cluster.stabilize());
  ASSERT_EQ(cluster.read_states(S(2)).size(), 1u);
  const ReadState& read = cluster.read_states(S(2))[0];
  EXPECT_EQ(read.request_id, 9u);
  EXPECT_EQ(read.index, cluster.node(S(1)).commit_index());
  EXPECT_TRUE(read.status.is_ok());
}

// The leader confirms a forwarded read only with a round that starts after
// the request arrived, as it does for its own reads.
TEST(ReadIndex, ForwardedReadIsNotReleasedByARoundSentBeforeItArrived) {
  sim::CoreCluster cluster(cluster_options(3));
  elect_and_settle(cluster, S(1));
  cluster.tick(S(1));  // a round goes out before the request arrives
  std::vector<Message> early = cluster.deliver(of_type(MessageType::kHeartbeatRequest));
  ASSERT_FALSE(early.empty());
  const std::uint64_t early_round = early[0].read_round;
  ASSERT_TRUE(cluster.read_index(S(2), 9).is_ok());
  cluster.deliver(of_type(MessageType::kReadIndexRequest));
  cluster.deliver([&](const Message& m) {
    return m.type == MessageType::kHeartbeatResponse && m.read_round == early_round;
  });
  const std::vector<Message>& in_flight = cluster.in_flight();
  EXPECT_EQ(std::count_if(in_flight.begin(), in_flight.end(), is_read_index_response), 0);
  ASSERT_TRUE(cluster.stabilize());
  ASSERT_EQ(cluster.read_states(S(2)).size(), 1u);
  EXPECT_TRUE(cluster.read_states(S(2))[0].status.is_ok());
}

// A follower takes an answer only to a request it forwarded in this run, from
// the leader it asked, in the term it asked in. A restarted follower that
// reuses an id must not resolve its new read with the answer the leader
// computed for its previous run.
TEST(ReadIndex, FollowerIgnoresAnAnswerToARequestItDidNotSend) {
  sim::CoreCluster cluster(cluster_options(3));
  elect_and_settle(cluster, S(1));
  Node& follower = cluster.node(S(2));
  const Term term = follower.term();
  follower.step(Message{.type = MessageType::kReadIndexResponse,
                        .from = S(1),
                        .to = S(2),
                        .term = term,
                        .request_id = 4,
                        .read_index = I(1)});
  cluster.process(S(2));
  EXPECT_TRUE(cluster.read_states(S(2)).empty());
}

TEST(ReadIndex, FollowerIgnoresAnAnswerFromAnotherServerOrTerm) {
  sim::CoreCluster cluster(cluster_options(3));
  elect_and_settle(cluster, S(1));
  ASSERT_TRUE(cluster.read_index(S(2), 9).is_ok());
  cluster.drop(any_message);
  Node& follower = cluster.node(S(2));
  const Term term = follower.term();
  // From a server it did not ask.
  follower.step(Message{.type = MessageType::kReadIndexResponse,
                        .from = S(3),
                        .to = S(2),
                        .term = term,
                        .request_id = 9,
                        .read_index = I(1)});
  cluster.process(S(2));
  EXPECT_TRUE(cluster.read_states(S(2)).empty());
  // From the leader it asked, but it now follows that leader in a later term
  // (re-elected): the answer belongs to the earlier one.
  follower.step(heartbeat(1, 2, term.value + 1, 0));
  follower.step(Message{.type = MessageType::kReadIndexResponse,
                        .from = S(1),
                        .to = S(2),
                        .term = term.next(),
                        .request_id = 9,
                        .read_index = I(1)});
  cluster.process(S(2));
  EXPECT_TRUE(cluster.read_states(S(2)).empty());
  // Asked again, the present leader's answer counts.
  ASSERT_TRUE(cluster.read_index(S(2), 9).is_ok());
  cluster.drop(any_message);
  follower.step(Message{.type = MessageType::kReadIndexResponse,
                        .from = S(1),
                        .to = S(2),
                        .term = term.next(),
                        .request_id = 9,
                        .read_index = I(1)});
  cluster.process(S(2));
  ASSERT_EQ(cluster.read_states(S(2)).size(), 1u);
  EXPECT_EQ(cluster.read_states(S(2))[0].request_id, 9u);
}

TEST(ReadIndex, FollowerWithoutAKnownLeaderRefusesReads) {
  sim::CoreCluster cluster(cluster_options(3));
  EXPECT_EQ(cluster.read_index(S(2), 1).code(), StatusCode::kUnavailable);
  EXPECT_TRUE(cluster.in_flight().empty());
}

TEST(ReadIndex, ForwardedReadIsRefusedByALeaderWhoseTermStartIsUncommitted) {
  sim::CoreCluster cluster(cluster_options(3));
  ASSERT_TRUE(win_election(cluster, S(1)));
  cluster.deliver(of_type_to(MessageType::kAppendRequest, 2));  // node 2 learns the leader
  cluster.drop(any_message);                                    // but no ack reaches it
  ASSERT_TRUE(cluster.read_index(S(2), 9).is_ok());
  cluster.deliver();
  cluster.deliver(is_read_index_response);
  ASSERT_EQ(cluster.read_states(S(2)).size(), 1u);
  EXPECT_EQ(cluster.read_states(S(2))[0].status.code(), StatusCode::kUnavailable);
}

TEST(ReadIndex, LeaderThatLosesLeadershipFailsItsPendingReadsWithNotLeader) {
  sim::CoreCluster cluster(cluster_options(3));
  elect_and_settle(cluster, S(1));
  ASSERT_TRUE(cluster.read_index(S(1), 7).is_ok());
  cluster.drop(any_message);  // its round is never answered
  // Node 2 has meanwhile been elected in term 2; its heartbeat reaches node 1.
  cluster.node(S(1)).step(heartbeat(2, 1, 2));
  cluster.process(S(1));
  EXPECT_FALSE(cluster.node(S(1)).is_leader());
  ASSERT_EQ(cluster.read_states(S(1)).size(), 1u);
  EXPECT_EQ(cluster.read_states(S(1))[0].request_id, 7u);
  EXPECT_EQ(cluster.read_states(S(1))[0].status.code(), StatusCode::kNotLeader);
}

// --- lease reads -------------------------------------------------------------------

CoreConfig lease_config(std::uint32_t lease_ticks) {
  CoreConfig config;
  config.election_timeout_ticks = 10;
  config.heartbeat_interval_ticks = 1;
  config.lease_ticks = lease_ticks;  // 8 * 110% <= 10
  return config;
}

TEST(LeaseRead, LeaseHoldsForLeaseTicksAfterAQuorumAnsweredRoundThenExpires) {
  sim::CoreCluster cluster(cluster_options(3, lease_config(8)));
  pass_startup_vote_protection(cluster, 10);
  elect_and_settle(cluster, S(1));
  Node& leader = cluster.node(S(1));
  EXPECT_EQ(leader.lease_read_index().status().code(), StatusCode::kUnavailable);  // no round yet

  cluster.tick(S(1));  // a round goes out at this tick...
  const std::uint64_t sent_tick = leader.ticks();
  ASSERT_TRUE(cluster.stabilize());  // ...and a quorum answers it
  ASSERT_TRUE(leader.lease_read_index().is_ok());
  EXPECT_EQ(*leader.lease_read_index(), leader.commit_index());

  // From now on nobody answers: the lease runs from when the round was sent.
  while (leader.ticks() < sent_tick + 7) {
    cluster.tick(S(1));
    cluster.drop(any_message);
  }
  EXPECT_TRUE(leader.lease_read_index().is_ok());
  cluster.tick(S(1));
  EXPECT_EQ(leader.lease_read_index().status().code(), StatusCode::kUnavailable);
}

TEST(LeaseRead, AConfigurationChangeVoidsTheLeaseUntilTheNewQuorumAnswers) {
  sim::CoreCluster cluster(cluster_options(3, lease_config(8)));
  pass_startup_vote_protection(cluster, 10);
  elect_and_settle(cluster, S(1));
  Node& leader = cluster.node(S(1));
  cluster.tick(S(1));
  ASSERT_TRUE(cluster.stabilize());
  ASSERT_TRUE(leader.lease_read_index().is_ok());
  // Two voters replaced at once: once C_new alone decides, a lease from
  // the old voters' answers would bind nobody who can elect.
  cluster.add_server(S(4));
  cluster.add_server(S(5));
  ASSERT_TRUE(
      cluster
          .change_configuration(
              S(1), {ConfigurationChange{ConfigurationChange::Kind::kRemoveServer, S(2), ""},
                     ConfigurationChange{ConfigurationChange::Kind::kRemoveServer, S(3), ""},
                     ConfigurationChange{ConfigurationChange::Kind::kAddVoter, S(4), "n4"},
                     ConfigurationChange{ConfigurationChange::Kind::kAddVoter, S(5), "n5"}})
          .is_ok());
  EXPECT_EQ(leader.lease_read_index().status().code(), StatusCode::kUnavailable);
  ASSERT_TRUE(cluster.stabilize());
  cluster.tick(S(1));
  ASSERT_TRUE(cluster.stabilize());
  EXPECT_TRUE(leader.lease_read_index().is_ok()) << "a round answered under the new configuration";
}

TEST(LeaseRead, LeaseIsRenewedByEachAnsweredRound) {
  sim::CoreCluster cluster(cluster_options(3, lease_config(8)));
  pass_startup_vote_protection(cluster, 10);
  elect_and_settle(cluster, S(1));
  for (int tick = 0; tick < 30; ++tick) {
    cluster.tick_all();
    ASSERT_TRUE(cluster.stabilize());
    EXPECT_TRUE(cluster.node(S(1)).lease_read_index().is_ok()) << "tick " << tick;
  }
}

TEST(LeaseRead, LeaseReadIsRefusedWhenLeasesAreDisabled) {
  sim::CoreCluster cluster(cluster_options(3, lease_config(0)));
  elect_and_settle(cluster, S(1));
  cluster.tick(S(1));
  ASSERT_TRUE(cluster.stabilize());
  EXPECT_EQ(cluster.node(S(1)).lease_read_index().status().code(), StatusCode::kUnavailable);
}

// A node that restarts does not know whether some leader holds a lease; it
// must not help elect another one before an election timeout has passed.
TEST(LeaseRead, ARestartedNodeRefusesVotesForAnElectionTimeout) {
  sim::CoreCluster cluster(cluster_options(3, lease_config(8)));
  pass_startup_vote_protection(cluster, 10);
  elect_and_settle(cluster, S(1));
  cluster.crash(S(2));
  cluster.restart(S(2));
  cluster.crash(S(1));  // the leader (and its lease) is cut off by the crash
  cluster.campaign(S(3));
  cluster.stabilize();
  EXPECT_FALSE(cluster.node(S(3)).is_leader()) << "node 2 voted right after its restart";
  for (int i = 0; i < 10; ++i) {
    cluster.tick(S(2));
    cluster.drop(any_message);
  }
  cluster.campaign(S(3));
  cluster.stabilize();
  EXPECT_TRUE(cluster.node(S(3)).is_leader());
}

// After a TimeoutNow went out, its target may campaign at any later moment,
// past every lease protection: the leader's lease is over for its term.
TEST(LeaseRead, NoLeaseAfterATimeoutNowWasSentEvenIfTheTransferIsAbandoned) {
  sim::CoreCluster cluster(cluster_options(3, lease_config(8)));
  pass_startup_vote_protection(cluster, 10);
  elect_and_settle(cluster, S(1));
  ASSERT_TRUE(cluster.transfer_leadership(S(1), S(2)).is_ok());
  cluster.drop(any_message);  // the TimeoutNow is delayed: the transfer times out
  for (int i = 0; i < 12; ++i) {
    cluster.tick(S(1));
    cluster.stabilize();
  }
  ASSERT_TRUE(cluster.node(S(1)).is_leader());
  EXPECT_EQ(cluster.node(S(1)).lease_read_index().status().code(), StatusCode::kUnavailable);
}

// A follower that heard from the leader within the election timeout refuses
// to vote for anyone else, even after it adopts a higher term from a late
// response (here: a rejected pre-vote response of its own old campaign) and
// so forgets who leads. Otherwise a delayed vote request of that term wins
// it over inside the leader's lease.
TEST(LeaseRead, AFollowerInALeaseKeepsRefusingVotesAfterAdoptingATermFromAResponse) {
  sim::CoreCluster cluster(cluster_options(3, lease_config(8)));
  pass_startup_vote_protection(cluster, 10);
  elect_and_settle(cluster, S(1));
  cluster.tick(S(1));
  ASSERT_TRUE(cluster.stabilize());  // node 2 just heard the leader
  Node& follower = cluster.node(S(2));
  const Term term = follower.term();
  follower.step(Message{.type = MessageType::kPreVoteResponse,
                        .from = S(3),
                        .to = S(2),
                        .term = term.next(),
                        .reject = true});
  cluster.process(S(2));
  ASSERT_EQ(follower.term(), term.next());
  ASSERT_TRUE(follower.leader().is_zero());
  follower.step(Message{.type = MessageType::kVoteRequest,
                        .from = S(3),
                        .to = S(2),
                        .term = term.next(),
                        .last_log_index = follower.last_index(),
                        .last_log_term = follower.log().last_term()});
  cluster.process(S(2));
  EXPECT_TRUE(follower.vote().is_zero()) << "voted inside the leader's lease";
  std::vector<Message> replies = only(cluster.in_flight(), MessageType::kVoteResponse);
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_TRUE(replies[0].reject);
  // Once an election timeout has passed since it heard the leader, it votes.
  for (int i = 0; i < 10; ++i) cluster.tick(S(2));
  cluster.drop(any_message);
  follower.step(Message{.type = MessageType::kVoteRequest,
                        .from = S(3),
                        .to = S(2),
                        .term = follower.term(),
                        .last_log_index = follower.last_index(),
                        .last_log_term = follower.log().last_term()});
  cluster.process(S(2));
  EXPECT_EQ(follower.vote(), S(3));
}

TEST(LeaseRead, FollowerHasNoLease) {
  sim::CoreCluster cluster(cluster_options(3, lease_config(8)));
  pass_startup_vote_protection(cluster, 10);
  elect_and_settle(cluster, S(1));
  EXPECT_EQ(cluster.node(S(2)).lease_read_index().status().code(), StatusCode::kNotLeader);
}

// --- barriers ----------------------------------------------------------------------

TEST(Barrier, BarrierProposalIsHandedOutInCommittedEntriesOnEveryNode) {
  sim::CoreCluster cluster(cluster_options(3));
  elect_and_settle(cluster, S(1));
  ASSERT_TRUE(cluster.propose(S(1), "a").is_ok());
  const Index barrier = *cluster.propose(S(1), "", EntryType::kBarrier);
  ASSERT_TRUE(cluster.stabilize());
  for (ServerId id : cluster.ids()) {
    const std::vector<LogEntry>& applied = cluster.applied(id);
    ASSERT_FALSE(applied.empty());
    EXPECT_EQ(applied.back().index, barrier);
    EXPECT_EQ(applied.back().type, EntryType::kBarrier);
  }
}

}  // namespace
}  // namespace keel::core
