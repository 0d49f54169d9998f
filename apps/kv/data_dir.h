// apps/kv/data_dir.h — a keel-kv data directory's identity: the cluster and
// the server id it belongs to, kept in `keel-kv.identity` next to the stores,
// so that a server started with another cluster's or another server's data
// directory refuses to start instead of joining with the wrong state.
//
// Thread safety: plain functions on files; one server owns a directory.
#pragma once

#include <cstdint>
#include <filesystem>

#include "keel/status.h"

namespace keel::kv {

// Creates `dir` if missing and checks that it is writable and, if it has an
// identity already, that it is this one. InvalidArgument naming the
// directory and both identities for a foreign one; IoError otherwise.
Status check_data_dir(const std::filesystem::path& dir, std::uint64_t cluster_id, std::uint64_t id);

// Records the identity if the directory has none yet (once the server has
// opened its stores: a server refused at start leaves no identity behind).
// Written whole: a temporary file, fsync, rename, fsync of the directory.
Status record_identity(const std::filesystem::path& dir, std::uint64_t cluster_id,
                       std::uint64_t id);

}  // namespace keel::kv
