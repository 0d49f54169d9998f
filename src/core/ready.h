// core/ready.h — what a Node asks its shell to do, and in which order.
//
// Contract (the shell must keep it, or Raft's safety is lost):
//   1. Persist `hard_state` (if set) and `entries` (if any). Before appending
//      `entries`, drop every stored entry at index >= entries.front().index:
//      they conflicted with the leader and were replaced.
//   2. Send `messages` at once: they are a leader's appends and heartbeats,
//      which may go out in parallel with its own disk write (thesis §10.2.1).
//   3. Only after step 1 is durable, send `messages_after_persist` (votes,
//      append acknowledgements, ...: each promises something about durable
//      state) and call Node::on_persisted(last entry's index, term).
//      Readies must be persisted in the order they were produced; with
//      nothing to persist, step 3 may follow step 2 immediately.
//   4. Apply `committed_entries` in order, then call Node::on_applied().
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
// commit index (the last is an optimisation; Raft can recompute it).
struct HardState {
  Term term;
  ServerId vote;
  Index commit;

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

struct Ready {
  std::optional<HardState> hard_state;
  std::vector<LogEntry> entries;
  std::vector<Message> messages;
  std::vector<Message> messages_after_persist;
  std::vector<LogEntry> committed_entries;
  std::vector<ReadState> read_states;
  std::vector<Event> events;

  bool empty() const {
    return !hard_state && entries.empty() && messages.empty() && messages_after_persist.empty() &&
           committed_entries.empty() && read_states.empty() && events.empty();
  }
  bool must_persist() const { return hard_state.has_value() || !entries.empty(); }
};

}  // namespace keel::core
