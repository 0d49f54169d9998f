// core/read_index.h — a leader's read-only state (thesis §6.4): the read
// rounds it numbers its heartbeat broadcasts with, the ReadIndex reads
// waiting for a round to be confirmed, and the lease a confirmed round
// starts. The Node decides when a round is opened, which quorum confirmed
// which round (core/quorum.h), and what to send; this says what follows.
//
// A round proves leadership only as of its sending: a read joins a round
// whose heartbeats have not gone out yet, and the lease runs from when the
// confirmed round was sent.
//
// Thread safety: none; a value inside the Node's leader state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <utility>
#include <vector>

#include "keel/types.h"

namespace keel::core {

struct PendingRead {
  std::uint64_t request_id = 0;
  ServerId requester;  // this node, or the follower that forwarded the request
  Index index;         // the commit index when the read arrived
  std::uint64_t round = 0;
};

class ReadRounds {
 public:
  // The newest round (this leader's own echo of it, for the quorum).
  std::uint64_t round() const { return round_; }
  // A round was opened and its heartbeats have not gone out yet.
  bool round_pending() const { return round_pending_; }
  // The round the next heartbeats carry: the pending one, or a new one.
  // Returns it and whether it is new.
  std::pair<std::uint64_t, bool> open();
  // The oldest round sent and not yet confirmed, if any.
  std::optional<std::uint64_t> oldest_unconfirmed() const;
  // The pending round's heartbeats go out, at node tick `tick`.
  void sent(std::uint64_t tick);

  // A quorum echoed every round up to `confirmed`. The lease starts when that
  // round was sent (or at `now_tick` with `lease_from_ack`, a canary); the
  // reads it confirms are released, oldest first. Nothing if no newer round
  // than before is confirmed.
  std::vector<PendingRead> confirm(std::uint64_t confirmed, std::uint64_t now_tick,
                                   bool lease_from_ack);
  std::uint64_t confirmed() const { return confirmed_; }
  // When the lease began (node ticks), if a round was ever confirmed.
  std::optional<std::uint64_t> lease_start_tick() const { return lease_start_tick_; }
  // The configuration changed: the lease a quorum of the old one gave holds
  // nothing under the new one (leaving a joint configuration, C_new alone
  // elects), so none is held until a newer round is confirmed.
  void void_lease() { lease_start_tick_.reset(); }

  // Reads waiting for their round.
  std::size_t waiting() const { return pending_.size(); }
  bool is_waiting(ServerId requester, std::uint64_t request_id) const;
  void wait(PendingRead read) { pending_.push_back(read); }
  // Every waiting read, for a leader that steps down.
  std::vector<PendingRead> take_all();

 private:
  std::uint64_t round_ = 0;
  bool round_pending_ = false;
  std::uint64_t confirmed_ = 0;
  std::deque<PendingRead> pending_;
  // When each unconfirmed round was sent (node ticks), at most a bounded
  // number of them.
  std::deque<std::pair<std::uint64_t, std::uint64_t>> sent_ticks_;
  std::optional<std::uint64_t> lease_start_tick_;
};

}  // namespace keel::core
