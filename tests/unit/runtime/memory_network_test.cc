// InMemoryNetwork delivers frames by posted tasks, loses them as its fault
// settings say (cuts, isolation, partitions, drop rate, in-flight bound), and
// never calls a receiver after its transport's stop() has returned.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <keel/env.h>
#include <keel/transport.h>

namespace keel {
namespace {

using std::chrono::milliseconds;

const Server kOne{ServerId(1), "", Suffrage::kVoter};
const Server kTwo{ServerId(2), "", Suffrage::kVoter};
const Server kThree{ServerId(3), "", Suffrage::kVoter};

// A ManualEnv, a network on it and, for each of servers 1..3, a started
// transport whose receiver records the frames it got.
class MemoryNetworkTest : public ::testing::Test {
 protected:
  MemoryNetworkTest() {
    for (std::uint64_t id = 1; id <= 3; ++id) {
      transports_.push_back(network_.transport(ServerId(id)));
      received_.push_back(std::make_shared<std::vector<std::string>>());
      EXPECT_TRUE(start(id).is_ok());
    }
  }

  Status start(std::uint64_t id) {
    return transport(id).start(
        [frames = received_[id - 1]](std::string frame) { frames->push_back(std::move(frame)); });
  }
  Transport& transport(std::uint64_t id) { return *transports_[id - 1]; }
  const std::vector<std::string>& received(std::uint64_t id) const { return *received_[id - 1]; }

  void send(std::uint64_t from, const Server& to, const std::string& frame) {
    transport(from).send(to, Lane::kReplication, frame);
  }

  std::shared_ptr<ManualEnv> env_ = std::make_shared<ManualEnv>(42);
  InMemoryNetwork network_{env_};
  std::vector<std::shared_ptr<Transport>> transports_;
  std::vector<std::shared_ptr<std::vector<std::string>>> received_;
};

using Frames = std::vector<std::string>;

// Runs each task with a flag raised: tells a task of this executor from any
// other caller.
class MarkingExecutor final : public Executor {
 public:
  MarkingExecutor(std::shared_ptr<Executor> inner, bool& flag)
      : inner_(std::move(inner)), flag_(flag) {}
  void post(Task task) override { inner_->post(wrap(std::move(task))); }
  void post_after(Duration delay, Task task) override {
    inner_->post_after(delay, wrap(std::move(task)));
  }
  void stop() override { inner_->stop(); }

 private:
  Task wrap(Task task) {
    return [this, task = std::move(task)] {
      flag_ = true;
      task();
      flag_ = false;
    };
  }
  std::shared_ptr<Executor> inner_;
  bool& flag_;
};

TEST_F(MemoryNetworkTest, frame_is_delivered_by_a_posted_task_never_inline_in_send) {
  send(1, kTwo, "hello");
  EXPECT_TRUE(received(2).empty());
  env_->run_until_idle();
  EXPECT_EQ(received(2), Frames{"hello"});
  EXPECT_EQ(network_.delivered(), 1U);
  EXPECT_EQ(network_.dropped(), 0U);
}

TEST_F(MemoryNetworkTest, frames_between_two_servers_arrive_in_order_without_delay) {
  for (int i = 0; i < 100; ++i) send(1, kTwo, std::to_string(i));
  transport(3).send(kTwo, Lane::kControl, "control");
  env_->run_until_idle();
  ASSERT_EQ(received(2).size(), 101U);
  for (int i = 0; i < 100; ++i)
    EXPECT_EQ(received(2)[static_cast<std::size_t>(i)], std::to_string(i));
}

TEST_F(MemoryNetworkTest, server_sends_to_itself) {
  send(1, kOne, "me");
  env_->run_until_idle();
  EXPECT_EQ(received(1), Frames{"me"});
}

TEST_F(MemoryNetworkTest, frame_to_a_server_without_a_transport_is_dropped) {
  send(1, Server{ServerId(9), "", Suffrage::kVoter}, "lost");
  env_->run_until_idle();
  EXPECT_EQ(network_.dropped(), 1U);
}

TEST_F(MemoryNetworkTest, cut_drops_frames_in_one_direction_only) {
  network_.cut(ServerId(1), ServerId(2));
  send(1, kTwo, "lost");
  send(2, kOne, "arrives");
  env_->run_until_idle();
  EXPECT_TRUE(received(2).empty());
  EXPECT_EQ(received(1), Frames{"arrives"});
  EXPECT_EQ(network_.dropped(), 1U);
}

TEST_F(MemoryNetworkTest, isolated_server_neither_sends_nor_receives) {
  network_.isolate(ServerId(1));
  send(1, kTwo, "out");
  send(3, kOne, "in");
  send(2, kThree, "others unaffected");
  env_->run_until_idle();
  EXPECT_TRUE(received(1).empty());
  EXPECT_TRUE(received(2).empty());
  EXPECT_EQ(received(3), Frames{"others unaffected"});
  EXPECT_EQ(network_.dropped(), 2U);
}

TEST_F(MemoryNetworkTest, partition_lets_only_servers_of_one_group_talk) {
  network_.partition({{ServerId(1), ServerId(2)}, {ServerId(3)}});
  send(1, kTwo, "same group");
  send(2, kThree, "across");
  send(3, kOne, "across");
  env_->run_until_idle();
  EXPECT_EQ(received(2), Frames{"same group"});
  EXPECT_TRUE(received(3).empty());
  EXPECT_TRUE(received(1).empty());
}

TEST_F(MemoryNetworkTest, server_left_out_of_every_group_reaches_nobody) {
  network_.partition({{ServerId(1), ServerId(2)}});
  send(3, kOne, "lost");
  send(1, kThree, "lost");
  env_->run_until_idle();
  EXPECT_TRUE(received(1).empty());
  EXPECT_TRUE(received(3).empty());
  EXPECT_EQ(network_.dropped(), 2U);
}

TEST_F(MemoryNetworkTest, heal_restores_every_link) {
  network_.cut(ServerId(1), ServerId(2));
  network_.isolate(ServerId(3));
  network_.partition({{ServerId(1)}, {ServerId(2), ServerId(3)}});
  network_.heal();
  send(1, kTwo, "a");
  send(3, kOne, "b");
  send(2, kThree, "c");
  env_->run_until_idle();
  EXPECT_EQ(received(2), Frames{"a"});
  EXPECT_EQ(received(1), Frames{"b"});
  EXPECT_EQ(received(3), Frames{"c"});
}

// Reachability is checked again at delivery: a partition loses what is on
// the wire when it starts, so nothing crosses it after it is set.
TEST_F(MemoryNetworkTest, frame_in_flight_when_a_partition_starts_is_dropped) {
  send(1, kTwo, "in flight");
  network_.isolate(ServerId(2));
  env_->run_until_idle();
  EXPECT_TRUE(received(2).empty());
  EXPECT_EQ(network_.dropped(), 1U);
}

TEST_F(MemoryNetworkTest, drop_rate_one_drops_every_frame) {
  network_.set_drop_rate(1.0);
  for (int i = 0; i < 100; ++i) send(1, kTwo, "x");
  env_->run_until_idle();
  EXPECT_TRUE(received(2).empty());
  EXPECT_EQ(network_.dropped(), 100U);
}

TEST_F(MemoryNetworkTest, drop_rate_half_drops_about_half) {
  network_.set_drop_rate(0.5);
  for (int i = 0; i < 2000; ++i) send(1, kTwo, "x");
  env_->run_until_idle();
  EXPECT_GT(received(2).size(), 800U);
  EXPECT_LT(received(2).size(), 1200U);
  EXPECT_EQ(network_.delivered() + network_.dropped(), 2000U);
}

TEST_F(MemoryNetworkTest, duplicate_rate_one_delivers_every_frame_twice) {
  network_.set_duplicate_rate(1.0);
  for (int i = 0; i < 50; ++i) send(1, kTwo, std::to_string(i));
  env_->run_until_idle();
  ASSERT_EQ(received(2).size(), 100U);
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(std::count(received(2).begin(), received(2).end(), std::to_string(i)), 2);
  }
  EXPECT_EQ(network_.duplicated(), 50U);
  EXPECT_EQ(network_.delivered(), 100U);
}

TEST_F(MemoryNetworkTest, duplicate_rate_half_copies_about_half) {
  network_.set_duplicate_rate(0.5);
  for (int i = 0; i < 2000; ++i) send(1, kTwo, "x");
  env_->run_until_idle();
  EXPECT_GT(network_.duplicated(), 800U);
  EXPECT_LT(network_.duplicated(), 1200U);
  EXPECT_EQ(received(2).size(), 2000U + network_.duplicated());
}

TEST_F(MemoryNetworkTest, a_copy_draws_its_own_delay_and_may_overtake_the_original) {
  network_.set_duplicate_rate(1.0);
  network_.set_delay(milliseconds(1), milliseconds(50));
  for (int i = 0; i < 200; ++i) send(1, kTwo, std::to_string(i));
  env_->advance(milliseconds(60));
  ASSERT_EQ(received(2).size(), 400U);
  // Some frame's two copies are not adjacent in arrival order: the copy
  // travelled on its own, not glued to the original.
  std::map<std::string, std::vector<std::size_t>> positions;
  for (std::size_t i = 0; i < received(2).size(); ++i) positions[received(2)[i]].push_back(i);
  bool apart = false;
  for (const auto& [frame, at] : positions) {
    ASSERT_EQ(at.size(), 2U) << frame;
    if (at[1] - at[0] > 1) apart = true;
  }
  EXPECT_TRUE(apart);
}

TEST_F(MemoryNetworkTest, a_lost_frame_is_not_duplicated) {
  network_.set_drop_rate(1.0);
  network_.set_duplicate_rate(1.0);
  for (int i = 0; i < 20; ++i) send(1, kTwo, "x");
  env_->run_until_idle();
  EXPECT_TRUE(received(2).empty());
  EXPECT_EQ(network_.duplicated(), 0U);
  EXPECT_EQ(network_.dropped(), 20U);
}

TEST_F(MemoryNetworkTest, frame_arrives_after_the_delay) {
  network_.set_delay(milliseconds(10), milliseconds(10));
  send(1, kTwo, "late");
  env_->run_until_idle();
  env_->advance(milliseconds(9));
  EXPECT_TRUE(received(2).empty());
  env_->advance(milliseconds(1));
  env_->run_until_idle();
  EXPECT_EQ(received(2), Frames{"late"});
}

TEST_F(MemoryNetworkTest, delays_are_drawn_within_the_range) {
  network_.set_delay(milliseconds(5), milliseconds(20));
  for (int i = 0; i < 200; ++i) send(1, kTwo, "x");
  env_->advance(milliseconds(5) - std::chrono::nanoseconds(1));
  EXPECT_TRUE(received(2).empty());
  env_->advance(milliseconds(10));
  const std::size_t early = received(2).size();
  env_->advance(milliseconds(5) + std::chrono::nanoseconds(1));
  env_->run_until_idle();
  EXPECT_GT(early, 0U);
  EXPECT_LT(early, 200U);
  EXPECT_EQ(received(2).size(), 200U);
}

TEST_F(MemoryNetworkTest, transport_that_is_not_started_drops_frames_addressed_to_it) {
  std::shared_ptr<Transport> four = network_.transport(ServerId(4));
  send(1, Server{ServerId(4), "", Suffrage::kVoter}, "nobody listens");
  env_->run_until_idle();
  EXPECT_EQ(network_.dropped(), 1U);
}

TEST_F(MemoryNetworkTest, transport_cannot_be_started_twice) {
  EXPECT_EQ(start(1).code(), StatusCode::kInvalidArgument);
}

TEST_F(MemoryNetworkTest, after_stop_returns_no_frame_is_delivered) {
  send(1, kTwo, "in flight");
  transport(2).stop();
  send(1, kTwo, "after stop");
  env_->run_until_idle();
  EXPECT_TRUE(received(2).empty());
  EXPECT_EQ(network_.dropped(), 2U);
  transport(2).stop();  // idempotent
}

// A restarted server is a new incarnation: frames sent to the old one are
// not delivered to it, frames sent after the restart are.
TEST_F(MemoryNetworkTest, restart_after_stop_receives_only_new_frames) {
  send(1, kTwo, "to the old incarnation");
  transport(2).stop();
  ASSERT_TRUE(start(2).is_ok());
  send(1, kTwo, "to the new one");
  env_->run_until_idle();
  EXPECT_EQ(received(2), Frames{"to the new one"});
}

TEST_F(MemoryNetworkTest, stop_from_inside_the_receiver_ends_delivery) {
  std::shared_ptr<Transport> four = network_.transport(ServerId(4));
  int calls = 0;
  ASSERT_TRUE(four->start([&calls, &four](const std::string&) {
                    ++calls;
                    four->stop();
                  })
                  .is_ok());
  const Server to_four{ServerId(4), "", Suffrage::kVoter};
  for (int i = 0; i < 3; ++i) send(1, to_four, "x");
  env_->run_until_idle();
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(network_.delivered(), 1U);
  EXPECT_EQ(network_.dropped(), 2U);
}

// Started with an executor (the runtime passes its raft loop), a transport
// gets its frames as tasks on it: no thread of the network's own.
TEST_F(MemoryNetworkTest, frames_are_delivered_as_tasks_on_the_executor_given_at_start) {
  std::shared_ptr<Transport> four = network_.transport(ServerId(4));
  auto loop = env_->make_executor("loop-of-4");
  bool in_loop_task = false;
  std::vector<bool> seen_in_loop;
  ASSERT_TRUE(four->start([&](const std::string&) { seen_in_loop.push_back(in_loop_task); },
                          std::make_shared<MarkingExecutor>(loop, in_loop_task))
                  .is_ok());
  const Server to_four{ServerId(4), "", Suffrage::kVoter};
  for (int i = 0; i < 3; ++i) send(1, to_four, "x");
  env_->run_until_idle();
  EXPECT_EQ(seen_in_loop, (std::vector<bool>{true, true, true}));
}

TEST_F(MemoryNetworkTest, each_destination_has_a_bounded_number_of_frames_in_flight) {
  constexpr std::size_t kBound = InMemoryNetwork::kMaxInflightFramesPerDestination;
  for (std::size_t i = 0; i < kBound + 5; ++i) send(1, kTwo, "x");
  send(1, kThree, "another destination is unaffected");
  EXPECT_EQ(network_.dropped(), 5U);
  env_->run_until_idle();
  EXPECT_EQ(received(2).size(), kBound);
  EXPECT_EQ(received(3).size(), 1U);
  // Delivered frames no longer count against the bound.
  send(1, kTwo, "room again");
  env_->run_until_idle();
  EXPECT_EQ(received(2).size(), kBound + 1);
}

TEST(MemoryNetworkLifetimeTest, network_destroyed_with_frames_in_flight_delivers_nothing) {
  auto env = std::make_shared<ManualEnv>(1);
  auto network = std::make_unique<InMemoryNetwork>(env);
  std::shared_ptr<Transport> one = network->transport(ServerId(1));
  std::shared_ptr<Transport> two = network->transport(ServerId(2));
  int calls = 0;
  ASSERT_TRUE(two->start([&calls](const std::string&) { ++calls; }).is_ok());
  one->send(kTwo, Lane::kControl, "in flight");
  network.reset();
  one->send(kTwo, Lane::kControl, "network gone");  // a no-op, not a crash
  env->run_until_idle();
  EXPECT_EQ(calls, 0);
}

TEST(MemoryNetworkDeterminismTest, same_seed_gives_the_same_deliveries) {
  auto run = [](std::uint64_t seed) {
    auto env = std::make_shared<ManualEnv>(seed);
    InMemoryNetwork network(env);
    std::vector<std::string> received;
    std::shared_ptr<Transport> one = network.transport(ServerId(1));
    std::shared_ptr<Transport> two = network.transport(ServerId(2));
    EXPECT_TRUE(
        two->start([&received](std::string f) { received.push_back(std::move(f)); }).is_ok());
    network.set_drop_rate(0.3);
    network.set_delay(milliseconds(1), milliseconds(50));
    for (int i = 0; i < 300; ++i) one->send(kTwo, Lane::kReplication, std::to_string(i));
    env->advance(milliseconds(100));
    two->stop();
    return received;
  };
  const std::vector<std::string> first = run(7);
  EXPECT_EQ(first, run(7));
  EXPECT_NE(first, run(8));
}

// ---- With threads: the receiver runs on the transport's own thread ---------

TEST(MemoryNetworkThreadTest, stop_waits_for_a_delivery_in_progress) {
  InMemoryNetwork network(make_thread_env());
  std::shared_ptr<Transport> one = network.transport(ServerId(1));
  std::shared_ptr<Transport> two = network.transport(ServerId(2));
  std::atomic<bool> entered{false};
  std::atomic<bool> inside{false};
  std::atomic<int> calls{0};
  ASSERT_TRUE(two->start([&](const std::string&) {
                   inside = true;
                   entered = true;
                   ++calls;
                   std::this_thread::sleep_for(milliseconds(50));
                   inside = false;
                 })
                  .is_ok());
  one->send(kTwo, Lane::kControl, "slow");
  while (!entered) std::this_thread::yield();
  two->stop();
  EXPECT_FALSE(inside) << "stop() returned while the receiver was still running";
  for (int i = 0; i < 10; ++i) one->send(kTwo, Lane::kControl, "after stop");
  std::this_thread::sleep_for(milliseconds(20));
  EXPECT_EQ(calls, 1);
}

TEST(MemoryNetworkThreadTest, stop_from_inside_the_receiver_does_not_deadlock) {
  InMemoryNetwork network(make_thread_env());
  std::shared_ptr<Transport> one = network.transport(ServerId(1));
  std::shared_ptr<Transport> two = network.transport(ServerId(2));
  std::atomic<int> calls{0};
  ASSERT_TRUE(two->start([&](const std::string&) {
                   ++calls;
                   two->stop();
                 })
                  .is_ok());
  for (int i = 0; i < 5; ++i) one->send(kTwo, Lane::kControl, "x");
  while (network.delivered() + network.dropped() < 5) std::this_thread::yield();
  EXPECT_EQ(calls, 1);
}

TEST(MemoryNetworkThreadTest, frames_from_many_threads_all_arrive) {
  InMemoryNetwork network(make_thread_env());
  std::shared_ptr<Transport> two = network.transport(ServerId(2));
  std::atomic<int> calls{0};
  ASSERT_TRUE(two->start([&](const std::string&) { ++calls; }).is_ok());
  std::vector<std::thread> senders;
  for (std::uint64_t id = 3; id < 7; ++id) {
    senders.emplace_back([&network, id] {
      std::shared_ptr<Transport> sender = network.transport(ServerId(id));
      for (int i = 0; i < 500; ++i) sender->send(kTwo, Lane::kReplication, "x");
    });
  }
  for (std::thread& sender : senders) sender.join();
  while (calls < 2000) std::this_thread::yield();
  two->stop();
  EXPECT_EQ(network.delivered(), 2000U);
  EXPECT_EQ(network.dropped(), 0U);
}

}  // namespace
}  // namespace keel
