// apps/bench/cluster.h — the servers keel-bench measures: each opened with
// the stores --log asks for, an FSM that does nothing, bootstrapped; and
// the in-process cluster of --mode in-process and tcp-in-process.
//
// Uses keel's public API only. A Cluster is built and torn down by one
// thread; its servers are keel::Raft, safe from any thread.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "data_dir.h"
#include "keel/raft.h"
#include "keel/tcp_transport.h"
#include "options.h"

namespace keel_bench {

// keel's log lines at error level only, unless --verbose: the benchmark's
// output is its figures.
std::shared_ptr<keel::Logger> bench_logger(const Options& options);

// Opens one server of `configuration` on `transport`, with the stores
// --log asks for (under `dir` for wal), bootstrapped. nullptr, with the
// reason on stderr, on failure.
std::unique_ptr<keel::Raft> open_server(const Options& options, const keel::Server& server,
                                        const keel::Configuration& configuration,
                                        std::shared_ptr<keel::Transport> transport,
                                        const DataDir* dir, std::shared_ptr<keel::Env> env);

// keel's TCP transport for server `id` of a keel-bench cluster, listening
// on `listen_address`; nullptr, with the reason on stderr, on failure.
std::shared_ptr<keel::TcpTransport> tcp_transport_for(const Options& options, keel::ServerId id,
                                                      const std::string& listen_address);

// --mode in-process (the in-memory network) and tcp-in-process (keel's TCP
// transport on 127.0.0.1): every server in this process.
class Cluster {
 public:
  bool start(const Options& options, const DataDir* dir);
  // The ready leader (it leads and has applied its term's first entry), or
  // nullptr after `bound`.
  keel::Raft* ready_leader(std::chrono::seconds bound) const;
  // A server other than `leader` that knows `leader` leads (for follower
  // reads), or nullptr after `bound`.
  keel::Raft* follower_of(const keel::Raft& leader, std::chrono::seconds bound) const;
  std::vector<keel::Raft*> servers() const;

 private:
  std::shared_ptr<keel::Env> env_ = keel::make_thread_env();
  keel::InMemoryNetwork network_{env_};
  std::vector<std::unique_ptr<keel::Raft>> servers_;
};

}  // namespace keel_bench
