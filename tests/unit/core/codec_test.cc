// The wire codec treats its input as hostile: every valid message round-trips,
// and every malformed frame (truncated, flipped, forged lengths, unknown
// versions or enum values, trailing bytes) is refused with Corruption, never
// a crash or an allocation the frame does not justify.
#include "core/codec.h"

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/byte_io.h"
#include "core/prng.h"

namespace keel::core {
namespace {

constexpr std::uint64_t kMax64 = std::numeric_limits<std::uint64_t>::max();

std::vector<LogEntry> one_entry_of_each_type() {
  return {
      LogEntry{Term(7), Index(41), EntryType::kCommand, "set x=1"},
      LogEntry{Term(7), Index(42), EntryType::kTermStart, ""},
      LogEntry{Term(8), Index(43), EntryType::kBarrier, ""},
      LogEntry{Term(8), Index(44), EntryType::kConfiguration,
               encode_configuration(Configuration{{Server{ServerId(3), "c:3"}}})},
  };
}

// Every field set to a distinct non-default value, so that a field swapped
// or dropped by the codec shows up as a mismatch.
Message message_with_all_fields(MessageType type) {
  Message m;
  m.type = type;
  m.from = ServerId(1);
  m.to = ServerId(2);
  m.term = Term(9);
  m.prev_log_index = Index(40);
  m.prev_log_term = Term(6);
  m.entries = one_entry_of_each_type();
  m.commit = Index(39);
  m.reject = true;
  m.match_index = Index(300);
  m.hint_index = Index(301);
  m.hint_term = Term(5);
  m.last_log_index = Index(302);
  m.last_log_term = Term(4);
  m.leadership_transfer = true;
  m.read_round = 1234567;
  m.removed = true;
  m.request_id = kMax64;
  m.read_index = Index(303);
  m.snapshot_offset = 1ULL << 40;
  m.snapshot_size = (1ULL << 40) + 17;
  m.snapshot_crc = 0xFFFFFFFFu;
  m.chunk_crc = 0x01020304u;
  m.last_chunk = true;
  m.chunk = std::string("chunk\0bytes", 11);
  m.snapshot_configuration = Configuration{{Server{ServerId(1), "a:1", Suffrage::kVoter},
                                            Server{ServerId(2), "b:2", Suffrage::kLearner}},
                                           {Server{ServerId(4), "d:4", Suffrage::kVoter}}};
  m.snapshot_configuration_index = Index(17);
  m.epoch = 18;
  m.catch_up_floor = Index(19);
  m.from_address = "leader:7000";
  return m;
}

std::vector<MessageType> all_message_types() {
  std::vector<MessageType> types;
  for (int t = 0; t <= static_cast<int>(MessageType::kSnapshotChunkResponse); ++t) {
    types.push_back(static_cast<MessageType>(t));
  }
  return types;
}

Configuration three_servers() {
  return Configuration{{
      Server{ServerId(1), "10.0.0.1:7000", Suffrage::kVoter},
      Server{ServerId(2), "node-two.example:7000", Suffrage::kVoter},
      Server{ServerId(300), "", Suffrage::kLearner},
  }};
}

void expect_corruption(const Status& status, const std::string& mentions) {
  EXPECT_EQ(status.code(), StatusCode::kCorruption) << status;
  EXPECT_NE(status.message().find(mentions), std::string::npos)
      << "error should mention '" << mentions << "': " << status;
}

// Bytes of a message frame up to and including its field mask.
ByteWriter frame_header(std::uint64_t field_mask, std::uint8_t type = 0) {
  ByteWriter writer;
  writer.u8(kMessageFormatVersion);
  writer.u8(type);
  writer.varint(1);  // from
  writer.varint(2);  // to
  writer.varint(3);  // term
  writer.varint(field_mask);
  return writer;
}

constexpr std::uint64_t kEntriesBit = 1ULL << 13;  // docs/formats.md

// ---- Round trips -----------------------------------------------------------

TEST(CodecTest, every_message_type_round_trips_with_all_fields_set) {
  for (MessageType type : all_message_types()) {
    const Message m = message_with_all_fields(type);
    Result<Message> decoded = decode(encode(m));
    ASSERT_TRUE(decoded.is_ok()) << to_string(type) << ": " << decoded.status();
    EXPECT_EQ(*decoded, m) << to_string(type);
  }
}

TEST(CodecTest, default_message_round_trips) {
  const Message m;
  Result<Message> decoded = decode(encode(m));
  ASSERT_TRUE(decoded.is_ok()) << decoded.status();
  EXPECT_EQ(*decoded, m);
}

TEST(CodecTest, extreme_values_round_trip) {
  Message m = message_with_all_fields(MessageType::kAppendRequest);
  m.from = ServerId(kMax64);
  m.term = kMaxTerm;
  m.prev_log_index = Index(kMax64);
  m.entries = {LogEntry{kMaxTerm, Index(kMax64), EntryType::kCommand, std::string(70000, 'x')}};
  Result<Message> decoded = decode(encode(m));
  ASSERT_TRUE(decoded.is_ok()) << decoded.status();
  EXPECT_EQ(*decoded, m);
}

// A log packs an entry's type into the top byte of its term, so no decoder
// lets a larger term in.
TEST(CodecTest, terms_above_kMaxTerm_are_refused) {
  const Term too_big = kMaxTerm.next();
  Message m;
  m.term = too_big;
  expect_corruption(decode(encode(m)).status(), "above kMaxTerm");
  m = message_with_all_fields(MessageType::kAppendRequest);
  m.entries = {LogEntry{too_big, Index(1), EntryType::kCommand, ""}};
  expect_corruption(decode(encode(m)).status(), "above kMaxTerm");
  m = message_with_all_fields(MessageType::kAppendRequest);
  m.prev_log_term = too_big;
  expect_corruption(decode(encode(m)).status(), "above kMaxTerm");
  Result<HardState> hard = decode_hard_state(encode_hard_state(HardState{too_big, {}, {}}));
  expect_corruption(hard.status(), "above kMaxTerm");
}

TEST(CodecTest, frame_starts_with_format_version) {
  EXPECT_EQ(static_cast<std::uint8_t>(encode(Message{})[0]), kMessageFormatVersion);
}

// The worked example of docs/formats.md, byte for byte: the layout the
// document describes is the one the code writes.
TEST(CodecTest, heartbeat_encodes_as_documented_in_formats_md) {
  Message m;
  m.type = MessageType::kHeartbeatRequest;
  m.from = ServerId(1);
  m.to = ServerId(2);
  m.term = Term(5);
  m.commit = Index(1000);
  m.read_round = 17;
  EXPECT_EQ(encode(m), std::string("\x01\x02\x01\x02\x05\x84\x02\xe8\x07\x11", 10));
}

TEST(CodecTest, hard_state_round_trips) {
  for (const HardState& state : {HardState{}, HardState{Term(3), ServerId(2), Index(99)},
                                 HardState{kMaxTerm, ServerId(kMax64), Index(kMax64)},
                                 HardState{Term(3), ServerId(2), Index(4), Index(12), Term(3)}}) {
    Result<HardState> decoded = decode_hard_state(encode_hard_state(state));
    ASSERT_TRUE(decoded.is_ok()) << decoded.status();
    EXPECT_EQ(*decoded, state);
  }
}

TEST(CodecTest, hard_state_keeps_its_first_format_without_a_catch_up_floor) {
  // Version 1 as docs/formats.md shows it: stores written before the floor
  // existed read the same, and a hard state without one is written the same.
  EXPECT_EQ(encode_hard_state(HardState{Term(3), ServerId(2), Index(99)}),
            std::string("\x01\x03\x02\x63", 4));
  EXPECT_EQ(encode_hard_state(HardState{Term(3), ServerId(2), Index(99), Index(120), Term(2)}),
            std::string("\x02\x03\x02\x63\x78\x02", 6));
  // A floor announced by version 2 must be there, and not zero.
  expect_corruption(decode_hard_state(std::string("\x02\x03\x02\x63\x00\x02", 6)).status(),
                    "non-canonical");
  expect_corruption(decode_hard_state(std::string("\x02\x03\x02\x63", 4)).status(),
                    "catch_up_floor");
  expect_corruption(decode_hard_state(std::string("\x03\x03\x02\x63", 4)).status(),
                    "unknown format version 3");
}

TEST(CodecTest, configuration_round_trips) {
  for (const Configuration& configuration : {Configuration{}, three_servers()}) {
    Result<Configuration> decoded = decode_configuration(encode_configuration(configuration));
    ASSERT_TRUE(decoded.is_ok()) << decoded.status();
    EXPECT_EQ(*decoded, configuration);
  }
}

// ---- Truncation ------------------------------------------------------------

TEST(CodecTest, every_truncation_of_a_message_fails_cleanly) {
  for (MessageType type : all_message_types()) {
    const std::string frame = encode(message_with_all_fields(type));
    for (std::size_t length = 0; length < frame.size(); ++length) {
      Result<Message> decoded = decode(std::string_view(frame).substr(0, length));
      ASSERT_FALSE(decoded.is_ok()) << to_string(type) << " cut to " << length << " bytes";
      EXPECT_EQ(decoded.status().code(), StatusCode::kCorruption);
    }
  }
}

TEST(CodecTest, every_truncation_of_hard_state_and_configuration_fails_cleanly) {
  const std::string hard_state = encode_hard_state(HardState{Term(300), ServerId(2), Index(70000)});
  for (std::size_t length = 0; length < hard_state.size(); ++length) {
    Result<HardState> decoded = decode_hard_state(std::string_view(hard_state).substr(0, length));
    EXPECT_EQ(decoded.status().code(), StatusCode::kCorruption) << "cut to " << length;
  }
  const std::string configuration = encode_configuration(three_servers());
  for (std::size_t length = 0; length < configuration.size(); ++length) {
    Result<Configuration> decoded =
        decode_configuration(std::string_view(configuration).substr(0, length));
    EXPECT_EQ(decoded.status().code(), StatusCode::kCorruption) << "cut to " << length;
  }
}

// ---- Random damage ---------------------------------------------------------

// A frame that decodes must be exactly what the encoder writes for its
// message: the decoder accepts only canonical encodings. So random damage
// either is refused or decodes to a message that re-encodes to the damaged
// bytes; anything else means the decoder misread something.
// Returns whether the frame was accepted.
bool expect_refused_or_canonical(const std::string& frame) {
  Result<Message> decoded = decode(frame);
  if (decoded.is_ok()) {
    EXPECT_EQ(encode(*decoded), frame);
  } else {
    EXPECT_EQ(decoded.status().code(), StatusCode::kCorruption);
  }
  return decoded.is_ok();
}

TEST(CodecTest, random_byte_flips_never_crash_and_never_misdecode) {
  Prng prng(20240601);
  const std::vector<MessageType> types = all_message_types();
  int accepted = 0;
  constexpr int kRounds = 20000;
  for (int round = 0; round < kRounds; ++round) {
    std::string frame = encode(message_with_all_fields(types[round % types.size()]));
    const std::uint64_t flips = prng.uniform(1, 4);
    for (std::uint64_t i = 0; i < flips; ++i) {
      frame[prng.uniform(0, frame.size())] = static_cast<char>(prng.uniform(0, 256));
    }
    if (expect_refused_or_canonical(frame)) ++accepted;
  }
  // Both outcomes must occur, or the loop is not testing what it claims.
  EXPECT_GT(accepted, 0);
  EXPECT_LT(accepted, kRounds);
}

TEST(CodecTest, random_frames_never_crash_and_never_misdecode) {
  Prng prng(7);
  for (int round = 0; round < 20000; ++round) {
    std::string frame(prng.uniform(0, 64), '\0');
    for (char& byte : frame) byte = static_cast<char>(prng.uniform(0, 256));
    if (!frame.empty())
      frame[0] = static_cast<char>(kMessageFormatVersion);  // past the first check
    expect_refused_or_canonical(frame);
  }
}

TEST(CodecTest, random_byte_flips_in_configurations_never_crash) {
  Prng prng(99);
  const std::string valid = encode_configuration(three_servers());
  for (int round = 0; round < 5000; ++round) {
    std::string bytes = valid;
    bytes[prng.uniform(0, bytes.size())] = static_cast<char>(prng.uniform(0, 256));
    Result<Configuration> decoded = decode_configuration(bytes);
    if (decoded.is_ok()) {
      EXPECT_EQ(encode_configuration(*decoded), bytes);
    } else {
      EXPECT_EQ(decoded.status().code(), StatusCode::kCorruption);
    }
  }
}

// ---- Forged lengths and counts -------------------------------------------

// The limits are lifted here so that only the bytes-left check stands between
// a forged count and a reserve() of 2^61 entries (which would throw).
DecodeLimits no_limits() { return DecodeLimits{kMax64, kMax64, kMax64, kMax64, kMax64}; }

TEST(CodecTest, entry_count_larger_than_the_frame_is_refused_without_allocating) {
  ByteWriter writer = frame_header(kEntriesBit);
  writer.varint(1ULL << 61);
  writer.varint(1);  // the start of one entry
  Result<Message> decoded = decode(writer.take(), no_limits());
  expect_corruption(decoded.status(), "entry count");
}

TEST(CodecTest, entry_count_above_max_entries_per_message_is_refused) {
  DecodeLimits limits;
  limits.max_entries_per_message = 2;
  Message m = message_with_all_fields(MessageType::kAppendRequest);  // 4 entries
  expect_corruption(decode(encode(m), limits).status(), "max_entries_per_message");
}

TEST(CodecTest, entry_data_length_larger_than_the_frame_is_refused_without_allocating) {
  ByteWriter writer = frame_header(kEntriesBit);
  writer.varint(1);           // one entry
  writer.varint(1);           // term
  writer.varint(1);           // index
  writer.u8(0);               // kCommand
  writer.varint(1ULL << 62);  // data length
  writer.u8('x');
  Result<Message> decoded = decode(writer.take(), no_limits());
  expect_corruption(decoded.status(), "entry 0: data length 4611686018427387904");
}

TEST(CodecTest, entry_above_max_entry_bytes_is_refused) {
  DecodeLimits limits;
  limits.max_entry_bytes = 3;
  Message m;
  m.entries = {LogEntry{Term(1), Index(1), EntryType::kCommand, "abc"},
               LogEntry{Term(1), Index(2), EntryType::kCommand, "abcd"}};
  expect_corruption(decode(encode(m), limits).status(),
                    "entry 1: data length 4 exceeds max_entry_bytes");
}

TEST(CodecTest, frame_above_max_frame_bytes_is_refused) {
  DecodeLimits limits;
  limits.max_frame_bytes = 16;
  const std::string frame = encode(message_with_all_fields(MessageType::kAppendRequest));
  expect_corruption(decode(frame, limits).status(), "max_frame_bytes");
}

TEST(CodecTest, server_count_larger_than_the_bytes_is_refused_without_allocating) {
  ByteWriter writer;
  writer.u8(kConfigurationFormatVersion);
  writer.varint(1ULL << 60);
  Result<Configuration> decoded = decode_configuration(writer.take(), no_limits());
  expect_corruption(decoded.status(), "server count");
}

TEST(CodecTest, server_count_above_max_servers_is_refused) {
  DecodeLimits limits;
  limits.max_servers = 2;
  expect_corruption(decode_configuration(encode_configuration(three_servers()), limits).status(),
                    "max_servers");
}

TEST(CodecTest, address_above_max_address_bytes_is_refused) {
  DecodeLimits limits;
  limits.max_address_bytes = 8;
  expect_corruption(decode_configuration(encode_configuration(three_servers()), limits).status(),
                    "server 0: address length 13 exceeds max_address_bytes 8");
}

// ---- Unknown or malformed values -------------------------------------------

TEST(CodecTest, unknown_format_version_is_refused) {
  std::string frame = encode(message_with_all_fields(MessageType::kVoteRequest));
  frame[0] = static_cast<char>(kMessageFormatVersion + 1);
  expect_corruption(decode(frame).status(), "unknown format version 2");

  std::string hard_state = encode_hard_state(HardState{});
  hard_state[0] = 0;
  expect_corruption(decode_hard_state(hard_state).status(), "unknown format version 0");

  std::string configuration = encode_configuration(three_servers());
  configuration[0] = static_cast<char>(0xff);
  expect_corruption(decode_configuration(configuration).status(), "unknown format version 255");
}

TEST(CodecTest, empty_frame_is_refused) {
  expect_corruption(decode("").status(), "format version");
}

TEST(CodecTest, unknown_message_type_is_refused) {
  std::string frame = encode(Message{});
  frame[1] = static_cast<char>(static_cast<int>(MessageType::kSnapshotChunkResponse) + 1);
  expect_corruption(decode(frame).status(), "unknown message type 14");
}

TEST(CodecTest, unknown_entry_type_is_refused) {
  Message m;
  m.entries = {LogEntry{Term(1), Index(1), EntryType::kCommand, ""}};
  std::string frame = encode(m);
  // The entry's type byte sits before its (empty) data's length byte.
  frame[frame.size() - 2] = 5;
  expect_corruption(decode(frame).status(), "entry 0: unknown entry type 5");
}

TEST(CodecTest, unknown_field_bit_is_refused) {
  ByteWriter writer = frame_header(1ULL << 27);
  expect_corruption(decode(writer.take()).status(), "unknown fields");
}

TEST(CodecTest, snapshot_chunk_above_max_chunk_bytes_is_refused) {
  Message m = message_with_all_fields(MessageType::kSnapshotChunk);
  m.chunk = std::string(1000, 'c');
  DecodeLimits limits;
  limits.max_chunk_bytes = 999;
  expect_corruption(decode(encode(m), limits).status(), "max_chunk_bytes");
  limits.max_chunk_bytes = 1000;
  EXPECT_TRUE(decode(encode(m), limits).is_ok());
}

TEST(CodecTest, crc_fields_above_32_bits_are_refused) {
  Message m = message_with_all_fields(MessageType::kSnapshotChunk);
  m.chunk_crc = 1ULL << 32;
  expect_corruption(decode(encode(m)).status(), "CRC-32C");
  m = message_with_all_fields(MessageType::kSnapshotChunk);
  m.snapshot_crc = 1ULL << 33;
  expect_corruption(decode(encode(m)).status(), "CRC-32C");
}

TEST(CodecTest, empty_chunk_or_configuration_announced_is_refused) {
  constexpr std::uint64_t kChunkBit = 1ULL << 20;  // docs/formats.md
  constexpr std::uint64_t kSnapshotConfigurationBit = 1ULL << 21;
  ByteWriter chunk =
      frame_header(kChunkBit, static_cast<std::uint8_t>(MessageType::kSnapshotChunk));
  chunk.varint(0);
  expect_corruption(decode(chunk.take()).status(), "snapshot chunk present but empty");
  ByteWriter configuration = frame_header(kSnapshotConfigurationBit,
                                          static_cast<std::uint8_t>(MessageType::kSnapshotRequest));
  configuration.varint(0);
  expect_corruption(decode(configuration.take()).status(),
                    "snapshot configuration present but empty");
}

TEST(CodecTest, snapshot_configuration_with_a_duplicate_server_is_refused) {
  Message m = message_with_all_fields(MessageType::kSnapshotRequest);
  m.snapshot_configuration.servers[1].id = ServerId(1);
  expect_corruption(decode(encode(m)).status(), "listed twice");
}

TEST(CodecTest, field_announced_with_value_zero_is_refused) {
  ByteWriter writer = frame_header(1);  // prev_log_index
  writer.varint(0);
  expect_corruption(decode(writer.take()).status(), "prev_log_index present but zero");
}

TEST(CodecTest, empty_entry_list_announced_is_refused) {
  ByteWriter writer = frame_header(kEntriesBit);
  writer.varint(0);
  expect_corruption(decode(writer.take()).status(), "entry list present but empty");
}

TEST(CodecTest, overlong_and_overflowing_varints_are_refused) {
  ByteWriter overlong = frame_header(0);
  std::string frame = overlong.take();
  frame[2] = static_cast<char>(0x81);  // from = 1, continued ...
  frame.insert(3, 1, '\0');            // ... by a zero byte
  expect_corruption(decode(frame).status(), "overlong varint from");

  std::string overflow = encode(Message{});
  overflow.replace(2, 1, std::string(9, '\xff') + "\x02");
  expect_corruption(decode(overflow).status(), "varint from overflows 64 bits");
}

TEST(CodecTest, trailing_bytes_are_refused) {
  expect_corruption(
      decode(encode(message_with_all_fields(MessageType::kAppendRequest)) + "x").status(),
      "1 trailing bytes");
  expect_corruption(decode_hard_state(encode_hard_state(HardState{}) + "xy").status(),
                    "2 trailing bytes");
  expect_corruption(decode_configuration(encode_configuration(three_servers()) + "z").status(),
                    "1 trailing bytes");
}

TEST(CodecTest, unknown_suffrage_is_refused) {
  std::string bytes =
      encode_configuration(Configuration{{Server{ServerId(5), "", Suffrage::kVoter}}});
  bytes[3] = 2;  // version, count, id, suffrage
  expect_corruption(decode_configuration(bytes).status(), "server 0: unknown suffrage 2");
}

TEST(CodecTest, configuration_with_server_zero_or_a_duplicate_is_refused) {
  Configuration with_zero{{Server{kNoServer, "a", Suffrage::kVoter}}};
  expect_corruption(decode_configuration(encode_configuration(with_zero)).status(), "server id 0");

  Configuration duplicate = three_servers();
  duplicate.servers.push_back(Server{ServerId(2), "elsewhere", Suffrage::kLearner});
  expect_corruption(decode_configuration(encode_configuration(duplicate)).status(),
                    "server 2 listed twice");
}

}  // namespace
}  // namespace keel::core
