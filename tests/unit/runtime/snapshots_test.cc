// Snapshots in keel::Raft (ctest -L snapshot): taken automatically and on
// demand, the log cut after them, a restart that restores the newest one
// (skipping a damaged one) and reads only the log after it, a follower far
// behind caught up by a snapshot under load, the snapshots the store keeps
// (Config::snapshot_retain), and the log of a cluster that applies a million
// commands staying bounded.
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>

#include "keel/file_stores.h"
#include "test_cluster.h"

namespace keel::testing {
namespace {

std::string set(std::uint64_t i) { return "set k" + std::to_string(i) + " v" + std::to_string(i); }

// Applies `count` commands in batches (one future each), failing the test on
// the first error. With `keys`, command i sets key i % keys (a small state).
void apply_many(Raft& leader, std::uint64_t count, std::uint64_t first = 0,
                std::uint64_t batch = 500, std::uint64_t keys = 0) {
  for (std::uint64_t done = 0; done < count;) {
    const std::uint64_t n = std::min(batch, count - done);
    std::vector<std::string> commands;
    for (std::uint64_t i = 0; i < n; ++i) {
      const std::uint64_t key = first + done + i;
      commands.push_back(set(keys == 0 ? key : key % keys));
    }
    std::vector<Future<ApplyResult>> futures = leader.apply_batch(std::move(commands), 30s);
    for (auto& future : futures) {
      Result<ApplyResult> result = future.get();
      ASSERT_TRUE(result.is_ok()) << result.status();
    }
    done += n;
  }
}

void small_snapshots(Config& config) {
  config.snapshot_threshold_entries = 100;
  config.trailing_log_entries = 20;
  config.snapshot_interval = config.heartbeat_interval;
}

void no_automatic_snapshots(Config& config) {
  config.snapshot_threshold_entries = 1'000'000'000;
  config.snapshot_threshold_bytes = 1ULL << 40;
  config.trailing_log_entries = 1000;
}

std::uint64_t log_length(Raft& raft) {
  const RaftStats stats = raft.stats();
  return stats.last_index.value + 1 - stats.first_index.value;
}

TEST(Snapshots, AreTakenAutomaticallyAndTheLogIsCutBehindThem) {
  TestCluster cluster(3, small_snapshots);
  cluster.start_all();
  const ServerId leader = cluster.wait_for_leader();
  ASSERT_FALSE(leader.is_zero());
  apply_many(cluster.raft(leader), 1000);
  for (ServerId id : cluster.ids()) {
    ASSERT_TRUE(eventually([&] {
      const RaftStats stats = cluster.raft(id).stats();
      return stats.snapshots_taken > 0 && stats.first_index > Index{800} &&
             stats.applied_index.value >= 1002;
    })) << cluster.describe();
    const RaftStats stats = cluster.raft(id).stats();
    EXPECT_GT(stats.last_snapshot.index, Index{0});
    EXPECT_GT(stats.last_snapshot.size_bytes, 0u);
    EXPECT_LE(stats.first_index.value + 20, stats.last_snapshot.index.value + 1)
        << "trailing_log_entries are kept before the snapshot";
    // The store's log is cut as the core's is.
    EXPECT_EQ(cluster.log_store(id).first_index(), stats.first_index);
    EXPECT_EQ(cluster.fsm(id).get("k999"), "v999");
  }
}

TEST(Snapshots, OnDemandSnapshotResolvesWithItsMetadataAndOpens) {
  TestCluster cluster(1, no_automatic_snapshots);
  cluster.start_all();
  const ServerId leader = cluster.wait_for_leader();
  std::vector<Observation> taken;
  std::mutex mutex;
  ASSERT_TRUE(cluster.raft(leader)
                  .subscribe([&](const Observation& observation) {
                    std::lock_guard lock(mutex);
                    if (observation.kind == Observation::Kind::kSnapshotTaken) {
                      taken.push_back(observation);
                    }
                  })
                  .is_ok());
  apply_many(cluster.raft(leader), 30);
  Result<SnapshotMeta> meta = cluster.raft(leader).snapshot(10s).get();
  ASSERT_TRUE(meta.is_ok()) << meta.status();
  EXPECT_EQ(meta->index, cluster.raft(leader).applied_index());
  EXPECT_EQ(meta->term, cluster.raft(leader).term());
  EXPECT_EQ(meta->configuration, cluster.raft(leader).configuration().committed);
  EXPECT_GT(meta->size_bytes, 0u);
  Result<SnapshotStore::Opened> opened = cluster.raft(leader).open_snapshot(meta->id);
  ASSERT_TRUE(opened.is_ok()) << opened.status();
  Result<std::string> bytes = read_whole_snapshot(*opened->reader, 1 << 20);
  ASSERT_TRUE(bytes.is_ok()) << bytes.status();
  EXPECT_EQ(bytes->substr(0, 3), "30\n") << "the FSM's state: 30 commands applied";
  // Nothing applied since: the same snapshot again, not a new one.
  Result<SnapshotMeta> again = cluster.raft(leader).snapshot(10s).get();
  ASSERT_TRUE(again.is_ok()) << again.status();
  EXPECT_EQ(again->id, meta->id);
  EXPECT_EQ(cluster.raft(leader).stats().snapshots_taken, 1u);
  EXPECT_TRUE(eventually([&] {
    std::lock_guard lock(mutex);
    return taken.size() == 1 && taken[0].snapshot == *meta;
  }));
  EXPECT_EQ(cluster.raft(leader).snapshot(0s).get().status().code(), StatusCode::kTimeout);
}

TEST(Snapshots, AFailedPersistKeepsTheLogAndCountsTheFailure) {
  // An FSM whose snapshot cannot be written: keel keeps every entry.
  struct FailingFsm final : Fsm {
    std::string apply(const LogEntry&) override { return {}; }
    Result<std::unique_ptr<FsmSnapshot>> snapshot() override {
      struct Failing final : FsmSnapshot {
        Status persist(SnapshotWriter&) override { return Status::io_error("disk full"); }
      };
      return std::unique_ptr<FsmSnapshot>(std::make_unique<Failing>());
    }
    Status restore(const SnapshotMeta&, SnapshotReader&) override { return Status::ok(); }
  };
  auto env = make_thread_env();
  InMemoryNetwork network(env);
  RaftDependencies deps = solo_server_deps(env, network);
  deps.fsm = std::make_shared<FailingFsm>();
  no_automatic_snapshots(deps.config);
  auto raft = Raft::open(deps).value();
  ASSERT_TRUE(eventually([&] { return raft->state() == RaftState::kLeader; }));
  ASSERT_TRUE(raft->apply("x", 5s).get().is_ok());
  Result<SnapshotMeta> meta = raft->snapshot(10s).get();
  EXPECT_EQ(meta.status().code(), StatusCode::kIoError);
  EXPECT_NE(meta.status().message().find("disk full"), std::string::npos) << meta.status();
  EXPECT_EQ(raft->stats().snapshot_failures, 1u);
  EXPECT_EQ(raft->stats().first_index, Index{1});
  Result<SnapshotList> listed = deps.snapshot_store->list();
  ASSERT_TRUE(listed.is_ok());
  EXPECT_TRUE(listed->snapshots.empty()) << "a failed persist leaves no snapshot";
}

// The durable stores of one server in a fresh directory (real files).
void use_file_stores(RaftDependencies& deps, const std::string& dir) {
  auto log = WalLogStore::open(dir + "/wal", {});
  auto stable = FileStableStore::open(dir + "/stable", {});
  auto snapshots = FileSnapshotStore::open(dir + "/snapshots", {});
  ASSERT_TRUE(log.is_ok() && stable.is_ok() && snapshots.is_ok())
      << log.status() << stable.status() << snapshots.status();
  deps.log_store = std::move(log).value();
  deps.stable_store = std::move(stable).value();
  deps.snapshot_store = std::move(snapshots).value();
}

TEST(Snapshots, ARestartRestoresTheNewestSnapshotAndReadsOnlyTheLogAfterIt) {
  const std::string dir =
      ::testing::TempDir() + "/keel-snapshot-restart-" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  auto env = make_thread_env();
  InMemoryNetwork network(env);
  RaftDependencies deps = solo_server_deps(env, network);
  deps.config.snapshot_threshold_entries = 1000;
  deps.config.trailing_log_entries = 100;
  deps.config.snapshot_interval = deps.config.heartbeat_interval;
  use_file_stores(deps, dir);
  ASSERT_TRUE(bootstrap_cluster(*deps.log_store, *deps.stable_store,
                                Configuration{{Server{ServerId{1}, "solo"}}})
                  .is_ok());
  {
    auto raft = Raft::open(deps).value();
    ASSERT_TRUE(eventually([&] { return raft->state() == RaftState::kLeader; }));
    apply_many(*raft, 100'000);
    ASSERT_TRUE(eventually([&] { return raft->stats().last_snapshot.index.value > 99'000; }));
  }
  // A new process: everything comes back from the files.
  deps.log_store.reset();
  deps.stable_store.reset();
  deps.snapshot_store.reset();
  use_file_stores(deps, dir);
  auto fsm = std::make_shared<KvFsm>();
  deps.fsm = fsm;
  deps.transport = network.transport(ServerId{1});
  auto raft = Raft::open(deps).value();
  const RaftStats stats = raft->stats();
  EXPECT_EQ(fsm->restores(), 1u);
  // Proportional to the state, not the history: the log read at open is
  // what follows the snapshot (at most a threshold and the trailing
  // entries), never the 100,000 entries.
  EXPECT_LE(stats.entries_read_at_open, 1000u + 100u + 10u) << stats.entries_read_at_open;
  EXPECT_EQ(stats.applied_index, stats.last_snapshot.index);
  EXPECT_EQ(stats.first_index, stats.last_snapshot.index.next());
  // The seed case through this path: a linearizable read waits for every
  // committed entry after the snapshot to be applied.
  Result<Index> read = raft->read(Consistency::kLinearizable, 10s).get();
  ASSERT_TRUE(read.is_ok()) << read.status();
  EXPECT_EQ(fsm->applied(), 100'000u);
  EXPECT_EQ(fsm->get("k99999"), "v99999");
  ASSERT_TRUE(raft->barrier(10s).get().is_ok());
  raft.reset();
  std::filesystem::remove_all(dir);
}

TEST(Snapshots, ADamagedNewestSnapshotIsSkippedForTheOlderOne) {
  auto env = make_thread_env();
  InMemoryNetwork network(env);
  RaftDependencies deps = solo_server_deps(env, network);
  no_automatic_snapshots(deps.config);
  auto store = std::make_shared<MemorySnapshotStore>();
  deps.snapshot_store = store;
  std::string newest;
  {
    auto raft = Raft::open(deps).value();
    ASSERT_TRUE(eventually([&] { return raft->state() == RaftState::kLeader; }));
    apply_many(*raft, 20);
    ASSERT_TRUE(raft->snapshot(10s).get().is_ok());
    apply_many(*raft, 20, 20);
    Result<SnapshotMeta> second = raft->snapshot(10s).get();
    ASSERT_TRUE(second.is_ok()) << second.status();
    newest = second->id;
  }
  ASSERT_TRUE(store->corrupt(newest, 1, 0x40).is_ok());
  auto fsm = std::make_shared<KvFsm>();
  deps.fsm = fsm;
  deps.transport = network.transport(ServerId{1});
  auto logger = std::make_shared<RecordingLogger>();
  deps.logger = logger;
  auto raft = Raft::open(deps).value();
  EXPECT_EQ(fsm->restores(), 1u);
  EXPECT_EQ(raft->stats().last_snapshot.index, Index{22});  // the older one
  EXPECT_TRUE(
      logger->logged("warn skips a snapshot that does not restore server=1 snapshot=" + newest))
      << "the skip is logged through RaftDependencies::logger";
  ASSERT_TRUE(raft->read(Consistency::kLinearizable, 10s).get().is_ok());
  EXPECT_EQ(fsm->applied(), 40u);
  EXPECT_EQ(fsm->get("k39"), "v39");
}

TEST(Snapshots, TheStoreKeepsTheNewestRetainedAndAnyStillOpen) {
  auto env = make_thread_env();
  InMemoryNetwork network(env);
  RaftDependencies deps = solo_server_deps(env, network);
  no_automatic_snapshots(deps.config);
  deps.config.snapshot_retain = 2;
  auto store = std::make_shared<MemorySnapshotStore>();
  deps.snapshot_store = store;
  auto raft = Raft::open(deps).value();
  ASSERT_TRUE(eventually([&] { return raft->state() == RaftState::kLeader; }));
  auto take = [&](std::uint64_t first) {
    apply_many(*raft, 10, first);
    Result<SnapshotMeta> taken = raft->snapshot(10s).get();
    EXPECT_TRUE(taken.is_ok()) << taken.status();
    return taken.is_ok() ? taken->id : std::string();
  };
  auto listed = [&] {
    std::vector<std::string> ids;
    Result<SnapshotList> all = store->list();
    EXPECT_TRUE(all.is_ok()) << all.status();
    if (!all.is_ok()) return ids;
    for (const SnapshotMeta& meta : all->snapshots) ids.push_back(meta.id);
    return ids;
  };
  const std::string first = take(0);
  const std::string second = take(10);
  EXPECT_EQ(listed(), (std::vector<std::string>{second, first}));
  // A backup being copied: its snapshot stays while the reader is open.
  Result<SnapshotStore::Opened> backup = raft->open_snapshot(first);
  ASSERT_TRUE(backup.is_ok()) << backup.status();
  const std::string third = take(20);
  const std::string fourth = take(30);
  EXPECT_EQ(listed(), (std::vector<std::string>{fourth, third, first}));
  Result<std::string> copied = read_whole_snapshot(*backup->reader, 1 << 20);
  ASSERT_TRUE(copied.is_ok()) << copied.status();
  backup->reader.reset();
  // Closed, it goes with the next snapshot stored.
  const std::string fifth = take(40);
  EXPECT_EQ(listed(), (std::vector<std::string>{fifth, fourth}));
}

TEST(Snapshots, OpenRefusesALogThatStartsAfterTheNewestSnapshot) {
  auto env = make_thread_env();
  InMemoryNetwork network(env);
  RaftDependencies deps = solo_server_deps(env, network);
  no_automatic_snapshots(deps.config);
  auto log = std::static_pointer_cast<MemoryLogStore>(deps.log_store);
  {
    auto raft = Raft::open(deps).value();
    ASSERT_TRUE(eventually([&] { return raft->state() == RaftState::kLeader; }));
    apply_many(*raft, 20);
    ASSERT_TRUE(raft->snapshot(10s).get().is_ok());
    apply_many(*raft, 20, 20);
  }
  // Entries after the snapshot go missing.
  ASSERT_TRUE(log->truncate_prefix(Index{30}).is_ok());
  deps.transport = network.transport(ServerId{1});
  Result<std::unique_ptr<Raft>> opened = Raft::open(deps);
  ASSERT_FALSE(opened.is_ok());
  EXPECT_EQ(opened.status().code(), StatusCode::kCorruption);
  EXPECT_NE(opened.status().message().find("entries 23..30 are lost"), std::string::npos)
      << opened.status();
}

TEST(Snapshots, AFollowerFarBehindCatchesUpThroughASnapshotUnderLoad) {
  TestCluster cluster(3, [](Config& config) {
    small_snapshots(config);
    config.max_snapshot_chunk_bytes = 1024;  // many chunks: flow control and acks
  });
  cluster.start_all();
  const ServerId leader = cluster.wait_for_leader();
  ASSERT_FALSE(leader.is_zero());
  const ServerId behind = cluster.any_follower(leader);
  cluster.stop(behind);
  apply_many(cluster.raft(leader), 2000);
  ASSERT_TRUE(eventually([&] { return cluster.raft(leader).stats().first_index > Index{1000}; }));
  // Writes go on while the follower comes back and catches up.
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> written{0};
  std::thread load([&] {
    for (std::uint64_t i = 2000; !stop.load(); ++i) {
      if (cluster.raft(leader).apply(set(i), 5s).get().is_ok()) written = i;
    }
  });
  ASSERT_TRUE(cluster.start(behind).is_ok());
  const bool caught_up = eventually(
      [&] {
        const std::uint64_t target = written.load();
        return target > 2100 && cluster.raft(behind).applied_index().value >= target &&
               cluster.fsm(behind).get("k" + std::to_string(target)) ==
                   "v" + std::to_string(target);
      },
      30s);
  stop = true;
  load.join();
  ASSERT_TRUE(caught_up) << cluster.describe();
  const RaftStats follower = cluster.raft(behind).stats();
  const RaftStats sender = cluster.raft(leader).stats();
  EXPECT_GE(follower.snapshots_installed, 1u);
  EXPECT_LE(follower.snapshots_installed, 2u) << "installs must not loop";
  EXPECT_GE(sender.snapshots_sent, 1u);
  EXPECT_GT(sender.snapshot_bytes_sent, 1024u);
  EXPECT_EQ(cluster.fsm(behind).get("k5"), "v5") << "state from before the snapshot is there";
}

TEST(Snapshots, TheLogStaysBoundedOverAMillionCommands) {
#ifdef KEEL_TEST_SANITIZED
  constexpr std::uint64_t kCommands = 100'000;  // sanitizers run ten times slower
#else
  constexpr std::uint64_t kCommands = 1'000'000;
#endif
  constexpr std::uint64_t kThreshold = 10'000;
  constexpr std::uint64_t kTrailing = 1'000;
  TestCluster cluster(3, [](Config& config) {
    config.snapshot_threshold_entries = kThreshold;
    config.trailing_log_entries = kTrailing;
    config.snapshot_interval = config.heartbeat_interval;
  });
  cluster.start_all();
  const ServerId leader = cluster.wait_for_leader();
  ASSERT_FALSE(leader.is_zero());
  std::uint64_t longest = 0;
  for (std::uint64_t done = 0; done < kCommands; done += 50'000) {
    apply_many(cluster.raft(leader), 50'000, done, 1000, /*keys=*/1000);
    for (ServerId id : cluster.ids()) longest = std::max(longest, log_length(cluster.raft(id)));
  }
  // A snapshot starts once kThreshold entries were applied since the last
  // one, is checked every heartbeat, and keeps kTrailing before it; what
  // arrives while it is persisted adds a little.
  const std::uint64_t bound = kThreshold + kTrailing + kThreshold / 2;
  EXPECT_LE(longest, bound);
  for (ServerId id : cluster.ids()) {
    EXPECT_TRUE(eventually([&] { return log_length(cluster.raft(id)) <= bound; }))
        << cluster.describe();
    EXPECT_TRUE(eventually([&] { return cluster.fsm(id).applied() == kCommands; }))
        << cluster.describe();
  }
}

TEST(Snapshots, SettingsAreValidated) {
  Config config;
  config.id = ServerId{1};
  ASSERT_TRUE(config.validate().is_ok());
  auto refused = [](Config c, const char* field) {
    Status status = c.validate();
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << field;
    EXPECT_NE(status.message().find(field), std::string::npos) << status;
  };
  Config c = config;
  c.snapshot_threshold_entries = 0;
  refused(c, "snapshot_threshold_entries");
  c = config;
  c.snapshot_threshold_bytes = 0;
  refused(c, "snapshot_threshold_bytes");
  c = config;
  c.max_snapshot_chunk_bytes = 100;
  refused(c, "max_snapshot_chunk_bytes");
  c = config;
  c.max_inflight_snapshot_chunks = 0;
  refused(c, "max_inflight_snapshot_chunks");
  c = config;
  c.snapshot_interval = std::chrono::milliseconds(1);
  refused(c, "snapshot_interval");
  c = config;
  c.snapshot_transfer_idle_timeout = std::chrono::hours(2);
  refused(c, "snapshot_transfer_idle_timeout");
  c = config;
  c.trailing_log_entries = 2'000'000'000;
  refused(c, "trailing_log_entries");
  c = config;
  c.snapshot_retain = 0;
  refused(c, "snapshot_retain");
  c.snapshot_retain = 1001;
  refused(c, "snapshot_retain");
}

TEST(Snapshots, OpenRequiresASnapshotStore) {
  auto env = make_thread_env();
  InMemoryNetwork network(env);
  RaftDependencies deps = solo_server_deps(env, network);
  deps.snapshot_store = nullptr;
  EXPECT_EQ(Raft::open(deps).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace keel::testing
