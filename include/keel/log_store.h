// keel/log_store.h — where the Raft log lives: the interface the runtime
// writes through, and a memory implementation for tests and benchmarks.
//
// Thread safety: the runtime calls append() from its log-writer thread and
// read()/first_index()/last_index() from the raft loop when it starts, so an
// implementation must be safe for calls from different threads (not
// necessarily concurrent ones, but with no thread affinity).
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "keel/status.h"
#include "keel/types.h"

namespace keel {

class LogStore {
 public:
  virtual ~LogStore() = default;

  // The first and last stored indices. An empty store reports last_index()
  // below first_index(), or 0 for both when it never held an entry.
  virtual Index first_index() const = 0;
  virtual Index last_index() const = 0;
  // Entries [from, to], both inclusive and stored.
  virtual Result<std::vector<LogEntry>> read(Index from, Index to) const = 0;
  // Removes every stored entry at index >= entries.front().index, then
  // appends `entries` (contiguous). Returns only once they are durable: the
  // runtime acknowledges entries to the leader after this returns. After a
  // failure the store must refuse every later append (fail-stop): data the
  // OS said it lost cannot be trusted to be anywhere.
  virtual Status append(std::span<const LogEntry> entries) = 0;
  // Removes every entry at index <= up_to (compaction, once a snapshot holds
  // them); up_to may be beyond the last entry, leaving an empty log that
  // continues at up_to + 1. Durable on return; an up_to below first_index()
  // changes nothing. Fail-stop like append().
  virtual Status truncate_prefix(Index up_to) = 0;
  // Removes every entry, whatever its index: the log is empty and continues
  // at base + 1 (which may lie below the last entry it held). Installing a
  // snapshot whose last entry the log does not hold calls this: nothing of
  // a log that conflicts with the snapshot may survive a crash. Durable and
  // atomic on return (after a crash the log is either the old one or the
  // empty one); fail-stop like append().
  virtual Status reset(Index base) = 0;
  // Whether append(), truncate_prefix() and reset() may wait on the disk (an
  // fdatasync). The runtime gives the log writer a thread of its own for a
  // store that may; a store that only touches memory returns false, and its
  // writes run on the raft loop's thread (see Config::thread_policy).
  virtual bool may_block() const { return true; }
};

class StableStore {
 public:
  virtual ~StableStore() = default;
  // Durable on return, atomically per key.
  virtual Status set(const std::string& key, std::string value) = 0;
  // NotFound if the key was never set.
  virtual Result<std::string> get(const std::string& key) const = 0;

  Status set_uint64(const std::string& key, std::uint64_t value);
  Result<std::uint64_t> get_uint64(const std::string& key) const;
};

// In memory; "durable" means "in this object". Can be told to fail, to test
// the runtime's fail-stop path. Also the model the WAL is tested against.
class MemoryLogStore final : public LogStore {
 public:
  Index first_index() const override;
  Index last_index() const override;
  Result<std::vector<LogEntry>> read(Index from, Index to) const override;
  Status append(std::span<const LogEntry> entries) override;
  Status truncate_prefix(Index up_to) override;
  Status reset(Index base) override;
  bool may_block() const override { return false; }

  // The next append fails with IoError, and so does every one after it.
  void fail_appends();
  // Appends calls so far (to observe group commit).
  std::uint64_t append_calls() const;

 private:
  mutable std::mutex mutex_;
  std::deque<StoredEntry> entries_;  // entries_[i] is index base_ + 1 + i
  Index base_{0};                    // entries up to here were removed
  bool failed_ = false;
  bool fail_next_ = false;
  std::uint64_t append_calls_ = 0;
};

class MemoryStableStore final : public StableStore {
 public:
  Status set(const std::string& key, std::string value) override;
  Result<std::string> get(const std::string& key) const override;

 private:
  mutable std::mutex mutex_;
  std::vector<std::pair<std::string, std::string>> values_;
};

}  // namespace keel
