// runtime/applier.h — the component that feeds committed entries to the FSM.
//
// The raft loop hands over committed entries in log order, each with the
// promise of the apply() or barrier() call that proposed it on this server
// (if any). On its own executor the applier calls the FSM (apply_batch for a
// BatchingFsm, in runs of consecutive commands), resolves the promises, and
// reports the new applied index back to the loop. A barrier resolves here,
// after every entry before it has been applied: that is its whole meaning.
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
#include "keel/future.h"
#include "keel/raft.h"

namespace keel::runtime {

struct ApplyItem {
  LogEntry entry;
  std::optional<Promise<ApplyResult>> apply;  // a command proposed here
  std::optional<Promise<Index>> barrier;      // a barrier proposed here
};

class Applier : public std::enable_shared_from_this<Applier> {
 public:
  // on_applied runs on the applier's executor after each batch.
  Applier(std::shared_ptr<Fsm> fsm, std::shared_ptr<Executor> executor,
          std::function<void(Index)> on_applied);

  void submit(std::vector<ApplyItem> items);

 private:
  void apply(std::vector<ApplyItem>& items);
  void apply_commands(std::vector<ApplyItem>& items, std::size_t begin, std::size_t end);

  std::shared_ptr<Fsm> fsm_;
  BatchingFsm* batching_fsm_;  // fsm_ as a BatchingFsm, or null
  std::shared_ptr<Executor> executor_;
  std::function<void(Index)> on_applied_;
};

}  // namespace keel::runtime
