// Observations about other servers (ctest -L membership): a leader reports a
// follower it stopped hearing from and the moment it answers again; every
// server reports the vote and pre-vote requests it receives.
#include <gtest/gtest.h>

#include "runtime/peer_contact.h"
#include "test_cluster.h"

namespace keel::testing {
namespace {

// Every observation of one server, for a test to look through.
class Recorder {
 public:
  std::function<void(const Observation&)> callback() {
    return [this](const Observation& observation) {
      std::lock_guard lock(mutex_);
      seen_.push_back(observation);
    };
  }
  std::vector<Observation> of(Observation::Kind kind) const {
    std::lock_guard lock(mutex_);
    std::vector<Observation> out;
    for (const Observation& o : seen_) {
      if (o.kind == kind) out.push_back(o);
    }
    return out;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<Observation> seen_;
};

TEST(PeerContact, ReportsASilentPeerOnceAndItsReturnOnce) {
  runtime::PeerContact contact;
  contact.start({ServerId{2}, ServerId{3}}, Duration{0});
  EXPECT_TRUE(
      contact.newly_silent(std::chrono::milliseconds(100), std::chrono::milliseconds(500)).empty());
  EXPECT_FALSE(contact.heard_from(ServerId{2}, std::chrono::milliseconds(400)).has_value());
  auto silent =
      contact.newly_silent(std::chrono::milliseconds(600), std::chrono::milliseconds(500));
  ASSERT_EQ(silent.size(), 1u);
  EXPECT_EQ(silent[0].first, ServerId{3});
  EXPECT_EQ(silent[0].second, std::chrono::milliseconds(600));
  EXPECT_TRUE(
      contact.newly_silent(std::chrono::milliseconds(900), std::chrono::milliseconds(500)).empty())
      << "reported once";
  std::optional<Duration> back = contact.heard_from(ServerId{3}, std::chrono::milliseconds(1000));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, std::chrono::milliseconds(1000));
  EXPECT_FALSE(contact.heard_from(ServerId{3}, std::chrono::milliseconds(1100)).has_value());
  EXPECT_FALSE(contact.heard_from(ServerId{9}, std::chrono::milliseconds(1100)).has_value())
      << "not a peer";
  contact.stop();
  EXPECT_FALSE(contact.watching());
}

TEST(PeerContact, FollowsTheConfigurationWhileLeading) {
  using std::chrono::milliseconds;
  runtime::PeerContact contact;
  contact.follow({ServerId{2}}, Duration{0});
  EXPECT_FALSE(contact.watching()) << "only a leader watches";
  contact.start({ServerId{2}, ServerId{3}}, Duration{0});
  // Server 4 joins at 400 ms, server 3 leaves: 4 counts from its joining.
  contact.follow({ServerId{2}, ServerId{4}}, milliseconds(400));
  EXPECT_FALSE(contact.heard_from(ServerId{2}, milliseconds(450)).has_value());
  auto silent = contact.newly_silent(milliseconds(600), milliseconds(500));
  EXPECT_TRUE(silent.empty()) << "3 is gone, 4 was silent only 200 ms";
  silent = contact.newly_silent(milliseconds(940), milliseconds(500));
  ASSERT_EQ(silent.size(), 1u) << "2 was heard 490 ms ago";
  EXPECT_EQ(silent[0].first, ServerId{4});
  EXPECT_EQ(silent[0].second, milliseconds(540));
  // Following the same set again keeps what it knew: 4 stays reported.
  EXPECT_FALSE(contact.heard_from(ServerId{2}, milliseconds(1000)).has_value());
  contact.follow({ServerId{2}, ServerId{4}}, milliseconds(1100));
  EXPECT_TRUE(contact.newly_silent(milliseconds(1200), milliseconds(500)).empty());
  EXPECT_EQ(contact.heard_from(ServerId{4}, milliseconds(1300)), milliseconds(900));
}

TEST(PeerObservations, ALeaderReportsAFollowerItLostAndRegained) {
  Recorder recorder;  // outlives the cluster, whose observers write to it
  TestCluster cluster(3, [](Config& config) { config.peer_contact_timeout = 100ms; });
  cluster.start_all();
  const ServerId leader = cluster.wait_for_leader();
  ASSERT_FALSE(leader.is_zero());
  ASSERT_TRUE(cluster.raft(leader).subscribe(recorder.callback()).is_ok());
  const ServerId follower = cluster.any_follower(leader);
  // The leader's term-start entry may have committed on the other
  // follower's answer alone. Once this one applied it, its own answer (sent
  // when the entry was durable, before it could apply) is on its way, and
  // the cut below does not stop what was sent before it.
  const Index term_start = cluster.raft(leader).stats().commit_index;
  ASSERT_TRUE(
      eventually([&] { return cluster.raft(follower).stats().applied_index >= term_start; }));
  cluster.network().cut(follower, leader);  // its answers are lost
  ASSERT_TRUE(
      eventually([&] { return !recorder.of(Observation::Kind::kPeerContactLost).empty(); }));
  const Observation lost = recorder.of(Observation::Kind::kPeerContactLost).front();
  EXPECT_EQ(lost.peer, follower);
  EXPECT_GE(lost.duration, 100ms);
  EXPECT_EQ(lost.term, cluster.raft(leader).term());
  EXPECT_GE(lost.index.value, 1u) << "the follower matched the term-start entry";
  EXPECT_TRUE(recorder.of(Observation::Kind::kPeerContactResumed).empty());
  cluster.network().heal();
  ASSERT_TRUE(
      eventually([&] { return !recorder.of(Observation::Kind::kPeerContactResumed).empty(); }));
  const Observation resumed = recorder.of(Observation::Kind::kPeerContactResumed).front();
  EXPECT_EQ(resumed.peer, follower);
  EXPECT_GE(resumed.duration, lost.duration);
  EXPECT_EQ(recorder.of(Observation::Kind::kPeerContactLost).size(), 1u) << "reported once";
}

TEST(PeerObservations, AServerAddedDuringTheTermIsWatchedToo) {
  Recorder recorder;  // outlives the cluster, whose observers write to it
  TestCluster cluster(3, [](Config& config) { config.peer_contact_timeout = 100ms; });
  cluster.start_all();
  const ServerId leader = cluster.wait_for_leader();
  ASSERT_FALSE(leader.is_zero());
  ASSERT_TRUE(cluster.raft(leader).subscribe(recorder.callback()).is_ok());
  ASSERT_TRUE(cluster.raft(leader).apply("set a 1", 5s).get().is_ok());
  const ServerId added{4};
  cluster.add_server(added);
  ASSERT_TRUE(cluster.start(added).is_ok());
  ASSERT_TRUE(cluster.raft(leader)
                  .add_learner(added, TestCluster::address(added), Index{}, 10s)
                  .get()
                  .is_ok());
  ASSERT_TRUE(cluster.raft(leader).apply("set b 2", 5s).get().is_ok());
  ASSERT_TRUE(eventually([&] { return cluster.fsm(added).get("b") == "2"; }));
  cluster.network().isolate(added);
  auto lost_added = [&] {
    for (const Observation& o : recorder.of(Observation::Kind::kPeerContactLost)) {
      if (o.peer == added) return std::optional<Observation>(o);
    }
    return std::optional<Observation>();
  };
  ASSERT_TRUE(eventually([&] { return lost_added().has_value(); })) << cluster.describe();
  EXPECT_GE(lost_added()->index.value, 3u) << "it held the entries through b";
  EXPECT_EQ(lost_added()->term, cluster.raft(leader).term());
}

TEST(PeerObservations, ServersReportTheVoteRequestsTheyReceive) {
  std::map<ServerId, std::unique_ptr<Recorder>> recorders;  // outlive the cluster
  TestCluster cluster(3);
  cluster.start_all();
  const ServerId leader = cluster.wait_for_leader();
  ASSERT_FALSE(leader.is_zero());
  for (ServerId id : cluster.ids()) {
    recorders[id] = std::make_unique<Recorder>();
    ASSERT_TRUE(cluster.raft(id).subscribe(recorders[id]->callback()).is_ok());
  }
  const Term before = cluster.raft(leader).term();
  cluster.stop(leader);  // the others campaign: pre-votes first, then votes
  ASSERT_FALSE(cluster.wait_for_leader().is_zero());
  bool saw_pre_vote = false;
  bool saw_vote = false;
  // Observations reach subscribers through their queues, possibly after the
  // election they describe is over: await them.
  auto look = [&] {
    for (ServerId id : cluster.ids()) {
      if (id == leader) continue;
      for (const Observation& o : recorders[id]->of(Observation::Kind::kVoteRequested)) {
        // A request of the election `leader` won may arrive late, after the
        // subscription: only the new election's count.
        if (o.term <= before) continue;
        EXPECT_NE(o.peer, id);
        EXPECT_NE(o.peer, leader);
        EXPECT_GE(o.index.value, 1u);
        (o.pre_vote ? saw_pre_vote : saw_vote) = true;
      }
    }
    return saw_pre_vote && saw_vote;
  };
  eventually(look);
  EXPECT_TRUE(saw_pre_vote);
  EXPECT_TRUE(saw_vote);
}

}  // namespace
}  // namespace keel::testing
