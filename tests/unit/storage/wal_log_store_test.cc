// WalLogStore on the simulated disk: appends, conflicts, compaction,
// fail-stop, a full disk and damaged files.
#include <gtest/gtest.h>

#include "storage/segment.h"
#include "storage_test_util.h"

namespace keel::storage {
namespace {

using testing::entries;
using testing::entry;
using testing::open_wal;
using testing::read_all;
using testing::small_wal_options;

constexpr char kDir[] = "/wal";

std::string segment_path(std::uint64_t sequence) {
  return std::string(kDir) + "/" + segment_file_name(sequence);
}

// The bytes one single-entry batch of testing::entry(i, term, 16) takes.
constexpr std::uint64_t kSmallRecordBytes = kRecordHeaderBytes + 1 + 1 + 1 + 16;

class Wal : public ::testing::Test {
 protected:
  std::shared_ptr<WalLogStore> open(WalOptions options) {
    return open_wal(kDir, std::move(options), fs);
  }
  std::shared_ptr<WalLogStore> open() { return open(small_wal_options()); }
  void append_singles(LogStore& log, std::uint64_t first, std::uint64_t last,
                      std::uint64_t term = 1) {
    for (std::uint64_t i = first; i <= last; ++i) {
      const LogEntry e = entry(i, term);
      ASSERT_TRUE(log.append(std::span<const LogEntry>(&e, 1)).is_ok());
    }
  }

  std::shared_ptr<SimFileSystem> fs = std::make_shared<SimFileSystem>(1);
};

TEST_F(Wal, ANewLogIsEmpty) {
  auto wal = open();
  EXPECT_EQ(wal->first_index(), Index(0));
  EXPECT_EQ(wal->last_index(), Index(0));
  EXPECT_EQ(wal->segment_count(), 1u);
}

TEST_F(Wal, AppendedEntriesReadBackAfterReopen) {
  auto wal = open();
  ASSERT_TRUE(wal->append(entries(1, 10)).is_ok());
  ASSERT_TRUE(wal->append(entries(11, 12, 2, 3000)).is_ok());
  EXPECT_EQ(*wal->read(Index(3), Index(11)), [] {
    auto expected = entries(3, 10);
    expected.push_back(entry(11, 2, 3000));
    return expected;
  }());
  wal.reset();
  fs->crash();  // everything acknowledged was synced
  wal = open();
  EXPECT_EQ(wal->first_index(), Index(1));
  EXPECT_EQ(wal->last_index(), Index(12));
  auto expected = entries(1, 10);
  auto tail = entries(11, 12, 2, 3000);
  expected.insert(expected.end(), tail.begin(), tail.end());
  EXPECT_EQ(read_all(*wal), expected);
}

TEST_F(Wal, OneAppendIsOneWriteAndOneFdatasyncWhateverTheBatchSize) {
  auto wal = open(small_wal_options(16 << 20));
  std::uint64_t next = 1;
  for (std::uint64_t batch : {1, 16, 256}) {
    const SimFsCounters before = fs->counters();
    ASSERT_TRUE(wal->append(entries(next, next + batch - 1, 1, 256)).is_ok());
    const SimFsCounters after = fs->counters();
    EXPECT_EQ(after.writes - before.writes, 1u) << "batch " << batch;
    EXPECT_EQ(after.file_syncs - before.file_syncs, 1u) << "batch " << batch;
    EXPECT_EQ(after.dir_syncs - before.dir_syncs, 0u) << "batch " << batch;
    next += batch;
  }
}

TEST_F(Wal, AConflictingSuffixIsReplacedAndStaysReplacedAfterReopen) {
  auto wal = open();
  ASSERT_TRUE(wal->append(entries(1, 10, 1)).is_ok());
  ASSERT_TRUE(wal->append(entries(6, 8, 2)).is_ok());
  auto expected = entries(1, 5, 1);
  auto replaced = entries(6, 8, 2);
  expected.insert(expected.end(), replaced.begin(), replaced.end());
  EXPECT_EQ(wal->last_index(), Index(8));
  EXPECT_EQ(read_all(*wal), expected);
  wal.reset();
  fs->crash();
  wal = open();
  EXPECT_EQ(read_all(*wal), expected) << "the old entries 6..10 must not come back";
  ASSERT_TRUE(wal->append(entries(9, 9, 2)).is_ok());
  EXPECT_EQ(wal->last_index(), Index(9));
}

TEST_F(Wal, AppendsThatWouldLeaveAGapAreRefusedWithoutStoppingTheStore) {
  auto wal = open();
  EXPECT_EQ(wal->append(entries(2, 3)).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(wal->append(entries(1, 3)).is_ok());
  EXPECT_EQ(wal->append(entries(5, 6)).code(), StatusCode::kInvalidArgument);
  std::vector<LogEntry> holed = {entry(4), entry(6)};
  EXPECT_EQ(wal->append(holed).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(wal->append(entries(4, 4)).is_ok());
  ASSERT_TRUE(wal->truncate_prefix(Index(2)).is_ok());
  EXPECT_EQ(wal->append(entries(2, 5)).code(), StatusCode::kInvalidArgument)
      << "entries at or below a removed prefix";
  EXPECT_TRUE(wal->append(entries(3, 5, 2)).is_ok());
}

TEST_F(Wal, TruncatePrefixRemovesEntriesAndWholeSegments) {
  auto wal = open(small_wal_options(1024));
  append_singles(*wal, 1, 100);
  const std::size_t segments_before = wal->segment_count();
  ASSERT_GT(segments_before, 5u);
  ASSERT_TRUE(wal->truncate_prefix(Index(60)).is_ok());
  EXPECT_EQ(wal->first_index(), Index(61));
  EXPECT_EQ(wal->last_index(), Index(100));
  EXPECT_LT(wal->segment_count(), segments_before);
  EXPECT_EQ(fs->list_dir(kDir)->size(), wal->segment_count());
  EXPECT_EQ(wal->read(Index(60), Index(61)).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(read_all(*wal), entries(61, 100));
  wal.reset();
  fs->crash();
  wal = open(small_wal_options(1024));
  EXPECT_EQ(wal->first_index(), Index(61));
  EXPECT_EQ(wal->last_index(), Index(100));
  EXPECT_EQ(read_all(*wal), entries(61, 100));
}

TEST_F(Wal, TruncateSuffixThenPrefixThenReopenGivesExactlyTheExpectedLog) {
  auto wal = open(small_wal_options(1024));
  append_singles(*wal, 1, 40, 1);
  ASSERT_TRUE(wal->append(entries(25, 30, 2)).is_ok());  // replaces 25..40
  ASSERT_TRUE(wal->truncate_prefix(Index(27)).is_ok());
  append_singles(*wal, 31, 35, 3);
  auto expected = entries(28, 30, 2);
  auto tail = entries(31, 35, 3);
  expected.insert(expected.end(), tail.begin(), tail.end());
  EXPECT_EQ(read_all(*wal), expected);
  wal.reset();
  fs->crash();
  wal = open(small_wal_options(1024));
  EXPECT_EQ(wal->first_index(), Index(28));
  EXPECT_EQ(wal->last_index(), Index(35));
  EXPECT_EQ(read_all(*wal), expected);
}

TEST_F(Wal, TruncatePrefixBeyondTheLastEntryLeavesAnEmptyLogThatContinuesAfterIt) {
  auto wal = open();
  ASSERT_TRUE(wal->append(entries(1, 5)).is_ok());
  ASSERT_TRUE(wal->truncate_prefix(Index(10)).is_ok());
  EXPECT_EQ(wal->first_index(), Index(11));
  EXPECT_EQ(wal->last_index(), Index(10));
  EXPECT_EQ(wal->append(entries(6, 6)).code(), StatusCode::kInvalidArgument);
  wal.reset();
  fs->crash();
  wal = open();
  EXPECT_EQ(wal->first_index(), Index(11));
  EXPECT_EQ(wal->last_index(), Index(10));
  ASSERT_TRUE(wal->append(entries(11, 12, 4)).is_ok());
  wal.reset();
  wal = open();
  EXPECT_EQ(read_all(*wal), entries(11, 12, 4));
}

TEST_F(Wal, ResetDropsEveryEntryAndTheLogContinuesAfterTheNewBase) {
  auto wal = open();
  ASSERT_TRUE(wal->append(entries(1, 8)).is_ok());
  // Below the old end: entries 5..8 must not come back, not even after a
  // crash (a snapshot install drops a conflicting log).
  ASSERT_TRUE(wal->reset(Index(4)).is_ok());
  EXPECT_EQ(wal->first_index(), Index(5));
  EXPECT_EQ(wal->last_index(), Index(4));
  EXPECT_EQ(wal->read(Index(5), Index(5)).status().code(), StatusCode::kNotFound);
  wal.reset();
  fs->crash();
  wal = open();
  EXPECT_EQ(wal->first_index(), Index(5));
  EXPECT_EQ(wal->last_index(), Index(4));
  ASSERT_TRUE(wal->append(entries(5, 6, 3)).is_ok());
  wal.reset();
  fs->crash();
  wal = open();
  EXPECT_EQ(read_all(*wal), entries(5, 6, 3));
  // Beyond the end, too.
  ASSERT_TRUE(wal->reset(Index(100)).is_ok());
  wal.reset();
  wal = open();
  EXPECT_EQ(wal->first_index(), Index(101));
  EXPECT_EQ(wal->last_index(), Index(100));
}

TEST_F(Wal, ResetRemovesTheSegmentsItMadeDead) {
  WalOptions options = small_wal_options();
  options.segment_size_bytes = 4 * kSmallRecordBytes + kSegmentHeaderBytes;
  auto wal = open(options);
  append_singles(*wal, 1, 20);
  ASSERT_GT(wal->segment_count(), 3u);
  ASSERT_TRUE(wal->reset(Index(30)).is_ok());
  EXPECT_EQ(wal->segment_count(), 1u);
  wal.reset();
  wal = open(options);
  EXPECT_EQ(wal->first_index(), Index(31));
}

TEST_F(Wal, ACrashDuringAResetLeavesTheOldLogOrTheEmptyOneNeverAMixture) {
  for (std::uint64_t seed = 1; seed <= 30; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    fs = std::make_shared<SimFileSystem>(seed);
    auto wal = open();
    ASSERT_TRUE(wal->append(entries(1, 6)).is_ok());
    // The reset's record is written but the crash comes before its sync
    // completes: whatever reaches the disk, open gives one of two logs.
    fs->fail_next(FsOperation::kSync, kDir);
    (void)wal->reset(Index(3));
    wal.reset();
    fs->crash_and_tear();
    wal = open();
    ASSERT_TRUE(wal);
    const std::vector<LogEntry> log = read_all(*wal);
    EXPECT_TRUE(log == entries(1, 6) || (log.empty() && wal->last_index() == Index(3)))
        << "first " << wal->first_index().value << " last " << wal->last_index().value;
  }
}

TEST_F(Wal, AFailedFsyncMakesEveryLaterWriteFail) {
  auto wal = open();
  ASSERT_TRUE(wal->append(entries(1, 3)).is_ok());
  fs->fail_next(FsOperation::kSync, kDir);
  Status failed = wal->append(entries(4, 4));
  EXPECT_EQ(failed.code(), StatusCode::kIoError);
  // The fault is gone, but the page cache can no longer be trusted: never
  // retry, never acknowledge again.
  for (int i = 0; i < 3; ++i) {
    Status refused = wal->append(entries(4, 4));
    EXPECT_EQ(refused.code(), StatusCode::kIoError);
    EXPECT_NE(refused.message().find("fail-stop"), std::string::npos);
  }
  EXPECT_EQ(wal->truncate_prefix(Index(1)).code(), StatusCode::kIoError);
  EXPECT_EQ(wal->reset(Index(1)).code(), StatusCode::kIoError);
  EXPECT_EQ(*wal->read(Index(1), Index(3)), entries(1, 3)) << "reads still work";
}

TEST_F(Wal, AFailedWriteMakesEveryLaterWriteFail) {
  auto wal = open();
  fs->fail_next(FsOperation::kWrite, kDir);
  EXPECT_EQ(wal->append(entries(1, 1)).code(), StatusCode::kIoError);
  EXPECT_EQ(wal->append(entries(1, 1)).code(), StatusCode::kIoError);
}

TEST_F(Wal, AFullDiskFailsWithNoSpaceAndLosesNothingAcknowledged) {
  auto wal = open(small_wal_options(4096));
  std::uint64_t acknowledged = 0;
  fs->set_capacity_bytes(fs->used_bytes() + 1000);  // not enough for a second segment
  Status status;
  for (std::uint64_t i = 1; i <= 200; ++i) {
    status = wal->append(entries(i, i, 1, 100));
    if (!status.is_ok()) break;
    acknowledged = i;
  }
  ASSERT_EQ(status.code(), StatusCode::kIoError);
  EXPECT_NE(status.message().find("no space left"), std::string::npos) << status;
  EXPECT_GT(acknowledged, 10u);
  EXPECT_EQ(wal->append(entries(acknowledged + 1, acknowledged + 1, 1, 100)).code(),
            StatusCode::kIoError);
  wal.reset();
  fs->crash();
  wal = open(small_wal_options(4096));
  EXPECT_EQ(wal->last_index(), Index(acknowledged));
  EXPECT_EQ(read_all(*wal), entries(1, acknowledged, 1, 100));
}

TEST_F(Wal, ABitFlipInTheMiddleOfASegmentFailsOpenNamingTheFileAndOffset) {
  for (std::uint64_t delta : {std::uint64_t{8}, kRecordHeaderBytes + 5}) {  // header, payload
    fs = std::make_shared<SimFileSystem>(1);
    {
      auto wal = open();
      append_singles(*wal, 1, 20);
    }
    const std::uint64_t record_10 = kSegmentHeaderBytes + 9 * kSmallRecordBytes;
    ASSERT_TRUE(fs->corrupt(segment_path(1), record_10 + delta, 0x04).is_ok());
    Result<std::shared_ptr<WalLogStore>> wal = open_wal_log_store(kDir, small_wal_options(), fs);
    ASSERT_FALSE(wal.is_ok());
    EXPECT_EQ(wal.status().code(), StatusCode::kCorruption);
    EXPECT_NE(wal.status().message().find(segment_path(1)), std::string::npos) << wal.status();
    EXPECT_NE(wal.status().message().find("offset " + std::to_string(record_10)), std::string::npos)
        << wal.status();
  }
}

TEST_F(Wal, ABitFlipInTheLastRecordOfAnOlderSegmentFailsOpen) {
  {
    auto wal = open(small_wal_options(1024));
    append_singles(*wal, 1, 60);
    ASSERT_GE(wal->segment_count(), 3u);
  }
  // 19 records fit in a 1 KiB segment: damage the 19th, which no later
  // record in its own segment vouches for.
  const std::uint64_t records_per_segment = (1024 - kSegmentHeaderBytes) / kSmallRecordBytes;
  const std::uint64_t last_record_of_1 =
      kSegmentHeaderBytes + (records_per_segment - 1) * kSmallRecordBytes;
  ASSERT_TRUE(fs->corrupt(segment_path(1), last_record_of_1 + 40, 0x80).is_ok());
  Result<std::shared_ptr<WalLogStore>> wal = open_wal_log_store(kDir, small_wal_options(1024), fs);
  ASSERT_FALSE(wal.is_ok());
  EXPECT_EQ(wal.status().code(), StatusCode::kCorruption);
  EXPECT_NE(wal.status().message().find(segment_path(1)), std::string::npos) << wal.status();
}

// The one case recovery cannot tell from a torn write: damage to the very
// last batch. It is dropped, as a torn write would be (docs/formats.md).
TEST_F(Wal, DamageToTheLastBatchIsTreatedAsATornWrite) {
  {
    auto wal = open();
    append_singles(*wal, 1, 20);
  }
  const std::uint64_t record_20 = kSegmentHeaderBytes + 19 * kSmallRecordBytes;
  ASSERT_TRUE(fs->corrupt(segment_path(1), record_20 + 40, 0x01).is_ok());
  auto wal = open();
  EXPECT_EQ(wal->last_index(), Index(19));
  ASSERT_TRUE(wal->append(entries(20, 20, 2)).is_ok());
  wal.reset();
  wal = open();
  EXPECT_EQ(wal->last_index(), Index(20));
}

TEST_F(Wal, AMissingSegmentFailsOpen) {
  {
    auto wal = open(small_wal_options(1024));
    append_singles(*wal, 1, 60);
  }
  ASSERT_TRUE(fs->remove(segment_path(2)).is_ok());
  Result<std::shared_ptr<WalLogStore>> wal = open_wal_log_store(kDir, small_wal_options(1024), fs);
  ASSERT_FALSE(wal.is_ok());
  EXPECT_EQ(wal.status().code(), StatusCode::kCorruption);
  EXPECT_NE(wal.status().message().find("missing"), std::string::npos) << wal.status();
}

// Entries 1..100 in 1 KiB segments hold 19 entries each: segment k holds
// entries 19(k-1)+1 .. 19k. After truncate_prefix(45), segments 1 and 2 are
// gone and the live log (46..100) starts in segment 3.
class WalAfterCompaction : public Wal {
 protected:
  void SetUp() override {
    auto wal = open(small_wal_options(1024));
    append_singles(*wal, 1, 100);
    segment_1_ = file_bytes(segment_path(1));
    ASSERT_TRUE(wal->truncate_prefix(Index(45)).is_ok());
    ASSERT_FALSE(*fs->exists(segment_path(2)));
    ASSERT_TRUE(*fs->exists(segment_path(3)));
  }
  std::string file_bytes(const std::string& path) {
    auto file = fs->open(path, OpenMode::kRead);
    EXPECT_TRUE(file.is_ok()) << file.status();
    std::string bytes(static_cast<std::size_t>(*(*file)->size()), '\0');
    EXPECT_TRUE((*file)->read_at(0, std::span<char>(bytes.data(), bytes.size())).is_ok());
    return bytes;
  }
  // Puts segment 1 back, as if its unlink had not reached the disk while
  // the later unlink of segment 2 had.
  void restore_segment_1() {
    auto file = fs->open(segment_path(1), OpenMode::kCreateNew);
    ASSERT_TRUE(file.is_ok()) << file.status();
    ASSERT_TRUE((*file)->write_at(0, segment_1_).is_ok());
    ASSERT_TRUE((*file)->sync().is_ok());
    ASSERT_TRUE(fs->sync_dir(kDir).is_ok());
  }
  Result<std::shared_ptr<WalLogStore>> reopen() {
    return open_wal_log_store(kDir, small_wal_options(1024), fs);
  }
  static void expect_lost(const Status& status, const std::string& entries_lost) {
    EXPECT_EQ(status.code(), StatusCode::kCorruption) << status;
    EXPECT_NE(status.message().find("entries " + entries_lost + " cannot all be recovered"),
              std::string::npos)
        << status;
  }

  std::string segment_1_;
};

TEST_F(WalAfterCompaction, AMissingOldestSegmentWithLiveEntriesFailsOpen) {
  ASSERT_TRUE(fs->remove(segment_path(3)).is_ok());  // held the live 46..57
  Result<std::shared_ptr<WalLogStore>> wal = reopen();
  ASSERT_FALSE(wal.is_ok());
  expect_lost(wal.status(), "46..57");
  EXPECT_NE(wal.status().message().find("marker"), std::string::npos) << wal.status();
}

TEST_F(WalAfterCompaction, AHoleAboveTheMarkerFailsOpen) {
  ASSERT_TRUE(fs->remove(segment_path(4)).is_ok());  // 58..76, all live
  Result<std::shared_ptr<WalLogStore>> wal = reopen();
  ASSERT_FALSE(wal.is_ok());
  expect_lost(wal.status(), "46..76");
  EXPECT_NE(wal.status().message().find("missing between"), std::string::npos) << wal.status();
}

// Unlinks of one compaction may reach the disk in any order: a hole below
// the marker loses nothing, so open finishes the compaction instead.
TEST_F(WalAfterCompaction, AHoleBelowTheMarkerIsToleratedAndTheDeadSegmentRemoved) {
  restore_segment_1();
  Result<std::shared_ptr<WalLogStore>> wal = reopen();
  ASSERT_TRUE(wal.is_ok()) << wal.status();
  EXPECT_EQ((*wal)->first_index(), Index(46));
  EXPECT_EQ(read_all(**wal), entries(46, 100));
  EXPECT_FALSE(*fs->exists(segment_path(1)));
  wal->reset();
  fs->crash();
  wal = reopen();
  ASSERT_TRUE(wal.is_ok()) << wal.status();
  EXPECT_EQ(read_all(**wal), entries(46, 100));
}

TEST_F(Wal, AMissingFirstSegmentOfALogNeverCompactedFailsOpen) {
  {
    auto wal = open(small_wal_options(1024));
    append_singles(*wal, 1, 60);
  }
  ASSERT_TRUE(fs->remove(segment_path(1)).is_ok());
  Result<std::shared_ptr<WalLogStore>> wal = open_wal_log_store(kDir, small_wal_options(1024), fs);
  ASSERT_FALSE(wal.is_ok());
  EXPECT_EQ(wal.status().code(), StatusCode::kCorruption);
  EXPECT_NE(wal.status().message().find("no prefix was ever removed"), std::string::npos)
      << wal.status();
  EXPECT_NE(wal.status().message().find("entries 1..19 cannot all be recovered"), std::string::npos)
      << wal.status();
}

TEST_F(Wal, ALeftoverTemporarySegmentIsRemovedOnOpen) {
  open().reset();
  ASSERT_TRUE(fs->open(segment_path(9) + ".tmp", OpenMode::kCreateNew).is_ok());
  auto wal = open();
  EXPECT_FALSE(*fs->exists(segment_path(9) + ".tmp"));
}

TEST_F(Wal, SegmentsRollOverAndAnOversizedBatchGetsASegmentOfItsOwn) {
  auto wal = open(small_wal_options(1024));
  append_singles(*wal, 1, 30);
  const std::size_t segments = wal->segment_count();
  EXPECT_GT(segments, 1u);
  ASSERT_TRUE(wal->append(entries(31, 35, 1, 2000)).is_ok());  // 10 KB in one batch
  EXPECT_EQ(wal->segment_count(), segments + 1);
  ASSERT_TRUE(wal->append(entries(36, 36)).is_ok());
  wal.reset();
  wal = open(small_wal_options(1024));
  auto expected = entries(1, 30);
  auto big = entries(31, 35, 1, 2000);
  expected.insert(expected.end(), big.begin(), big.end());
  expected.push_back(entry(36));
  EXPECT_EQ(read_all(*wal), expected);
}

TEST_F(Wal, ABatchLargerThanARecordIsSplitIntoRecordsAndReadsBack) {
  WalOptions options = small_wal_options();
  options.max_record_bytes = 250;
  options.read_cache_bytes = 0;  // every read goes to disk
  auto wal = open(options);
  const SimFsCounters before = fs->counters();
  ASSERT_TRUE(wal->append(entries(1, 10, 1, 100)).is_ok());
  EXPECT_EQ(fs->counters().writes - before.writes, 1u);
  EXPECT_EQ(read_all(*wal), entries(1, 10, 1, 100));
  wal.reset();
  wal = open(options);
  EXPECT_EQ(read_all(*wal), entries(1, 10, 1, 100));
  EXPECT_EQ(*wal->read(Index(4), Index(7)), entries(4, 7, 1, 100));
}

TEST_F(Wal, ReopeningWithoutAppendsDoesNotGrowTheSegmentCount) {
  for (int i = 0; i < 5; ++i) {
    auto wal = open();
    EXPECT_EQ(wal->segment_count(), 1u);
    ASSERT_TRUE(
        wal->append(entries(wal->last_index().value + 1, wal->last_index().value + 1)).is_ok());
  }
  EXPECT_EQ(read_all(*open()), entries(1, 5));
}

TEST_F(Wal, ReadsOutsideTheLogAreNotFound) {
  auto wal = open();
  ASSERT_TRUE(wal->append(entries(1, 5)).is_ok());
  EXPECT_EQ(wal->read(Index(0), Index(2)).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(wal->read(Index(4), Index(6)).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(wal->read(Index(3), Index(2)).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(Wal, OptionsOutOfBoundsAreRefused) {
  WalOptions options = small_wal_options();
  options.segment_size_bytes = 16;
  EXPECT_EQ(WalLogStore::open(kDir, options).status().code(), StatusCode::kInvalidArgument);
  options = small_wal_options();
  options.max_record_bytes = 0;
  EXPECT_EQ(WalLogStore::open(kDir, options).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace keel::storage
