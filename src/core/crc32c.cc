// CRC-32C, portable and SSE4.2 (see crc32c.h).
#include "core/crc32c.h"

#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace keel::core {

namespace {

// The reflected Castagnoli polynomial (0x1EDC6F41 bit-reversed).
constexpr std::uint32_t kPolynomial = 0x82F63B78u;

// Slicing-by-8 tables, computed at compile time: table[0] is the classic
// byte-at-a-time table; table[k][b] is the CRC of byte b followed by k zero
// bytes, which lets the loop consume 8 bytes per step.
using Tables = std::array<std::array<std::uint32_t, 256>, 8>;

constexpr Tables make_tables() {
  Tables tables{};
  for (std::uint32_t byte = 0; byte < 256; ++byte) {
    std::uint32_t crc = byte;
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ ((crc & 1u) ? kPolynomial : 0u);
    tables[0][byte] = crc;
  }
  for (std::size_t k = 1; k < 8; ++k) {
    for (std::size_t byte = 0; byte < 256; ++byte) {
      const std::uint32_t previous = tables[k - 1][byte];
      tables[k][byte] = (previous >> 8) ^ tables[0][previous & 0xFFu];
    }
  }
  return tables;
}

constexpr Tables kTables = make_tables();

std::uint32_t load_le32(const unsigned char* p) {
  return static_cast<std::uint32_t>(p[0]) | (static_cast<std::uint32_t>(p[1]) << 8) |
         (static_cast<std::uint32_t>(p[2]) << 16) | (static_cast<std::uint32_t>(p[3]) << 24);
}

#if defined(__x86_64__)
// Three cycles of latency per crc32 instruction and eight bytes each: one
// stream runs at several GB/s, far above what a disk delivers, so the simple
// single-stream loop is enough.
__attribute__((target("sse4.2"))) std::uint32_t hardware_extend(std::uint32_t crc,
                                                                const unsigned char* p,
                                                                std::size_t size) {
  std::uint64_t state = ~crc;
  while (size >= 8) {
    std::uint64_t word;
    std::memcpy(&word, p, 8);  // unaligned-safe; x86 is little-endian
    state = _mm_crc32_u64(state, word);
    p += 8;
    size -= 8;
  }
  auto state32 = static_cast<std::uint32_t>(state);
  while (size > 0) {
    state32 = _mm_crc32_u8(state32, *p);
    ++p;
    --size;
  }
  return ~state32;
}

bool detect_hardware() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("sse4.2") != 0;
}
#endif

}  // namespace

std::uint32_t crc32c_extend_portable(std::uint32_t crc, const void* data, std::size_t size_bytes) {
  const auto* p = static_cast<const unsigned char*>(data);
  std::uint32_t state = ~crc;
  while (size_bytes >= 8) {
    const std::uint32_t low = load_le32(p) ^ state;
    const std::uint32_t high = load_le32(p + 4);
    state = kTables[7][low & 0xFFu] ^ kTables[6][(low >> 8) & 0xFFu] ^
            kTables[5][(low >> 16) & 0xFFu] ^ kTables[4][low >> 24] ^ kTables[3][high & 0xFFu] ^
            kTables[2][(high >> 8) & 0xFFu] ^ kTables[1][(high >> 16) & 0xFFu] ^
            kTables[0][high >> 24];
    p += 8;
    size_bytes -= 8;
  }
  while (size_bytes > 0) {
    state = (state >> 8) ^ kTables[0][(state ^ *p) & 0xFFu];
    ++p;
    --size_bytes;
  }
  return ~state;
}

bool crc32c_hardware_available() {
#if defined(__x86_64__)
  // Computed once; immutable afterwards (the CPU does not change under us).
  static const bool kAvailable = detect_hardware();
  return kAvailable;
#else
  return false;
#endif
}

std::uint32_t crc32c_extend_hardware(std::uint32_t crc, const void* data, std::size_t size_bytes) {
#if defined(__x86_64__)
  if (crc32c_hardware_available()) {
    return hardware_extend(crc, static_cast<const unsigned char*>(data), size_bytes);
  }
#endif
  std::fprintf(stderr, "keel: crc32c_extend_hardware called on a CPU without SSE4.2\n");
  std::abort();
}

std::uint32_t crc32c_extend(std::uint32_t crc, const void* data, std::size_t size_bytes) {
  if (crc32c_hardware_available()) return crc32c_extend_hardware(crc, data, size_bytes);
  return crc32c_extend_portable(crc, data, size_bytes);
}

}  // namespace keel::core
