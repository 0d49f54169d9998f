// storage/snapshot_meta.h — a snapshot's metadata file and its id
// (docs/formats.md, "Snapshot metadata").
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "keel/snapshot_store.h"
#include "keel/status.h"

namespace keel::storage {

inline constexpr std::uint8_t kSnapshotMetaFormatVersion = 1;

// Everything but the id (which is the snapshot's directory name), then a
// CRC-32C of the whole.
std::string encode_snapshot_meta(const SnapshotMeta& meta);
// Corruption naming `path` if the bytes are not a whole, valid metadata file.
Result<SnapshotMeta> decode_snapshot_meta(std::string_view bytes, const std::string& path);

// The creation sequence of an id made by make_snapshot_id, or nothing.
std::optional<std::uint64_t> snapshot_id_sequence(std::string_view id);

}  // namespace keel::storage
