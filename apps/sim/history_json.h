// apps/sim/history_json.h — reads a client history written as JSON lines, the
// format keel-kv's real-process chaos tests record (docs/kv.md, "History
// format"), into a sim::History that check_linearizable (sim/linearizability.h)
// judges. `keel-sim check-history` is its command-line front end.
//
// One JSON object per line, one operation per object:
//
//   {"client":1,"op":"put","key":"k","value":"c1-1","outcome":"ok","call":100,"return":250}
//   {"client":2,"op":"get","key":"k","found":true,"value":"c1-1","outcome":"ok",
//    "call":300,"return":410}
//   {"client":3,"op":"cas","key":"k","expected":"c1-1","value":"c3-1","outcome":"unknown",
//    "call":320,"return":900}
//
// (each object on one line in the file; the last two are wrapped here).
//
// Blank lines and lines whose first non-blank character is '#' are skipped.
// Fields this reader does not know are ignored, so that writers may add
// fields; fields it knows must have the documented type wherever they appear.
// Times are nanoseconds on one monotonic clock; their origin does not matter.
//
// Thread safety: pure functions.
#pragma once

#include <string_view>

#include "keel/status.h"
#include "sim/history.h"

namespace keel::sim {

// Parses a whole history. The operations keep the order of their lines. On
// the first line that is not a valid operation, returns InvalidArgument with
// the message "SOURCE:LINE: what is wrong", LINE counting from 1 and the
// message naming the offending field, e.g.
//   chaos.jsonl:17: "return" (90) is before "call" (100)
// `source_name` names the input in those messages (a file name, "<stdin>").
Result<History> parse_history_json_lines(std::string_view text,
                                         std::string_view source_name = "history");

}  // namespace keel::sim
