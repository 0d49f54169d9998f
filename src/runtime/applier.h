// runtime/applier.h — the component that feeds committed entries to the FSM.
//
// The raft loop hands over committed entries in log order, each with the
// promise of the apply() or barrier() call that proposed it on this server
// (if any). On its own executor the applier calls the FSM (apply_batch for a
// BatchingFsm, in runs of consecutive commands), resolves the promises, and
// reports the new applied index back to the loop. A barrier resolves here,
// after every entry before it has been applied: that is its whole meaning.
//
// Snapshots pass through here too, in order with the entries: capture()
// asks the FSM for a view of its state as of the last entry applied (and
// names that entry), restore() replaces the FSM's state by a snapshot from
// the store (a follower installing its leader's snapshot) and reports the
// snapshot's index as applied.
//
// Thread safety: submit() from any thread; the FSM is only ever called from
// the applier's executor.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "keel/env.h"
#include "keel/fsm.h"
#include "keel/snapshot_store.h"
#include "keel/future.h"
#include "keel/raft.h"

namespace keel::runtime {

struct ApplyItem {
  LogEntry entry;
  std::optional<Promise<ApplyResult>> apply;  // a command proposed here
  std::optional<Promise<Index>> barrier;      // a barrier proposed here
};

// What capture() hands back: the FSM's view, and the entry it reflects.
struct Captured {
  Result<std::unique_ptr<FsmSnapshot>> snapshot;
  Index index;
  Term term;
};

class Applier : public std::enable_shared_from_this<Applier> {
 public:
  // on_applied runs on the applier's executor after each batch and restore;
  // on_failed when a restore fails (the FSM's state is then unknown).
  // `applied` is the entry the FSM reflects at the start (a restored
  // snapshot's, or 0/0).
  Applier(std::shared_ptr<Fsm> fsm, std::shared_ptr<SnapshotStore> snapshots,
          std::shared_ptr<Executor> executor, Index applied_index, Term applied_term,
          std::function<void(Index)> on_applied, std::function<void(Status)> on_failed);

  void submit(std::vector<ApplyItem> items);
  // After everything submitted before: calls Fsm::snapshot() and hands the
  // result to `done`, on the applier's executor.
  void capture(std::function<void(Captured)> done);
  // After everything submitted before: restores the FSM from the stored
  // snapshot `id`, which ends at (index, term).
  void restore(std::string id, Index index, Term term);

 private:
  void apply(std::vector<ApplyItem>& items);
  void apply_commands(std::vector<ApplyItem>& items, std::size_t begin, std::size_t end);

  void restore_now(const std::string& id, Index index, Term term);

  std::shared_ptr<Fsm> fsm_;
  BatchingFsm* batching_fsm_;  // fsm_ as a BatchingFsm, or null
  std::shared_ptr<SnapshotStore> snapshots_;
  std::shared_ptr<Executor> executor_;
  std::function<void(Index)> on_applied_;
  std::function<void(Status)> on_failed_;
  // The entry the FSM reflects (applier's executor only).
  Index applied_index_;
  Term applied_term_;
};

}  // namespace keel::runtime
