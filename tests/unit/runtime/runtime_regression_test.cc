// Regression tests for runtime defects found in review. Each names the
// promise that was broken and fails on the code that broke it.
#include <atomic>
#include <condition_variable>
#include <mutex>

#include <gtest/gtest.h>

#include "test_cluster.h"

namespace keel::testing {
namespace {

// A transport whose send() can be made to block the raft loop that calls it,
// standing in for a stalled process (a long GC pause, a stopped VM).
class StallableTransport final : public Transport {
 public:
  explicit StallableTransport(std::shared_ptr<Transport> inner) : inner_(std::move(inner)) {}
  Status start(Receiver receiver, std::shared_ptr<Executor> deliver_on) override {
    return inner_->start(std::move(receiver), std::move(deliver_on));
  }
  void stop() override {
    release();
    inner_->stop();
  }
  void send(const Server& to, Lane lane, std::string frame) override {
    {
      std::unique_lock lock(mutex_);
      if (stall_) {
        stalled_ = true;
        stalled_cv_.notify_all();
        cv_.wait(lock, [&] { return !stall_; });
      }
    }
    inner_->send(to, lane, std::move(frame));
  }
  void stall() {
    std::lock_guard lock(mutex_);
    stall_ = true;
  }
  bool wait_until_stalled() {
    std::unique_lock lock(mutex_);
    return stalled_cv_.wait_for(lock, 10s, [&] { return stalled_; });
  }
  void release() {
    {
      std::lock_guard lock(mutex_);
      stall_ = false;
    }
    cv_.notify_all();
  }

 private:
  std::shared_ptr<Transport> inner_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::condition_variable stalled_cv_;
  bool stall_ = false;
  bool stalled_ = false;
};

// A lease measured in loop ticks outlived its real duration when the loop
// stalled: ticks missed during the stall were never made up, and the old
// leader served a lease read after a new leader had committed a write.
TEST(RuntimeRegression, ALeaseReadAfterALoopStallNeverReturnsStaleData) {
  TestCluster cluster(3);
  std::map<ServerId, std::shared_ptr<StallableTransport>> transports;
  cluster.wrap_transport = [&](ServerId id, std::shared_ptr<Transport> inner) {
    auto wrapped = std::make_shared<StallableTransport>(std::move(inner));
    transports[id] = wrapped;
    return wrapped;
  };
  cluster.start_all();
  const ServerId old_leader = cluster.wait_for_leader();
  ASSERT_TRUE(cluster.raft(old_leader).apply("set x 1", 5s).get().is_ok());
  ASSERT_TRUE(eventually(
      [&] { return cluster.raft(old_leader).read(Consistency::kLease, 5s).get().is_ok(); }));
  transports[old_leader]->stall();
  ASSERT_TRUE(transports[old_leader]->wait_until_stalled());
  cluster.network().isolate(old_leader);
  ServerId new_leader;
  ASSERT_TRUE(eventually([&] {
    for (ServerId id : cluster.ids()) {
      if (id != old_leader && cluster.raft(id).state() == RaftState::kLeader) new_leader = id;
    }
    return !new_leader.is_zero();
  }));
  ASSERT_TRUE(cluster.raft(new_leader).apply("set x 2", 5s).get().is_ok());
  transports[old_leader]->release();
  Result<Index> lease = cluster.raft(old_leader).read(Consistency::kLease, 5s).get();
  if (lease.is_ok()) {
    EXPECT_EQ(cluster.fsm(old_leader).get("x"), "2") << "lease read served stale data";
  }
  EXPECT_FALSE(lease.is_ok());
}

// The deadline of a linearizable read must also cover waiting for the FSM.
TEST(RuntimeRegression, AReadDeadlineCoversWaitingForTheFsmToCatchUp) {
  TestCluster cluster(3);
  cluster.start_all();
  const ServerId leader = cluster.wait_for_leader();
  ASSERT_TRUE(cluster.raft(leader).apply("set a 1", 5s).get().is_ok());
  cluster.fsm(leader).close_gate();
  Future<ApplyResult> blocked = cluster.raft(leader).apply("set a 2", 30s);
  // Committed (it reached the applier) but not applied: the FSM is stuck in it.
  ASSERT_TRUE(eventually([&] { return cluster.fsm(leader).blocked_at_gate(); }));
  Future<Index> read = cluster.raft(leader).read(Consistency::kLinearizable, 200ms);
  ASSERT_TRUE(read.wait_for(5s)) << "the read outlived its deadline";
  EXPECT_EQ(read.get().status().code(), StatusCode::kTimeout);
  cluster.fsm(leader).open_gate();
  EXPECT_TRUE(blocked.get().is_ok());
}

// Reads share one timer, set for the earliest deadline (a timer per read
// kept every read's closure in the loop for its whole timeout: 2 million of
// them, 90 MB, at 200,000 lease reads/s with 10 s timeouts). A read given a
// shorter timeout after one with a longer must still expire on time, and
// the longer one must not.
TEST(RuntimeRegression, AReadWithAnEarlierDeadlineExpiresOnTimeBehindALaterOne) {
  TestCluster cluster(3);
  cluster.start_all();
  const ServerId leader = cluster.wait_for_leader();
  ASSERT_TRUE(cluster.raft(leader).apply("set a 1", 5s).get().is_ok());
  cluster.fsm(leader).close_gate();
  Future<ApplyResult> blocked = cluster.raft(leader).apply("set a 2", 60s);
  ASSERT_TRUE(eventually([&] { return cluster.fsm(leader).blocked_at_gate(); }));
  Future<Index> patient = cluster.raft(leader).read(Consistency::kLinearizable, 60s);
  Future<Index> hasty = cluster.raft(leader).read(Consistency::kLinearizable, 200ms);
  ASSERT_TRUE(hasty.wait_for(5s)) << "the later, shorter read outlived its deadline";
  EXPECT_EQ(hasty.get().status().code(), StatusCode::kTimeout);
  EXPECT_FALSE(patient.wait_for(300ms)) << "the longer read expired with the shorter one";
  cluster.fsm(leader).open_gate();
  EXPECT_TRUE(blocked.get().is_ok());
  ASSERT_TRUE(patient.wait_for(5s));
  EXPECT_TRUE(patient.get().is_ok());
  // stats() is published after the loop's step that resolved the read.
  EXPECT_TRUE(eventually([&] { return cluster.raft(leader).stats().pending_reads == 0; }));
}

// A read forwarded to a leader that vanished must be asked again of the
// next leader, not wait for its deadline.
TEST(RuntimeRegression, AForwardedReadIsAskedAgainWhenTheLeaderChanges) {
  TestCluster cluster(3);
  cluster.start_all();
  const ServerId old_leader = cluster.wait_for_leader();
  ASSERT_TRUE(cluster.raft(old_leader).apply("set a 1", 5s).get().is_ok());
  const ServerId follower = cluster.any_follower(old_leader);
  ASSERT_TRUE(eventually([&] { return cluster.raft(follower).leader().id == old_leader; }));
  cluster.network().isolate(old_leader);
  // The follower still forwards to the old leader: that request is lost.
  Result<Index> read = cluster.raft(follower).read(Consistency::kLinearizable, 8s).get();
  EXPECT_TRUE(read.is_ok()) << read.status();
}

// After a failed log write, calls already queued behind it must still be
// resolved (Future's promise: every future resolves).
TEST(RuntimeRegression, AfterAFailedWriteEveryQueuedCallIsResolved) {
  TestCluster cluster(3);
  cluster.start_all();
  const ServerId leader = cluster.wait_for_leader();
  ASSERT_TRUE(cluster.raft(leader).apply("set a 1", 5s).get().is_ok());
  cluster.log_store(leader).fail_appends();
  std::vector<Future<ApplyResult>> applies;
  std::vector<Future<Index>> reads;
  for (int i = 0; i < 5000; ++i) {
    applies.push_back(cluster.raft(leader).apply("set b " + std::to_string(i), 60s));
    if (i % 4 == 0) reads.push_back(cluster.raft(leader).read(Consistency::kStale, 60s));
  }
  for (auto& future : applies) ASSERT_TRUE(future.wait_for(10s));
  for (auto& future : reads) ASSERT_TRUE(future.wait_for(10s));
  EXPECT_TRUE(eventually([&] { return cluster.raft(leader).state() == RaftState::kShutdown; }));
}

TEST(RuntimeRegression, MalformedFramesAreDroppedAndCountedAndChangeNothing) {
  TestCluster cluster(3);
  cluster.start_all();
  const ServerId leader = cluster.wait_for_leader();
  ASSERT_TRUE(cluster.raft(leader).apply("set a 1", 5s).get().is_ok());
  const Term term = cluster.raft(leader).term();
  std::shared_ptr<Transport> stranger = cluster.network().transport(ServerId{99});
  const Server target{leader, "server-" + std::to_string(leader.value), Suffrage::kVoter};
  stranger->send(target, Lane::kControl, "not a keel frame");
  stranger->send(target, Lane::kControl, std::string("\x01\xff\xff\xff\xff\xff", 6));
  stranger->send(target, Lane::kReplication, std::string(100, '\0'));
  EXPECT_TRUE(eventually([&] { return cluster.raft(leader).stats().frames_rejected >= 3; }));
  EXPECT_EQ(cluster.raft(leader).state(), RaftState::kLeader);
  EXPECT_EQ(cluster.raft(leader).term(), term);
  ASSERT_TRUE(cluster.raft(leader).apply("set a 2", 5s).get().is_ok());
}

TEST(RuntimeRegression, ObserversGivenAtOpenSeeTheFirstLeaderReady) {
  auto env = make_thread_env();
  InMemoryNetwork network(env);
  RaftDependencies deps = solo_server_deps(env, network);
  deps.config.heartbeat_interval = 20ms;
  deps.config.election_timeout = 100ms;
  deps.config.lease_timeout = 50ms;
  Promise<Term> ready;
  deps.observers.push_back([ready](const Observation& observation) {
    if (observation.kind == Observation::Kind::kLeaderReady) ready.resolve(observation.term);
  });
  auto raft = Raft::open(std::move(deps));
  ASSERT_TRUE(raft.is_ok()) << raft.status();
  ASSERT_TRUE(ready.future().wait_for(10s));
  const Term term = *ready.future().get();
  EXPECT_TRUE(eventually([&] { return (*raft)->stats().ready_term == term; }));
}

// An Env that forwards to another, as the simulator's per-server views of
// one ManualEnv do.
class ForwardingEnv final : public Env {
 public:
  explicit ForwardingEnv(std::shared_ptr<Env> inner) : inner_(std::move(inner)) {}
  Duration now() const override { return inner_->now(); }
  std::shared_ptr<Executor> make_executor(const std::string& name) override {
    return inner_->make_executor(name);
  }
  std::uint64_t random_seed() override { return inner_->random_seed(); }
  bool driven_by_caller() const override { return inner_->driven_by_caller(); }

 private:
  std::shared_ptr<Env> inner_;
};

// shutdown() waited for the loop to stop unless the Env *was* a ManualEnv
// (a dynamic_cast); on an Env wrapping one, nothing runs the loop while the
// only thread waits, so shutdown() -- and ~Raft() -- hung forever.
TEST(RuntimeRegression, ShutdownOnAnEnvWrappingAManualEnvReturnsWithoutWaiting) {
  auto manual = std::make_shared<ManualEnv>(7);
  auto env = std::make_shared<ForwardingEnv>(manual);
  InMemoryNetwork network(manual);
  RaftDependencies deps = solo_server_deps(env, network);
  auto raft = Raft::open(std::move(deps));
  ASSERT_TRUE(raft.is_ok()) << raft.status();
  manual->advance(3s);
  auto finished = std::make_shared<std::atomic<bool>>(false);
  std::shared_ptr<Raft> shared(std::move(raft).value());
  // On another thread, so that the bug fails the test instead of hanging it.
  std::thread shutter([shared, finished] {
    shared->shutdown();
    finished->store(true);
  });
  const bool returned = eventually([&] { return finished->load(); }, 5s);
  if (!returned) {
    shutter.detach();  // stuck for good; the process exit ends it
    FAIL() << "shutdown() waited for a loop that only the caller can run";
  }
  shutter.join();
  manual->run_until_idle();
  EXPECT_EQ(shared->state(), RaftState::kShutdown);
}

}  // namespace
}  // namespace keel::testing
