// keel/types.h — the vocabulary shared by every layer of keel: strong ids for
// terms, log indices and servers, log entries and cluster configurations.
//
// Thread safety: these are plain values. Distinct objects may be used from
// different threads freely; one object is as safe as any standard container.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

namespace keel {

// A 64-bit number that only compares with its own kind, so that a term can
// never be passed where an index is expected (both are uint64_t underneath).
template <typename Tag>
struct StrongId {
  std::uint64_t value = 0;

  constexpr StrongId() = default;
  constexpr explicit StrongId(std::uint64_t v) : value(v) {}

  constexpr auto operator<=>(const StrongId&) const = default;

  constexpr StrongId next() const { return StrongId(value + 1); }
  constexpr StrongId prev() const { return StrongId(value == 0 ? 0 : value - 1); }
  constexpr StrongId operator+(std::uint64_t n) const { return StrongId(value + n); }
  constexpr StrongId operator-(std::uint64_t n) const { return StrongId(value - n); }
  constexpr std::uint64_t operator-(StrongId other) const { return value - other.value; }
  constexpr bool is_zero() const { return value == 0; }
};

template <typename Tag>
std::ostream& operator<<(std::ostream& out, StrongId<Tag> id) {
  return out << id.value;
}

// A Raft term (§5.1). Term 0 is "no term yet".
using Term = StrongId<struct TermTag>;
// A log position. Index 0 is "before the first entry"; real entries start at 1.
using Index = StrongId<struct IndexTag>;
// A server's stable identity in the cluster. 0 means "nobody" (no vote, no leader).
using ServerId = StrongId<struct ServerIdTag>;

inline constexpr ServerId kNoServer{0};

enum class EntryType : std::uint8_t {
  // A user command, handed to the state machine.
  kCommand = 0,
  // Appended by a new leader at the start of its term (thesis §6.4): until it
  // commits, the leader does not know which entries are committed, so reads
  // and "leader ready" wait for it.
  kTermStart = 1,
  // Carries no data; its application means every earlier entry is applied.
  kBarrier = 2,
  // A cluster configuration (membership) change.
  kConfiguration = 3,
};

const char* to_string(EntryType type);

struct LogEntry {
  Term term;
  Index index;
  EntryType type = EntryType::kCommand;
  std::string data;

  bool operator==(const LogEntry&) const = default;
};

// The bytes an entry contributes to flow-control budgets (payload plus a
// fixed per-entry overhead so that empty entries are not free).
inline constexpr std::uint64_t kEntryOverheadBytes = 24;
inline std::uint64_t entry_size_bytes(const LogEntry& entry) {
  return kEntryOverheadBytes + entry.data.size();
}

enum class Suffrage : std::uint8_t {
  kVoter = 0,    // counts toward quorums and may become leader
  kLearner = 1,  // receives the log, never votes or campaigns
};

struct Server {
  ServerId id;
  std::string address;
  Suffrage suffrage = Suffrage::kVoter;

  bool operator==(const Server&) const = default;
};

// The set of servers in the cluster. Quorums are majorities of the voters.
struct Configuration {
  std::vector<Server> servers;

  bool operator==(const Configuration&) const = default;

  bool contains(ServerId id) const;
  bool is_voter(ServerId id) const;
  std::vector<ServerId> voters() const;
  std::size_t voter_count() const;
  // The number of voters that form a majority (0 for an empty configuration).
  std::size_t quorum_size() const { return voter_count() / 2 + 1; }
};

}  // namespace keel

template <typename Tag>
struct std::hash<keel::StrongId<Tag>> {
  std::size_t operator()(keel::StrongId<Tag> id) const noexcept {
    return std::hash<std::uint64_t>{}(id.value);
  }
};
