// MemoryLogStore and MemoryStableStore (keel/log_store.h): the stores of
// tests and of the in-memory benchmark mode. "Durable" means "in this
// object"; the mutex makes every call safe from any thread.
#include <algorithm>
#include <cstddef>
#include <string>

#include "keel/log_store.h"

namespace keel {

namespace {

std::string position(Index index) { return std::to_string(index.value); }

// Appended entries must form one run with no gap: a hole would let a later
// read return entries that were never written.
Status check_contiguous(std::span<const LogEntry> entries) {
  for (std::size_t i = 1; i < entries.size(); ++i) {
    if (entries[i].index != entries[i - 1].index.next()) {
      return Status::invalid_argument("append: entry " + position(entries[i].index) +
                                      " does not follow entry " + position(entries[i - 1].index));
    }
  }
  return Status::ok();
}

}  // namespace

// Entries live at indices (base_, base_ + size]. A new store reports 0 and
// 0, as the header promises; after a prefix removal an empty log reports
// base_ + 1 and base_.
Index MemoryLogStore::first_index() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return entries_.empty() && base_.is_zero() ? Index(0) : base_.next();
}

Index MemoryLogStore::last_index() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return base_ + entries_.size();
}

Result<std::vector<LogEntry>> MemoryLogStore::read(Index from, Index to) const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (from > to) {
    return Status::invalid_argument("read: empty range [" + position(from) + ", " + position(to) +
                                    "]");
  }
  const Index last = base_ + entries_.size();
  if (from <= base_ || to > last) {
    return Status::not_found("read: [" + position(from) + ", " + position(to) +
                             "] is not within the stored [" + position(base_.next()) + ", " +
                             position(last) + "]");
  }
  std::vector<LogEntry> out;
  out.reserve(static_cast<std::size_t>(to - from) + 1);
  for (Index i = from; i <= to; i = i.next()) {
    out.push_back(entries_[static_cast<std::size_t>(i - base_.next())].at(i));
  }
  return out;
}

// Fail-stop first: once an append has failed, nothing else is looked at.
Status MemoryLogStore::append(std::span<const LogEntry> entries) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++append_calls_;
  if (failed_) return Status::io_error("append: the log store failed earlier (fail-stop)");
  if (fail_next_) {
    failed_ = true;
    return Status::io_error("append: injected failure");
  }
  if (entries.empty()) return Status::ok();
  const Index first = entries.front().index;
  const Index next = (base_ + entries_.size()).next();
  if (first <= base_ || first > next) {
    return Status::invalid_argument("append: first entry " + position(first) + " must be in [" +
                                    position(base_.next()) + ", " + position(next) + "]");
  }
  if (Status status = check_contiguous(entries); !status.is_ok()) return status;
  for (const LogEntry& entry : entries) {
    if (entry.term > kMaxTerm) {
      return Status::invalid_argument("append: entry " + position(entry.index) +
                                      " has a term above kMaxTerm");
    }
  }
  // Entries from `first` on conflicted with the leader's and are replaced.
  entries_.erase(entries_.begin() + static_cast<std::ptrdiff_t>(first - base_.next()),
                 entries_.end());
  for (const LogEntry& entry : entries) entries_.emplace_back(entry);
  return Status::ok();
}

Status MemoryLogStore::truncate_prefix(Index up_to) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (failed_) return Status::io_error("truncate_prefix: the log store failed earlier (fail-stop)");
  if (up_to <= base_) return Status::ok();
  const std::uint64_t removed = std::min<std::uint64_t>(up_to - base_, entries_.size());
  entries_.erase(entries_.begin(), entries_.begin() + static_cast<std::ptrdiff_t>(removed));
  base_ = up_to;
  return Status::ok();
}

Status MemoryLogStore::reset(Index base) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (failed_) return Status::io_error("reset: the log store failed earlier (fail-stop)");
  entries_.clear();
  base_ = base;
  return Status::ok();
}

void MemoryLogStore::fail_appends() {
  std::lock_guard<std::mutex> lock(mutex_);
  fail_next_ = true;
}

std::uint64_t MemoryLogStore::append_calls() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return append_calls_;
}

Status MemoryStableStore::set(const std::string& key, std::string value) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto found = std::find_if(values_.begin(), values_.end(),
                            [&key](const auto& entry) { return entry.first == key; });
  if (found != values_.end()) {
    found->second = std::move(value);
  } else {
    values_.emplace_back(key, std::move(value));
  }
  return Status::ok();
}

Result<std::string> MemoryStableStore::get(const std::string& key) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto found = std::find_if(values_.begin(), values_.end(),
                            [&key](const auto& entry) { return entry.first == key; });
  if (found == values_.end()) return Status::not_found("stable store: no key '" + key + "'");
  return found->second;
}

}  // namespace keel
