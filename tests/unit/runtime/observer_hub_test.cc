// ObserverHub: a slow observer never holds up the publisher, and the bounded
// queue it overflows never loses a "leader ready" observation while there is
// anything else to drop.
#include "runtime/observer_hub.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

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
  ObserverHub hub(env, /*queue_capacity=*/2, /*max_subscriptions=*/8);
  std::vector<Observation> seen;
  ASSERT_TRUE(
      hub.subscribe([&](const Observation& observation) { seen.push_back(observation); }).is_ok());
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
  ObserverHub hub(env, /*queue_capacity=*/1, /*max_subscriptions=*/8);
  std::vector<Observation> seen;
  ASSERT_TRUE(
      hub.subscribe([&](const Observation& observation) { seen.push_back(observation); }).is_ok());
  hub.publish(make(Observation::Kind::kLeaderReady, 5));
  hub.publish(make(Observation::Kind::kLeaderReady, 7));
  env->run_until_idle();
  ASSERT_EQ(seen.size(), 1U);
  EXPECT_EQ(seen[0].term, Term{7});
}

// A callback that unsubscribes itself used to keep receiving what was
// already queued for it.
TEST(ObserverHub, AfterUnsubscribeInsideItsOwnCallbackNothingMoreIsDelivered) {
  auto env = std::make_shared<ManualEnv>(1);
  ObserverHub hub(env, /*queue_capacity=*/64, /*max_subscriptions=*/8);
  int calls = 0;
  std::uint64_t id = 0;
  Result<std::uint64_t> subscribed = hub.subscribe([&](const Observation&) {
    ++calls;
    hub.unsubscribe(id);
  });
  ASSERT_TRUE(subscribed.is_ok());
  id = *subscribed;
  for (int i = 0; i < 7; ++i) hub.publish(make(Observation::Kind::kStateChanged, 1));
  env->run_until_idle();
  EXPECT_EQ(calls, 1);
}

TEST(ObserverHub, UnsubscribeFromAnotherThreadStopsWhatIsQueuedAndNeverWaits) {
  auto env = make_thread_env();
  ObserverHub hub(env, /*queue_capacity=*/64, /*max_subscriptions=*/8);
  std::mutex mutex;
  std::condition_variable cv;
  bool release = false;
  std::atomic<int> calls{0};
  Result<std::uint64_t> id = hub.subscribe([&](const Observation&) {
    ++calls;
    std::unique_lock lock(mutex);
    cv.wait(lock, [&] { return release; });
  });
  ASSERT_TRUE(id.is_ok());
  for (int i = 0; i < 5; ++i) hub.publish(make(Observation::Kind::kStateChanged, 1));
  while (calls.load() == 0) std::this_thread::yield();
  hub.unsubscribe(*id);  // the callback is blocked: this must not wait for it
  EXPECT_FALSE(hub.wait_idle(std::chrono::milliseconds(20)));
  {
    std::lock_guard lock(mutex);
    release = true;
  }
  cv.notify_all();
  EXPECT_TRUE(hub.wait_idle(std::chrono::seconds(10)));
  EXPECT_EQ(calls.load(), 1);
}

TEST(ObserverHub, SubscriptionsAreBoundedAndRefusedAfterStop) {
  auto env = std::make_shared<ManualEnv>(1);
  ObserverHub hub(env, /*queue_capacity=*/4, /*max_subscriptions=*/2);
  ASSERT_TRUE(hub.subscribe([](const Observation&) {}).is_ok());
  ASSERT_TRUE(hub.subscribe([](const Observation&) {}).is_ok());
  EXPECT_EQ(hub.subscribe([](const Observation&) {}).status().code(),
            StatusCode::kResourceExhausted);
  hub.stop_all();
  EXPECT_EQ(hub.subscribe([](const Observation&) {}).status().code(), StatusCode::kShutdown);
}

}  // namespace
}  // namespace keel::runtime
