#include "core/read_index.h"

namespace keel::core {

namespace {

// Bound on remembered unconfirmed read rounds. Without check-quorum a leader
// cut off from its followers keeps opening rounds; forgetting the oldest only
// means those rounds cannot extend the lease, which is safe.
constexpr std::size_t kMaxRememberedRounds = 1024;

}  // namespace

std::pair<std::uint64_t, bool> ReadRounds::open() {
  if (round_pending_) return {round_, false};
  ++round_;
  round_pending_ = true;
  return {round_, true};
}

std::optional<std::uint64_t> ReadRounds::oldest_unconfirmed() const {
  if (sent_ticks_.empty() || sent_ticks_.front().first <= confirmed_) return std::nullopt;
  return sent_ticks_.front().first;
}

void ReadRounds::sent(std::uint64_t tick) {
  round_pending_ = false;
  sent_ticks_.emplace_back(round_, tick);
  if (sent_ticks_.size() > kMaxRememberedRounds) sent_ticks_.pop_front();
}

std::vector<PendingRead> ReadRounds::confirm(std::uint64_t confirmed, std::uint64_t now_tick,
                                             bool lease_from_ack) {
  std::vector<PendingRead> released;
  if (confirmed <= confirmed_) return released;
  confirmed_ = confirmed;
  // Every follower that echoed the confirmed round heard from us after it
  // was sent: that is where the lease starts.
  while (!sent_ticks_.empty() && sent_ticks_.front().first <= confirmed) {
    if (sent_ticks_.front().first == confirmed) {
      lease_start_tick_ = lease_from_ack ? now_tick : sent_ticks_.front().second;
    }
    sent_ticks_.pop_front();
  }
  while (!pending_.empty() && pending_.front().round <= confirmed) {
    released.push_back(pending_.front());
    pending_.pop_front();
  }
  return released;
}

bool ReadRounds::is_waiting(ServerId requester, std::uint64_t request_id) const {
  for (const PendingRead& read : pending_) {
    if (read.requester == requester && read.request_id == request_id) return true;
  }
  return false;
}

std::vector<PendingRead> ReadRounds::take_all() {
  std::vector<PendingRead> all(pending_.begin(), pending_.end());
  pending_.clear();
  return all;
}

}  // namespace keel::core
