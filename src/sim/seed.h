// sim/seed.h — one 64-bit seed, many independent random streams.
//
// Everything random in a simulation (the scheduler, the network, each
// server, each client, the nemesis, the swarm's choice of faults) draws from
// its own stream, derived from the run's seed and the stream's name. Adding
// a draw to one stream then leaves every other stream as it was, and a run
// replays bit for bit from its seed.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string_view>

namespace keel::sim {

// SplitMix64's finaliser: a good 64-bit mix.
constexpr std::uint64_t mix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// FNV-1a, 64 bits.
inline constexpr std::uint64_t kFnvOffset = 0xcbf29ce484222325ULL;
inline constexpr std::uint64_t kFnvPrime = 0x100000001b3ULL;
constexpr std::uint64_t fnv1a(std::string_view bytes, std::uint64_t hash = kFnvOffset) {
  for (char c : bytes) {
    hash ^= static_cast<unsigned char>(c);
    hash *= kFnvPrime;
  }
  return hash;
}

// The seed of stream `name` (number `index` of that name) of run `seed`.
constexpr std::uint64_t derive_seed(std::uint64_t seed, std::string_view name,
                                    std::uint64_t index = 0) {
  return mix64(mix64(seed ^ fnv1a(name)) + index);
}

}  // namespace keel::sim
