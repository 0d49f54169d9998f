// apps/bench/main.cc — keel-bench: the cluster benchmark (BENCHMARKS.md,
// "Cluster").
//
//   keel-bench --clients 128 --json                  # 3 processes, memory logs
//   keel-bench --log wal --clients 1                 # durable
//   keel-bench --workload read --read lease          # lease reads on the leader
//   keel-bench --mode in-process --clients 32        # one process, in-memory network
//   keel-bench floor                                 # fdatasync + loopback round trip
//
// Modes, all with N servers (default 3), the thread Env and an FSM that
// does nothing (it declares itself cheap): processes (processes.h),
// in-process and tcp-in-process (cluster.h). The clients and their figures
// are in workload.h; the floor in floor.h. Uses keel's public API only.
#include <iostream>
#include <optional>

#include "cluster.h"
#include "data_dir.h"
#include "floor.h"
#include "options.h"
#include "processes.h"
#include "workload.h"

namespace keel_bench {
namespace {

constexpr std::chrono::seconds kReadyBound{30};

int run_in_process(const Options& options) {
  std::optional<DataDir> dir = options.log == "wal" ? DataDir::make(options.dir) : std::nullopt;
  if (options.log == "wal" && !dir) return 2;
  Cluster cluster;
  if (!cluster.start(options, dir ? &*dir : nullptr)) return 1;
  keel::Raft* leader = cluster.ready_leader(kReadyBound);
  if (leader == nullptr) {
    std::cerr << "keel-bench: no ready leader within " << kReadyBound.count() << " s\n";
    return 1;
  }
  keel::Raft* target = leader;
  if (options.on == "follower") {
    target = cluster.follower_of(*leader, kReadyBound);
    if (target == nullptr) {
      std::cerr << "keel-bench: no follower knows the leader within " << kReadyBound.count()
                << " s\n";
      return 1;
    }
  }
  const Results results = run_clients(options, cluster.servers(), *target, [](bool) {});
  print_results(options, results);
  for (keel::Raft* server : cluster.servers()) server->shutdown();
  return results.operations > 0 ? 0 : 1;
}

}  // namespace
}  // namespace keel_bench

int main(int argc, char** argv) {
  const keel_bench::Options options = keel_bench::parse_options(argc, argv);
  if (options.floor) return keel_bench::run_floor(options);
  if (options.node) return keel_bench::run_node(options);
  if (options.mode == "processes") return keel_bench::run_processes(options);
  return keel_bench::run_in_process(options);
}
