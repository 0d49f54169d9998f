// CopiedSnapshot, StringSnapshotReader and read_whole_snapshot (keel/fsm.h).
#include <algorithm>
#include <string>

#include "keel/fsm.h"

namespace keel {

Status CopiedSnapshot::persist(SnapshotWriter& out) {
  constexpr std::size_t kPiece = std::size_t{64} * 1024;
  for (std::size_t offset = 0; offset < bytes_.size(); offset += kPiece) {
    const std::size_t size = std::min(kPiece, bytes_.size() - offset);
    Status status = out.write(std::string_view(bytes_).substr(offset, size));
    if (!status.is_ok()) return status;
  }
  return Status::ok();
}

Result<std::size_t> StringSnapshotReader::read(std::span<char> out) {
  const std::size_t n = std::min(out.size(), bytes_.size() - offset_);
  std::copy_n(bytes_.data() + offset_, n, out.data());
  offset_ += n;
  return n;
}

Result<std::string> read_whole_snapshot(SnapshotReader& reader, std::uint64_t max_bytes) {
  std::string out;
  char buffer[64 * 1024];
  for (;;) {
    Result<std::size_t> got = reader.read(std::span<char>(buffer, sizeof buffer));
    if (!got.is_ok()) return got.status();
    if (*got == 0) return out;
    if (out.size() + *got > max_bytes) {
      return Status::invalid_argument("snapshot larger than " + std::to_string(max_bytes) +
                                      " bytes");
    }
    out.append(buffer, *got);
  }
}

}  // namespace keel
