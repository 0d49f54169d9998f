// The runtime on durable stores: three keel::Raft servers whose logs, hard
// state and snapshots live in files (WalLogStore, FileStableStore,
// FileSnapshotStore). A server stopped and restarted from its directory
// rejoins with its log and term; a server whose fsync fails stops cleanly
// (fail-stop) and the others go on; a follower far behind catches up through
// a snapshot under load; a restore replaces every server's state and
// survives a restart; after the whole cluster restarts from snapshots, reads
// wait for every committed entry (ctest -L snapshot for the last three).
#include <atomic>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "core/codec.h"
#include "keel/file_stores.h"
#include "runtime/log_writer.h"
#include "storage/file_stores_fs.h"
#include "storage/sim_fs.h"
#include "storage_test_util.h"
#include "test_cluster.h"

namespace keel::testing {
namespace {

using storage::testing::TempDir;

// Three servers, each with its stores in <root>/node-<id>/{wal,stable}, on
// the real disk or, given one, on a simulated disk per server.
class DurableCluster {
 public:
  explicit DurableCluster(std::string root, bool simulated_disks = false,
                          std::function<void(Config&)> tune = {})
      : root_(std::move(root)), tune_(std::move(tune)), env_(make_thread_env()), network_(env_) {
    for (std::uint64_t i = 1; i <= 3; ++i) {
      configuration_.servers.push_back(
          Server{ServerId(i), "server-" + std::to_string(i), Suffrage::kVoter});
      if (simulated_disks) disks_[ServerId(i)] = std::make_shared<storage::SimFileSystem>(i);
    }
    for (const Server& server : configuration_.servers) {  // new directories only
      Stores stores = open_stores(server.id);
      Result<bool> existing = has_existing_state(*stores.log, *stores.stable);
      if (!existing.is_ok()) std::abort();
      if (!*existing && !bootstrap_cluster(*stores.log, *stores.stable, configuration_).is_ok()) {
        std::abort();
      }
    }
  }
  ~DurableCluster() {
    for (auto& [id, member] : members_) member.raft.reset();
  }

  struct Stores {
    std::shared_ptr<WalLogStore> log;
    std::shared_ptr<FileStableStore> stable;
    std::shared_ptr<FileSnapshotStore> snapshots;
  };

  Stores open_stores(ServerId id) {
    const std::string dir = root_ + "/node-" + std::to_string(id.value);
    WalOptions wal_options;
    wal_options.segment_size_bytes = 64 << 10;  // several segments in a short test
    // A server given a simulated disk keeps its stores there, the others on the real disk.
    std::shared_ptr<storage::FileSystem> fs =
        disks_.count(id) != 0 ? disks_.at(id) : storage::make_posix_file_system();
    auto log = storage::open_wal_log_store(dir + "/wal", wal_options, fs);
    auto stable = storage::open_file_stable_store(dir + "/stable", {}, fs);
    auto snapshots = storage::open_file_snapshot_store(dir + "/snapshots", {}, fs);
    if (!log.is_ok() || !stable.is_ok() || !snapshots.is_ok()) {
      ADD_FAILURE() << log.status() << " / " << stable.status() << " / " << snapshots.status();
      std::abort();
    }
    return Stores{std::move(log).value(), std::move(stable).value(), std::move(snapshots).value()};
  }

  // Starts a server from what its directory holds, with a fresh FSM.
  Status start(ServerId id) {
    Stores stores = open_stores(id);
    Member& member = members_[id];
    member.fsm = std::make_shared<KvFsm>();
    Config config;
    config.id = id;
    config.heartbeat_interval = 20ms;
    config.election_timeout = 200ms;
    config.lease_timeout = 100ms;
    if (tune_) tune_(config);
    RaftDependencies deps{config,        member.fsm,       stores.log,
                          stores.stable, stores.snapshots, network_.transport(id),
                          env_};
    Result<std::unique_ptr<Raft>> raft = Raft::open(std::move(deps));
    if (!raft.is_ok()) return raft.status();
    member.raft = std::move(raft).value();
    return Status::ok();
  }
  void start_all() {
    for (const Server& server : configuration_.servers) ASSERT_TRUE(start(server.id).is_ok());
  }
  // Drops the server and every handle on its stores.
  void stop(ServerId id) { members_.at(id).raft.reset(); }

  Raft& raft(ServerId id) { return *members_.at(id).raft; }
  bool running(ServerId id) const { return members_.count(id) != 0 && members_.at(id).raft; }
  KvFsm& fsm(ServerId id) { return *members_.at(id).fsm; }
  storage::SimFileSystem& disk(ServerId id) { return *disks_.at(id); }
  std::string wal_dir(ServerId id) const {
    return root_ + "/node-" + std::to_string(id.value) + "/wal";
  }

  ServerId wait_for_leader(ServerId except = kNoServer) {
    ServerId found;
    eventually([&] {
      found = kNoServer;
      int leaders = 0;
      for (const Server& server : configuration_.servers) {
        if (server.id != except && running(server.id) &&
            raft(server.id).state() == RaftState::kLeader) {
          found = server.id;
          ++leaders;
        }
      }
      return leaders == 1;
    });
    return found;
  }
  ServerId follower_of(ServerId leader) const {
    return leader == ServerId(1) ? ServerId(2) : ServerId(1);
  }

 private:
  struct Member {
    std::shared_ptr<KvFsm> fsm;
    std::unique_ptr<Raft> raft;
  };

  std::string root_;
  std::function<void(Config&)> tune_;
  std::shared_ptr<Env> env_;
  InMemoryNetwork network_;
  Configuration configuration_;
  std::map<ServerId, std::shared_ptr<storage::SimFileSystem>> disks_;
  std::map<ServerId, Member> members_;
};

void apply_all(Raft& leader, int from, int to) {
  for (int i = from; i < to; ++i) {
    const std::string key = std::to_string(i);
    Result<ApplyResult> applied = leader.apply("set k" + key + " v" + key, 5s).get();
    ASSERT_TRUE(applied.is_ok()) << applied.status();
  }
}

core::HardState stored_hard_state(StableStore& stable) {
  Result<std::string> bytes = stable.get(runtime::kHardStateKey);
  EXPECT_TRUE(bytes.is_ok());
  Result<core::HardState> hard_state = core::decode_hard_state(*bytes);
  EXPECT_TRUE(hard_state.is_ok());
  return *hard_state;
}

TEST(DurableCluster, AServerRestartedFromDiskRejoinsWithItsLogAndTerm) {
  TempDir root;
  DurableCluster cluster(root.path());
  cluster.start_all();
  const ServerId leader = cluster.wait_for_leader();
  ASSERT_NE(leader, kNoServer);
  apply_all(cluster.raft(leader), 0, 30);
  const ServerId follower = cluster.follower_of(leader);
  ASSERT_TRUE(eventually(
      [&] { return cluster.raft(follower).last_index() == cluster.raft(leader).last_index(); }));
  const Index last_before = cluster.raft(follower).last_index();
  const Term term_before = cluster.raft(follower).term();

  cluster.stop(follower);
  apply_all(cluster.raft(leader), 30, 60);  // the other two still make a quorum

  {  // What the stopped server's directory holds: its log and its term.
    DurableCluster::Stores stores = cluster.open_stores(follower);
    EXPECT_EQ(stores.log->last_index(), last_before);
    EXPECT_EQ(stored_hard_state(*stores.stable).term, term_before);
  }
  ASSERT_TRUE(cluster.start(follower).is_ok());
  // Its state is published by its loop shortly after open.
  EXPECT_TRUE(eventually([&] {
    return cluster.raft(follower).term() >= term_before &&
           cluster.raft(follower).last_index() >= last_before;
  }));
  ASSERT_TRUE(eventually([&] { return cluster.fsm(follower).get("k59") == "v59"; }));
  EXPECT_EQ(cluster.fsm(follower).get("k0"), "v0") << "the early log came from its own disk";
}

TEST(DurableCluster, TheWholeClusterRestartsFromDisk) {
  TempDir root;
  {
    DurableCluster cluster(root.path());
    cluster.start_all();
    const ServerId leader = cluster.wait_for_leader();
    ASSERT_NE(leader, kNoServer);
    apply_all(cluster.raft(leader), 0, 20);
  }
  DurableCluster cluster(root.path());  // the same directories
  cluster.start_all();
  const ServerId leader = cluster.wait_for_leader();
  ASSERT_NE(leader, kNoServer);
  apply_all(cluster.raft(leader), 20, 25);
  for (ServerId id : {ServerId(1), ServerId(2), ServerId(3)}) {
    ASSERT_TRUE(eventually([&] { return cluster.fsm(id).get("k24") == "v24"; })) << id;
    EXPECT_EQ(cluster.fsm(id).get("k3"), "v3");
  }
}

// DESIGN §2.3: after a failed fsync the page cache cannot be trusted, so the
// server stops rather than retry; its calls resolve and the rest go on.
TEST(DurableCluster, AServerWhoseFsyncFailsShutsDownCleanly) {
  DurableCluster cluster("/cluster", /*simulated_disks=*/true);
  cluster.start_all();
  const ServerId leader = cluster.wait_for_leader();
  ASSERT_NE(leader, kNoServer);
  apply_all(cluster.raft(leader), 0, 5);
  cluster.disk(leader).fail_next(storage::FsOperation::kSync, cluster.wal_dir(leader));
  std::vector<Future<ApplyResult>> applies;
  for (int i = 0; i < 50; ++i)
    applies.push_back(cluster.raft(leader).apply("set x " + std::to_string(i), 10s));
  for (auto& future : applies) ASSERT_TRUE(future.wait_for(15s));
  EXPECT_TRUE(eventually([&] { return cluster.raft(leader).state() == RaftState::kShutdown; }));
  const ServerId next = cluster.wait_for_leader(/*except=*/leader);
  ASSERT_NE(next, kNoServer);
  apply_all(cluster.raft(next), 5, 10);
}

// --- snapshots on disk ---------------------------------------------------------------

void small_snapshots(Config& config) {
  config.snapshot_threshold_entries = 100;
  config.trailing_log_entries = 10;
  config.snapshot_interval = config.heartbeat_interval;
  config.max_snapshot_chunk_bytes = 1024;  // a transfer of many chunks
}

// Records one server's observations of one kind.
class Observed {
 public:
  std::function<void(const Observation&)> of(Observation::Kind kind) {
    return [this, kind](const Observation& o) {
      if (o.kind != kind) return;
      std::lock_guard lock(mutex_);
      seen_.push_back(o);
    };
  }
  std::vector<Observation> seen() const {
    std::lock_guard lock(mutex_);
    return seen_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<Observation> seen_;
};

TEST(DurableCluster, AFollowerFarBehindCatchesUpThroughASnapshotUnderLoad) {
  TempDir root;
  Observed installed;  // outlives the cluster, whose observers write to it
  DurableCluster cluster(root.path(), false, small_snapshots);
  cluster.start_all();
  const ServerId leader = cluster.wait_for_leader();
  ASSERT_NE(leader, kNoServer);
  const ServerId behind = cluster.follower_of(leader);
  cluster.stop(behind);
  apply_all(cluster.raft(leader), 0, 600);  // the leader's log is cut well past it
  ASSERT_TRUE(eventually([&] { return cluster.raft(leader).stats().first_index > Index{300}; }));
  // It comes back while the writes go on.
  std::atomic<bool> writing{true};
  std::thread writer([&] {
    for (int i = 600; writing; ++i) {
      const std::string key = std::to_string(i);
      if (!cluster.raft(leader).apply("set k" + key + " v" + key, 5s).get().is_ok()) break;
    }
  });
  ASSERT_TRUE(cluster.start(behind).is_ok());
  ASSERT_TRUE(
      cluster.raft(behind).subscribe(installed.of(Observation::Kind::kSnapshotInstalled)).is_ok());
  const bool caught_up = eventually([&] { return cluster.fsm(behind).get("k599") == "v599"; });
  writing = false;
  writer.join();
  ASSERT_TRUE(caught_up);
  ASSERT_TRUE(cluster.raft(leader).barrier(5s).get().is_ok());
  const Index last = cluster.raft(leader).last_index();
  EXPECT_TRUE(eventually([&] { return cluster.raft(behind).applied_index() >= last; }));
  EXPECT_EQ(cluster.fsm(behind).get("k0"), "v0") << "the early state came in the snapshot";
  const RaftStats stats = cluster.raft(behind).stats();
  EXPECT_GE(stats.snapshots_installed, 1u);
  EXPECT_LE(stats.snapshots_installed, 2u) << "installed again and again";
  ASSERT_TRUE(eventually([&] { return !installed.seen().empty(); }));
  EXPECT_GT(installed.seen().front().duration, Duration{0}) << "from its first chunk to restored";
}

TEST(DurableCluster, ARestoreReplacesEveryServersStateAndSurvivesARestart) {
  TempDir root;
  std::string backup;
  SnapshotMeta meta;
  Index restored_at;
  {
    DurableCluster cluster(root.path(), false, small_snapshots);
    cluster.start_all();
    const ServerId leader = cluster.wait_for_leader();
    ASSERT_NE(leader, kNoServer);
    apply_all(cluster.raft(leader), 0, 50);
    Result<SnapshotMeta> taken = cluster.raft(leader).snapshot(10s).get();
    ASSERT_TRUE(taken.is_ok()) << taken.status();
    meta = *taken;
    Result<SnapshotStore::Opened> opened = cluster.raft(leader).open_snapshot(meta.id);
    ASSERT_TRUE(opened.is_ok()) << opened.status();
    Result<std::string> bytes = read_whole_snapshot(*opened->reader, 1 << 20);
    ASSERT_TRUE(bytes.is_ok()) << bytes.status();
    backup = *bytes;
    apply_all(cluster.raft(leader), 50, 300);  // past the backup, with snapshots between
    Result<Index> index = cluster.raft(leader)
                              .restore(meta, std::make_unique<StringSnapshotReader>(backup), 30s)
                              .get();
    ASSERT_TRUE(index.is_ok()) << index.status();
    restored_at = *index;
    for (ServerId id : {ServerId(1), ServerId(2), ServerId(3)}) {
      ASSERT_TRUE(eventually([&] { return cluster.raft(id).applied_index() >= restored_at; }));
      EXPECT_EQ(cluster.fsm(id).get("k49"), "v49");
      EXPECT_EQ(cluster.fsm(id).get("k50"), "") << "written after the backup, on server " << id;
    }
  }
  DurableCluster cluster(root.path(), false, small_snapshots);  // the same directories
  cluster.start_all();
  const ServerId leader = cluster.wait_for_leader();
  ASSERT_NE(leader, kNoServer);
  ASSERT_TRUE(cluster.raft(leader).read(Consistency::kLinearizable, 10s).get().is_ok());
  for (ServerId id : {ServerId(1), ServerId(2), ServerId(3)}) {
    ASSERT_TRUE(eventually([&] { return cluster.raft(id).applied_index() >= restored_at; }));
    EXPECT_EQ(cluster.fsm(id).get("k49"), "v49") << "server " << id;
    EXPECT_EQ(cluster.fsm(id).get("k50"), "") << "server " << id;
  }
}

// The seed case through the snapshot path: a new leader after a restart
// holds committed entries past its snapshot that it has not applied yet;
// kLeaderReady, barrier() and a linearizable read wait for all of them.
TEST(DurableCluster, AfterARestartFromSnapshotsReadsWaitForEveryCommittedEntry) {
  TempDir root;
  {
    DurableCluster cluster(root.path(), false, small_snapshots);
    cluster.start_all();
    const ServerId leader = cluster.wait_for_leader();
    ASSERT_NE(leader, kNoServer);
    apply_all(cluster.raft(leader), 0, 250);  // snapshots near 100 and 200, entries after
    for (ServerId id : {ServerId(1), ServerId(2), ServerId(3)}) {
      ASSERT_TRUE(eventually([&] { return cluster.raft(id).stats().snapshots_taken >= 2; }));
    }
  }
  Observed ready;  // outlives the cluster
  DurableCluster cluster(root.path(), false, small_snapshots);
  cluster.start_all();
  for (ServerId id : {ServerId(1), ServerId(2), ServerId(3)}) {
    ASSERT_TRUE(cluster.raft(id).subscribe(ready.of(Observation::Kind::kLeaderReady)).is_ok());
    EXPECT_GT(cluster.raft(id).stats().first_index, Index{1}) << "it opened from a snapshot";
  }
  const ServerId leader = cluster.wait_for_leader();
  ASSERT_NE(leader, kNoServer);
  // Whatever the order in which the FSM catches up, once any of these
  // answers, every committed entry is applied on the leader.
  Result<Index> read = cluster.raft(leader).read(Consistency::kLinearizable, 10s).get();
  ASSERT_TRUE(read.is_ok()) << read.status();
  EXPECT_EQ(cluster.fsm(leader).get("k249"), "v249");
  ASSERT_TRUE(cluster.raft(leader).barrier(10s).get().is_ok());
  EXPECT_EQ(cluster.fsm(leader).get("k249"), "v249");
  ASSERT_TRUE(eventually([&] { return !ready.seen().empty(); }));
  const Observation first_ready = ready.seen().front();
  EXPECT_GE(first_ready.index.value, 250u) << "the term-start entry comes after every command";
}

}  // namespace
}  // namespace keel::testing
