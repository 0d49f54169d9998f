// NodeEnv: one simulated machine's view of the shared ManualEnv. A pause
// holds tasks back in order, a drifting clock stretches timers, latency
// delays posts without reordering them, and kill() drops everything.
#include "sim/node_env.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <keel/env.h>

namespace keel::sim {
namespace {

using namespace std::chrono_literals;

class NodeEnvTest : public ::testing::Test {
 protected:
  std::shared_ptr<NodeEnv> make(std::uint64_t seed = 1) {
    return std::make_shared<NodeEnv>(base_, clock_, seed, [this] { ++tasks_seen_; });
  }

  std::shared_ptr<ManualEnv> base_ = std::make_shared<ManualEnv>(3);
  std::shared_ptr<NodeClock> clock_ = std::make_shared<NodeClock>(base_, 5s);
  int tasks_seen_ = 0;
  std::vector<std::string> ran_;
};

TEST_F(NodeEnvTest, tasks_run_in_posting_order_and_are_reported) {
  auto env = make();
  auto executor = env->make_executor("loop");
  for (int i = 0; i < 5; ++i) executor->post([this, i] { ran_.push_back(std::to_string(i)); });
  base_->run_until_idle();
  EXPECT_EQ(ran_, (std::vector<std::string>{"0", "1", "2", "3", "4"}));
  EXPECT_EQ(tasks_seen_, 5);
}

TEST_F(NodeEnvTest, a_paused_machine_runs_nothing_and_resumes_in_order) {
  auto env = make();
  auto a = env->make_executor("a");
  auto other_env = make(2);
  auto other_machine = other_env->make_executor("other");
  a->post([this] { ran_.push_back("a1"); });
  env->pause();
  a->post([this] { ran_.push_back("a2"); });
  a->post_after(10ms, [this] { ran_.push_back("a-timer"); });
  other_machine->post([this] { ran_.push_back("other"); });
  base_->advance(50ms);
  EXPECT_EQ(ran_, std::vector<std::string>{"other"});
  a->post([this] { ran_.push_back("a3"); });
  env->resume(ReleaseOrder::kAsDue);
  a->post([this] { ran_.push_back("a4"); });
  base_->run_until_idle();
  EXPECT_EQ(ran_, (std::vector<std::string>{"other", "a1", "a2", "a-timer", "a3", "a4"}));
}

// After a stall a thread releases its due timers behind what is queued: the
// frames that arrived meanwhile run first, as the thread Env would run them.
TEST_F(NodeEnvTest, after_a_stall_timers_may_run_behind_posts_that_came_later) {
  auto env = make();
  auto a = env->make_executor("a");
  env->pause();
  a->post([this] { ran_.push_back("p1"); });
  a->post_after(10ms, [this] { ran_.push_back("t1"); });
  a->post_after(20ms, [this] { ran_.push_back("t2"); });
  base_->advance(15ms);
  a->post([this] { ran_.push_back("p2"); });
  base_->advance(10ms);
  a->post([this] { ran_.push_back("p3"); });
  base_->run_until_idle();  // everything has come up and is held
  env->resume(ReleaseOrder::kTimersLast);
  base_->run_until_idle();
  EXPECT_EQ(ran_, (std::vector<std::string>{"p1", "p2", "p3", "t1", "t2"}));
}

// A mixed release keeps posting order and due order, and never runs a timer
// before a post that was queued before the timer fell due.
TEST_F(NodeEnvTest, a_mixed_release_keeps_every_order_a_thread_keeps) {
  bool some_timer_moved = false;
  for (std::uint64_t seed = 1; seed <= 40; ++seed) {
    ran_.clear();
    auto env = make(seed);
    auto a = env->make_executor("a");
    env->pause();
    a->post([this] { ran_.push_back("p1"); });
    a->post_after(10ms, [this] { ran_.push_back("t1"); });
    base_->advance(15ms);
    a->post([this] { ran_.push_back("p2"); });
    a->post_after(5ms, [this] { ran_.push_back("t2"); });
    base_->advance(10ms);
    a->post([this] { ran_.push_back("p3"); });
    base_->run_until_idle();
    env->resume(ReleaseOrder::kMixed);
    base_->run_until_idle();
    auto at = [&](const std::string& name) {
      return std::find(ran_.begin(), ran_.end(), name) - ran_.begin();
    };
    ASSERT_EQ(ran_.size(), 5u);
    EXPECT_LT(at("p1"), at("p2"));
    EXPECT_LT(at("p2"), at("p3"));
    EXPECT_LT(at("t1"), at("t2"));
    EXPECT_LT(at("p1"), at("t1")) << "a timer ran before a post queued before it fell due";
    EXPECT_LT(at("p2"), at("t2"));
    if (at("t1") > at("p2")) some_timer_moved = true;
  }
  EXPECT_TRUE(some_timer_moved);
}

TEST_F(NodeEnvTest, a_pause_during_the_drain_holds_the_rest) {
  auto env = make();
  auto a = env->make_executor("a");
  env->pause();
  for (int i = 0; i < 4; ++i) {
    a->post([this, i, env] {
      ran_.push_back(std::to_string(i));
      if (i == 1) env->pause();
    });
  }
  base_->run_until_idle();
  env->resume();
  base_->run_until_idle();
  EXPECT_EQ(ran_, (std::vector<std::string>{"0", "1"}));
  env->resume();
  base_->run_until_idle();
  EXPECT_EQ(ran_, (std::vector<std::string>{"0", "1", "2", "3"}));
}

TEST_F(NodeEnvTest, the_clock_has_its_own_epoch_and_rate) {
  auto env = make();
  EXPECT_EQ(env->now(), 5s);
  base_->advance(1s);
  EXPECT_EQ(env->now(), 6s);
  clock_->set_rate(2.0);
  base_->advance(1s);
  EXPECT_EQ(env->now(), 8s);
  clock_->set_rate(0.5);
  base_->advance(2s);
  EXPECT_EQ(env->now(), 9s) << "a rate change keeps the clock continuous";
}

TEST_F(NodeEnvTest, timers_are_measured_on_the_machines_clock) {
  auto env = make();
  clock_->set_rate(2.0);  // a fast clock: its 100 ms pass in 50 ms of virtual time
  auto executor = env->make_executor("loop");
  bool fired = false;
  executor->post_after(100ms, [&] { fired = true; });
  base_->advance(49ms);
  EXPECT_FALSE(fired);
  base_->advance(1ms);
  EXPECT_TRUE(fired);
}

TEST_F(NodeEnvTest, latency_delays_posts_but_keeps_their_order) {
  auto env = make();
  auto writer = env->make_executor("keel-writer");
  auto loop = env->make_executor("keel-loop");
  env->set_latency("keel-writer", 1ms, 20ms);
  for (int i = 0; i < 20; ++i) writer->post([this, i] { ran_.push_back(std::to_string(i)); });
  loop->post([this] { ran_.push_back("loop"); });
  base_->run_until_idle();
  EXPECT_EQ(ran_, std::vector<std::string>{"loop"}) << "only the writer is slow";
  env->set_latency("keel-writer", 0ms, 0ms);
  writer->post([this] { ran_.push_back("after"); });  // must not overtake the delayed ones
  base_->advance(1s);
  std::vector<std::string> expected{"loop"};
  for (int i = 0; i < 20; ++i) expected.push_back(std::to_string(i));
  expected.push_back("after");
  EXPECT_EQ(ran_, expected);
}

TEST_F(NodeEnvTest, kill_drops_queued_held_and_future_tasks) {
  auto env = make();
  auto a = env->make_executor("a");
  a->post([this] { ran_.push_back("queued"); });
  a->post_after(5ms, [this] { ran_.push_back("timer"); });
  env->pause();
  env->kill();
  EXPECT_FALSE(env->paused());
  a->post([this] { ran_.push_back("later"); });
  env->make_executor("born-dead")->post([this] { ran_.push_back("born-dead"); });
  base_->advance(1s);
  EXPECT_TRUE(ran_.empty());
  EXPECT_TRUE(env->killed());
}

TEST_F(NodeEnvTest, seeds_replay_from_the_machines_seed) {
  auto one = make(42);
  auto two = make(42);
  auto three = make(43);
  const std::uint64_t first = one->random_seed();
  EXPECT_EQ(first, two->random_seed());
  EXPECT_NE(first, three->random_seed());
}

TEST_F(NodeEnvTest, it_is_driven_by_its_caller) { EXPECT_TRUE(make()->driven_by_caller()); }

}  // namespace
}  // namespace keel::sim
