// keel/fsm.h — the replicated state machine: your code, fed by keel.
//
// keel calls apply (or apply_batch) with every committed command, in log
// order, exactly once per start of the Raft. Only kCommand entries reach the
// FSM; keel's own entries (term-start, barrier, configuration) are handled
// internally.
//
// Snapshots keep the log bounded. keel asks the FSM for one (snapshot()) on
// the applier's thread, between two applies, when the log since the last
// snapshot passes Config::snapshot_threshold_entries or _bytes, or when
// Raft::snapshot() is called; the returned FsmSnapshot is a frozen view of
// the state at that point, written out later by persist() on a thread of
// its own while apply() goes on. Then the log before it is dropped. A
// server starts from its newest snapshot (restore(), on the opening thread,
// before anything is applied) and applies only the log after it; a
// follower too far behind to be sent log entries is sent the leader's
// snapshot, and its FSM restore()s it on the applier's thread. A freshly
// constructed FSM is empty: keel restores it or applies from index 1.
//
// Thread safety: keel calls these methods from one internal thread (the
// applier), never concurrently. They may block (slow disk, big computation);
// the Raft keeps electing and replicating meanwhile, but futures and reads
// wait for the applier. Reading the FSM from your own threads is your
// concern: synchronise it with apply(). An FSM that declares itself quick
// (applies_quickly) is applied on the raft loop's thread instead, which
// saves a thread hop per commit but holds up heartbeats while it runs.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "keel/snapshot_store.h"
#include "keel/status.h"
#include "keel/types.h"

namespace keel {

// Where FsmSnapshot::persist writes the state. Used by one thread.
class SnapshotWriter {
 public:
  virtual ~SnapshotWriter() = default;
  // Appends bytes to the snapshot. An error (the disk failed, the server is
  // shutting down and gave the snapshot up) means: stop and return it.
  virtual Status write(std::string_view bytes) = 0;
};

// A point-in-time view of the FSM's state, taken by Fsm::snapshot().
class FsmSnapshot {
 public:
  virtual ~FsmSnapshot() = default;
  // Writes the whole state. Runs on a keel thread of its own, concurrently
  // with Fsm::apply: it must read the state as of the moment snapshot() was
  // called, not the live one (copy-on-write, an MVCC read transaction, a
  // copy taken in snapshot(), ...). Return an error to abandon the snapshot
  // (keel keeps the log and tries again later); an error from the writer
  // is best returned as it is.
  virtual Status persist(SnapshotWriter& out) = 0;
  // Called once persist() returned, whatever it returned, to free what the
  // view holds (a read transaction, the pinned state). Never concurrently
  // with persist().
  virtual void release() {}
};

// An FsmSnapshot of bytes the FSM serialised in snapshot(): the simplest
// kind, for a state small enough to copy on the apply thread. persist()
// writes them in 64 KiB pieces.
class CopiedSnapshot final : public FsmSnapshot {
 public:
  explicit CopiedSnapshot(std::string bytes) : bytes_(std::move(bytes)) {}
  Status persist(SnapshotWriter& out) override;
  void release() override { bytes_ = std::string(); }

 private:
  std::string bytes_;
};

// A snapshot's bytes held in memory, read back in order (a backup to hand
// to Raft::restore, a state for Fsm::restore). Used by one thread.
class StringSnapshotReader final : public SnapshotReader {
 public:
  explicit StringSnapshotReader(std::string bytes) : bytes_(std::move(bytes)) {}
  Result<std::size_t> read(std::span<char> out) override;
  const std::string& bytes() const { return bytes_; }

 private:
  std::string bytes_;
  std::size_t offset_ = 0;
};

// Reads a snapshot to its end (for restore() of a small state). InvalidArgument
// if it holds more than max_bytes; the reader's errors as they are.
Result<std::string> read_whole_snapshot(SnapshotReader& reader, std::uint64_t max_bytes);

class Fsm {
 public:
  virtual ~Fsm() = default;
  // Applies one committed command; the returned bytes are the response of
  // the apply() future on the server that proposed it.
  virtual std::string apply(const LogEntry& entry) = 0;
  // True if apply (apply_batch) never blocks and takes microseconds: with
  // Config::thread_policy kShareWhenSafe the runtime then applies on the
  // raft loop's thread. Leave false if in doubt: a slow apply on the loop
  // delays heartbeats and can cost the leader its leadership.
  virtual bool applies_quickly() const { return false; }

  // A view of the state as of the last apply, cheap to take: the apply
  // thread waits for it, persist() does the slow part. An error skips this
  // snapshot (keel keeps the log and asks again on the next interval).
  virtual Result<std::unique_ptr<FsmSnapshot>> snapshot() = 0;
  // Replaces the whole state with the snapshot's, read to its end from
  // `reader` (which fails with Corruption if the bytes were damaged: then
  // return that error, and keel stops rather than run on a state it cannot
  // trust). `meta` says which entry the snapshot ends at. Called on an FSM
  // that may hold any earlier state.
  virtual Status restore(const SnapshotMeta& meta, SnapshotReader& reader) = 0;
};

// An FSM that applies many commands at once (one transaction, one fsync of
// its own storage, ...). keel calls apply_batch instead of apply when the
// FSM derives from this class.
class BatchingFsm : public Fsm {
 public:
  // One response per entry, in order.
  virtual std::vector<std::string> apply_batch(std::span<const LogEntry> entries) = 0;
  std::string apply(const LogEntry& entry) override {
    std::vector<std::string> responses = apply_batch(std::span<const LogEntry>(&entry, 1));
    return responses.empty() ? std::string() : std::move(responses.front());
  }
};

}  // namespace keel
