// sim/node_storage.h — where a simulated server keeps its log and hard state,
// and what a crash does to them.
//
// The simulator asks a NodeStorage for the stores of each incarnation of a
// server (open()) and tells it when the machine crashes (crash()). The
// storage decides what survives: the memory storage here keeps everything
// its stores were told (an append or set that returned), which is exactly
// what keel's stores promise once a call returns. Writes the runtime had not
// yet handed to the stores are lost by the crash anyway: the simulator kills
// the server's executors, log writer included, with their queued work.
//
// make_disk_storage is keel's durable stores (WalLogStore, FileStableStore)
// on a simulated disk (storage::SimFileSystem: durable versus unsynced bytes):
// crash() keeps what was synced plus a random part of the rest, and
// open() recovers the stores from what is left, as a restarted process
// would. It can also fail a write or an fsync (inject_io_error): the server
// stops (fail-stop) and comes back only through a crash and a restart. The stores sync before they
// return, so what a crash can lose is the same as with memory storage; what changes is that every
// write, truncation and recovery goes through the write-ahead log's real code.
//
// Thread safety: none; the simulator's one thread calls it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "keel/log_store.h"
#include "keel/snapshot_store.h"
#include "keel/status.h"
#include "keel/types.h"

namespace keel::sim {

struct NodeStores {
  std::shared_ptr<LogStore> log;
  std::shared_ptr<StableStore> stable;
  std::shared_ptr<SnapshotStore> snapshots;
};

class NodeStorage {
 public:
  virtual ~NodeStorage() = default;
  // The stores of a new incarnation: at the first start (empty; the
  // simulator bootstraps them) and after each crash(). The stores of an
  // earlier incarnation are never used again once crash() is called.
  virtual Result<NodeStores> open() = 0;
  // The machine lost power: keep only what was durable.
  virtual void crash() = 0;
  // Arms one I/O error (a failed write or fsync of the log or the hard
  // state, chosen by `draw`) for the current incarnation; the next crash()
  // disarms it if it has not fired. False if this storage cannot fail.
  virtual bool inject_io_error(std::uint64_t /*draw*/) { return false; }
};

// Makes the storage of server `id`; `seed` feeds whatever it randomises
// (which writes a crash tears, say), so a run replays from its seed.
using NodeStorageFactory =
    std::function<std::unique_ptr<NodeStorage>(ServerId id, std::uint64_t seed)>;

// MemoryLogStore, MemoryStableStore and MemorySnapshotStore that survive
// crashes whole.
std::unique_ptr<NodeStorage> make_memory_storage(ServerId id, std::uint64_t seed);
// WalLogStore, FileStableStore and FileSnapshotStore on a SimFileSystem of
// their own (small
// segments, so that a run creates and drops several). How unkind the disk
// is (storage::SimFsFidelity: crashes that keep unsynced writes and
// directory changes out of order, failed fsyncs that drop writes, failed
// writes that write a prefix) is drawn from the seed, each half the time.
std::unique_ptr<NodeStorage> make_disk_storage(ServerId id, std::uint64_t seed);

}  // namespace keel::sim
