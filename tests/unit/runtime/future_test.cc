// Tests of Future and Promise (include/keel/future.h): resolve-once, then()
// semantics, and blocking waits across threads. Waits have generous bounds
// and synchronise on the futures themselves, never on sleeps.

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <keel/future.h>
#include <keel/status.h>

namespace keel {
namespace {

using std::chrono::milliseconds;

TEST(Future, FirstResolveWins) {
  Promise<int> promise;
  Promise<int> copy = promise;  // copies share one state
  EXPECT_TRUE(promise.resolve(1));
  EXPECT_FALSE(copy.resolve(2));
  EXPECT_FALSE(promise.resolve(Status::timeout("deadline")));
  ASSERT_TRUE(promise.future().is_ready());
  EXPECT_EQ(promise.future().get().value(), 1);
}

TEST(Future, ConcurrentResolversExactlyOneWins) {
  Promise<int> promise;
  constexpr int kResolvers = 8;
  std::atomic<int> winners{0};
  std::vector<std::thread> resolvers;
  for (int i = 0; i < kResolvers; ++i) {
    resolvers.emplace_back([&, i] { winners += promise.resolve(i) ? 1 : 0; });
  }
  for (auto& resolver : resolvers) resolver.join();
  EXPECT_EQ(winners, 1);
  const int value = promise.future().get().value();
  EXPECT_GE(value, 0);
  EXPECT_LT(value, kResolvers);
}

TEST(Future, ThenRunsOnceWhetherRegisteredBeforeOrAfterResolve) {
  Promise<std::string> promise;
  const Future<std::string> future = promise.future();
  int before_runs = 0;
  int after_runs = 0;
  future.then([&before_runs](const Result<std::string>& result) {
    ++before_runs;
    EXPECT_EQ(result.value(), "done");
  });
  EXPECT_EQ(before_runs, 0);  // not resolved yet

  (void)promise.resolve(std::string("done"));
  EXPECT_EQ(before_runs, 1);  // ran on the resolving thread, within resolve()

  future.then([&after_runs](const Result<std::string>& result) {
    ++after_runs;
    EXPECT_EQ(result.value(), "done");
  });
  EXPECT_EQ(after_runs, 1);  // already resolved: ran at once

  (void)promise.resolve(Status::shutdown());  // ignored: neither runs again
  EXPECT_EQ(before_runs, 1);
  EXPECT_EQ(after_runs, 1);
}

TEST(Future, ThenCallbacksRunInRegistrationOrder) {
  Promise<int> promise;
  std::vector<int> order;
  for (int i = 0; i < 5; ++i) {
    promise.future().then([&order, i](const Result<int>&) { order.push_back(i); });
  }
  (void)promise.resolve(0);
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST(Future, ThenRacingResolveRunsExactlyOnce) {
  constexpr int kRounds = 50;
  for (int round = 0; round < kRounds; ++round) {
    Promise<int> promise;
    std::atomic<int> runs{0};
    std::thread resolver([&] { (void)promise.resolve(round); });
    promise.future().then([&runs](const Result<int>&) { ++runs; });
    resolver.join();
    EXPECT_EQ(runs, 1);
  }
}

TEST(Future, GetBlocksUntilResolvedFromAnotherThread) {
  Promise<int> promise;
  Promise<bool> waiter_started;
  std::atomic<bool> resolved_by_other{false};
  std::thread resolver([&] {
    // Resolve only once the main thread is about to block in get().
    (void)waiter_started.future().get();
    resolved_by_other = true;
    (void)promise.resolve(42);
  });
  (void)waiter_started.resolve(true);
  const Result<int>& result = promise.future().get();
  EXPECT_TRUE(resolved_by_other);  // get() returned only after the other thread resolved
  EXPECT_EQ(result.value(), 42);
  resolver.join();
}

TEST(Future, GetReturnsTheErrorStatus) {
  const Future<int> future = Future<int>::ready(Status::not_leader(ServerId(3)));
  ASSERT_FALSE(future.get().is_ok());
  EXPECT_EQ(future.get().status().code(), StatusCode::kNotLeader);
  EXPECT_EQ(future.get().status().leader_hint(), ServerId(3));
}

TEST(Future, WaitForTimesOut) {
  Promise<int> promise;
  const auto started = std::chrono::steady_clock::now();
  EXPECT_FALSE(promise.future().wait_for(milliseconds(20)));
  EXPECT_GE(std::chrono::steady_clock::now() - started, milliseconds(20));
  EXPECT_FALSE(promise.future().is_ready());
  (void)promise.resolve(1);
  EXPECT_TRUE(promise.future().wait_for(milliseconds(0)));
}

TEST(Future, ReadyFutureIsResolvedAndRunsThenAtOnce) {
  const Future<int> future = Future<int>::ready(7);
  EXPECT_TRUE(future.is_ready());
  int seen = 0;
  future.then([&seen](const Result<int>& result) { seen = result.value(); });
  EXPECT_EQ(seen, 7);
}

}  // namespace
}  // namespace keel
