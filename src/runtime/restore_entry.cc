#include "runtime/restore_entry.h"

#include <algorithm>
#include <limits>

#include "core/byte_io.h"
#include "core/codec.h"
#include "core/crc32c.h"

namespace keel::runtime {

namespace {

constexpr std::uint8_t kRestoreFormatVersion = 1;

}  // namespace

std::string encode_restore_piece(const RestorePiece& piece) {
  core::ByteWriter writer;
  writer.u8(kRestoreFormatVersion);
  writer.varint(piece.first.value);
  writer.varint(piece.number);
  writer.varint(piece.count);
  writer.varint(piece.total_bytes);
  writer.varint(piece.crc32c);
  if (piece.number == 0) {
    writer.length_prefixed(core::encode_configuration(piece.configuration));
    writer.varint(piece.configuration_index.value);
  }
  writer.length_prefixed(piece.bytes);
  return writer.take();
}

Result<RestorePiece> decode_restore_piece(std::string_view bytes) {
  core::ByteReader reader(bytes, "restore entry");
  RestorePiece piece;
  const std::uint8_t version = reader.u8("version");
  if (reader.ok() && version != kRestoreFormatVersion) {
    reader.fail("unknown format version " + std::to_string(version));
  }
  piece.first = Index{reader.varint("first")};
  const std::uint64_t number = reader.varint("number");
  const std::uint64_t count = reader.varint("count");
  piece.total_bytes = reader.varint("total_bytes");
  const std::uint64_t crc = reader.varint("crc32c");
  if (reader.ok() && piece.first.is_zero()) reader.fail("first index 0");
  if (reader.ok() && (count == 0 || count > std::numeric_limits<std::uint32_t>::max())) {
    reader.fail("count " + std::to_string(count) + " out of range");
  }
  if (reader.ok() && number >= count) reader.fail("number not below count");
  if (reader.ok() && crc > std::numeric_limits<std::uint32_t>::max()) {
    reader.fail("crc32c above 32 bits");
  }
  piece.number = static_cast<std::uint32_t>(number);
  piece.count = static_cast<std::uint32_t>(count);
  piece.crc32c = static_cast<std::uint32_t>(crc);
  if (reader.ok() && piece.number == 0) {
    const std::string_view configuration =
        reader.length_prefixed("configuration", bytes.size(), "entry size");
    if (reader.ok()) {
      Result<Configuration> decoded = core::decode_configuration(configuration);
      if (!decoded.is_ok())
        return Status::corruption("restore entry: " + decoded.status().message());
      piece.configuration = std::move(decoded).value();
    }
    piece.configuration_index = Index{reader.varint("configuration_index")};
  }
  piece.bytes = reader.length_prefixed("bytes", bytes.size(), "entry size");
  if (reader.ok() && piece.bytes.size() > piece.total_bytes) {
    reader.fail("a piece larger than the snapshot");
  }
  reader.expect_end();
  if (!reader.ok()) return Status::corruption(reader.status().message());
  return piece;
}

std::vector<std::string> make_restore_entries(std::string_view snapshot, Index first,
                                              std::uint64_t piece_bytes,
                                              const Configuration& configuration,
                                              Index configuration_index) {
  const std::uint64_t size = snapshot.size();
  piece_bytes = std::max<std::uint64_t>(piece_bytes, 1);
  const std::uint64_t count = std::max<std::uint64_t>(1, (size + piece_bytes - 1) / piece_bytes);
  RestorePiece piece;
  piece.first = first;
  piece.count = static_cast<std::uint32_t>(count);
  piece.total_bytes = size;
  piece.crc32c = core::crc32c(snapshot);
  piece.configuration = configuration;
  piece.configuration_index = configuration_index;
  std::vector<std::string> entries;
  entries.reserve(count);
  for (std::uint64_t i = 0; i < count; ++i) {
    piece.number = static_cast<std::uint32_t>(i);
    const std::uint64_t offset = i * piece_bytes;
    piece.bytes = snapshot.substr(std::min(offset, size), piece_bytes);
    entries.push_back(encode_restore_piece(piece));
  }
  return entries;
}

}  // namespace keel::runtime
