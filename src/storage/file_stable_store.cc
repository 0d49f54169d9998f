// FileStableStore (keel/file_stores.h): every key in one small file,
// replaced whole and atomically by each set().
//
// The file (docs/formats.md, "Stable store file"): version, the pairs, and a
// CRC-32C of all of it. The rewrite is the classic sequence, each step
// preventing one failure:
//   1. write stable.tmp and fsync it — else the rename could make durable a
//      name that points at data still in the page cache (an empty file after
//      a crash: a node that forgot its vote votes twice in one term);
//   2. rename it over stable — atomic: a reader sees the old or the new file;
//   3. fsync the directory — else the rename itself may be undone by a crash
//      and the old term and vote come back after set() returned.
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "core/byte_io.h"
#include "core/check.h"
#include "core/crc32c.h"
#include "keel/file_stores.h"
#include "storage/file_stores_fs.h"
#include "storage/fs.h"

namespace keel {

namespace storage {
namespace {

constexpr std::uint8_t kStableFormatVersion = 1;
constexpr char kStateFileName[] = "stable";
constexpr char kTemporaryFileName[] = "stable.tmp";
constexpr std::size_t kCrcBytes = 4;

using Values = std::map<std::string, std::string>;

std::string encode_values(const Values& values) {
  core::ByteWriter writer;
  writer.u8(kStableFormatVersion);
  writer.varint(values.size());
  for (const auto& [key, value] : values) {
    writer.length_prefixed(key);
    writer.length_prefixed(value);
  }
  std::string bytes = writer.take();
  const std::uint32_t crc = core::crc32c(bytes);
  for (int i = 0; i < 4; ++i) bytes.push_back(static_cast<char>((crc >> (8 * i)) & 0xFFu));
  return bytes;
}

Result<Values> decode_values(std::string_view bytes, const std::string& path) {
  if (bytes.size() < 1 + kCrcBytes) {
    return Status::corruption(path + ": " + std::to_string(bytes.size()) +
                              " bytes is too short for a stable store file");
  }
  const std::string_view body = bytes.substr(0, bytes.size() - kCrcBytes);
  std::uint32_t stored = 0;
  for (int i = 3; i >= 0; --i) {
    stored = (stored << 8) |
             static_cast<unsigned char>(bytes[body.size() + static_cast<std::size_t>(i)]);
  }
  if (stored != core::crc32c(body)) return Status::corruption(path + ": checksum mismatch");
  const std::string context = "stable store file " + path;
  core::ByteReader reader(body, context.c_str());
  const std::uint8_t version = reader.u8("version");
  if (reader.ok() && version != kStableFormatVersion) {
    return Status::corruption(path + ": format version " + std::to_string(version) +
                              " is not one this build reads (" +
                              std::to_string(kStableFormatVersion) + ")");
  }
  const std::uint64_t count = reader.varint("count");
  Values values;
  for (std::uint64_t i = 0; i < count && reader.ok(); ++i) {
    reader.within("pair", static_cast<std::size_t>(i));
    std::string key(reader.length_prefixed("key", body.size(), "file size"));
    std::string value(reader.length_prefixed("value", body.size(), "file size"));
    values[std::move(key)] = std::move(value);
  }
  reader.within(nullptr, 0);
  reader.expect_end();
  if (!reader.ok()) return reader.status();
  return values;
}

class FileStable final : public FileStableStore {
 public:
  FileStable(std::string dir, FileStableStoreOptions options, std::shared_ptr<FileSystem> fs)
      : dir_(std::move(dir)), options_(std::move(options)), fs_(std::move(fs)) {}

  Status load();
  Status set(const std::string& key, std::string value) override;
  Result<std::string> get(const std::string& key) const override;

 private:
  Status replace_file(const std::string& bytes);

  const std::string dir_;
  const FileStableStoreOptions options_;
  const std::shared_ptr<FileSystem> fs_;
  mutable std::mutex mutex_;
  Values values_;
  std::optional<Status> failure_;  // fail-stop, as the WAL (see there)
};

// A stable.tmp left by a crash was never renamed into place: it is not the
// state, whatever it holds. A damaged stable file is Corruption, never an
// empty store: starting with term 0 and no vote could vote twice in a term.
Status FileStable::load() {
  const std::string temporary = join_path(dir_, kTemporaryFileName);
  Result<bool> leftover = fs_->exists(temporary);
  if (!leftover.is_ok()) return leftover.status();
  if (*leftover) {
    Status removed = fs_->remove(temporary);
    if (removed.is_ok()) removed = fs_->sync_dir(dir_);
    if (!removed.is_ok()) return removed;
  }
  const std::string path = join_path(dir_, kStateFileName);
  Result<std::unique_ptr<File>> file = fs_->open(path, OpenMode::kRead);
  if (!file.is_ok())
    return file.status().code() == StatusCode::kNotFound ? Status::ok() : file.status();
  Result<std::uint64_t> size = (*file)->size();
  if (!size.is_ok()) return size.status();
  if (*size > options_.max_file_bytes) {
    return Status::corruption(path + ": " + std::to_string(*size) +
                              " bytes exceeds max_file_bytes " +
                              std::to_string(options_.max_file_bytes));
  }
  std::string bytes(*size, '\0');
  Result<std::size_t> read = (*file)->read_at(0, std::span<char>(bytes.data(), bytes.size()));
  if (!read.is_ok()) return read.status();
  bytes.resize(*read);
  Result<Values> values = decode_values(bytes, path);
  if (!values.is_ok()) return values.status();
  values_ = std::move(values).value();
  return Status::ok();
}

Status FileStable::replace_file(const std::string& bytes) {
  const std::string temporary = join_path(dir_, kTemporaryFileName);
  {
    Result<std::unique_ptr<File>> file = fs_->open(temporary, OpenMode::kCreateNew);
    if (!file.is_ok()) return file.status();
    Status status = (*file)->write_at(0, bytes);
    if (status.is_ok()) status = (*file)->sync();
    if (!status.is_ok()) return status;
  }
  Status status = fs_->rename(temporary, join_path(dir_, kStateFileName));
  if (!status.is_ok()) return status;
  return fs_->sync_dir(dir_);
}

Status FileStable::set(const std::string& key, std::string value) {
  std::lock_guard lock(mutex_);
  if (failure_) {
    return Status::io_error(
        "stable store " + dir_ +
        " refuses writes after an earlier failure (fail-stop): " + failure_->message());
  }
  Values next = values_;
  next[key] = std::move(value);
  const std::string bytes = encode_values(next);
  if (bytes.size() > options_.max_file_bytes) {
    return Status::invalid_argument("stable store " + dir_ + ": " + std::to_string(bytes.size()) +
                                    " bytes would exceed max_file_bytes " +
                                    std::to_string(options_.max_file_bytes));
  }
  Status replaced = replace_file(bytes);
  if (!replaced.is_ok()) {
    failure_ = replaced;
    return replaced;
  }
  values_ = std::move(next);
  return Status::ok();
}

Result<std::string> FileStable::get(const std::string& key) const {
  std::lock_guard lock(mutex_);
  auto found = values_.find(key);
  if (found == values_.end()) return Status::not_found("stable store: no key '" + key + "'");
  return found->second;
}

}  // namespace
}  // namespace storage

Result<std::shared_ptr<FileStableStore>> storage::open_file_stable_store(
    const std::string& dir, FileStableStoreOptions options,
    std::shared_ptr<FileSystem> file_system) {
  KEEL_CHECK("open_file_stable_store is given a file system", file_system != nullptr);
  Status made = create_dirs_durably(*file_system, dir);
  if (!made.is_ok()) return made;
  auto store = std::make_shared<FileStable>(dir, std::move(options), std::move(file_system));
  Status loaded = store->load();
  if (!loaded.is_ok()) return loaded;
  return std::shared_ptr<FileStableStore>(std::move(store));
}

Result<std::shared_ptr<FileStableStore>> FileStableStore::open(const std::string& dir,
                                                               FileStableStoreOptions options) {
  return storage::open_file_stable_store(dir, std::move(options),
                                         storage::make_posix_file_system());
}

}  // namespace keel
