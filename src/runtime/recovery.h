// runtime/recovery.h — what Raft::open recovers from a server's stores, and
// the checks that stand between whatever a store hands back and the core.
//
// A LogStore or StableStore is input like any other: a bug, a bad disk or a
// store from another program can return gaps, terms that go down, entry
// types keel does not know, fewer entries than last_index() promised. open()
// refuses each with a Corruption that says what and where, instead of
// handing it to the core (whose invariant checks would abort the process).
//
// The log writer stores the hard state before the entries of the same
// write, so a log with entries always comes with a hard state at least as
// new: a log without any hard state is refused (the server may have voted
// in a term it no longer knows). One inconsistency from older stores, which
// wrote the entries first, is legitimate and repaired: entries of a term
// newer than the stored one (a follower that adopted the term from those
// very entries). The term is raised to the log's last term, with no vote,
// and stored before the server starts.
//
// With a snapshot (the newest valid one, restored into the FSM), only the
// log after it is read: the core's log starts right after the snapshot's
// last entry. A log store that starts later than that lost entries nothing
// covers: Corruption. A log that does not hold the snapshot's last entry
// (it ends before it, or holds another term there: a crash came between
// receiving a leader's snapshot and dropping the log it replaced) is reset
// to continue after the snapshot, as the install would have (Figure 13,
// rule 7).
//
// Thread safety: functions of their arguments (the stores are called from
// the opening thread).
#pragma once

#include <optional>
#include <vector>

#include "core/node.h"
#include "keel/log_store.h"
#include "keel/snapshot_store.h"
#include "keel/status.h"

namespace keel::runtime {

struct Recovered {
  core::HardState hard_state;
  // The log: entries after (base_index, base_term), the snapshot's end.
  Index base_index;
  Term base_term;
  std::vector<LogEntry> entries;
  // The newest in the log (thesis §4.1), else the snapshot's.
  Configuration configuration;
  // Entries read from the log store (for the tests that bound open's work).
  std::uint64_t entries_read = 0;
};

// The stored hard state; nullopt if none was ever stored.
Result<std::optional<core::HardState>> find_hard_state(const StableStore& store);
// The stored hard state; a zero one if none was ever stored.
Result<core::HardState> load_hard_state(const StableStore& store);

// Reads and checks both stores, the log after `snapshot` only; writes the
// raised hard state back if the log's last term is newer than the stored
// one, and resets a log that conflicts with the snapshot.
Result<Recovered> recover(LogStore& log_store, StableStore& stable_store,
                          const std::optional<SnapshotMeta>& snapshot);

// Checks entries read for [first, last]: contiguous, of non-decreasing
// terms of at least 1, of known types. Exposed for its tests.
Status check_log(const std::vector<LogEntry>& entries, Index first, Index last);

}  // namespace keel::runtime
