// runtime/executor_support.h — what every keel::Executor implementation
// (keel/env.h) shares: the key that orders timers, the due time of a delay
// on the steady clock, and what happens when a task throws.
//
// Used by the thread Env, ManualEnv and the TCP transport's I/O-thread
// executors (transport/io_thread.h).
//
// Thread safety: pure functions and a value type.
#pragma once

#include <chrono>
#include <compare>
#include <cstdint>
#include <string>

#include "keel/env.h"

namespace keel::runtime {

// Orders a queue of timers by due time, then by posting order, so that
// timers due at the same time run in the order they were posted.
template <class Time>
struct TimerKey {
  Time due;
  std::uint64_t sequence;  // posting order breaks ties between equal due times
  // clang-tidy 14 takes the literal 0 a defaulted <=> compares with for a
  // null pointer (fixed in later releases).
  // NOLINTNEXTLINE(modernize-use-nullptr)
  auto operator<=>(const TimerKey&) const = default;
};

// `now + delay` on the steady clock, with a negative delay counting as zero
// and a huge one (a "never" of Duration::max()) saturating instead of
// overflowing.
std::chrono::steady_clock::time_point steady_due_time(std::chrono::steady_clock::time_point now,
                                                      Duration delay);

// Runs `task`. A task that throws is a bug in keel or in a user callback;
// carrying on would leave whatever it was updating half-done, so this
// prints "keel: task on <kind> '<executor_name>' threw: ..." to stderr and
// aborts the process.
void run_task_or_abort(const char* kind, const std::string& executor_name, Task& task);

}  // namespace keel::runtime
