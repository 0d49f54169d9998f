// keel/snapshot_store.h — where snapshots of the state machine live: the
// interface the runtime saves, sends and loads them through, and a memory
// implementation for tests.
//
// A snapshot is written through a sink (create, write..., commit) and becomes
// visible, durable and complete all at once at commit; a crash before that
// leaves no trace of it. Every snapshot carries a checksum of its bytes, and
// open() verifies it before handing out a reader, so a damaged snapshot is
// never restored as if it were good (the reader checks again at its end).
// The store keeps every committed snapshot until remove() is called: which
// ones to keep is its user's decision (keel::Raft keeps the newest
// Config::snapshot_retain, and any that it is still sending or restoring).
// A reader opened before a remove() reads on to its end.
//
// Thread safety: a SnapshotStore may be used from any thread. A sink or a
// reader is used by one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "keel/status.h"
#include "keel/types.h"

namespace keel {

struct SnapshotMeta {
  std::string id;                // assigned by the store at create(); ignored when passed in
  Index index;                   // the last log entry the snapshot includes
  Term term;                     // that entry's term
  Configuration configuration;   // the latest configuration at `index`...
  Index configuration_index;     // ...and the index of the entry that held it
  std::uint64_t size_bytes = 0;  // set by the store at commit
  std::uint32_t crc32c = 0;      // of the bytes, set by the store at commit

  bool operator==(const SnapshotMeta&) const = default;
};

class SnapshotSink {
 public:
  // Without a commit the snapshot is abandoned (as by cancel()).
  virtual ~SnapshotSink() = default;
  virtual const std::string& id() const = 0;
  virtual Status write(std::string_view bytes) = 0;
  // Makes the snapshot durable and visible. Returns the metadata with size
  // and checksum filled in if and only if the snapshot is durable. An error
  // means the snapshot must not be relied on: it is not listed (unless even
  // taking it back failed, which the error says), though after a crash it
  // may come back, whole and valid.
  virtual Result<SnapshotMeta> commit() = 0;
  virtual void cancel() = 0;
};

class SnapshotReader {
 public:
  virtual ~SnapshotReader() = default;
  // Up to out.size() bytes; 0 at the end. The call that reaches the end
  // checks size and checksum again: Corruption if the bytes changed since
  // open(), and then everything read must be thrown away.
  virtual Result<std::size_t> read(std::span<char> out) = 0;
};

// A committed snapshot whose metadata cannot be read: it cannot be restored,
// and `status` says why. It stays (keel::Raft never removes it) for an
// operator to look at and remove().
struct DamagedSnapshot {
  std::string id;
  Status status;
};

struct SnapshotList {
  // Newest first (highest index, then term, then the most recently created).
  std::vector<SnapshotMeta> snapshots;
  std::vector<DamagedSnapshot> damaged;
};

class SnapshotStore {
 public:
  virtual ~SnapshotStore() = default;

  // Starts a snapshot with meta's index, term and configuration.
  virtual Result<std::unique_ptr<SnapshotSink>> create(const SnapshotMeta& meta) = 0;
  // Committed snapshots, and those whose metadata is damaged.
  virtual Result<SnapshotList> list() const = 0;

  struct Opened {
    SnapshotMeta meta;
    std::unique_ptr<SnapshotReader> reader;
  };
  // NotFound for an unknown id; Corruption if the bytes do not match the
  // checksum recorded at commit.
  virtual Result<Opened> open(const std::string& id) = 0;
  // Removes a committed snapshot (also a damaged one): once this returns
  // OK it is not listed, and a crash does not bring it back. NotFound for
  // an unknown id. Readers already open read on.
  virtual Status remove(const std::string& id) = 0;
};

// Snapshots in memory; "durable" means "in this object". Sinks and readers
// may outlive the store.
class MemorySnapshotStore final : public SnapshotStore {
 public:
  MemorySnapshotStore();
  ~MemorySnapshotStore() override;

  Result<std::unique_ptr<SnapshotSink>> create(const SnapshotMeta& meta) override;
  Result<SnapshotList> list() const override;
  Result<Opened> open(const std::string& id) override;
  Status remove(const std::string& id) override;

  // Flips the bits of `mask` in byte `offset` of a snapshot, to test readers.
  Status corrupt(const std::string& id, std::uint64_t offset, std::uint8_t mask);

  struct State;

 private:
  std::shared_ptr<State> state_;
};

// The id a store gives a snapshot: index, term and a creation sequence as
// fixed-width hex, so that ids sort oldest first.
std::string make_snapshot_id(Index index, Term term, std::uint64_t sequence);

}  // namespace keel
