// keel/config.h — the settings of one keel::Raft, with defaults that suit a
// cluster on one network (heartbeats every 100 ms, elections after 1 s).
//
// Every bound on memory and queues is here, named and documented: a server
// without a quorum or with a slow follower must never grow without limit.
//
// Thread safety: a value.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

#include "keel/status.h"
#include "keel/types.h"

namespace keel {

struct Config {
  // This server's id; must appear in the cluster configuration.
  ServerId id;

  // --- timing -----------------------------------------------------------------
  // A leader sends heartbeats this often. It is also the runtime's tick: every
  // protocol timeout is counted in heartbeat intervals.
  std::chrono::milliseconds heartbeat_interval{100};
  // A follower that hears nothing from a leader for a random time between this
  // and twice this starts an election. At least 3 heartbeat intervals.
  std::chrono::milliseconds election_timeout{1000};
  // Lease reads (Consistency::kLease): how long after a quorum confirmed its
  // leadership a leader answers reads without asking again. 0 disables lease
  // reads. Must leave room for clock drift below the election timeout:
  //   lease_timeout * (100 + clock_drift_percent) / 100
  //     <= election_timeout - 2 * heartbeat_interval
  std::chrono::milliseconds lease_timeout{500};
  // The largest rate difference assumed between any two servers' clocks.
  std::uint32_t clock_drift_percent = 10;

  // --- protocol ------------------------------------------------------------------
  bool pre_vote = true;      // see thesis §9.6; keep on
  bool check_quorum = true;  // leaders step down without a quorum; needed by leases

  // --- bounds --------------------------------------------------------------------
  // Entries and bytes in one append message.
  std::size_t max_append_entries = 64;
  std::uint64_t max_append_bytes = 1ULL << 20;
  // Appends and bytes sent to one follower and not yet acknowledged.
  std::size_t max_inflight_appends = 256;
  std::uint64_t max_inflight_bytes = 32ULL << 20;
  // Proposals (apply, barrier) accepted but not yet resolved; more are refused
  // with ResourceExhausted.
  std::size_t max_pending_proposals = 16384;
  // Bytes of entries proposed by this leader and not yet committed.
  std::uint64_t max_uncommitted_bytes = 64ULL << 20;
  // One command's size; larger ones are refused with InvalidArgument.
  std::uint64_t max_command_bytes = 8ULL << 20;
  // Committed entries handed to the FSM in one batch.
  std::size_t max_apply_batch = 1024;
  // Reads (linearizable, lease, verify_leader) waiting at once.
  std::size_t max_pending_reads = 16384;
  // Events waiting for one slow observer; beyond this the oldest are dropped
  // and counted, kLeaderReady last of all (Raft never waits for an observer).
  std::size_t observer_queue_capacity = 1024;
  // Entries per log-store append: many proposals, one durable write.
  std::size_t max_write_batch_entries = 4096;

#ifdef KEEL_CANARIES
  // Test builds only (-DKEEL_CANARIES=ON): a protocol rule to break on
  // purpose, so that the simulator can show it catches the breakage. See
  // src/core/canary.h; 0 breaks nothing.
  std::uint8_t canary = 0;
#endif

  Status validate() const;
};

}  // namespace keel
