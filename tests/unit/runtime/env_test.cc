// Tests of the two Envs (include/keel/env.h): the thread env's executors and
// clock, and ManualEnv's virtual time and seeded scheduling.
//
// Thread-env tests synchronise on futures, never on sleeps; their time bounds
// are generous so a loaded machine cannot fail them.

#include <pthread.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <keel/env.h>
#include <keel/future.h>

#include "destruction_flag.h"

namespace keel {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// How long a test waits for something that should take microseconds.
constexpr seconds kGenerousWait{30};

using testing::DestructionFlag;

// ---- ThreadEnv -------------------------------------------------------------

TEST(ThreadEnv, TasksOnOneExecutorRunInPostingOrder) {
  auto env = make_thread_env();
  auto executor = env->make_executor("order");
  std::vector<int> order;  // touched only by the executor until `done` resolves
  Promise<bool> done;
  constexpr int kTasks = 1000;
  for (int i = 0; i < kTasks; ++i) {
    executor->post([&order, i] { order.push_back(i); });
  }
  executor->post([done] { (void)done.resolve(true); });
  ASSERT_TRUE(done.future().wait_for(kGenerousWait));
  ASSERT_EQ(order.size(), static_cast<std::size_t>(kTasks));
  for (int i = 0; i < kTasks; ++i) EXPECT_EQ(order[static_cast<std::size_t>(i)], i);
}

TEST(ThreadEnv, PostsFromManyThreadsAllRunAndKeepEachPostersOrder) {
  auto env = make_thread_env();
  auto executor = env->make_executor("many-posters");
  constexpr int kPosters = 4;
  constexpr int kTasksPerPoster = 500;
  std::vector<std::vector<int>> seen(kPosters);  // touched only by the executor
  std::atomic<int> remaining{kPosters * kTasksPerPoster};
  Promise<bool> done;
  std::vector<std::thread> posters;
  for (int poster = 0; poster < kPosters; ++poster) {
    posters.emplace_back([&, poster] {
      for (int i = 0; i < kTasksPerPoster; ++i) {
        // `done` by value: the resolver must own the promise it resolves,
        // since the test ends (destroying its locals) as soon as it is ready.
        executor->post([&seen, &remaining, done, poster, i] {
          seen[static_cast<std::size_t>(poster)].push_back(i);
          if (remaining.fetch_sub(1) == 1) (void)done.resolve(true);
        });
      }
    });
  }
  for (auto& poster : posters) poster.join();
  ASSERT_TRUE(done.future().wait_for(kGenerousWait));
  for (const auto& tasks : seen) {
    ASSERT_EQ(tasks.size(), static_cast<std::size_t>(kTasksPerPoster));
    for (int i = 0; i < kTasksPerPoster; ++i) EXPECT_EQ(tasks[static_cast<std::size_t>(i)], i);
  }
}

TEST(ThreadEnv, PostAfterRunsNoEarlierThanItsDelay) {
  auto env = make_thread_env();
  auto executor = env->make_executor("timer");
  constexpr milliseconds kDelay{50};
  Promise<Duration> fired_at;
  const Duration posted_at = env->now();
  executor->post_after(kDelay, [&env, fired_at] { (void)fired_at.resolve(env->now()); });
  const Future<Duration> fired = fired_at.future();
  ASSERT_TRUE(fired.wait_for(kGenerousWait));
  EXPECT_GE(fired.get().value() - posted_at, kDelay);
}

TEST(ThreadEnv, TimersRunInDueOrderNotPostingOrder) {
  auto env = make_thread_env();
  auto executor = env->make_executor("timer-order");
  std::vector<std::string> order;  // touched only by the executor
  Promise<bool> done;
  // 200 ms apart: only a poster stalled for longer could swap them.
  executor->post_after(milliseconds(200), [&order, done] {
    order.push_back("late");
    (void)done.resolve(true);
  });
  executor->post_after(milliseconds(0), [&order] { order.push_back("early"); });
  ASSERT_TRUE(done.future().wait_for(kGenerousWait));
  EXPECT_EQ(order, (std::vector<std::string>{"early", "late"}));
}

TEST(ThreadEnv, AHugeDelayNeitherFiresNorBlocksOtherTasksOrStop) {
  auto env = make_thread_env();
  auto executor = env->make_executor("huge-delay");
  std::atomic<bool> fired{false};
  executor->post_after(Duration::max(), [&fired] { fired = true; });
  executor->post_after(-milliseconds(5), [] {});  // negative: counts as zero
  Promise<bool> ran;
  executor->post([ran] { (void)ran.resolve(true); });
  ASSERT_TRUE(ran.future().wait_for(kGenerousWait));
  executor->stop();
  EXPECT_FALSE(fired);
}

TEST(ThreadEnv, ExecutorThreadIsNamedAfterTheExecutorTruncatedTo15Chars) {
  auto env = make_thread_env();
  auto executor = env->make_executor("a-very-long-executor-name");
  Promise<std::string> name;
  executor->post([name] {
    char buffer[32] = {};
    pthread_getname_np(pthread_self(), buffer, sizeof buffer);
    (void)name.resolve(std::string(buffer));
  });
  ASSERT_TRUE(name.future().wait_for(kGenerousWait));
  EXPECT_EQ(name.future().get().value(), "a-very-long-exe");
}

TEST(ThreadEnv, StopFromInsideATaskDoesNotDeadlock) {
  auto env = make_thread_env();
  auto executor = env->make_executor("self-stop");
  Promise<bool> stopped;
  executor->post([executor_ptr = executor.get(), stopped] {
    executor_ptr->stop();
    executor_ptr->stop();  // idempotent, still from inside
    (void)stopped.resolve(true);
  });
  ASSERT_TRUE(stopped.future().wait_for(kGenerousWait));
  executor->stop();  // from outside after an inside stop: joins the thread
}

TEST(ThreadEnv, ExecutorDestroyedByItsOwnTaskDoesNotTerminate) {
  auto env = make_thread_env();
  auto executor = env->make_executor("self-destroy");
  Promise<bool> released;
  // The task holds the last reference, so ~Executor runs on its own thread.
  executor->post([last_reference = std::move(executor), released]() mutable {
    last_reference.reset();
    (void)released.resolve(true);
  });
  executor.reset();
  ASSERT_TRUE(released.future().wait_for(kGenerousWait));
}

TEST(ThreadEnv, StopDropsPendingTasksWithoutRunningThem) {
  auto env = make_thread_env();
  auto executor = env->make_executor("drop");
  Promise<bool> go;
  std::atomic<bool> pending_ran{false};
  auto pending_destroyed = std::make_shared<std::atomic<bool>>(false);
  // The first task holds the executor until the second is queued behind it,
  // then stops the executor from inside, which drops the second.
  executor->post([future = go.future(), executor_ptr = executor.get()] {
    (void)future.get();
    executor_ptr->stop();
  });
  executor->post([&pending_ran, flag = std::make_shared<DestructionFlag>(pending_destroyed)] {
    pending_ran = true;
  });
  (void)go.resolve(true);
  executor->stop();  // joins: the thread has finished for good
  EXPECT_FALSE(pending_ran);
  EXPECT_TRUE(*pending_destroyed);
}

TEST(ThreadEnv, TasksPostedAfterStopNeverRun) {
  auto env = make_thread_env();
  auto executor = env->make_executor("after-stop");
  executor->stop();
  std::atomic<bool> ran{false};
  auto destroyed = std::make_shared<std::atomic<bool>>(false);
  executor->post([&ran, flag = std::make_shared<DestructionFlag>(destroyed)] { ran = true; });
  // Dropped at once: the task is gone, and the joined thread cannot run it.
  EXPECT_TRUE(*destroyed);
  executor->post_after(milliseconds(0), [&ran] { ran = true; });
  executor->stop();
  EXPECT_FALSE(ran);
}

TEST(ThreadEnv, ConcurrentStopsFromTwoThreadsAreSafe) {
  auto env = make_thread_env();
  auto executor = env->make_executor("double-stop");
  Promise<bool> started;
  Promise<bool> release;
  executor->post([started, future = release.future()] {
    (void)started.resolve(true);
    (void)future.get();
  });
  ASSERT_TRUE(started.future().wait_for(kGenerousWait));
  std::thread first([&] { executor->stop(); });
  std::thread second([&] { executor->stop(); });
  (void)release.resolve(true);
  first.join();
  second.join();
}

TEST(ThreadEnv, ATaskThatThrowsAbortsNamingItsExecutor) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        auto env = make_thread_env();
        auto executor = env->make_executor("thrower");
        executor->post([] { throw std::runtime_error("boom"); });
        // Never resolves: the abort comes first. (stop() here could drop the
        // throwing task before it ran.)
        Promise<bool> after_throw;
        executor->post([after_throw] { (void)after_throw.resolve(true); });
        (void)after_throw.future().wait_for(kGenerousWait);
      },
      "thrower.*boom");
}

// --- executors that share a thread --------------------------------------------

TEST(ThreadEnv, ExecutorsSharingAThreadRunThereInPostingOrder) {
  auto env = make_thread_env();
  auto host = env->make_executor("host");
  auto guest = env->make_executor_sharing("guest", *host);
  std::mutex mutex;
  std::vector<std::pair<std::string, std::thread::id>> ran;
  Promise<bool> done;
  for (int i = 0; i < 50; ++i) {
    Executor& executor = i % 2 == 0 ? *host : *guest;
    executor.post([&, i] {
      std::lock_guard lock(mutex);
      ran.emplace_back(std::to_string(i), std::this_thread::get_id());
      if (i == 49) done.resolve(true);
    });
  }
  ASSERT_TRUE(done.future().wait_for(kGenerousWait));
  std::lock_guard lock(mutex);
  ASSERT_EQ(ran.size(), 50u);
  for (std::size_t i = 0; i < ran.size(); ++i) {
    EXPECT_EQ(ran[i].first, std::to_string(i)) << "posting order across the two";
    EXPECT_EQ(ran[i].second, ran[0].second) << "one thread for both";
  }
}

TEST(ThreadEnv, StoppingOneExecutorOfASharedThreadLeavesTheOtherRunning) {
  auto env = make_thread_env();
  auto host = env->make_executor("host");
  auto guest = env->make_executor_sharing("guest", *host);
  std::atomic<bool> guest_ran{false};
  Promise<bool> blocker_started;
  Promise<bool> release;
  host->post([&] {
    blocker_started.resolve(true);
    (void)release.future().get();
  });
  ASSERT_TRUE(blocker_started.future().wait_for(kGenerousWait));
  guest->post([&] { guest_ran = true; });  // queued behind the blocked host task
  guest->stop();                           // drops it; the host task is not the guest's
  release.resolve(true);
  Promise<bool> host_alive;
  host->post([&] { host_alive.resolve(true); });
  ASSERT_TRUE(host_alive.future().wait_for(kGenerousWait));
  EXPECT_FALSE(guest_ran.load());
  host->stop();
}

TEST(ThreadEnv, AnExecutorMadeToShareAStoppedOnesThreadIsBornStopped) {
  auto env = make_thread_env();
  auto host = env->make_executor("host");
  host->stop();
  auto guest = env->make_executor_sharing("guest", *host);
  std::atomic<bool> ran{false};
  guest->post([&] { ran = true; });
  guest->stop();
  EXPECT_FALSE(ran.load());
}

TEST(ThreadEnv, NowNeverGoesBackwards) {
  auto env = make_thread_env();
  Duration previous = env->now();
  for (int i = 0; i < 1000; ++i) {
    const Duration current = env->now();
    EXPECT_GE(current, previous);
    previous = current;
  }
}

TEST(ThreadEnv, RandomSeedsDifferFromCallToCall) {
  auto env = make_thread_env();
  EXPECT_NE(env->random_seed(), env->random_seed());
}

// ---- ManualEnv -------------------------------------------------------------

// Four executors, each running a chain of tasks that also posts to its
// neighbour and arms a timer; returns the order in which tasks ran.
std::vector<std::string> record_interleaving(std::uint64_t seed) {
  ManualEnv env(seed);
  constexpr int kExecutors = 4;
  constexpr int kRounds = 20;
  std::vector<std::shared_ptr<Executor>> executors;
  for (int i = 0; i < kExecutors; ++i)
    executors.push_back(env.make_executor("e" + std::to_string(i)));
  std::vector<std::string> order;
  for (int i = 0; i < kExecutors; ++i) {
    for (int round = 0; round < kRounds; ++round) {
      auto& self = executors[static_cast<std::size_t>(i)];
      auto& neighbour = executors[static_cast<std::size_t>((i + 1) % kExecutors)];
      const std::string tag = std::to_string(i) + "." + std::to_string(round);
      self->post([&order, &neighbour, &self, tag] {
        order.push_back(tag);
        neighbour->post([&order, tag] { order.push_back(tag + ">n"); });
        self->post_after(milliseconds(1), [&order, tag] { order.push_back(tag + "@t"); });
      });
    }
  }
  env.advance(milliseconds(10));
  EXPECT_EQ(order.size(), static_cast<std::size_t>(kExecutors * kRounds * 3));
  EXPECT_EQ(env.tasks_run(), order.size());
  return order;
}

TEST(ManualEnv, SameSeedSameInterleaving) {
  EXPECT_EQ(record_interleaving(42), record_interleaving(42));
  const std::vector<std::string> reference = record_interleaving(1);
  bool some_seed_differs = false;
  for (std::uint64_t seed = 2; seed < 10; ++seed) {
    some_seed_differs |= record_interleaving(seed) != reference;
  }
  EXPECT_TRUE(some_seed_differs);
}

TEST(ManualEnv, TasksOnOneExecutorRunInPostingOrder) {
  ManualEnv env(7);
  auto executor = env.make_executor("order");
  auto other = env.make_executor("other");
  std::vector<int> order;
  for (int i = 0; i < 100; ++i) {
    executor->post([&order, i] { order.push_back(i); });
    other->post([] {});
  }
  EXPECT_EQ(env.run_until_idle(), 200u);
  ASSERT_EQ(order.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(order[static_cast<std::size_t>(i)], i);
}

TEST(ManualEnv, PostNeverRunsTheTaskInline) {
  ManualEnv env(1);
  auto executor = env.make_executor("inline");
  bool ran = false;
  executor->post([&ran] { ran = true; });
  EXPECT_FALSE(ran);
  EXPECT_TRUE(env.run_one());
  EXPECT_TRUE(ran);
  EXPECT_FALSE(env.run_one());
}

TEST(ManualEnv, TimersFireInDueOrderAndOnlyWhenTimeAdvances) {
  ManualEnv env(3);
  auto first = env.make_executor("first");
  auto second = env.make_executor("second");
  std::vector<std::pair<std::string, Duration>> fired;
  auto record = [&](std::string name) {
    return [&fired, &env, name] { fired.emplace_back(name, env.now()); };
  };
  first->post_after(milliseconds(30), record("a@30"));
  second->post_after(milliseconds(10), record("b@10"));
  first->post_after(milliseconds(20), record("c@20"));
  first->post_after(milliseconds(10), record("d@10"));  // ties with b: posted later, runs later

  EXPECT_EQ(env.run_until_idle(), 0u);
  EXPECT_TRUE(fired.empty());

  env.advance(milliseconds(15));
  EXPECT_EQ(env.now(), milliseconds(15));
  ASSERT_EQ(fired.size(), 2u);
  EXPECT_EQ(fired[0], std::make_pair(std::string("b@10"), Duration(milliseconds(10))));
  EXPECT_EQ(fired[1], std::make_pair(std::string("d@10"), Duration(milliseconds(10))));

  env.advance(milliseconds(15));
  ASSERT_EQ(fired.size(), 4u);
  EXPECT_EQ(fired[2], std::make_pair(std::string("c@20"), Duration(milliseconds(20))));
  EXPECT_EQ(fired[3], std::make_pair(std::string("a@30"), Duration(milliseconds(30))));
}

TEST(ManualEnv, NegativeDelayCountsAsZeroAndHugeDelaySaturates) {
  ManualEnv env(6);
  auto executor = env.make_executor("delays");
  bool soon = false;
  bool never = false;
  executor->post_after(-milliseconds(5), [&soon] { soon = true; });
  executor->post_after(Duration::max(), [&never] { never = true; });
  env.advance(seconds(1));
  EXPECT_TRUE(soon);
  EXPECT_FALSE(never);
  EXPECT_EQ(env.now(), seconds(1));
}

TEST(ManualEnv, AdvanceRunsTimersArmedOnTheWay) {
  ManualEnv env(5);
  auto executor = env.make_executor("rearm");
  std::vector<Duration> ticks;
  std::function<void()> tick = [&] {
    ticks.push_back(env.now());
    if (ticks.size() < 5) executor->post_after(milliseconds(10), tick);
  };
  executor->post_after(milliseconds(10), tick);
  env.advance(milliseconds(100));
  EXPECT_EQ(ticks, (std::vector<Duration>{milliseconds(10), milliseconds(20), milliseconds(30),
                                          milliseconds(40), milliseconds(50)}));
  EXPECT_EQ(env.now(), milliseconds(100));
}

TEST(ManualEnv, RunUntilJumpsToNextTimer) {
  ManualEnv env(9);
  auto executor = env.make_executor("jump");
  bool fired = false;
  executor->post_after(seconds(5), [&fired] { fired = true; });
  EXPECT_TRUE(env.run_until([&fired] { return fired; }, seconds(10)));
  EXPECT_EQ(env.now(), seconds(5));
}

TEST(ManualEnv, RunUntilStopsAtItsLimitWithoutRunningLaterTimers) {
  ManualEnv env(9);
  auto executor = env.make_executor("limit");
  bool fired = false;
  executor->post_after(seconds(20), [&fired] { fired = true; });
  EXPECT_FALSE(env.run_until([&fired] { return fired; }, seconds(10)));
  EXPECT_FALSE(fired);
  EXPECT_EQ(env.now(), seconds(10));
}

TEST(ManualEnv, RunUntilReturnsAtOnceWhenNothingIsLeft) {
  ManualEnv env(9);
  auto executor = env.make_executor("empty");
  int runs = 0;
  executor->post([&runs] { ++runs; });
  EXPECT_FALSE(env.run_until([] { return false; }, seconds(10)));
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(env.now(), Duration::zero());
}

TEST(ManualEnv, RunUntilIdleRunsAtMostMaxTasks) {
  ManualEnv env(2);
  auto executor = env.make_executor("bounded");
  for (int i = 0; i < 10; ++i) executor->post([] {});
  EXPECT_EQ(env.run_until_idle(4), 4u);
  EXPECT_EQ(env.tasks_run(), 4u);
  EXPECT_EQ(env.run_until_idle(), 6u);
}

TEST(ManualEnv, StoppedExecutorDropsItsTasksAndRefusesMore) {
  ManualEnv env(4);
  auto stopped = env.make_executor("stopped");
  auto running = env.make_executor("running");
  int stopped_runs = 0;
  int running_runs = 0;
  stopped->post([&stopped_runs] { ++stopped_runs; });
  stopped->post_after(milliseconds(1), [&stopped_runs] { ++stopped_runs; });
  running->post([&running_runs] { ++running_runs; });
  stopped->stop();
  stopped->post([&stopped_runs] { ++stopped_runs; });
  env.advance(milliseconds(5));
  EXPECT_EQ(stopped_runs, 0);
  EXPECT_EQ(running_runs, 1);
}

TEST(ManualEnv, ATaskMayStopItsOwnExecutor) {
  ManualEnv env(4);
  auto executor = env.make_executor("self-stop");
  int runs = 0;
  executor->post([&] {
    ++runs;
    executor->stop();
  });
  executor->post([&runs] { ++runs; });
  env.run_until_idle();
  EXPECT_EQ(runs, 1);
}

TEST(ManualEnv, ExecutorOutlivesEnv) {
  auto env = std::make_unique<ManualEnv>(11);
  auto executor = env->make_executor("survivor");
  auto pending_destroyed = std::make_shared<std::atomic<bool>>(false);
  executor->post([flag = std::make_shared<DestructionFlag>(pending_destroyed)] {});
  env.reset();
  EXPECT_TRUE(*pending_destroyed);  // destroying the env drops pending tasks

  auto late_destroyed = std::make_shared<std::atomic<bool>>(false);
  executor->post([flag = std::make_shared<DestructionFlag>(late_destroyed)] {});
  EXPECT_TRUE(*late_destroyed);  // a no-op: dropped at once
  executor->post_after(milliseconds(1), [] {});
  executor->stop();
  executor.reset();
}

TEST(ManualEnv, SameSeedSameRandomSeeds) {
  ManualEnv first(123);
  ManualEnv second(123);
  ManualEnv other(124);
  const std::uint64_t seed = first.random_seed();
  EXPECT_EQ(seed, second.random_seed());
  EXPECT_NE(seed, other.random_seed());
}

TEST(ManualEnv, PostingFromAnotherThreadWhileRunningIsSafe) {
  ManualEnv env(8);
  auto executor = env.make_executor("cross-thread");
  constexpr int kTasks = 2000;
  int runs = 0;  // touched only by the driving thread
  std::thread poster([&] {
    for (int i = 0; i < kTasks; ++i) executor->post([&runs] { ++runs; });
  });
  // Spins until all have run; the poster's progress is the only thing awaited.
  while (runs < kTasks) env.run_until_idle();
  poster.join();
  EXPECT_EQ(runs, kTasks);
}

}  // namespace
}  // namespace keel
