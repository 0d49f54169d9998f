// apps/kv/data_dir.cc — see data_dir.h.
#include "kv/data_dir.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

namespace keel::kv {
namespace {

constexpr const char* kIdentityFile = "keel-kv.identity";

std::string identity_text(std::uint64_t cluster_id, std::uint64_t id) {
  return "cluster_id=" + std::to_string(cluster_id) + "\nid=" + std::to_string(id) + "\n";
}

Status sync_directory(const std::filesystem::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return Status::io_error("opening " + dir.string() + ": " + std::strerror(errno));
  const bool synced = ::fsync(fd) == 0;
  const int saved = errno;
  ::close(fd);
  if (!synced) return Status::io_error("syncing " + dir.string() + ": " + std::strerror(saved));
  return Status();
}

}  // namespace

Status check_data_dir(const std::filesystem::path& dir, std::uint64_t cluster_id,
                      std::uint64_t id) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::io_error("data directory " + dir.string() + ": " + ec.message());
  const std::filesystem::path file = dir / kIdentityFile;
  if (std::filesystem::exists(file, ec)) {
    std::ifstream in(file);
    std::stringstream text;
    text << in.rdbuf();
    if (!in.good() && !in.eof()) return Status::io_error("cannot read " + file.string());
    if (text.str() != identity_text(cluster_id, id)) {
      std::string found = text.str();
      for (char& c : found) c = c == '\n' ? ' ' : c;
      while (!found.empty() && found.back() == ' ') found.pop_back();
      return Status::invalid_argument(
          "data directory " + dir.string() + " belongs to another server (" + found +
          "), not cluster_id=" + std::to_string(cluster_id) + " id=" + std::to_string(id));
    }
  }
  // Writable? (Permissions alone do not say: root ignores them, a
  // read-only mount does not.)
  const std::filesystem::path probe = dir / ".keel-kv-probe";
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) {
    return Status::io_error("data directory " + dir.string() +
                            " is not writable: " + std::strerror(errno));
  }
  ::close(fd);
  std::filesystem::remove(probe, ec);
  return Status();
}

Status record_identity(const std::filesystem::path& dir, std::uint64_t cluster_id,
                       std::uint64_t id) {
  std::error_code ec;
  const std::filesystem::path file = dir / kIdentityFile;
  if (std::filesystem::exists(file, ec)) return Status();
  const std::string text = identity_text(cluster_id, id);
  const std::filesystem::path tmp = dir / (std::string(kIdentityFile) + ".tmp");
  FILE* out = std::fopen(tmp.c_str(), "w");
  if (out == nullptr)
    return Status::io_error("creating " + tmp.string() + ": " + std::strerror(errno));
  const bool written = std::fwrite(text.data(), 1, text.size(), out) == text.size() &&
                       std::fflush(out) == 0 && ::fsync(fileno(out)) == 0;
  const int saved = errno;
  std::fclose(out);
  if (!written) return Status::io_error("writing " + tmp.string() + ": " + std::strerror(saved));
  std::filesystem::rename(tmp, file, ec);
  if (ec) return Status::io_error("renaming " + tmp.string() + ": " + ec.message());
  return sync_directory(dir);
}

}  // namespace keel::kv
