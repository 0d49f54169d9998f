// storage/file_stores_fs.h — the stores of keel/file_stores.h on a
// FileSystem of the caller's choosing.
//
// keel/file_stores.h opens them on the real disk and names no internal
// type. keel's storage tests and the simulator (keel::sim) open the very
// same stores here on a SimFileSystem (storage/sim_fs.h), which loses and
// tears unsynced writes on a crash, or on a FileSystem that wraps the real
// one (a benchmark's that skips syncs). Options and promises are those of
// keel/file_stores.h.
//
// Thread safety: as keel/file_stores.h.
#pragma once

#include <memory>
#include <string>

#include "keel/file_stores.h"
#include "keel/status.h"
#include "storage/fs.h"

namespace keel::storage {

Result<std::shared_ptr<WalLogStore>> open_wal_log_store(const std::string& dir, WalOptions options,
                                                        std::shared_ptr<FileSystem> file_system);

Result<std::shared_ptr<FileStableStore>> open_file_stable_store(
    const std::string& dir, FileStableStoreOptions options,
    std::shared_ptr<FileSystem> file_system);

Result<std::shared_ptr<FileSnapshotStore>> open_file_snapshot_store(
    const std::string& dir, FileSnapshotStoreOptions options,
    std::shared_ptr<FileSystem> file_system);

}  // namespace keel::storage
