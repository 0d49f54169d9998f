#include "runtime/snapshot_retention.h"

#include <utility>
#include <vector>

#include "core/check.h"

namespace keel::runtime {

// Commits through the store, then prunes.
class RetainingSnapshotStore::Sink final : public SnapshotSink {
 public:
  Sink(std::shared_ptr<RetainingSnapshotStore> owner, std::unique_ptr<SnapshotSink> sink)
      : owner_(std::move(owner)), sink_(std::move(sink)) {}

  const std::string& id() const override { return sink_->id(); }
  Status write(std::string_view bytes) override { return sink_->write(bytes); }
  Result<SnapshotMeta> commit() override {
    Result<SnapshotMeta> committed = sink_->commit();
    if (committed.is_ok()) owner_->prune(committed->id);
    return committed;
  }
  void cancel() override { sink_->cancel(); }

 private:
  std::shared_ptr<RetainingSnapshotStore> owner_;
  std::unique_ptr<SnapshotSink> sink_;
};

// Holds its snapshot back from pruning while it lives.
class RetainingSnapshotStore::Reader final : public SnapshotReader {
 public:
  Reader(std::shared_ptr<RetainingSnapshotStore> owner, std::string id,
         std::unique_ptr<SnapshotReader> reader)
      : owner_(std::move(owner)), id_(std::move(id)), reader_(std::move(reader)) {}
  // The store's reader closes first: until then the snapshot is held.
  ~Reader() override {
    reader_.reset();
    owner_->release(id_);
  }
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  Result<std::size_t> read(std::span<char> out) override { return reader_->read(out); }

 private:
  std::shared_ptr<RetainingSnapshotStore> owner_;
  std::string id_;
  std::unique_ptr<SnapshotReader> reader_;
};

std::shared_ptr<RetainingSnapshotStore> RetainingSnapshotStore::make(
    std::shared_ptr<SnapshotStore> store, std::size_t retain, Log log) {
  return std::shared_ptr<RetainingSnapshotStore>(
      new RetainingSnapshotStore(std::move(store), retain, std::move(log)));
}

RetainingSnapshotStore::RetainingSnapshotStore(std::shared_ptr<SnapshotStore> store,
                                               std::size_t retain, Log log)
    : store_(std::move(store)), retain_(retain), log_(std::move(log)) {
  KEEL_CHECK("at least one snapshot is retained (Config::validate)", retain_ >= 1);
}

Result<std::unique_ptr<SnapshotSink>> RetainingSnapshotStore::create(const SnapshotMeta& meta) {
  Result<std::unique_ptr<SnapshotSink>> sink = store_->create(meta);
  if (!sink.is_ok()) return sink.status();
  return std::unique_ptr<SnapshotSink>(
      std::make_unique<Sink>(shared_from_this(), std::move(sink).value()));
}

Status RetainingSnapshotStore::remove(const std::string& id) {
  std::lock_guard prune_lock(prune_mutex_);
  if (readers_open(id) != 0) {
    return Status::unavailable("snapshot " + id + " is open for reading; it cannot be removed now");
  }
  return store_->remove(id);
}

Result<SnapshotStore::Opened> RetainingSnapshotStore::open(const std::string& id) {
  // Counted before the store opens it, so that a prune running meanwhile
  // keeps it (one that already listed it may still remove it: then this
  // open fails with NotFound, or the reader reads on, as the store says).
  {
    std::lock_guard lock(readers_mutex_);
    ++readers_[id];
  }
  Result<Opened> opened = store_->open(id);
  if (!opened.is_ok()) {
    release(id);
    return opened.status();
  }
  opened->reader = std::make_unique<Reader>(shared_from_this(), id, std::move(opened->reader));
  return opened;
}

void RetainingSnapshotStore::release(const std::string& id) {
  std::lock_guard lock(readers_mutex_);
  auto it = readers_.find(id);
  if (it != readers_.end() && --it->second == 0) readers_.erase(it);
}

std::size_t RetainingSnapshotStore::readers_open(const std::string& id) const {
  std::lock_guard lock(readers_mutex_);
  auto it = readers_.find(id);
  return it == readers_.end() ? 0 : it->second;
}

void RetainingSnapshotStore::prune(const std::string& committed) {
  std::lock_guard prune_lock(prune_mutex_);
  Result<SnapshotList> listed = store_->list();
  if (!listed.is_ok()) {
    log_("cannot list its snapshots to remove old ones: " + listed.status().to_string());
    return;
  }
  std::vector<std::string> doomed;
  {
    std::lock_guard lock(readers_mutex_);
    // Newest first, by index then term: a follower's own snapshot committed
    // after a leader's newer one is older, and pruned at once but for the
    // exception below.
    const std::uint64_t applied = applied_.load();
    std::size_t kept = 0;
    for (const SnapshotMeta& meta : listed->snapshots) {
      if (meta.index.value > applied) continue;  // still to be restored from
      if (kept < retain_) {
        ++kept;
        continue;
      }
      // The one just committed stays: its caller was told it is there.
      if (meta.id != committed && !readers_.contains(meta.id)) doomed.push_back(meta.id);
    }
  }
  for (const std::string& id : doomed) {
    Status removed = store_->remove(id);
    if (removed.is_ok() || removed.code() == StatusCode::kNotFound) continue;
    log_("cannot remove snapshot " + id + " (Config::snapshot_retain): " + removed.to_string());
    return;
  }
}

}  // namespace keel::runtime
