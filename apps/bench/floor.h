// apps/bench/floor.h — `keel-bench floor`: this machine's floor for one
// durable replicated write, measured in the same run as the figures it
// bounds: one fdatasync of a 4 KiB append, one loopback TCP round trip,
// and their sum.
#pragma once

#include "options.h"

namespace keel_bench {

// Measures and prints (text or --json). Exit status: 0, 1 when a
// measurement failed, 2 when --dir is refused.
int run_floor(const Options& options);

}  // namespace keel_bench
