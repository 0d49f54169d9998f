// The segment scanner (storage/segment_scanner.h).
#include "storage/segment_scanner.h"

#include <algorithm>
#include <string>

namespace keel::storage {

namespace {

// Serves views of a file from one buffer refilled `chunk_bytes` at a time,
// so that recovery reads a long log with few large reads instead of two
// small ones per record.
class ChunkReader {
 public:
  ChunkReader(const File& file, std::uint64_t file_bytes, std::uint64_t chunk_bytes)
      : file_(file),
        file_bytes_(file_bytes),
        chunk_bytes_(std::max<std::uint64_t>(chunk_bytes, 64)) {}

  // [offset, offset + length) clipped to the end of the file; the view stays
  // valid until the next call.
  Result<std::string_view> view(std::uint64_t offset, std::uint64_t length) {
    if (offset >= file_bytes_) return std::string_view();
    length = std::min(length, file_bytes_ - offset);
    if (offset >= start_ && offset + length <= start_ + buffer_.size()) {
      return std::string_view(buffer_).substr(offset - start_, length);
    }
    const std::uint64_t want = std::min(std::max(length, chunk_bytes_), file_bytes_ - offset);
    buffer_.resize(want);
    Result<std::size_t> read = file_.read_at(offset, std::span<char>(buffer_.data(), want));
    if (!read.is_ok()) return read.status();
    if (*read != want) {
      return Status::io_error("read " + file_.path() + ": file shrank to " +
                              std::to_string(offset + *read) + " bytes while being scanned");
    }
    start_ = offset;
    return std::string_view(buffer_).substr(0, length);
  }

 private:
  const File& file_;
  const std::uint64_t file_bytes_;
  const std::uint64_t chunk_bytes_;
  std::string buffer_;
  std::uint64_t start_ = 0;
};

// The record at `offset` if a whole valid one is there.
Result<std::optional<ScannedRecord>> record_at(ChunkReader& reader, std::uint64_t sequence,
                                               std::uint64_t offset, std::uint64_t file_bytes) {
  Result<std::string_view> header_bytes = reader.view(offset, kRecordHeaderBytes);
  if (!header_bytes.is_ok()) return header_bytes.status();
  std::optional<RecordHeader> header = decode_record_header(*header_bytes, sequence, offset);
  if (!header || offset + header->record_bytes() > file_bytes) {
    return std::optional<ScannedRecord>();
  }
  Result<std::string_view> payload =
      reader.view(offset + kRecordHeaderBytes, header->payload_bytes);
  if (!payload.is_ok()) return payload.status();
  if (!payload_matches(*header, *payload)) return std::optional<ScannedRecord>();
  return std::optional<ScannedRecord>(ScannedRecord{*header, offset, *payload});
}

Result<bool> only_zeros_from(ChunkReader& reader, std::uint64_t offset, std::uint64_t file_bytes,
                             std::uint64_t chunk_bytes) {
  while (offset < file_bytes) {
    Result<std::string_view> bytes = reader.view(offset, chunk_bytes);
    if (!bytes.is_ok()) return bytes.status();
    if (std::any_of(bytes->begin(), bytes->end(), [](char c) { return c != 0; })) return false;
    offset += bytes->size();
  }
  return true;
}

// Tries every byte offset after `damaged` for a valid record whose batch
// starts after `damaged`. The header checksum covers the offset, so a record
// only validates where it was written.
Result<std::optional<std::uint64_t>> find_later_batch(ChunkReader& reader, std::uint64_t sequence,
                                                      std::uint64_t damaged,
                                                      std::uint64_t file_bytes) {
  for (std::uint64_t offset = damaged + 1; offset + kRecordHeaderBytes <= file_bytes; ++offset) {
    Result<std::optional<ScannedRecord>> record = record_at(reader, sequence, offset, file_bytes);
    if (!record.is_ok()) return record.status();
    if (record->has_value() && offset - (*record)->header.batch_offset_back > damaged) {
      return std::optional<std::uint64_t>(offset);
    }
  }
  return std::optional<std::uint64_t>();
}

}  // namespace

Result<SegmentScan> scan_segment(const File& file, std::uint64_t sequence,
                                 std::uint64_t read_chunk_bytes,
                                 const std::function<Status(const ScannedRecord&)>& on_record) {
  Result<std::uint64_t> size = file.size();
  if (!size.is_ok()) return size.status();
  SegmentScan scan;
  scan.file_bytes = *size;
  ChunkReader reader(file, scan.file_bytes, read_chunk_bytes);
  std::uint64_t offset = std::min<std::uint64_t>(kSegmentHeaderBytes, scan.file_bytes);
  while (true) {
    Result<std::optional<ScannedRecord>> record =
        record_at(reader, sequence, offset, scan.file_bytes);
    if (!record.is_ok()) return record.status();
    if (!record->has_value()) break;
    Status accepted = on_record(**record);
    if (!accepted.is_ok()) return accepted;
    offset += (*record)->header.record_bytes();
  }
  scan.valid_end = offset;
  if (offset == scan.file_bytes) return scan;
  Result<bool> zeros = only_zeros_from(reader, offset, scan.file_bytes, read_chunk_bytes);
  if (!zeros.is_ok()) return zeros.status();
  if (*zeros) {
    scan.end = SegmentEnd::kZeros;
    return scan;
  }
  scan.end = SegmentEnd::kDamaged;
  Result<std::optional<std::uint64_t>> later =
      find_later_batch(reader, sequence, offset, scan.file_bytes);
  if (!later.is_ok()) return later.status();
  scan.later_batch_record = *later;
  return scan;
}

}  // namespace keel::storage
