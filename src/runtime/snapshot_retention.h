// runtime/snapshot_retention.h — which snapshots a server keeps: the newest
// Config::snapshot_retain, and any that something still reads.
//
// keel::Raft wraps the user's SnapshotStore in a RetainingSnapshotStore, so
// that every snapshot the server stores (one it took, one a leader sent, one
// a restore staged) goes through commit() here, and every snapshot it reads
// (a restore, a transfer to a follower, Raft::open_snapshot) through open().
// After each commit the snapshots beyond the newest `retain` are removed
// from the store, except those with a reader still open: a transfer that
// rewinds opens its snapshot again, and a pruned one would make it start
// over with another; a reader handed to the user must not lose its snapshot
// to the next automatic one. Such a snapshot is removed by the first commit
// after its last reader is gone. A snapshot past the FSM's applied index (a
// leader's, received and not yet installed; one a restore staged) is not
// counted and not removed: the FSM will restore from it, and a newer one
// received meanwhile must not take it away; it is pruned like the others
// once the FSM has applied past it. The snapshot just committed is never
// removed by its own commit, even if it is not among the newest (a
// follower's own snapshot committed after a leader's newer one): the next
// commit removes it. Damaged snapshots are left for an operator.
//
// A failed removal is logged and stops the pruning of that commit; the
// store decides what it means (the file store stops: fail-stop), and the
// snapshot just committed stays committed.
//
// Thread safety: a SnapshotStore, usable from any thread. Pruning runs on
// the thread that commits (the snapshotter's, the applier's or the
// transfer executor's, never the raft loop); a reader may be dropped on any
// thread, the loop included, and takes only a short lock then.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "keel/snapshot_store.h"

namespace keel::runtime {

class RetainingSnapshotStore final : public SnapshotStore,
                                     public std::enable_shared_from_this<RetainingSnapshotStore> {
 public:
  using Log = std::function<void(const std::string&)>;

  // `retain` is at least 1 (Config::validate).
  static std::shared_ptr<RetainingSnapshotStore> make(std::shared_ptr<SnapshotStore> store,
                                                      std::size_t retain, Log log);

  Result<std::unique_ptr<SnapshotSink>> create(const SnapshotMeta& meta) override;
  Result<SnapshotList> list() const override { return store_->list(); }
  Result<Opened> open(const std::string& id) override;
  // Unavailable while a reader of it is open.
  Status remove(const std::string& id) override;

  // Removes the snapshots beyond the newest `retain` that no reader holds,
  // never `committed` (the one just committed, whose caller was told it is
  // there). Called after every commit through this store.
  void prune(const std::string& committed);

  // The FSM's applied index now (any thread; raised by the applier as it
  // applies, before it can capture a snapshot past the previous value).
  void set_applied(Index applied) { applied_.store(applied.value); }

  // Readers open now, per snapshot id (for tests).
  std::size_t readers_open(const std::string& id) const;

 private:
  RetainingSnapshotStore(std::shared_ptr<SnapshotStore> store, std::size_t retain, Log log);

  class Sink;
  class Reader;
  void release(const std::string& id);

  const std::shared_ptr<SnapshotStore> store_;
  const std::size_t retain_;
  const Log log_;
  std::mutex prune_mutex_;            // one prune or remove() at a time
  mutable std::mutex readers_mutex_;  // guards readers_; never held across I/O
  std::map<std::string, std::size_t> readers_;
  std::atomic<std::uint64_t> applied_{0};
};

}  // namespace keel::runtime
