// apps/bench/data_dir.cc — keel-bench's folder: refused when used.
#include "data_dir.h"

#include <stdlib.h>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <system_error>
#include <utility>

namespace keel_bench {

std::optional<DataDir> DataDir::make(const std::string& requested) {
  DataDir dir;
  std::error_code ec;
  if (requested.empty()) {
    std::string pattern = (std::filesystem::temp_directory_path() / "keel-bench-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) {
      std::cerr << "keel-bench: cannot make a temporary folder: " << std::strerror(errno) << "\n";
      return std::nullopt;
    }
    dir.path_ = pattern;
    dir.remove_ = true;
    return dir;
  }
  dir.path_ = requested;
  if (std::filesystem::exists(dir.path_, ec) && !std::filesystem::is_empty(dir.path_, ec)) {
    std::cerr << "keel-bench: --dir " << requested
              << " holds files already (perhaps a cluster): give an empty or new folder\n";
    return std::nullopt;
  }
  std::filesystem::create_directories(dir.path_, ec);
  if (ec) {
    std::cerr << "keel-bench: --dir " << requested << ": " << ec.message() << "\n";
    return std::nullopt;
  }
  return dir;
}

DataDir DataDir::existing(const std::string& path) {
  DataDir dir;
  dir.path_ = path;
  return dir;
}

DataDir::DataDir(DataDir&& other) noexcept
    : path_(std::move(other.path_)), remove_(std::exchange(other.remove_, false)) {}

DataDir::~DataDir() {
  std::error_code ec;
  if (remove_) std::filesystem::remove_all(path_, ec);
}

}  // namespace keel_bench
