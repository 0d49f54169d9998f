// runtime/core_config.h — how a keel::Config becomes the protocol core's
// tick-based CoreConfig. The runtime's tick is one heartbeat interval.
//
// Thread safety: pure functions.
#pragma once

#include <algorithm>
#include <cstdint>

#include "core/codec.h"
#include "core/config.h"
#include "keel/config.h"

namespace keel::runtime {

inline core::CoreConfig to_core_config(const Config& config, std::uint64_t seed) {
  core::CoreConfig core;
  core.id = config.id;
  core.heartbeat_interval_ticks = 1;
  core.election_timeout_ticks =
      static_cast<std::uint32_t>(config.election_timeout / config.heartbeat_interval);
  core.pre_vote = config.pre_vote;
  core.check_quorum = config.check_quorum;
  core.max_inflight_appends = config.max_inflight_appends;
  core.max_inflight_bytes = config.max_inflight_bytes;
  core.max_append_entries = config.max_append_entries;
  core.max_append_bytes = config.max_append_bytes;
  core.max_apply_batch = config.max_apply_batch;
  core.max_uncommitted_bytes = config.max_uncommitted_bytes;
  core.max_pending_reads = config.max_pending_reads;
  // Rounded down: a lease a fraction of a tick short is safe, a longer one not.
  core.lease_ticks = static_cast<std::uint32_t>(config.lease_timeout / config.heartbeat_interval);
  core.lease_drift_percent = config.clock_drift_percent;
  // Deferred notices are sent by the runtime's timer (RaftServer).
  core.commit_notices_at_once = config.commit_notice_delay == Duration::zero();
  core.random_seed = seed;
#ifdef KEEL_CANARIES
  core.canary = config.canary;
#endif
  return core;
}

// What a received frame may hold: at least what this server's own settings
// let a peer send (peers are configured alike), never less than the codec's
// defaults. Anything beyond is hostile or misconfigured and is dropped.
inline core::DecodeLimits to_decode_limits(const Config& config) {
  core::DecodeLimits limits;
  limits.max_entries_per_message =
      std::max<std::uint64_t>(limits.max_entries_per_message, config.max_append_entries);
  // A restore entry holds one snapshot chunk and, in the first of its run,
  // the configuration (at most max_servers addresses).
  limits.max_entry_bytes = std::max<std::uint64_t>(
      {limits.max_entry_bytes, config.max_command_bytes + 64,
       config.max_snapshot_chunk_bytes + limits.max_servers * (limits.max_address_bytes + 32)});
  // One append holds up to max_append_bytes, or a single larger command.
  limits.max_chunk_bytes = config.max_snapshot_chunk_bytes;
  limits.max_frame_bytes = std::max<std::uint64_t>(
      limits.max_frame_bytes,
      std::max({config.max_append_bytes, config.max_command_bytes, limits.max_entry_bytes}) +
          (1ULL << 16));
  return limits;
}

}  // namespace keel::runtime
