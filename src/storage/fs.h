// storage/fs.h — the one door between keel's stores and the disk.
//
// Every file operation of the WAL, the stable store and the snapshot store
// goes through FileSystem and File, so that the simulator can swap the real
// disk (PosixFileSystem) for SimFileSystem, which remembers which bytes and
// directory entries were synced and loses or tears the rest on a crash. A
// store that bypassed this interface would be untested against crashes.
//
// The interface is deliberately the POSIX durability model, nothing kinder:
//  - written bytes are durable only after sync_data() / sync() on that file;
//  - a file's existence, a rename or a removal is durable only after
//    sync_dir() on the directory that holds the entry;
//  - after a failed sync the state of unsynced data is unknown (it may be
//    lost even though reads still return it), so callers must not retry.
//
// Errors are Status values naming the operation, the path and, for I/O,
// the offset. A full disk is IoError whose message says "no space left".
//
// Thread safety: a FileSystem may be used from any thread. One File object
// must not be used by two threads at once (the stores serialise their use).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "keel/status.h"

namespace keel::storage {

class File {
 public:
  virtual ~File() = default;

  virtual const std::string& path() const = 0;
  // Writes all of `bytes` at `offset` (pwrite), extending the file if needed.
  virtual Status write_at(std::uint64_t offset, std::string_view bytes) = 0;
  // Writes all of `bytes` at the current end of the file.
  virtual Status append(std::string_view bytes) = 0;
  // Reads up to out.size() bytes at `offset`; fewer only at the end of the
  // file. Returns the number read.
  virtual Result<std::size_t> read_at(std::uint64_t offset, std::span<char> out) const = 0;
  virtual Result<std::uint64_t> size() const = 0;
  // Makes the file at least `size_bytes` long, reserving the blocks (the new
  // bytes read as zeros), so that later writes inside it neither change the
  // file's size nor fail for want of space (fallocate, mode 0).
  virtual Status allocate(std::uint64_t size_bytes) = 0;
  // Cuts (or zero-extends) the file to `size_bytes`.
  virtual Status truncate(std::uint64_t size_bytes) = 0;
  // fdatasync: the data, and the metadata needed to read it back (the size).
  virtual Status sync_data() = 0;
  // fsync: sync_data and every other metadata of the file.
  virtual Status sync() = 0;
};

enum class OpenMode : std::uint8_t {
  kRead,       // the file must exist; reads only
  kReadWrite,  // the file must exist
  kCreateNew,  // the file must not exist; it is created empty
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;

  virtual Result<std::unique_ptr<File>> open(const std::string& path, OpenMode mode) = 0;
  // Creates one directory; Ok if it already exists as a directory. The new
  // entry is durable only after sync_dir() on the parent.
  virtual Status create_dir(const std::string& path) = 0;
  // The names (not paths) in a directory, sorted, without "." and "..".
  virtual Result<std::vector<std::string>> list_dir(const std::string& path) const = 0;
  // Whether `path` names a directory; false if it does not exist.
  virtual Result<bool> is_dir(const std::string& path) const = 0;
  virtual Result<bool> exists(const std::string& path) const = 0;
  // Atomically replaces `to` (if any) by `from`. Both must be in the same
  // directory. Durable only after sync_dir() on it.
  virtual Status rename(const std::string& from, const std::string& to) = 0;
  // Removes a file or an empty directory. Durable only after sync_dir().
  virtual Status remove(const std::string& path) = 0;
  // Makes the directory's entries (creations, renames, removals) durable.
  virtual Status sync_dir(const std::string& path) = 0;
};

// The real disk (POSIX calls: pwrite, fdatasync, fallocate, rename, ...).
std::shared_ptr<FileSystem> make_posix_file_system();

// Creates `path` and any missing parent, syncing each parent directory so
// that the new entries survive a crash. Ok if it already exists.
Status create_dirs_durably(FileSystem& fs, const std::string& path);

// Path helpers: join("a", "b") == "a/b"; parent_dir("a/b") == "a"
// (parent_dir of a bare name is ".").
std::string join_path(std::string_view dir, std::string_view name);
std::string parent_dir(std::string_view path);

}  // namespace keel::storage
