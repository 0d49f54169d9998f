#include "keel/config.h"

#include <string>

namespace keel {

Status Config::validate() const {
  if (id.is_zero()) return Status::invalid_argument("config: id 0 is reserved for 'nobody'");
  if (heartbeat_interval.count() <= 0) {
    return Status::invalid_argument("config: heartbeat_interval must be positive");
  }
  if (election_timeout < 3 * heartbeat_interval) {
    return Status::invalid_argument(
        "config: election_timeout must be at least 3 heartbeat intervals, or a healthy leader "
        "is suspected after one late heartbeat");
  }
  if (lease_timeout.count() < 0) return Status::invalid_argument("config: negative lease_timeout");
  if (lease_timeout.count() > 0) {
    if (!check_quorum) {
      return Status::invalid_argument(
          "config: lease reads need check_quorum (followers then refuse votes while in contact "
          "with a leader)");
    }
    // The runtime counts time in heartbeat ticks; two ticks of slack cover
    // the rounding at both ends (when the lease starts and when a follower's
    // election timer starts).
    const auto stretched = lease_timeout * (100 + clock_drift_percent) / 100;
    if (stretched > election_timeout - 2 * heartbeat_interval) {
      return Status::invalid_argument(
          "config: lease_timeout * (100 + clock_drift_percent) / 100 must not exceed "
          "election_timeout - 2 * heartbeat_interval");
    }
  }
  if (max_append_entries == 0 || max_append_bytes == 0 || max_inflight_appends == 0 ||
      max_inflight_bytes == 0 || max_pending_proposals == 0 || max_uncommitted_bytes == 0 ||
      max_command_bytes == 0 || max_apply_batch == 0 || max_pending_reads == 0 ||
      observer_queue_capacity == 0 || max_write_batch_entries == 0) {
    return Status::invalid_argument("config: every bound must be positive");
  }
  return Status::ok();
}

}  // namespace keel
