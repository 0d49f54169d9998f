// Crashes on the simulated disk at every byte of an unsynced write, and at
// random points with random tearing: recovery keeps every acknowledged
// entry and never shows an entry of a batch whose write did not complete.
#include <gtest/gtest.h>

#include "core/prng.h"
#include "storage/segment.h"
#include "storage_test_util.h"

namespace keel::storage {
namespace {

using testing::entries;
using testing::open_wal;
using testing::read_all;
using testing::small_wal_options;

constexpr char kDir[] = "/wal";

std::vector<LogEntry> concat(std::vector<LogEntry> a, const std::vector<LogEntry>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// The log after applying `batch` as LogStore::append would.
std::vector<LogEntry> appended(std::vector<LogEntry> log, const std::vector<LogEntry>& batch) {
  std::erase_if(log, [&](const LogEntry& e) { return e.index >= batch.front().index; });
  return concat(std::move(log), batch);
}

std::string newest_segment(SimFileSystem& fs) {
  std::string newest;
  const std::vector<std::string> names = *fs.list_dir(kDir);
  for (const std::string& name : names) {
    if (parse_segment_file_name(name)) newest = std::string(kDir) + "/" + name;
  }
  return newest;
}

struct TornAppend {
  WalOptions options;
  std::vector<std::vector<LogEntry>> acknowledged;  // batches appended and synced
  std::vector<LogEntry> unsynced;                   // written, its fsync failed
  // Segment syncs before the batch's own (a rollover syncs the new segment).
  std::uint64_t syncs_before_the_batch = 0;

  std::vector<LogEntry> log_before() const {
    std::vector<LogEntry> log;
    for (const auto& batch : acknowledged) log = appended(std::move(log), batch);
    return log;
  }

  // Runs up to the failed fsync on a fresh disk; returns the disk and the
  // path and size of the unsynced write.
  std::shared_ptr<SimFileSystem> run(std::string& path, std::uint64_t& unsynced_bytes) const {
    // The failed fsync only stops the batch short of the disk; keeping its
    // bytes pending lets the crash below choose exactly how many survive.
    SimFsFidelity fidelity;
    fidelity.failed_sync_drops_writes = false;
    auto fs = std::make_shared<SimFileSystem>(3, fidelity);
    auto wal = open_wal(kDir, options, fs);
    for (const auto& batch : acknowledged) EXPECT_TRUE(wal->append(batch).is_ok());
    fs->fail_next(FsOperation::kSync, std::string(kDir) + "/wal-", syncs_before_the_batch);
    EXPECT_EQ(wal->append(unsynced).code(), StatusCode::kIoError);
    path = newest_segment(*fs);
    unsynced_bytes = fs->unsynced_bytes(path);
    return fs;
  }

  // Crashes keeping each possible number of the unsynced bytes in turn.
  void check_every_byte() const {
    std::string path;
    std::uint64_t total = 0;
    run(path, total);
    ASSERT_GT(total, 0u);
    const std::vector<LogEntry> before = log_before();
    const std::vector<LogEntry> after = appended(before, unsynced);
    for (std::uint64_t kept = 0; kept <= total; ++kept) {
      std::uint64_t ignored = 0;
      auto fs = run(path, ignored);
      fs->crash_keeping_unsynced_bytes(path, kept);
      auto wal = open_wal(kDir, options, fs);
      ASSERT_TRUE(wal) << "kept " << kept;
      // Only a write that reached the disk whole may show; a torn one never.
      ASSERT_EQ(read_all(*wal), kept < total ? before : after)
          << "kept " << kept << " of " << total;
      // And the log goes on from there, across another reopen.
      const Index next = wal->last_index().next();
      ASSERT_TRUE(wal->append(entries(next.value, next.value, 9)).is_ok()) << "kept " << kept;
      wal.reset();
      wal = open_wal(kDir, options, fs);
      ASSERT_EQ(wal->last_index(), next) << "kept " << kept;
    }
  }
};

TEST(WalCrash, AtEveryByteOfTheLastRecordOnlySyncedEntriesSurvive) {
  TornAppend scenario;
  scenario.options.segment_size_bytes = 4096;
  for (std::uint64_t i = 1; i <= 5; ++i) scenario.acknowledged.push_back(entries(i, i));
  scenario.unsynced = entries(6, 6, 1, 40);
  scenario.check_every_byte();
}

TEST(WalCrash, AtEveryByteOfAMultiRecordBatchNoneOfItsEntriesSurvive) {
  TornAppend scenario;
  scenario.options.segment_size_bytes = 4096;
  scenario.options.max_record_bytes = 60;  // three 19-byte entries per record
  scenario.acknowledged = {entries(1, 4), entries(5, 5)};
  scenario.unsynced = entries(6, 13);
  scenario.check_every_byte();
}

TEST(WalCrash, AtEveryByteOfAConflictingBatchTheOldSuffixStaysWhole) {
  TornAppend scenario;
  scenario.options.segment_size_bytes = 4096;
  scenario.acknowledged = {entries(1, 10, 1)};
  scenario.unsynced = entries(6, 8, 2);
  scenario.check_every_byte();
}

TEST(WalCrash, AtEveryByteOfABatchThatStartedANewSegment) {
  TornAppend scenario;
  scenario.options.segment_size_bytes = 256;
  for (std::uint64_t i = 1; i <= 4; ++i) scenario.acknowledged.push_back(entries(i, i));
  scenario.unsynced = entries(5, 7, 1, 30);
  scenario.syncs_before_the_batch = 1;
  std::string path;
  std::uint64_t bytes = 0;
  scenario.run(path, bytes);
  ASSERT_EQ(path, std::string(kDir) + "/" + segment_file_name(2))
      << "the batch must start segment 2";
  scenario.check_every_byte();
}

std::vector<LogEntry> without_prefix(std::vector<LogEntry> log, std::uint64_t up_to) {
  std::erase_if(log, [&](const LogEntry& e) { return e.index.value <= up_to; });
  return log;
}

// Rollover, prefix removal and their directory operations, each failing in
// turn, then a crash that tears whatever was not synced. The failed call may
// or may not have taken effect, but nothing else may differ.
TEST(WalCrash, AFailureAtAnyStepOfRolloverOrCompactionLosesNothingAcknowledged) {
  const FsOperation steps[] = {FsOperation::kCreate, FsOperation::kAllocate, FsOperation::kWrite,
                               FsOperation::kSync,   FsOperation::kRename,   FsOperation::kSyncDir,
                               FsOperation::kRemove};
  for (FsOperation step : steps) {
    for (std::uint64_t seed = 1; seed <= 8; ++seed) {
      SCOPED_TRACE("step " + std::to_string(static_cast<int>(step)) + " seed " +
                   std::to_string(seed));
      auto fs = std::make_shared<SimFileSystem>(seed);
      auto wal = open_wal(kDir, small_wal_options(512), fs);
      std::vector<LogEntry> log;
      std::vector<std::vector<LogEntry>> allowed;  // what recovery may show
      for (std::uint64_t i = 1; i <= 60 && allowed.empty(); ++i) {
        if (i == 30) fs->fail_next(step, kDir);
        const std::vector<LogEntry> batch = entries(i, i, 1, 40);
        if (!wal->append(batch).is_ok()) {
          allowed = {log, appended(log, batch)};
          break;
        }
        log = appended(std::move(log), batch);
        if (i % 10 != 0) continue;
        const std::vector<LogEntry> compacted = without_prefix(log, i - 5);
        if (!wal->truncate_prefix(Index(i - 5)).is_ok()) {
          allowed = {log, compacted};
          break;
        }
        log = compacted;
      }
      ASSERT_FALSE(allowed.empty()) << "the armed fault never fired";
      wal.reset();
      fs->crash_and_tear();
      wal = open_wal(kDir, small_wal_options(512), fs);
      ASSERT_TRUE(wal);
      const std::vector<LogEntry> recovered = read_all(*wal);
      ASSERT_TRUE(recovered == allowed[0] || recovered == allowed[1])
          << "recovered " << recovered.size() << " entries from " << wal->first_index();
    }
  }
}

// Random appends (continuing and conflicting), random compactions, then a
// failed fsync and a crash that tears the unsynced tail at a random byte.
// After recovery the log is exactly the acknowledged log, or that log with
// the failed batch applied whole.
TEST(WalCrash, RandomHistoriesAndRandomTearsKeepExactlyTheAcknowledgedLog) {
  for (std::uint64_t seed = 1; seed <= 60; ++seed) {
    core::Prng prng(seed);
    auto fs = std::make_shared<SimFileSystem>(seed);
    WalOptions options = small_wal_options(1024);
    options.max_record_bytes = 1 + prng.uniform(50, 400);
    auto wal = open_wal(kDir, options, fs);
    MemoryLogStore model;
    std::uint64_t term = 1;
    const std::uint64_t steps = prng.uniform(1, 60);
    for (std::uint64_t step = 0; step < steps; ++step) {
      const Index first = model.first_index().is_zero() ? Index(1) : model.first_index();
      if (prng.uniform(0, 8) == 0 && model.last_index() >= first) {
        const Index up_to = first + prng.uniform(0, model.last_index() - first + 1);
        ASSERT_TRUE(wal->truncate_prefix(up_to).is_ok());
        ASSERT_TRUE(model.truncate_prefix(up_to).is_ok());
        continue;
      }
      Index start = model.last_index().next();
      if (prng.uniform(0, 4) == 0 && model.last_index() >= first) {
        start = first + prng.uniform(0, model.last_index() - first + 1);
        ++term;
      }
      const auto batch =
          entries(start.value, start.value + prng.uniform(0, 12), term, prng.uniform(0, 90));
      ASSERT_TRUE(wal->append(batch).is_ok());
      ASSERT_TRUE(model.append(batch).is_ok());
    }
    const std::vector<LogEntry> acknowledged = read_all(model);
    const Index start = model.last_index().next();
    const auto failed_batch = entries(start.value, start.value + prng.uniform(0, 12), term + 1, 30);
    fs->fail_next(FsOperation::kSync, kDir);
    ASSERT_EQ(wal->append(failed_batch).code(), StatusCode::kIoError);
    wal.reset();
    fs->crash_and_tear();
    wal = open_wal(kDir, options, fs);
    ASSERT_TRUE(wal) << "seed " << seed;
    const std::vector<LogEntry> recovered = read_all(*wal);
    if (recovered != acknowledged) {
      ASSERT_EQ(recovered, concat(acknowledged, failed_batch)) << "seed " << seed;
    }
    ASSERT_EQ(wal->first_index(), model.first_index()) << "seed " << seed;
  }
}

}  // namespace
}  // namespace keel::storage
