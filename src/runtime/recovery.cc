#include "runtime/recovery.h"

#include <string>
#include <utility>

#include "core/codec.h"
#include "runtime/log_writer.h"

namespace keel::runtime {

namespace {

std::string at(Index index) { return "log entry at index " + std::to_string(index.value); }

bool known_type(EntryType type) {
  switch (type) {
    case EntryType::kCommand:
    case EntryType::kTermStart:
    case EntryType::kBarrier:
    case EntryType::kConfiguration:
    case EntryType::kRestore:
      return true;
  }
  return false;
}

}  // namespace

Result<std::optional<core::HardState>> find_hard_state(const StableStore& store) {
  Result<std::string> bytes = store.get(kHardStateKey);
  if (!bytes.is_ok()) {
    if (bytes.status().code() == StatusCode::kNotFound) return std::optional<core::HardState>();
    return bytes.status();
  }
  Result<core::HardState> decoded = core::decode_hard_state(*bytes);
  if (!decoded.is_ok()) {
    return Status::corruption("open: the stable store's hard state does not decode: " +
                              decoded.status().message());
  }
  return std::optional<core::HardState>(*decoded);
}

Result<core::HardState> load_hard_state(const StableStore& store) {
  Result<std::optional<core::HardState>> found = find_hard_state(store);
  if (!found.is_ok()) return found.status();
  return found->value_or(core::HardState{});
}

namespace {

// The configuration in force is the last one in the log (thesis §4.1: a
// server uses the newest configuration in its log, committed or not), else
// the one the snapshot holds.
Result<Configuration> latest_configuration(const std::vector<LogEntry>& entries,
                                           const std::optional<SnapshotMeta>& snapshot) {
  for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
    if (it->type != EntryType::kConfiguration) continue;
    Result<Configuration> decoded = core::decode_configuration(it->data);
    if (!decoded.is_ok()) {
      return Status::corruption("open: the configuration in " + at(it->index) +
                                " does not decode: " + decoded.status().message());
    }
    return decoded;
  }
  if (snapshot) return snapshot->configuration;
  // Never bootstrapped: a server that waits to be added to a cluster.
  return Configuration{};
}

}  // namespace

Status check_log(const std::vector<LogEntry>& entries, Index first, Index last) {
  const std::uint64_t expected = last.value - first.value + 1;
  if (entries.size() != expected) {
    return Status::corruption("open: the log store reports indices " + std::to_string(first.value) +
                              ".." + std::to_string(last.value) + " but read() returned " +
                              std::to_string(entries.size()) + " entries");
  }
  Term previous;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const LogEntry& entry = entries[i];
    const Index want = first + i;
    if (entry.index != want) {
      return Status::corruption("open: " + at(want) + " holds index " +
                                std::to_string(entry.index.value) + " (a gap or a duplicate)");
    }
    if (entry.term.is_zero()) return Status::corruption("open: " + at(want) + " has term 0");
    if (entry.term > kMaxTerm) {
      return Status::corruption("open: " + at(want) + " has a term above kMaxTerm");
    }
    if (entry.term < previous) {
      return Status::corruption("open: " + at(want) + " has term " +
                                std::to_string(entry.term.value) + ", below the term " +
                                std::to_string(previous.value) + " before it");
    }
    if (!known_type(entry.type)) {
      return Status::corruption("open: " + at(want) + " has the unknown entry type " +
                                std::to_string(static_cast<unsigned>(entry.type)));
    }
    if (entry.type == EntryType::kConfiguration) {
      // The core reads every configuration in the log, not just the newest.
      Result<Configuration> decoded = core::decode_configuration(entry.data);
      if (!decoded.is_ok()) {
        return Status::corruption("open: the configuration in " + at(want) +
                                  " does not decode: " + decoded.status().message());
      }
    }
    previous = entry.term;
  }
  return Status::ok();
}

namespace {

std::string text(Index index) { return std::to_string(index.value); }

// Where reading the log starts, after the snapshot (0/0 without one), and
// whether the stored log must first be reset to continue after it.
struct LogStart {
  Index base;
  Term base_term;
  bool reset = false;
};

Result<LogStart> log_start(const LogStore& log_store, const std::optional<SnapshotMeta>& snapshot) {
  const Index first = log_store.first_index();
  const Index last = log_store.last_index();
  const bool has_entries = last >= first && last >= Index{1};
  if (!snapshot) {
    if (!has_entries && last >= Index{1}) {
      return Status::corruption("open: the log was cut through entry " + text(last) +
                                " and no snapshot covers it (none listed, or none restores)");
    }
    if (has_entries && first != Index{1}) {
      return Status::corruption("open: the log starts at entry " + text(first) +
                                " and no snapshot covers entries 1.." + text(first.prev()) +
                                ": they are lost");
    }
    return LogStart{};
  }
  const Index base = snapshot->index;
  LogStart start{base, snapshot->term, false};
  if (!has_entries) {
    if (last > base) {
      return Status::corruption("open: the log was cut through entry " + text(last) +
                                " but the newest snapshot ends at entry " + text(base) +
                                ": entries " + text(base.next()) + ".." + text(last) + " are lost");
    }
    start.reset = last < base;  // empty: it must continue right after the snapshot
    return start;
  }
  if (first > base.next()) {
    return Status::corruption(
        "open: the log starts at entry " + text(first) + " but the newest snapshot ends at entry " +
        text(base) + ": entries " + text(base.next()) + ".." + text(first.prev()) + " are lost");
  }
  if (last < base || first > base) {
    // Ends before the snapshot (everything it holds is in the snapshot), or
    // starts right after it (compacted to it): keep what follows, if any.
    start.reset = last < base;
    return start;
  }
  Result<std::vector<LogEntry>> at = log_store.read(base, base);
  if (!at.is_ok()) return at.status();
  if (at->size() != 1 || at->front().index != base) {
    return Status::corruption("open: the log store's read of entry " + text(base) +
                              " returned something else");
  }
  start.reset = at->front().term != snapshot->term;
  return start;
}

}  // namespace

Result<Recovered> recover(LogStore& log_store, StableStore& stable_store,
                          const std::optional<SnapshotMeta>& snapshot) {
  Result<std::optional<core::HardState>> found = find_hard_state(stable_store);
  if (!found.is_ok()) return found.status();
  if (!found->has_value() && log_store.last_index() >= Index{1}) {
    return Status::corruption(
        "open: the log holds entries " + std::to_string(log_store.first_index().value) + ".." +
        std::to_string(log_store.last_index().value) +
        " but the stable store holds no hard state (term and vote): a server that lost its "
        "vote could vote twice in one term; restore the stable store, or remove this server "
        "and add it back with empty stores");
  }
  const core::HardState hard_state = found->value_or(core::HardState{});
  if (hard_state.term.is_zero() && !hard_state.vote.is_zero()) {
    return Status::corruption("open: the stored hard state has a vote but no term");
  }
  Recovered recovered;
  recovered.hard_state = hard_state;
  Result<LogStart> start = log_start(log_store, snapshot);
  if (!start.is_ok()) return start.status();
  recovered.base_index = start->base;
  recovered.base_term = start->base_term;
  if (start->reset) {
    Status reset = log_store.reset(start->base);
    if (!reset.is_ok()) return reset;
  }
  const Index first = std::max(log_store.first_index(), start->base.next());
  const Index last = log_store.last_index();
  if (last >= first && last >= Index{1}) {
    Result<std::vector<LogEntry>> read = log_store.read(first, last);
    if (!read.is_ok()) return read.status();
    if (Status valid = check_log(*read, first, last); !valid.is_ok()) return valid;
    if (!read->empty() && read->front().term < start->base_term) {
      return Status::corruption("open: " + at(first) + " has term " +
                                std::to_string(read->front().term.value) +
                                ", below the term of the snapshot before it");
    }
    recovered.entries_read = read->size();
    recovered.entries = std::move(read).value();
  }
  Result<Configuration> configuration = latest_configuration(recovered.entries, snapshot);
  if (!configuration.is_ok()) return configuration.status();
  recovered.configuration = std::move(configuration).value();
  core::HardState& hard = recovered.hard_state;
  if (!recovered.entries.empty() && recovered.entries.back().term > hard.term) {
    // See the top of recovery.h: the entries reached the disk, their term's
    // hard state did not (stores written before the log writer stored the
    // hard state first). Adopting a term without voting in it is always safe.
    hard.term = recovered.entries.back().term;
    hard.vote = kNoServer;
    Status stored = stable_store.set(kHardStateKey, core::encode_hard_state(hard));
    if (!stored.is_ok()) return stored;
  }
  return recovered;
}

}  // namespace keel::runtime
