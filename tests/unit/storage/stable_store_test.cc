// FileStableStore: values survive reopen and crashes, a set() interrupted at
// any step leaves the old value or the new one (never a mixture or nothing),
// and damage is reported, never read as an empty store.
#include <gtest/gtest.h>

#include "storage_test_util.h"

namespace keel::storage {
namespace {

using testing::TempDir;

constexpr char kDir[] = "/node/stable";

std::shared_ptr<FileStableStore> open_stable(const std::shared_ptr<SimFileSystem>& fs) {
  Result<std::shared_ptr<FileStableStore>> store = open_file_stable_store(kDir, {}, fs);
  EXPECT_TRUE(store.is_ok()) << store.status();
  return store.is_ok() ? std::move(store).value() : nullptr;
}

std::string get(const StableStore& store, const std::string& key) {
  Result<std::string> value = store.get(key);
  return value.is_ok() ? *value : "<" + std::string(to_string(value.status().code())) + ">";
}

TEST(FileStableStore, ValuesSurviveReopenAndACrash) {
  auto fs = std::make_shared<SimFileSystem>(1);
  auto store = open_stable(fs);
  EXPECT_EQ(store->get("term").status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(store->set("term", "5").is_ok());
  ASSERT_TRUE(store->set("vote", "2").is_ok());
  ASSERT_TRUE(store->set("term", "6").is_ok());
  ASSERT_TRUE(store->set_uint64("n", 1234567890123ULL).is_ok());
  store.reset();
  fs->crash();
  store = open_stable(fs);
  ASSERT_TRUE(store);
  EXPECT_EQ(get(*store, "term"), "6");
  EXPECT_EQ(get(*store, "vote"), "2");
  EXPECT_EQ(*store->get_uint64("n"), 1234567890123ULL);
}

TEST(FileStableStore, WorksOnTheRealDisk) {
  TempDir dir;
  Result<std::shared_ptr<FileStableStore>> store = FileStableStore::open(dir / "stable");
  ASSERT_TRUE(store.is_ok()) << store.status();
  ASSERT_TRUE((*store)->set("keel.hard_state", std::string("\x01\x05\x02\x00", 4)).is_ok());
  store = FileStableStore::open(dir / "stable");
  ASSERT_TRUE(store.is_ok());
  EXPECT_EQ(get(**store, "keel.hard_state"), std::string("\x01\x05\x02\x00", 4));
}

// Each step of set() fails in turn, then the disk crashes and tears what was
// not synced. The value read back is the old or the new one; the store that
// saw the failure refuses every later set (fail-stop).
TEST(FileStableStore, ASetInterruptedAtAnyStepLeavesTheOldOrTheNewValue) {
  const FsOperation steps[] = {FsOperation::kCreate, FsOperation::kWrite, FsOperation::kSync,
                               FsOperation::kRename, FsOperation::kSyncDir};
  for (FsOperation step : steps) {
    for (std::uint64_t seed = 1; seed <= 20; ++seed) {
      auto fs = std::make_shared<SimFileSystem>(seed);
      auto store = open_stable(fs);
      ASSERT_TRUE(store->set("term", "old").is_ok());
      fs->fail_next(step, kDir);
      ASSERT_EQ(store->set("term", "new").code(), StatusCode::kIoError);
      EXPECT_EQ(store->set("term", "newer").code(), StatusCode::kIoError) << "fail-stop";
      store.reset();
      fs->crash_and_tear();
      store = open_stable(fs);
      ASSERT_TRUE(store) << "step " << int(step) << " seed " << seed;
      const std::string value = get(*store, "term");
      EXPECT_TRUE(value == "old" || value == "new") << value;
      if (step != FsOperation::kSyncDir) {
        EXPECT_EQ(value, "old");
      }
      EXPECT_FALSE(*fs->exists(std::string(kDir) + "/stable.tmp"));
    }
  }
}

TEST(FileStableStore, ACrashAtEveryByteOfTheTemporaryFileKeepsTheOldValue) {
  for (std::uint64_t kept = 0; kept < 64; ++kept) {
    auto fs = std::make_shared<SimFileSystem>(1);
    auto store = open_stable(fs);
    ASSERT_TRUE(store->set("term", "old").is_ok());
    fs->fail_next(FsOperation::kSync, "stable.tmp");
    ASSERT_FALSE(store->set("term", "a much longer new value").is_ok());
    store.reset();
    fs->crash_keeping_unsynced_bytes(std::string(kDir) + "/stable.tmp", kept);
    store = open_stable(fs);
    ASSERT_TRUE(store);
    EXPECT_EQ(get(*store, "term"), "old") << "kept " << kept;
  }
}

TEST(FileStableStore, ADamagedFileIsCorruptionNeverAnEmptyStore) {
  auto fs = std::make_shared<SimFileSystem>(1);
  ASSERT_TRUE(open_stable(fs)->set("vote", "3").is_ok());
  ASSERT_TRUE(fs->corrupt(std::string(kDir) + "/stable", 3, 0x20).is_ok());
  Result<std::shared_ptr<FileStableStore>> store = open_file_stable_store(kDir, {}, fs);
  ASSERT_FALSE(store.is_ok());
  EXPECT_EQ(store.status().code(), StatusCode::kCorruption);
  EXPECT_NE(store.status().message().find("/node/stable/stable"), std::string::npos);
}

}  // namespace
}  // namespace keel::storage
