// runtime/restore_entry.h — the payload of kRestore log entries, through
// which Raft::restore() replicates a snapshot to every server.
//
// A restore is one run of kRestore entries at indices first .. first+count-1,
// appended by one leader in one step, so nothing else lies between them and
// they all have its term. Each entry carries its place in the run and the
// next piece of the snapshot's bytes; the first also carries the
// configuration the snapshot records. Once the last one applies, the state
// machine holds the snapshot's state, as of that last entry: that index and
// term are the snapshot's, and the store files it there. A run that a change
// of leader cut short (an entry of the run missing, another entry in its
// place) restores nothing. Format: docs/formats.md, "Restore entries".
//
// Thread safety: pure functions of their arguments.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "keel/status.h"
#include "keel/types.h"

namespace keel::runtime {

struct RestorePiece {
  Index first;                    // the run's first entry
  std::uint32_t number = 0;       // this entry's place in the run, from 0
  std::uint32_t count = 0;        // entries in the run
  std::uint64_t total_bytes = 0;  // of the whole snapshot
  std::uint32_t crc32c = 0;       // of the whole snapshot
  // Only in the first entry (number 0).
  Configuration configuration;
  Index configuration_index;
  // This entry's piece of the snapshot (decoded: a view into the entry).
  std::string_view bytes;

  Index last() const { return first + (count - 1); }
};

std::string encode_restore_piece(const RestorePiece& piece);
// Corruption naming the field for anything that is not a well-formed piece
// (a committed kRestore entry that does not decode is a damaged log).
Result<RestorePiece> decode_restore_piece(std::string_view bytes);

// The entries' data for restoring `snapshot` from index `first`: pieces of
// at most `piece_bytes` (at least one entry, even for an empty snapshot).
std::vector<std::string> make_restore_entries(std::string_view snapshot, Index first,
                                              std::uint64_t piece_bytes,
                                              const Configuration& configuration,
                                              Index configuration_index);

}  // namespace keel::runtime
