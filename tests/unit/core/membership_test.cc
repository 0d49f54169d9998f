// Membership changes in the core (thesis chapter 4): the configuration log
// and the change rules, configurations in force on append (and undone by a
// truncation), learners, the single-server path and joint consensus, the
// rule that a leader commits an entry of its term before any change (the
// 2015 bug), removing the leader, removed servers that cannot disrupt, and
// responses from an earlier life of a re-added server.
#include "core/membership.h"

#include <gtest/gtest.h>

#include "core/codec.h"
#include "single_server_change_schedule.h"
#include "test_util.h"

namespace keel::core {
namespace {

using namespace testutil;  // NOLINT(google-build-using-namespace): test vocabulary
using Kind = ConfigurationChange::Kind;

Server voter(std::uint64_t id) { return Server{S(id), "node-" + std::to_string(id)}; }
Server learner(std::uint64_t id) {
  return Server{S(id), "node-" + std::to_string(id), Suffrage::kLearner};
}
ConfigurationChange change(Kind kind, std::uint64_t id) {
  return ConfigurationChange{kind, S(id), "node-" + std::to_string(id)};
}

// --- the configuration log -------------------------------------------------------

TEST(ConfigurationLog, AnswersForEveryIndexAndGoesBackOnTruncation) {
  ConfigurationLog log(voters(3), I(1));
  log.append(I(5), voters(4));
  log.append(I(9), voters(5));
  EXPECT_EQ(log.latest(), voters(5));
  EXPECT_EQ(log.latest_index(), I(9));
  EXPECT_EQ(log.at(I(4)).second, voters(3));
  EXPECT_EQ(log.at(I(5)).first, I(5));
  EXPECT_EQ(log.at(I(8)).second, voters(4));
  log.truncate_from(I(7));
  EXPECT_EQ(log.latest(), voters(4));
  log.truncate_from(I(2));
  EXPECT_EQ(log.latest(), voters(3));
  log.truncate_from(I(1));  // the base stays: no truncation reaches it
  EXPECT_EQ(log.latest(), voters(3));
}

TEST(ConfigurationLog, CompactionKeepsTheOneInForceAtTheNewBase) {
  ConfigurationLog log(voters(3), I(1));
  log.append(I(5), voters(4));
  log.append(I(9), voters(5));
  log.compact(I(7));
  EXPECT_EQ(log.at(I(7)), (std::pair<Index, Configuration>{I(5), voters(4)}));
  EXPECT_EQ(log.latest_index(), I(9));
  log.reset(voters(2), I(20));
  EXPECT_EQ(log.latest(), voters(2));
  EXPECT_EQ(log.latest_index(), I(20));
}

// --- the change rules ------------------------------------------------------------

TEST(ApplyChanges, AddsPromotesDemotesAndRemoves) {
  Result<Configuration> next = apply_changes(voters(3), {change(Kind::kAddLearner, 4)});
  ASSERT_TRUE(next.is_ok()) << next.status().to_string();
  EXPECT_EQ(next->servers.back(), learner(4));
  next = apply_changes(*next, {ConfigurationChange{Kind::kAddVoter, S(4), ""}});
  ASSERT_TRUE(next.is_ok());
  EXPECT_TRUE(next->is_voter(S(4)));
  next = apply_changes(*next, {change(Kind::kDemoteVoter, 1), change(Kind::kRemoveServer, 2)});
  ASSERT_TRUE(next.is_ok());
  EXPECT_FALSE(next->is_voter(S(1)));
  EXPECT_TRUE(next->contains(S(1)));
  EXPECT_FALSE(next->contains(S(2)));
}

TEST(ApplyChanges, WhatIsAlreadyTrueChangesNothing) {
  for (const ConfigurationChange& c : {change(Kind::kAddVoter, 2), change(Kind::kRemoveServer, 7),
                                       ConfigurationChange{Kind::kAddVoter, S(1), ""}}) {
    Result<Configuration> next = apply_changes(voters(3), {c});
    ASSERT_TRUE(next.is_ok()) << to_string(c.kind);
    EXPECT_EQ(*next, voters(3)) << to_string(c.kind);
  }
}

TEST(ApplyChanges, RefusesWhatCannotBeDone) {
  auto refused = [](const Configuration& from, std::vector<ConfigurationChange> changes,
                    const std::string& why) {
    Result<Configuration> next = apply_changes(from, changes);
    ASSERT_FALSE(next.is_ok()) << why;
    EXPECT_EQ(next.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(next.status().message().find(why), std::string::npos) << next.status().to_string();
  };
  refused(voters(3), {ConfigurationChange{Kind::kAddVoter, S(4), ""}}, "needs an address");
  refused(voters(3), {ConfigurationChange{Kind::kAddVoter, S(0), "x"}}, "id 0");
  refused(voters(3), {change(Kind::kAddLearner, 2)}, "demote it");
  refused(voters(3), {ConfigurationChange{Kind::kAddVoter, S(2), "elsewhere"}}, "is a member at");
  refused(voters(3), {change(Kind::kAddVoter, 4), change(Kind::kRemoveServer, 4)}, "two changes");
  refused(voters(1), {change(Kind::kRemoveServer, 1)}, "without a voter");
  refused(voters(3), {}, "no membership change");
}

TEST(Transition, OneVoterAtATimeIsDirectMoreIsJoint) {
  Configuration four = voters(3);
  four.servers.push_back(voter(4));
  EXPECT_EQ(transition(voters(3), four), four);
  Configuration with_learner = voters(3);
  with_learner.servers.push_back(learner(4));
  EXPECT_EQ(transition(voters(3), with_learner), with_learner);

  Configuration replaced{{voter(1), voter(4), voter(5)}, {}};
  const Configuration joint = transition(voters(3), replaced);
  ASSERT_TRUE(joint.joint());
  EXPECT_EQ(joint.servers, replaced.servers);
  EXPECT_EQ(joint.outgoing, voters(3).servers);
  EXPECT_EQ(joint.voters(), (std::vector<ServerId>{S(1), S(2), S(3), S(4), S(5)}));
  EXPECT_EQ(leave_joint(joint), replaced);
}

// --- encoding --------------------------------------------------------------------

TEST(ConfigurationCodec, JointRoundTripsAndPlainKeepsTheFirstFormat) {
  const Configuration plain = voters(3);
  EXPECT_EQ(static_cast<std::uint8_t>(encode_configuration(plain)[0]), kConfigurationFormatVersion);
  const Configuration joint{{voter(1), voter(4)}, {voter(1), voter(2), voter(3)}};
  const std::string bytes = encode_configuration(joint);
  EXPECT_EQ(static_cast<std::uint8_t>(bytes[0]), kJointConfigurationFormatVersion);
  Result<Configuration> decoded = decode_configuration(bytes);
  ASSERT_TRUE(decoded.is_ok()) << decoded.status().to_string();
  EXPECT_EQ(*decoded, joint);
}

TEST(ConfigurationCodec, RefusesABadJointConfiguration) {
  const Configuration learner_outgoing{{voter(1)}, {learner(2)}};
  Result<Configuration> decoded = decode_configuration(encode_configuration(learner_outgoing));
  ASSERT_FALSE(decoded.is_ok());
  EXPECT_NE(decoded.status().message().find("not a voter"), std::string::npos);
  const Configuration two_addresses{{voter(1)}, {Server{S(1), "other"}}};
  decoded = decode_configuration(encode_configuration(two_addresses));
  ASSERT_FALSE(decoded.is_ok());
  EXPECT_NE(decoded.status().message().find("two addresses"), std::string::npos);
}

TEST(ConfigurationCodec, AnAppendWithAConfigurationEntryThatDoesNotDecodeIsRefused) {
  Message m = append(1, 2, 1, 0, 0, {LogEntry{T(1), I(1), EntryType::kConfiguration, "junk"}});
  Result<Message> decoded = decode(encode(m));
  ASSERT_FALSE(decoded.is_ok());
  EXPECT_NE(decoded.status().message().find("configuration entry"), std::string::npos);
  m.entries[0].data = Payload(encode_configuration(voters(2)));
  m.epoch = 7;
  m.from_address = "10.0.0.1:7000";
  m.snapshot_configuration = Configuration{{voter(1)}, {voter(2), voter(3)}};
  decoded = decode(encode(m));
  ASSERT_TRUE(decoded.is_ok()) << decoded.status().to_string();
  EXPECT_EQ(*decoded, m);
}

// --- in a cluster ----------------------------------------------------------------

// A 3-voter cluster led by 1, settled.
sim::CoreCluster settled(std::size_t voters_count = 3, CoreConfig config = plain_config()) {
  sim::CoreCluster cluster(cluster_options(voters_count, config));
  elect_and_settle(cluster, S(1));
  return cluster;
}

TEST(Membership, ALearnerGetsTheLogButNeverVotesNorCounts) {
  sim::CoreCluster cluster = settled();
  cluster.add_server(S(4));
  ASSERT_TRUE(cluster.change_configuration(S(1), {change(Kind::kAddLearner, 4)}).is_ok());
  ASSERT_TRUE(cluster.stabilize());
  ASSERT_TRUE(cluster.propose(S(1), "x").is_ok());
  ASSERT_TRUE(cluster.stabilize());
  EXPECT_EQ(cluster.applied_commands(S(4)), (std::vector<std::string>{"x"}));
  EXPECT_EQ(cluster.node(S(4)).configuration(), cluster.node(S(1)).configuration());
  // With two of the three voters gone, the learner does not make a majority.
  cluster.isolate(S(2));
  cluster.isolate(S(3));
  const Result<Index> y = cluster.propose(S(1), "y");
  ASSERT_TRUE(y.is_ok());
  cluster.stabilize();
  EXPECT_LT(cluster.node(S(1)).commit_index(), *y);
  // And it never campaigns.
  cluster.isolate(S(4));
  cluster.tick(S(4), 100);
  EXPECT_EQ(cluster.node(S(4)).role(), Role::kFollower);
  EXPECT_EQ(cluster.node(S(4)).term(), cluster.node(S(1)).term());
}

TEST(Membership, APromotedVoterCountsAtOnceOnAppend) {
  sim::CoreCluster cluster = settled();
  cluster.add_server(S(4));
  ASSERT_TRUE(cluster.change_configuration(S(1), {change(Kind::kAddLearner, 4)}).is_ok());
  ASSERT_TRUE(cluster.stabilize());
  Result<Index> promoted =
      cluster.change_configuration(S(1), {ConfigurationChange{Kind::kAddVoter, S(4), ""}});
  ASSERT_TRUE(promoted.is_ok()) << promoted.status().to_string();
  // In force on append, committed or not: four voters, a quorum of three.
  EXPECT_TRUE(cluster.node(S(1)).configuration().is_voter(S(4)));
  const ConfigurationState state = cluster.node(S(1)).configuration_state();
  EXPECT_EQ(state.latest_index, *promoted);
  EXPECT_LT(state.committed_index, *promoted);
  ASSERT_TRUE(cluster.stabilize());
  EXPECT_EQ(cluster.node(S(1)).configuration_state().committed_index, *promoted);
  cluster.isolate(S(2));
  cluster.isolate(S(3));
  const Result<Index> z = cluster.propose(S(1), "z");
  cluster.stabilize();
  EXPECT_LT(cluster.node(S(1)).commit_index(), *z) << "1 and 4 are not three of four";
}

TEST(Membership, ALeaderCommitsAnEntryOfItsTermBeforeAnyChange) {
  sim::CoreCluster cluster(cluster_options(3, plain_config()));
  ASSERT_TRUE(win_election(cluster, S(1)));
  ASSERT_FALSE(cluster.node(S(1)).committed_in_current_term());
  cluster.add_server(S(4));
  Result<Index> early = cluster.change_configuration(S(1), {change(Kind::kAddVoter, 4)});
  ASSERT_FALSE(early.is_ok());
  EXPECT_EQ(early.status().code(), StatusCode::kUnavailable);
  ASSERT_TRUE(cluster.stabilize());
  EXPECT_TRUE(cluster.change_configuration(S(1), {change(Kind::kAddVoter, 4)}).is_ok());
}

TEST(Membership, TheSingleServerChangeBugScheduleLosesNothing) {
  CoreConfig config = plain_config();
  config.check_quorum = false;  // votes are not lease-protected: the schedule's elections
  sim::CoreCluster cluster(cluster_options(4, config));
  SingleServerChangeRun run;
  run_single_server_change_schedule(cluster, run);
  if (HasFatalFailure()) return;
  EXPECT_FALSE(run.removed_at.has_value()) << "2's change must wait for its term-start entry";
  ASSERT_GE(cluster.node(S(1)).commit_index(), run.added_at);
  cluster.heal();
  for (int round = 0; round < 5; ++round) {
    cluster.tick_all();
    ASSERT_TRUE(cluster.stabilize());
  }
  // Every server holds C1 where 1 committed it; the invariants (checked
  // after every event) saw no committed entry replaced.
  for (std::uint64_t id = 1; id <= 5; ++id) {
    ASSERT_GE(cluster.node(S(id)).commit_index(), run.added_at) << "server " << id;
    EXPECT_EQ(cluster.node(S(id)).log().at(run.added_at).type, EntryType::kConfiguration)
        << "server " << id;
    EXPECT_TRUE(cluster.node(S(id)).configuration().is_voter(S(5))) << "server " << id;
  }
}

TEST(Membership, OneChangeAtATimeAndACompareAndSetOnTheIndex) {
  sim::CoreCluster cluster = settled();
  cluster.add_server(S(4));
  cluster.add_server(S(5));
  const Index first = cluster.node(S(1)).configuration_state().latest_index;
  Result<Index> added = cluster.change_configuration(S(1), {change(Kind::kAddLearner, 4)}, first);
  ASSERT_TRUE(added.is_ok());
  Result<Index> second = cluster.change_configuration(S(1), {change(Kind::kAddLearner, 5)});
  ASSERT_FALSE(second.is_ok());
  EXPECT_EQ(second.status().code(), StatusCode::kConfigurationChangeInProgress);
  ASSERT_TRUE(cluster.stabilize());
  Result<Index> promoted = cluster.change_configuration(S(1), {change(Kind::kAddVoter, 4)}, *added);
  ASSERT_TRUE(promoted.is_ok()) << promoted.status().to_string();
  ASSERT_TRUE(cluster.stabilize());
  // Whoever still believes the configuration is the one at `added` is told.
  Result<Index> stale = cluster.change_configuration(S(1), {change(Kind::kAddLearner, 5)}, *added);
  ASSERT_FALSE(stale.is_ok());
  EXPECT_EQ(stale.status().code(), StatusCode::kConfigurationChangeInProgress);
  EXPECT_NE(stale.status().message().find("changed since"), std::string::npos);
  EXPECT_TRUE(
      cluster.change_configuration(S(1), {change(Kind::kAddLearner, 5)}, *promoted).is_ok());
  EXPECT_EQ(cluster.propose(S(1), "c", EntryType::kConfiguration).status().code(),
            StatusCode::kInvalidArgument);
}

// A settled 1, 2, 3 proposing to replace 2 and 3 by 4 and 5 (two voters
// in, two out: joint) while `away` hear nothing.
sim::CoreCluster replacing_two(std::vector<ServerId> away, Index& joint) {
  sim::CoreCluster cluster = settled();
  cluster.add_server(S(4));
  cluster.add_server(S(5));
  for (ServerId id : away) cluster.isolate(id);
  Result<Index> appended = cluster.change_configuration(
      S(1), {change(Kind::kRemoveServer, 2), change(Kind::kRemoveServer, 3),
             change(Kind::kAddVoter, 4), change(Kind::kAddVoter, 5)});
  EXPECT_TRUE(appended.is_ok()) << appended.status().to_string();
  EXPECT_TRUE(cluster.node(S(1)).configuration().joint());
  joint = appended.is_ok() ? *appended : Index{};
  for (int i = 0; i < 3; ++i) {
    cluster.tick(S(1));
    cluster.stabilize();
  }
  return cluster;
}

TEST(Membership, AJointConfigurationIsNotCommittedByTheOldMajorityAlone) {
  Index joint;
  sim::CoreCluster cluster = replacing_two({S(4), S(5)}, joint);
  EXPECT_LT(cluster.node(S(1)).commit_index(), joint);
  EXPECT_TRUE(cluster.node(S(2)).configuration().joint()) << "in force on append";
}

TEST(Membership, AJointConfigurationIsNotCommittedByTheNewMajorityAloneThenLeavesByItself) {
  Index joint;
  sim::CoreCluster cluster = replacing_two({S(2), S(3)}, joint);
  EXPECT_LT(cluster.node(S(1)).commit_index(), joint);
  EXPECT_EQ(cluster.node(S(4)).last_index(), cluster.node(S(1)).last_index());
  // Both: it commits, the leader appends C_new, which the new voters commit.
  cluster.heal();
  for (int i = 0; i < 5; ++i) {
    cluster.tick(S(1));
    cluster.stabilize();
  }
  const ConfigurationState state = cluster.node(S(1)).configuration_state();
  EXPECT_FALSE(state.committed.joint());
  EXPECT_GT(state.committed_index, joint);
  EXPECT_EQ(state.committed.voters(), (std::vector<ServerId>{S(1), S(4), S(5)}));
  // The removed servers were told, and neither campaigns.
  EXPECT_TRUE(cluster.node(S(2)).removed());
  EXPECT_TRUE(cluster.node(S(3)).removed());
  cluster.tick(S(2), 100);
  EXPECT_EQ(cluster.node(S(2)).role(), Role::kFollower);
  // C_new alone decides now: 2 and 3 away change nothing.
  cluster.isolate(S(2));
  cluster.isolate(S(3));
  const Result<Index> after = cluster.propose(S(1), "after");
  ASSERT_TRUE(after.is_ok());
  cluster.stabilize();
  EXPECT_GE(cluster.node(S(1)).commit_index(), *after);
}

TEST(Membership, ARemovedLeaderStepsDownOnceCommittedAndHandsOver) {
  sim::CoreCluster cluster = settled();
  const Term term = cluster.node(S(1)).term();
  Result<Index> removed = cluster.change_configuration(S(1), {change(Kind::kRemoveServer, 1)});
  ASSERT_TRUE(removed.is_ok());
  EXPECT_TRUE(cluster.node(S(1)).is_leader()) << "it manages the change first";
  ASSERT_TRUE(cluster.stabilize());
  EXPECT_FALSE(cluster.node(S(1)).is_leader());
  EXPECT_TRUE(cluster.node(S(1)).removed());
  // TimeoutNow: a new leader at once, without an election timeout.
  ASSERT_TRUE(cluster.leader().has_value());
  EXPECT_NE(*cluster.leader(), S(1));
  EXPECT_EQ(cluster.node(*cluster.leader()).term(), term.next());
  EXPECT_GE(cluster.node(*cluster.leader()).commit_index(), *removed);
}

TEST(Membership, ARemovedServerThatNeverLearnedItCannotRaiseTerms) {
  CoreConfig config = plain_config();
  config.check_quorum = false;  // no lease: only the configuration rule protects
  sim::CoreCluster cluster = settled(3, config);
  cluster.isolate(S(3));
  ASSERT_TRUE(cluster.change_configuration(S(1), {change(Kind::kRemoveServer, 3)}).is_ok());
  ASSERT_TRUE(cluster.stabilize());
  const Term term = cluster.node(S(1)).term();
  // 3 still holds the old configuration: it campaigns (pre-vote off) again
  // and again, ever higher terms; nobody answers, nobody adopts them.
  cluster.heal();
  for (int i = 0; i < 5; ++i) {
    cluster.campaign(S(3));
    cluster.stabilize();
  }
  EXPECT_GT(cluster.node(S(3)).term(), term);
  EXPECT_EQ(cluster.node(S(1)).term(), term);
  EXPECT_TRUE(cluster.node(S(1)).is_leader());
  EXPECT_EQ(cluster.node(S(2)).term(), term);
}

TEST(Membership, ATruncatedConfigurationEntryIsUndone) {
  sim::CoreCluster cluster = settled();
  cluster.add_server(S(4));
  // Only the old leader holds the change when the others elect another.
  cluster.isolate(S(1));
  ASSERT_TRUE(cluster.change_configuration(S(1), {change(Kind::kAddVoter, 4)}).is_ok());
  EXPECT_TRUE(cluster.node(S(1)).configuration().is_voter(S(4)));
  ServerId other;
  for (int i = 0; i < 100 && other.is_zero(); ++i) {
    cluster.tick(S(2));
    cluster.tick(S(3));
    cluster.stabilize();
    for (ServerId id : {S(2), S(3)}) {
      if (cluster.node(id).is_leader()) other = id;
    }
  }
  ASSERT_FALSE(other.is_zero());
  ASSERT_TRUE(cluster.stabilize());
  ASSERT_TRUE(cluster.propose(other, "overwrite").is_ok());
  cluster.heal();
  for (int i = 0; i < 5; ++i) {
    cluster.tick(other);
    cluster.stabilize();
  }
  EXPECT_FALSE(cluster.node(S(1)).is_leader());
  EXPECT_EQ(cluster.node(S(1)).configuration(), voters(3))
      << "the entry was truncated: the configuration before it is back";
  EXPECT_EQ(cluster.applied_commands(S(1)), (std::vector<std::string>{"overwrite"}));
}

TEST(Membership, AResponseFromAnEarlierLifeOfAReaddedServerIsIgnored) {
  sim::CoreCluster cluster = settled();
  ASSERT_TRUE(cluster.propose(S(1), "a").is_ok());
  ASSERT_TRUE(cluster.stabilize());
  // 3's acknowledgement of everything, held back as a slow network would.
  const Index match = cluster.node(S(1)).last_index();
  Message old_ack = append_ack(3, 1, cluster.node(S(1)).term().value, match.value);
  old_ack.epoch = cluster.node(S(1)).progress(S(3))->epoch;
  ASSERT_TRUE(cluster.change_configuration(S(1), {change(Kind::kRemoveServer, 3)}).is_ok());
  ASSERT_TRUE(cluster.stabilize());
  cluster.wipe(S(3));
  cluster.isolate(S(3));
  Result<Index> readded = cluster.change_configuration(S(1), {change(Kind::kAddLearner, 3)});
  ASSERT_TRUE(readded.is_ok());
  cluster.stabilize();
  ASSERT_NE(cluster.node(S(1)).progress(S(3)), nullptr);
  EXPECT_TRUE(cluster.node(S(1)).progress(S(3))->match_index.is_zero());
  cluster.node(S(1)).step(old_ack);
  EXPECT_TRUE(cluster.node(S(1)).progress(S(3))->match_index.is_zero())
      << "the wiped server holds nothing; an old life's answer must not say otherwise";
  // The new life answers, and catches up.
  cluster.heal();
  for (int i = 0; i < 3; ++i) {
    cluster.tick(S(1));
    cluster.stabilize();
  }
  EXPECT_EQ(cluster.node(S(1)).progress(S(3))->match_index, cluster.node(S(1)).last_index());
  EXPECT_EQ(cluster.applied_commands(S(3)), (std::vector<std::string>{"a"}));
}

TEST(Membership, ANodeCampaignsOnItsLatestConfigurationEvenUnapplied) {
  // Entry 2 adds voter 4, committed (commit 2) but applied only to 1.
  std::vector<LogEntry> log = {
      LogEntry{T(1), I(1), EntryType::kConfiguration, Payload(encode_configuration(voters(3)))},
      LogEntry{T(1), I(2), EntryType::kConfiguration, Payload(encode_configuration(voters(4)))}};
  CoreConfig config = plain_config();
  config.id = S(2);
  BootState boot;
  boot.hard_state = HardState{T(1), kNoServer, I(2)};
  boot.entries = log;
  boot.applied = I(1);
  Node node(config, std::move(boot));
  EXPECT_EQ(node.configuration(), voters(4));
  node.campaign();
  const std::vector<Message> requests = only(all_messages(node.ready()), MessageType::kVoteRequest);
  std::vector<ServerId> asked;
  for (const Message& m : requests) asked.push_back(m.to);
  EXPECT_EQ(asked, (std::vector<ServerId>{S(1), S(3), S(4)}));
  // Two of the old three are not enough under the new four.
  node.on_term_persisted(node.term());
  node.step(vote_response(1, 2, node.term().value, true));
  EXPECT_FALSE(node.is_leader());
  node.step(vote_response(4, 2, node.term().value, true));
  EXPECT_TRUE(node.is_leader());
}

TEST(Membership, VoteRequestsAreDroppedOnlyFromServersTheConfigurationDoesNotList) {
  // The candidate's log ends at (index, term).
  auto answered = [](Node& node, std::uint64_t from, std::uint64_t index = 10,
                     std::uint64_t term = 5) {
    node.step(vote_request(from, node.id().value, node.term().value + 1, index, term));
    return !only(all_messages(node.ready()), MessageType::kVoteResponse).empty();
  };
  CoreConfig config = plain_config();
  config.check_quorum = false;  // no lease: only the configuration decides here
  // A server that knows no configuration yet (just added, or wiped and
  // added back: its earlier life may have voted in any term) answers nobody.
  config.id = S(4);
  Node fresh(config, BootState{});
  EXPECT_FALSE(answered(fresh, 2));
  // A candidate our (older) configuration lists only as a learner is heard.
  Configuration with_learner = voters(3);
  with_learner.servers.push_back(learner(4));
  config.id = S(1);
  BootState boot;
  boot.configuration = with_learner;
  boot.entries = {LogEntry{T(2), I(1), EntryType::kCommand, Payload("x")},
                  LogEntry{T(2), I(2), EntryType::kCommand, Payload("y")}};
  boot.hard_state.term = T(2);
  Node lagging(config, boot);
  EXPECT_TRUE(answered(lagging, 4));
  // One it does not list at all, with a log behind ours (a removed server
  // whose log lacks its removal), is not.
  EXPECT_FALSE(answered(lagging, 7, 1, 2));
  EXPECT_FALSE(answered(lagging, 7, 5, 1));
  // One whose log is ahead of ours is: our configuration may be the one
  // that is behind (we are catching up to the entry that lists it).
  EXPECT_TRUE(answered(lagging, 7, 2, 2));
  EXPECT_TRUE(answered(lagging, 7, 1, 3));
}

TEST(Membership, AConfigurationTheWireCannotCarryIsRefused) {
  sim::CoreCluster cluster = settled();
  Result<Index> refused = cluster.change_configuration(
      S(1), {ConfigurationChange{Kind::kAddLearner, S(4), std::string(5000, 'a')}});
  ASSERT_FALSE(refused.is_ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("wire format"), std::string::npos);
  EXPECT_EQ(cluster.node(S(1)).configuration(), voters(3));
}

TEST(Membership, AServerAddedBackCatchesUpPastItsOwnRemovalWithoutLeaving) {
  CoreConfig config = plain_config();
  config.max_append_entries = 1;  // one entry per round trip: every index commits in turn
  sim::CoreCluster cluster = settled(3, config);
  ASSERT_TRUE(cluster.propose(S(1), "a").is_ok());
  ASSERT_TRUE(cluster.stabilize());
  // The leader's snapshot names the configuration of 3's earlier life: the
  // new life starts from it, a member as far as it can tell.
  ASSERT_TRUE(cluster.snapshot(S(1)).is_ok());
  ASSERT_TRUE(cluster.compact(S(1), cluster.node(S(1)).commit_index()).is_ok());
  ASSERT_TRUE(cluster.change_configuration(S(1), {change(Kind::kRemoveServer, 3)}).is_ok());
  ASSERT_TRUE(cluster.stabilize());
  cluster.wipe(S(3));
  cluster.isolate(S(3));
  ASSERT_TRUE(cluster.change_configuration(S(1), {change(Kind::kAddLearner, 3)}).is_ok());
  ASSERT_TRUE(cluster.stabilize());
  cluster.heal();
  // Its log passes the entry that removed its earlier life, committed, with
  // the entry that adds it back still to come: it must not take itself for
  // removed on the way.
  bool passed_removal = false;
  for (int round = 0;
       round < 200 && cluster.node(S(3)).last_index() < cluster.node(S(1)).last_index(); ++round) {
    cluster.tick(S(1));
    for (int step = 0; step < 50 && !cluster.in_flight().empty(); ++step) {
      bool one = false;  // a frame at a time: each answer before the next append
      cluster.deliver([&](const Message&) { return !std::exchange(one, true); });
      const core::Node& node = cluster.node(S(3));
      if (!node.configuration().empty() && !node.configuration().contains(S(3))) {
        passed_removal = true;
      }
      ASSERT_FALSE(node.removed()) << "at commit " << node.commit_index().value;
    }
  }
  EXPECT_TRUE(passed_removal) << "the schedule must pass the removal on its own";
  EXPECT_EQ(cluster.installs(S(3)), 1u);
  EXPECT_EQ(cluster.node(S(3)).last_index(), cluster.node(S(1)).last_index());
  EXPECT_TRUE(cluster.node(S(3)).configuration().contains(S(3)));
}

TEST(Membership, AServerAnUncommittedEntryAddsIsNotRemoved) {
  // Entry 1 adds server 4; nothing is committed yet.
  CoreConfig config = plain_config();
  config.id = S(4);
  BootState boot;
  boot.configuration = voters(3);
  boot.entries = {
      LogEntry{T(1), I(1), EntryType::kConfiguration, Payload(encode_configuration(voters(4)))}};
  boot.hard_state.term = T(1);
  Node node(config, std::move(boot));
  EXPECT_FALSE(node.removed());
  EXPECT_TRUE(node.configuration().is_voter(S(4)));
}

TEST(Membership, ALeaderRemovingItselfHandsOverEvenIfNoVoterHasItsWholeLog) {
  sim::CoreCluster cluster = settled();
  const Term term = cluster.node(S(1)).term();
  Result<Index> removed = cluster.change_configuration(S(1), {change(Kind::kRemoveServer, 1)});
  ASSERT_TRUE(removed.is_ok());
  cluster.deliver();                                   // the change reaches 2 and 3...
  ASSERT_TRUE(cluster.propose(S(1), "late").is_ok());  // ...and a proposal follows it
  cluster.drop(of_type(MessageType::kAppendRequest));  // which they never get
  cluster.stabilize();
  EXPECT_FALSE(cluster.node(S(1)).is_leader());
  ASSERT_TRUE(cluster.leader().has_value()) << "TimeoutNow went out anyway";
  EXPECT_EQ(cluster.node(*cluster.leader()).term(), term.next());
}

TEST(Membership, AVoterAnUncommittedChangeRemovesStillCampaignsUntilItCommits) {
  // Two voters; the leader removes itself, but the entry never leaves it
  // before it restarts.
  // Its peer cannot win alone (it needs the leader's vote, and the leader's
  // log is ahead): unless the leader campaigns under the configuration it
  // is not in (thesis §4.2.2), the cluster stays leaderless forever.
  sim::CoreCluster cluster = settled(2);
  cluster.isolate(S(1));
  Result<Index> removed = cluster.change_configuration(S(1), {change(Kind::kRemoveServer, 1)});
  ASSERT_TRUE(removed.is_ok());
  cluster.stabilize();
  EXPECT_EQ(cluster.node(S(2)).last_index(), removed->prev());
  cluster.crash(S(1));  // it comes back a follower, its log still ahead
  cluster.restart(S(1));
  cluster.heal();
  for (int round = 0; round < 200; ++round) {
    cluster.tick_all();
    cluster.stabilize();
    const std::optional<ServerId> leader = cluster.leader();
    if (leader == S(2) && cluster.node(S(2)).commit_index() >= *removed) break;
  }
  ASSERT_EQ(cluster.leader(), S(2));
  EXPECT_GE(cluster.node(S(2)).commit_index(), *removed);
  EXPECT_TRUE(cluster.node(S(1)).removed());
  EXPECT_FALSE(cluster.node(S(2)).configuration().contains(S(1)));
}

TEST(Membership, AWipedServerAddedBackVotesOnlyOnceCaughtUpPastItsOldSnapshot) {
  // The reused-identity-after-wipe schedule. A snapshot of {1, 2, 3}; 3 is
  // removed without learning it, 2 removed and wiped, then added back: its
  // leader sends it that old snapshot, and for a moment the configuration
  // 2 holds is {1, 2, 3} again. 3 (whose log is as long as the snapshot)
  // campaigns under it: 2's vote alone would make it leader of a cluster
  // that removed them both, without the entries 1 committed since.
  CoreConfig config = plain_config();
  config.check_quorum = false;  // votes are not lease-protected
  sim::CoreCluster cluster = settled(3, config);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(cluster.propose(S(1), "c").is_ok());
  ASSERT_TRUE(cluster.stabilize());
  ASSERT_TRUE(cluster.snapshot(S(1)).is_ok());
  ASSERT_TRUE(cluster.compact(S(1), cluster.node(S(1)).applied_index()).is_ok());
  cluster.isolate(S(3));
  ASSERT_TRUE(cluster.change_configuration(S(1), {change(Kind::kRemoveServer, 3)}).is_ok());
  ASSERT_TRUE(cluster.stabilize());
  ASSERT_TRUE(cluster.change_configuration(S(1), {change(Kind::kRemoveServer, 2)}).is_ok());
  ASSERT_TRUE(cluster.stabilize());
  ASSERT_TRUE(cluster.propose(S(1), "after").is_ok());
  ASSERT_TRUE(cluster.stabilize());
  cluster.wipe(S(2));
  cluster.partition({{S(1), S(2)}, {S(3)}});
  ASSERT_TRUE(cluster.change_configuration(S(1), {change(Kind::kAddLearner, 2)}).is_ok());
  for (int round = 0; round < 20 && cluster.installs(S(2)) == 0; ++round) cluster.deliver();
  ASSERT_EQ(cluster.installs(S(2)), 1u);
  cluster.deliver([](const Message& m) { return m.from == S(2); });  // its acknowledgement
  ASSERT_TRUE(cluster.node(S(2)).configuration().is_voter(S(3))) << "the snapshot's, long gone";
  EXPECT_FALSE(cluster.node(S(2)).catch_up_floor().is_zero());
  // Only 2 and 3 talk now; 3 campaigns.
  cluster.partition({{S(1)}, {S(2), S(3)}});
  cluster.campaign(S(3));
  cluster.stabilize();
  EXPECT_FALSE(cluster.node(S(3)).is_leader());
  EXPECT_NE(cluster.node(S(2)).vote(), S(3));
  // A crash does not forget the floor (it is in the hard state).
  cluster.crash(S(2));
  cluster.restart(S(2));
  EXPECT_FALSE(cluster.node(S(2)).catch_up_floor().is_zero());
  // Once 2 commits past it, it is a server like any other.
  cluster.heal();
  cluster.isolate(S(3));
  for (int round = 0; round < 5; ++round) {
    cluster.tick(S(1));
    ASSERT_TRUE(cluster.stabilize());
  }
  EXPECT_TRUE(cluster.node(S(2)).catch_up_floor().is_zero());
  EXPECT_FALSE(cluster.node(S(2)).configuration().contains(S(3)));
}

TEST(Membership, ANewServerCatchesUpThroughASnapshotThatCarriesTheConfiguration) {
  sim::CoreCluster cluster = settled();
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(cluster.propose(S(1), "c").is_ok());
  ASSERT_TRUE(cluster.stabilize());
  ASSERT_TRUE(cluster.snapshot(S(1)).is_ok());
  ASSERT_TRUE(cluster.compact(S(1), cluster.node(S(1)).applied_index()).is_ok());
  cluster.add_server(S(4));
  ASSERT_TRUE(cluster.change_configuration(S(1), {change(Kind::kAddLearner, 4)}).is_ok());
  for (int i = 0; i < 3; ++i) {
    cluster.tick(S(1));
    cluster.stabilize();
  }
  EXPECT_EQ(cluster.installs(S(4)), 1u);
  EXPECT_EQ(cluster.node(S(4)).configuration(), cluster.node(S(1)).configuration());
  EXPECT_EQ(cluster.node(S(4)).applied_index(), cluster.node(S(1)).applied_index());
}

TEST(Membership, ServersRemovedOneAfterTheOtherAreEachTold) {
  sim::CoreCluster cluster = settled(5);
  for (std::uint64_t id : {2, 3}) {
    ASSERT_TRUE(cluster.change_configuration(S(1), {change(Kind::kRemoveServer, id)}).is_ok());
    ASSERT_TRUE(cluster.stabilize());
    for (int i = 0; i < 5; ++i) {
      cluster.tick(S(1));
      cluster.stabilize();
    }
  }
  EXPECT_TRUE(cluster.node(S(2)).removed());
  EXPECT_TRUE(cluster.node(S(3)).removed());
}

}  // namespace
}  // namespace keel::core
