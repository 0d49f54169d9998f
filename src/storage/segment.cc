// WAL segment and record layout (storage/segment.h, docs/formats.md).
#include "storage/segment.h"

#include <cstdio>
#include <cstring>

#include "core/byte_io.h"
#include "core/crc32c.h"

namespace keel::storage {

namespace {

constexpr char kSegmentMagic[8] = {'k', 'e', 'e', 'l', '-', 'w', 'a', 'l'};
constexpr std::size_t kSegmentCrcOffset = 28;

void put32(char* out, std::uint32_t value) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>((value >> (8 * i)) & 0xFFu);
}
void put64(char* out, std::uint64_t value) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((value >> (8 * i)) & 0xFFu);
}
std::uint32_t get32(const char* in) {
  std::uint32_t value = 0;
  for (int i = 3; i >= 0; --i) value = (value << 8) | static_cast<unsigned char>(in[i]);
  return value;
}
std::uint64_t get64(const char* in) {
  std::uint64_t value = 0;
  for (int i = 7; i >= 0; --i) value = (value << 8) | static_cast<unsigned char>(in[i]);
  return value;
}

void put_varint(std::string& out, std::uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7Fu) | 0x80u));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

std::uint64_t varint_bytes(std::uint64_t value) {
  std::uint64_t bytes = 1;
  while (value >= 0x80) {
    value >>= 7;
    ++bytes;
  }
  return bytes;
}

// The header checksum: bytes 4..31 of the header, then where it lives.
std::uint32_t header_crc(const char* header, std::uint64_t sequence, std::uint64_t offset) {
  char place[16];
  put64(place, sequence);
  put64(place + 8, offset);
  const std::uint32_t crc = core::crc32c_extend(0, header + 4, kRecordHeaderBytes - 4);
  return core::crc32c_extend(crc, place, sizeof place);
}

void encode_record_header(const RecordHeader& header, const RecordPlace& place, char* out) {
  std::memset(out, 0, kRecordHeaderBytes);
  put32(out + 4, header.payload_crc);
  put32(out + 8, header.payload_bytes);
  out[12] = static_cast<char>(header.kind);
  out[13] = static_cast<char>(header.flags);
  put64(out + 16, header.first_index);
  put32(out + 24, header.entry_count);
  put32(out + 28, header.batch_offset_back);
  put32(out, header_crc(out, place.sequence, place.offset));
}

bool known_kind(std::uint8_t kind) {
  return kind == static_cast<std::uint8_t>(RecordKind::kEntries) ||
         kind == static_cast<std::uint8_t>(RecordKind::kPrefixRemoved) ||
         kind == static_cast<std::uint8_t>(RecordKind::kReset);
}

}  // namespace

std::string segment_file_name(std::uint64_t sequence) {
  char name[32];
  std::snprintf(name, sizeof name, "wal-%016llx.seg", static_cast<unsigned long long>(sequence));
  return name;
}

std::optional<std::uint64_t> parse_segment_file_name(std::string_view name) {
  constexpr std::string_view kPrefix = "wal-";
  constexpr std::string_view kSuffix = ".seg";
  if (name.size() != kPrefix.size() + 16 + kSuffix.size()) return std::nullopt;
  if (name.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  if (name.substr(name.size() - kSuffix.size()) != kSuffix) return std::nullopt;
  std::uint64_t sequence = 0;
  for (char c : name.substr(kPrefix.size(), 16)) {
    int digit = -1;
    if (c >= '0' && c <= '9') digit = c - '0';
    if (c >= 'a' && c <= 'f') digit = c - 'a' + 10;
    if (digit < 0) return std::nullopt;
    sequence = (sequence << 4) | static_cast<std::uint64_t>(digit);
  }
  return sequence;
}

std::string encode_segment_header(std::uint64_t sequence) {
  std::string header(kSegmentHeaderBytes, '\0');
  std::memcpy(header.data(), kSegmentMagic, sizeof kSegmentMagic);
  put32(header.data() + 8, kSegmentFormatVersion);
  put64(header.data() + 16, sequence);
  put32(header.data() + kSegmentCrcOffset,
        core::crc32c(std::string_view(header).substr(0, kSegmentCrcOffset)));
  return header;
}

Status check_segment_header(std::string_view bytes, std::uint64_t expected_sequence,
                            const std::string& path) {
  const std::string where = path + ": segment header: ";
  if (bytes.size() < kSegmentHeaderBytes) {
    return Status::corruption(where + "only " + std::to_string(bytes.size()) + " of " +
                              std::to_string(kSegmentHeaderBytes) + " bytes");
  }
  if (get32(bytes.data() + kSegmentCrcOffset) != core::crc32c(bytes.substr(0, kSegmentCrcOffset))) {
    return Status::corruption(where + "checksum mismatch at offset 0");
  }
  if (std::memcmp(bytes.data(), kSegmentMagic, sizeof kSegmentMagic) != 0) {
    return Status::corruption(where + "not a keel WAL segment (bad magic)");
  }
  const std::uint32_t version = get32(bytes.data() + 8);
  if (version != kSegmentFormatVersion) {
    return Status::corruption(where + "format version " + std::to_string(version) +
                              " is not one this build reads (" +
                              std::to_string(kSegmentFormatVersion) + ")");
  }
  const std::uint64_t sequence = get64(bytes.data() + 16);
  if (sequence != expected_sequence) {
    return Status::corruption(where + "holds sequence " + std::to_string(sequence) +
                              ", its name says " + std::to_string(expected_sequence));
  }
  return Status::ok();
}

std::uint64_t encoded_entry_bytes(const LogEntry& entry) {
  return varint_bytes(entry.term.value) + 1 + varint_bytes(entry.data.size()) + entry.data.size();
}

void encode_entries_record(std::span<const LogEntry> entries, std::uint64_t payload_bytes,
                           bool batch_end, const RecordPlace& place, std::string& out) {
  const std::size_t start = out.size();
  out.resize(start + kRecordHeaderBytes);
  out.reserve(start + kRecordHeaderBytes + payload_bytes);
  for (const LogEntry& entry : entries) {
    put_varint(out, entry.term.value);
    out.push_back(static_cast<char>(entry.type));
    put_varint(out, entry.data.size());
    out.append(entry.data);
  }
  RecordHeader header;
  header.kind = RecordKind::kEntries;
  header.flags = batch_end ? kFlagBatchEnd : 0;
  header.payload_bytes = static_cast<std::uint32_t>(payload_bytes);
  header.payload_crc =
      core::crc32c_extend(0, out.data() + start + kRecordHeaderBytes, payload_bytes);
  header.first_index = entries.front().index.value;
  header.entry_count = static_cast<std::uint32_t>(entries.size());
  header.batch_offset_back = static_cast<std::uint32_t>(place.offset - place.batch_start);
  encode_record_header(header, place, out.data() + start);
}

namespace {

void encode_marker_record(RecordKind kind, Index index, const RecordPlace& place,
                          std::string& out) {
  RecordHeader header;
  header.kind = kind;
  header.flags = kFlagBatchEnd;
  header.payload_crc = core::crc32c(std::string_view());
  header.first_index = index.value;
  header.batch_offset_back = static_cast<std::uint32_t>(place.offset - place.batch_start);
  const std::size_t start = out.size();
  out.resize(start + kRecordHeaderBytes);
  encode_record_header(header, place, out.data() + start);
}

}  // namespace

void encode_prefix_removed_record(Index up_to, const RecordPlace& place, std::string& out) {
  encode_marker_record(RecordKind::kPrefixRemoved, up_to, place, out);
}

void encode_reset_record(Index base, const RecordPlace& place, std::string& out) {
  encode_marker_record(RecordKind::kReset, base, place, out);
}

std::optional<RecordHeader> decode_record_header(std::string_view bytes, std::uint64_t sequence,
                                                 std::uint64_t offset) {
  if (bytes.size() < kRecordHeaderBytes) return std::nullopt;
  const char* p = bytes.data();
  // Cheap tests first: recovery calls this at every byte offset when it
  // searches past a damaged record, and most offsets fail here.
  const auto kind = static_cast<std::uint8_t>(p[12]);
  if (!known_kind(kind) || p[14] != 0 || p[15] != 0) return std::nullopt;
  if ((static_cast<std::uint8_t>(p[13]) & ~kFlagBatchEnd) != 0) return std::nullopt;
  if (get32(p) != header_crc(p, sequence, offset)) return std::nullopt;
  RecordHeader header;
  header.kind = static_cast<RecordKind>(kind);
  header.flags = static_cast<std::uint8_t>(p[13]);
  header.payload_crc = get32(p + 4);
  header.payload_bytes = get32(p + 8);
  header.first_index = get64(p + 16);
  header.entry_count = get32(p + 24);
  header.batch_offset_back = get32(p + 28);
  if (header.batch_offset_back > offset) return std::nullopt;
  if (header.payload_bytes > kMaxRecordPayloadBytes) return std::nullopt;
  const bool entries = header.kind == RecordKind::kEntries;
  if (entries && (header.first_index == 0 || header.entry_count == 0)) return std::nullopt;
  if (!entries && (header.payload_bytes != 0 || header.entry_count != 0)) return std::nullopt;
  return header;
}

bool payload_matches(const RecordHeader& header, std::string_view payload) {
  return payload.size() == header.payload_bytes && core::crc32c(payload) == header.payload_crc;
}

Result<std::vector<LogEntry>> decode_entries(const RecordHeader& header, std::string_view payload,
                                             const std::string& where) {
  core::ByteReader reader(payload, where.c_str());
  std::vector<LogEntry> entries;
  // Each entry takes at least 3 bytes, so a forged count reserves nothing big.
  if (header.entry_count > payload.size() / 3) {
    return Status::corruption(where + ": " + std::to_string(header.entry_count) +
                              " entries cannot fit in " + std::to_string(payload.size()) +
                              " bytes");
  }
  entries.reserve(header.entry_count);
  for (std::uint32_t i = 0; i < header.entry_count && reader.ok(); ++i) {
    reader.within("entry", i);
    LogEntry entry;
    entry.index = Index(header.first_index + i);
    entry.term = Term(reader.varint("term"));
    if (reader.ok() && entry.term > kMaxTerm) reader.fail("term above kMaxTerm");
    const std::uint8_t type = reader.u8("type");
    if (type > static_cast<std::uint8_t>(EntryType::kRestore)) reader.fail("unknown entry type");
    entry.type = static_cast<EntryType>(type);
    entry.data = std::string(reader.length_prefixed("data", payload.size(), "record payload"));
    entries.push_back(std::move(entry));
  }
  reader.within(nullptr, 0);
  reader.expect_end();
  if (!reader.ok()) return reader.status();
  return entries;
}

}  // namespace keel::storage
