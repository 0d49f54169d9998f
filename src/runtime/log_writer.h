// runtime/log_writer.h — the component that makes the core's output durable.
//
// The raft loop submits one WriteJob per Ready that must persist something.
// The writer, on its own executor, takes every job waiting (up to a bound),
// writes all their entries with one LogStore::append (group commit: many
// proposals, one durable write) and the newest hard state with one
// StableStore::set, then reports the jobs back, in order, to the loop, which
// may then send their after-persist messages and acknowledge the entries.
// A job that overwrites entries of an earlier job in the queue (a newer
// leader's conflicting entries) is not merged with it: each job's entries are
// durable by the time its acknowledgements leave.
//
// Two more kinds of write go through the same queue, so that they keep
// their order with the appends: a snapshot install (the log store is reset
// to continue after the snapshot, before the job's entries are appended)
// and a compaction (the log store's prefix is removed after them). A job
// carrying either is written in a batch of its own.
//
// After a failed write the writer refuses everything (fail-stop, DESIGN
// §2.3): it reports the failure and never touches the stores again.
//
// Thread safety: submit() from any thread; everything else runs on the
// writer's executor.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "core/message.h"
#include "core/ready.h"
#include "keel/env.h"
#include "keel/log_store.h"
#include "keel/status.h"

namespace keel::runtime {

inline constexpr char kHardStateKey[] = "keel.hard_state";

struct WriteJob {
  std::optional<core::HardState> hard_state;
  std::vector<LogEntry> entries;
  std::vector<core::Message> after_persist;
  // A snapshot installed: LogStore::reset(install->index) first.
  std::optional<core::SnapshotInstall> install;
  // Compaction: LogStore::truncate_prefix(*compact_to) last.
  std::optional<Index> compact_to;

  bool alone() const { return install.has_value() || compact_to.has_value(); }
};

struct WriteCompletion {
  Status status;
  // The jobs written, in submission order; entries are dropped but the last
  // entry of each job is kept so the loop can acknowledge it.
  std::vector<WriteJob> jobs;
  std::uint64_t entries_written = 0;
  // How long the stores took to make the batch durable (0 without a clock).
  Duration took{0};
};

class LogWriter : public std::enable_shared_from_this<LogWriter> {
 public:
  using OnDone = std::function<void(WriteCompletion)>;

  // `now`, if given, times each batch's write (WriteCompletion::took).
  LogWriter(std::shared_ptr<LogStore> log_store, std::shared_ptr<StableStore> stable_store,
            std::shared_ptr<Executor> executor, std::size_t max_batch_entries, OnDone on_done,
            std::function<Duration()> now = nullptr);

  void submit(WriteJob job);

#ifdef KEEL_CANARIES
  // Config::canary (core/canary.h); set before the first submit.
  void set_canary(std::uint8_t canary) { canary_ = canary; }
#endif

 private:
  void drain();
  std::vector<WriteJob> take_batch();
  Status write(std::vector<WriteJob>& jobs, std::uint64_t& entries_written);

  std::shared_ptr<LogStore> log_store_;
  std::shared_ptr<StableStore> stable_store_;
  std::shared_ptr<Executor> executor_;
  const std::size_t max_batch_entries_;
  OnDone on_done_;
  std::function<Duration()> now_;

  std::mutex mutex_;
  std::deque<WriteJob> queue_;
  bool drain_scheduled_ = false;
  bool failed_ = false;  // writer thread only
#ifdef KEEL_CANARIES
  std::uint8_t canary_ = 0;
#endif
};

}  // namespace keel::runtime
