// storage/segment_scanner.h — reads one WAL segment front to back and says
// how it ends.
//
// The scanner hands every valid record to a callback, stops at the first
// byte that is not the start of a valid record, and classifies what follows:
// nothing (end of file), only zeros (preallocated space never written), or
// other bytes. For the last case it searches the rest of the file for a
// valid record of a later batch than the one the bad bytes belong to:
// finding one proves those bytes were followed by a later write, which only
// happens once they were synced and acknowledged, so they are damage, not a
// torn tail. (Records of the same batch may have reached the disk out of
// order, so they prove nothing.) Deciding what to do with that is the
// recovery's job (wal_log_store.cc), not the scanner's.
//
// Thread safety: none needed; a scan uses only its arguments.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string_view>

#include "keel/status.h"
#include "storage/fs.h"
#include "storage/segment.h"

namespace keel::storage {

struct ScannedRecord {
  RecordHeader header;
  std::uint64_t offset = 0;  // of the record header in the segment
  std::string_view payload;  // valid only during the callback
};

enum class SegmentEnd : std::uint8_t {
  kEndOfFile,  // the last valid record ends where the file does
  kZeros,      // only zero bytes follow it: preallocated space
  kDamaged,    // other bytes follow it: a torn write, or damage
};

struct SegmentScan {
  std::uint64_t valid_end = 0;  // just past the last valid record
  std::uint64_t file_bytes = 0;
  SegmentEnd end = SegmentEnd::kEndOfFile;
  // kDamaged only: the first valid record found beyond valid_end whose batch
  // starts beyond valid_end too, if any.
  std::optional<std::uint64_t> later_batch_record;
};

// Scans from just after the segment header (which the caller has checked).
// Reads `read_chunk_bytes` at a time (more for a larger record). Fails with
// the callback's error, or IoError if reading fails.
Result<SegmentScan> scan_segment(const File& file, std::uint64_t sequence,
                                 std::uint64_t read_chunk_bytes,
                                 const std::function<Status(const ScannedRecord&)>& on_record);

}  // namespace keel::storage
