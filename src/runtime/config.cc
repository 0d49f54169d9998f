#include "keel/config.h"

#include <algorithm>
#include <string>

namespace keel {

namespace {

using std::chrono::milliseconds;

constexpr std::uint64_t kGiB = 1ULL << 30;

std::string millis(milliseconds value) { return std::to_string(value.count()) + " ms"; }

// "config: NAME must be in [LOW, HIGH] (got VALUE)"
Status out_of_range(const char* name, const std::string& low, const std::string& high,
                    const std::string& got) {
  return Status::invalid_argument(std::string("config: ") + name + " must be in [" + low + ", " +
                                  high + "] (got " + got + ")");
}

Status check_count(const char* name, std::uint64_t value, std::uint64_t high) {
  if (value >= 1 && value <= high) return Status::ok();
  return out_of_range(name, "1", std::to_string(high), std::to_string(value));
}

Status check_bytes(const char* name, std::uint64_t value, std::uint64_t high) {
  if (value >= 1 && value <= high) return Status::ok();
  return out_of_range(name, "1", std::to_string(high / kGiB) + " GiB", std::to_string(value));
}

Status check_timing(const Config& c) {
  if (c.heartbeat_interval < milliseconds(1) || c.heartbeat_interval > milliseconds(60'000)) {
    return out_of_range("heartbeat_interval", "1 ms", "60000 ms", millis(c.heartbeat_interval));
  }
  const milliseconds election_low = 3 * c.heartbeat_interval;
  const milliseconds election_high =
      std::min<milliseconds>(1000 * c.heartbeat_interval, milliseconds(600'000));
  if (c.election_timeout < election_low || c.election_timeout > election_high) {
    // Below 3 heartbeats a healthy leader is suspected after one late
    // heartbeat; the runtime counts the timeout in heartbeat ticks.
    return out_of_range("election_timeout", millis(election_low) + " (3 heartbeat intervals)",
                        millis(election_high), millis(c.election_timeout));
  }
  if (c.clock_drift_percent > 100) {
    return out_of_range("clock_drift_percent", "0", "100", std::to_string(c.clock_drift_percent));
  }
  if (c.forwarded_read_retry_heartbeats < 1 || c.forwarded_read_retry_heartbeats > 1000) {
    return out_of_range("forwarded_read_retry_heartbeats", "1", "1000",
                        std::to_string(c.forwarded_read_retry_heartbeats));
  }
  if (c.commit_notice_delay < std::chrono::microseconds(0) ||
      c.commit_notice_delay > c.heartbeat_interval) {
    return out_of_range("commit_notice_delay", "0 us",
                        "heartbeat_interval (" + millis(c.heartbeat_interval) + ")",
                        std::to_string(c.commit_notice_delay.count()) + " us");
  }
  if (c.observer_shutdown_wait < milliseconds(0) ||
      c.observer_shutdown_wait > milliseconds(60'000)) {
    return out_of_range("observer_shutdown_wait", "0 ms", "60000 ms",
                        millis(c.observer_shutdown_wait));
  }
  return Status::ok();
}

Status check_lease(const Config& c) {
  if (c.lease_timeout == milliseconds(0)) return Status::ok();
  // The runtime counts time in heartbeat ticks; two ticks of slack cover the
  // rounding at both ends (when the lease starts and when a follower's
  // election timer starts), and the drift bound covers a follower's clock
  // running fast.
  const milliseconds longest =
      (c.election_timeout - 2 * c.heartbeat_interval) * 100 / (100 + c.clock_drift_percent);
  if (c.lease_timeout < c.heartbeat_interval || c.lease_timeout > longest) {
    return Status::invalid_argument(
        "config: lease_timeout must be 0 (no lease reads) or in [heartbeat_interval, "
        "(election_timeout - 2 * heartbeat_interval) * 100 / (100 + clock_drift_percent)] = [" +
        millis(c.heartbeat_interval) + ", " + millis(longest) + "] (got " +
        millis(c.lease_timeout) + ")");
  }
  if (!c.check_quorum) {
    return Status::invalid_argument(
        "config: lease_timeout needs check_quorum (followers then refuse votes while in contact "
        "with a leader); set lease_timeout to 0 or check_quorum to true");
  }
  return Status::ok();
}

Status check_bounds(const Config& c) {
  const Status checks[] = {
      check_count("max_append_entries", c.max_append_entries, 100'000),
      check_bytes("max_append_bytes", c.max_append_bytes, kGiB),
      check_count("max_inflight_appends", c.max_inflight_appends, 100'000),
      check_bytes("max_inflight_bytes", c.max_inflight_bytes, 64 * kGiB),
      check_count("max_pending_proposals", c.max_pending_proposals, 10'000'000),
      check_bytes("max_uncommitted_bytes", c.max_uncommitted_bytes, 64 * kGiB),
      check_bytes("max_command_bytes", c.max_command_bytes, kGiB),
      check_count("max_apply_batch", c.max_apply_batch, 1'000'000),
      check_count("max_pending_reads", c.max_pending_reads, 10'000'000),
      check_count("observer_queue_capacity", c.observer_queue_capacity, 1'000'000),
      check_count("max_subscriptions", c.max_subscriptions, 4096),
      check_count("max_write_batch_entries", c.max_write_batch_entries, 1'000'000),
      check_count("snapshot_threshold_entries", c.snapshot_threshold_entries, 1'000'000'000),
      check_bytes("snapshot_threshold_bytes", c.snapshot_threshold_bytes, 1024 * kGiB),
      check_count("max_inflight_snapshot_chunks", c.max_inflight_snapshot_chunks, 1024),
      check_count("snapshot_retain", c.snapshot_retain, 1000),
  };
  for (const Status& status : checks) {
    if (!status.is_ok()) return status;
  }
  return Status::ok();
}

}  // namespace

Status check_snapshots(const Config& c) {
  if (c.trailing_log_entries > 1'000'000'000) {
    return out_of_range("trailing_log_entries", "0", "1000000000",
                        std::to_string(c.trailing_log_entries));
  }
  if (c.max_snapshot_chunk_bytes < 1024 || c.max_snapshot_chunk_bytes > (64ULL << 20)) {
    return out_of_range("max_snapshot_chunk_bytes", "1024", std::to_string(64ULL << 20),
                        std::to_string(c.max_snapshot_chunk_bytes));
  }
  if (c.snapshot_interval < c.heartbeat_interval || c.snapshot_interval > std::chrono::hours(24)) {
    return out_of_range("snapshot_interval", millis(c.heartbeat_interval) + " (heartbeat_interval)",
                        "86400000 ms", millis(c.snapshot_interval));
  }
  if (c.peer_contact_timeout != milliseconds(0) &&
      (c.peer_contact_timeout < c.heartbeat_interval ||
       c.peer_contact_timeout > std::chrono::hours(1))) {
    return out_of_range("peer_contact_timeout",
                        millis(c.heartbeat_interval) + " (heartbeat_interval; or 0)", "3600000 ms",
                        millis(c.peer_contact_timeout));
  }
  if (c.max_restore_bytes > (16ULL << 30)) {
    return out_of_range("max_restore_bytes", "0", std::to_string(16ULL << 30),
                        std::to_string(c.max_restore_bytes));
  }
  if (c.promotion_max_lag_entries > 1'000'000'000) {
    return out_of_range("promotion_max_lag_entries", "0", "1000000000",
                        std::to_string(c.promotion_max_lag_entries));
  }
  if (Status rounds = check_count("promotion_rounds", c.promotion_rounds, 1000); !rounds.is_ok()) {
    return rounds;
  }
  if (c.snapshot_transfer_idle_timeout < c.heartbeat_interval ||
      c.snapshot_transfer_idle_timeout > std::chrono::hours(1)) {
    return out_of_range("snapshot_transfer_idle_timeout",
                        millis(c.heartbeat_interval) + " (heartbeat_interval)", "3600000 ms",
                        millis(c.snapshot_transfer_idle_timeout));
  }
  return Status::ok();
}

Status Config::validate() const {
  if (id.is_zero()) return Status::invalid_argument("config: id must not be 0 (it means nobody)");
  if (Status timing = check_timing(*this); !timing.is_ok()) return timing;
  if (Status lease = check_lease(*this); !lease.is_ok()) return lease;
  if (Status snapshots = check_snapshots(*this); !snapshots.is_ok()) return snapshots;
  return check_bounds(*this);
}

}  // namespace keel
