// keel/file_stores.h — keel's stores on disk: a segmented write-ahead log
// (WalLogStore), a stable store for term and vote (FileStableStore) and a
// snapshot store (FileSnapshotStore). Each owns one directory.
//
//   auto log = keel::WalLogStore::open("/var/lib/app/raft/wal").value();
//   auto stable = keel::FileStableStore::open("/var/lib/app/raft/stable").value();
//
// What each promises (DESIGN §2.3; byte layouts in docs/formats.md):
//  - Durable on return: append(), truncate_prefix(), set() and a snapshot's
//    commit() return only after the bytes and the directory entries they
//    need are synced.
//  - Fail-stop: after a write or sync fails, every later write fails with
//    IoError (the OS may have dropped the unsynced data while reads still
//    return it, so retrying could acknowledge data that is gone). Reopen the
//    store, which recovers from what is really on disk, to go on.
//  - Recovery: a batch cut short by a crash at the end of the log is
//    dropped whole; damage anywhere else makes open() fail with Corruption
//    naming the file and the offset. Nothing is skipped silently.
//
// These stores use the real disk. keel's own tests and its simulator
// (keel::sim) open the same stores on a simulated disk that loses and tears
// unsynced writes on a crash; that door is internal (src/storage), so this
// header names no type an application could not use.
//
// Thread safety: every store may be used from any thread; calls are
// serialised by a mutex. One directory must be opened by one store at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "keel/log_store.h"
#include "keel/snapshot_store.h"
#include "keel/status.h"

namespace keel {

struct WalOptions {
  // Segment files are preallocated to this size, so that an append does not
  // grow the file (and make fdatasync write the inode) every time. A new
  // segment starts when a batch does not fit; a batch larger than this gets
  // a segment of its own size. Also the unit of compaction: a segment is
  // deleted once all of its entries are removed.
  std::uint64_t segment_size_bytes = 64ULL << 20;
  // Entries are packed into records of at most this many payload bytes (an
  // entry larger than this gets a record to itself). Reading one entry reads
  // its whole record, so this bounds the cost of a read.
  std::uint64_t max_record_bytes = 1ULL << 20;
  // Decoded records kept in memory for reads.
  std::uint64_t read_cache_bytes = 8ULL << 20;
  // Recovery reads segments this many bytes at a time.
  std::uint64_t recovery_read_chunk_bytes = 1ULL << 20;

  Status validate() const;
};

class WalLogStore : public LogStore {
 public:
  // Opens the log in `dir` (created if missing), recovering it: see above.
  static Result<std::shared_ptr<WalLogStore>> open(const std::string& dir, WalOptions options = {});

  // Segment files in the directory now.
  virtual std::size_t segment_count() const = 0;
};

struct FileStableStoreOptions {
  // The largest state file read back: all keys and values together.
  std::uint64_t max_file_bytes = 1ULL << 20;
};

// Keeps every key in one file, rewritten whole by set(): write a temporary
// file, fsync it, rename it over the old one, fsync the directory. A crash at
// any point leaves either the old or the new file, never a mixture.
class FileStableStore : public StableStore {
 public:
  static Result<std::shared_ptr<FileStableStore>> open(const std::string& dir,
                                                       FileStableStoreOptions options = {});
};

struct FileSnapshotStoreOptions {
  // Bytes buffered by a sink before it writes them to the file.
  std::uint64_t write_buffer_bytes = 1ULL << 20;
};

// One directory per snapshot (its bytes and its metadata), written under a
// temporary name and renamed into place once synced; kept until remove().
// Fail-stop like the WAL: after the first failed write, sync, rename,
// directory creation or removal, create(), commit() and remove() refuse
// with that failure until the store is reopened. commit() succeeds exactly
// when the snapshot is durable.
class FileSnapshotStore : public SnapshotStore {
 public:
  // `options` has no default here: FileSnapshotStore::open(dir) would read
  // like SnapshotStore::open(id). Pass {} for the defaults.
  static Result<std::shared_ptr<FileSnapshotStore>> open(const std::string& dir,
                                                         FileSnapshotStoreOptions options);
  using SnapshotStore::open;
};

}  // namespace keel
