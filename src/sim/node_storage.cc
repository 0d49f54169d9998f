#include "sim/node_storage.h"

#include "core/prng.h"
#include "keel/file_stores.h"
#include "storage/file_stores_fs.h"
#include "storage/sim_fs.h"

namespace keel::sim {

namespace {

class MemoryNodeStorage final : public NodeStorage {
 public:
  Result<NodeStores> open() override { return stores_; }
  void crash() override {}  // a returned append or set is durable: nothing is lost

 private:
  NodeStores stores_{std::make_shared<MemoryLogStore>(), std::make_shared<MemoryStableStore>(),
                     std::make_shared<MemorySnapshotStore>()};
};

storage::SimFsFidelity draw_fidelity(std::uint64_t seed) {
  core::Prng prng(seed ^ 0x5ca1ab1efeedf00dULL);
  storage::SimFsFidelity fidelity;
  fidelity.crash_reorders = prng.uniform(0, 2) == 1;
  fidelity.failed_sync_drops_writes = prng.uniform(0, 2) == 1;
  fidelity.failed_write_is_partial = prng.uniform(0, 2) == 1;
  return fidelity;
}

class DiskNodeStorage final : public NodeStorage {
 public:
  explicit DiskNodeStorage(std::uint64_t seed)
      : disk_(std::make_shared<storage::SimFileSystem>(seed, draw_fidelity(seed))) {}

  // Half the draws: a write or fsync of the log or the hard state, the
  // first or one of the next few. The other half: the log's next write
  // once the hard state has been stored, which splits a write of both
  // (the hard state durable, the entries not) as a crash between them would.
  bool inject_io_error(std::uint64_t draw) override {
    const storage::FsOperation operation =
        (draw & 1) != 0 ? storage::FsOperation::kSync : storage::FsOperation::kWrite;
    if ((draw & 16) != 0) {
      disk_->fail_next_after(storage::FsOperation::kRename, "/stable", operation, "/wal");
      return true;
    }
    const char* path = (draw & 2) != 0 ? "/stable" : "/wal";
    disk_->fail_next(operation, path, (draw >> 2) % 4);
    return true;
  }

  Result<NodeStores> open() override {
    WalOptions wal;
    wal.segment_size_bytes = 64ULL << 10;  // several segments per run
    wal.read_cache_bytes = 256ULL << 10;
    Result<std::shared_ptr<WalLogStore>> log = storage::open_wal_log_store("/wal", wal, disk_);
    if (!log.is_ok()) return log.status();
    Result<std::shared_ptr<FileStableStore>> hard_state =
        storage::open_file_stable_store("/stable", {}, disk_);
    if (!hard_state.is_ok()) return hard_state.status();
    Result<std::shared_ptr<FileSnapshotStore>> snapshot_store =
        storage::open_file_snapshot_store("/snapshots", {}, disk_);
    if (!snapshot_store.is_ok()) return snapshot_store.status();
    return NodeStores{std::move(log).value(), std::move(hard_state).value(),
                      std::move(snapshot_store).value()};
  }

  // Handles opened before the crash go stale: the old incarnation's stores
  // fail every later call (none comes: its executors are dead).
  void crash() override {
    disk_->clear_faults();
    disk_->crash_and_tear();
  }

 private:
  std::shared_ptr<storage::SimFileSystem> disk_;
};

}  // namespace

std::unique_ptr<NodeStorage> make_memory_storage(ServerId /*id*/, std::uint64_t /*seed*/) {
  return std::make_unique<MemoryNodeStorage>();
}

std::unique_ptr<NodeStorage> make_disk_storage(ServerId /*id*/, std::uint64_t seed) {
  return std::make_unique<DiskNodeStorage>(seed);
}

}  // namespace keel::sim
