#include "sim/trace.h"

#include <cinttypes>
#include <cstdio>

namespace keel::sim {

void Trace::mix(std::uint64_t value) {
  for (int i = 0; i < 8; ++i) {
    hash_ ^= (value >> (8 * i)) & 0xff;
    hash_ *= kFnvPrime;
  }
}

void Trace::event(Duration at, std::string_view line) {
  mix(static_cast<std::uint64_t>(at.count()));
  mix(line);
  if (max_lines_ == 0) return;
  if (lines_.size() >= max_lines_) {
    lines_.pop_front();
    ++dropped_;
  }
  std::string stamped = format_time(at);
  stamped += ' ';
  stamped += line;
  lines_.push_back(std::move(stamped));
}

std::string Trace::text() const {
  std::string out;
  if (dropped_ > 0) out += "# (" + std::to_string(dropped_) + " earlier lines dropped)\n";
  for (const std::string& line : lines_) {
    out += line;
    out += '\n';
  }
  return out;
}

std::string format_time(Duration at) {
  const auto ns = static_cast<std::int64_t>(at.count());
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%" PRId64 ".%06" PRId64 "s", ns / 1'000'000'000,
                (ns % 1'000'000'000) / 1000);
  return buffer;
}

}  // namespace keel::sim
