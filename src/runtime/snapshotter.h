// runtime/snapshotter.h — the component that writes a snapshot out.
//
// The applier captures the FSM's view (Fsm::snapshot) between two applies;
// the snapshotter, on an executor of its own (FsmSnapshot::persist may take
// long and block on disk), streams that view into a new snapshot of the
// store, commits it, releases the view and reports the outcome to the loop.
// Only a committed snapshot is reported as taken, and only then may the
// loop compact the log up to it: compaction never outruns durability.
//
// Thread safety: persist() from any thread; the work runs on the
// snapshotter's executor.
#pragma once

#include <atomic>
#include <functional>
#include <memory>

#include "keel/env.h"
#include "keel/fsm.h"
#include "keel/snapshot_store.h"
#include "keel/status.h"

namespace keel::runtime {

class Snapshotter : public std::enable_shared_from_this<Snapshotter> {
 public:
  using OnDone = std::function<void(Result<SnapshotMeta>)>;

  Snapshotter(std::shared_ptr<SnapshotStore> store, std::shared_ptr<Executor> executor,
              OnDone on_done);

  // Writes `snapshot` as a snapshot with meta's index, term and
  // configuration; on_done (on the snapshotter's executor) gets the
  // committed metadata or the error.
  void persist(std::shared_ptr<FsmSnapshot> snapshot, SnapshotMeta meta);
  // From now on every write of a persist fails with Shutdown, so that a
  // long persist ends soon (any thread).
  void cancel() { cancelled_->store(true); }

 private:
  Result<SnapshotMeta> write(FsmSnapshot& snapshot, const SnapshotMeta& meta);

  std::shared_ptr<SnapshotStore> store_;
  std::shared_ptr<Executor> executor_;
  OnDone on_done_;
  std::shared_ptr<std::atomic<bool>> cancelled_ = std::make_shared<std::atomic<bool>>(false);
};

}  // namespace keel::runtime
