// MemorySnapshotStore (keel/snapshot_store.h): snapshots in memory, with the
// same contract as the file store (checksums verified at open and at the
// end of reading, kept until removed) so that tests of its users mean
// something.
#include <algorithm>
#include <map>
#include <mutex>

#include "core/crc32c.h"
#include "keel/snapshot_store.h"

namespace keel {

struct MemorySnapshotStore::State {
  struct Stored {
    SnapshotMeta meta;
    std::shared_ptr<const std::string> bytes;
  };

  std::mutex mutex;
  std::uint64_t next_sequence = 1;
  std::map<std::string, Stored> snapshots;  // ids sort oldest first
};

namespace {

using State = MemorySnapshotStore::State;

class MemorySink final : public SnapshotSink {
 public:
  MemorySink(std::shared_ptr<State> state, SnapshotMeta meta)
      : state_(std::move(state)), meta_(std::move(meta)) {}

  const std::string& id() const override { return meta_.id; }

  Status write(std::string_view bytes) override {
    if (done_)
      return Status::invalid_argument("snapshot " + meta_.id + ": already committed or cancelled");
    bytes_.append(bytes);
    return Status::ok();
  }

  Result<SnapshotMeta> commit() override {
    if (done_)
      return Status::invalid_argument("snapshot " + meta_.id + ": already committed or cancelled");
    done_ = true;
    meta_.size_bytes = bytes_.size();
    meta_.crc32c = core::crc32c(bytes_);
    std::lock_guard lock(state_->mutex);
    state_->snapshots[meta_.id] =
        State::Stored{meta_, std::make_shared<const std::string>(std::move(bytes_))};
    return meta_;
  }

  void cancel() override {
    done_ = true;
    bytes_.clear();
  }

 private:
  std::shared_ptr<State> state_;
  SnapshotMeta meta_;
  std::string bytes_;
  bool done_ = false;
};

class MemoryReader final : public SnapshotReader {
 public:
  MemoryReader(std::shared_ptr<const std::string> bytes, SnapshotMeta meta)
      : bytes_(std::move(bytes)), meta_(std::move(meta)) {}

  Result<std::size_t> read(std::span<char> out) override {
    const std::size_t count = std::min(out.size(), bytes_->size() - offset_);
    std::copy_n(bytes_->data() + offset_, count, out.data());
    crc_ = core::crc32c_extend(crc_, bytes_->data() + offset_, count);
    offset_ += count;
    if (offset_ == bytes_->size() && crc_ != meta_.crc32c) {
      return Status::corruption("snapshot " + meta_.id +
                                ": checksum mismatch at the end of reading");
    }
    return count;
  }

 private:
  std::shared_ptr<const std::string> bytes_;
  SnapshotMeta meta_;
  std::size_t offset_ = 0;
  std::uint32_t crc_ = 0;
};

}  // namespace

MemorySnapshotStore::MemorySnapshotStore() : state_(std::make_shared<State>()) {}

MemorySnapshotStore::~MemorySnapshotStore() = default;

Result<std::unique_ptr<SnapshotSink>> MemorySnapshotStore::create(const SnapshotMeta& meta) {
  SnapshotMeta started = meta;
  {
    std::lock_guard lock(state_->mutex);
    started.id = make_snapshot_id(meta.index, meta.term, state_->next_sequence++);
  }
  started.size_bytes = 0;
  started.crc32c = 0;
  return std::unique_ptr<SnapshotSink>(std::make_unique<MemorySink>(state_, std::move(started)));
}

Result<SnapshotList> MemorySnapshotStore::list() const {
  std::lock_guard lock(state_->mutex);
  SnapshotList listed;
  for (auto it = state_->snapshots.rbegin(); it != state_->snapshots.rend(); ++it) {
    listed.snapshots.push_back(it->second.meta);
  }
  return listed;
}

Result<SnapshotStore::Opened> MemorySnapshotStore::open(const std::string& id) {
  std::lock_guard lock(state_->mutex);
  auto found = state_->snapshots.find(id);
  if (found == state_->snapshots.end())
    return Status::not_found("snapshot " + id + ": no such snapshot");
  const State::Stored& stored = found->second;
  if (stored.bytes->size() != stored.meta.size_bytes ||
      core::crc32c(*stored.bytes) != stored.meta.crc32c) {
    return Status::corruption("snapshot " + id + ": checksum mismatch");
  }
  return Opened{stored.meta, std::make_unique<MemoryReader>(stored.bytes, stored.meta)};
}

Status MemorySnapshotStore::remove(const std::string& id) {
  std::lock_guard lock(state_->mutex);
  if (state_->snapshots.erase(id) == 0) {
    return Status::not_found("snapshot " + id + ": no such snapshot");
  }
  return Status::ok();
}

Status MemorySnapshotStore::corrupt(const std::string& id, std::uint64_t offset,
                                    std::uint8_t mask) {
  std::lock_guard lock(state_->mutex);
  auto found = state_->snapshots.find(id);
  if (found == state_->snapshots.end())
    return Status::not_found("snapshot " + id + ": no such snapshot");
  if (offset >= found->second.bytes->size())
    return Status::invalid_argument("corrupt: offset beyond the snapshot");
  std::string damaged = *found->second.bytes;
  damaged[offset] = static_cast<char>(damaged[offset] ^ static_cast<char>(mask));
  found->second.bytes = std::make_shared<const std::string>(std::move(damaged));
  return Status::ok();
}

}  // namespace keel
