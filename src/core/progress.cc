#include "core/progress.h"

#include "core/check.h"

namespace keel::core {

void Inflights::add(Index last_index, std::uint64_t bytes) {
  sent_.push_back(Sent{last_index, bytes});
  bytes_ += bytes;
}

void Inflights::free_up_to(Index index) {
  while (!sent_.empty() && sent_.front().last_index <= index) {
    bytes_ -= sent_.front().bytes;
    sent_.pop_front();
  }
}

void Inflights::free_first() {
  if (sent_.empty()) return;
  bytes_ -= sent_.front().bytes;
  sent_.pop_front();
}

void Inflights::clear() {
  sent_.clear();
  bytes_ = 0;
}

const char* to_string(ProgressState state) {
  switch (state) {
    case ProgressState::kProbe:
      return "probe";
    case ProgressState::kReplicate:
      return "replicate";
    case ProgressState::kSnapshot:
      return "snapshot";
  }
  return "unknown";
}

bool Progress::acknowledge(Index index) {
  inflights.free_up_to(index);
  probe_sent = false;
  if (index <= match_index) return false;
  match_index = index;
  if (next_index <= index) next_index = index.next();
  return true;
}

void Progress::become_probe() {
  state = ProgressState::kProbe;
  probe_sent = false;
  inflights.clear();
  next_index = match_index.next();
}

void Progress::become_replicate() {
  state = ProgressState::kReplicate;
  probe_sent = false;
  next_index = match_index.next();
}

void Progress::become_snapshot(Index snapshot_index) {
  state = ProgressState::kSnapshot;
  probe_sent = false;
  inflights.clear();
  pending_snapshot = snapshot_index;
}

void Progress::on_heartbeat_response() {
  probe_sent = false;
  if (state == ProgressState::kReplicate && inflights.full()) inflights.free_first();
}

bool Progress::can_send() const {
  if (state == ProgressState::kProbe) return !probe_sent;
  if (state == ProgressState::kSnapshot) return false;
  return !inflights.full();
}

void Progress::sent(Index last_index, std::uint64_t bytes, bool had_entries) {
  if (state == ProgressState::kProbe) {
    probe_sent = true;
    return;
  }
  if (had_entries) {
    KEEL_CHECK("optimistic next index only moves forward", last_index.next() >= next_index);
    next_index = last_index.next();
    inflights.add(last_index, bytes);
  }
}

}  // namespace keel::core
