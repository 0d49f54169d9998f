// storage/wal_index.h — where each live log entry is on disk: the WAL's
// in-memory index.
//
// It holds offsets only, never payloads: one 16-byte run per record (the
// record's segment and offset, and the first live entry it provides), so a
// log of a million single-entry batches costs 16 MB of index however large
// its entries are, and a log of 256-entry batches 64 KB.
//
// Live entries are always the contiguous range (base, last]. A run provides
// entries from its `first` up to the next run's `first` - 1 (the last run: up
// to `last`); entries of a record beyond that were replaced by a later record
// (a conflicting suffix) and are dead.
//
// The index is rebuilt on open by replaying the records of the remaining
// segments in order (replay_* below), which must reach the same state the
// live calls (append_record, remove_prefix) had reached: see
// docs/formats.md, "Recovery", for why replaying only the segments that
// compaction left is enough.
//
// Thread safety: none; the WAL's mutex guards it.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>

#include "keel/status.h"
#include "keel/types.h"

namespace keel::storage {

struct RecordLocation {
  std::uint32_t segment = 0;  // the segment's sequence number
  std::uint32_t offset = 0;   // of the record header within the segment
};

class WalIndex {
 public:
  // Live entries are (base, last]; both 0 for a new log.
  Index base() const { return base_; }
  Index last() const { return last_; }
  bool empty() const { return last_ == base_; }
  std::size_t run_count() const { return runs_.size(); }

  // The record that provides entry `index` (in (base, last]) and the last
  // entry it provides.
  struct Found {
    RecordLocation location;
    Index run_last;
  };
  Found find(Index index) const;
  // The segment of the oldest live entry, if any.
  std::optional<std::uint32_t> oldest_segment() const;

  // Live: a record of `count` entries from `first` was written;
  // requires base < first <= last + 1. Entries >= first are replaced.
  void append_record(Index first, std::uint64_t count, RecordLocation location);
  // Live: entries <= up_to are removed. up_to may exceed last (the log is
  // then empty and continues at up_to + 1).
  void remove_prefix(Index up_to);
  // Live: every entry is removed; the log continues at base + 1 (which may
  // lie below the old last entry).
  void reset(Index base);

  // Replay during recovery. Corruption if a record would leave a gap.
  Status replay_record(Index first, std::uint64_t count, RecordLocation location);
  void replay_prefix_removed(Index up_to);
  // A reset anchors the log on its own: whatever older segments held (or
  // lost) no longer matters, and it counts as the newest marker.
  void replay_reset(Index base);
  // After the last record: settles a log that held only removal markers.
  void finish_replay();
  // The newest removal marker replayed, if any: after replay the log must
  // start right after it (or at entry 1 when there is none), else entries
  // that were live are missing.
  std::optional<Index> newest_marker() const { return newest_marker_; }

 private:
  struct Run {
    std::uint64_t first = 0;
    RecordLocation location;
  };

  void truncate_from(Index first);

  std::deque<Run> runs_;
  Index base_{0};
  Index last_{0};
  // Replay only: whether a record has been replayed yet, and the newest
  // removal marker seen before it.
  bool replayed_record_ = false;
  Index marker_before_records_{0};
  std::optional<Index> newest_marker_;
};

}  // namespace keel::storage
