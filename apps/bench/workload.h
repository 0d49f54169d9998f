// apps/bench/workload.h — the measurement: closed-loop clients on one
// server, and what they and this process measured.
//
// run() starts and joins its own client threads; call it from one thread.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "histogram.h"
#include "keel/raft.h"
#include "options.h"

namespace keel_bench {

struct Results {
  double ops_per_sec = 0;
  std::uint64_t operations = 0;
  std::uint64_t failures = 0;
  Histogram latency;
  // Of this process over the measured window (clients included).
  double cpu_us_per_op = 0;
  double context_switches_per_op = 0;
  double disk_bytes_per_op = 0;
  long peak_rss_kb = 0;
  // Writes only: the heap the servers in this process grew by, per entry
  // and server, measured once every server applied everything.
  double log_bytes_per_entry_per_server = 0;
};

// --clients closed-loop clients on `target`, each submitting one operation
// (--workload: an apply of --payload bytes waited for until applied on
// the leader, or a read at --read consistency) and waiting for its answer
// before the next. `servers` are the ones in this process (for the heap
// figure). `on_window(true)` is called as the measured window opens,
// `on_window(false)` as it closes.
Results run_clients(const Options& options, const std::vector<keel::Raft*>& servers,
                    keel::Raft& target, const std::function<void(bool)>& on_window);

// The results as one line of JSON (--json) or as text. `extra_json` is
// added to the object as is (", \"key\": value..."), `extra_text` after
// the text.
void print_results(const Options& options, const Results& results,
                   const std::string& extra_json = "", const std::string& extra_text = "");

}  // namespace keel_bench
