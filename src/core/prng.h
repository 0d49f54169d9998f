// core/prng.h — the core's only source of randomness.
//
// The core must replay bit for bit from a seed (the simulator depends on it),
// so it never reads a hardware random source or a global generator. SplitMix64 is
// small, fast and good enough for picking election timeouts.
//
// Thread safety: a value; one generator per node.
#pragma once

#include <cstdint>

namespace keel::core {

class Prng {
 public:
  explicit Prng(std::uint64_t seed) : state_(seed) {}

  std::uint64_t next() {
    state_ += 0x9e3779b97f4a7c15ULL;
    std::uint64_t z = state_;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  // A number in [low, high); requires low < high.
  std::uint64_t uniform(std::uint64_t low, std::uint64_t high) {
    return low + next() % (high - low);
  }

 private:
  std::uint64_t state_;
};

}  // namespace keel::core
