// storage/segment.h — the byte layout of WAL segment files: the segment
// header, the record header and the entries a record carries
// (docs/formats.md, "WAL segments"). Encoding and validation only; no I/O.
//
// A segment is a 32-byte header followed by records. A record is a 32-byte
// header and a payload; every record of one append() (a batch) is written
// with one write, and only the batch's last record has kFlagBatchEnd, so that
// recovery can drop a batch that was cut short as a whole.
//
// The record header's checksum also covers the segment's sequence number and
// the record's offset in it: zeros, bytes of an older segment or a header
// copied into user data elsewhere never validate at a position they were not
// written at, so recovery can search for records beyond a damaged one.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "keel/status.h"
#include "keel/types.h"

namespace keel::storage {

inline constexpr std::uint32_t kSegmentFormatVersion = 1;
inline constexpr std::size_t kSegmentHeaderBytes = 32;
inline constexpr std::size_t kRecordHeaderBytes = 32;
// The format's bound on one record's payload, whatever the options say: a
// header that claims more was not written by keel.
inline constexpr std::uint64_t kMaxRecordPayloadBytes = 1ULL << 30;

enum class RecordKind : std::uint8_t {
  kEntries = 1,        // log entries first_index .. first_index + entry_count - 1
  kPrefixRemoved = 2,  // every entry <= first_index is removed (compaction)
  kReset = 3,          // every entry is removed; the log continues after first_index
};

inline constexpr std::uint8_t kFlagBatchEnd = 1;

struct RecordHeader {
  RecordKind kind = RecordKind::kEntries;
  std::uint8_t flags = 0;
  std::uint32_t payload_bytes = 0;
  std::uint32_t payload_crc = 0;
  std::uint64_t first_index = 0;
  std::uint32_t entry_count = 0;
  // This record's offset minus that of its batch's first record: tells a
  // record of the batch being written at a crash from one of a later batch.
  std::uint32_t batch_offset_back = 0;

  bool batch_end() const { return (flags & kFlagBatchEnd) != 0; }
  std::uint64_t record_bytes() const { return kRecordHeaderBytes + payload_bytes; }
};

// "wal-000000000000002a.seg" for sequence 42: names sort like sequences.
std::string segment_file_name(std::uint64_t sequence);
// The sequence of a segment file name, or nothing for any other name.
std::optional<std::uint64_t> parse_segment_file_name(std::string_view name);

std::string encode_segment_header(std::uint64_t sequence);
// Ok, or Corruption naming `path` and what is wrong.
Status check_segment_header(std::string_view bytes, std::uint64_t expected_sequence,
                            const std::string& path);

// The bytes one entry takes in a record payload.
std::uint64_t encoded_entry_bytes(const LogEntry& entry);
// Where a record goes: its segment, its offset in it, and the offset of the
// first record of its batch.
struct RecordPlace {
  std::uint64_t sequence = 0;
  std::uint64_t offset = 0;
  std::uint64_t batch_start = 0;
};

// Appends a whole record to `out`; `payload_bytes` must be the sum of
// encoded_entry_bytes() of `entries`.
void encode_entries_record(std::span<const LogEntry> entries, std::uint64_t payload_bytes,
                           bool batch_end, const RecordPlace& place, std::string& out);
void encode_prefix_removed_record(Index up_to, const RecordPlace& place, std::string& out);
void encode_reset_record(Index base, const RecordPlace& place, std::string& out);

// The header at `offset` of segment `sequence` if `bytes` (at least
// kRecordHeaderBytes) hold a valid one, else nothing.
std::optional<RecordHeader> decode_record_header(std::string_view bytes, std::uint64_t sequence,
                                                 std::uint64_t offset);
bool payload_matches(const RecordHeader& header, std::string_view payload);
// The entries of a kEntries record whose payload matched its checksum.
// Corruption naming `where` if the payload does not hold exactly
// entry_count well-formed entries.
Result<std::vector<LogEntry>> decode_entries(const RecordHeader& header, std::string_view payload,
                                             const std::string& where);

}  // namespace keel::storage
