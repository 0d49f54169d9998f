// The WAL's offset index (storage/wal_index.h).
#include "storage/wal_index.h"

#include <algorithm>
#include <string>

#include "core/check.h"

namespace keel::storage {

WalIndex::Found WalIndex::find(Index index) const {
  KEEL_CHECK("a WAL read asks only for live entries", index > base_ && index <= last_);
  auto after =
      std::upper_bound(runs_.begin(), runs_.end(), index.value,
                       [](std::uint64_t value, const Run& run) { return value < run.first; });
  KEEL_CHECK("the first live entry has a run", after != runs_.begin());
  const Run& run = *(after - 1);
  const Index run_last = after == runs_.end() ? last_ : Index(after->first - 1);
  return Found{run.location, run_last};
}

std::optional<std::uint32_t> WalIndex::oldest_segment() const {
  if (runs_.empty()) return std::nullopt;
  return runs_.front().location.segment;
}

// Drops runs (and parts of runs) for entries >= first.
void WalIndex::truncate_from(Index first) {
  while (!runs_.empty() && runs_.back().first >= first.value) runs_.pop_back();
  last_ = std::min(last_, first.prev());
}

void WalIndex::append_record(Index first, std::uint64_t count, RecordLocation location) {
  KEEL_CHECK("a record continues or overwrites the live log",
             first > base_ && first <= last_.next());
  KEEL_CHECK("a record holds entries", count > 0);
  truncate_from(first);
  runs_.push_back(Run{first.value, location});
  last_ = first + (count - 1);
}

void WalIndex::remove_prefix(Index up_to) {
  if (up_to <= base_) return;
  if (up_to >= last_) {
    runs_.clear();
    base_ = up_to;
    last_ = up_to;
    return;
  }
  // Keep the run that provides up_to + 1, starting it there.
  while (runs_.size() > 1 && runs_[1].first <= up_to.next().value) runs_.pop_front();
  runs_.front().first = up_to.next().value;
  base_ = up_to;
}

// Replay starts from the oldest remaining segment, whose first record may
// begin anywhere: older segments were removed by compaction. The first
// record therefore anchors the log, and a later record that starts below
// the live range replaced entries whose older records were in removed
// segments (everything it replaced is dead either way).
Status WalIndex::replay_record(Index first, std::uint64_t count, RecordLocation location) {
  if (!replayed_record_ || first <= base_) {
    runs_.clear();
    base_ = first.prev();
    last_ = base_;
  } else if (first > last_.next()) {
    return Status::corruption("record of entries " + std::to_string(first.value) + ".. at offset " +
                              std::to_string(location.offset) + " of segment " +
                              std::to_string(location.segment) + " leaves a gap after entry " +
                              std::to_string(last_.value));
  }
  const bool anchors = !replayed_record_;
  replayed_record_ = true;
  append_record(first, count, location);
  // A marker before the anchoring record still removes what it covers.
  if (anchors && marker_before_records_ > base_) remove_prefix(marker_before_records_);
  return Status::ok();
}

// A marker seen before any record cannot be applied yet: the entries it
// removed were in removed segments. It is applied once the first record
// anchors the log (or settles an empty log if no record follows).
void WalIndex::replay_prefix_removed(Index up_to) {
  if (!newest_marker_ || up_to > *newest_marker_) newest_marker_ = up_to;
  if (!replayed_record_) {
    marker_before_records_ = std::max(marker_before_records_, up_to);
    return;
  }
  remove_prefix(up_to);
}

void WalIndex::reset(Index base) {
  runs_.clear();
  base_ = base;
  last_ = base;
}

void WalIndex::replay_reset(Index base) {
  reset(base);
  replayed_record_ = true;
  marker_before_records_ = Index(0);
  newest_marker_ = base;
}

void WalIndex::finish_replay() {
  if (replayed_record_) return;
  runs_.clear();
  base_ = marker_before_records_;
  last_ = base_;
}

}  // namespace keel::storage
