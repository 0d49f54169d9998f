// sim/trace.h — what happened in a simulated run: a hash over everything
// (for determinism checks) and the readable events (for failure reports).
//
// The hash is FNV-1a/64 over every delivered frame, every applied entry and
// every client and nemesis event, each with its virtual time: two runs with
// the same seed and build must end with the same hash. The readable lines
// are kept up to a bound (the oldest are dropped first, and counted) so a
// long run cannot exhaust memory.
//
// Thread safety: none; the simulator's one thread writes it.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>

#include "keel/env.h"
#include "sim/seed.h"

namespace keel::sim {

class Trace {
 public:
  explicit Trace(std::size_t max_lines) : max_lines_(max_lines) {}

  // Mixes data into the hash only.
  void mix(std::string_view bytes) { hash_ = fnv1a(bytes, hash_); }
  void mix(std::uint64_t value);
  // A readable line, stamped with virtual time `at`; hashed as well.
  void event(Duration at, std::string_view line);

  std::uint64_t hash() const { return hash_; }
  // The lines kept, oldest first, one per line.
  std::string text() const;
  std::uint64_t lines_dropped() const { return dropped_; }

 private:
  const std::size_t max_lines_;
  std::uint64_t hash_ = kFnvOffset;
  std::deque<std::string> lines_;
  std::uint64_t dropped_ = 0;
};

// "12.345678s": virtual time for traces and reports.
std::string format_time(Duration at);

}  // namespace keel::sim
