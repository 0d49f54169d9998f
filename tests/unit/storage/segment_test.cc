// The WAL's record framing: what validates and, as important, what does not.
#include "storage/segment.h"

#include <gtest/gtest.h>

#include "storage_test_util.h"

namespace keel::storage {
namespace {

using testing::entries;

std::uint64_t payload_bytes(const std::vector<LogEntry>& batch) {
  std::uint64_t bytes = 0;
  for (const LogEntry& e : batch) bytes += encoded_entry_bytes(e);
  return bytes;
}

std::string record_of(const std::vector<LogEntry>& batch, RecordPlace place,
                      bool batch_end = true) {
  std::string out;
  encode_entries_record(batch, payload_bytes(batch), batch_end, place, out);
  return out;
}

TEST(Segment, FileNamesSortLikeSequences) {
  EXPECT_EQ(segment_file_name(42), "wal-000000000000002a.seg");
  EXPECT_EQ(parse_segment_file_name("wal-000000000000002a.seg"), 42u);
  EXPECT_FALSE(parse_segment_file_name("wal-000000000000002A.seg"));
  EXPECT_FALSE(parse_segment_file_name("wal-000000000000002a.seg.tmp"));
  EXPECT_FALSE(parse_segment_file_name("stable"));
  EXPECT_LT(segment_file_name(9), segment_file_name(10));
}

TEST(Segment, HeaderRoundTripsAndRefusesWhatItDoesNotKnow) {
  const std::string header = encode_segment_header(7);
  ASSERT_EQ(header.size(), kSegmentHeaderBytes);
  EXPECT_TRUE(check_segment_header(header, 7, "seg").is_ok());
  EXPECT_EQ(check_segment_header(header, 8, "seg").code(), StatusCode::kCorruption);
  EXPECT_EQ(check_segment_header(header.substr(0, 10), 7, "seg").code(), StatusCode::kCorruption);
  std::string damaged = header;
  damaged[17] ^= 1;
  Status status = check_segment_header(damaged, 7, "/wal/seg");
  EXPECT_EQ(status.code(), StatusCode::kCorruption);
  EXPECT_NE(status.message().find("/wal/seg"), std::string::npos);
}

TEST(Segment, ARecordRoundTrips) {
  const std::vector<LogEntry> batch = entries(5, 9, 3, 40);
  const std::string record = record_of(batch, {2, 64, 64});
  std::optional<RecordHeader> header = decode_record_header(record, 2, 64);
  ASSERT_TRUE(header);
  EXPECT_EQ(header->kind, RecordKind::kEntries);
  EXPECT_TRUE(header->batch_end());
  EXPECT_EQ(header->first_index, 5u);
  EXPECT_EQ(header->entry_count, 5u);
  EXPECT_EQ(header->record_bytes(), record.size());
  const std::string_view payload = std::string_view(record).substr(kRecordHeaderBytes);
  ASSERT_TRUE(payload_matches(*header, payload));
  Result<std::vector<LogEntry>> decoded = decode_entries(*header, payload, "test");
  ASSERT_TRUE(decoded.is_ok()) << decoded.status();
  EXPECT_EQ(*decoded, batch);
}

TEST(Segment, ARecordOnlyValidatesWhereItWasWritten) {
  const std::string record = record_of(entries(1, 2), {3, 100, 100});
  EXPECT_TRUE(decode_record_header(record, 3, 100));
  EXPECT_FALSE(decode_record_header(record, 3, 101)) << "another offset";
  EXPECT_FALSE(decode_record_header(record, 4, 100)) << "another segment";
}

TEST(Segment, ZerosAreNeverARecord) {
  EXPECT_FALSE(decode_record_header(std::string(kRecordHeaderBytes, '\0'), 1, 32));
}

TEST(Segment, EveryFlippedHeaderBitIsCaught) {
  const std::string record = record_of(entries(1, 1), {1, 32, 32});
  for (std::size_t bit = 0; bit < kRecordHeaderBytes * 8; ++bit) {
    std::string damaged = record;
    damaged[bit / 8] = static_cast<char>(damaged[bit / 8] ^ (1 << (bit % 8)));
    EXPECT_FALSE(decode_record_header(damaged, 1, 32)) << "bit " << bit;
  }
}

TEST(Segment, AFlippedPayloadByteFailsTheChecksum) {
  std::string record = record_of(entries(1, 3), {1, 32, 32});
  std::optional<RecordHeader> header = decode_record_header(record, 1, 32);
  ASSERT_TRUE(header);
  record[kRecordHeaderBytes + 5] ^= 0x10;
  EXPECT_FALSE(payload_matches(*header, std::string_view(record).substr(kRecordHeaderBytes)));
}

TEST(Segment, RecordsOfOneBatchPointBackToItsStart) {
  const std::string first = record_of(entries(1, 1), {1, 32, 32}, false);
  const std::string second = record_of(entries(2, 2), {1, 32 + first.size(), 32});
  EXPECT_FALSE(decode_record_header(first, 1, 32)->batch_end());
  std::optional<RecordHeader> header = decode_record_header(second, 1, 32 + first.size());
  ASSERT_TRUE(header);
  EXPECT_EQ(header->batch_offset_back, first.size());
  EXPECT_TRUE(header->batch_end());
}

TEST(Segment, APrefixMarkerCarriesItsIndex) {
  std::string out;
  encode_prefix_removed_record(Index(77), {1, 32, 32}, out);
  std::optional<RecordHeader> header = decode_record_header(out, 1, 32);
  ASSERT_TRUE(header);
  EXPECT_EQ(header->kind, RecordKind::kPrefixRemoved);
  EXPECT_EQ(header->first_index, 77u);
  EXPECT_TRUE(payload_matches(*header, ""));
}

TEST(Segment, AMalformedPayloadIsCorruptionNotACrash) {
  RecordHeader header;
  header.first_index = 1;
  header.entry_count = 2;
  Result<std::vector<LogEntry>> decoded = decode_entries(header,
                                                         std::string("\x01\x00\x05"
                                                                     "ab",
                                                                     5),
                                                         "rec");
  EXPECT_EQ(decoded.status().code(), StatusCode::kCorruption);
  header.entry_count = 1000000;
  EXPECT_EQ(decode_entries(header, "abc", "rec").status().code(), StatusCode::kCorruption);
}

}  // namespace
}  // namespace keel::storage
