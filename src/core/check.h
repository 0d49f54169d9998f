// core/check.h — assertions that stay on in every build.
//
// A broken invariant means the node's state can no longer be trusted; going
// on would risk acknowledging or applying the wrong data. So KEEL_CHECK aborts
// with the name of the invariant, the expression and the location, in release
// builds too. Use it only for conditions that are cheap to evaluate.
#pragma once

namespace keel::core {

[[noreturn]] void invariant_failed(const char* invariant, const char* expression, const char* file,
                                   int line);

}  // namespace keel::core

#define KEEL_CHECK(invariant, condition)                                           \
  do {                                                                             \
    if (!(condition)) {                                                            \
      ::keel::core::invariant_failed((invariant), #condition, __FILE__, __LINE__); \
    }                                                                              \
  } while (false)
