// SimFileSystem (storage/sim_fs.h): inodes with durable and pending state,
// directories with durable and pending entries, and crashes that replay only
// part of what is pending.
#include "storage/sim_fs.h"

#include <algorithm>
#include <limits>
#include <optional>
#include <set>
#include <utility>

#include "core/prng.h"

namespace keel::storage {

namespace {

using InodeId = std::uint64_t;
constexpr InodeId kRootInode = 1;

// One change to a file made since its last sync, in the order it was made.
struct FileChange {
  enum class Kind : std::uint8_t { kWrite, kResize };
  Kind kind = Kind::kWrite;
  std::uint64_t offset = 0;  // kWrite
  std::string bytes;         // kWrite
  std::uint64_t size = 0;    // kResize
};

// One change to a directory made since its last sync_dir.
struct DirChange {
  enum class Kind : std::uint8_t { kAdd, kRemove, kRename };
  Kind kind = Kind::kAdd;
  std::string name;
  std::string to;  // kRename
  InodeId inode = 0;
};

struct Inode {
  bool is_dir = false;
  // Files.
  std::string durable;
  std::string current;
  std::vector<FileChange> pending;
  // Directories.
  std::map<std::string, InodeId> durable_entries;
  std::map<std::string, InodeId> current_entries;
  std::vector<DirChange> pending_entries;
  // Names that refer to this inode in the current view.
  int links = 0;
  // Open File objects on this inode (an unlinked file lives while open).
  int open_handles = 0;
};

struct Fault {
  FsOperation operation;
  std::string path_part;
  std::uint64_t skip = 0;  // matching operations still allowed to succeed
  // If set, the fault is armed only once an operation of this kind on a
  // path containing trigger_path has gone through.
  std::optional<FsOperation> trigger;
  std::string trigger_path;
};

const char* operation_name(FsOperation operation) {
  switch (operation) {
    case FsOperation::kCreate:
      return "create";
    case FsOperation::kWrite:
      return "write";
    case FsOperation::kSync:
      return "fsync";
    case FsOperation::kAllocate:
      return "fallocate";
    case FsOperation::kTruncate:
      return "ftruncate";
    case FsOperation::kRename:
      return "rename";
    case FsOperation::kRemove:
      return "remove";
    case FsOperation::kSyncDir:
      return "fsync directory";
  }
  return "?";
}

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t slash = path.find('/', start);
    if (slash == std::string::npos) slash = path.size();
    std::string part = path.substr(start, slash - start);
    if (!part.empty() && part != ".") parts.push_back(std::move(part));
    start = slash + 1;
  }
  return parts;
}

void apply_write(std::string& content, std::uint64_t offset, std::string_view bytes) {
  if (content.size() < offset + bytes.size()) content.resize(offset + bytes.size(), '\0');
  content.replace(offset, bytes.size(), bytes);
}

void replay(std::string& content, const std::vector<FileChange>& changes) {
  for (const FileChange& change : changes) {
    if (change.kind == FileChange::Kind::kResize) {
      content.resize(change.size, '\0');
    } else {
      apply_write(content, change.offset, change.bytes);
    }
  }
}

// The changes a budget keeps, in order: a write takes as many units as it
// has bytes (the last one kept may be torn), a resize takes `resize_cost`.
// A budget of 0 keeps nothing.
std::vector<FileChange> prefix_of(const std::vector<FileChange>& changes, std::uint64_t budget,
                                  std::uint64_t resize_cost) {
  std::vector<FileChange> kept;
  for (const FileChange& change : changes) {
    if (budget == 0) break;
    if (change.kind == FileChange::Kind::kResize) {
      if (resize_cost > budget) break;
      kept.push_back(change);
      budget -= resize_cost;
      continue;
    }
    const std::uint64_t bytes = std::min<std::uint64_t>(budget, change.bytes.size());
    FileChange part = change;
    part.bytes.resize(bytes);
    kept.push_back(std::move(part));
    budget -= bytes;
    if (bytes < change.bytes.size()) break;
  }
  return kept;
}

// Each sector-aligned piece of each write, and each resize, kept or not by a
// coin: the page cache writes pages back in any order.
std::vector<FileChange> sectors_kept(const std::vector<FileChange>& changes,
                                     std::uint64_t sector_bytes, core::Prng& prng) {
  std::vector<FileChange> kept;
  for (const FileChange& change : changes) {
    if (change.kind == FileChange::Kind::kResize) {
      if (prng.uniform(0, 2) == 1) kept.push_back(change);
      continue;
    }
    std::uint64_t at = 0;
    while (at < change.bytes.size()) {
      const std::uint64_t offset = change.offset + at;
      const std::uint64_t sector_end = (offset / sector_bytes + 1) * sector_bytes;
      const std::uint64_t length =
          std::min<std::uint64_t>(change.bytes.size() - at, sector_end - offset);
      if (prng.uniform(0, 2) == 1) {
        kept.push_back(
            FileChange{FileChange::Kind::kWrite, offset, change.bytes.substr(at, length), 0});
      }
      at += length;
    }
  }
  return kept;
}

void replay_entries(std::map<std::string, InodeId>& entries,
                    const std::vector<DirChange>& changes) {
  for (const DirChange& change : changes) {
    switch (change.kind) {
      case DirChange::Kind::kAdd:
        entries[change.name] = change.inode;
        break;
      case DirChange::Kind::kRemove:
        entries.erase(change.name);
        break;
      case DirChange::Kind::kRename:
        entries.erase(change.name);
        entries[change.to] = change.inode;
        break;
    }
  }
}

std::uint64_t write_bytes(const std::vector<FileChange>& changes) {
  std::uint64_t total = 0;
  for (const FileChange& change : changes) total += change.bytes.size();
  return total;
}

}  // namespace

// What survives a crash, per inode: the pending changes of a file, and of a
// directory, that reach the disk (none for an inode not named).
struct CrashPlan {
  std::map<InodeId, std::vector<FileChange>> files;
  std::map<InodeId, std::vector<DirChange>> dirs;
};

struct SimFileSystem::Disk {
  Disk(std::uint64_t seed, SimFsFidelity fidelity_in) : prng(seed), fidelity(fidelity_in) {
    inodes[kRootInode].is_dir = true;
    inodes[kRootInode].links = 1;
  }

  mutable std::mutex mutex;
  std::map<InodeId, Inode> inodes;
  InodeId next_inode = kRootInode + 1;
  // Bumped by every crash; a handle from an older generation is stale.
  std::uint64_t generation = 0;
  core::Prng prng;
  const SimFsFidelity fidelity;
  std::vector<Fault> faults;
  std::uint64_t capacity_bytes = std::numeric_limits<std::uint64_t>::max();
  SimFsCounters counters;

  Result<InodeId> lookup(const std::string& path) const {
    InodeId at = kRootInode;
    for (const std::string& part : split_path(path)) {
      const Inode& dir = inodes.at(at);
      if (!dir.is_dir) return Status::io_error(path + ": a path component is not a directory");
      auto found = dir.current_entries.find(part);
      if (found == dir.current_entries.end()) return Status::not_found(path + ": no such file");
      at = found->second;
    }
    return at;
  }

  // The directory that holds `path`'s entry, and the entry's name.
  Result<std::pair<InodeId, std::string>> lookup_parent(const std::string& path) const {
    std::vector<std::string> parts = split_path(path);
    if (parts.empty()) return Status::invalid_argument(path + ": names the root");
    Result<InodeId> parent = lookup(parent_dir(path));
    if (!parent.is_ok()) return parent.status();
    if (!inodes.at(*parent).is_dir) return Status::io_error(path + ": parent is not a directory");
    return std::make_pair(*parent, parts.back());
  }

  // Consumes an armed fault matching this operation and path, if any; and
  // arms the faults this operation triggers, once it has gone through.
  Status take_fault(FsOperation operation, const std::string& path) {
    Status status = take_armed_fault(operation, path);
    if (!status.is_ok()) return status;
    for (Fault& fault : faults) {
      if (fault.trigger && *fault.trigger == operation &&
          path.find(fault.trigger_path) != std::string::npos) {
        fault.trigger.reset();
      }
    }
    return Status::ok();
  }

  Status take_armed_fault(FsOperation operation, const std::string& path) {
    for (auto it = faults.begin(); it != faults.end(); ++it) {
      if (it->trigger) continue;
      if (it->operation == operation && path.find(it->path_part) != std::string::npos) {
        if (it->skip > 0) {
          --it->skip;
          continue;
        }
        faults.erase(it);
        return Status::io_error(std::string("injected failure: ") + operation_name(operation) +
                                " " + path + ": Input/output error");
      }
    }
    return Status::ok();
  }

  std::uint64_t used_bytes() const {
    std::uint64_t used = 0;
    for (const auto& [id, inode] : inodes) {
      if (!inode.is_dir && inode.links > 0) used += inode.current.size();
    }
    return used;
  }

  // Fails, like a full disk, if growing a linked file from `old_size` to
  // `new_size` would exceed the capacity.
  Status check_space(const Inode& inode, std::uint64_t new_size, const char* what,
                     const std::string& path) const {
    if (new_size <= inode.current.size() || inode.links == 0) return Status::ok();
    const std::uint64_t used = used_bytes();
    if (used + (new_size - inode.current.size()) <= capacity_bytes) return Status::ok();
    return Status::io_error(std::string(what) + " " + path + ": no space left on device (ENOSPC)");
  }

  void add_entry(InodeId dir, const std::string& name, InodeId inode) {
    Inode& parent = inodes.at(dir);
    parent.current_entries[name] = inode;
    parent.pending_entries.push_back({DirChange::Kind::kAdd, name, {}, inode});
    ++inodes.at(inode).links;
  }

  void crash(const CrashPlan& plan);
  void collect_garbage();
  void release_if_unreferenced(InodeId id);
};

void SimFileSystem::Disk::crash(const CrashPlan& plan) {
  for (auto& [id, inode] : inodes) {
    if (inode.is_dir) {
      if (auto kept = plan.dirs.find(id); kept != plan.dirs.end()) {
        replay_entries(inode.durable_entries, kept->second);
      }
      inode.current_entries = inode.durable_entries;
      inode.pending_entries.clear();
    } else {
      if (auto kept = plan.files.find(id); kept != plan.files.end()) {
        replay(inode.durable, kept->second);
      }
      inode.current = inode.durable;
      inode.pending.clear();
    }
  }
  collect_garbage();
  ++generation;
}

// After a crash only what the durable directory tree reaches exists.
void SimFileSystem::Disk::collect_garbage() {
  std::set<InodeId> reachable{kRootInode};
  std::vector<InodeId> stack{kRootInode};
  for (auto& [id, inode] : inodes) {
    inode.links = 0;
    inode.open_handles = 0;  // every handle is stale now
  }
  inodes.at(kRootInode).links = 1;
  while (!stack.empty()) {
    const InodeId dir = stack.back();
    stack.pop_back();
    for (const auto& [name, child] : inodes.at(dir).current_entries) {
      ++inodes.at(child).links;
      if (reachable.insert(child).second && inodes.at(child).is_dir) stack.push_back(child);
    }
  }
  std::erase_if(inodes, [&](const auto& item) { return reachable.count(item.first) == 0; });
}

// Frees a removed file once nothing can reach it any more: no name in the
// current view, none in any durable directory (a crash could bring it
// back), no open handle. Without this a long simulation would keep every
// deleted segment in memory.
void SimFileSystem::Disk::release_if_unreferenced(InodeId id) {
  auto found = inodes.find(id);
  if (found == inodes.end() || id == kRootInode) return;
  const Inode& inode = found->second;
  if (inode.links > 0 || inode.open_handles > 0) return;
  for (const auto& [other_id, other] : inodes) {
    if (!other.is_dir) continue;
    for (const auto& [name, child] : other.durable_entries) {
      if (child == id) return;
    }
  }
  inodes.erase(found);
}

namespace {

class SimFile final : public File {
 public:
  SimFile(std::shared_ptr<SimFileSystem::Disk> disk, std::string path, InodeId inode, bool writable)
      : disk_(std::move(disk)),
        path_(std::move(path)),
        inode_(inode),
        generation_(disk_->generation),
        writable_(writable) {
    ++disk_->inodes.at(inode_).open_handles;  // the caller holds the mutex
  }
  ~SimFile() override {
    std::lock_guard lock(disk_->mutex);
    if (generation_ != disk_->generation) return;  // its inode died or was reset by a crash
    auto found = disk_->inodes.find(inode_);
    if (found == disk_->inodes.end()) return;
    --found->second.open_handles;
    disk_->release_if_unreferenced(inode_);
  }
  SimFile(const SimFile&) = delete;
  SimFile& operator=(const SimFile&) = delete;

  const std::string& path() const override { return path_; }

  Status write_at(std::uint64_t offset, std::string_view bytes) override {
    std::lock_guard lock(disk_->mutex);
    Result<Inode*> inode = writable_inode("write");
    if (!inode.is_ok()) return inode.status();
    if (Status fault = disk_->take_fault(FsOperation::kWrite, path_); !fault.is_ok()) {
      // A pwrite that fails midway has written some of its bytes.
      if (disk_->fidelity.failed_write_is_partial && !bytes.empty()) {
        const std::uint64_t written = disk_->prng.uniform(0, bytes.size());
        if (written > 0 && disk_->check_space(**inode, offset + written, "write", path_).is_ok()) {
          write_pending(**inode, offset, bytes.substr(0, written));
        }
      }
      return fault;
    }
    Status space = disk_->check_space(**inode, offset + bytes.size(), "write", path_);
    if (!space.is_ok()) return space;
    write_pending(**inode, offset, bytes);
    ++disk_->counters.writes;
    disk_->counters.bytes_written += bytes.size();
    return Status::ok();
  }

  Status append(std::string_view bytes) override {
    std::uint64_t end = 0;
    {
      std::lock_guard lock(disk_->mutex);
      Result<Inode*> inode = live_inode("append");
      if (!inode.is_ok()) return inode.status();
      end = (*inode)->current.size();
    }
    return write_at(end, bytes);
  }

  Result<std::size_t> read_at(std::uint64_t offset, std::span<char> out) const override {
    std::lock_guard lock(disk_->mutex);
    Result<Inode*> inode = live_inode("read");
    if (!inode.is_ok()) return inode.status();
    const std::string& content = (*inode)->current;
    if (offset >= content.size()) return std::size_t{0};
    const std::size_t count = std::min<std::size_t>(out.size(), content.size() - offset);
    std::copy_n(content.data() + offset, count, out.data());
    return count;
  }

  Result<std::uint64_t> size() const override {
    std::lock_guard lock(disk_->mutex);
    Result<Inode*> inode = live_inode("stat");
    if (!inode.is_ok()) return inode.status();
    return static_cast<std::uint64_t>((*inode)->current.size());
  }

  Status allocate(std::uint64_t size_bytes) override {
    return resize(FsOperation::kAllocate, "fallocate", size_bytes, /*grow_only=*/true);
  }

  Status truncate(std::uint64_t size_bytes) override {
    return resize(FsOperation::kTruncate, "ftruncate", size_bytes, /*grow_only=*/false);
  }

  Status sync_data() override { return sync(); }

  Status sync() override {
    std::lock_guard lock(disk_->mutex);
    Result<Inode*> inode = live_inode("fsync");
    if (!inode.is_ok()) return inode.status();
    if (Status fault = disk_->take_fault(FsOperation::kSync, path_); !fault.is_ok()) {
      // Linux marks the pages clean once it has reported the error: they
      // stay readable until evicted, and never reach the disk.
      if (disk_->fidelity.failed_sync_drops_writes) (*inode)->pending.clear();
      return fault;
    }
    // Replaying the pending changes costs what was written since the last
    // sync; copying `current` would cost the whole (preallocated) file.
    replay((*inode)->durable, (*inode)->pending);
    (*inode)->pending.clear();
    ++disk_->counters.file_syncs;
    return Status::ok();
  }

 private:
  Status resize(FsOperation operation, const char* what, std::uint64_t size_bytes, bool grow_only) {
    std::lock_guard lock(disk_->mutex);
    Result<Inode*> inode = writable_inode(what);
    if (!inode.is_ok()) return inode.status();
    if (Status fault = disk_->take_fault(operation, path_); !fault.is_ok()) return fault;
    if (grow_only && (*inode)->current.size() >= size_bytes) return Status::ok();
    Status space = disk_->check_space(**inode, size_bytes, what, path_);
    if (!space.is_ok()) return space;
    (*inode)->current.resize(size_bytes, '\0');
    (*inode)->pending.push_back({FileChange::Kind::kResize, 0, {}, size_bytes});
    return Status::ok();
  }

  // Caller holds the mutex.
  static void write_pending(Inode& inode, std::uint64_t offset, std::string_view bytes) {
    apply_write(inode.current, offset, bytes);
    inode.pending.push_back({FileChange::Kind::kWrite, offset, std::string(bytes), 0});
  }

  // Caller holds the mutex.
  Result<Inode*> live_inode(const char* what) const {
    if (generation_ != disk_->generation) {
      return Status::io_error(std::string(what) + " " + path_ +
                              ": stale handle (the disk crashed after it was opened)");
    }
    return &disk_->inodes.at(inode_);
  }

  Result<Inode*> writable_inode(const char* what) const {
    if (!writable_) return Status::io_error(std::string(what) + " " + path_ + ": opened read-only");
    return live_inode(what);
  }

  std::shared_ptr<SimFileSystem::Disk> disk_;
  std::string path_;
  InodeId inode_;
  std::uint64_t generation_;
  bool writable_;
};

}  // namespace

SimFileSystem::SimFileSystem(std::uint64_t seed, SimFsFidelity fidelity)
    : disk_(std::make_shared<Disk>(seed, fidelity)) {}

SimFileSystem::~SimFileSystem() = default;

Result<std::unique_ptr<File>> SimFileSystem::open(const std::string& path, OpenMode mode) {
  std::lock_guard lock(disk_->mutex);
  if (mode != OpenMode::kCreateNew) {
    Result<InodeId> inode = disk_->lookup(path);
    if (!inode.is_ok()) return inode.status();
    if (disk_->inodes.at(*inode).is_dir)
      return Status::io_error("open " + path + ": is a directory");
    return std::unique_ptr<File>(
        std::make_unique<SimFile>(disk_, path, *inode, mode == OpenMode::kReadWrite));
  }
  if (Status fault = disk_->take_fault(FsOperation::kCreate, path); !fault.is_ok()) return fault;
  Result<std::pair<InodeId, std::string>> parent = disk_->lookup_parent(path);
  if (!parent.is_ok()) return parent.status();
  if (disk_->inodes.at(parent->first).current_entries.count(parent->second) != 0) {
    return Status::io_error("create " + path + ": file exists");
  }
  const InodeId inode = disk_->next_inode++;
  disk_->inodes[inode];
  disk_->add_entry(parent->first, parent->second, inode);
  return std::unique_ptr<File>(std::make_unique<SimFile>(disk_, path, inode, true));
}

Status SimFileSystem::create_dir(const std::string& path) {
  std::lock_guard lock(disk_->mutex);
  Result<InodeId> existing = disk_->lookup(path);
  if (existing.is_ok()) {
    if (disk_->inodes.at(*existing).is_dir) return Status::ok();
    return Status::io_error("mkdir " + path + ": exists and is not a directory");
  }
  if (Status fault = disk_->take_fault(FsOperation::kCreate, path); !fault.is_ok()) return fault;
  Result<std::pair<InodeId, std::string>> parent = disk_->lookup_parent(path);
  if (!parent.is_ok()) return parent.status();
  const InodeId inode = disk_->next_inode++;
  disk_->inodes[inode].is_dir = true;
  disk_->add_entry(parent->first, parent->second, inode);
  return Status::ok();
}

Result<std::vector<std::string>> SimFileSystem::list_dir(const std::string& path) const {
  std::lock_guard lock(disk_->mutex);
  Result<InodeId> inode = disk_->lookup(path);
  if (!inode.is_ok()) return inode.status();
  const Inode& dir = disk_->inodes.at(*inode);
  if (!dir.is_dir) return Status::io_error("opendir " + path + ": not a directory");
  std::vector<std::string> names;
  for (const auto& [name, child] : dir.current_entries) names.push_back(name);
  return names;
}

Result<bool> SimFileSystem::is_dir(const std::string& path) const {
  std::lock_guard lock(disk_->mutex);
  Result<InodeId> inode = disk_->lookup(path);
  if (!inode.is_ok()) return false;
  return disk_->inodes.at(*inode).is_dir;
}

Result<bool> SimFileSystem::exists(const std::string& path) const {
  std::lock_guard lock(disk_->mutex);
  return disk_->lookup(path).is_ok();
}

Status SimFileSystem::rename(const std::string& from, const std::string& to) {
  std::lock_guard lock(disk_->mutex);
  if (parent_dir(from) != parent_dir(to)) {
    return Status::invalid_argument("rename " + from + " to " + to + ": not in the same directory");
  }
  if (Status fault = disk_->take_fault(FsOperation::kRename, from); !fault.is_ok()) return fault;
  Result<std::pair<InodeId, std::string>> source = disk_->lookup_parent(from);
  if (!source.is_ok()) return source.status();
  Inode& dir = disk_->inodes.at(source->first);
  auto moved = dir.current_entries.find(source->second);
  if (moved == dir.current_entries.end())
    return Status::not_found("rename " + from + ": no such file");
  const std::string target = split_path(to).back();
  const InodeId inode = moved->second;
  auto replaced = dir.current_entries.find(target);
  if (replaced != dir.current_entries.end()) {
    if (replaced->second == inode) return Status::ok();
    const Inode& old = disk_->inodes.at(replaced->second);
    if (old.is_dir && !old.current_entries.empty()) {
      return Status::io_error("rename to " + to + ": directory not empty");
    }
    --disk_->inodes.at(replaced->second).links;
  }
  dir.current_entries.erase(source->second);
  dir.current_entries[target] = inode;
  dir.pending_entries.push_back({DirChange::Kind::kRename, source->second, target, inode});
  return Status::ok();
}

Status SimFileSystem::remove(const std::string& path) {
  std::lock_guard lock(disk_->mutex);
  if (Status fault = disk_->take_fault(FsOperation::kRemove, path); !fault.is_ok()) return fault;
  Result<std::pair<InodeId, std::string>> parent = disk_->lookup_parent(path);
  if (!parent.is_ok()) return parent.status();
  Inode& dir = disk_->inodes.at(parent->first);
  auto entry = dir.current_entries.find(parent->second);
  if (entry == dir.current_entries.end())
    return Status::not_found("remove " + path + ": no such file");
  Inode& removed = disk_->inodes.at(entry->second);
  if (removed.is_dir && !removed.current_entries.empty()) {
    return Status::io_error("remove " + path + ": directory not empty");
  }
  --removed.links;
  dir.pending_entries.push_back({DirChange::Kind::kRemove, parent->second, {}, entry->second});
  dir.current_entries.erase(entry);
  return Status::ok();
}

Status SimFileSystem::sync_dir(const std::string& path) {
  std::lock_guard lock(disk_->mutex);
  if (Status fault = disk_->take_fault(FsOperation::kSyncDir, path); !fault.is_ok()) return fault;
  Result<InodeId> inode = disk_->lookup(path);
  if (!inode.is_ok()) return inode.status();
  Inode& dir = disk_->inodes.at(*inode);
  if (!dir.is_dir) return Status::io_error("fsync directory " + path + ": not a directory");
  std::vector<InodeId> dropped;
  for (const auto& [name, child] : dir.durable_entries) {
    auto now = dir.current_entries.find(name);
    if (now == dir.current_entries.end() || now->second != child) dropped.push_back(child);
  }
  dir.durable_entries = dir.current_entries;
  dir.pending_entries.clear();
  ++disk_->counters.dir_syncs;
  for (InodeId child : dropped) disk_->release_if_unreferenced(child);
  return Status::ok();
}

void SimFileSystem::crash() {
  std::lock_guard lock(disk_->mutex);
  disk_->crash(CrashPlan{});
}

void SimFileSystem::crash_and_tear() {
  std::lock_guard lock(disk_->mutex);
  CrashPlan plan;
  const SimFsFidelity& fidelity = disk_->fidelity;
  core::Prng& prng = disk_->prng;
  for (const auto& [id, inode] : disk_->inodes) {
    if (inode.is_dir) {
      std::vector<DirChange>& kept = plan.dirs[id];
      if (fidelity.crash_reorders) {
        for (const DirChange& change : inode.pending_entries) {
          if (prng.uniform(0, 2) == 1) kept.push_back(change);
        }
      } else {
        const std::size_t count = prng.uniform(0, inode.pending_entries.size() + 1);
        kept.assign(inode.pending_entries.begin(),
                    inode.pending_entries.begin() + static_cast<std::ptrdiff_t>(count));
      }
    } else if (fidelity.crash_reorders) {
      plan.files[id] = sectors_kept(inode.pending, fidelity.sector_bytes, prng);
    } else {
      std::uint64_t units = write_bytes(inode.pending);
      for (const FileChange& change : inode.pending) {
        if (change.kind == FileChange::Kind::kResize) ++units;
      }
      plan.files[id] = prefix_of(inode.pending, prng.uniform(0, units + 1), /*resize_cost=*/1);
    }
  }
  disk_->crash(plan);
}

void SimFileSystem::crash_keeping_unsynced_bytes(const std::string& path, std::uint64_t bytes) {
  std::lock_guard lock(disk_->mutex);
  CrashPlan plan;
  Result<InodeId> inode = disk_->lookup(path);
  if (inode.is_ok()) plan.files[*inode] = prefix_of(disk_->inodes.at(*inode).pending, bytes, 0);
  disk_->crash(plan);
}

std::uint64_t SimFileSystem::unsynced_bytes(const std::string& path) const {
  std::lock_guard lock(disk_->mutex);
  Result<InodeId> inode = disk_->lookup(path);
  if (!inode.is_ok()) return 0;
  return write_bytes(disk_->inodes.at(*inode).pending);
}

void SimFileSystem::fail_next(FsOperation operation, std::string path_part, std::uint64_t skip) {
  std::lock_guard lock(disk_->mutex);
  disk_->faults.push_back({operation, std::move(path_part), skip, std::nullopt, {}});
}

void SimFileSystem::fail_next_after(FsOperation trigger, std::string trigger_path,
                                    FsOperation operation, std::string path_part) {
  std::lock_guard lock(disk_->mutex);
  disk_->faults.push_back({operation, std::move(path_part), 0, trigger, std::move(trigger_path)});
}

void SimFileSystem::clear_faults() {
  std::lock_guard lock(disk_->mutex);
  disk_->faults.clear();
}

void SimFileSystem::set_capacity_bytes(std::uint64_t capacity_bytes) {
  std::lock_guard lock(disk_->mutex);
  disk_->capacity_bytes = capacity_bytes;
}

std::uint64_t SimFileSystem::used_bytes() const {
  std::lock_guard lock(disk_->mutex);
  return disk_->used_bytes();
}

Result<std::string> SimFileSystem::contents(const std::string& path) const {
  std::lock_guard lock(disk_->mutex);
  Result<InodeId> inode = disk_->lookup(path);
  if (!inode.is_ok()) return inode.status();
  if (disk_->inodes.at(*inode).is_dir) return Status::invalid_argument(path + ": is a directory");
  return disk_->inodes.at(*inode).current;
}

Status SimFileSystem::corrupt(const std::string& path, std::uint64_t offset, std::uint8_t mask) {
  std::lock_guard lock(disk_->mutex);
  Result<InodeId> inode = disk_->lookup(path);
  if (!inode.is_ok()) return inode.status();
  Inode& file = disk_->inodes.at(*inode);
  if (file.is_dir || offset >= file.current.size()) {
    return Status::invalid_argument("corrupt " + path + ": offset " + std::to_string(offset) +
                                    " is outside the file");
  }
  file.current[offset] = static_cast<char>(file.current[offset] ^ static_cast<char>(mask));
  if (offset < file.durable.size()) {
    file.durable[offset] = static_cast<char>(file.durable[offset] ^ static_cast<char>(mask));
  }
  return Status::ok();
}

SimFsCounters SimFileSystem::counters() const {
  std::lock_guard lock(disk_->mutex);
  return disk_->counters;
}

}  // namespace keel::storage
