// core/config.h — the knobs of one protocol node. Time is counted in ticks:
// the shell decides how long a tick is (the runtime maps its millisecond
// settings onto ticks), so the core never reads a clock.
//
// Thread safety: a value.
#pragma once

#include <cstddef>
#include <cstdint>

#include "keel/status.h"
#include "keel/types.h"

namespace keel::core {

struct CoreConfig {
  ServerId id;

  // A follower that hears nothing from a leader for a random number of ticks
  // in [election_timeout_ticks, 2 * election_timeout_ticks) starts an election.
  // The randomness keeps candidates from splitting votes forever (§5.2).
  std::uint32_t election_timeout_ticks = 10;
  // A leader sends heartbeats this often; must be well below the election
  // timeout so a healthy leader is never suspected.
  std::uint32_t heartbeat_interval_ticks = 1;

  // Pre-vote (thesis §9.6): a node asks whether it could win before raising
  // its term, so a node that was partitioned away cannot depose a healthy
  // leader when it returns.
  bool pre_vote = true;
  // Check-quorum (thesis §6.2): a leader that has not heard from a quorum for
  // an election timeout steps down, and followers that heard from a leader
  // within the election timeout refuse votes (thesis §4.2.3).
  bool check_quorum = true;

  // Flow control per follower in the replicate state: at most this many
  // appends and this many bytes sent but not yet acknowledged. A slow
  // follower then costs bounded memory and bandwidth.
  std::size_t max_inflight_appends = 256;
  std::uint64_t max_inflight_bytes = 32ULL << 20;
  // One append message carries at most this many entries and bytes (a single
  // entry larger than the byte bound is still sent on its own).
  std::size_t max_append_entries = 64;
  std::uint64_t max_append_bytes = 1ULL << 20;
  // At most this many committed entries are handed to the shell and not yet
  // acknowledged by on_applied(): a long backlog is applied in bounded
  // batches, and a slow state machine cannot make the apply queue grow.
  std::size_t max_apply_batch = 1024;
  // Proposals are refused (ResourceExhausted) while the leader holds this
  // many bytes of entries that are not yet committed: a leader without a
  // quorum must not buffer without bound.
  std::uint64_t max_uncommitted_bytes = 64ULL << 20;
  // Read requests waiting for their quorum round; more are refused.
  std::size_t max_pending_reads = 4096;

  // Lease reads: a leader may answer reads locally for this many ticks after
  // the moment it sent a heartbeat that a quorum acknowledged. Followers will
  // not elect another leader for at least election_timeout_ticks (check-quorum
  // makes them refuse votes), measured on their own clocks; clock drift of
  // up to lease_drift_percent is allowed for, so lease_ticks must satisfy
  // lease_ticks * (100 + drift) <= election_timeout_ticks * 100. 0 disables.
  std::uint32_t lease_ticks = 0;
  std::uint32_t lease_drift_percent = 10;

  // A leader keeps telling a server removed from the configuration that it
  // was removed (appends and heartbeats up to the commit of its removal) for
  // at most this many ticks; one that stays unreachable is then forgotten.
  // 0 means ten election timeouts.
  std::uint64_t removed_notice_ticks = 0;

  // A leader whose commit index moved while it had nothing new to send a
  // follower tells it with an empty append (a commit notice), so that the
  // follower applies, and serves follower reads, without waiting for the
  // next append or heartbeat. True: at the next ready(). False: only when
  // the shell calls Node::send_commit_notices() (the runtime first waits
  // Config::commit_notice_delay, by when under load the next append has
  // carried the commit and no notice is needed).
  bool commit_notices_at_once = true;

  // Seeds the node's PRNG (election timeouts). Same seed, same behaviour.
  std::uint64_t random_seed = 1;

#ifdef KEEL_CANARIES
  // A core::Canary: one protocol rule to break on purpose (core/canary.h).
  // Exists only in builds configured with -DKEEL_CANARIES=ON.
  std::uint8_t canary = 0;
#endif

  Status validate() const;
};

}  // namespace keel::core
