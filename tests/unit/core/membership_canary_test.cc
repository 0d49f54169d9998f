// The membership canaries (core/canary.h), each shown to break the rule it
// names: with the canary on, the schedule of the matching test in
// membership_test.cc does what that test forbids. Built only with
// -DKEEL_CANARIES=ON (`make test-canary`, label canary). The simulator's
// membership churn catches them too (tests/sim/keel_sim_seeds.cmake).
#include <gtest/gtest.h>

#include "core/canary.h"
#include "single_server_change_schedule.h"
#include "test_util.h"

namespace keel::core {
namespace {

using namespace testutil;  // NOLINT(google-build-using-namespace): test vocabulary
using Kind = ConfigurationChange::Kind;

ConfigurationChange change(Kind kind, std::uint64_t id) {
  return ConfigurationChange{kind, S(id), "node-" + std::to_string(id)};
}

CoreConfig with(Canary canary) {
  CoreConfig config = plain_config();
  config.canary = static_cast<std::uint8_t>(canary);
  return config;
}

TEST(MembershipCanary, ConfigChangeWithoutTermCommitAppendsTooEarly) {
  sim::CoreCluster cluster(cluster_options(3, with(Canary::kConfigChangeWithoutTermCommit)));
  ASSERT_TRUE(win_election(cluster, S(1)));
  ASSERT_FALSE(cluster.node(S(1)).committed_in_current_term());
  cluster.add_server(S(4));
  EXPECT_TRUE(cluster.change_configuration(S(1), {change(Kind::kAddVoter, 4)}).is_ok());
}

TEST(MembershipCanary, ConfigChangeWithoutTermCommitCommitsTwoEntriesAtOneIndex) {
  CoreConfig config = with(Canary::kConfigChangeWithoutTermCommit);
  config.check_quorum = false;
  sim::CoreCluster::Options options = cluster_options(4, config);
  options.check_invariants = false;  // they would abort at the violation shown below
  sim::CoreCluster cluster(options);
  SingleServerChangeRun run;
  run_single_server_change_schedule(cluster, run);
  if (HasFatalFailure()) return;
  ASSERT_TRUE(run.removed_at.has_value()) << "2 appended its change at once";
  const Index at = *run.removed_at;
  ASSERT_GE(cluster.node(S(2)).commit_index(), at) << "2 and 3 committed C2";
  ASSERT_GE(cluster.node(S(1)).commit_index(), at) << "1, 4 and 5 committed over it";
  EXPECT_NE(cluster.node(S(1)).log().term_at(at), cluster.node(S(2)).log().term_at(at))
      << "two different entries committed at index " << at.value;
}

TEST(MembershipCanary, JointSingleMajorityCommitsWithTheNewVotersAlone) {
  sim::CoreCluster cluster(cluster_options(3, with(Canary::kJointSingleMajority)));
  elect_and_settle(cluster, S(1));
  cluster.add_server(S(4));
  cluster.add_server(S(5));
  cluster.isolate(S(2));
  cluster.isolate(S(3));
  Result<Index> joint = cluster.change_configuration(
      S(1), {change(Kind::kRemoveServer, 2), change(Kind::kRemoveServer, 3),
             change(Kind::kAddVoter, 4), change(Kind::kAddVoter, 5)});
  ASSERT_TRUE(joint.is_ok());
  for (int i = 0; i < 3; ++i) {
    cluster.tick(S(1));
    cluster.stabilize();
  }
  EXPECT_GE(cluster.node(S(1)).commit_index(), *joint) << "the old voters were never asked";
}

TEST(MembershipCanary, RemovedServerVotesRaisesTerms) {
  CoreConfig config = with(Canary::kRemovedServerVotes);
  config.check_quorum = false;  // no lease: only the configuration rule protects
  sim::CoreCluster cluster(cluster_options(3, config));
  elect_and_settle(cluster, S(1));
  cluster.isolate(S(3));
  ASSERT_TRUE(cluster.change_configuration(S(1), {change(Kind::kRemoveServer, 3)}).is_ok());
  ASSERT_TRUE(cluster.stabilize());
  const Term term = cluster.node(S(1)).term();
  cluster.heal();
  cluster.campaign(S(3));
  cluster.stabilize();
  EXPECT_GT(cluster.node(S(2)).term(), term) << "a removed server raised a member's term";
}

TEST(MembershipCanary, StaleEpochAcceptedMovesANewLifeByAnOldAnswer) {
  sim::CoreCluster cluster(cluster_options(3, with(Canary::kStaleEpochAccepted)));
  elect_and_settle(cluster, S(1));
  ASSERT_TRUE(cluster.propose(S(1), "a").is_ok());
  ASSERT_TRUE(cluster.stabilize());
  Message old_ack =
      append_ack(3, 1, cluster.node(S(1)).term().value, cluster.node(S(1)).last_index().value);
  old_ack.epoch = cluster.node(S(1)).progress(S(3))->epoch;
  ASSERT_TRUE(cluster.change_configuration(S(1), {change(Kind::kRemoveServer, 3)}).is_ok());
  ASSERT_TRUE(cluster.stabilize());
  cluster.wipe(S(3));
  cluster.isolate(S(3));
  ASSERT_TRUE(cluster.change_configuration(S(1), {change(Kind::kAddLearner, 3)}).is_ok());
  cluster.stabilize();
  cluster.node(S(1)).step(old_ack);
  EXPECT_FALSE(cluster.node(S(1)).progress(S(3))->match_index.is_zero());
}

}  // namespace
}  // namespace keel::core
