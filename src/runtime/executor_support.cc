#include "runtime/executor_support.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>

namespace keel::runtime {

std::chrono::steady_clock::time_point steady_due_time(std::chrono::steady_clock::time_point now,
                                                      Duration delay) {
  const Duration headroom = std::chrono::steady_clock::time_point::max() - now;
  return now + std::clamp(delay, Duration::zero(), headroom);
}

void run_task_or_abort(const char* kind, const std::string& executor_name, Task& task) {
  try {
    task();
  } catch (const std::exception& error) {
    std::fprintf(stderr, "keel: task on %s '%s' threw: %s\n", kind, executor_name.c_str(),
                 error.what());
    std::abort();
  } catch (...) {
    std::fprintf(stderr, "keel: task on %s '%s' threw a non-std::exception\n", kind,
                 executor_name.c_str());
    std::abort();
  }
}

}  // namespace keel::runtime
