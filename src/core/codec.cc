#include "core/codec.h"

#include <algorithm>
#include <cstddef>
#include <vector>

#include "core/byte_io.h"

namespace keel::core {

namespace {

// ---- Wire message layout (docs/formats.md, "Wire messages") ----------------
//
// A message is a flat struct whose fields mostly stay zero for any one type,
// so the frame carries a mask of the fields that are set and only their
// values: a heartbeat costs a few bytes, and every field round-trips whatever
// the type, so the codec never needs to know which type uses which field.

// Numeric fields, in the order of their mask bits and of their values.
enum class Field : std::uint8_t {
  kPrevLogIndex,
  kPrevLogTerm,
  kCommit,
  kMatchIndex,
  kHintIndex,
  kHintTerm,
  kLastLogIndex,
  kLastLogTerm,
  kReadRound,
  kRequestId,
  kReadIndex,
  // Added with snapshots; their mask bits follow the three below.
  kSnapshotOffset,
  kSnapshotSize,
  kSnapshotCrc,
  kChunkCrc,
  kSnapshotConfigurationIndex,
  // Added with membership changes; their mask bits follow every flag above.
  kEpoch,
  kCatchUpFloor,
};
constexpr std::size_t kNumericFieldCount = 18;
constexpr std::size_t kFirstSnapshotField = static_cast<std::size_t>(Field::kSnapshotOffset);
constexpr std::size_t kFirstMembershipField = static_cast<std::size_t>(Field::kEpoch);

constexpr const char* kFieldNames[kNumericFieldCount] = {
    "prev_log_index", "prev_log_term",  "commit",         "match_index",
    "hint_index",     "hint_term",      "last_log_index", "last_log_term",
    "read_round",     "request_id",     "read_index",     "snapshot_offset",
    "snapshot_size",  "snapshot_crc",   "chunk_crc",      "snapshot_configuration_index",
    "epoch",          "catch_up_floor",
};

// Flags that carry no value, and the variable-length parts. Bits 0-10 are
// the first numeric fields, 14-18 the snapshot ones, 24 and 26 the
// membership ones.
constexpr std::uint64_t kRejectBit = 1ULL << 11;
constexpr std::uint64_t kLeadershipTransferBit = 1ULL << 12;
constexpr std::uint64_t kEntriesBit = 1ULL << 13;
constexpr std::uint64_t kLastChunkBit = 1ULL << 19;
constexpr std::uint64_t kChunkBit = 1ULL << 20;
constexpr std::uint64_t kSnapshotConfigurationBit = 1ULL << 21;
// Added with membership changes.
constexpr std::uint64_t kSnapshotOutgoingBit = 1ULL << 22;
constexpr std::uint64_t kFromAddressBit = 1ULL << 23;
constexpr std::uint64_t kRemovedBit = 1ULL << 25;
constexpr std::uint64_t kKnownFieldsMask = (1ULL << 27) - 1;

constexpr std::uint64_t bit(Field field) {
  const auto position = static_cast<unsigned>(field);
  if (position < kFirstSnapshotField) return 1ULL << position;
  if (position < kFirstMembershipField) return 1ULL << (position + 3);
  if (field == Field::kEpoch) return 1ULL << 24;
  return 1ULL << (position + 9);  // past the removed flag (25)
}

// One accessor for encode (const) and decode (mutable), so that both walk
// the fields through the same switch and cannot disagree on the mapping.
template <typename M>
auto& field_value(M& m, Field field) {
  switch (field) {
    case Field::kPrevLogIndex:
      return m.prev_log_index.value;
    case Field::kPrevLogTerm:
      return m.prev_log_term.value;
    case Field::kCommit:
      return m.commit.value;
    case Field::kMatchIndex:
      return m.match_index.value;
    case Field::kHintIndex:
      return m.hint_index.value;
    case Field::kHintTerm:
      return m.hint_term.value;
    case Field::kLastLogIndex:
      return m.last_log_index.value;
    case Field::kLastLogTerm:
      return m.last_log_term.value;
    case Field::kReadRound:
      return m.read_round;
    case Field::kRequestId:
      return m.request_id;
    case Field::kReadIndex:
      return m.read_index.value;
    case Field::kSnapshotOffset:
      return m.snapshot_offset;
    case Field::kSnapshotSize:
      return m.snapshot_size;
    case Field::kSnapshotCrc:
      return m.snapshot_crc;
    case Field::kChunkCrc:
      return m.chunk_crc;
    case Field::kSnapshotConfigurationIndex:
      return m.snapshot_configuration_index.value;
    case Field::kEpoch:
      return m.epoch;
    case Field::kCatchUpFloor:
      return m.catch_up_floor.value;
  }
  return m.read_index.value;  // unreachable: the switch covers every Field
}

constexpr std::uint8_t kLastMessageType =
    static_cast<std::uint8_t>(MessageType::kSnapshotChunkResponse);
constexpr std::uint8_t kLastEntryType = static_cast<std::uint8_t>(EntryType::kRestore);
constexpr std::uint8_t kLastSuffrage = static_cast<std::uint8_t>(Suffrage::kLearner);

// The fewest bytes an encoded entry / server can take (every varint, the type
// byte and the length at least one byte each). A count is checked against
// remaining / minimum before anything is reserved, so that a forged count of
// 2^60 costs nothing.
constexpr std::size_t kMinEntryBytes = 4;
constexpr std::size_t kMinServerBytes = 3;

std::uint64_t field_mask(const Message& m) {
  std::uint64_t mask = 0;
  for (std::size_t i = 0; i < kNumericFieldCount; ++i) {
    const auto field = static_cast<Field>(i);
    if (field_value(m, field) != 0) mask |= bit(field);
  }
  if (m.reject) mask |= kRejectBit;
  if (m.leadership_transfer) mask |= kLeadershipTransferBit;
  if (m.removed) mask |= kRemovedBit;
  if (!m.entries.empty()) mask |= kEntriesBit;
  if (m.last_chunk) mask |= kLastChunkBit;
  if (!m.chunk.empty()) mask |= kChunkBit;
  if (!m.snapshot_configuration.servers.empty()) mask |= kSnapshotConfigurationBit;
  if (!m.snapshot_configuration.outgoing.empty()) mask |= kSnapshotOutgoingBit;
  if (!m.from_address.empty()) mask |= kFromAddressBit;
  return mask;
}

void write_entry(ByteWriter& writer, const LogEntry& entry) {
  writer.varint(entry.term.value);
  writer.varint(entry.index.value);
  writer.u8(static_cast<std::uint8_t>(entry.type));
  writer.length_prefixed(entry.data);
}

// Fails the reader if the frame is larger than the limit allows, before a
// single field is read.
void check_frame_size(ByteReader& reader, std::string_view bytes, const DecodeLimits& limits) {
  if (bytes.size() > limits.max_frame_bytes) {
    reader.fail("size " + std::to_string(bytes.size()) + " exceeds max_frame_bytes " +
                std::to_string(limits.max_frame_bytes));
  }
}

void check_version(ByteReader& reader, std::uint8_t expected) {
  const std::uint8_t version = reader.u8("format version");
  if (reader.ok() && version != expected) {
    reader.fail("unknown format version " + std::to_string(version) + " (this build reads " +
                std::to_string(expected) + ")");
  }
}

// Checks a list's count against its bound and against the bytes left, so
// that reserving `count` items is justified by the frame itself.
bool check_count(ByteReader& reader, const char* field, std::uint64_t count,
                 std::uint64_t max_count, const char* bound, std::size_t min_item_bytes) {
  if (!reader.ok()) return false;
  if (count > max_count) {
    reader.fail(std::string(field) + " " + std::to_string(count) + " exceeds " + bound + " " +
                std::to_string(max_count));
    return false;
  }
  if (count > reader.remaining() / min_item_bytes) {
    reader.fail(std::string(field) + " " + std::to_string(count) + " cannot fit in the " +
                std::to_string(reader.remaining()) + " bytes left (each takes at least " +
                std::to_string(min_item_bytes) + ")");
    return false;
  }
  return true;
}

// A term, refused above kMaxTerm (see keel/types.h).
Term read_term(ByteReader& reader, const char* what) {
  const Term term{reader.varint(what)};
  if (reader.ok() && term > kMaxTerm) reader.fail(std::string(what) + " above kMaxTerm");
  return term;
}

LogEntry read_entry(ByteReader& reader, const DecodeLimits& limits) {
  LogEntry entry;
  entry.term = read_term(reader, "term");
  entry.index = Index(reader.varint("index"));
  const std::uint8_t type = reader.u8("entry type");
  if (reader.ok() && type > kLastEntryType) {
    reader.fail("unknown entry type " + std::to_string(type));
  }
  entry.type = static_cast<EntryType>(type);
  entry.data =
      std::string(reader.length_prefixed("data", limits.max_entry_bytes, "max_entry_bytes"));
  if (reader.ok() && entry.type == EntryType::kConfiguration) {
    // A core interprets every configuration entry it holds: one that does not
    // decode is refused here, with the frame, not found later in the log.
    Result<Configuration> configuration = decode_configuration(entry.data, limits);
    if (!configuration.is_ok()) {
      reader.fail("configuration entry: " + configuration.status().message());
    }
  }
  return entry;
}

std::vector<LogEntry> read_entries(ByteReader& reader, const DecodeLimits& limits) {
  const std::uint64_t count = reader.varint("entry count");
  if (reader.ok() && count == 0) {
    reader.fail("entry list present but empty (non-canonical)");
  }
  std::vector<LogEntry> entries;
  if (!check_count(reader, "entry count", count, limits.max_entries_per_message,
                   "max_entries_per_message", kMinEntryBytes)) {
    return entries;
  }
  entries.reserve(static_cast<std::size_t>(count));
  for (std::size_t i = 0; i < count && reader.ok(); ++i) {
    reader.within("entry", i);
    entries.push_back(read_entry(reader, limits));
  }
  reader.within(nullptr, 0);
  return entries;
}

MessageType read_message_type(ByteReader& reader) {
  const std::uint8_t type = reader.u8("message type");
  if (reader.ok() && type > kLastMessageType) {
    reader.fail("unknown message type " + std::to_string(type));
  }
  return static_cast<MessageType>(type);
}

// The mask and the fields it announces. A field announced with the value 0
// is refused: the writer never sends one, and accepting it would let two
// frames mean the same message.
std::uint64_t read_fields(ByteReader& reader, Message& m, const DecodeLimits& limits) {
  const std::uint64_t mask = reader.varint("field mask");
  if (reader.ok() && (mask & ~kKnownFieldsMask) != 0) {
    reader.fail("unknown fields in mask " + std::to_string(mask));
  }
  for (std::size_t i = 0; i < kNumericFieldCount && reader.ok(); ++i) {
    const auto field = static_cast<Field>(i);
    if ((mask & bit(field)) == 0) continue;
    field_value(m, field) = reader.varint(kFieldNames[i]);
    if (reader.ok() && field_value(m, field) == 0) {
      reader.fail(std::string(kFieldNames[i]) + " present but zero (non-canonical)");
    }
  }
  m.reject = (mask & kRejectBit) != 0;
  m.leadership_transfer = (mask & kLeadershipTransferBit) != 0;
  m.removed = (mask & kRemovedBit) != 0;
  m.last_chunk = (mask & kLastChunkBit) != 0;
  if ((mask & kEntriesBit) != 0) m.entries = read_entries(reader, limits);
  return mask;
}

void write_server(ByteWriter& writer, const Server& server) {
  writer.varint(server.id.value);
  writer.u8(static_cast<std::uint8_t>(server.suffrage));
  writer.length_prefixed(server.address);
}

Server read_server(ByteReader& reader, const DecodeLimits& limits) {
  Server server;
  server.id = ServerId(reader.varint("server id"));
  if (reader.ok() && server.id == kNoServer) reader.fail("server id 0 (kNoServer)");
  const std::uint8_t suffrage = reader.u8("suffrage");
  if (reader.ok() && suffrage > kLastSuffrage) {
    reader.fail("unknown suffrage " + std::to_string(suffrage));
  }
  server.suffrage = static_cast<Suffrage>(suffrage);
  server.address =
      std::string(reader.length_prefixed("address", limits.max_address_bytes, "max_address_bytes"));
  return server;
}

// A server listed twice would be counted twice toward quorums.
void check_unique_ids(ByteReader& reader, const std::vector<Server>& servers) {
  std::vector<std::uint64_t> ids;
  ids.reserve(servers.size());
  for (const Server& server : servers) ids.push_back(server.id.value);
  std::sort(ids.begin(), ids.end());
  const auto duplicate = std::adjacent_find(ids.begin(), ids.end());
  if (duplicate != ids.end()) reader.fail("server " + std::to_string(*duplicate) + " listed twice");
}

std::vector<Server> read_servers(ByteReader& reader, const DecodeLimits& limits) {
  const std::uint64_t count = reader.varint("server count");
  std::vector<Server> servers;
  if (check_count(reader, "server count", count, limits.max_servers, "max_servers",
                  kMinServerBytes)) {
    servers.reserve(static_cast<std::size_t>(count));
    for (std::size_t i = 0; i < count && reader.ok(); ++i) {
      reader.within("server", i);
      servers.push_back(read_server(reader, limits));
    }
    reader.within(nullptr, 0);
  }
  if (reader.ok()) check_unique_ids(reader, servers);
  return servers;
}

void write_servers(ByteWriter& writer, const std::vector<Server>& servers) {
  writer.varint(servers.size());
  for (const Server& server : servers) write_server(writer, server);
}

// The outgoing half of a joint configuration: C_old's voters, at least one,
// and a server in both halves has one address.
void check_outgoing(ByteReader& reader, const Configuration& configuration) {
  if (configuration.outgoing.empty()) {
    reader.fail("joint configuration with no outgoing voters");
    return;
  }
  for (const Server& server : configuration.outgoing) {
    if (server.suffrage != Suffrage::kVoter) {
      reader.fail("outgoing server " + std::to_string(server.id.value) + " is not a voter");
      return;
    }
    for (const Server& incoming : configuration.servers) {
      if (incoming.id == server.id && incoming.address != server.address) {
        reader.fail("server " + std::to_string(server.id.value) +
                    " has two addresses in a joint configuration");
        return;
      }
    }
  }
}

}  // namespace

std::string encode(const Message& m) {
  ByteWriter writer;
  writer.u8(kMessageFormatVersion);
  writer.u8(static_cast<std::uint8_t>(m.type));
  writer.varint(m.from.value);
  writer.varint(m.to.value);
  writer.varint(m.term.value);
  writer.varint(field_mask(m));
  for (std::size_t i = 0; i < kNumericFieldCount; ++i) {
    const std::uint64_t value = field_value(m, static_cast<Field>(i));
    if (value != 0) writer.varint(value);
  }
  if (!m.entries.empty()) {
    writer.varint(m.entries.size());
    for (const LogEntry& entry : m.entries) write_entry(writer, entry);
  }
  if (!m.chunk.empty()) writer.length_prefixed(m.chunk);
  if (!m.snapshot_configuration.servers.empty()) {
    write_servers(writer, m.snapshot_configuration.servers);
  }
  if (!m.snapshot_configuration.outgoing.empty()) {
    write_servers(writer, m.snapshot_configuration.outgoing);
  }
  if (!m.from_address.empty()) writer.length_prefixed(m.from_address);
  return writer.take();
}

Result<Message> decode(std::string_view frame, const DecodeLimits& limits) {
  ByteReader reader(frame, "wire message");
  check_frame_size(reader, frame, limits);
  check_version(reader, kMessageFormatVersion);
  Message m;
  m.type = read_message_type(reader);
  m.from = ServerId(reader.varint("from"));
  m.to = ServerId(reader.varint("to"));
  m.term = read_term(reader, "term");
  const std::uint64_t mask = read_fields(reader, m, limits);
  if (reader.ok() && (mask & kChunkBit) != 0) {
    m.chunk = std::string(
        reader.length_prefixed("snapshot chunk", limits.max_chunk_bytes, "max_chunk_bytes"));
    if (reader.ok() && m.chunk.empty()) reader.fail("snapshot chunk present but empty");
  }
  if (reader.ok() && (mask & kSnapshotConfigurationBit) != 0) {
    m.snapshot_configuration.servers = read_servers(reader, limits);
    if (reader.ok() && m.snapshot_configuration.servers.empty()) {
      reader.fail("snapshot configuration present but empty");
    }
  }
  if (reader.ok() && (mask & kSnapshotOutgoingBit) != 0) {
    m.snapshot_configuration.outgoing = read_servers(reader, limits);
    if (reader.ok()) check_outgoing(reader, m.snapshot_configuration);
  }
  if (reader.ok() && (mask & kFromAddressBit) != 0) {
    m.from_address = std::string(
        reader.length_prefixed("from address", limits.max_address_bytes, "max_address_bytes"));
    if (reader.ok() && m.from_address.empty()) reader.fail("from address present but empty");
  }
  for (const Term term : {m.prev_log_term, m.hint_term, m.last_log_term}) {
    if (reader.ok() && term > kMaxTerm) reader.fail("a term field above kMaxTerm");
  }
  for (const std::uint64_t crc : {m.snapshot_crc, m.chunk_crc}) {
    if (reader.ok() && crc > 0xFFFFFFFFull) reader.fail("a CRC-32C field above 2^32");
  }
  reader.expect_end();
  if (!reader.ok()) return reader.status();
  return m;
}

std::string encode_hard_state(const HardState& state) {
  ByteWriter writer;
  // Without a catch-up floor, the first format, byte for byte.
  const bool floor = !state.catch_up_floor.is_zero();
  writer.u8(floor ? kHardStateWithFloorFormatVersion : kHardStateFormatVersion);
  writer.varint(state.term.value);
  writer.varint(state.vote.value);
  writer.varint(state.commit.value);
  if (floor) {
    writer.varint(state.catch_up_floor.value);
    writer.varint(state.catch_up_floor_term.value);
  }
  return writer.take();
}

Result<HardState> decode_hard_state(std::string_view bytes, const DecodeLimits& limits) {
  ByteReader reader(bytes, "hard state");
  check_frame_size(reader, bytes, limits);
  const std::uint8_t version = reader.u8("format version");
  if (reader.ok() && version != kHardStateFormatVersion &&
      version != kHardStateWithFloorFormatVersion) {
    reader.fail("unknown format version " + std::to_string(version) + " (this build reads " +
                std::to_string(kHardStateFormatVersion) + " and " +
                std::to_string(kHardStateWithFloorFormatVersion) + ")");
  }
  HardState state;
  state.term = read_term(reader, "term");
  state.vote = ServerId(reader.varint("vote"));
  state.commit = Index(reader.varint("commit"));
  if (version == kHardStateWithFloorFormatVersion) {
    state.catch_up_floor = Index(reader.varint("catch_up_floor"));
    if (reader.ok() && state.catch_up_floor.is_zero()) {
      reader.fail("catch_up_floor present but zero (non-canonical)");
    }
    state.catch_up_floor_term = read_term(reader, "catch_up_floor_term");
  }
  reader.expect_end();
  if (!reader.ok()) return reader.status();
  return state;
}

std::string encode_configuration(const Configuration& configuration) {
  ByteWriter writer;
  // A configuration outside a change keeps the first format, byte for byte.
  writer.u8(configuration.joint() ? kJointConfigurationFormatVersion : kConfigurationFormatVersion);
  write_servers(writer, configuration.servers);
  if (configuration.joint()) write_servers(writer, configuration.outgoing);
  return writer.take();
}

Result<Configuration> decode_configuration(std::string_view bytes, const DecodeLimits& limits) {
  ByteReader reader(bytes, "configuration");
  check_frame_size(reader, bytes, limits);
  const std::uint8_t version = reader.u8("format version");
  if (reader.ok() && version != kConfigurationFormatVersion &&
      version != kJointConfigurationFormatVersion) {
    reader.fail("unknown format version " + std::to_string(version) + " (this build reads " +
                std::to_string(kConfigurationFormatVersion) + " and " +
                std::to_string(kJointConfigurationFormatVersion) + ")");
  }
  Configuration configuration;
  configuration.servers = read_servers(reader, limits);
  if (reader.ok() && version == kJointConfigurationFormatVersion) {
    configuration.outgoing = read_servers(reader, limits);
    if (reader.ok()) check_outgoing(reader, configuration);
  }
  reader.expect_end();
  if (!reader.ok()) return reader.status();
  return configuration;
}

}  // namespace keel::core
