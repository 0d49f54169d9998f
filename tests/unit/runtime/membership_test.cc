// Membership changes through keel::Raft (ctest -L membership): growing a
// cluster from 3 to 5 voters through learners that catch up, shrinking it
// back, demoting a voter, a removed server told and left running, replacing
// a failed server, removing the leader, a joint change of
// two voters at once, a learner that never catches up, and the refusals
// (another change in progress, a stale prev_index, a follower, a bad change).
#include <chrono>
#include <mutex>

#include <gtest/gtest.h>

#include "test_cluster.h"

namespace keel::testing {
namespace {

using Kind = ConfigurationChange::Kind;

// Records the membership observations of one server.
class MembershipLog {
 public:
  std::function<void(const Observation&)> observer() {
    return [this](const Observation& o) {
      if (o.kind < Observation::Kind::kPeerAdded) return;
      std::lock_guard lock(mutex_);
      seen_.emplace_back(o.kind, o.peer);
    };
  }
  bool saw(Observation::Kind kind, ServerId peer) const {
    std::lock_guard lock(mutex_);
    for (const auto& [k, p] : seen_) {
      if (k == kind && p == peer) return true;
    }
    return false;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::pair<Observation::Kind, ServerId>> seen_;
};

bool applied_everywhere(TestCluster& cluster, const std::vector<ServerId>& ids,
                        const std::string& key, const std::string& value) {
  return eventually([&] {
    for (ServerId id : ids) {
      if (!cluster.running(id) || cluster.fsm(id).get(key) != value) return false;
    }
    return true;
  });
}

std::vector<ServerId> voters_of(const Configuration& configuration) {
  return configuration.voters();
}

TEST(Membership, GrowsFromThreeToFiveThroughLearnersThatCatchUp) {
  MembershipLog log;  // outlives the cluster, whose observers write to it
  TestCluster cluster(3);
  cluster.start_all();
  const ServerId leader = cluster.wait_for_leader();
  ASSERT_FALSE(leader.is_zero());
  ASSERT_TRUE(cluster.raft(leader).subscribe(log.observer()).is_ok());
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(cluster.raft(leader).apply("set k" + std::to_string(i) + " v", 5s).get().is_ok());
  }
  for (std::uint64_t id : {4, 5}) {
    cluster.add_server(ServerId{id});
    ASSERT_TRUE(cluster.start(ServerId{id}).is_ok());
    Result<Index> added =
        cluster.raft(leader)
            .add_voter(ServerId{id}, TestCluster::address(ServerId{id}), Index{}, 20s)
            .get();
    ASSERT_TRUE(added.is_ok()) << added.status().to_string() << cluster.describe();
  }
  const ConfigurationState state = cluster.raft(leader).configuration();
  EXPECT_EQ(
      voters_of(state.committed),
      (std::vector<ServerId>{ServerId{1}, ServerId{2}, ServerId{3}, ServerId{4}, ServerId{5}}));
  EXPECT_EQ(state.committed, state.latest);
  ASSERT_TRUE(cluster.raft(leader).apply("set after yes", 5s).get().is_ok());
  EXPECT_TRUE(applied_everywhere(cluster, cluster.ids(), "after", "yes")) << cluster.describe();
  EXPECT_EQ(cluster.fsm(ServerId{5}).get("k49"), "v");
  EXPECT_TRUE(eventually([&] {
    return log.saw(Observation::Kind::kPeerAdded, ServerId{4}) &&
           log.saw(Observation::Kind::kPeerPromoted, ServerId{4}) &&
           log.saw(Observation::Kind::kPeerPromoted, ServerId{5});
  }));
  // The new servers know the configuration too.
  EXPECT_TRUE(eventually([&] { return cluster.raft(ServerId{5}).configuration() == state; }));
}

TEST(Membership, ShrinksFromFiveToThreeAndTheRemovedServersStop) {
  TestCluster cluster(5);
  cluster.start_all();
  const ServerId leader = cluster.wait_for_leader();
  ASSERT_FALSE(leader.is_zero());
  std::vector<ServerId> leaving;
  for (ServerId id : cluster.ids()) {
    if (id != leader && leaving.size() < 2) leaving.push_back(id);
  }
  for (ServerId id : leaving) {
    Result<Index> removed = cluster.raft(leader).remove_server(id, Index{}, 10s).get();
    ASSERT_TRUE(removed.is_ok()) << removed.status().to_string() << cluster.describe();
  }
  EXPECT_EQ(cluster.raft(leader).configuration().committed.voters().size(), 3u);
  for (ServerId id : leaving) {
    // Told, they shut themselves down (Config::shutdown_on_remove).
    EXPECT_TRUE(eventually([&] { return cluster.raft(id).state() == RaftState::kShutdown; }))
        << "server " << id.value << cluster.describe();
    EXPECT_TRUE(cluster.raft(id).stats().removed);
  }
  ASSERT_TRUE(cluster.raft(leader).apply("set small yes", 5s).get().is_ok());
}

TEST(Membership, ReplacesAFailedServer) {
  TestCluster cluster(3);
  cluster.start_all();
  const ServerId leader = cluster.wait_for_leader();
  ASSERT_FALSE(leader.is_zero());
  ASSERT_TRUE(cluster.raft(leader).apply("set before 1", 5s).get().is_ok());
  const ServerId failed = cluster.any_follower(leader);
  cluster.stop(failed);
  cluster.add_server(ServerId{4});
  ASSERT_TRUE(cluster.start(ServerId{4}).is_ok());
  Result<Index> added = cluster.raft(leader)
                            .add_voter(ServerId{4}, TestCluster::address(ServerId{4}), Index{}, 20s)
                            .get();
  ASSERT_TRUE(added.is_ok()) << added.status().to_string() << cluster.describe();
  // Compare-and-set on the configuration just made.
  Result<Index> removed = cluster.raft(leader).remove_server(failed, *added, 10s).get();
  ASSERT_TRUE(removed.is_ok()) << removed.status().to_string() << cluster.describe();
  const Configuration committed = cluster.raft(leader).configuration().committed;
  EXPECT_FALSE(committed.contains(failed));
  EXPECT_TRUE(committed.is_voter(ServerId{4}));
  ASSERT_TRUE(cluster.raft(leader).apply("set after 2", 5s).get().is_ok());
  std::vector<ServerId> members;
  for (const Server& server : committed.servers) members.push_back(server.id);
  EXPECT_TRUE(applied_everywhere(cluster, members, "after", "2"));
  EXPECT_EQ(cluster.fsm(ServerId{4}).get("before"), "1");
}

TEST(Membership, ADemotedVoterFollowsAsALearnerAndNoLongerCounts) {
  MembershipLog log;  // outlives the cluster, whose observers write to it
  TestCluster cluster(3);
  cluster.start_all();
  const ServerId leader = cluster.wait_for_leader();
  ASSERT_FALSE(leader.is_zero());
  ASSERT_TRUE(cluster.raft(leader).subscribe(log.observer()).is_ok());
  const ServerId demoted = cluster.any_follower(leader);
  Result<Index> done = cluster.raft(leader).demote_voter(demoted, Index{}, 10s).get();
  ASSERT_TRUE(done.is_ok()) << done.status().to_string() << cluster.describe();
  const Configuration committed = cluster.raft(leader).configuration().committed;
  ASSERT_TRUE(committed.contains(demoted));
  EXPECT_FALSE(committed.is_voter(demoted));
  EXPECT_EQ(committed.voters().size(), 2u);
  EXPECT_TRUE(eventually([&] { return log.saw(Observation::Kind::kPeerDemoted, demoted); }));
  // It still follows as a learner...
  ASSERT_TRUE(cluster.raft(leader).apply("set as learner", 5s).get().is_ok());
  EXPECT_TRUE(applied_everywhere(cluster, cluster.ids(), "as", "learner")) << cluster.describe();
  // ...but its answers no longer count: with the other voter gone, the
  // leader alone is no majority of two.
  ServerId other;
  for (ServerId id : cluster.ids()) {
    if (id != leader && id != demoted) other = id;
  }
  cluster.network().isolate(other);
  Result<ApplyResult> stuck = cluster.raft(leader).apply("set without quorum", 300ms).get();
  EXPECT_FALSE(stuck.is_ok()) << "committed with a learner's acknowledgement";
  EXPECT_NE(cluster.fsm(demoted).get("without"), "quorum");
}

TEST(Membership, ARemovedServerIsToldAndMayKeepRunningWithoutDisturbingTheRest) {
  MembershipLog leader_log;  // outlive the cluster, whose observers write to them
  MembershipLog removed_log;
  // Without pre-vote a server that campaigns raises its own term at once:
  // the removed server must not campaign at all.
  TestCluster cluster(3, [](Config& config) {
    config.shutdown_on_remove = false;
    config.pre_vote = false;
  });
  cluster.start_all();
  const ServerId leader = cluster.wait_for_leader();
  ASSERT_FALSE(leader.is_zero());
  const ServerId removed = cluster.any_follower(leader);
  ASSERT_TRUE(cluster.raft(leader).subscribe(leader_log.observer()).is_ok());
  ASSERT_TRUE(cluster.raft(removed).subscribe(removed_log.observer()).is_ok());
  Result<Index> done = cluster.raft(leader).remove_server(removed, Index{}, 10s).get();
  ASSERT_TRUE(done.is_ok()) << done.status().to_string() << cluster.describe();
  EXPECT_TRUE(eventually([&] { return leader_log.saw(Observation::Kind::kPeerRemoved, removed); }));
  EXPECT_TRUE(eventually([&] { return removed_log.saw(Observation::Kind::kRemoved, removed); }))
      << cluster.describe();
  EXPECT_TRUE(eventually([&] { return cluster.raft(removed).stats().removed; }));
  EXPECT_NE(cluster.raft(removed).state(), RaftState::kShutdown) << "shutdown_on_remove is off";
  // It hears no leader any more; it must not campaign its way back in:
  // writes go on for five of its election timeouts.
  const Term term = cluster.raft(leader).term();
  const auto until = std::chrono::steady_clock::now() + 1s;
  for (int i = 0; std::chrono::steady_clock::now() < until; ++i) {
    ASSERT_TRUE(cluster.raft(leader).apply("set k" + std::to_string(i) + " v", 5s).get().is_ok());
  }
  EXPECT_EQ(cluster.raft(leader).term(), term) << "the removed server raised the term";
  EXPECT_LE(cluster.raft(removed).term(), term) << "the removed server campaigned";
  EXPECT_EQ(cluster.raft(leader).state(), RaftState::kLeader);
  EXPECT_NE(cluster.raft(removed).state(), RaftState::kLeader);
  EXPECT_NE(cluster.raft(removed).state(), RaftState::kCandidate);
}

TEST(Membership, RemovingTheLeaderHandsOverAndTheRestGoOn) {
  TestCluster cluster(3);
  cluster.start_all();
  const ServerId leader = cluster.wait_for_leader();
  ASSERT_FALSE(leader.is_zero());
  Result<Index> removed = cluster.raft(leader).remove_server(leader, Index{}, 10s).get();
  ASSERT_TRUE(removed.is_ok()) << removed.status().to_string() << cluster.describe();
  EXPECT_TRUE(eventually([&] { return cluster.raft(leader).state() == RaftState::kShutdown; }));
  EXPECT_TRUE(cluster.raft(leader).stats().removed);
  const ServerId next = cluster.wait_for_leader();
  ASSERT_FALSE(next.is_zero()) << cluster.describe();
  ASSERT_NE(next, leader);
  // The new leader may not have heard that the removal committed before the
  // old one stepped down (it campaigned on TimeoutNow): its first commit of
  // its own term settles it.
  EXPECT_TRUE(cluster.raft(next).apply("set without old", 5s).get().is_ok());
  EXPECT_FALSE(cluster.raft(next).configuration().committed.contains(leader));
}

TEST(Membership, AJointChangeReplacesTwoVotersAtOnce) {
  TestCluster cluster(3);
  cluster.start_all();
  const ServerId leader = cluster.wait_for_leader();
  ASSERT_FALSE(leader.is_zero());
  for (std::uint64_t id : {4, 5}) {
    cluster.add_server(ServerId{id});
    ASSERT_TRUE(cluster.start(ServerId{id}).is_ok());
    ASSERT_TRUE(cluster.raft(leader)
                    .add_learner(ServerId{id}, TestCluster::address(ServerId{id}), Index{}, 10s)
                    .get()
                    .is_ok());
  }
  std::vector<ConfigurationChange> changes{{Kind::kAddVoter, ServerId{4}, ""},
                                           {Kind::kAddVoter, ServerId{5}, ""}};
  for (ServerId id : cluster.ids()) {
    if (id != leader && id.value <= 3) changes.push_back({Kind::kRemoveServer, id, ""});
  }
  Result<Index> done = cluster.raft(leader).change_membership(changes, Index{}, 10s).get();
  ASSERT_TRUE(done.is_ok()) << done.status().to_string() << cluster.describe();
  const ConfigurationState state = cluster.raft(leader).configuration();
  EXPECT_FALSE(state.committed.joint());
  EXPECT_EQ(state.committed_index, *done);
  EXPECT_EQ(state.committed.voters(),
            (std::vector<ServerId>{std::min(leader, ServerId{4}), std::max(leader, ServerId{4}),
                                   ServerId{5}}));
  ASSERT_TRUE(cluster.raft(leader).apply("set joint done", 5s).get().is_ok());
  EXPECT_TRUE(applied_everywhere(cluster, {leader, ServerId{4}, ServerId{5}}, "joint", "done"));
}

TEST(Membership, ALearnerThatNeverCatchesUpIsNotPromoted) {
  TestCluster cluster(3);
  cluster.start_all();
  const ServerId leader = cluster.wait_for_leader();
  ASSERT_FALSE(leader.is_zero());
  cluster.add_server(ServerId{4});
  ASSERT_TRUE(cluster.start(ServerId{4}).is_ok());
  cluster.network().isolate(ServerId{4});
  Result<Index> added = cluster.raft(leader)
                            .add_voter(ServerId{4}, TestCluster::address(ServerId{4}), Index{}, 1s)
                            .get();
  ASSERT_FALSE(added.is_ok());
  EXPECT_EQ(added.status().code(), StatusCode::kTimeout) << added.status().to_string();
  const Configuration committed = cluster.raft(leader).configuration().committed;
  ASSERT_TRUE(committed.contains(ServerId{4}));
  EXPECT_FALSE(committed.is_voter(ServerId{4})) << "it stays a learner";
  EXPECT_TRUE(cluster.raft(leader).apply("set still fine", 5s).get().is_ok());
}

TEST(Membership, RefusalsLeaveTheConfigurationAsItWas) {
  TestCluster cluster(3);
  cluster.start_all();
  const ServerId leader = cluster.wait_for_leader();
  ASSERT_FALSE(leader.is_zero());
  ASSERT_TRUE(cluster.raft(leader).barrier(5s).get().is_ok());
  const ConfigurationState before = cluster.raft(leader).configuration();
  const ServerId follower = cluster.any_follower(leader);
  EXPECT_EQ(cluster.raft(follower).remove_server(leader, Index{}, 5s).get().status().code(),
            StatusCode::kNotLeader);
  EXPECT_EQ(cluster.raft(leader)
                .add_learner(ServerId{9}, TestCluster::address(ServerId{9}),
                             Index{before.latest_index.value + 7}, 5s)
                .get()
                .status()
                .code(),
            StatusCode::kConfigurationChangeInProgress);
  EXPECT_EQ(cluster.raft(leader).add_learner(ServerId{9}, "", Index{}, 5s).get().status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(cluster.raft(leader).add_learner(follower, "", Index{}, 5s).get().status().code(),
            StatusCode::kInvalidArgument);
  // Already true: resolves with the configuration's index, changes nothing.
  Result<Index> noop = cluster.raft(leader).remove_server(ServerId{9}, Index{}, 5s).get();
  ASSERT_TRUE(noop.is_ok()) << noop.status().to_string();
  EXPECT_EQ(*noop, before.latest_index);
  // While a new voter catches up (it cannot: it is not running), another
  // call is refused.
  cluster.add_server(ServerId{4});
  Future<Index> slow =
      cluster.raft(leader).add_voter(ServerId{4}, TestCluster::address(ServerId{4}), Index{}, 2s);
  EXPECT_TRUE(eventually(
      [&] { return cluster.raft(leader).configuration().committed.contains(ServerId{4}); }));
  // Refused, with a deadline of its own that passes long before the first
  // call's: the first goes on.
  EXPECT_EQ(cluster.raft(leader).remove_server(follower, Index{}, 50ms).get().status().code(),
            StatusCode::kConfigurationChangeInProgress);
  EXPECT_FALSE(slow.wait_for(500ms)) << "the refused call's deadline ended the running one";
  EXPECT_EQ(slow.get().status().code(), StatusCode::kTimeout);
}

TEST(Membership, RecoverClusterBringsBackAServerAfterALostQuorum) {
  TestCluster cluster(3);
  cluster.start_all();
  const ServerId leader = cluster.wait_for_leader();
  ASSERT_FALSE(leader.is_zero());
  ASSERT_TRUE(cluster.raft(leader).apply("set kept 1", 5s).get().is_ok());
  // Two of three lost for good; the survivor alone can elect nobody.
  const ServerId survivor = cluster.any_follower(leader);
  ASSERT_TRUE(eventually([&] { return cluster.fsm(survivor).get("kept") == "1"; }));
  for (ServerId id : cluster.ids()) {
    if (id != survivor) cluster.stop(id);
  }
  cluster.stop(survivor);
  Configuration alone{{Server{survivor, TestCluster::address(survivor), Suffrage::kVoter}}};
  ASSERT_TRUE(
      recover_cluster(cluster.log_store(survivor), cluster.stable_store(survivor), alone).is_ok());
  ASSERT_TRUE(cluster.start(survivor).is_ok());
  EXPECT_TRUE(eventually([&] { return cluster.raft(survivor).state() == RaftState::kLeader; }))
      << cluster.describe();
  EXPECT_TRUE(cluster.raft(survivor).apply("set after 2", 5s).get().is_ok());
  EXPECT_EQ(cluster.fsm(survivor).get("kept"), "1");
  EXPECT_EQ(cluster.raft(survivor).configuration().committed, alone);
  // Refusals: a joint or voterless configuration, stores with nothing in them.
  MemoryLogStore empty_log;
  MemoryStableStore empty_stable;
  EXPECT_EQ(recover_cluster(empty_log, empty_stable, alone).code(), StatusCode::kInvalidArgument);
  Configuration joint = alone;
  joint.outgoing = alone.servers;
  EXPECT_EQ(
      recover_cluster(cluster.log_store(survivor), cluster.stable_store(survivor), joint).code(),
      StatusCode::kInvalidArgument);
  EXPECT_EQ(
      recover_cluster(cluster.log_store(survivor), cluster.stable_store(survivor), Configuration{})
          .code(),
      StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace keel::testing
