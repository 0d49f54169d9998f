// storage/record_cache.h — a small, bounded cache of decoded WAL records.
//
// Reads go to disk (the index holds offsets only); the cache saves reading
// and decoding the same record again when a follower or a restarting node
// reads entries in order, record after record. It is bounded in bytes
// (LogEntry sizes as counted by entry_size_bytes), least recently used out
// first; a record larger than the whole bound is not kept.
//
// Thread safety: none; the WAL's mutex guards it.
#pragma once

#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "keel/types.h"
#include "storage/wal_index.h"

namespace keel::storage {

struct DecodedRecord {
  Index first;  // the index of entries.front()
  std::vector<LogEntry> entries;
};

class RecordCache {
 public:
  explicit RecordCache(std::uint64_t capacity_bytes) : capacity_bytes_(capacity_bytes) {}

  std::shared_ptr<const DecodedRecord> find(RecordLocation location);
  void insert(RecordLocation location, std::shared_ptr<const DecodedRecord> record);
  // Forgets every record of segments older than `segment` (removed files).
  void erase_segments_before(std::uint32_t segment);
  std::uint64_t size_bytes() const { return size_bytes_; }

 private:
  using Key = std::pair<std::uint32_t, std::uint32_t>;  // segment, offset
  struct Slot {
    std::shared_ptr<const DecodedRecord> record;
    std::uint64_t bytes = 0;
    std::list<Key>::iterator recency;
  };

  void erase(std::map<Key, Slot>::iterator slot);

  const std::uint64_t capacity_bytes_;
  std::uint64_t size_bytes_ = 0;
  std::map<Key, Slot> slots_;
  std::list<Key> recency_;  // most recently used first
};

}  // namespace keel::storage
