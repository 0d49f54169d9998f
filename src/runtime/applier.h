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
// A run of kRestore entries (Raft::restore, runtime/restore_entry.h) is
// staged here: the pieces are gathered as they apply, and at the last one
// the FSM restores the whole, and only then is it committed to the store as
// a snapshot under that entry's index and term (so a restart never lists a
// restore snapshot its FSM did not take). A run cut short by a change of leader is
// dropped at the first entry that does not continue it. While a run is
// staged no snapshot can be captured (its point would fall inside the run).
// Commands the restore overtook (proposed here before it, not yet committed
// when it entered the log) are applied like any other, but their futures
// wait for the run: AbortedByRestore if it completes (their effect is gone),
// their response if it was cut short.
//
// Thread safety: submit() from any thread; the FSM is only ever called from
// the applier's executor.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "keel/env.h"
#include "keel/fsm.h"
#include "keel/future.h"
#include "keel/raft.h"
#include "keel/snapshot_store.h"

namespace keel::runtime {

struct ApplyItem {
  LogEntry entry;
  std::optional<Promise<ApplyResult>> apply;  // a command proposed here
  // A barrier proposed here. (On the last entry of a restore run, the
  // restore()'s promise: the loop resolves it, not the applier.)
  std::optional<Promise<Index>> barrier;
  // A command a restore overtook: the first index of that restore's run.
  Index overtaken_by;
};

// What capture() hands back: the FSM's view, and the entry it reflects.
struct Captured {
  Result<std::unique_ptr<FsmSnapshot>> snapshot;
  Index index;
  Term term;
};

// A restore run being written into the store (the applier's, below).
struct StagedRestore {
  Index first;
  Index last;
  Term term;
  std::uint32_t next = 1;  // the piece expected next
  std::uint64_t total_bytes = 0;
  std::uint32_t crc32c = 0;  // expected
  Configuration configuration;
  Index configuration_index;
  std::string bytes;  // the pieces so far (at most max_restore_bytes on the leader)
};
// A command a restore overtook, applied, its future held until the run ends.
struct OvertakenCommand {
  Promise<ApplyResult> promise;
  ApplyResult result;
  Index restore_first;
};

class Applier : public std::enable_shared_from_this<Applier> {
 public:
  struct Hooks {
    // After each batch and restore, with the entry the FSM now reflects.
    std::function<void(Index)> on_applied;
    // When a restore fails (the FSM's state is then unknown) or a restore
    // run cannot be staged: the server must stop.
    std::function<void(Status)> on_failed;
    // When a restore run's snapshot is committed in the store and the FSM
    // holds it (before the on_applied that covers its index).
    std::function<void(const SnapshotMeta&)> on_restored;
    // Optional: after the FSM applied a run of `commands`, how long it took
    // (timed with `now`).
    std::function<Duration()> now;
    std::function<void(std::size_t commands, Duration took)> on_commands_applied;
  };
  // All on the applier's executor. `applied` is the entry the FSM reflects
  // at the start (a restored snapshot's, or 0/0).
  Applier(std::shared_ptr<Fsm> fsm, std::shared_ptr<SnapshotStore> snapshots,
          std::shared_ptr<Executor> executor, Index applied_index, Term applied_term, Hooks hooks);

  void submit(std::vector<ApplyItem> items);
  // After everything submitted before: calls Fsm::snapshot() and hands the
  // result to `done`, on the applier's executor.
  void capture(std::function<void(Captured)> done);
  // After everything submitted before: restores the FSM from the stored
  // snapshot `id`, which ends at (index, term).
  void restore(std::string id, Index index, Term term);
#ifdef KEEL_CANARIES
  // Before submit(): a deliberately broken rule (core/canary.h).
  void set_canary(std::uint8_t canary) { canary_ = canary; }
#endif

 private:
  void apply(std::vector<ApplyItem>& items);
  void apply_commands(std::vector<ApplyItem>& items, std::size_t begin, std::size_t end);

  void restore_now(const std::string& id, Index index, Term term);
  // A kRestore entry; false if the server must stop (on_failed was called).
  bool apply_restore_piece(ApplyItem& item);
  bool finish_restore();
  void drop_staged();
  // Writes a restore's snapshot into the store and commits it.
  Result<SnapshotMeta> store_restored(const SnapshotMeta& meta, std::string_view bytes);
  // Reports a failure the server must stop on, and applies nothing more.
  void fail(Status status);
  // After the entry at `index`: resolves, with their responses, the
  // overtaken commands whose restore can no longer complete (their run was
  // not started there, or was cut short).
  void release_overtaken(Index index);

  std::shared_ptr<Fsm> fsm_;
  BatchingFsm* batching_fsm_;  // fsm_ as a BatchingFsm, or null
  std::shared_ptr<SnapshotStore> snapshots_;
  std::shared_ptr<Executor> executor_;
  Hooks hooks_;
  bool failed_ = false;  // see fail()
#ifdef KEEL_CANARIES
  std::uint8_t canary_ = 0;
#endif
  std::optional<StagedRestore> staged_;
  std::vector<OvertakenCommand> overtaken_;
  // The entry the FSM reflects (applier's executor only).
  Index applied_index_;
  Term applied_term_;
};

}  // namespace keel::runtime
