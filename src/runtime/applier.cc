#include "runtime/applier.h"

#include <utility>

namespace keel::runtime {

Applier::Applier(std::shared_ptr<Fsm> fsm, std::shared_ptr<SnapshotStore> snapshots,
                 std::shared_ptr<Executor> executor, Index applied_index, Term applied_term,
                 std::function<void(Index)> on_applied, std::function<void(Status)> on_failed)
    : fsm_(std::move(fsm)),
      batching_fsm_(dynamic_cast<BatchingFsm*>(fsm_.get())),
      snapshots_(std::move(snapshots)),
      executor_(std::move(executor)),
      on_applied_(std::move(on_applied)),
      on_failed_(std::move(on_failed)),
      applied_index_(applied_index),
      applied_term_(applied_term) {}

void Applier::capture(std::function<void(Captured)> done) {
  executor_->post([self = shared_from_this(), done = std::move(done)] {
    done(Captured{self->fsm_->snapshot(), self->applied_index_, self->applied_term_});
  });
}

void Applier::restore(std::string id, Index index, Term term) {
  executor_->post([self = shared_from_this(), id = std::move(id), index, term] {
    self->restore_now(id, index, term);
  });
}

void Applier::restore_now(const std::string& id, Index index, Term term) {
  Result<SnapshotStore::Opened> opened = snapshots_->open(id);
  Status status = opened.status();
  if (status.is_ok()) status = fsm_->restore(opened->meta, *opened->reader);
  if (!status.is_ok()) {
    on_failed_(Status::with_code(status.code(), "restoring the FSM from the leader's snapshot " +
                                                    id + " failed: " + status.message()));
    return;
  }
  applied_index_ = index;
  applied_term_ = term;
  on_applied_(index);
}

void Applier::submit(std::vector<ApplyItem> items) {
  executor_->post(
      [self = shared_from_this(), items = std::move(items)]() mutable { self->apply(items); });
}

void Applier::apply(std::vector<ApplyItem>& items) {
  if (items.empty()) return;
  std::size_t i = 0;
  while (i < items.size()) {
    if (items[i].entry.type != EntryType::kCommand) {
      // keel's own entries never reach the FSM. A barrier resolves here: all
      // entries before it were applied by the iterations before this one.
      if (items[i].barrier) items[i].barrier->resolve(items[i].entry.index);
      ++i;
      continue;
    }
    std::size_t end = i;
    while (end < items.size() && items[end].entry.type == EntryType::kCommand) ++end;
    apply_commands(items, i, end);
    i = end;
  }
  applied_index_ = items.back().entry.index;
  applied_term_ = items.back().entry.term;
  on_applied_(applied_index_);
}

void Applier::apply_commands(std::vector<ApplyItem>& items, std::size_t begin, std::size_t end) {
  std::vector<std::string> responses;
  if (batching_fsm_ != nullptr) {
    std::vector<LogEntry> run;
    run.reserve(end - begin);
    for (std::size_t i = begin; i < end; ++i) run.push_back(items[i].entry);
    responses = batching_fsm_->apply_batch(run);
    responses.resize(run.size());  // an FSM that returned too few: empty responses
  } else {
    for (std::size_t i = begin; i < end; ++i) responses.push_back(fsm_->apply(items[i].entry));
  }
  for (std::size_t i = begin; i < end; ++i) {
    if (items[i].apply) {
      items[i].apply->resolve(ApplyResult{items[i].entry.index, std::move(responses[i - begin])});
    }
  }
}

}  // namespace keel::runtime
