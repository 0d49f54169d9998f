// Path helpers of storage/fs.h, shared by the real and the simulated disk.
#include "storage/fs.h"

#include <string>
#include <string_view>

namespace keel::storage {

std::string join_path(std::string_view dir, std::string_view name) {
  std::string path(dir);
  if (!path.empty() && path.back() != '/') path.push_back('/');
  path.append(name);
  return path;
}

std::string parent_dir(std::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  const std::size_t slash = path.rfind('/');
  if (slash == std::string_view::npos) return ".";
  if (slash == 0) return "/";
  return std::string(path.substr(0, slash));
}

Status create_dirs_durably(FileSystem& fs, const std::string& path) {
  Result<bool> dir = fs.is_dir(path);
  if (!dir.is_ok()) return dir.status();
  if (*dir) return Status::ok();
  const std::string parent = parent_dir(path);
  if (parent != path) {
    Status made = create_dirs_durably(fs, parent);
    if (!made.is_ok()) return made;
  }
  Status created = fs.create_dir(path);
  if (!created.is_ok()) return created;
  return fs.sync_dir(parent);
}

}  // namespace keel::storage
