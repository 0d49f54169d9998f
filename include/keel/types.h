// keel/types.h — the vocabulary shared by every layer of keel: strong ids for
// terms, log indices and servers, log entries and cluster configurations.
//
// Thread safety: these are plain values. Distinct objects may be used from
// different threads freely; one object is as safe as any standard container.
#pragma once

#include <atomic>
#include <compare>
#include <cstdint>
#include <cstring>
#include <functional>
#include <new>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace keel {

// A 64-bit number that only compares with its own kind, so that a term can
// never be passed where an index is expected (both are uint64_t underneath).
template <typename Tag>
struct StrongId {
  std::uint64_t value = 0;

  constexpr StrongId() = default;
  constexpr explicit StrongId(std::uint64_t v) : value(v) {}

  // clang-tidy 14 takes the literal 0 a defaulted <=> compares with for a
  // null pointer (fixed in later releases).
  // NOLINTNEXTLINE(modernize-use-nullptr)
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

// A Raft term (§5.1). Term 0 is "no term yet". Terms stay below 2^56
// (kMaxTerm): a log keeps an entry's type in the top byte of its term, and
// decoders refuse anything larger. At a million elections a second that is
// two thousand years.
using Term = StrongId<struct TermTag>;
// A log position. Index 0 is "before the first entry"; real entries start at 1.
using Index = StrongId<struct IndexTag>;
// A server's stable identity in the cluster. 0 means "nobody" (no vote, no leader).
using ServerId = StrongId<struct ServerIdTag>;

inline constexpr ServerId kNoServer{0};
inline constexpr Term kMaxTerm{(1ULL << 56) - 1};

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
  // One piece of a snapshot that Raft::restore() replicates: a run of them,
  // appended together by one leader, replaces the state machine's whole
  // state once the last one applies (docs/snapshots.md).
  kRestore = 4,
};

const char* to_string(EntryType type);

// The bytes of a log entry: immutable, and shared rather than copied between
// the log, the messages that carry the entry, the log store and the state
// machine. Copying a Payload adds a reference; the bytes live in one
// allocation, with an 8-byte header, until the last copy goes. Reads like a
// std::string_view (view(), data(), size(), comparisons); str() copies.
//
// Thread safety: copies may be made and dropped from any threads at once
// (the count is atomic); the bytes never change.
class Payload {
 public:
  Payload() noexcept = default;
  Payload(std::string_view bytes) { assign(bytes); }    // NOLINT(google-explicit-constructor)
  Payload(const std::string& bytes) { assign(bytes); }  // NOLINT(google-explicit-constructor)
  // NOLINTNEXTLINE(google-explicit-constructor)
  Payload(const char* bytes) { assign(std::string_view(bytes)); }
  Payload(const Payload& other) noexcept : buffer_(other.buffer_) { retain(); }
  Payload(Payload&& other) noexcept : buffer_(std::exchange(other.buffer_, nullptr)) {}
  Payload& operator=(Payload other) noexcept {
    std::swap(buffer_, other.buffer_);
    return *this;
  }
  ~Payload() { release(); }

  const char* data() const noexcept { return buffer_ ? bytes(buffer_) : ""; }
  std::size_t size() const noexcept { return buffer_ ? buffer_->size : 0; }
  bool empty() const noexcept { return size() == 0; }
  std::string_view view() const noexcept { return {data(), size()}; }
  // NOLINTNEXTLINE(google-explicit-constructor)
  operator std::string_view() const noexcept { return view(); }
  std::string str() const { return std::string(view()); }
  const char* begin() const noexcept { return data(); }
  const char* end() const noexcept { return data() + size(); }

  friend bool operator==(const Payload& a, const Payload& b) noexcept {
    return a.view() == b.view();
  }
  friend bool operator==(const Payload& a, std::string_view b) noexcept { return a.view() == b; }
  friend bool operator==(const Payload& a, const std::string& b) noexcept { return a.view() == b; }
  friend bool operator==(const Payload& a, const char* b) noexcept {
    return a.view() == std::string_view(b);
  }

 private:
  struct Buffer {
    std::atomic<std::uint32_t> references;
    std::uint32_t size;
  };
  static char* bytes(Buffer* buffer) noexcept { return reinterpret_cast<char*>(buffer + 1); }

  void assign(std::string_view bytes_in) {
    if (bytes_in.empty()) return;
    void* memory = ::operator new(sizeof(Buffer) + bytes_in.size());
    buffer_ = new (memory) Buffer{{1}, static_cast<std::uint32_t>(bytes_in.size())};
    std::memcpy(bytes(buffer_), bytes_in.data(), bytes_in.size());
  }
  void retain() const noexcept {
    if (buffer_) buffer_->references.fetch_add(1, std::memory_order_relaxed);
  }
  void release() noexcept {
    if (buffer_ && buffer_->references.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      buffer_->~Buffer();
      ::operator delete(buffer_);
    }
    buffer_ = nullptr;
  }

  Buffer* buffer_ = nullptr;
};

inline std::ostream& operator<<(std::ostream& out, const Payload& payload) {
  return out << payload.view();
}

struct LogEntry {
  Term term;
  Index index;
  EntryType type = EntryType::kCommand;
  Payload data;

  bool operator==(const LogEntry&) const = default;
};

// An entry as a log keeps it, its index implied by its position: 16 bytes
// (the term with the type in its top byte, and the shared payload) where a
// LogEntry takes 32. Requires entry.term <= kMaxTerm.
class StoredEntry {
 public:
  explicit StoredEntry(const LogEntry& entry)
      : term_and_type_(entry.term.value | (static_cast<std::uint64_t>(entry.type) << kTypeShift)),
        data_(entry.data) {}

  Term term() const { return Term{term_and_type_ & kMaxTerm.value}; }
  EntryType type() const { return static_cast<EntryType>(term_and_type_ >> kTypeShift); }
  const Payload& data() const { return data_; }
  std::uint64_t size_bytes() const { return data_.size(); }
  LogEntry at(Index index) const { return LogEntry{term(), index, type(), data_}; }

 private:
  static constexpr int kTypeShift = 56;
  std::uint64_t term_and_type_;
  Payload data_;
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
//
// During a change of more than one voter (joint consensus, thesis §4.3) a
// configuration is joint: `servers` is the configuration being entered
// (C_new) and `outgoing` holds the voters of the one being left (C_old);
// elections and commits then need a majority of each. Outside a change
// `outgoing` is empty.
struct Configuration {
  std::vector<Server> servers;
  std::vector<Server> outgoing;  // joint only: C_old's voters

  bool operator==(const Configuration&) const = default;

  bool joint() const { return !outgoing.empty(); }
  bool empty() const { return servers.empty() && outgoing.empty(); }
  // In either half.
  bool contains(ServerId id) const;
  // A voter of either half: it may campaign and is asked for votes.
  bool is_voter(ServerId id) const;
  // The voters of either half, sorted, each once.
  std::vector<ServerId> voters() const;
  std::size_t voter_count() const { return voters().size(); }
  // The voters of `servers` (C_new) and of `outgoing` (C_old), sorted.
  std::vector<ServerId> incoming_voters() const;
  std::vector<ServerId> outgoing_voters() const;
  // The server `id` (from `servers` first, then `outgoing`), or null.
  const Server* find(ServerId id) const;
  // Every server of either half, each once (`servers` first).
  std::vector<Server> members() const;
};

// One change a membership call asks for (Raft::change_membership).
struct ConfigurationChange {
  enum class Kind : std::uint8_t {
    kAddVoter,      // a new voter, or a learner promoted (the address may be empty then)
    kAddLearner,    // a new learner (an existing learner's address may change)
    kDemoteVoter,   // a voter becomes a learner
    kRemoveServer,  // a voter or learner leaves
  };
  Kind kind = Kind::kAddVoter;
  ServerId id;
  std::string address;

  bool operator==(const ConfigurationChange&) const = default;
};
const char* to_string(ConfigurationChange::Kind kind);

// The configurations a server knows, with the indices of the entries that
// hold them: the newest committed one, and the newest in its log (in force
// as soon as it is appended, thesis §4.1). Equal outside a change.
struct ConfigurationState {
  Configuration committed;
  Index committed_index;
  Configuration latest;
  Index latest_index;

  bool operator==(const ConfigurationState&) const = default;
};

}  // namespace keel

template <typename Tag>
struct std::hash<keel::StrongId<Tag>> {
  std::size_t operator()(keel::StrongId<Tag> id) const noexcept {
    return std::hash<std::uint64_t>{}(id.value);
  }
};
