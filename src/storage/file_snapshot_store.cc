// FileSnapshotStore (keel/file_stores.h): one directory per snapshot.
//
//   <dir>/snap-<index>-<term>-<sequence>/data   the snapshot's bytes
//   <dir>/snap-<index>-<term>-<sequence>/meta   storage/snapshot_meta.h
//   <dir>/tmp-snap-.../                         a snapshot being written
//
// Commit order, each step preventing one failure:
//   1. fsync data and meta — else the rename below could make durable a
//      directory whose files are empty after a crash;
//   2. fsync the temporary directory — else the files' own entries in it may
//      be lost although their bytes were synced;
//   3. rename tmp-<id> to <id> — atomic: a snapshot is listed whole or not
//      at all;
//   4. fsync <dir> — else the rename may be undone after commit() returned,
//      and the log it let us compact would be gone with no snapshot in its
//      place.
// remove() renames a snapshot to a temporary name, syncs that rename, then
// deletes its files: a crash midway never leaves one that lists but cannot
// be read (load() removes what a crash left behind).
//
// Fail-stop, like the WAL: after the first failed write, sync, rename,
// directory creation, directory sync or removal, the page cache may hold
// what the disk does not, so every later create(), commit() and remove()
// refuses with that first failure; reopening recovers from what the disk
// holds. commit() succeeds exactly when the snapshot is durable: if the
// directory sync after the rename fails, the rename is undone (best
// effort) and commit() fails, so the snapshot is not listed (a crash may
// still bring it back, whole; if the undo fails too, it stays listed until
// the store is reopened, and the error says so).
#include <algorithm>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/check.h"
#include "core/crc32c.h"
#include "keel/file_stores.h"
#include "storage/file_stores_fs.h"
#include "storage/fs.h"
#include "storage/snapshot_meta.h"

namespace keel {

namespace storage {
namespace {

constexpr std::string_view kTemporaryPrefix = "tmp-";
constexpr char kDataFileName[] = "data";
constexpr char kMetaFileName[] = "meta";
// A metadata file holds a configuration; 8 MiB is far beyond any.
constexpr std::uint64_t kMaxMetaFileBytes = 8ULL << 20;
// open() verifies the checksum reading this much at a time.
constexpr std::size_t kVerifyChunkBytes = 1 << 20;

Status remove_tree(FileSystem& fs, const std::string& dir) {
  Result<std::vector<std::string>> names = fs.list_dir(dir);
  if (!names.is_ok()) return names.status();
  for (const std::string& name : *names) {
    Status removed = fs.remove(join_path(dir, name));
    if (!removed.is_ok()) return removed;
  }
  return fs.remove(dir);
}

Result<std::string> read_small_file(FileSystem& fs, const std::string& path,
                                    std::uint64_t max_bytes) {
  Result<std::unique_ptr<File>> file = fs.open(path, OpenMode::kRead);
  if (!file.is_ok()) return file.status();
  Result<std::uint64_t> size = (*file)->size();
  if (!size.is_ok()) return size.status();
  if (*size > max_bytes)
    return Status::corruption(path + ": " + std::to_string(*size) + " bytes is too large");
  std::string bytes(*size, '\0');
  Result<std::size_t> read = (*file)->read_at(0, std::span<char>(bytes.data(), bytes.size()));
  if (!read.is_ok()) return read.status();
  bytes.resize(*read);
  return bytes;
}

Status write_synced_file(FileSystem& fs, const std::string& path, std::string_view bytes) {
  Result<std::unique_ptr<File>> file = fs.open(path, OpenMode::kCreateNew);
  if (!file.is_ok()) return file.status();
  Status status = (*file)->write_at(0, bytes);
  if (!status.is_ok()) return status;
  return (*file)->sync();
}

struct Shared {
  std::string dir;
  FileSnapshotStoreOptions options;
  std::shared_ptr<FileSystem> fs;
  std::mutex mutex;          // guards next_sequence and failure
  std::mutex removal_mutex;  // one remove() at a time: a second finds the first's work done
  std::uint64_t next_sequence = 1;
  std::optional<Status> failure;  // the first failure; set once (fail-stop)

  // Records `status` as the store's failure if it is the first; returns it.
  Status fail(Status status) {
    std::lock_guard lock(mutex);
    if (!failure) failure = status;
    return status;
  }
  // The refusal every write gets after a failure; OK if there was none.
  Status refusal(const char* operation) {
    std::lock_guard lock(mutex);
    if (!failure) return Status::ok();
    return Status::io_error(
        std::string(operation) + ": the snapshot store in " + dir +
        " refuses writes after an earlier failure (fail-stop): " + failure->message());
  }

  // Committed snapshot ids, oldest first.
  Result<std::vector<std::string>> committed_ids() const {
    Result<std::vector<std::string>> names = fs->list_dir(dir);
    if (!names.is_ok()) return names.status();
    std::vector<std::string> ids;
    for (const std::string& name : *names) {
      if (snapshot_id_sequence(name)) ids.push_back(name);
    }
    return ids;
  }

  // A snapshot leaves the list in one step, a rename to a temporary name
  // made durable before its files go: a crash midway never leaves one that
  // lists but cannot be read (load() removes what a crash left behind).
  Status remove(const std::string& id) {
    const std::string temporary = join_path(dir, std::string(kTemporaryPrefix) + id);
    Status status = fs->rename(join_path(dir, id), temporary);
    if (status.is_ok()) status = fs->sync_dir(dir);
    if (status.is_ok()) status = remove_tree(*fs, temporary);
    if (status.is_ok()) status = fs->sync_dir(dir);
    return status;
  }
};

class FileSink final : public SnapshotSink {
 public:
  FileSink(std::shared_ptr<Shared> shared, SnapshotMeta meta, std::string temporary_dir,
           std::unique_ptr<File> data)
      : shared_(std::move(shared)),
        meta_(std::move(meta)),
        temporary_dir_(std::move(temporary_dir)),
        data_(std::move(data)) {}
  // Never throws: if removing the temporary directory fails (even for want
  // of memory), the next open() removes it.
  ~FileSink() override {
    try {
      cancel();
    } catch (...) {  // NOLINT(bugprone-empty-catch)
    }
  }
  FileSink(const FileSink&) = delete;
  FileSink& operator=(const FileSink&) = delete;

  const std::string& id() const override { return meta_.id; }

  Status write(std::string_view bytes) override {
    if (done_)
      return Status::invalid_argument("snapshot " + meta_.id + ": already committed or cancelled");
    if (!failure_.is_ok()) return failure_;
    meta_.crc32c = core::crc32c_extend(meta_.crc32c, bytes.data(), bytes.size());
    meta_.size_bytes += bytes.size();
    buffer_.append(bytes);
    if (buffer_.size() >= shared_->options.write_buffer_bytes) return flush();
    return Status::ok();
  }

  Result<SnapshotMeta> commit() override {
    if (done_)
      return Status::invalid_argument("snapshot " + meta_.id + ": already committed or cancelled");
    if (Status refused = shared_->refusal("commit"); !refused.is_ok()) {
      cancel();
      return refused;
    }
    Status status = failure_.is_ok() ? flush() : failure_;
    if (status.is_ok()) status = data_->sync();
    data_.reset();
    if (status.is_ok()) {
      status = write_synced_file(*shared_->fs, join_path(temporary_dir_, kMetaFileName),
                                 encode_snapshot_meta(meta_));
    }
    if (status.is_ok()) status = shared_->fs->sync_dir(temporary_dir_);
    if (!status.is_ok()) {
      cancel();
      return shared_->fail(status);
    }
    const std::string final_dir = join_path(shared_->dir, meta_.id);
    status = shared_->fs->rename(temporary_dir_, final_dir);
    if (!status.is_ok()) {
      cancel();
      return shared_->fail(status);
    }
    status = shared_->fs->sync_dir(shared_->dir);
    if (!status.is_ok()) {
      // Visible but perhaps not durable: take it out of sight again, so
      // that nothing is listed that commit() did not promise. Only the
      // rename: removing its files now could, after a crash that keeps the
      // first rename but not this one, leave it listed without its data.
      // The next open() removes the temporary directory.
      done_ = true;
      const bool hidden = shared_->fs->rename(final_dir, temporary_dir_).is_ok();
      return shared_->fail(
          Status::io_error("commit: snapshot " + meta_.id + " is not durable (syncing " +
                           shared_->dir + " after the rename failed: " + status.message() + "); " +
                           (hidden ? "a crash may still bring it back whole"
                                   : "it stays listed, whole, until the store is reopened")));
    }
    done_ = true;
    return meta_;
  }

  // Best effort: what is left behind is removed by the next open().
  void cancel() override {
    if (done_) return;
    done_ = true;
    data_.reset();
    (void)remove_tree(*shared_->fs, temporary_dir_);
  }

 private:
  Status flush() {
    if (buffer_.empty()) return Status::ok();
    failure_ = data_->write_at(written_, buffer_);
    written_ += buffer_.size();
    buffer_.clear();
    if (!failure_.is_ok()) (void)shared_->fail(failure_);
    return failure_;
  }

  std::shared_ptr<Shared> shared_;
  SnapshotMeta meta_;
  std::string temporary_dir_;
  std::unique_ptr<File> data_;
  std::string buffer_;
  std::uint64_t written_ = 0;
  Status failure_;
  bool done_ = false;
};

// Streams the data and checks size and checksum when it reaches the end.
class FileReader final : public SnapshotReader {
 public:
  FileReader(std::unique_ptr<File> data, SnapshotMeta meta)
      : data_(std::move(data)), meta_(std::move(meta)) {}

  Result<std::size_t> read(std::span<char> out) override {
    Result<std::size_t> count = data_->read_at(offset_, out);
    if (!count.is_ok()) return count.status();
    crc_ = core::crc32c_extend(crc_, out.data(), *count);
    offset_ += *count;
    const bool at_end = *count < out.size() || offset_ >= meta_.size_bytes;
    if (at_end && (offset_ != meta_.size_bytes || crc_ != meta_.crc32c)) {
      return Status::corruption("snapshot " + data_->path() +
                                ": size or checksum mismatch at the end of reading");
    }
    return count;
  }

 private:
  std::unique_ptr<File> data_;
  SnapshotMeta meta_;
  std::uint64_t offset_ = 0;
  std::uint32_t crc_ = 0;
};

class FileSnapshots final : public FileSnapshotStore {
 public:
  explicit FileSnapshots(std::shared_ptr<Shared> shared) : shared_(std::move(shared)) {}

  Status load();
  Result<std::unique_ptr<SnapshotSink>> create(const SnapshotMeta& meta) override;
  Result<SnapshotList> list() const override;
  Result<Opened> open(const std::string& id) override;
  Status remove(const std::string& id) override;

 private:
  Result<SnapshotMeta> read_meta(const std::string& id) const;
  Status verify_data(File& data, const SnapshotMeta& meta) const;

  std::shared_ptr<Shared> shared_;
};

// Temporary directories are snapshots a crash interrupted before commit:
// never visible, so removed. New ids continue after the newest committed.
Status FileSnapshots::load() {
  Result<std::vector<std::string>> names = shared_->fs->list_dir(shared_->dir);
  if (!names.is_ok()) return names.status();
  bool removed = false;
  for (const std::string& name : *names) {
    if (name.starts_with(kTemporaryPrefix)) {
      Status status = remove_tree(*shared_->fs, join_path(shared_->dir, name));
      if (!status.is_ok()) return status;
      removed = true;
    } else if (std::optional<std::uint64_t> sequence = snapshot_id_sequence(name)) {
      shared_->next_sequence = std::max(shared_->next_sequence, *sequence + 1);
    }
  }
  return removed ? shared_->fs->sync_dir(shared_->dir) : Status::ok();
}

Result<std::unique_ptr<SnapshotSink>> FileSnapshots::create(const SnapshotMeta& meta) {
  if (Status refused = shared_->refusal("create"); !refused.is_ok()) return refused;
  SnapshotMeta started = meta;
  {
    std::lock_guard lock(shared_->mutex);
    started.id = make_snapshot_id(meta.index, meta.term, shared_->next_sequence++);
  }
  started.size_bytes = 0;
  started.crc32c = 0;
  const std::string temporary_dir =
      join_path(shared_->dir, std::string(kTemporaryPrefix) + started.id);
  Status made = shared_->fs->create_dir(temporary_dir);
  if (!made.is_ok()) return shared_->fail(made);
  Result<std::unique_ptr<File>> data =
      shared_->fs->open(join_path(temporary_dir, kDataFileName), OpenMode::kCreateNew);
  if (!data.is_ok()) {
    // What the failed create left behind, the next open() removes.
    (void)shared_->fs->remove(temporary_dir);
    return shared_->fail(data.status());
  }
  return std::unique_ptr<SnapshotSink>(std::make_unique<FileSink>(
      shared_, std::move(started), temporary_dir, std::move(data).value()));
}

Result<SnapshotMeta> FileSnapshots::read_meta(const std::string& id) const {
  const std::string path = join_path(join_path(shared_->dir, id), kMetaFileName);
  Result<std::string> bytes = read_small_file(*shared_->fs, path, kMaxMetaFileBytes);
  if (!bytes.is_ok()) return bytes.status();
  Result<SnapshotMeta> meta = decode_snapshot_meta(*bytes, path);
  if (!meta.is_ok()) return meta.status();
  meta->id = id;
  return meta;
}

// A snapshot whose metadata cannot be read is listed as damaged, with why.
// Failures to read that are not about the file's contents (an I/O error)
// fail the whole listing: they say nothing about the snapshot.
Result<SnapshotList> FileSnapshots::list() const {
  Result<std::vector<std::string>> ids = shared_->committed_ids();
  if (!ids.is_ok()) return ids.status();
  SnapshotList listed;
  for (auto id = ids->rbegin(); id != ids->rend(); ++id) {
    Result<SnapshotMeta> meta = read_meta(*id);
    if (meta.is_ok()) {
      const std::string data = join_path(join_path(shared_->dir, *id), kDataFileName);
      Result<bool> has_data = shared_->fs->exists(data);
      if (!has_data.is_ok()) return has_data.status();
      if (*has_data) {
        listed.snapshots.push_back(std::move(meta).value());
      } else {
        listed.damaged.push_back(DamagedSnapshot{*id, Status::corruption(data + ": missing")});
      }
    } else if (meta.status().code() == StatusCode::kCorruption ||
               meta.status().code() == StatusCode::kNotFound) {
      listed.damaged.push_back(DamagedSnapshot{*id, meta.status()});
    } else {
      return meta.status();
    }
  }
  return listed;
}

Status FileSnapshots::verify_data(File& data, const SnapshotMeta& meta) const {
  std::string chunk(kVerifyChunkBytes, '\0');
  std::uint64_t offset = 0;
  std::uint32_t crc = 0;
  while (true) {
    Result<std::size_t> count = data.read_at(offset, std::span<char>(chunk.data(), chunk.size()));
    if (!count.is_ok()) return count.status();
    crc = core::crc32c_extend(crc, chunk.data(), *count);
    offset += *count;
    if (*count < chunk.size()) break;
  }
  if (offset != meta.size_bytes || crc != meta.crc32c) {
    return Status::corruption("snapshot " + data.path() + ": holds " + std::to_string(offset) +
                              " bytes with checksum " + std::to_string(crc) +
                              ", its metadata says " + std::to_string(meta.size_bytes) +
                              " bytes with checksum " + std::to_string(meta.crc32c));
  }
  return Status::ok();
}

Result<SnapshotStore::Opened> FileSnapshots::open(const std::string& id) {
  if (!snapshot_id_sequence(id)) return Status::not_found("snapshot " + id + ": not a snapshot id");
  Result<bool> exists = shared_->fs->is_dir(join_path(shared_->dir, id));
  if (!exists.is_ok()) return exists.status();
  if (!*exists) return Status::not_found("snapshot " + id + ": no such snapshot");
  Result<SnapshotMeta> meta = read_meta(id);
  if (!meta.is_ok()) return meta.status();
  Result<std::unique_ptr<File>> data =
      shared_->fs->open(join_path(join_path(shared_->dir, id), kDataFileName), OpenMode::kRead);
  if (!data.is_ok()) return data.status();
  Status verified = verify_data(**data, *meta);
  if (!verified.is_ok()) return verified;
  return Opened{*meta, std::make_unique<FileReader>(std::move(data).value(), *meta)};
}

Status FileSnapshots::remove(const std::string& id) {
  if (Status refused = shared_->refusal("remove"); !refused.is_ok()) return refused;
  if (!snapshot_id_sequence(id)) return Status::not_found("snapshot " + id + ": not a snapshot id");
  std::lock_guard removing(shared_->removal_mutex);
  Result<bool> exists = shared_->fs->is_dir(join_path(shared_->dir, id));
  if (!exists.is_ok()) return exists.status();
  if (!*exists) return Status::not_found("snapshot " + id + ": no such snapshot");
  Status removed = shared_->remove(id);
  if (!removed.is_ok()) {
    return shared_->fail(
        Status::io_error("removing snapshot " + id + " failed: " + removed.message()));
  }
  return Status::ok();
}

}  // namespace
}  // namespace storage

Result<std::shared_ptr<FileSnapshotStore>> storage::open_file_snapshot_store(
    const std::string& dir, FileSnapshotStoreOptions options,
    std::shared_ptr<FileSystem> file_system) {
  KEEL_CHECK("open_file_snapshot_store is given a file system", file_system != nullptr);
  auto shared = std::make_shared<Shared>();
  shared->dir = dir;
  shared->fs = std::move(file_system);
  shared->options = std::move(options);
  Status made = create_dirs_durably(*shared->fs, dir);
  if (!made.is_ok()) return made;
  auto store = std::make_shared<FileSnapshots>(std::move(shared));
  Status loaded = store->load();
  if (!loaded.is_ok()) return loaded;
  return std::shared_ptr<FileSnapshotStore>(std::move(store));
}

Result<std::shared_ptr<FileSnapshotStore>> FileSnapshotStore::open(
    const std::string& dir, FileSnapshotStoreOptions options) {
  return storage::open_file_snapshot_store(dir, std::move(options),
                                           storage::make_posix_file_system());
}

}  // namespace keel
