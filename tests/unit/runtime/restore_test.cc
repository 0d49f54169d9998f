// Raft::restore (ctest -L snapshot): a backup taken with snapshot() becomes
// the state of every server of a running cluster, through the log; a
// follower that was down meanwhile catches up from the restore's entries or
// from the snapshot taken at its end; commands the restore overtook learn it;
// every refusal leaves the log as it was; a restart on file stores opens
// from the restored snapshot.
#include <unistd.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "core/crc32c.h"
#include "keel/file_stores.h"
#include "test_cluster.h"

namespace keel::testing {
namespace {

void no_automatic_snapshots(Config& config) {
  config.snapshot_threshold_entries = 1'000'000'000;
  config.snapshot_threshold_bytes = 1ULL << 40;
  config.trailing_log_entries = 1000;
}

// Small pieces, so that a restore is a run of many entries.
void small_pieces(Config& config) {
  no_automatic_snapshots(config);
  config.max_snapshot_chunk_bytes = 1024;
}

void apply_all(Raft& leader, std::uint64_t first, std::uint64_t count,
               const std::string& value = "v") {
  std::vector<std::string> commands;
  for (std::uint64_t i = first; i < first + count; ++i) {
    commands.push_back("set k" + std::to_string(i) + " " + value + std::to_string(i));
  }
  for (auto& future : leader.apply_batch(std::move(commands), 30s)) {
    Result<ApplyResult> result = future.get();
    ASSERT_TRUE(result.is_ok()) << result.status();
  }
}

struct Backup {
  SnapshotMeta meta;
  std::string bytes;
  std::unique_ptr<SnapshotReader> reader() const {
    return std::make_unique<StringSnapshotReader>(bytes);
  }
};

Backup take_backup(Raft& raft) {
  Result<SnapshotMeta> meta = raft.snapshot(10s).get();
  EXPECT_TRUE(meta.is_ok()) << meta.status();
  if (!meta.is_ok()) return {};
  Result<SnapshotStore::Opened> opened = raft.open_snapshot(meta->id);
  EXPECT_TRUE(opened.is_ok()) << opened.status();
  if (!opened.is_ok()) return {};
  Result<std::string> bytes = read_whole_snapshot(*opened->reader, 1ULL << 30);
  EXPECT_TRUE(bytes.is_ok()) << bytes.status();
  return Backup{*meta, bytes.is_ok() ? *bytes : std::string()};
}

// Every running server has applied `index` and holds the backup's state.
void expect_restored_everywhere(TestCluster& cluster, Index index, std::uint64_t keys_in_backup) {
  for (ServerId id : cluster.ids()) {
    if (!cluster.running(id)) continue;
    ASSERT_TRUE(eventually([&] { return cluster.raft(id).applied_index() >= index; }))
        << cluster.describe();
    EXPECT_EQ(cluster.fsm(id).get("k0"), "v0") << "server " << id;
    EXPECT_EQ(cluster.fsm(id).get("k" + std::to_string(keys_in_backup - 1)),
              "v" + std::to_string(keys_in_backup - 1));
    EXPECT_EQ(cluster.fsm(id).get("k" + std::to_string(keys_in_backup)), "")
        << "a key written after the backup is gone on server " << id;
  }
}

TEST(Restore, ReplacesTheStateOfEveryServerAndIsSnapshottedWhereItEnds) {
  TestCluster cluster(3, small_pieces);
  cluster.start_all();
  const ServerId leader = cluster.wait_for_leader();
  ASSERT_FALSE(leader.is_zero());
  apply_all(cluster.raft(leader), 0, 1000);
  const Backup backup = take_backup(cluster.raft(leader));
  ASSERT_GT(backup.meta.size_bytes, 8u * 1024) << "the restore must span several entries";
  // The cluster moves on: new keys, and the old ones overwritten.
  apply_all(cluster.raft(leader), 0, 1500, "later");
  std::vector<Observation> restored;
  std::mutex mutex;
  ASSERT_TRUE(cluster.raft(leader)
                  .subscribe([&](const Observation& observation) {
                    std::lock_guard lock(mutex);
                    if (observation.kind == Observation::Kind::kRestored) {
                      restored.push_back(observation);
                    }
                  })
                  .is_ok());
  const Index before = cluster.raft(leader).last_index();

  Result<Index> index = cluster.raft(leader).restore(backup.meta, backup.reader(), 30s).get();
  ASSERT_TRUE(index.is_ok()) << index.status();
  const std::uint64_t pieces = (backup.meta.size_bytes + 1023) / 1024;
  EXPECT_EQ(index->value, before.value + pieces) << "one entry per piece, right after the log";
  expect_restored_everywhere(cluster, *index, 1000);
  for (ServerId id : cluster.ids()) {
    const RaftStats stats = cluster.raft(id).stats();
    EXPECT_EQ(stats.restores_applied, 1u) << "server " << id;
    EXPECT_EQ(stats.last_snapshot.index, *index) << "the restore is a snapshot where it ends";
    EXPECT_EQ(stats.last_snapshot.size_bytes, backup.meta.size_bytes);
    EXPECT_EQ(cluster.fsm(id).applied(), 1000u) << "the FSM's own counter came back too";
  }
  EXPECT_TRUE(eventually([&] {
    std::lock_guard lock(mutex);
    return restored.size() == 1 && restored[0].index == *index;
  }));
  // Writes go on, on the restored state.
  Result<ApplyResult> next = cluster.raft(leader).apply("set k0 after", 10s).get();
  ASSERT_TRUE(next.is_ok()) << next.status();
  EXPECT_EQ(next->response, "1001");
  EXPECT_GT(next->index, *index);
}

TEST(Restore, AFollowerWhoseFsmLagsRestoresFromTheRunInItsOwnLog) {
  TestCluster cluster(3, small_pieces);
  cluster.start_all();
  const ServerId leader = cluster.wait_for_leader();
  ASSERT_FALSE(leader.is_zero());
  apply_all(cluster.raft(leader), 0, 500);
  const Backup backup = take_backup(cluster.raft(leader));
  apply_all(cluster.raft(leader), 500, 100);
  // The follower's FSM is stuck on a command: the run reaches its log (and
  // the leader cuts its own log behind the restore) before it applies.
  const ServerId slow = cluster.any_follower(leader);
  cluster.fsm(slow).close_gate();
  ASSERT_TRUE(cluster.raft(leader).apply("set stuck 1", 10s).get().is_ok());
  ASSERT_TRUE(eventually([&] { return cluster.fsm(slow).blocked_at_gate(); }));
  Result<Index> index = cluster.raft(leader).restore(backup.meta, backup.reader(), 30s).get();
  ASSERT_TRUE(index.is_ok()) << index.status();
  ASSERT_TRUE(eventually([&] { return cluster.raft(slow).commit_index() >= *index; }));
  EXPECT_GT(cluster.raft(leader).stats().first_index, *index)
      << "a restore's snapshot covers its run: the log is cut through it";
  cluster.fsm(slow).open_gate();
  expect_restored_everywhere(cluster, *index, 500);
  EXPECT_EQ(cluster.raft(slow).stats().restores_applied, 1u);
  EXPECT_EQ(cluster.raft(slow).stats().snapshots_installed, 0u);
  EXPECT_EQ(cluster.raft(slow).stats().last_snapshot.index, *index);
}

TEST(Restore, AFollowerThatWasDownGetsTheSnapshotTakenAtItsEnd) {
  TestCluster cluster(3, small_pieces);
  cluster.start_all();
  const ServerId leader = cluster.wait_for_leader();
  ASSERT_FALSE(leader.is_zero());
  apply_all(cluster.raft(leader), 0, 100);
  const Backup backup = take_backup(cluster.raft(leader));
  const ServerId down = cluster.any_follower(leader);
  cluster.stop(down);
  apply_all(cluster.raft(leader), 100, 100);
  Result<Index> index = cluster.raft(leader).restore(backup.meta, backup.reader(), 30s).get();
  ASSERT_TRUE(index.is_ok()) << index.status();
  ASSERT_TRUE(eventually([&] { return cluster.raft(leader).stats().first_index > *index; }));
  ASSERT_TRUE(cluster.start(down).is_ok());
  expect_restored_everywhere(cluster, *index, 100);
  EXPECT_GE(cluster.raft(down).stats().snapshots_installed, 1u);
  EXPECT_EQ(cluster.raft(down).stats().restores_applied, 0u);
}

TEST(Restore, CommandsItOvertookFailWithAbortedByRestore) {
  TestCluster cluster(3, [](Config& config) {
    small_pieces(config);
    config.election_timeout = 3s;  // no election while the leader is cut off
    config.lease_timeout = 1s;
  });
  cluster.start_all();
  const ServerId leader = cluster.wait_for_leader();
  ASSERT_FALSE(leader.is_zero());
  apply_all(cluster.raft(leader), 0, 50);
  const Backup backup = take_backup(cluster.raft(leader));
  // The leader's appends reach nobody: what it accepts now stays uncommitted.
  for (ServerId id : cluster.ids()) {
    if (id != leader) cluster.network().cut(leader, id);
  }
  std::vector<Future<ApplyResult>> overtaken;
  for (int i = 0; i < 5; ++i) {
    overtaken.push_back(cluster.raft(leader).apply("set late" + std::to_string(i) + " x", 30s));
  }
  const Index before = cluster.raft(leader).last_index();
  Future<Index> restore = cluster.raft(leader).restore(backup.meta, backup.reader(), 30s);
  ASSERT_TRUE(eventually([&] { return cluster.raft(leader).last_index() > before; }));
  cluster.network().heal();
  Result<Index> index = restore.get();
  ASSERT_TRUE(index.is_ok()) << index.status();
  for (auto& future : overtaken) {
    Result<ApplyResult> result = future.get();
    EXPECT_EQ(result.status().code(), StatusCode::kAbortedByRestore) << result.status();
  }
  expect_restored_everywhere(cluster, *index, 50);
  EXPECT_EQ(cluster.fsm(leader).get("late0"), "") << "the restore undid it";
  // A command accepted after the restore applies to the restored state.
  Result<ApplyResult> after = cluster.raft(leader).apply("set late0 y", 10s).get();
  ASSERT_TRUE(after.is_ok()) << after.status();
  EXPECT_EQ(after->response, "51");
}

TEST(Restore, RefusalsLeaveTheLogAsItWas) {
  TestCluster cluster(3, [](Config& config) {
    small_pieces(config);
    config.max_restore_bytes = 64 * 1024;
  });
  cluster.start_all();
  const ServerId leader = cluster.wait_for_leader();
  ASSERT_FALSE(leader.is_zero());
  apply_all(cluster.raft(leader), 0, 50);
  const Backup backup = take_backup(cluster.raft(leader));
  Raft& raft = cluster.raft(leader);
  const Index before = raft.last_index();

  Raft& follower = cluster.raft(cluster.any_follower(leader));
  EXPECT_EQ(follower.restore(backup.meta, backup.reader(), 10s).get().status().code(),
            StatusCode::kNotLeader);
  EXPECT_EQ(raft.restore(backup.meta, backup.reader(), 0s).get().status().code(),
            StatusCode::kTimeout);
  EXPECT_EQ(raft.restore(backup.meta, nullptr, 10s).get().status().code(),
            StatusCode::kInvalidArgument);
  SnapshotMeta too_big = backup.meta;
  too_big.size_bytes = 64 * 1024 + 1;
  Result<Index> refused = raft.restore(too_big, backup.reader(), 10s).get();
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("max_restore_bytes"), std::string::npos)
      << refused.status();
  // Bytes that are not what the metadata says: damaged on the way.
  std::string damaged = backup.bytes;
  damaged[damaged.size() / 2] ^= 0x20;
  Result<Index> mismatch =
      raft.restore(backup.meta, std::make_unique<StringSnapshotReader>(damaged), 10s).get();
  EXPECT_EQ(mismatch.status().code(), StatusCode::kInvalidArgument) << mismatch.status();
  // A reader that fails: its error, as it is.
  struct FailingReader final : SnapshotReader {
    Result<std::size_t> read(std::span<char>) override { return Status::io_error("disk gone"); }
  };
  EXPECT_EQ(raft.restore(backup.meta, std::make_unique<FailingReader>(), 10s).get().status().code(),
            StatusCode::kIoError);

  EXPECT_EQ(raft.last_index(), before) << "nothing was appended";
  EXPECT_EQ(raft.stats().restores_applied, 0u);
  // And the cluster still restores when asked properly.
  Result<Index> index = raft.restore(backup.meta, backup.reader(), 30s).get();
  ASSERT_TRUE(index.is_ok()) << index.status();
  EXPECT_EQ(raft.restore(backup.meta, nullptr, 10s).get().status().code(),
            StatusCode::kInvalidArgument);
}

TEST(Restore, BytesTheFsmRefusesStopTheServerAndLeaveNoSnapshotBehind) {
  auto env = make_thread_env();
  InMemoryNetwork network(env);
  RaftDependencies deps = solo_server_deps(env, network);
  small_pieces(deps.config);
  auto store = std::static_pointer_cast<MemorySnapshotStore>(deps.snapshot_store);
  auto raft = Raft::open(deps).value();
  ASSERT_TRUE(eventually([&] { return raft->state() == RaftState::kLeader; }));
  apply_all(*raft, 0, 10);
  // Size and checksum match, but it is not a state this FSM can read.
  const std::string junk = "not a state";
  SnapshotMeta meta;
  meta.size_bytes = junk.size();
  meta.crc32c = core::crc32c(junk);
  Result<Index> result =
      raft->restore(meta, std::make_unique<StringSnapshotReader>(junk), 10s).get();
  EXPECT_EQ(result.status().code(), StatusCode::kOutcomeUnknown) << result.status();
  ASSERT_TRUE(eventually([&] { return raft->state() == RaftState::kShutdown; }));
  const RaftStats stats = raft->stats();
  EXPECT_EQ(stats.failure.code(), StatusCode::kCorruption) << stats.failure;
  EXPECT_NE(stats.failure.message().find("the FSM refused the snapshot"), std::string::npos)
      << stats.failure;
  // The FSM first, the store after: nothing a restart could mistake for
  // the restored state is listed.
  EXPECT_TRUE(store->list()->snapshots.empty());
}

TEST(Restore, ARestartOnFileStoresOpensFromTheRestoredSnapshot) {
  const std::string dir =
      ::testing::TempDir() + "/keel-restore-restart-" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  auto env = make_thread_env();
  InMemoryNetwork network(env);
  RaftDependencies deps = solo_server_deps(env, network);
  small_pieces(deps.config);
  auto open_stores = [&] {
    deps.log_store = WalLogStore::open(dir + "/wal", {}).value();
    deps.stable_store = FileStableStore::open(dir + "/stable", {}).value();
    deps.snapshot_store = FileSnapshotStore::open(dir + "/snapshots", {}).value();
  };
  open_stores();
  ASSERT_TRUE(bootstrap_cluster(*deps.log_store, *deps.stable_store,
                                Configuration{{Server{ServerId{1}, "solo"}}})
                  .is_ok());
  Index restored_at;
  {
    auto raft = Raft::open(deps).value();
    ASSERT_TRUE(eventually([&] { return raft->state() == RaftState::kLeader; }));
    apply_all(*raft, 0, 100);
    const Backup backup = take_backup(*raft);
    apply_all(*raft, 100, 100);
    Result<Index> index = raft->restore(backup.meta, backup.reader(), 30s).get();
    ASSERT_TRUE(index.is_ok()) << index.status();
    restored_at = *index;
    apply_all(*raft, 500, 3);
  }
  deps.log_store.reset();
  deps.stable_store.reset();
  deps.snapshot_store.reset();
  open_stores();
  auto fsm = std::make_shared<KvFsm>();
  deps.fsm = fsm;
  deps.transport = network.transport(ServerId{1});
  auto raft = Raft::open(deps).value();
  EXPECT_EQ(fsm->restores(), 1u);
  EXPECT_EQ(raft->stats().last_snapshot.index, restored_at);
  EXPECT_LE(raft->stats().entries_read_at_open, 3u) << "only what followed the restore";
  ASSERT_TRUE(raft->read(Consistency::kLinearizable, 10s).get().is_ok());
  EXPECT_EQ(fsm->get("k99"), "v99");
  EXPECT_EQ(fsm->get("k150"), "");
  EXPECT_EQ(fsm->get("k502"), "v502");
  raft.reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace keel::testing
