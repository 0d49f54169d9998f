// Helpers shared by the storage tests: entries with recognisable contents, a
// temporary directory on the real disk, and shorthand for sim-FS WALs.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "keel/file_stores.h"
#include "keel/log_store.h"
#include "storage/file_stores_fs.h"
#include "storage/sim_fs.h"

namespace keel::storage::testing {

// Entry `index` of `term`, whose data names both and has `size` bytes.
inline LogEntry entry(std::uint64_t index, std::uint64_t term = 1, std::size_t size = 16) {
  std::string data = "e" + std::to_string(index) + "t" + std::to_string(term) + ":";
  while (data.size() < size) data.push_back(static_cast<char>('a' + (data.size() + index) % 26));
  data.resize(size);
  return LogEntry{Term(term), Index(index), EntryType::kCommand, std::move(data)};
}

inline std::vector<LogEntry> entries(std::uint64_t first, std::uint64_t last,
                                     std::uint64_t term = 1, std::size_t size = 16) {
  std::vector<LogEntry> out;
  for (std::uint64_t i = first; i <= last; ++i) out.push_back(entry(i, term, size));
  return out;
}

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base != nullptr ? base : "/tmp") + "/keel-storage-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) std::abort();
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Small segments, so that tests see several.
inline WalOptions small_wal_options(std::uint64_t segment_size_bytes = 64 << 10) {
  WalOptions options;
  options.segment_size_bytes = segment_size_bytes;
  return options;
}

inline std::shared_ptr<WalLogStore> open_wal(const std::string& dir, WalOptions options,
                                             std::shared_ptr<FileSystem> fs) {
  Result<std::shared_ptr<WalLogStore>> wal =
      open_wal_log_store(dir, std::move(options), std::move(fs));
  EXPECT_TRUE(wal.is_ok()) << wal.status();
  return wal.is_ok() ? std::move(wal).value() : nullptr;
}

inline std::vector<LogEntry> read_all(const LogStore& log) {
  if (log.last_index() < log.first_index() || log.last_index().is_zero()) return {};
  Result<std::vector<LogEntry>> read = log.read(log.first_index(), log.last_index());
  EXPECT_TRUE(read.is_ok()) << read.status();
  return read.is_ok() ? std::move(read).value() : std::vector<LogEntry>{};
}

}  // namespace keel::storage::testing
