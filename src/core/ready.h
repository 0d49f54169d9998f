// core/ready.h — what a Node asks its shell to do, and in which order.
//
// Contract (the shell must keep it, or Raft's safety is lost):
//   1. Persist `hard_state` (if set), `snapshot` (if set) and `entries` (if
//      any). A snapshot to install is already durable in the shell's
//      snapshot store (it was received whole before the core heard of it);
//      installing it means dropping every stored entry, so that the log
//      continues right after snapshot->index (Figure 13, rule 7: the core
//      hands out an install only when its log conflicted with the snapshot
//      or ended before it; a matching log is kept, and no install is asked
//      for). Before appending `entries`, drop every stored entry at index
//      >= entries.front().index: they conflicted with the leader and were
//      replaced.
//   2. Send `messages` at once: they are a leader's appends and heartbeats
//      of a term that is already durable, which may go out in parallel with
//      its own disk write of the entries (thesis §10.2.1).
//   3. Only after step 1 is durable, send `messages_after_persist` (votes,
//      append acknowledgements, a new leader's first appends, ...: each
//      promises something about durable state), call
//      Node::on_persisted(last entry's index, term) -- with no entries, the
//      snapshot's index and term -- and, if `hard_state` was set,
//      Node::on_term_persisted(hard_state->term).
//      Readies must be persisted in the order they were produced, and
//      `messages_after_persist` must also wait for every earlier Ready's
//      write still in flight: a vote reply must not overtake the write of
//      the term it was given in. Only when this Ready persists nothing and
//      no earlier write is in flight may step 3 follow step 2 at once.
//   4. With a `snapshot`, replace the state machine's state by the
//      snapshot's and call Node::on_applied(snapshot->index), before any
//      entry after it is applied. Apply `committed_entries` in order, then
//      call Node::on_applied().
//   5. Serve `read_states` once the state machine has applied through each
//      one's index; hand `events` to observers.
//
// Thread safety: a value.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "core/message.h"
#include "keel/status.h"
#include "keel/types.h"

namespace keel::core {

// What must survive a crash: the current term, the vote cast in it, and the
// commit index (the last is an optimisation; Raft can recompute it). A
// server that started with empty stores (new, or wiped and added back under
// its id) also keeps the index its log must reach before it may campaign,
// or vote for a candidate whose log is behind (the term of the leader that
// named it, that index) (Node::catch_up_floor); 0 once it has.
struct HardState {
  Term term;
  ServerId vote;
  Index commit;
  Index catch_up_floor{};
  Term catch_up_floor_term{};

  bool operator==(const HardState&) const = default;
};

enum class Role : std::uint8_t { kFollower, kPreCandidate, kCandidate, kLeader };

const char* to_string(Role role);

// A read request that may be served once the state machine has applied
// through `index` (ReadIndex, thesis §6.4), or that failed with `status`.
struct ReadState {
  std::uint64_t request_id = 0;
  Index index;
  Status status;
};

enum class EventKind : std::uint8_t {
  kRoleChanged,    // `role` and `term` are the new ones
  kLeaderChanged,  // `leader` is the newly known leader (kNoServer: none known)
  // This node leads `term`, its term-start entry at `index` is committed and
  // applied locally, so its state machine reflects every committed entry.
  kLeaderReady,
};

struct Event {
  EventKind kind = EventKind::kRoleChanged;
  Role role = Role::kFollower;
  Term term;
  ServerId leader;
  Index index;

  bool operator==(const Event&) const = default;
};

// A snapshot received from the leader that this node must install (see
// step 1 above): the last entry it covers, and the configuration as of it.
struct SnapshotInstall {
  Index index;
  Term term;
  Configuration configuration;
  Index configuration_index;

  bool operator==(const SnapshotInstall&) const = default;
};

struct Ready {
  std::optional<HardState> hard_state;
  std::optional<SnapshotInstall> snapshot;
  std::vector<LogEntry> entries;
  std::vector<Message> messages;
  std::vector<Message> messages_after_persist;
  std::vector<LogEntry> committed_entries;
  std::vector<ReadState> read_states;
  std::vector<Event> events;

  bool empty() const {
    return !hard_state && !snapshot && entries.empty() && messages.empty() &&
           messages_after_persist.empty() && committed_entries.empty() && read_states.empty() &&
           events.empty();
  }
  bool must_persist() const {
    return hard_state.has_value() || snapshot.has_value() || !entries.empty();
  }
};

}  // namespace keel::core
