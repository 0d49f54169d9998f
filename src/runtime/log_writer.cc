#include "runtime/log_writer.h"

#include <algorithm>
#include <utility>

#include "core/codec.h"

namespace keel::runtime {

LogWriter::LogWriter(std::shared_ptr<LogStore> log_store,
                     std::shared_ptr<StableStore> stable_store,
                     std::shared_ptr<Executor> executor, std::size_t max_batch_entries,
                     OnDone on_done)
    : log_store_(std::move(log_store)),
      stable_store_(std::move(stable_store)),
      executor_(std::move(executor)),
      max_batch_entries_(max_batch_entries),
      on_done_(std::move(on_done)) {}

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
  while (!queue_.empty() && (batch.empty() || entries + queue_.front().entries.size() <=
                                                  max_batch_entries_)) {
    entries += queue_.front().entries.size();
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
  done.status = failed_ ? Status::io_error("log writer stopped after an earlier failure")
                        : write(batch, done.entries_written);
  if (!done.status.is_ok()) failed_ = true;
  for (WriteJob& job : batch) {
    if (job.entries.size() > 1) job.entries.erase(job.entries.begin(), job.entries.end() - 1);
  }
  done.jobs = std::move(batch);
  on_done_(std::move(done));
}

Status LogWriter::write(std::vector<WriteJob>& jobs, std::uint64_t& entries_written) {
  // Merge the jobs' entries into one append. A later job that starts at or
  // below the end of what is merged so far replaces that suffix (the leader
  // overwrote a conflicting tail between the two Readies).
  std::vector<LogEntry> merged;
  std::optional<core::HardState> hard_state;
  for (const WriteJob& job : jobs) {
    if (job.hard_state) hard_state = job.hard_state;
    if (job.entries.empty()) continue;
    const Index first = job.entries.front().index;
    std::erase_if(merged, [&](const LogEntry& e) { return e.index >= first; });
    merged.insert(merged.end(), job.entries.begin(), job.entries.end());
  }
  // Entries first, then the hard state: a hard state whose commit index runs
  // ahead of the stored log is tolerated on recovery, the reverse order would
  // not save anything.
  if (!merged.empty()) {
    Status status = log_store_->append(merged);
    if (!status.is_ok()) return status;
    entries_written = merged.size();
  }
  if (hard_state) {
    Status status = stable_store_->set(kHardStateKey, core::encode_hard_state(*hard_state));
    if (!status.is_ok()) return status;
  }
  return Status::ok();
}

}  // namespace keel::runtime
