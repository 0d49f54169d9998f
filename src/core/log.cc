#include "core/log.h"

#include <algorithm>
#include <utility>

#include "core/check.h"

namespace keel::core {

RaftLog::RaftLog(Index base_index, Term base_term, const std::vector<LogEntry>& entries)
    : base_index_(base_index), base_term_(base_term) {
  for (const LogEntry& entry : entries) append(entry);
}

std::optional<Term> RaftLog::term_at(Index index) const {
  if (index == base_index_) return base_term_;
  if (index < base_index_ || index > last_index()) return std::nullopt;
  return entries_[offset(index)].term();
}

bool RaftLog::matches(Index index, Term term) const {
  std::optional<Term> found = term_at(index);
  return found.has_value() && *found == term;
}

LogEntry RaftLog::at(Index index) const {
  KEEL_CHECK("log access in range", index >= first_index() && index <= last_index());
  return entries_[offset(index)].at(index);
}

void RaftLog::append(const LogEntry& entry) {
  KEEL_CHECK("log indices are contiguous", entry.index == last_index().next());
  KEEL_CHECK("log terms never decrease", entry.term >= last_term());
  KEEL_CHECK("terms stay within kMaxTerm", entry.term <= kMaxTerm);
  entries_.emplace_back(entry);
}

void RaftLog::truncate_from(Index index) {
  KEEL_CHECK("truncation stays after the log base", index > base_index_);
  if (index > last_index()) return;
  entries_.erase(entries_.begin() + static_cast<std::ptrdiff_t>(offset(index)), entries_.end());
}

void RaftLog::compact(Index through) {
  KEEL_CHECK("compaction stays within the log", through >= base_index_ && through <= last_index());
  if (through == base_index_) return;
  base_term_ = entries_[offset(through)].term();
  entries_.erase(entries_.begin(),
                 entries_.begin() + static_cast<std::ptrdiff_t>(offset(through)) + 1);
  base_index_ = through;
}

void RaftLog::reset(Index index, Term term) {
  KEEL_CHECK("terms stay within kMaxTerm", term <= kMaxTerm);
  entries_.clear();
  base_index_ = index;
  base_term_ = term;
}

std::vector<LogEntry> RaftLog::slice(Index from, Index to, std::size_t max_count,
                                     std::uint64_t max_bytes) const {
  std::vector<LogEntry> out;
  if (from < first_index() || from > to) return out;
  if (to > last_index()) to = last_index();
  std::uint64_t bytes = 0;
  for (Index i = from; i <= to && out.size() < max_count; i = i.next()) {
    const StoredEntry& stored = entries_[offset(i)];
    bytes += kEntryOverheadBytes + stored.size_bytes();
    if (!out.empty() && bytes > max_bytes) break;
    out.push_back(stored.at(i));
  }
  return out;
}

bool RaftLog::is_up_to_date(Index index, Term term) const {
  return term > last_term() || (term == last_term() && index >= last_index());
}

// Terms never decrease along the log, so both searches are binary: a hint
// over a long run of one term costs O(log n), not a scan.
Index RaftLog::first_index_of_term_at(Index from) const {
  std::optional<Term> term = term_at(from);
  KEEL_CHECK("hint search starts inside the log", term.has_value());
  if (from == base_index_) return from;
  auto end = entries_.begin() + static_cast<std::ptrdiff_t>(offset(from)) + 1;
  auto first = std::partition_point(entries_.begin(), end,
                                    [&](const StoredEntry& e) { return e.term() < *term; });
  return index_of(static_cast<std::size_t>(first - entries_.begin()));
}

std::optional<Index> RaftLog::last_index_of_term(Term term) const {
  auto after = std::partition_point(entries_.begin(), entries_.end(),
                                    [&](const StoredEntry& e) { return e.term() <= term; });
  if (after == entries_.begin()) {
    return base_term_ == term && !base_index_.is_zero() ? std::optional<Index>(base_index_)
                                                        : std::nullopt;
  }
  const StoredEntry& last = *(after - 1);
  return last.term() == term ? std::optional<Index>(
                                   index_of(static_cast<std::size_t>(after - 1 - entries_.begin())))
                             : std::nullopt;
}

}  // namespace keel::core
