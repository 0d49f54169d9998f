// storage/sim_fs.h — a disk in memory that forgets what was not synced.
//
// SimFileSystem implements FileSystem (storage/fs.h) with the durability
// rules of POSIX made explicit: every file has durable bytes and, on top, the
// writes made since its last sync; every directory has durable entries and,
// on top, the creations, renames and removals made since its last sync_dir.
// A crash keeps the durable state and, optionally (crash_and_tear), part of
// what was not synced; a file whose directory entry was never synced
// disappears with everything in it. That is how a store is caught relying
// on an fsync it never made.
//
// Where Linux is unkind, so is this disk (SimFsFidelity, each on by
// default): a crash keeps any subset of the unsynced writes, sector by
// sector, and of a directory's unsynced changes, not an in-order prefix; a
// failed fsync drops the file's unsynced writes (the page cache still shows
// them, the disk never gets them, and a later fsync succeeds without them);
// a failed write may have written a prefix of its bytes.
//
// Faults on demand: the next write, sync, rename... (optionally only for
// paths containing some text) fails with IoError, and a capacity makes
// writes that need more space fail with "no space left on device".
//
// Deterministic: the only randomness is the seed given to the constructor,
// used by crash_and_tear(). The simulator (src/sim) runs whole nodes on it.
// File contents live in memory, twice (durable and current), preallocated
// space included: give the stores small files there (for example
// WalOptions::segment_size_bytes of 1 MiB rather than the default 64 MiB).
//
// Thread safety: every method takes one mutex, so handles and the file
// system may be used from any thread (calls are serialised). After a crash,
// handles opened before it are stale and every call on them fails.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "keel/status.h"
#include "storage/fs.h"

namespace keel::storage {

enum class FsOperation : std::uint8_t {
  kCreate,  // open(..., kCreateNew) and create_dir
  kWrite,   // write_at and append
  kSync,    // sync_data and sync
  kAllocate,
  kTruncate,
  kRename,
  kRemove,
  kSyncDir,
};

struct SimFsFidelity {
  // crash_and_tear keeps a random subset of the unsynced writes (each
  // `sector_bytes`-aligned piece on its own) and of each directory's
  // unsynced changes; off: a random in-order prefix of each, torn at a byte.
  bool crash_reorders = true;
  std::uint64_t sector_bytes = 512;
  // An injected fsync failure drops the file's unsynced writes from what
  // can become durable; off: they stay pending and a retried fsync keeps
  // them.
  bool failed_sync_drops_writes = true;
  // An injected write failure first writes a random prefix of the bytes
  // (possibly none); off: it writes nothing.
  bool failed_write_is_partial = true;
};

struct SimFsCounters {
  std::uint64_t writes = 0;      // write_at and append calls that succeeded
  std::uint64_t file_syncs = 0;  // sync_data and sync calls that succeeded
  std::uint64_t dir_syncs = 0;
  std::uint64_t bytes_written = 0;
};

class SimFileSystem final : public FileSystem {
 public:
  explicit SimFileSystem(std::uint64_t seed = 1, SimFsFidelity fidelity = {});
  ~SimFileSystem() override;

  // --- FileSystem -------------------------------------------------------------
  Result<std::unique_ptr<File>> open(const std::string& path, OpenMode mode) override;
  Status create_dir(const std::string& path) override;
  Result<std::vector<std::string>> list_dir(const std::string& path) const override;
  Result<bool> is_dir(const std::string& path) const override;
  Result<bool> exists(const std::string& path) const override;
  Status rename(const std::string& from, const std::string& to) override;
  Status remove(const std::string& path) override;
  Status sync_dir(const std::string& path) override;

  // --- crashes ----------------------------------------------------------------
  // Power loss: every file keeps only its synced bytes, every directory only
  // its synced entries.
  void crash();
  // Power loss mid-flight: each file also keeps part of its unsynced writes,
  // each directory part of its unsynced changes (which part: see
  // SimFsFidelity::crash_reorders). Random from the seed.
  void crash_and_tear();
  // As crash(), except that the file at `path` keeps exactly the first
  // `bytes` bytes of its unsynced writes (in the order they were made).
  void crash_keeping_unsynced_bytes(const std::string& path, std::uint64_t bytes);
  // Bytes written to the file at `path` since its last sync (0 if none).
  std::uint64_t unsynced_bytes(const std::string& path) const;

  // --- faults -----------------------------------------------------------------
  // The next `operation` on a path containing `path_part` ("" for any path)
  // fails with IoError, after `skip` such operations have succeeded. Each
  // call arms one failure. What a failed write or fsync leaves behind: see
  // SimFsFidelity.
  void fail_next(FsOperation operation, std::string path_part = {}, std::uint64_t skip = 0);
  // As fail_next, but armed only once an operation `trigger` on a path
  // containing `trigger_path` has gone through: "the log's next write after
  // the hard state is stored", a crash between two stores' writes.
  void fail_next_after(FsOperation trigger, std::string trigger_path, FsOperation operation,
                       std::string path_part);
  // Disarms every armed failure that has not fired.
  void clear_faults();
  // The disk holds at most `capacity_bytes` bytes of file contents; a write,
  // allocate or truncate that would need more fails with IoError ("no space
  // left on device") and changes nothing.
  void set_capacity_bytes(std::uint64_t capacity_bytes);
  std::uint64_t used_bytes() const;

  // --- inspection -------------------------------------------------------------
  // The contents a read would see now (synced or not).
  Result<std::string> contents(const std::string& path) const;
  // XORs `mask` into the byte at `offset`, durably: a bit rotting on disk.
  Status corrupt(const std::string& path, std::uint64_t offset, std::uint8_t mask);
  SimFsCounters counters() const;

  struct Disk;  // the state, shared with open handles

 private:
  std::shared_ptr<Disk> disk_;
};

}  // namespace keel::storage
