// The simulated disk keeps exactly what was synced: file bytes after a file
// sync, directory entries after a directory sync. Everything else may be
// lost or torn by a crash, and faults fire on demand.
#include "storage/sim_fs.h"

#include <gtest/gtest.h>

namespace keel::storage {
namespace {

std::unique_ptr<File> create(SimFileSystem& fs, const std::string& path) {
  Result<std::unique_ptr<File>> file = fs.open(path, OpenMode::kCreateNew);
  EXPECT_TRUE(file.is_ok()) << file.status();
  return std::move(file).value();
}

std::string contents(const SimFileSystem& fs, const std::string& path) {
  Result<std::string> bytes = fs.contents(path);
  return bytes.is_ok() ? *bytes : "<" + bytes.status().to_string() + ">";
}

class SimFs : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs.create_dir("/d").is_ok());
    ASSERT_TRUE(fs.sync_dir("/").is_ok());
  }
  // A file whose directory entry is durable, holding `synced` durably.
  std::unique_ptr<File> durable_file(const std::string& path, const std::string& synced) {
    auto file = create(fs, path);
    EXPECT_TRUE(file->write_at(0, synced).is_ok());
    EXPECT_TRUE(file->sync().is_ok());
    EXPECT_TRUE(fs.sync_dir("/d").is_ok());
    return file;
  }

  SimFileSystem fs{42};
};

TEST_F(SimFs, AnUnsyncedWriteIsLostInACrash) {
  auto file = durable_file("/d/f", "synced");
  ASSERT_TRUE(file->append("+unsynced").is_ok());
  EXPECT_EQ(contents(fs, "/d/f"), "synced+unsynced");
  fs.crash();
  EXPECT_EQ(contents(fs, "/d/f"), "synced");
}

TEST_F(SimFs, ASyncedWriteSurvivesACrash) {
  auto file = durable_file("/d/f", "synced");
  ASSERT_TRUE(file->append("+more").is_ok());
  ASSERT_TRUE(file->sync_data().is_ok());
  fs.crash();
  EXPECT_EQ(contents(fs, "/d/f"), "synced+more");
}

TEST_F(SimFs, ACreatedFileWithoutADirectorySyncDisappearsInACrash) {
  auto file = create(fs, "/d/new");
  ASSERT_TRUE(file->write_at(0, "data").is_ok());
  ASSERT_TRUE(file->sync().is_ok());  // the bytes are durable, the name is not
  fs.crash();
  EXPECT_FALSE(*fs.exists("/d/new"));
}

TEST_F(SimFs, ARenameWithoutADirectorySyncIsUndoneByACrash) {
  auto old_file = durable_file("/d/state", "old");
  auto file = create(fs, "/d/state.tmp");
  ASSERT_TRUE(file->write_at(0, "new").is_ok());
  ASSERT_TRUE(file->sync().is_ok());
  ASSERT_TRUE(fs.rename("/d/state.tmp", "/d/state").is_ok());
  EXPECT_EQ(contents(fs, "/d/state"), "new");
  fs.crash();
  EXPECT_EQ(contents(fs, "/d/state"), "old");
}

TEST_F(SimFs, ARenameFollowedByADirectorySyncSurvives) {
  auto old_file = durable_file("/d/state", "old");
  auto file = create(fs, "/d/state.tmp");
  ASSERT_TRUE(file->write_at(0, "new").is_ok());
  ASSERT_TRUE(file->sync().is_ok());
  ASSERT_TRUE(fs.rename("/d/state.tmp", "/d/state").is_ok());
  ASSERT_TRUE(fs.sync_dir("/d").is_ok());
  fs.crash();
  EXPECT_EQ(contents(fs, "/d/state"), "new");
  EXPECT_FALSE(*fs.exists("/d/state.tmp"));
}

TEST_F(SimFs, ARemovalWithoutADirectorySyncIsUndoneByACrash) {
  auto file = durable_file("/d/f", "still here");
  file.reset();
  ASSERT_TRUE(fs.remove("/d/f").is_ok());
  EXPECT_FALSE(*fs.exists("/d/f"));
  fs.crash();
  EXPECT_EQ(contents(fs, "/d/f"), "still here");
}

TEST_F(SimFs, ACrashCanKeepExactlySomeUnsyncedBytes) {
  auto file = durable_file("/d/f", "base");
  ASSERT_TRUE(file->append("0123").is_ok());
  ASSERT_TRUE(file->write_at(1, "XY").is_ok());
  EXPECT_EQ(fs.unsynced_bytes("/d/f"), 6u);
  fs.crash_keeping_unsynced_bytes("/d/f", 5);  // all of "0123", then "X" of "XY"
  EXPECT_EQ(contents(fs, "/d/f"), "bXse0123");
}

TEST_F(SimFs, TornWritesOverPreallocatedSpaceLeaveZerosBehind) {
  auto file = durable_file("/d/f", "");
  ASSERT_TRUE(file->allocate(8).is_ok());
  ASSERT_TRUE(file->sync().is_ok());
  ASSERT_TRUE(file->write_at(2, "abcd").is_ok());
  fs.crash_keeping_unsynced_bytes("/d/f", 2);
  EXPECT_EQ(contents(fs, "/d/f"), std::string("\0\0ab\0\0\0\0", 8));
}

TEST_F(SimFs, CrashAndTearIsReproducibleFromTheSeed) {
  auto run = [](std::uint64_t seed) {
    SimFileSystem disk(seed);
    EXPECT_TRUE(disk.create_dir("/d").is_ok());
    EXPECT_TRUE(disk.sync_dir("/").is_ok());
    std::vector<std::unique_ptr<File>> files;
    for (int i = 0; i < 8; ++i) {
      files.push_back(create(disk, "/d/f" + std::to_string(i)));
      EXPECT_TRUE(files.back()->append(std::string(100, static_cast<char>('a' + i))).is_ok());
    }
    disk.crash_and_tear();
    std::string state;
    for (int i = 0; i < 8; ++i) state += contents(disk, "/d/f" + std::to_string(i)) + "|";
    return state;
  };
  EXPECT_EQ(run(5), run(5));
  EXPECT_NE(run(5), run(6));
}

TEST_F(SimFs, HandlesOpenedBeforeACrashAreStale) {
  auto file = durable_file("/d/f", "x");
  fs.crash();
  Status write = file->append("y");
  EXPECT_EQ(write.code(), StatusCode::kIoError);
  EXPECT_NE(write.message().find("stale"), std::string::npos);
  Result<std::unique_ptr<File>> reopened = fs.open("/d/f", OpenMode::kReadWrite);
  ASSERT_TRUE(reopened.is_ok());
  EXPECT_TRUE((*reopened)->append("y").is_ok());
}

TEST_F(SimFs, AnArmedFaultFiresOnceAndOnlyOnMatchingPaths) {
  auto a = durable_file("/d/a", "");
  auto b = durable_file("/d/b", "");
  fs.fail_next(FsOperation::kSync, "/d/b");
  EXPECT_TRUE(a->sync().is_ok());
  Status failed = b->sync();
  EXPECT_EQ(failed.code(), StatusCode::kIoError);
  EXPECT_NE(failed.message().find("/d/b"), std::string::npos);
  EXPECT_TRUE(b->sync().is_ok());
  fs.fail_next(FsOperation::kWrite);
  EXPECT_FALSE(a->append("x").is_ok());
  EXPECT_EQ(contents(fs, "/d/a"), "") << "a failed write changes nothing";
}

TEST_F(SimFs, AChainedFaultIsArmedOnlyByItsTrigger) {
  auto log = durable_file("/d/log", "");
  auto state = durable_file("/d/state.tmp", "s");
  fs.fail_next_after(FsOperation::kRename, "/d/state", FsOperation::kWrite, "/d/log");
  EXPECT_TRUE(log->append("before").is_ok()) << "not armed before the trigger";
  ASSERT_TRUE(fs.rename("/d/state.tmp", "/d/state").is_ok()) << "the trigger itself goes through";
  EXPECT_FALSE(log->append("after").is_ok());
  EXPECT_TRUE(log->append("again").is_ok()) << "fires once";
}

TEST_F(SimFs, AFullDiskFailsWithNoSpaceAndChangesNothing) {
  auto file = durable_file("/d/f", "1234");
  fs.set_capacity_bytes(10);
  EXPECT_TRUE(file->append("56789").is_ok());
  Status full = file->append("ab");
  EXPECT_EQ(full.code(), StatusCode::kIoError);
  EXPECT_NE(full.message().find("no space left"), std::string::npos);
  EXPECT_FALSE(file->allocate(64).is_ok());
  EXPECT_EQ(contents(fs, "/d/f"), "123456789");
  EXPECT_TRUE(file->write_at(0, "x").is_ok()) << "overwriting needs no new space";
}

TEST_F(SimFs, RenamingADirectoryMovesItsFiles) {
  ASSERT_TRUE(fs.create_dir("/d/tmp-x").is_ok());
  auto file = create(fs, "/d/tmp-x/data");
  ASSERT_TRUE(file->write_at(0, "snapshot").is_ok());
  ASSERT_TRUE(file->sync().is_ok());
  ASSERT_TRUE(fs.sync_dir("/d/tmp-x").is_ok());
  ASSERT_TRUE(fs.rename("/d/tmp-x", "/d/x").is_ok());
  ASSERT_TRUE(fs.sync_dir("/d").is_ok());
  fs.crash();
  EXPECT_EQ(contents(fs, "/d/x/data"), "snapshot");
  EXPECT_EQ(*fs.list_dir("/d"), std::vector<std::string>{"x"});
}

TEST_F(SimFs, RemovedFilesGiveTheirSpaceBack) {
  auto file = durable_file("/d/f", std::string(1000, 'z'));
  file.reset();
  EXPECT_EQ(fs.used_bytes(), 1000u);
  ASSERT_TRUE(fs.remove("/d/f").is_ok());
  ASSERT_TRUE(fs.sync_dir("/d").is_ok());
  EXPECT_EQ(fs.used_bytes(), 0u);
}

TEST_F(SimFs, CountsWritesAndSyncs) {
  auto file = durable_file("/d/f", "");
  const SimFsCounters before = fs.counters();
  ASSERT_TRUE(file->append("abc").is_ok());
  ASSERT_TRUE(file->sync_data().is_ok());
  const SimFsCounters after = fs.counters();
  EXPECT_EQ(after.writes - before.writes, 1u);
  EXPECT_EQ(after.file_syncs - before.file_syncs, 1u);
  EXPECT_EQ(after.bytes_written - before.bytes_written, 3u);
}

// --- where Linux is unkind (SimFsFidelity) --------------------------------------

SimFsFidelity kind_disk() {
  SimFsFidelity fidelity;
  fidelity.crash_reorders = false;
  fidelity.failed_sync_drops_writes = false;
  fidelity.failed_write_is_partial = false;
  return fidelity;
}

// Over many seeds: whether some crash kept a later unsynced sector of a
// write and lost an earlier one.
bool some_crash_leaves_a_hole(SimFsFidelity fidelity) {
  constexpr std::uint64_t kSectors = 8;
  for (std::uint64_t seed = 1; seed <= 64; ++seed) {
    SimFileSystem disk(seed, fidelity);
    EXPECT_TRUE(disk.create_dir("/d").is_ok());
    EXPECT_TRUE(disk.sync_dir("/").is_ok());
    auto file = create(disk, "/d/f");
    EXPECT_TRUE(file->allocate(kSectors * fidelity.sector_bytes).is_ok());
    EXPECT_TRUE(file->sync().is_ok());
    EXPECT_TRUE(disk.sync_dir("/d").is_ok());
    EXPECT_TRUE(file->write_at(0, std::string(kSectors * fidelity.sector_bytes, 'x')).is_ok());
    disk.crash_and_tear();
    const std::string after = contents(disk, "/d/f");
    const std::size_t first_lost = after.find('\0');
    if (first_lost != std::string::npos && after.find('x', first_lost) != std::string::npos) {
      return true;
    }
  }
  return false;
}

TEST(SimFsFidelity, ACrashCanKeepALaterUnsyncedSectorAndLoseAnEarlierOne) {
  EXPECT_TRUE(some_crash_leaves_a_hole(SimFsFidelity{}));
  EXPECT_FALSE(some_crash_leaves_a_hole(kind_disk())) << "the kind disk keeps a prefix";
}

// Two removals without a directory sync: whether some crash kept the second
// and lost the first.
bool some_crash_reorders_removals(SimFsFidelity fidelity) {
  for (std::uint64_t seed = 1; seed <= 64; ++seed) {
    SimFileSystem disk(seed, fidelity);
    EXPECT_TRUE(disk.create_dir("/d").is_ok());
    EXPECT_TRUE(disk.sync_dir("/").is_ok());
    create(disk, "/d/a");
    create(disk, "/d/b");
    EXPECT_TRUE(disk.sync_dir("/d").is_ok());
    EXPECT_TRUE(disk.remove("/d/a").is_ok());
    EXPECT_TRUE(disk.remove("/d/b").is_ok());
    disk.crash_and_tear();
    if (*disk.exists("/d/a") && !*disk.exists("/d/b")) return true;
  }
  return false;
}

TEST(SimFsFidelity, UnsyncedDirectoryChangesCanPersistOutOfOrder) {
  EXPECT_TRUE(some_crash_reorders_removals(SimFsFidelity{}));
  EXPECT_FALSE(some_crash_reorders_removals(kind_disk()));
}

// After a failed fsync the data is still readable, a retried fsync reports
// success, and a crash shows it never reached the disk.
TEST(SimFsFidelity, AFailedFsyncDropsTheUnsyncedWritesAndARetryDoesNotSaveThem) {
  for (const bool drops : {true, false}) {
    SimFsFidelity fidelity = kind_disk();
    fidelity.failed_sync_drops_writes = drops;
    SimFileSystem disk(7, fidelity);
    ASSERT_TRUE(disk.create_dir("/d").is_ok());
    ASSERT_TRUE(disk.sync_dir("/").is_ok());
    auto file = create(disk, "/d/f");
    ASSERT_TRUE(file->write_at(0, "a").is_ok());
    ASSERT_TRUE(file->sync().is_ok());
    ASSERT_TRUE(disk.sync_dir("/d").is_ok());
    ASSERT_TRUE(file->append("b").is_ok());
    disk.fail_next(FsOperation::kSync, "/d/f");
    EXPECT_FALSE(file->sync().is_ok());
    EXPECT_EQ(contents(disk, "/d/f"), "ab") << "the page cache still shows the write";
    EXPECT_TRUE(file->sync().is_ok());
    disk.crash();
    EXPECT_EQ(contents(disk, "/d/f"), drops ? "a" : "ab");
  }
}

TEST(SimFsFidelity, AFailedWriteMayHaveWrittenAPrefixOfItsBytes) {
  bool some_prefix = false;
  for (std::uint64_t seed = 1; seed <= 16; ++seed) {
    SimFileSystem disk(seed);
    ASSERT_TRUE(disk.create_dir("/d").is_ok());
    auto file = create(disk, "/d/f");
    disk.fail_next(FsOperation::kWrite, "/d/f");
    EXPECT_FALSE(file->write_at(0, std::string(100, 'w')).is_ok());
    const std::string written = contents(disk, "/d/f");
    EXPECT_LT(written.size(), 100u);
    EXPECT_EQ(written, std::string(written.size(), 'w'));
    some_prefix = some_prefix || !written.empty();
  }
  EXPECT_TRUE(some_prefix);
  SimFileSystem kind(1, kind_disk());
  auto file = create(kind, "/f");
  kind.fail_next(FsOperation::kWrite, "/f");
  EXPECT_FALSE(file->write_at(0, std::string(100, 'w')).is_ok());
  EXPECT_EQ(contents(kind, "/f"), "");
}

}  // namespace
}  // namespace keel::storage
