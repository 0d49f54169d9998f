// Config::commit_notice_delay on full keel::Raft servers in the simulator's
// virtual time: followers learn a commit from the deferred notice soon after
// the delay, long before the next heartbeat, and not before the delay.
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include <gtest/gtest.h>

#include "sim/kv_fsm.h"
#include "sim/sim_cluster.h"

namespace keel::sim {
namespace {

using namespace std::chrono_literals;

// Heartbeats a second apart: within the windows below only a commit notice
// can tell a follower that a write committed (and a heartbeat falls into a
// 20 ms window at most one time in fifty).
SimClusterOptions quiet_cluster(std::uint64_t seed, std::chrono::microseconds notice_delay) {
  SimClusterOptions options;
  options.nodes = 3;
  options.seed = seed;
  options.fsm_factory = [](ServerId) { return std::make_shared<KvFsm>(); };
  options.tune_config = [notice_delay](Config& c) {
    c.heartbeat_interval = 1s;
    c.election_timeout = 5s;
    c.lease_timeout = 2s;
    c.commit_notice_delay = notice_delay;
  };
  return options;
}

// Applies `count` writes one at a time on the ready leader; after each is
// acknowledged, runs `window` of virtual time and counts the writes that
// every follower had applied by then.
int writes_followers_applied_within(std::uint64_t seed, std::chrono::microseconds notice_delay,
                                    int count, Duration window) {
  SimCluster cluster(quiet_cluster(seed, notice_delay));
  if (!cluster.run_until([&] { return cluster.ready_leader().has_value(); }, 60s)) return -1;
  const ServerId leader = *cluster.ready_leader();
  int applied_in_time = 0;
  for (int i = 0; i < count; ++i) {
    std::optional<Index> acknowledged;
    cluster.raft(leader)
        ->apply("set k" + std::to_string(i) + " v", 10s)
        .then([&](const Result<ApplyResult>& result) {
          if (result.is_ok()) acknowledged = result.value().index;
        });
    if (!cluster.run_until([&] { return acknowledged.has_value(); }, 10s)) return -1;
    cluster.run_for(window);
    bool everywhere = true;
    for (ServerId id : cluster.ids()) {
      if (cluster.raft(id)->stats().applied_index < *acknowledged) everywhere = false;
    }
    if (everywhere) ++applied_in_time;
  }
  return applied_in_time;
}

TEST(CommitNotice, FollowersApplyAWriteSoonAfterTheDelayNotAtTheNextHeartbeat) {
  for (std::uint64_t seed : {1, 2, 3}) {
    EXPECT_EQ(writes_followers_applied_within(seed, 1000us, 20, 20ms), 20) << "seed " << seed;
  }
}

TEST(CommitNotice, NoFollowerHearsOfTheCommitBeforeTheDelay) {
  // A delay as long as the heartbeat: most writes are not applied on the
  // followers 20 ms later (only a heartbeat that happens to fall in the
  // window tells them).
  for (std::uint64_t seed : {1, 2, 3}) {
    const int applied = writes_followers_applied_within(seed, 1'000'000us, 20, 20ms);
    ASSERT_GE(applied, 0) << "seed " << seed;
    EXPECT_LE(applied, 5) << "seed " << seed;
  }
}

TEST(CommitNotice, AtOnceWhenTheDelayIsZero) {
  for (std::uint64_t seed : {1, 2, 3}) {
    EXPECT_EQ(writes_followers_applied_within(seed, 0us, 20, 1ms), 20) << "seed " << seed;
  }
}

}  // namespace
}  // namespace keel::sim
