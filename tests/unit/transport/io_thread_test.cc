// transport::IoThread's executors (transport/io_thread.h): the Executor
// contract of keel/env.h on the transport's I/O thread, and what happens to
// them when the thread goes away.
//
// Synchronised on futures, never on sleeps; time bounds are generous so a
// loaded machine cannot fail them.
#include "transport/io_thread.h"

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "../runtime/destruction_flag.h"
#include "keel/future.h"

namespace keel::transport {
namespace {

using namespace std::chrono_literals;

constexpr std::chrono::seconds kGenerousWait{30};

using testing::DestructionFlag;

// Resolves once every task posted to `executor` before it has run.
bool drain(Executor& executor) {
  Promise<bool> done;
  executor.post([done] { (void)done.resolve(true); });
  return done.future().wait_for(kGenerousWait);
}

TEST(IoThread, TasksOfItsExecutorsRunOnItsThreadInPostingOrder) {
  IoThread io("keel-io-test");
  io.start();
  auto first = io.make_executor("first");
  auto second = io.make_executor("second");
  std::vector<int> order;  // touched only on the I/O thread until drained
  std::atomic<int> off_thread{0};
  constexpr int kTasks = 1000;
  for (int i = 0; i < kTasks; ++i) {
    Executor& executor = (i % 3 == 0) ? *second : *first;
    executor.post([&, i] {
      if (!io.on_thread()) off_thread.fetch_add(1);
      order.push_back(i);
    });
  }
  ASSERT_TRUE(drain(*first));
  ASSERT_TRUE(drain(*second));
  EXPECT_EQ(off_thread.load(), 0);
  ASSERT_EQ(order.size(), static_cast<std::size_t>(kTasks));
  for (int i = 0; i < kTasks; ++i) EXPECT_EQ(order[static_cast<std::size_t>(i)], i);
  EXPECT_FALSE(io.on_thread());
}

// Posting order holds across threads: a task posted on the I/O thread runs
// before one another thread posts after it, even while the handler that
// posted the first is still running (the runtime relies on it: shutdown's
// task, posted last, must find every task queued before it).
TEST(IoThread, ATaskPostedOnTheThreadRunsBeforeOnePostedLaterFromAnother) {
  IoThread io("keel-io-test");
  io.start();
  auto executor = io.make_executor("order");
  std::vector<std::string> order;  // touched only on the I/O thread
  Promise<bool> first_posted;
  Promise<bool> second_posted;
  std::thread other([&] {
    ASSERT_TRUE(first_posted.future().wait_for(kGenerousWait));
    executor->post([&order] { order.push_back("from another thread"); });
    (void)second_posted.resolve(true);
  });
  executor->post([&] {
    executor->post([&order] { order.push_back("from the I/O thread"); });
    (void)first_posted.resolve(true);
    // Both are queued before this handler returns.
    ASSERT_TRUE(second_posted.future().wait_for(kGenerousWait));
  });
  other.join();
  ASSERT_TRUE(drain(*executor));
  const std::vector<std::string> expected{"from the I/O thread", "from another thread"};
  EXPECT_EQ(order, expected);
}

TEST(IoThread, PostNeverRunsTheTaskInline) {
  IoThread io("keel-io-test");
  io.start();
  auto executor = io.make_executor("inline");
  Promise<bool> checked;
  bool ran = false;  // touched only on the I/O thread, and outlives the tasks
  executor->post([&] {
    executor->post([&ran] { ran = true; });
    // Still false: the nested task waits for this one to return.
    const bool inline_run = ran;
    executor->post([checked, inline_run, &ran] { (void)checked.resolve(!inline_run && ran); });
  });
  Future<bool> result = checked.future();
  ASSERT_TRUE(result.wait_for(kGenerousWait));
  ASSERT_TRUE(result.get().is_ok());
  EXPECT_TRUE(result.get().value());
}

TEST(IoThread, TimersRunInDueOrderThenPostingOrderAndNoEarlierThanTheirDelay) {
  IoThread io("keel-io-test");
  io.start();
  auto a = io.make_executor("a");
  auto b = io.make_executor("b");
  std::mutex mutex;
  std::vector<std::string> order;
  auto record = [&](std::string what) {
    return [&, what] {
      std::lock_guard lock(mutex);
      order.push_back(what);
    };
  };
  const auto posted = std::chrono::steady_clock::now();
  std::atomic<std::int64_t> late_ran_after_ms{0};
  Promise<bool> done;
  a->post_after(60ms, [&, done] {
    late_ran_after_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now() - posted)
                            .count();
    record("late")();
    (void)done.resolve(true);
  });
  a->post_after(20ms, record("a-20"));
  b->post_after(20ms, record("b-20"));  // same due time as a's: after it
  b->post_after(-5ms, record("negative"));
  a->post_after(Duration::max(), record("never"));
  ASSERT_TRUE(done.future().wait_for(kGenerousWait));
  std::lock_guard lock(mutex);
  const std::vector<std::string> expected{"negative", "a-20", "b-20", "late"};
  EXPECT_EQ(order, expected);
  EXPECT_GE(late_ran_after_ms.load(), 60);
}

TEST(IoThread, StopDropsPendingTasksAndTimersAndRefusesMore) {
  IoThread io("keel-io-test");
  io.start();
  auto blocker = io.make_executor("blocker");
  auto victim = io.make_executor("victim");
  Promise<bool> release;
  Promise<bool> blocking;
  blocker->post([release, blocking] {
    (void)blocking.resolve(true);
    (void)release.future().wait_for(kGenerousWait);
  });
  ASSERT_TRUE(blocking.future().wait_for(kGenerousWait));
  // Queued behind the blocker: stop() must drop them.
  auto queued = std::make_shared<std::atomic<bool>>(false);
  auto timer = std::make_shared<std::atomic<bool>>(false);
  std::atomic<int> ran{0};
  victim->post([&ran, flag = std::make_shared<DestructionFlag>(queued)] { ran.fetch_add(1); });
  victim->post_after(1ms,
                     [&ran, flag = std::make_shared<DestructionFlag>(timer)] { ran.fetch_add(1); });
  victim->stop();
  EXPECT_TRUE(timer->load()) << "a stopped executor's timers are dropped at stop()";
  victim->post([&ran] { ran.fetch_add(1); });
  (void)release.resolve(true);
  ASSERT_TRUE(drain(*blocker));
  EXPECT_TRUE(queued->load()) << "a dropped task is destroyed once the thread reaches it";
  EXPECT_EQ(ran.load(), 0);
}

TEST(IoThread, StopFromAnotherThreadWaitsForTheRunningTaskAndFromItsOwnDoesNot) {
  IoThread io("keel-io-test");
  io.start();
  auto executor = io.make_executor("waited");
  Promise<bool> started;
  std::atomic<bool> finished{false};
  executor->post([&, started] {
    (void)started.resolve(true);
    std::this_thread::sleep_for(50ms);  // a task that takes a while (not a synchronisation)
    finished = true;
  });
  ASSERT_TRUE(started.future().wait_for(kGenerousWait));
  executor->stop();
  EXPECT_TRUE(finished.load());

  auto own = io.make_executor("own");
  Promise<bool> stopped;
  own->post([&own, stopped] {
    own->stop();  // would deadlock if it waited for itself
    (void)stopped.resolve(true);
  });
  EXPECT_TRUE(stopped.future().wait_for(kGenerousWait));
}

TEST(IoThread, ExecutorsOutliveTheThreadAndPostingToThemThenDoesNothing) {
  auto io = std::make_unique<IoThread>("keel-io-test");
  io->start();
  auto executor = io->make_executor("survivor");
  ASSERT_TRUE(drain(*executor));
  // Pending when the thread stops: destroyed then, never run.
  auto pending = std::make_shared<std::atomic<bool>>(false);
  std::atomic<int> ran{0};
  executor->post_after(
      1h, [&ran, flag = std::make_shared<DestructionFlag>(pending)] { ran.fetch_add(1); });
  io.reset();
  EXPECT_TRUE(pending->load());
  executor->post([&ran] { ran.fetch_add(1); });
  executor->post_after(1ms, [&ran] { ran.fetch_add(1); });
  executor->stop();
  EXPECT_EQ(ran.load(), 0);
}

TEST(IoThreadDeathTest, ATaskThatThrowsAbortsNamingItsExecutor) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        IoThread io("keel-io-test");
        io.start();
        auto executor = io.make_executor("thrower");
        executor->post([] { throw std::runtime_error("boom"); });
        std::this_thread::sleep_for(kGenerousWait);
      },
      "task on executor 'thrower' threw: boom");
}

}  // namespace
}  // namespace keel::transport
