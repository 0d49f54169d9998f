// Snapshot metadata and ids (storage/snapshot_meta.h).
#include "storage/snapshot_meta.h"

#include <cstdio>

#include "core/byte_io.h"
#include "core/codec.h"
#include "core/crc32c.h"

namespace keel {

std::string make_snapshot_id(Index index, Term term, std::uint64_t sequence) {
  char id[64];
  std::snprintf(
      id, sizeof id, "snap-%016llx-%016llx-%016llx", static_cast<unsigned long long>(index.value),
      static_cast<unsigned long long>(term.value), static_cast<unsigned long long>(sequence));
  return id;
}

namespace storage {

namespace {

constexpr std::size_t kCrcBytes = 4;
// A configuration of max_servers (1024) servers with long addresses fits.
constexpr std::uint64_t kMaxConfigurationBytes = 4ULL << 20;

bool parse_hex(std::string_view digits, std::uint64_t& value) {
  value = 0;
  for (char c : digits) {
    int digit = -1;
    if (c >= '0' && c <= '9') digit = c - '0';
    if (c >= 'a' && c <= 'f') digit = c - 'a' + 10;
    if (digit < 0) return false;
    value = (value << 4) | static_cast<std::uint64_t>(digit);
  }
  return true;
}

}  // namespace

std::string encode_snapshot_meta(const SnapshotMeta& meta) {
  core::ByteWriter writer;
  writer.u8(kSnapshotMetaFormatVersion);
  writer.varint(meta.index.value);
  writer.varint(meta.term.value);
  writer.varint(meta.configuration_index.value);
  writer.length_prefixed(core::encode_configuration(meta.configuration));
  writer.varint(meta.size_bytes);
  writer.varint(meta.crc32c);
  std::string bytes = writer.take();
  const std::uint32_t crc = core::crc32c(bytes);
  for (int i = 0; i < 4; ++i) bytes.push_back(static_cast<char>((crc >> (8 * i)) & 0xFFu));
  return bytes;
}

Result<SnapshotMeta> decode_snapshot_meta(std::string_view bytes, const std::string& path) {
  if (bytes.size() < 1 + kCrcBytes) return Status::corruption(path + ": metadata file too short");
  const std::string_view body = bytes.substr(0, bytes.size() - kCrcBytes);
  std::uint32_t stored = 0;
  for (std::size_t i = kCrcBytes; i > 0; --i) {
    stored = (stored << 8) | static_cast<unsigned char>(bytes[body.size() + i - 1]);
  }
  if (stored != core::crc32c(body))
    return Status::corruption(path + ": metadata checksum mismatch");
  const std::string context = "snapshot metadata " + path;
  core::ByteReader reader(body, context.c_str());
  const std::uint8_t version = reader.u8("version");
  if (reader.ok() && version != kSnapshotMetaFormatVersion) {
    return Status::corruption(path + ": metadata format version " + std::to_string(version) +
                              " is not one this build reads");
  }
  SnapshotMeta meta;
  meta.index = Index(reader.varint("index"));
  meta.term = Term(reader.varint("term"));
  meta.configuration_index = Index(reader.varint("configuration_index"));
  const std::string_view configuration =
      reader.length_prefixed("configuration", kMaxConfigurationBytes, "kMaxConfigurationBytes");
  meta.size_bytes = reader.varint("size");
  const std::uint64_t crc = reader.varint("crc32c");
  reader.expect_end();
  if (!reader.ok()) return reader.status();
  if (crc > 0xFFFFFFFFull) return Status::corruption(path + ": crc32c does not fit 32 bits");
  meta.crc32c = static_cast<std::uint32_t>(crc);
  Result<Configuration> decoded = core::decode_configuration(configuration);
  if (!decoded.is_ok()) return Status::corruption(path + ": " + decoded.status().message());
  meta.configuration = std::move(decoded).value();
  return meta;
}

std::optional<std::uint64_t> snapshot_id_sequence(std::string_view id) {
  // snap-<16 hex>-<16 hex>-<16 hex>
  if (id.size() != 5 + 3 * 17 - 1 || id.substr(0, 5) != "snap-" || id[21] != '-' || id[38] != '-') {
    return std::nullopt;
  }
  std::uint64_t value = 0;
  if (!parse_hex(id.substr(5, 16), value) || !parse_hex(id.substr(22, 16), value))
    return std::nullopt;
  if (!parse_hex(id.substr(39, 16), value)) return std::nullopt;
  return value;
}

}  // namespace storage
}  // namespace keel
