// sim/kv_fsm.h — the key-value state machine the simulator's workload runs,
// and the text commands it applies.
//
// Commands are plain strings (keys and values contain no spaces):
//   "put KEY VALUE"            -> "ok"
//   "cas KEY EXPECTED VALUE"   -> "swapped" if KEY held EXPECTED, else "unchanged"
//                                 (an absent key never swaps)
//   "del KEY"                  -> "ok"
// Anything else is answered "error" and changes nothing. Reads are not
// commands: a client waits for Raft::read() and then calls get() on the
// server's KvFsm, on the simulator's one thread.
//
// The semantics match the register model of sim/linearizability.h.
// Snapshots copy the map (encode_state: each key and value as
// "<length>:<bytes>").
//
// Thread safety: none. In the simulator everything runs on one thread; the
// applier mutates it only inside its own tasks.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "keel/fsm.h"

namespace keel::sim {

class KvFsm final : public Fsm {
 public:
  std::string apply(const LogEntry& entry) override;
  Result<std::unique_ptr<FsmSnapshot>> snapshot() override;
  Status restore(const SnapshotMeta& meta, SnapshotReader& reader) override;

  std::optional<std::string> get(const std::string& key) const;
  const std::map<std::string, std::string>& data() const { return data_; }

  static std::string put_command(const std::string& key, const std::string& value);
  static std::string cas_command(const std::string& key, const std::string& expected,
                                 const std::string& value);
  static std::string delete_command(const std::string& key);
  static std::string encode_state(const std::map<std::string, std::string>& data);
  static Result<std::map<std::string, std::string>> decode_state(std::string_view bytes);

 private:
  std::map<std::string, std::string> data_;
};

}  // namespace keel::sim
