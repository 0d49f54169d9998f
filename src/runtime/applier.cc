#include "runtime/applier.h"

#include <algorithm>
#include <span>
#include <string_view>
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
    if (self->failed_) {
      done(Captured{Status::unavailable("the server is stopping"), self->applied_index_,
                    self->applied_term_});
      return;
    }
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
  if (failed_) return;  // stopping: the FSM's state is not to be trusted
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
    fail(Status::with_code(status.code(), "restoring the FSM from the leader's snapshot " + id +
                                              " failed: " + status.message()));
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
  // After a failure nothing more is applied or answered: the loop resolves
  // what is left (OutcomeUnknown) as the server stops.
  if (items.empty() || failed_) return;
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
  const bool timed = hooks_.now && hooks_.on_commands_applied;
  const Duration started = timed ? hooks_.now() : Duration{0};
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
  if (timed) hooks_.on_commands_applied(end - begin, hooks_.now() - started);
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
    fail(Status::corruption("committed log entry " + std::to_string(entry.index.value) + ": " +
                            decoded.status().message()));
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
      fail(Status::corruption("committed log entry " + std::to_string(entry.index.value) +
                              " is piece " + std::to_string(piece.number) +
                              " of a restore that starts at " + std::to_string(piece.first.value) +
                              ", which was not applied before it"));
      return false;
    }
    staged_.emplace();
    staged_->first = piece.first;
    staged_->last = piece.last();
    staged_->term = entry.term;
    staged_->total_bytes = piece.total_bytes;
    staged_->crc32c = piece.crc32c;
    staged_->configuration = piece.configuration;
    staged_->configuration_index = piece.configuration_index;
    staged_->bytes.reserve(std::min<std::uint64_t>(piece.total_bytes, 64ULL << 20));
    staged_->next = 0;
  }
  StagedRestore& staged = *staged_;
  if (staged.bytes.size() + piece.bytes.size() > staged.total_bytes) {
    fail(Status::corruption("restore entry " + std::to_string(entry.index.value) +
                            " holds more bytes than its snapshot"));
    return false;
  }
  staged.bytes.append(piece.bytes);
  ++staged.next;
  if (entry.index == staged.last) return finish_restore();
  return true;
}

bool Applier::finish_restore() {
  StagedRestore staged = std::move(*staged_);
  staged_.reset();
  const std::string where = "the restore at " + std::to_string(staged.first.value) + ".." +
                            std::to_string(staged.last.value);
  if (staged.bytes.size() != staged.total_bytes || core::crc32c(staged.bytes) != staged.crc32c) {
    fail(Status::corruption(where + " does not add up to its snapshot (size or checksum)"));
    return false;
  }
  SnapshotMeta meta;
  meta.index = staged.last;
  meta.term = staged.term;
  meta.configuration = std::move(staged.configuration);
  meta.configuration_index = staged.configuration_index;
  meta.size_bytes = staged.bytes.size();
  meta.crc32c = staged.crc32c;
  // The FSM first, the store after: a snapshot of the restore is listed
  // only once the FSM took it, so a restart never finds one its FSM may
  // not reflect (with restore_snapshot_on_start off) or one it refused.
  StringSnapshotReader reader(std::move(staged.bytes));
  Status status = fsm_->restore(meta, reader);
  if (!status.is_ok()) {
    fail(Status::with_code(status.code(),
                           where + ": the FSM refused the snapshot: " + status.message()));
    return false;
  }
  Result<SnapshotMeta> committed = store_restored(meta, reader.bytes());
  if (!committed.is_ok()) {
    // The FSM holds the restored state, but no snapshot backs it: the log
    // (the run included) must stay, and only a restart replays it.
    fail(Status::with_code(committed.status().code(),
                           where + ": cannot store its snapshot: " + committed.status().message()));
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
  // The restore's own future resolves on the loop, once stats agree
  // (RaftServer::finish_restored).
  return true;
}

Result<SnapshotMeta> Applier::store_restored(const SnapshotMeta& meta, std::string_view bytes) {
  Result<std::unique_ptr<SnapshotSink>> sink = snapshots_->create(meta);
  if (!sink.is_ok()) return sink.status();
  Status written = (*sink)->write(bytes);
  if (!written.is_ok()) {
    (*sink)->cancel();
    return written;
  }
  return (*sink)->commit();
}

void Applier::fail(Status status) {
  failed_ = true;
  hooks_.on_failed(std::move(status));
}

void Applier::drop_staged() { staged_.reset(); }

void Applier::release_overtaken(Index index) {
  std::erase_if(overtaken_, [&](OvertakenCommand& overtaken) {
    if (index < overtaken.restore_first) return false;  // its restore is still ahead
    if (staged_ && staged_->first == overtaken.restore_first) return false;  // under way
    overtaken.promise.resolve(std::move(overtaken.result));
    return true;
  });
}

}  // namespace keel::runtime
