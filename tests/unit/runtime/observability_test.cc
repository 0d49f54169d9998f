// What keel tells the user's own systems (ctest -L runtime): log lines
// through RaftDependencies::logger (keel/logger.h), each with the server's
// id and never on stderr when a logger is given, the stderr logger's line
// format, and the counters, gauges and histograms a server reports through
// RaftDependencies::metrics (keel/metrics.h).
#include <gtest/gtest.h>

#include "test_cluster.h"

namespace keel::testing {
namespace {

TEST(Logger, TheStderrLoggerWritesOneLineWithQuotedValuesAndDropsLowerLevels) {
  std::shared_ptr<Logger> logger = make_stderr_logger(LogLevel::kInfo);
  EXPECT_FALSE(logger->enabled(LogLevel::kDebug));
  EXPECT_TRUE(logger->enabled(LogLevel::kWarn));
  ::testing::internal::CaptureStderr();
  logger->log(LogLevel::kDebug, "not shown", {{"server", std::uint64_t{1}}});
  logger->log(LogLevel::kWarn, "skips a snapshot",
              {{"server", std::uint64_t{3}}, {"error", "Corruption: bad \"crc\""}, {"empty", ""}});
  const std::string out = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(
      out,
      "keel warn skips a snapshot server=3 error=\"Corruption: bad \\\"crc\\\"\" empty=\"\"\n");
}

TEST(Logger, AServersLinesGoToItsLoggerWithItsId) {
  auto env = make_thread_env();
  InMemoryNetwork network(env);
  RaftDependencies deps = solo_server_deps(env, network);
  auto logger = std::make_shared<RecordingLogger>();
  deps.logger = logger;
  auto raft = Raft::open(deps).value();
  ASSERT_TRUE(eventually([&] { return raft->state() == RaftState::kLeader; }));
  ASSERT_TRUE(raft->barrier(5s).get().is_ok());
  ::testing::internal::CaptureStderr();
  ASSERT_TRUE(raft->add_learner(ServerId{2}, "learner", Index{}, 5s).get().is_ok());
  raft.reset();
  const std::string on_stderr = ::testing::internal::GetCapturedStderr();
  EXPECT_TRUE(logger->logged("info starts a membership change server=1"));
  EXPECT_EQ(on_stderr.find("membership"), std::string::npos) << on_stderr;
}

TEST(Metrics, AServerReportsWritesAppliesElectionsSnapshotsAndWhereItStands) {
  auto env = make_thread_env();
  InMemoryNetwork network(env);
  RaftDependencies deps = solo_server_deps(env, network);
  auto metrics = std::make_shared<RecordingMetrics>();
  deps.metrics = metrics;
  auto raft = Raft::open(deps).value();
  ASSERT_TRUE(eventually([&] { return raft->state() == RaftState::kLeader; }));
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(raft->apply("set k" + std::to_string(i) + " v", 5s).get().is_ok());
  }
  ASSERT_TRUE(raft->snapshot(5s).get().is_ok());
  const std::string server = "{server=1}";
  EXPECT_GE(metrics->counter("keel_elections_total" + server), 1u);
  EXPECT_GE(metrics->counter("keel_leader_changes_total" + server), 1u);
  EXPECT_EQ(metrics->counter("keel_applied_commands_total" + server), 20u);
  EXPECT_GE(metrics->observations("keel_apply_seconds" + server), 1u);
  EXPECT_GE(metrics->counter("keel_log_entries_written_total" + server), 21u)
      << "the commands and the term-start entry (bootstrap wrote the configuration)";
  EXPECT_GE(metrics->observations("keel_log_write_seconds" + server), 1u);
  EXPECT_EQ(metrics->counter("keel_snapshots_total{server=1,kind=taken}"), 1u);
  EXPECT_EQ(metrics->observations("keel_snapshot_bytes" + server), 1u);
  EXPECT_EQ(metrics->negative_observations(), 0u);
  // Gauges come with the heartbeat tick.
  const Index last = raft->last_index();
  ASSERT_TRUE(eventually([&] {
    const std::optional<double> commit = metrics->gauge("keel_commit_index" + server);
    return commit && *commit >= static_cast<double>(last.value);
  }));
  EXPECT_EQ(metrics->gauge("keel_is_leader" + server), 1.0);
  EXPECT_GE(metrics->gauge("keel_term" + server).value_or(0), 1.0);
}

TEST(Metrics, ALeaderReportsEachFollowersLag) {
  auto metrics = std::make_shared<RecordingMetrics>();
  TestCluster cluster(3);
  cluster.set_metrics(metrics);
  cluster.start_all();
  const ServerId leader = cluster.wait_for_leader();
  ASSERT_FALSE(leader.is_zero());
  const ServerId behind = cluster.any_follower(leader);
  cluster.network().isolate(behind);
  for (int i = 0; i < 30; ++i) {
    ASSERT_TRUE(cluster.raft(leader).apply("set k" + std::to_string(i) + " v", 5s).get().is_ok());
  }
  auto lag_of_behind = [&](ServerId at) {
    return metrics->gauge("keel_replication_lag_entries{server=" + std::to_string(at.value) +
                          ",peer=" + std::to_string(behind.value) + "}");
  };
  EXPECT_TRUE(eventually([&] { return lag_of_behind(leader).value_or(0) >= 30; }))
      << lag_of_behind(leader).value_or(-1);
  cluster.network().heal();
  // Caught up: no lag, as seen by whoever leads then (slow sanitizer runs
  // may have elected another leader meanwhile).
  EXPECT_TRUE(eventually([&] {
    const ServerId now = cluster.wait_for_leader(1s);
    return !now.is_zero() && now != behind && lag_of_behind(now).value_or(-1) == 0;
  })) << "caught up: no lag";
}

TEST(Metrics, AServerThatStepsDownReportsNoLagForItsFormerFollowers) {
  auto metrics = std::make_shared<RecordingMetrics>();
  // A long election timeout: the cut-off leader reports its followers' lag
  // for many heartbeat intervals before check-quorum deposes it.
  TestCluster cluster(3, [](Config& config) {
    config.election_timeout = 1000ms;
    config.lease_timeout = 500ms;
  });
  cluster.set_metrics(metrics);
  cluster.start_all();
  const ServerId leader = cluster.wait_for_leader();
  ASSERT_FALSE(leader.is_zero());
  const ServerId follower = cluster.any_follower(leader);
  const std::string series = "keel_replication_lag_entries{server=" + std::to_string(leader.value) +
                             ",peer=" + std::to_string(follower.value) + "}";
  ASSERT_TRUE(eventually([&] { return metrics->gauge(series).has_value(); }));
  // Cut off, the leader appends what cannot reach anyone: its followers lag.
  cluster.network().isolate(leader);
  std::vector<Future<ApplyResult>> lost;
  for (int i = 0; i < 5; ++i) lost.push_back(cluster.raft(leader).apply("set lost x", 5s));
  ASSERT_TRUE(eventually([&] { return metrics->gauge(series).value_or(0) >= 5; }));
  // Then check-quorum deposes it, and it reports no lag any more.
  EXPECT_TRUE(eventually([&] {
    return cluster.raft(leader).state() != RaftState::kLeader &&
           metrics->gauge("keel_is_leader{server=" + std::to_string(leader.value) + "}") == 0.0 &&
           metrics->gauge(series) == 0.0;
  }));
}

}  // namespace
}  // namespace keel::testing
