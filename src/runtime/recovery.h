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
// Thread safety: functions of their arguments (the stores are called from
// the opening thread).
#pragma once

#include <optional>
#include <vector>

#include "core/node.h"
#include "keel/log_store.h"
#include "keel/status.h"

namespace keel::runtime {

struct Recovered {
  core::HardState hard_state;
  std::vector<LogEntry> entries;  // indices 1.. last
  Configuration configuration;    // the newest in the log (thesis §4.1)
};

// The stored hard state; nullopt if none was ever stored.
Result<std::optional<core::HardState>> find_hard_state(const StableStore& store);
// The stored hard state; a zero one if none was ever stored.
Result<core::HardState> load_hard_state(const StableStore& store);

// Reads and checks both stores; writes the raised hard state back if the
// log's last term is newer than the stored one.
Result<Recovered> recover(LogStore& log_store, StableStore& stable_store);

// Checks entries read for [first, last]: contiguous, of non-decreasing
// terms of at least 1, of known types. Exposed for its tests.
Status check_log(const std::vector<LogEntry>& entries, Index first, Index last);

}  // namespace keel::runtime
