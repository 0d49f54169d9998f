// PosixFileSystem (storage/fs.h): the real disk. Thin wrappers over POSIX
// calls whose only logic is what POSIX leaves to the caller: partial writes
// and reads are continued, EINTR is retried, and every error names the call,
// the path, the offset and errno's text.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "storage/fs.h"

namespace keel::storage {

namespace {

// ENOSPC gets words of its own: an operator reading the log must see at once
// that the disk is full rather than decode an errno.
Status posix_error(const std::string& what, const std::string& path, int error) {
  std::string message = what + " " + path + ": " + std::strerror(error);
  if (error == ENOSPC) message += " (no space left on device: ENOSPC)";
  return Status::io_error(std::move(message));
}

Status posix_error_at(const std::string& what, const std::string& path, std::uint64_t offset,
                      int error) {
  return posix_error(what + " at offset " + std::to_string(offset) + " of", path, error);
}

class PosixFile final : public File {
 public:
  PosixFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~PosixFile() override { ::close(fd_); }
  PosixFile(const PosixFile&) = delete;
  PosixFile& operator=(const PosixFile&) = delete;

  const std::string& path() const override { return path_; }

  Status write_at(std::uint64_t offset, std::string_view bytes) override {
    std::size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = ::pwrite(fd_, bytes.data() + done, bytes.size() - done,
                                 static_cast<off_t>(offset + done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return posix_error_at("pwrite", path_, offset + done, errno);
      done += static_cast<std::size_t>(n);
    }
    return Status::ok();
  }

  Status append(std::string_view bytes) override {
    Result<std::uint64_t> end = size();
    if (!end.is_ok()) return end.status();
    return write_at(*end, bytes);
  }

  Result<std::size_t> read_at(std::uint64_t offset, std::span<char> out) const override {
    std::size_t done = 0;
    while (done < out.size()) {
      const ssize_t n =
          ::pread(fd_, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return posix_error_at("pread", path_, offset + done, errno);
      if (n == 0) break;  // end of file
      done += static_cast<std::size_t>(n);
    }
    return done;
  }

  Result<std::uint64_t> size() const override {
    struct stat info {};
    if (::fstat(fd_, &info) != 0) return posix_error("fstat", path_, errno);
    return static_cast<std::uint64_t>(info.st_size);
  }

  // posix_fallocate uses fallocate(2) where the file system has it and
  // writes zeros where it does not; either way the blocks are reserved.
  Status allocate(std::uint64_t size_bytes) override {
    Result<std::uint64_t> current = size();
    if (!current.is_ok()) return current.status();
    if (*current >= size_bytes) return Status::ok();
    const int error = ::posix_fallocate(fd_, 0, static_cast<off_t>(size_bytes));
    if (error != 0) {
      return posix_error("fallocate to " + std::to_string(size_bytes) + " bytes:", path_, error);
    }
    return Status::ok();
  }

  Status truncate(std::uint64_t size_bytes) override {
    while (::ftruncate(fd_, static_cast<off_t>(size_bytes)) != 0) {
      if (errno != EINTR) {
        return posix_error("ftruncate to " + std::to_string(size_bytes) + " bytes:", path_, errno);
      }
    }
    return Status::ok();
  }

  // Never retried on failure, EINTR included: after a failed fsync Linux may
  // already have dropped the dirty pages and marked them clean, so a second
  // call would "succeed" without the data being anywhere (the 2018
  // PostgreSQL fsync bug). The stores turn the error into fail-stop.
  Status sync_data() override {
    if (::fdatasync(fd_) != 0) return posix_error("fdatasync", path_, errno);
    return Status::ok();
  }

  Status sync() override {
    if (::fsync(fd_) != 0) return posix_error("fsync", path_, errno);
    return Status::ok();
  }

 private:
  std::string path_;
  int fd_;
};

int open_flags(OpenMode mode) {
  switch (mode) {
    case OpenMode::kRead:
      return O_RDONLY | O_CLOEXEC;
    case OpenMode::kReadWrite:
      return O_RDWR | O_CLOEXEC;
    case OpenMode::kCreateNew:
      return O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC;
  }
  return O_RDONLY | O_CLOEXEC;
}

class PosixFileSystem final : public FileSystem {
 public:
  Result<std::unique_ptr<File>> open(const std::string& path, OpenMode mode) override {
    int fd = -1;
    do {
      fd = ::open(path.c_str(), open_flags(mode), 0644);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
      if (errno == ENOENT) return Status::not_found("open " + path + ": no such file");
      return posix_error("open", path, errno);
    }
    return std::unique_ptr<File>(std::make_unique<PosixFile>(path, fd));
  }

  Status create_dir(const std::string& path) override {
    if (::mkdir(path.c_str(), 0755) == 0) return Status::ok();
    const int error = errno;
    if (error == EEXIST) {
      Result<bool> dir = is_dir(path);
      if (dir.is_ok() && *dir) return Status::ok();
    }
    return posix_error("mkdir", path, error);
  }

  Result<std::vector<std::string>> list_dir(const std::string& path) const override {
    DIR* dir = ::opendir(path.c_str());
    if (dir == nullptr) return posix_error("opendir", path, errno);
    std::vector<std::string> names;
    errno = 0;
    while (const dirent* entry = ::readdir(dir)) {
      const std::string name = entry->d_name;
      if (name != "." && name != "..") names.push_back(name);
    }
    const int error = errno;
    ::closedir(dir);
    if (error != 0) return posix_error("readdir", path, error);
    std::sort(names.begin(), names.end());
    return names;
  }

  Result<bool> is_dir(const std::string& path) const override {
    struct stat info {};
    if (::stat(path.c_str(), &info) != 0) {
      if (errno == ENOENT) return false;
      return posix_error("stat", path, errno);
    }
    return S_ISDIR(info.st_mode);
  }

  Result<bool> exists(const std::string& path) const override {
    struct stat info {};
    if (::stat(path.c_str(), &info) == 0) return true;
    if (errno == ENOENT) return false;
    return posix_error("stat", path, errno);
  }

  Status rename(const std::string& from, const std::string& to) override {
    if (parent_dir(from) != parent_dir(to)) {
      return Status::invalid_argument("rename " + from + " to " + to +
                                      ": not in the same directory");
    }
    if (::rename(from.c_str(), to.c_str()) != 0)
      return posix_error("rename to " + to + ":", from, errno);
    return Status::ok();
  }

  Status remove(const std::string& path) override {
    if (::remove(path.c_str()) != 0) return posix_error("remove", path, errno);
    return Status::ok();
  }

  // fsync on a directory opened read-only is how POSIX makes its entries
  // durable; without it a crash may undo a create, rename or unlink even
  // though the file's own data was synced.
  Status sync_dir(const std::string& path) override {
    int fd = -1;
    do {
      fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) return posix_error("open directory", path, errno);
    const int result = ::fsync(fd);
    const int error = errno;
    ::close(fd);
    if (result != 0) return posix_error("fsync directory", path, error);
    return Status::ok();
  }
};

}  // namespace

std::shared_ptr<FileSystem> make_posix_file_system() { return std::make_shared<PosixFileSystem>(); }

}  // namespace keel::storage
