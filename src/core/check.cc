#include "core/check.h"

#include <cstdio>
#include <cstdlib>

namespace keel::core {

void invariant_failed(const char* invariant, const char* expression, const char* file, int line) {
  std::fprintf(stderr, "keel: invariant '%s' broken: %s (%s:%d)\n", invariant, expression, file,
               line);
  std::fflush(stderr);
  std::abort();
}

}  // namespace keel::core
