// StableStore's typed helpers (keel/log_store.h): a uint64 is stored as
// exactly 8 little-endian bytes, so that a value written by one build reads
// back the same on any other, whatever its byte order.
#include <string>

#include "core/byte_io.h"
#include "keel/log_store.h"

namespace keel {

Status StableStore::set_uint64(const std::string& key, std::uint64_t value) {
  core::ByteWriter writer;
  writer.fixed64(value);
  return set(key, writer.take());
}

// A value of any other size than 8 bytes was not written by set_uint64 (or
// was damaged): Corruption, never a guess at what it meant.
Result<std::uint64_t> StableStore::get_uint64(const std::string& key) const {
  Result<std::string> bytes = get(key);
  if (!bytes.is_ok()) return bytes.status();
  if (bytes->size() != 8) {
    return Status::corruption("stable store: key '" + key + "' holds " +
                              std::to_string(bytes->size()) + " bytes, not a uint64's 8");
  }
  core::ByteReader reader(*bytes, "stable store uint64");
  const std::uint64_t value = reader.fixed64("value");
  return value;
}

}  // namespace keel
