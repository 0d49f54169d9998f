// keel/fsm.h — the replicated state machine: your code, fed by keel.
//
// keel calls apply (or apply_batch) with every committed command, in log
// order, exactly once per start of the Raft (after a restart, the log is
// applied again from the beginning: the FSM starts empty). Only kCommand
// entries reach the FSM; keel's own entries (term-start, barrier,
// configuration) are handled internally.
//
// Thread safety: keel calls these methods from one internal thread (the
// applier), never concurrently. They may block (slow disk, big computation);
// the Raft keeps electing and replicating meanwhile, but futures and reads
// wait for the applier. Reading the FSM from your own threads is your
// concern: synchronise it with apply(). An FSM that declares itself quick
// (applies_quickly) is applied on the raft loop's thread instead, which
// saves a thread hop per commit but holds up heartbeats while it runs.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "keel/types.h"

namespace keel {

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
