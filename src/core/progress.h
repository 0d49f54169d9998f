// core/progress.h — what a leader knows about one follower's log, and the
// flow control that decides how much it may send that follower now.
//
// States (after the thesis §10.2 and common practice):
//   probe:     the leader does not know where the follower's log matches; it
//              sends one append at a time and waits for the answer.
//   replicate: the logs match up to match_index; the leader streams appends
//              optimistically, bounded by the in-flight window (count and
//              bytes), so a slow follower costs bounded memory.
//   snapshot:  the entries the follower needs next are compacted away; the
//              shell is sending it the snapshot at pending_snapshot, and no
//              append goes out until the follower acknowledges it (or the
//              shell reports the transfer failed: back to probe).
//
// Thread safety: a value owned by the leader role of one Node.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>

#include "keel/types.h"

namespace keel::core {

// The appends sent to one follower and not yet acknowledged.
class Inflights {
 public:
  Inflights(std::size_t max_count, std::uint64_t max_bytes)
      : max_count_(max_count), max_bytes_(max_bytes) {}

  void add(Index last_index, std::uint64_t bytes);
  // Forgets every append whose last index is <= index (acknowledged).
  void free_up_to(Index index);
  // Forgets the oldest append, whatever became of it.
  void free_first();
  void clear();

  bool full() const { return sent_.size() >= max_count_ || bytes_ >= max_bytes_; }
  std::size_t count() const { return sent_.size(); }
  std::uint64_t bytes() const { return bytes_; }

 private:
  struct Sent {
    Index last_index;
    std::uint64_t bytes = 0;
  };
  std::size_t max_count_;
  std::uint64_t max_bytes_;
  std::deque<Sent> sent_;
  std::uint64_t bytes_ = 0;
};

enum class ProgressState : std::uint8_t { kProbe, kReplicate, kSnapshot };

const char* to_string(ProgressState state);

struct Progress {
  Progress(Index next, std::size_t max_inflight_appends, std::uint64_t max_inflight_bytes)
      : next_index(next), inflights(max_inflight_appends, max_inflight_bytes) {}

  // Highest index known to be in the follower's log and to match ours.
  Index match_index;
  // Next index to send.
  Index next_index;
  ProgressState state = ProgressState::kProbe;
  // In probe state: an append is outstanding; send no other until an answer
  // (or a heartbeat response) arrives.
  bool probe_sent = false;
  Inflights inflights;
  // Heard from in the current check-quorum window.
  bool recent_active = false;
  // Highest read round this follower has confirmed in the leader's term.
  std::uint64_t read_round_acked = 0;
  // The highest commit index this follower can have learned from what we
  // sent (clamped to the entries each append verified).
  Index commit_sent;
  // In snapshot state: the index of the snapshot being sent.
  Index pending_snapshot;
  // Which life of this follower's progress a response answers: every
  // request carries it and every response echoes it, so that a response
  // to an earlier life (a server removed, wiped and added again under the
  // same id) cannot move this one. The latest configuration's index when
  // the progress was made.
  std::uint64_t epoch = 0;
  // Non-zero for a server the configuration at this index removed: the
  // leader goes on replicating to it until it holds that entry and knows
  // it committed (so it learns it was removed), or until the notice times
  // out at tick leaving_deadline.
  Index leaving_at;
  std::uint64_t leaving_deadline = 0;
  bool removal_told = false;
  // The read round of the first heartbeat that carried the removal's commit.
  std::uint64_t told_round = 0;

  // Records an acknowledgement up to `index`. Returns false if it was stale.
  bool acknowledge(Index index);
  void become_probe();
  void become_replicate();
  void become_snapshot(Index snapshot_index);
  // Whether the leader may send an append now.
  bool can_send() const;
  // A heartbeat response shows the follower is alive. If the window is full
  // of appends that were lost, nothing would ever be sent again: free one
  // slot so that one more append goes out; the follower rejects it (there is
  // a gap) and the rejection moves the follower back to probing.
  void on_heartbeat_response();
  // Records that an append ending at last_index with `bytes` was sent.
  void sent(Index last_index, std::uint64_t bytes, bool had_entries);
};

}  // namespace keel::core
