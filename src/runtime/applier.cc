#include "runtime/applier.h"

#include <utility>

#include "core/canary.h"
#include "core/crc32c.h"
#include "runtime/restore_entry.h"

namespace keel::runtime {

Applier::Applier(std::shared_ptr<Fsm> fsm, std::shared_ptr<SnapshotStore> snapshots,
                 std::shared_ptr<Executor> executor, Index applied_index, Term applied_term,
                 Hooks hooks)
    : fsm_(std::move(fsm)),
      batching_fsm_(dynamic_cast<BatchingFsm*>(fsm_.get())),
      snapshots_(std::move(snapshots)),
      executor_(std::move(executor)),
      hooks_(std::move(hooks)),
      applied_index_(applied_index),
      applied_term_(applied_term) {}

void Applier::capture(std::function<void(Captured)> done) {
  executor_->post([self = shared_from_this(), done = std::move(done)] {
    bool refuse = self->staged_.has_value();
#ifdef KEEL_CANARIES
    if (self->canary_ == static_cast<std::uint8_t>(core::Canary::kSnapshotInsideRestore)) {
      refuse = false;
    }
#endif
    if (refuse) {
      // The FSM's state lies between the entries of a restore run: a
      // snapshot there could not be continued from after a restart.
      done(Captured{Status::unavailable("a restore is being applied"), self->applied_index_,
                    self->applied_term_});
      return;
    }
    done(Captured{self->fsm_->snapshot(), self->applied_index_, self->applied_term_});
  });
}

void Applier::restore(std::string id, Index index, Term term) {
  executor_->post([self = shared_from_this(), id = std::move(id), index, term] {
    self->restore_now(id, index, term);
  });
}

void Applier::restore_now(const std::string& id, Index index, Term term) {
  // The leader's snapshot replaces whatever a restore run had staged here,
  // and nobody can tell any more whether that run completed.
  drop_staged();
  for (OvertakenCommand& overtaken : overtaken_) {
    overtaken.promise.resolve(Status::outcome_unknown(
        "a snapshot from the leader was installed before the restore that overtook the "
        "command was known to complete"));
  }
  overtaken_.clear();
  Result<SnapshotStore::Opened> opened = snapshots_->open(id);
  Status status = opened.status();
  if (status.is_ok()) status = fsm_->restore(opened->meta, *opened->reader);
  if (!status.is_ok()) {
    hooks_.on_failed(Status::with_code(
        status.code(),
        "restoring the FSM from the leader's snapshot " + id + " failed: " + status.message()));
    return;
  }
  applied_index_ = index;
  applied_term_ = term;
  hooks_.on_applied(index);
}

void Applier::submit(std::vector<ApplyItem> items) {
  executor_->post(
      [self = shared_from_this(), items = std::move(items)]() mutable { self->apply(items); });
}

void Applier::apply(std::vector<ApplyItem>& items) {
  if (items.empty()) return;
  std::size_t i = 0;
  while (i < items.size()) {
    const LogEntry& entry = items[i].entry;
    if (entry.type == EntryType::kRestore) {
      if (!apply_restore_piece(items[i])) return;
      if (!overtaken_.empty()) release_overtaken(entry.index);
      ++i;
      continue;
    }
    if (staged_) drop_staged();  // the run was cut short: this entry took its place
    if (!overtaken_.empty()) release_overtaken(entry.index);
    if (entry.type != EntryType::kCommand) {
      // keel's own entries never reach the FSM. A barrier resolves here: all
      // entries before it were applied by the iterations before this one.
      if (items[i].barrier) items[i].barrier->resolve(entry.index);
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
  hooks_.on_applied(applied_index_);
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
    if (!items[i].apply) continue;
    ApplyResult result{items[i].entry.index, std::move(responses[i - begin])};
    if (!items[i].overtaken_by.is_zero()) {
      // Its fate is the restore's: told once the run completes or breaks.
      overtaken_.push_back(
          OvertakenCommand{*items[i].apply, std::move(result), items[i].overtaken_by});
      continue;
    }
    items[i].apply->resolve(std::move(result));
  }
}

bool Applier::apply_restore_piece(ApplyItem& item) {
  const LogEntry& entry = item.entry;
  Result<RestorePiece> decoded = decode_restore_piece(entry.data.view());
  if (!decoded.is_ok()) {
    hooks_.on_failed(Status::corruption("committed log entry " + std::to_string(entry.index.value) +
                                        ": " + decoded.status().message()));
    return false;
  }
  const RestorePiece& piece = *decoded;
  const bool continues = staged_ && piece.first == staged_->first &&
                         piece.number == staged_->next && entry.term == staged_->term &&
                         entry.index == piece.first + piece.number;
  if (!continues) {
    drop_staged();
    if (piece.number != 0 || entry.index != piece.first) {
      // Every run's first entry precedes the others, and no snapshot is
      // taken inside a run: this one's start was never applied here.
      hooks_.on_failed(Status::corruption(
          "committed log entry " + std::to_string(entry.index.value) + " is piece " +
          std::to_string(piece.number) + " of a restore that starts at " +
          std::to_string(piece.first.value) + ", which was not applied before it"));
      return false;
    }
    SnapshotMeta meta;
    meta.index = piece.last();
    meta.term = entry.term;
    meta.configuration = piece.configuration;
    meta.configuration_index = piece.configuration_index;
    Result<std::unique_ptr<SnapshotSink>> sink = snapshots_->create(meta);
    if (!sink.is_ok()) {
      hooks_.on_failed(Status::with_code(
          sink.status().code(), "cannot stage the restore at " + std::to_string(entry.index.value) +
                                    ": " + sink.status().message()));
      return false;
    }
    staged_.emplace();
    staged_->first = piece.first;
    staged_->last = piece.last();
    staged_->term = entry.term;
    staged_->total_bytes = piece.total_bytes;
    staged_->crc32c = piece.crc32c;
    staged_->sink = std::move(sink).value();
    staged_->next = 0;
  }
  StagedRestore& staged = *staged_;
  if (staged.written + piece.bytes.size() > staged.total_bytes) {
    hooks_.on_failed(Status::corruption("restore entry " + std::to_string(entry.index.value) +
                                        " holds more bytes than its snapshot"));
    return false;
  }
  Status written = staged.sink->write(piece.bytes);
  if (!written.is_ok()) {
    hooks_.on_failed(Status::with_code(written.code(), "cannot stage the restore at " +
                                                           std::to_string(staged.first.value) +
                                                           ": " + written.message()));
    return false;
  }
  staged.written += piece.bytes.size();
  staged.running_crc =
      core::crc32c_extend(staged.running_crc, piece.bytes.data(), piece.bytes.size());
  ++staged.next;
  if (entry.index == staged.last) return finish_restore(item);
  return true;
}

bool Applier::finish_restore(ApplyItem& item) {
  StagedRestore staged = std::move(*staged_);
  staged_.reset();
  if (staged.written != staged.total_bytes || staged.running_crc != staged.crc32c) {
    staged.sink->cancel();
    hooks_.on_failed(Status::corruption("the restore at " + std::to_string(staged.first.value) +
                                        ".." + std::to_string(staged.last.value) +
                                        " does not add up to its snapshot (size or checksum)"));
    return false;
  }
  Result<SnapshotMeta> committed = staged.sink->commit();
  Status status = committed.status();
  if (status.is_ok()) {
    Result<SnapshotStore::Opened> opened = snapshots_->open(committed->id);
    status = opened.status();
    if (status.is_ok()) status = fsm_->restore(opened->meta, *opened->reader);
  }
  if (!status.is_ok()) {
    hooks_.on_failed(Status::with_code(
        status.code(),
        "the restore at " + std::to_string(staged.last.value) + " failed: " + status.message()));
    return false;
  }
  applied_index_ = staged.last;
  applied_term_ = staged.term;
  hooks_.on_restored(*committed);
  for (OvertakenCommand& overtaken : overtaken_) {
    if (overtaken.restore_first != staged.first) continue;
    overtaken.promise.resolve(Status::with_code(
        StatusCode::kAbortedByRestore,
        "the command was applied at " + std::to_string(overtaken.result.index.value) +
            ", then undone by the restore at " + std::to_string(staged.last.value)));
  }
  std::erase_if(overtaken_,
                [&](const OvertakenCommand& o) { return o.restore_first == staged.first; });
  if (item.barrier) item.barrier->resolve(staged.last);
  return true;
}

void Applier::drop_staged() {
  if (!staged_) return;
  staged_->sink->cancel();
  staged_.reset();
}

void Applier::release_overtaken(Index index) {
  std::erase_if(overtaken_, [&](OvertakenCommand& overtaken) {
    if (index < overtaken.restore_first) return false;  // its restore is still ahead
    if (staged_ && staged_->first == overtaken.restore_first) return false;  // under way
    overtaken.promise.resolve(std::move(overtaken.result));
    return true;
  });
}

}  // namespace keel::runtime
