#include "runtime/log_writer.h"

#include <algorithm>
#include <utility>

#include "core/canary.h"
#include "core/codec.h"

namespace keel::runtime {

LogWriter::LogWriter(std::shared_ptr<LogStore> log_store, std::shared_ptr<StableStore> stable_store,
                     std::shared_ptr<Executor> executor, std::size_t max_batch_entries,
                     OnDone on_done, std::function<Duration()> now)
    : log_store_(std::move(log_store)),
      stable_store_(std::move(stable_store)),
      executor_(std::move(executor)),
      max_batch_entries_(max_batch_entries),
      on_done_(std::move(on_done)),
      now_(std::move(now)) {}

void LogWriter::submit(WriteJob job) {
  std::lock_guard lock(mutex_);
  queue_.push_back(std::move(job));
  if (drain_scheduled_) return;
  drain_scheduled_ = true;
  executor_->post([self = shared_from_this()] { self->drain(); });
}

std::vector<WriteJob> LogWriter::take_batch() {
  std::lock_guard lock(mutex_);
  std::vector<WriteJob> batch;
  std::size_t entries = 0;
  Index batch_end;  // the last index the batch writes so far
  while (!queue_.empty() &&
         (batch.empty() || entries + queue_.front().entries.size() <= max_batch_entries_)) {
    const WriteJob& next = queue_.front();
    if (!batch.empty() && (next.alone() || batch.back().alone())) break;
    // A job that replaces entries an earlier job of the batch writes (a newer
    // leader overwrote them) starts a batch of its own. Merged, the earlier
    // entries would never reach the disk, yet the earlier job's
    // acknowledgements would still go out once the batch is written: a
    // follower would promise a leader entries it never stored.
    if (!batch.empty() && !next.entries.empty() && next.entries.front().index <= batch_end) break;
    if (!next.entries.empty()) batch_end = next.entries.back().index;
    entries += next.entries.size();
    batch.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  if (queue_.empty()) {
    drain_scheduled_ = false;
  } else {
    executor_->post([self = shared_from_this()] { self->drain(); });
  }
  return batch;
}

void LogWriter::drain() {
  std::vector<WriteJob> batch = take_batch();
  if (batch.empty()) return;
  WriteCompletion done;
  const Duration started = now_ ? now_() : Duration{0};
  done.status = failed_ ? Status::io_error("log writer stopped after an earlier failure")
                        : write(batch, done.entries_written);
  if (now_) done.took = now_() - started;
  if (!done.status.is_ok()) failed_ = true;
  for (WriteJob& job : batch) {
    if (job.entries.size() > 1) job.entries.erase(job.entries.begin(), job.entries.end() - 1);
  }
  done.jobs = std::move(batch);
  on_done_(std::move(done));
}

Status LogWriter::write(std::vector<WriteJob>& jobs, std::uint64_t& entries_written) {
  // One append for the whole batch. take_batch() never puts a job that
  // overwrites an earlier job's entries in the same batch, so the jobs'
  // entries follow one another; the first job's may replace a stored suffix
  // (LogStore::append truncates first).
  std::vector<LogEntry> merged;
  std::optional<core::HardState> hard_state;
  for (const WriteJob& job : jobs) {
    if (job.hard_state) hard_state = job.hard_state;
    merged.insert(merged.end(), job.entries.begin(), job.entries.end());
  }
  // A job that resets or compacts is alone in its batch (take_batch).
  const WriteJob& only = jobs.front();
  // The hard state first, then the entries: a crash between the two leaves
  // a term at least as new as every stored entry, so a server whose log
  // holds entries always holds its term and vote (open refuses a log
  // without them). Its commit index must not cover the entries of this
  // write: they may replace a stored suffix, and if the crash comes before
  // they do, recovery would find the old entries at those indices and take
  // them as committed. Everything before the write's first entry is stored
  // already and matched the leader when it was sent, so that is where the
  // stored commit stops (a lower commit on recovery is only learned again).
  bool clamp = true;
#ifdef KEEL_CANARIES
  clamp = canary_ != static_cast<std::uint8_t>(core::Canary::kStoredCommitCoversEntries);
#endif
  if (hard_state) {
    core::HardState stored = *hard_state;
    if (!merged.empty() && clamp) {
      stored.commit = std::min(stored.commit, merged.front().index.prev());
    }
    Status status = stable_store_->set(kHardStateKey, core::encode_hard_state(stored));
    if (!status.is_ok()) return status;
  }
  if (only.install) {
    // The snapshot is durable in the snapshot store already; from here on
    // the log continues after it, and nothing of the log it replaced is
    // left to come back after a crash.
    Status status = log_store_->reset(only.install->index);
    if (!status.is_ok()) return status;
  }
  if (!merged.empty()) {
    Status status = log_store_->append(merged);
    if (!status.is_ok()) return status;
    entries_written = merged.size();
  }
  if (only.compact_to) {
    Status status = log_store_->truncate_prefix(*only.compact_to);
    if (!status.is_ok()) return status;
  }
  return Status::ok();
}

}  // namespace keel::runtime
