// apps/bench/processes.h — --mode processes: every server a process of its
// own (`keel-bench node`), over keel's TCP transport on 127.0.0.1, as peers
// are measured. The clients run in the process of the server they use (the
// leader, or for --on follower the first follower by id); keel-bench reads
// every process's CPU, peak RSS and disk writes from /proc, and stops every
// process it started, also on failure.
#pragma once

#include "options.h"

namespace keel_bench {

// keel-bench itself: starts the nodes, collects and prints the figures.
// Exit status 0 when operations completed, 1 otherwise, 2 for a refused
// --dir.
int run_processes(const Options& options);

// `keel-bench node`: one server; the one the clients use runs them and
// prints "window-start", "window-end" and its results (one JSON line) on
// stdout. Serves until SIGTERM or SIGINT.
int run_node(Options options);

}  // namespace keel_bench
