// The WAL's bounded record cache (storage/record_cache.h).
#include "storage/record_cache.h"

namespace keel::storage {

namespace {

std::uint64_t record_bytes(const DecodedRecord& record) {
  std::uint64_t bytes = 0;
  for (const LogEntry& entry : record.entries) bytes += entry_size_bytes(entry);
  return bytes;
}

}  // namespace

std::shared_ptr<const DecodedRecord> RecordCache::find(RecordLocation location) {
  auto slot = slots_.find(Key{location.segment, location.offset});
  if (slot == slots_.end()) return nullptr;
  recency_.splice(recency_.begin(), recency_, slot->second.recency);
  return slot->second.record;
}

void RecordCache::insert(RecordLocation location, std::shared_ptr<const DecodedRecord> record) {
  const Key key{location.segment, location.offset};
  const std::uint64_t bytes = record_bytes(*record);
  if (bytes > capacity_bytes_ || slots_.count(key) != 0) return;
  while (size_bytes_ + bytes > capacity_bytes_) erase(slots_.find(recency_.back()));
  recency_.push_front(key);
  slots_.emplace(key, Slot{std::move(record), bytes, recency_.begin()});
  size_bytes_ += bytes;
}

void RecordCache::erase_segments_before(std::uint32_t segment) {
  while (!slots_.empty() && slots_.begin()->first.first < segment) erase(slots_.begin());
}

void RecordCache::erase(std::map<Key, Slot>::iterator slot) {
  size_bytes_ -= slot->second.bytes;
  recency_.erase(slot->second.recency);
  slots_.erase(slot);
}

}  // namespace keel::storage
