// Snapshot stores, memory and file: a snapshot appears whole at commit or
// not at all, it is kept until removed, and a bad checksum never opens as
// good.
#include <functional>
#include <map>

#include <gtest/gtest.h>

#include "storage_test_util.h"

namespace keel::storage {
namespace {

using testing::TempDir;

constexpr char kDir[] = "/node/snapshots";

SnapshotMeta meta_at(std::uint64_t index, std::uint64_t term = 1) {
  SnapshotMeta meta;
  meta.index = Index(index);
  meta.term = Term(term);
  meta.configuration.servers = {Server{ServerId(1), "a:1", Suffrage::kVoter},
                                Server{ServerId(2), "b:2", Suffrage::kLearner}};
  meta.configuration_index = Index(index > 2 ? index - 2 : 1);
  return meta;
}

std::string bytes_for(std::uint64_t index) {
  std::string bytes;
  for (std::uint64_t i = 0; i < 5000 + index; ++i)
    bytes.push_back(static_cast<char>('a' + (i * index) % 26));
  return bytes;
}

Result<SnapshotMeta> save(SnapshotStore& store, std::uint64_t index, std::uint64_t term = 1) {
  Result<std::unique_ptr<SnapshotSink>> sink = store.create(meta_at(index, term));
  if (!sink.is_ok()) return sink.status();
  const std::string bytes = bytes_for(index);
  for (std::size_t at = 0; at < bytes.size(); at += 777) {
    Status written = (*sink)->write(std::string_view(bytes).substr(at, 777));
    if (!written.is_ok()) return written;
  }
  return (*sink)->commit();
}

// Reads a whole snapshot in small pieces; the status of the last read.
Status read_all(SnapshotReader& reader, std::string& out) {
  char buffer[1000];
  while (true) {
    Result<std::size_t> count = reader.read(std::span<char>(buffer, sizeof buffer));
    if (!count.is_ok()) return count.status();
    out.append(buffer, *count);
    if (*count == 0) return Status::ok();
  }
}

struct Backend {
  const char* name;
  // A store over the same durable state each time it is called.
  std::function<std::shared_ptr<SnapshotStore>()> open;
  // Flips a bit in the bytes of snapshot `id`.
  std::function<void(const std::string& id)> corrupt;
};

class SnapshotStores : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    if (GetParam() == 0) {
      backend_ = Backend{
          "memory",
          [this] {
            if (!memory_) memory_ = std::make_shared<MemorySnapshotStore>();
            return memory_;
          },
          [this](const std::string& id) { ASSERT_TRUE(memory_->corrupt(id, 100, 1).is_ok()); }};
    } else {
      backend_ = Backend{
          "file",
          [this]() -> std::shared_ptr<SnapshotStore> {
            FileSnapshotStoreOptions options;
            options.write_buffer_bytes = 1000;
            auto store = open_file_snapshot_store(kDir, options, fs_);
            EXPECT_TRUE(store.is_ok()) << store.status();
            return store.is_ok() ? std::move(store).value() : nullptr;
          },
          [this](const std::string& id) {
            ASSERT_TRUE(fs_->corrupt(std::string(kDir) + "/" + id + "/data", 100, 1).is_ok());
          }};
    }
  }

  Backend backend_;
  std::shared_ptr<MemorySnapshotStore> memory_;
  std::shared_ptr<SimFileSystem> fs_ = std::make_shared<SimFileSystem>(1);
};

TEST_P(SnapshotStores, ACommittedSnapshotListsAndReadsBackWhole) {
  auto store = backend_.open();
  Result<SnapshotMeta> saved = save(*store, 10, 3);
  ASSERT_TRUE(saved.is_ok()) << saved.status();
  EXPECT_EQ(saved->size_bytes, bytes_for(10).size());
  Result<SnapshotList> listed = store->list();
  ASSERT_TRUE(listed.is_ok());
  ASSERT_EQ(listed->snapshots.size(), 1u);
  EXPECT_EQ(listed->snapshots.front(), *saved);
  Result<SnapshotStore::Opened> opened = store->open(saved->id);
  ASSERT_TRUE(opened.is_ok()) << opened.status();
  EXPECT_EQ(opened->meta, *saved);
  std::string bytes;
  ASSERT_TRUE(read_all(*opened->reader, bytes).is_ok());
  EXPECT_EQ(bytes, bytes_for(10));
}

TEST_P(SnapshotStores, KeepsEverySnapshotUntilRemoved) {
  auto store = backend_.open();
  std::map<std::uint64_t, std::string> ids;
  for (std::uint64_t index : {10, 20, 30, 40, 50}) {
    Result<SnapshotMeta> saved = save(*store, index);
    ASSERT_TRUE(saved.is_ok()) << saved.status();
    ids[index] = saved->id;
  }
  ASSERT_EQ(store->list()->snapshots.size(), 5u);
  // A reader opened before the removal reads on to its end.
  Result<SnapshotStore::Opened> open_before = store->open(ids[20]);
  ASSERT_TRUE(open_before.is_ok()) << open_before.status();
  ASSERT_TRUE(store->remove(ids[10]).is_ok());
  ASSERT_TRUE(store->remove(ids[20]).is_ok());
  EXPECT_EQ(store->remove(ids[20]).code(), StatusCode::kNotFound);
  EXPECT_EQ(store->open(ids[20]).status().code(), StatusCode::kNotFound);
  Result<SnapshotList> listed = store->list();
  ASSERT_TRUE(listed.is_ok());
  ASSERT_EQ(listed->snapshots.size(), 3u);
  EXPECT_EQ(listed->snapshots[0].index, Index(50));
  EXPECT_EQ(listed->snapshots[1].index, Index(40));
  EXPECT_EQ(listed->snapshots[2].index, Index(30));
  std::string bytes;
  ASSERT_TRUE(read_all(*open_before->reader, bytes).is_ok());
  EXPECT_EQ(bytes, bytes_for(20));
  // Reopened (the same durable state), the removals hold.
  store = backend_.open();
  EXPECT_EQ(store->list()->snapshots.size(), 3u);
}

TEST_P(SnapshotStores, ABadChecksumNeverOpensAsGood) {
  auto store = backend_.open();
  Result<SnapshotMeta> saved = save(*store, 7);
  ASSERT_TRUE(saved.is_ok());
  backend_.corrupt(saved->id);
  Result<SnapshotStore::Opened> opened = store->open(saved->id);
  ASSERT_FALSE(opened.is_ok());
  EXPECT_EQ(opened.status().code(), StatusCode::kCorruption);
}

TEST_P(SnapshotStores, AnUncommittedSnapshotIsInvisible) {
  auto store = backend_.open();
  Result<std::unique_ptr<SnapshotSink>> sink = store->create(meta_at(5));
  ASSERT_TRUE(sink.is_ok());
  ASSERT_TRUE((*sink)->write("partial").is_ok());
  EXPECT_TRUE(store->list()->snapshots.empty());
  EXPECT_EQ(store->open((*sink)->id()).status().code(), StatusCode::kNotFound);
  (*sink)->cancel();
  EXPECT_TRUE(store->list()->snapshots.empty());
}

TEST_P(SnapshotStores, UnknownIdsAreNotFound) {
  auto store = backend_.open();
  EXPECT_EQ(store->open("snap-nope").status().code(), StatusCode::kNotFound);
}

INSTANTIATE_TEST_SUITE_P(MemoryAndFile, SnapshotStores, ::testing::Values(0, 1),
                         [](const ::testing::TestParamInfo<int>& param) {
                           return param.param == 0 ? std::string("Memory") : std::string("File");
                         });

std::shared_ptr<FileSnapshotStore> open_file_store(const std::shared_ptr<SimFileSystem>& fs) {
  auto store = open_file_snapshot_store(kDir, {}, fs);
  EXPECT_TRUE(store.is_ok()) << store.status();
  return store.is_ok() ? std::move(store).value() : nullptr;
}

TEST(FileSnapshotStore, ACommittedSnapshotSurvivesACrash) {
  auto fs = std::make_shared<SimFileSystem>(1);
  Result<SnapshotMeta> saved = save(*open_file_store(fs), 12, 2);
  ASSERT_TRUE(saved.is_ok());
  fs->crash();
  auto store = open_file_store(fs);
  ASSERT_EQ(store->list()->snapshots.size(), 1u);
  Result<SnapshotStore::Opened> opened = store->open(saved->id);
  ASSERT_TRUE(opened.is_ok()) << opened.status();
  EXPECT_EQ(opened->meta, *saved);
}

// The memory store's reader holds its own copy, so only the file store can
// see its bytes change under an open reader.
TEST(FileSnapshotStore, DamageAfterOpenIsCaughtAtTheEndOfReading) {
  auto fs = std::make_shared<SimFileSystem>(1);
  auto store = open_file_store(fs);
  Result<SnapshotMeta> saved = save(*store, 7);
  ASSERT_TRUE(saved.is_ok());
  Result<SnapshotStore::Opened> opened = store->open(saved->id);
  ASSERT_TRUE(opened.is_ok());
  ASSERT_TRUE(fs->corrupt(std::string(kDir) + "/" + saved->id + "/data", 100, 1).is_ok());
  std::string bytes;
  EXPECT_EQ(read_all(*opened->reader, bytes).code(), StatusCode::kCorruption);
}

// A crash at any point before commit() returns leaves no snapshot, or the
// whole snapshot: never one that lists but cannot be read.
TEST(FileSnapshotStore, ACrashDuringCommitLeavesNothingOrTheWholeSnapshot) {
  const FsOperation steps[] = {FsOperation::kWrite, FsOperation::kSync, FsOperation::kCreate,
                               FsOperation::kSyncDir, FsOperation::kRename};
  for (FsOperation step : steps) {
    for (std::uint64_t seed = 1; seed <= 10; ++seed) {
      auto fs = std::make_shared<SimFileSystem>(seed);
      auto store = open_file_store(fs);
      ASSERT_TRUE(save(*store, 3).is_ok());
      fs->fail_next(step, std::string(kDir) + "/tmp-");
      EXPECT_FALSE(save(*store, 9).is_ok());
      store.reset();
      fs->crash_and_tear();
      store = open_file_store(fs);
      ASSERT_TRUE(store);
      const std::vector<SnapshotMeta> listed = store->list()->snapshots;
      for (const SnapshotMeta& meta : listed) {
        Result<SnapshotStore::Opened> opened = store->open(meta.id);
        ASSERT_TRUE(opened.is_ok()) << opened.status();
        std::string bytes;
        ASSERT_TRUE(read_all(*opened->reader, bytes).is_ok());
        EXPECT_EQ(bytes, bytes_for(meta.index.value));
      }
      EXPECT_EQ(store->list()->snapshots.front().index, Index(3));
      const std::vector<std::string> names = *fs->list_dir(kDir);
      for (const std::string& name : names) EXPECT_NE(name.rfind("tmp-", 0), 0u) << name;
    }
  }
}

TEST(FileSnapshotStore, WorksOnTheRealDisk) {
  TempDir dir;
  auto store = FileSnapshotStore::open(dir / "snapshots", {});
  ASSERT_TRUE(store.is_ok()) << store.status();
  Result<SnapshotMeta> saved = save(**store, 4);
  ASSERT_TRUE(saved.is_ok()) << saved.status();
  store = FileSnapshotStore::open(dir / "snapshots", {});
  ASSERT_TRUE(store.is_ok());
  Result<SnapshotStore::Opened> opened = (*store)->open(saved->id);
  ASSERT_TRUE(opened.is_ok()) << opened.status();
  std::string bytes;
  ASSERT_TRUE(read_all(*opened->reader, bytes).is_ok());
  EXPECT_EQ(bytes, bytes_for(4));
}

std::vector<std::uint64_t> listed_indices(const SnapshotStore& store) {
  std::vector<std::uint64_t> indices;
  const Result<SnapshotList> listed = store.list();
  EXPECT_TRUE(listed.is_ok()) << listed.status();
  if (!listed.is_ok()) return indices;
  for (const SnapshotMeta& meta : listed->snapshots) indices.push_back(meta.index.value);
  return indices;
}

void expect_fail_stop(SnapshotStore& store, const std::string& first_failure) {
  Result<SnapshotMeta> refused = save(store, 40);
  ASSERT_FALSE(refused.is_ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kIoError);
  EXPECT_NE(refused.status().message().find("fail-stop"), std::string::npos) << refused.status();
  EXPECT_NE(refused.status().message().find(first_failure), std::string::npos) << refused.status();
}

// The rename made the snapshot visible, the directory sync that would make
// it durable failed: commit() must not report it as committed, list() must
// not show it, and the store stops until it is reopened.
TEST(FileSnapshotStore, AFailedDirectorySyncAfterTheRenameFailsCommitAndHidesTheSnapshot) {
  auto fs = std::make_shared<SimFileSystem>(1);
  auto store = open_file_store(fs);
  ASSERT_TRUE(save(*store, 3).is_ok());
  fs->fail_next(FsOperation::kSyncDir, kDir, /*skip=*/1);  // the temporary dir's sync passes
  Result<SnapshotMeta> failed = save(*store, 9);
  ASSERT_FALSE(failed.is_ok());
  EXPECT_NE(failed.status().message().find("not durable"), std::string::npos) << failed.status();
  EXPECT_EQ(listed_indices(*store), std::vector<std::uint64_t>{3});
  expect_fail_stop(*store, "not durable");
  store = open_file_store(fs);
  ASSERT_TRUE(save(*store, 12).is_ok()) << "reopening recovers";
  EXPECT_EQ(listed_indices(*store), (std::vector<std::uint64_t>{12, 3}));
}

TEST(FileSnapshotStore, AFailedDataWriteStopsTheStore) {
  auto fs = std::make_shared<SimFileSystem>(1);
  auto store = open_file_store(fs);
  fs->fail_next(FsOperation::kWrite, "/tmp-");
  EXPECT_FALSE(save(*store, 9).is_ok());
  EXPECT_TRUE(store->list()->snapshots.empty());
  expect_fail_stop(*store, "injected failure: write");
}

// A removal that fails stops the store (its page cache may hold what the
// disk does not); what was committed before survives a crash.
TEST(FileSnapshotStore, AFailedRemovalStopsTheStore) {
  auto fs = std::make_shared<SimFileSystem>(1);
  auto store = open_file_store(fs);
  Result<SnapshotMeta> oldest = save(*store, 3);
  ASSERT_TRUE(oldest.is_ok());
  ASSERT_TRUE(save(*store, 9).is_ok());
  fs->fail_next(FsOperation::kRename, "/snap-");  // removal renames it away first
  Status removed = store->remove(oldest->id);
  ASSERT_FALSE(removed.is_ok());
  EXPECT_NE(removed.message().find("removing snapshot " + oldest->id), std::string::npos)
      << removed;
  expect_fail_stop(*store, "removing snapshot " + oldest->id);
  EXPECT_EQ(store->remove(oldest->id).code(), StatusCode::kIoError) << "removals refused too";
  store.reset();
  fs->crash();
  store = open_file_store(fs);
  EXPECT_EQ(listed_indices(*store), (std::vector<std::uint64_t>{9, 3}));
}

// A failure to create a snapshot's directory stops the store too.
TEST(FileSnapshotStore, AFailedDirectoryCreationStopsTheStore) {
  auto fs = std::make_shared<SimFileSystem>(1);
  auto store = open_file_store(fs);
  fs->fail_next(FsOperation::kCreate, "/tmp-snap-");  // its directory
  Result<std::unique_ptr<SnapshotSink>> sink = store->create(SnapshotMeta{});
  ASSERT_FALSE(sink.is_ok());
  expect_fail_stop(*store, "injected failure");
}

// Whatever a crash keeps of a failed commit's undo or of a failed removal,
// every snapshot that lists reads back whole.
TEST(FileSnapshotStore, ACrashAfterAFailedSyncOrRemovalNeverListsAnUnreadableSnapshot) {
  struct Fault {
    FsOperation operation;
    const char* path;
    std::uint64_t skip;
  };
  const Fault faults[] = {
      {FsOperation::kSyncDir, kDir, 1},  // the sync after the rename into place
      {FsOperation::kRemove, "/tmp-snap-", 0},
      {FsOperation::kRemove, "/tmp-snap-", 1},
      {FsOperation::kSyncDir, kDir, 2},  // the removal's sync of its rename
  };
  for (const Fault& fault : faults) {
    for (std::uint64_t seed = 1; seed <= 20; ++seed) {
      auto fs = std::make_shared<SimFileSystem>(seed);
      auto store = open_file_store(fs);
      Result<SnapshotMeta> oldest = save(*store, 3);
      ASSERT_TRUE(oldest.is_ok());
      ASSERT_TRUE(save(*store, 5).is_ok());
      fs->fail_next(fault.operation, fault.path, fault.skip);
      (void)save(*store, 9);
      (void)store->remove(oldest->id);
      store.reset();
      fs->crash_and_tear();
      store = open_file_store(fs);
      ASSERT_TRUE(store);
      Result<SnapshotList> listed = store->list();
      ASSERT_TRUE(listed.is_ok()) << listed.status();
      EXPECT_TRUE(listed->damaged.empty()) << listed->damaged.front().status;
      EXPECT_FALSE(listed->snapshots.empty());
      for (const SnapshotMeta& meta : listed->snapshots) {
        Result<SnapshotStore::Opened> opened = store->open(meta.id);
        ASSERT_TRUE(opened.is_ok()) << opened.status();
        std::string bytes;
        ASSERT_TRUE(read_all(*opened->reader, bytes).is_ok());
        EXPECT_EQ(bytes, bytes_for(meta.index.value));
      }
    }
  }
}

TEST(FileSnapshotStore, ASnapshotWithDamagedMetadataIsListedAsDamaged) {
  auto fs = std::make_shared<SimFileSystem>(1);
  auto store = open_file_store(fs);
  ASSERT_TRUE(save(*store, 3).is_ok());
  Result<SnapshotMeta> newest = save(*store, 5);
  ASSERT_TRUE(newest.is_ok());
  ASSERT_TRUE(fs->corrupt(std::string(kDir) + "/" + newest->id + "/meta", 6, 0x10).is_ok());
  Result<SnapshotList> listed = store->list();
  ASSERT_TRUE(listed.is_ok()) << listed.status();
  EXPECT_EQ(listed_indices(*store), std::vector<std::uint64_t>{3});
  ASSERT_EQ(listed->damaged.size(), 1u);
  EXPECT_EQ(listed->damaged[0].id, newest->id);
  EXPECT_EQ(listed->damaged[0].status.code(), StatusCode::kCorruption) << listed->damaged[0].status;
}

}  // namespace
}  // namespace keel::storage
