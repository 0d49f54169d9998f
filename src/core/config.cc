#include "core/config.h"

#include <string>

namespace keel::core {

Status CoreConfig::validate() const {
  if (id.is_zero()) return Status::invalid_argument("server id 0 is reserved for 'nobody'");
  if (heartbeat_interval_ticks == 0) {
    return Status::invalid_argument("heartbeat_interval_ticks must be positive");
  }
  if (election_timeout_ticks <= heartbeat_interval_ticks) {
    return Status::invalid_argument(
        "election_timeout_ticks must exceed heartbeat_interval_ticks, or a healthy leader "
        "would be suspected between two heartbeats");
  }
  if (max_inflight_appends == 0 || max_inflight_bytes == 0) {
    return Status::invalid_argument("in-flight bounds must be positive");
  }
  if (max_append_entries == 0 || max_append_bytes == 0) {
    return Status::invalid_argument("append size bounds must be positive");
  }
  if (max_apply_batch == 0 || max_uncommitted_bytes == 0 || max_pending_reads == 0) {
    return Status::invalid_argument("queue bounds must be positive");
  }
  if (lease_ticks > 0) {
    if (!check_quorum) {
      return Status::invalid_argument(
          "lease reads need check_quorum: only then do followers refuse votes while a leader "
          "is in contact");
    }
    const std::uint64_t stretched = std::uint64_t{lease_ticks} * (100 + lease_drift_percent);
    if (stretched > std::uint64_t{election_timeout_ticks} * 100) {
      return Status::invalid_argument(
          "lease_ticks * (100 + lease_drift_percent) / 100 must not exceed "
          "election_timeout_ticks (" +
          std::to_string(election_timeout_ticks) + ")");
    }
  }
  return Status::ok();
}

}  // namespace keel::core
