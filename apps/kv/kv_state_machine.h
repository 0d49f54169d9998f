// apps/kv/kv_state_machine.h — keel-kv's replicated state: keys with values
// and versions, the HTTP address each server advertises, and the blocking
// reads waiting for a key to change.
//
// A key's version is the index of the log entry that last wrote it, so a
// version names one write for good: `PUT ?cas=V` succeeds only if the key
// still holds what the write at V put there (V = 0: only if absent).
//
// Commands are the binary records encode_*() produce (docs/kv.md, "Log
// commands"); apply() answers with an encoded ApplyOutcome. An unknown or
// damaged command changes nothing and answers kBadCommand: every server
// reaches the same verdict, so the state stays identical everywhere.
//
// Thread safety: keel applies and restores on one thread; get(), list(),
// http_address() and wait_for_change() may be called from any thread at
// the same time (a shared mutex guards the map).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "keel/fsm.h"

namespace keel::kv {

struct KeyValue {
  std::string value;
  std::uint64_t version = 0;  // the index of the entry that wrote it
};

struct ApplyOutcome {
  enum class Code : std::uint8_t { kOk = 0, kCasFailed = 1, kBadCommand = 2 };
  Code code = Code::kOk;
  // kOk: the index that wrote (or deleted) the key. kCasFailed: the key's
  // version now (0: absent).
  std::uint64_t version = 0;
};

// The commands, as they travel through the log.
std::string encode_put(std::string_view key, std::string_view value,
                       std::optional<std::uint64_t> cas);
std::string encode_delete(std::string_view key, std::optional<std::uint64_t> cas);
// Records the HTTP address server `id` answers on (followers redirect to it).
std::string encode_set_http_address(std::uint64_t id, std::string_view address);
std::string encode_outcome(const ApplyOutcome& outcome);
Result<ApplyOutcome> decode_outcome(std::string_view bytes);

struct ListPage {
  std::vector<std::pair<std::string, std::uint64_t>> keys;  // key, version
  std::optional<std::string> next_after;                    // set when more follow
};

class KvStateMachine final : public Fsm {
 public:
  // `max_snapshot_bytes` bounds what restore() reads.
  explicit KvStateMachine(std::uint64_t max_snapshot_bytes);

  std::string apply(const LogEntry& entry) override;
  bool applies_quickly() const override { return true; }
  Result<std::unique_ptr<FsmSnapshot>> snapshot() override;
  Status restore(const SnapshotMeta& meta, SnapshotReader& reader) override;

  std::optional<KeyValue> get(const std::string& key) const;
  // Keys starting with `prefix` and after `after` (exclusive), in order, at
  // most `limit` of them.
  ListPage list(const std::string& prefix, const std::string& after, std::size_t limit) const;
  std::optional<std::string> http_address(std::uint64_t id) const;
  std::map<std::uint64_t, std::string> http_addresses() const;
  std::size_t key_count() const;

  // Blocking reads. Waits until `key`'s version is no longer
  // `observed_version` (0: absent) -- a write or a delete applied since the
  // caller read it --, until `deadline`, or until release_waiters() is
  // called; true if the key changed. At most `max_waiters` wait at once:
  // try_begin_wait is false when that many already do.
  bool try_begin_wait(std::size_t max_waiters);
  bool wait_for_change(const std::string& key, std::uint64_t observed_version,
                       std::chrono::steady_clock::time_point deadline);
  void end_wait();
  // Wakes every waiter now (leadership lost).
  void release_waiters();
  // Wakes every waiter now, and from now on no wait blocks (shutdown).
  void close_waiters();
  std::size_t waiters() const;

 private:
  void note_change(const std::string& key);
  std::uint64_t version_of(const std::string& key) const;

  const std::uint64_t max_snapshot_bytes_;
  mutable std::shared_mutex mutex_;
  std::map<std::string, KeyValue> data_;
  std::map<std::uint64_t, std::string> http_addresses_;

  mutable std::mutex wait_mutex_;
  std::condition_variable wait_cv_;
  std::size_t waiters_ = 0;
  std::uint64_t release_epoch_ = 0;
  bool closed_ = false;
  // Keys someone waits on, with how many wait: apply wakes the waiters
  // only when one of these changes.
  std::unordered_map<std::string, std::size_t> watched_;
};

}  // namespace keel::kv
