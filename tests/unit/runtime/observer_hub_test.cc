// ObserverHub: a slow observer never holds up the publisher, and the bounded
// queue it overflows never loses a "leader ready" observation while there is
// anything else to drop.
#include "runtime/observer_hub.h"

#include <gtest/gtest.h>

#include <vector>

namespace keel::runtime {
namespace {

Observation make(Observation::Kind kind, std::uint64_t term) {
  Observation observation;
  observation.kind = kind;
  observation.term = Term{term};
  return observation;
}

TEST(ObserverHub, AFullQueueDropsOtherObservationsBeforeLeaderReady) {
  auto env = std::make_shared<ManualEnv>(1);
  ObserverHub hub(env, /*queue_capacity=*/2);
  std::vector<Observation> seen;
  hub.subscribe([&](const Observation& observation) { seen.push_back(observation); });
  // Nothing runs until the env is driven: the observer is "slow".
  hub.publish(make(Observation::Kind::kLeaderReady, 5));
  hub.publish(make(Observation::Kind::kStateChanged, 5));
  hub.publish(make(Observation::Kind::kLeaderChanged, 6));
  hub.publish(make(Observation::Kind::kStateChanged, 6));
  env->run_until_idle();
  ASSERT_EQ(seen.size(), 2U);
  EXPECT_EQ(seen[0].kind, Observation::Kind::kLeaderReady);
  EXPECT_EQ(seen[0].term, Term{5});
  EXPECT_EQ(seen[1].kind, Observation::Kind::kStateChanged);
  EXPECT_EQ(seen[1].term, Term{6});
  EXPECT_EQ(hub.dropped(), 2U);
}

TEST(ObserverHub, AQueueOfOnlyReadinessDropsTheOldest) {
  auto env = std::make_shared<ManualEnv>(1);
  ObserverHub hub(env, /*queue_capacity=*/1);
  std::vector<Observation> seen;
  hub.subscribe([&](const Observation& observation) { seen.push_back(observation); });
  hub.publish(make(Observation::Kind::kLeaderReady, 5));
  hub.publish(make(Observation::Kind::kLeaderReady, 7));
  env->run_until_idle();
  ASSERT_EQ(seen.size(), 1U);
  EXPECT_EQ(seen[0].term, Term{7});
}

}  // namespace
}  // namespace keel::runtime
