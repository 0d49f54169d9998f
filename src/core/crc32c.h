// core/crc32c.h — CRC-32C (Castagnoli), the checksum of every record,
// stable-store file and snapshot keel writes to disk, and of every snapshot
// chunk it sends (a pure function: it lives in the core so that every module
// can use it).
//
// CRC-32C rather than CRC-32: x86-64 computes it in hardware (SSE4.2's crc32
// instruction), so checksumming a whole log on recovery costs little, and it
// detects all burst errors up to 32 bits, which is what a torn sector or a
// flipped bit looks like.
//
// Two implementations give identical results: a hardware one, used when the
// CPU has SSE4.2 (checked once at run time, so one binary runs anywhere), and
// a portable table-driven one. crc32c_extend() picks between them.
//
// Thread safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace keel::core {

// The CRC-32C of `data` appended to bytes whose CRC-32C was `crc`:
// crc32c_extend(crc32c(a), b) == crc32c(a + b). Start from 0.
std::uint32_t crc32c_extend(std::uint32_t crc, const void* data, std::size_t size_bytes);

inline std::uint32_t crc32c(std::string_view data) {
  return crc32c_extend(0, data.data(), data.size());
}

// The two implementations, exposed so that tests can check they agree.
std::uint32_t crc32c_extend_portable(std::uint32_t crc, const void* data, std::size_t size_bytes);
// Only when crc32c_hardware_available(); otherwise it aborts.
std::uint32_t crc32c_extend_hardware(std::uint32_t crc, const void* data, std::size_t size_bytes);
bool crc32c_hardware_available();

}  // namespace keel::core
