// Raft::transfer_leadership (ctest -L membership): to a named voter under
// load, to the most caught-up voter when none is named (also under load), and a transfer whose
// target is cut off, which leaves the old leader leading; refusals.
#include <atomic>
#include <thread>

#include <gtest/gtest.h>

#include "test_cluster.h"

namespace keel::testing {
namespace {

// Writes "set wN N" to whoever leads, one after another, until stopped;
// remembers which writes were acknowledged.
class Writer {
 public:
  explicit Writer(TestCluster& cluster) : cluster_(cluster) {
    thread_ = std::thread([this] { run(); });
  }
  ~Writer() { stop(); }
  void stop() {
    stopping_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::vector<std::uint64_t> acknowledged() const {
    std::lock_guard lock(mutex_);
    return acknowledged_;
  }
  std::uint64_t refused_during_transfer() const { return refused_during_transfer_; }

 private:
  void run() {
    for (std::uint64_t n = 0; !stopping_; ++n) {
      const ServerId leader = cluster_.wait_for_leader(2s);
      if (leader.is_zero()) continue;
      Result<ApplyResult> result =
          cluster_.raft(leader)
              .apply("set w" + std::to_string(n) + " " + std::to_string(n), 5s)
              .get();
      if (result.is_ok()) {
        std::lock_guard lock(mutex_);
        acknowledged_.push_back(n);
      } else if (result.status().code() == StatusCode::kLeadershipTransferInProgress) {
        ++refused_during_transfer_;
      }
    }
  }

  TestCluster& cluster_;
  std::atomic<bool> stopping_{false};
  std::atomic<std::uint64_t> refused_during_transfer_{0};
  mutable std::mutex mutex_;
  std::vector<std::uint64_t> acknowledged_;
  std::thread thread_;
};

TEST(LeadershipTransfer, GoesToTheNamedVoterUnderLoadAndLosesNoAcknowledgedWrite) {
  TestCluster cluster(3);
  cluster.start_all();
  const ServerId leader = cluster.wait_for_leader();
  ASSERT_FALSE(leader.is_zero());
  const ServerId target = cluster.any_follower(leader);
  Writer writer(cluster);
  ASSERT_TRUE(eventually([&] { return writer.acknowledged().size() >= 50; }));

  Result<LeaderInfo> moved = cluster.raft(leader).transfer_leadership(target, 10s).get();
  ASSERT_TRUE(moved.is_ok()) << moved.status() << cluster.describe();
  EXPECT_EQ(moved->id, target);
  EXPECT_EQ(moved->address, "server-" + std::to_string(target.value));
  EXPECT_EQ(cluster.wait_for_leader(), target);
  const std::size_t before = writer.acknowledged().size();
  ASSERT_TRUE(eventually([&] { return writer.acknowledged().size() >= before + 50; }))
      << "writes go on under the new leader";
  writer.stop();

  ASSERT_TRUE(cluster.raft(target).barrier(10s).get().is_ok());
  for (std::uint64_t n : writer.acknowledged()) {
    ASSERT_EQ(cluster.fsm(target).get("w" + std::to_string(n)), std::to_string(n))
        << "acknowledged write " << n << " is missing after the transfer";
  }
}

TEST(LeadershipTransfer, WithoutATargetGoesToTheMostCaughtUpVoter) {
  TestCluster cluster(3);
  cluster.start_all();
  const ServerId leader = cluster.wait_for_leader();
  ASSERT_FALSE(leader.is_zero());
  // One follower is down: it has fallen behind, so the other is chosen.
  const ServerId down = cluster.any_follower(leader);
  cluster.stop(down);
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(cluster.raft(leader).apply("set a 1", 5s).get().is_ok());
  ServerId up;
  for (ServerId id : cluster.ids()) {
    if (id != leader && id != down) up = id;
  }
  Result<LeaderInfo> moved = cluster.raft(leader).transfer_leadership(std::nullopt, 10s).get();
  ASSERT_TRUE(moved.is_ok()) << moved.status() << cluster.describe();
  EXPECT_EQ(moved->id, up);
  EXPECT_EQ(cluster.wait_for_leader(), up);
}

TEST(LeadershipTransfer, WithoutATargetUnderLoadMovesAndLosesNoAcknowledgedWrite) {
  TestCluster cluster(5);
  cluster.start_all();
  const ServerId leader = cluster.wait_for_leader();
  ASSERT_FALSE(leader.is_zero());
  Writer writer(cluster);
  ASSERT_TRUE(eventually([&] { return writer.acknowledged().size() >= 50; }));

  Result<LeaderInfo> moved = cluster.raft(leader).transfer_leadership(std::nullopt, 10s).get();
  ASSERT_TRUE(moved.is_ok()) << moved.status() << cluster.describe();
  EXPECT_NE(moved->id, leader);
  EXPECT_TRUE(cluster.raft(leader).configuration().latest.is_voter(moved->id));
  const std::size_t before = writer.acknowledged().size();
  ASSERT_TRUE(eventually([&] { return writer.acknowledged().size() >= before + 50; }))
      << "writes go on under the new leader" << cluster.describe();
  writer.stop();

  const ServerId now = cluster.wait_for_leader();
  ASSERT_FALSE(now.is_zero());
  ASSERT_TRUE(cluster.raft(now).barrier(10s).get().is_ok());
  for (std::uint64_t n : writer.acknowledged()) {
    ASSERT_EQ(cluster.fsm(now).get("w" + std::to_string(n)), std::to_string(n))
        << "acknowledged write " << n << " is missing after the transfer";
  }
}

TEST(LeadershipTransfer, ATargetThatIsCutOffLeavesTheOldLeaderLeading) {
  TestCluster cluster(3, [](Config& config) { config.election_timeout = 500ms; });
  cluster.start_all();
  const ServerId leader = cluster.wait_for_leader();
  ASSERT_FALSE(leader.is_zero());
  const ServerId target = cluster.any_follower(leader);
  // The target hears nothing from the leader (it cannot catch up, and no
  // TimeoutNow reaches it), and its own messages are lost too.
  cluster.network().isolate(target);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(cluster.raft(leader).apply("set a 1", 5s).get().is_ok());

  Future<LeaderInfo> transfer = cluster.raft(leader).transfer_leadership(target, 30s);
  // While it runs: commands fail fast, a second transfer is refused.
  Result<ApplyResult> during = cluster.raft(leader).apply("set b 2", 5s).get();
  EXPECT_EQ(during.status().code(), StatusCode::kLeadershipTransferInProgress) << during.status();
  EXPECT_EQ(cluster.raft(leader).transfer_leadership(std::nullopt, 5s).get().status().code(),
            StatusCode::kLeadershipTransferInProgress);

  Result<LeaderInfo> result = transfer.get();
  EXPECT_EQ(result.status().code(), StatusCode::kTimeout) << result.status();
  EXPECT_NE(result.status().message().find("still leads"), std::string::npos) << result.status();
  EXPECT_EQ(cluster.raft(leader).state(), RaftState::kLeader);
  Result<ApplyResult> after = cluster.raft(leader).apply("set b 3", 5s).get();
  EXPECT_TRUE(after.is_ok()) << after.status();
  cluster.network().heal();
}

TEST(LeadershipTransfer, ADeadlineBeforeTheElectionTimeoutResumesAtTheDeadline) {
  TestCluster cluster(3, [](Config& config) { config.election_timeout = 3s; });
  cluster.start_all();
  const ServerId leader = cluster.wait_for_leader(30s);
  ASSERT_FALSE(leader.is_zero());
  const ServerId target = cluster.any_follower(leader);
  cluster.network().isolate(target);
  ASSERT_TRUE(cluster.raft(leader).apply("set a 1", 5s).get().is_ok());
  Result<LeaderInfo> result = cluster.raft(leader).transfer_leadership(target, 100ms).get();
  EXPECT_EQ(result.status().code(), StatusCode::kTimeout) << result.status();
  EXPECT_NE(result.status().message().find("before the deadline"), std::string::npos)
      << result.status();
  // Given up at once: proposals are accepted again, well within the
  // election timeout that would otherwise have ended it.
  Result<ApplyResult> after = cluster.raft(leader).apply("set b 3", 500ms).get();
  EXPECT_TRUE(after.is_ok()) << after.status();
  cluster.network().heal();
}

TEST(LeadershipTransfer, RefusalsSayWhy) {
  TestCluster cluster(3);
  cluster.start_all();
  const ServerId leader = cluster.wait_for_leader();
  ASSERT_FALSE(leader.is_zero());
  const ServerId follower = cluster.any_follower(leader);
  EXPECT_EQ(cluster.raft(follower).transfer_leadership(leader, 5s).get().status().code(),
            StatusCode::kNotLeader);
  EXPECT_EQ(cluster.raft(leader).transfer_leadership(leader, 5s).get().status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(cluster.raft(leader).transfer_leadership(ServerId{42}, 5s).get().status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(cluster.raft(leader).transfer_leadership(follower, 0s).get().status().code(),
            StatusCode::kTimeout);
  EXPECT_EQ(cluster.raft(leader).state(), RaftState::kLeader) << "nothing was started";

  TestCluster solo(1);
  solo.start_all();
  const ServerId only = solo.wait_for_leader();
  ASSERT_FALSE(only.is_zero());
  Result<LeaderInfo> alone = solo.raft(only).transfer_leadership(std::nullopt, 5s).get();
  EXPECT_EQ(alone.status().code(), StatusCode::kInvalidArgument) << alone.status();
}

}  // namespace
}  // namespace keel::testing
