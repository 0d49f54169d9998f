// apps/kv/server.h — `keel-kv serve`: one server of a replicated key-value
// store. It owns a keel::Raft (durable stores under --data-dir, the TCP
// transport), the key-value state machine and an HTTP API (docs/kv.md).
//
//   auto server = keel::kv::KvServer::start(options);  // startup errors: exit 2
//   return (*server)->run_until_signalled();           // SIGTERM/SIGINT: exit 0
//
// Thread safety: start() and run_until_signalled() from one thread (main).
// SIGTERM and SIGINT must be blocked in every thread before start()
// (block_stop_signals()), so that run_until_signalled() receives them.
#pragma once

#include <memory>

#include "keel/status.h"
#include "kv/serve_options.h"

namespace keel::kv {

// Blocks SIGTERM and SIGINT in the calling thread (and the threads it starts
// from then on), and ignores SIGPIPE.
void block_stop_signals();

class KvServer {
 public:
  // Checks the options, the data directory (created if missing; refused if
  // it belongs to another cluster or another server id), opens the stores,
  // binds both ports, bootstraps or joins, and starts serving. An error
  // names what stopped it, in one line.
  static Result<std::unique_ptr<KvServer>> start(const ServeOptions& options);
  ~KvServer();

  // Serves until SIGTERM or SIGINT (then stops accepting, fails or finishes
  // what is in flight, shuts the Raft down and returns 0) or until the Raft
  // stops itself (removed from the cluster: 0; a storage failure: 1).
  int run_until_signalled();

  class Impl;

 private:
  explicit KvServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace keel::kv
