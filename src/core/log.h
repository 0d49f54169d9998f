// core/log.h — the node's view of the replicated log, held in memory.
//
// The core keeps every entry after the last snapshot in memory (compaction
// bounds it) and tracks which suffix the shell has not yet been asked to
// persist. Positions: entries live at indices [first_index(), last_index()];
// the position just before the first entry (the snapshot's, or index 0 with
// term 0) is known too, so that appends right after it can be checked.
//
// Thread safety: a value owned by one Node.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

#include "keel/types.h"

namespace keel::core {

class RaftLog {
 public:
  RaftLog() = default;
  // A log that continues after the given position (0/0 for an empty log).
  RaftLog(Index base_index, Term base_term, const std::vector<LogEntry>& entries);

  Index first_index() const { return base_index_.next(); }
  // The position just before the first entry: the last entry a snapshot
  // covers once the log was compacted or a snapshot installed (0/0 before).
  Index base_index() const { return base_index_; }
  Term base_term() const { return base_term_; }
  Index last_index() const { return base_index_ + entries_.size(); }
  Term last_term() const { return entries_.empty() ? base_term_ : entries_.back().term(); }
  bool empty() const { return entries_.empty(); }

  // The term at `index`, if the log knows it (the base position included).
  std::optional<Term> term_at(Index index) const;
  // Whether the entry at `index` has `term` (the §5.3 consistency check).
  bool matches(Index index, Term term) const;
  // Requires first_index() <= index <= last_index(). A copy shares the
  // entry's payload (see keel::Payload): cheap.
  LogEntry at(Index index) const;

  // Appends at last_index() + 1. The entry's index must be that position and
  // its term must not be below the last term.
  void append(const LogEntry& entry);
  // Removes every entry at index >= `index` (a conflicting suffix, §5.3).
  // Requires index > base index.
  void truncate_from(Index index);
  // Drops every entry up to `through` (compaction after a snapshot), which
  // becomes the base. Requires base index <= through <= last index.
  void compact(Index through);
  // Drops every entry: the log continues after (index, term), the end of an
  // installed snapshot.
  void reset(Index index, Term term);

  // Entries [from, to] limited to max_count entries and max_bytes (always at
  // least one entry when the range is not empty).
  std::vector<LogEntry> slice(Index from, Index to, std::size_t max_count,
                              std::uint64_t max_bytes) const;

  // Whether a log ending at (last_index, last_term) is at least as up to date
  // as this one (§5.4.1): a later last term wins, and with equal terms the
  // longer log.
  bool is_up_to_date(Index last_index, Term last_term) const;

  // The first index holding `term`, searching backwards from `from` while the
  // term stays the same: used for a rejection hint so that the leader can
  // skip a whole term of conflicting entries in one round trip.
  Index first_index_of_term_at(Index from) const;
  // The last index whose term is `term`, if any.
  std::optional<Index> last_index_of_term(Term term) const;

 private:
  std::size_t offset(Index index) const { return static_cast<std::size_t>(index - first_index()); }
  Index index_of(std::size_t position) const { return first_index() + position; }

  Index base_index_;
  Term base_term_;
  std::deque<StoredEntry> entries_;  // 16 bytes each plus the shared payload
};

}  // namespace keel::core
