// apps/bench/options.h — keel-bench's command line: what a run measures.
//
// Parsed once in main() and then read-only; safe to share between threads.
#pragma once

#include <cstddef>
#include <string>

namespace keel_bench {

struct Options {
  // What is run: a cluster (the default), `keel-bench floor`, or `keel-bench
  // node` (one server of a --mode processes run, started by keel-bench).
  bool floor = false;
  bool node = false;
  std::size_t node_id = 0;  // node: its id
  std::string addresses;    // node: every server's address, in id order

  std::string mode = "processes";  // or in-process, tcp-in-process
  std::string log = "memory";      // or wal
  std::string dir;                 // --log wal, and floor: where files go
  std::size_t samples = 500;       // floor: measurements of each kind
  std::size_t servers = 3;
  std::size_t clients = 1;
  std::size_t payload = 256;
  // The workload: "write" (apply, wait until applied on the leader) or
  // "read" (read(consistency), on the leader or a follower).
  std::string workload = "write";
  std::string consistency = "linearizable";  // read: or lease
  std::string on = "leader";                 // read: or follower
  double duration_s = 10;
  double warmup_s = 2;
  bool json = false;
  bool verbose = false;  // keel's log lines from info up, on stderr

  bool reads() const { return workload == "read"; }
};

// Parses argv; on a bad or unknown flag prints the usage and exits 2.
Options parse_options(int argc, char** argv);

}  // namespace keel_bench
