// apps/bench/data_dir.h — where keel-bench writes: a folder given with
// --dir, which must be empty or absent (a used one may hold a cluster),
// or a fresh temporary folder removed when the run ends.
//
// Not thread-safe; owned by main() for the run.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace keel_bench {

class DataDir {
 public:
  // `requested` empty: a new temporary folder. Otherwise it must be empty
  // or absent (it is made). nullopt, with the reason on stderr, otherwise.
  static std::optional<DataDir> make(const std::string& requested);
  // A folder another process made (a --mode processes node): never removed.
  static DataDir existing(const std::string& path);

  DataDir() = default;
  DataDir(DataDir&& other) noexcept;
  DataDir& operator=(DataDir&&) = delete;
  ~DataDir();

  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  bool remove_ = false;
};

}  // namespace keel_bench
