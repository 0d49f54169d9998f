// keel::Raft on in-process clusters: replication, leader changes, the read
// paths, deadlines and shutdown. Each test states the promise it checks.
#include <atomic>
#include <thread>

#include <gtest/gtest.h>

#include "core/codec.h"
#include "test_cluster.h"

namespace keel::testing {
namespace {

std::string set(int i) { return "set k" + std::to_string(i) + " v" + std::to_string(i); }

void apply_all(Raft& leader, int count, int first = 0) {
  for (int i = first; i < first + count; ++i) {
    Result<ApplyResult> result = leader.apply(set(i), 5s).get();
    ASSERT_TRUE(result.is_ok()) << result.status();
  }
}

TEST(RaftCluster, LeaderAppliesCommandsAndEveryServerReachesTheSameState) {
  TestCluster cluster(3);
  cluster.start_all();
  const ServerId leader = cluster.wait_for_leader();
  ASSERT_FALSE(leader.is_zero());
  Result<ApplyResult> first = cluster.raft(leader).apply("set a 1", 5s).get();
  ASSERT_TRUE(first.is_ok()) << first.status();
  EXPECT_EQ(first->response, "1");
  EXPECT_GE(first->index, Index{3});  // after the bootstrap entry and the term-start entry
  apply_all(cluster.raft(leader), 9);
  for (ServerId id : cluster.ids()) {
    EXPECT_TRUE(eventually([&] { return cluster.fsm(id).applied() == 10; })) << id;
    EXPECT_EQ(cluster.fsm(id).get("a"), "1");
    EXPECT_EQ(cluster.fsm(id).get("k8"), "v8");
  }
}

TEST(RaftCluster, ApplyOnAFollowerIsRefusedWithTheLeaderAsHint) {
  TestCluster cluster(3);
  cluster.start_all();
  const ServerId leader = cluster.wait_for_leader();
  const ServerId follower = cluster.any_follower(leader);
  ASSERT_TRUE(eventually([&] { return cluster.raft(follower).leader().id == leader; }));
  Result<ApplyResult> result = cluster.raft(follower).apply("set a 1", 5s).get();
  ASSERT_EQ(result.status().code(), StatusCode::kNotLeader);
  EXPECT_EQ(result.status().leader_hint(), leader);
  EXPECT_EQ(result.status().leader_address_hint(), "server-" + std::to_string(leader.value));
}

TEST(RaftCluster, NewLeaderAfterLeaderFailureKeepsEveryCommittedEntry) {
  TestCluster cluster(5);
  cluster.start_all();
  const ServerId old_leader = cluster.wait_for_leader();
  apply_all(cluster.raft(old_leader), 20);
  cluster.stop(old_leader);
  const ServerId new_leader = cluster.wait_for_leader();
  ASSERT_FALSE(new_leader.is_zero());
  ASSERT_NE(new_leader, old_leader);
  apply_all(cluster.raft(new_leader), 5, 20);
  for (ServerId id : cluster.ids()) {
    if (id == old_leader) continue;
    EXPECT_TRUE(eventually([&] { return cluster.fsm(id).applied() == 25; })) << id;
    EXPECT_EQ(cluster.fsm(id).get("k0"), "v0");
  }
}

TEST(RaftCluster, AFollowerFarBehindCatchesUp) {
  TestCluster cluster(3);
  cluster.start_all();
  const ServerId leader = cluster.wait_for_leader();
  const ServerId lagging = cluster.any_follower(leader);
  cluster.network().isolate(lagging);
  std::vector<Future<ApplyResult>> futures;
  for (int i = 0; i < 300; ++i) futures.push_back(cluster.raft(leader).apply(set(i), 10s));
  for (auto& future : futures) ASSERT_TRUE(future.get().is_ok()) << future.get().status();
  EXPECT_EQ(cluster.fsm(lagging).applied(), 0U);
  cluster.network().heal();
  EXPECT_TRUE(eventually([&] { return cluster.fsm(lagging).applied() == 300; }));
  EXPECT_EQ(cluster.fsm(lagging).get("k299"), "v299");
}

// The seed case (DESIGN §1): after a restart every server holds committed
// entries it has not applied. Reads, barriers and "leader ready" must all
// wait until the local FSM has caught up, or they would serve stale data.
TEST(RaftCluster, AfterRestartReadsBarrierAndReadyWaitForCommittedEntriesToApply) {
  TestCluster cluster(3);
  cluster.start_all();
  const ServerId first_leader = cluster.wait_for_leader();
  apply_all(cluster.raft(first_leader), 50);
  for (ServerId id : cluster.ids()) {
    ASSERT_TRUE(eventually([&] { return cluster.raft(id).commit_index() >= Index{52}; }))
        << cluster.describe();
  }
  for (ServerId id : cluster.ids()) cluster.stop(id);
  cluster.start_all(/*gate_closed=*/true);
  std::atomic<long> applied_when_ready{-1};
  const ServerId leader = cluster.wait_for_leader();
  ASSERT_FALSE(leader.is_zero());
  ASSERT_TRUE(cluster.raft(leader)
                  .subscribe([&](const Observation& observation) {
                    if (observation.kind == Observation::Kind::kLeaderReady) {
                      applied_when_ready = static_cast<long>(cluster.fsm(leader).applied());
                    }
                  })
                  .is_ok());
  Future<Index> read = cluster.raft(leader).read(Consistency::kLinearizable, 20s);
  Future<Index> barrier = cluster.raft(leader).barrier(20s);
  // Nothing may resolve while the FSM is held back, though everything is committed.
  EXPECT_FALSE(read.wait_for(300ms));
  EXPECT_FALSE(barrier.is_ready());
  EXPECT_EQ(applied_when_ready.load(), -1);
  // What the FSM held at the moment the read resolved (then() runs then).
  std::atomic<long> applied_at_read{-1};
  read.then([&](const Result<Index>&) {
    applied_at_read = static_cast<long>(cluster.fsm(leader).applied());
  });
  for (ServerId id : cluster.ids()) cluster.fsm(id).open_gate();
  ASSERT_TRUE(read.get().is_ok()) << read.get().status();
  ASSERT_TRUE(eventually([&] { return applied_at_read.load() != -1; }));
  EXPECT_EQ(applied_at_read.load(), 50);
  ASSERT_TRUE(barrier.get().is_ok()) << barrier.get().status();
  EXPECT_EQ(cluster.fsm(leader).applied(), 50U);
  EXPECT_TRUE(eventually([&] { return applied_when_ready.load() != -1; }));
  EXPECT_EQ(applied_when_ready.load(), 50);
}

TEST(RaftCluster, AnApplicationThatServesReadsOnReadyNeverSeesStaleData) {
  TestCluster cluster(3);
  cluster.start_all();
  ServerId leader = cluster.wait_for_leader();
  apply_all(cluster.raft(leader), 30);
  std::atomic<int> ready_events{0};
  std::atomic<bool> stale{false};
  for (ServerId id : cluster.ids()) {
    ASSERT_TRUE(cluster.raft(id)
                    .subscribe([&, id](const Observation& observation) {
                      if (observation.kind != Observation::Kind::kLeaderReady) return;
                      if (cluster.fsm(id).get("k29") != "v29") stale = true;
                      ++ready_events;
                    })
                    .is_ok());
  }
  cluster.stop(leader);
  leader = cluster.wait_for_leader();
  ASSERT_FALSE(leader.is_zero());
  EXPECT_TRUE(eventually([&] { return ready_events.load() >= 1; }));
  EXPECT_FALSE(stale.load());
}

TEST(RaftCluster, LeaderIsolatedInAMinorityCannotConfirmReads) {
  TestCluster cluster(3);
  cluster.start_all();
  const ServerId leader = cluster.wait_for_leader();
  apply_all(cluster.raft(leader), 1);
  // The lease starts with the first heartbeat round a quorum acknowledges.
  ASSERT_TRUE(
      eventually([&] { return cluster.raft(leader).read(Consistency::kLease, 5s).get().is_ok(); }));
  cluster.network().isolate(leader);
  Result<Index> verified = cluster.raft(leader).verify_leader(400ms).get();
  EXPECT_FALSE(verified.is_ok());
  Result<Index> read = cluster.raft(leader).read(Consistency::kLinearizable, 400ms).get();
  EXPECT_FALSE(read.is_ok());
  // By now more than the lease has passed without a quorum: lease reads stop.
  Result<Index> lease = cluster.raft(leader).read(Consistency::kLease, 400ms).get();
  EXPECT_FALSE(lease.is_ok());
  // A stale read is always served locally.
  EXPECT_TRUE(cluster.raft(leader).read(Consistency::kStale, 1s).get().is_ok());
}

TEST(RaftCluster, ALinearizableReadOnAFollowerSeesWritesCommittedBeforeIt) {
  TestCluster cluster(3);
  cluster.start_all();
  const ServerId leader = cluster.wait_for_leader();
  const ServerId follower = cluster.any_follower(leader);
  ASSERT_TRUE(eventually([&] { return cluster.raft(follower).leader().id == leader; }));
  for (int round = 0; round < 20; ++round) {
    ASSERT_TRUE(cluster.raft(leader).apply("set x " + std::to_string(round), 5s).get().is_ok());
    Result<Index> read = cluster.raft(follower).read(Consistency::kLinearizable, 5s).get();
    ASSERT_TRUE(read.is_ok()) << read.status();
    EXPECT_EQ(cluster.fsm(follower).get("x"), std::to_string(round));
  }
}

// Without a quorum an apply resolves at its deadline as OutcomeUnknown, and
// the command may still commit later: here the followers have the entry and
// one of them commits it after the leader is gone.
TEST(RaftCluster, DeadlineWithoutQuorumIsOutcomeUnknownAndTheEntryMayLaterCommit) {
  TestCluster cluster(3, [](Config& config) { config.lease_timeout = 0ms; });
  cluster.start_all();
  const ServerId leader = cluster.wait_for_leader();
  apply_all(cluster.raft(leader), 1);
  for (ServerId id : cluster.ids()) {
    if (id != leader) cluster.network().cut(id, leader);  // acks never arrive
  }
  Result<ApplyResult> result = cluster.raft(leader).apply("set late yes", 100ms).get();
  EXPECT_EQ(result.status().code(), StatusCode::kOutcomeUnknown) << result.status();
  cluster.stop(leader);
  cluster.network().heal();
  const ServerId next = cluster.wait_for_leader();
  ASSERT_FALSE(next.is_zero());
  EXPECT_TRUE(eventually([&] { return cluster.fsm(next).get("late") == "yes"; }));
}

TEST(RaftCluster, ShutdownResolvesEveryPendingFuture) {
  TestCluster cluster(3);
  cluster.start_all();
  const ServerId leader = cluster.wait_for_leader();
  apply_all(cluster.raft(leader), 1);
  for (ServerId id : cluster.ids()) {
    if (id != leader) cluster.network().cut(id, leader);
  }
  std::vector<Future<ApplyResult>> applies;
  for (int i = 0; i < 20; ++i) applies.push_back(cluster.raft(leader).apply(set(i), 60s));
  Future<Index> barrier = cluster.raft(leader).barrier(60s);
  Future<Index> read = cluster.raft(leader).read(Consistency::kLinearizable, 60s);
  cluster.raft(leader).shutdown();
  for (auto& future : applies) {
    ASSERT_TRUE(future.wait_for(5s));
    EXPECT_EQ(future.get().status().code(), StatusCode::kOutcomeUnknown);
  }
  ASSERT_TRUE(barrier.wait_for(5s));
  EXPECT_FALSE(barrier.get().is_ok());
  ASSERT_TRUE(read.wait_for(5s));
  EXPECT_EQ(read.get().status().code(), StatusCode::kShutdown);
  EXPECT_EQ(cluster.raft(leader).state(), RaftState::kShutdown);
  EXPECT_EQ(cluster.raft(leader).apply("set a 1", 1s).get().status().code(), StatusCode::kShutdown);
}

TEST(RaftCluster, ShutdownFromManyThreadsAtOnceReturnsEverywhere) {
  TestCluster cluster(3);
  cluster.start_all();
  const ServerId leader = cluster.wait_for_leader();
  std::vector<std::thread> threads;
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back(
        [&, i] { cluster.raft(cluster.ids()[static_cast<std::size_t>(i) % 3]).shutdown(); });
  }
  for (auto& thread : threads) thread.join();
  for (ServerId id : cluster.ids()) EXPECT_EQ(cluster.raft(id).state(), RaftState::kShutdown);
  EXPECT_EQ(cluster.raft(leader).barrier(1s).get().status().code(), StatusCode::kShutdown);
}

// Leadership notifications that block the library deadlock applications that
// call Barrier from the handler. keel's observers have a thread of their own.
TEST(RaftCluster, AnObserverThatCallsBarrierFromItsCallbackDoesNotDeadlock) {
  TestCluster cluster(3);
  std::atomic<int> barriers_ok{0};
  cluster.start_all();
  for (ServerId id : cluster.ids()) {
    ASSERT_TRUE(cluster.raft(id)
                    .subscribe([&cluster, &barriers_ok, id](const Observation& observation) {
                      if (observation.kind != Observation::Kind::kLeaderReady) return;
                      if (cluster.raft(id).barrier(5s).get().is_ok()) ++barriers_ok;
                    })
                    .is_ok());
  }
  const ServerId leader = cluster.wait_for_leader();
  EXPECT_TRUE(eventually([&] { return barriers_ok.load() == 1; }));
  // The server keeps working meanwhile and afterwards.
  apply_all(cluster.raft(leader), 3);
}

TEST(RaftCluster, AnObserverMayShutTheServerDownFromItsCallback) {
  TestCluster cluster(3);
  std::atomic<bool> called{false};
  cluster.start_all();
  for (ServerId id : cluster.ids()) {
    ASSERT_TRUE(cluster.raft(id)
                    .subscribe([&cluster, &called, id](const Observation& observation) {
                      if (observation.kind != Observation::Kind::kLeaderReady) return;
                      cluster.raft(id).shutdown();
                      called = true;
                    })
                    .is_ok());
  }
  EXPECT_TRUE(eventually([&] { return called.load(); }));
  EXPECT_TRUE(eventually([&] {
    for (ServerId id : cluster.ids()) {
      if (cluster.raft(id).state() == RaftState::kShutdown) return true;
    }
    return false;
  }));
}

TEST(RaftCluster, ManyProposalsAreGroupCommittedIntoFewerLogWrites) {
  TestCluster cluster(3);
  cluster.start_all();
  const ServerId leader = cluster.wait_for_leader();
  const std::uint64_t writes_before = cluster.raft(leader).stats().log_writes;
  std::vector<std::string> commands;
  for (int i = 0; i < 500; ++i) commands.push_back(set(i));
  auto futures = cluster.raft(leader).apply_batch(std::move(commands), 10s);
  for (auto& future : futures) ASSERT_TRUE(future.get().is_ok());
  const std::uint64_t writes = cluster.raft(leader).stats().log_writes - writes_before;
  EXPECT_LT(writes, 50U) << "500 proposals took " << writes << " log writes";
}

TEST(RaftCluster, AFailedLogWriteStopsTheServerAndResolvesItsFutures) {
  TestCluster cluster(3);
  cluster.start_all();
  const ServerId leader = cluster.wait_for_leader();
  apply_all(cluster.raft(leader), 1);
  cluster.log_store(leader).fail_appends();
  Result<ApplyResult> result = cluster.raft(leader).apply("set a 1", 5s).get();
  EXPECT_FALSE(result.is_ok());
  EXPECT_TRUE(eventually([&] { return cluster.raft(leader).state() == RaftState::kShutdown; }));
  // The others go on without it.
  EXPECT_TRUE(eventually([&] {
    for (ServerId id : cluster.ids()) {
      if (id != leader && cluster.raft(id).state() == RaftState::kLeader) return true;
    }
    return false;
  }));
}

TEST(RaftOpen, StoresThatWereNeverBootstrappedWaitToBeAddedAndNeverCampaign) {
  auto env = make_thread_env();
  InMemoryNetwork network(env);
  Config config;
  config.id = ServerId{1};
  config.heartbeat_interval = std::chrono::milliseconds(10);
  config.election_timeout = std::chrono::milliseconds(50);
  config.lease_timeout = std::chrono::milliseconds(20);
  RaftDependencies deps{config,
                        std::make_shared<KvFsm>(),
                        std::make_shared<MemoryLogStore>(),
                        std::make_shared<MemoryStableStore>(),
                        std::make_shared<MemorySnapshotStore>(),
                        network.transport(ServerId{1}),
                        env};
  Result<std::unique_ptr<Raft>> raft = Raft::open(std::move(deps));
  ASSERT_TRUE(raft.is_ok()) << raft.status().to_string();
  EXPECT_TRUE((*raft)->configuration().latest.empty());
  // Ten election timeouts: a member would have campaigned (raised its term).
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ((*raft)->stats().term, Term{});
  EXPECT_EQ((*raft)->state(), RaftState::kFollower);
  EXPECT_EQ((*raft)->apply("set a 1", std::chrono::seconds(1)).get().status().code(),
            StatusCode::kNotLeader);
}

TEST(RaftOpen, RefusesALogWithAnOlderConfigurationEntryThatDoesNotDecode) {
  auto env = make_thread_env();
  InMemoryNetwork network(env);
  auto log = std::make_shared<MemoryLogStore>();
  auto stable = std::make_shared<MemoryStableStore>();
  Configuration configuration{{Server{ServerId{1}, "a", Suffrage::kVoter}}};
  ASSERT_TRUE(bootstrap_cluster(*log, *stable, configuration).is_ok());
  // Entry 2 is damaged; entry 3, the newest configuration, is fine.
  const std::vector<LogEntry> more{
      LogEntry{Term{1}, Index{2}, EntryType::kConfiguration, std::string("\x01\x05junk", 6)},
      LogEntry{Term{1}, Index{3}, EntryType::kConfiguration,
               core::encode_configuration(configuration)}};
  ASSERT_TRUE(log->append(more).is_ok());
  Config config;
  config.id = ServerId{1};
  RaftDependencies deps{config,
                        std::make_shared<KvFsm>(),
                        log,
                        stable,
                        std::make_shared<MemorySnapshotStore>(),
                        network.transport(ServerId{1}),
                        env};
  Result<std::unique_ptr<Raft>> raft = Raft::open(std::move(deps));
  ASSERT_FALSE(raft.is_ok());
  EXPECT_EQ(raft.status().code(), StatusCode::kCorruption);
  EXPECT_NE(raft.status().message().find("log entry at index 2"), std::string::npos)
      << raft.status().to_string();
}

TEST(RaftOpen, BootstrapRefusesStoresWithStateAndBadConfigurations) {
  MemoryLogStore log;
  MemoryStableStore stable;
  Configuration configuration{{Server{ServerId{1}, "a", Suffrage::kVoter}}};
  EXPECT_FALSE(*has_existing_state(log, stable));
  ASSERT_TRUE(bootstrap_cluster(log, stable, configuration).is_ok());
  EXPECT_TRUE(*has_existing_state(log, stable));
  EXPECT_EQ(bootstrap_cluster(log, stable, configuration).code(), StatusCode::kInvalidArgument);
  MemoryLogStore log2;
  MemoryStableStore stable2;
  Configuration twice{
      {Server{ServerId{1}, "a", Suffrage::kVoter}, Server{ServerId{1}, "b", Suffrage::kVoter}}};
  EXPECT_EQ(bootstrap_cluster(log2, stable2, twice).code(), StatusCode::kInvalidArgument);
  Configuration no_voters{{Server{ServerId{1}, "a", Suffrage::kLearner}}};
  EXPECT_EQ(bootstrap_cluster(log2, stable2, no_voters).code(), StatusCode::kInvalidArgument);
}

TEST(RaftConfig, ValidateRejectsUnsafeSettings) {
  Config config;
  config.id = ServerId{1};
  EXPECT_TRUE(config.validate().is_ok());
  Config no_id = config;
  no_id.id = kNoServer;
  EXPECT_FALSE(no_id.validate().is_ok());
  Config short_election = config;
  short_election.election_timeout = 2 * config.heartbeat_interval;
  EXPECT_FALSE(short_election.validate().is_ok());
  Config long_lease = config;
  long_lease.lease_timeout = config.election_timeout;
  EXPECT_FALSE(long_lease.validate().is_ok());
  Config lease_without_check_quorum = config;
  lease_without_check_quorum.check_quorum = false;
  EXPECT_FALSE(lease_without_check_quorum.validate().is_ok());
  Config zero_bound = config;
  zero_bound.max_pending_reads = 0;
  EXPECT_FALSE(zero_bound.validate().is_ok());
}

}  // namespace
}  // namespace keel::testing
