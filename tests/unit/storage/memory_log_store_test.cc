// MemoryLogStore's prefix removal: the model the WAL is checked against must
// itself follow the LogStore contract.
#include <gtest/gtest.h>

#include "storage_test_util.h"

namespace keel::storage {
namespace {

using testing::entries;
using testing::read_all;

TEST(MemoryLogStorePrefix, RemovesEntriesUpToTheGivenIndex) {
  MemoryLogStore log;
  ASSERT_TRUE(log.append(entries(1, 10)).is_ok());
  ASSERT_TRUE(log.truncate_prefix(Index(4)).is_ok());
  EXPECT_EQ(log.first_index(), Index(5));
  EXPECT_EQ(log.last_index(), Index(10));
  EXPECT_EQ(read_all(log), entries(5, 10));
  EXPECT_EQ(log.read(Index(4), Index(5)).status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(log.truncate_prefix(Index(2)).is_ok()) << "below the first index: nothing changes";
  EXPECT_EQ(log.first_index(), Index(5));
}

TEST(MemoryLogStorePrefix, BeyondTheLastEntryLeavesAnEmptyLogThatContinuesAfterIt) {
  MemoryLogStore log;
  ASSERT_TRUE(log.append(entries(1, 3)).is_ok());
  ASSERT_TRUE(log.truncate_prefix(Index(7)).is_ok());
  EXPECT_EQ(log.first_index(), Index(8));
  EXPECT_EQ(log.last_index(), Index(7));
  EXPECT_EQ(log.append(entries(4, 4)).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(log.append(entries(8, 9)).is_ok());
  EXPECT_EQ(read_all(log), entries(8, 9));
}

TEST(MemoryLogStorePrefix, AConflictMayReplaceEverythingFromTheFirstIndex) {
  MemoryLogStore log;
  ASSERT_TRUE(log.append(entries(1, 10)).is_ok());
  ASSERT_TRUE(log.truncate_prefix(Index(5)).is_ok());
  ASSERT_TRUE(log.append(entries(6, 7, 2)).is_ok());
  EXPECT_EQ(read_all(log), entries(6, 7, 2));
  EXPECT_EQ(log.append(entries(5, 5, 2)).code(), StatusCode::kInvalidArgument);
}

TEST(MemoryLogStore, RefusesATermAboveKMaxTermAndKeepsWhatItHad) {
  MemoryLogStore log;
  ASSERT_TRUE(log.append(entries(1, 2)).is_ok());
  std::vector<LogEntry> bad = entries(3, 3);
  bad[0].term = kMaxTerm.next();
  EXPECT_EQ(log.append(bad).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(read_all(log), entries(1, 2));
}

TEST(MemoryLogStorePrefix, RefusedAfterAFailure) {
  MemoryLogStore log;
  log.fail_appends();
  EXPECT_FALSE(log.append(entries(1, 1)).is_ok());
  EXPECT_EQ(log.truncate_prefix(Index(1)).code(), StatusCode::kIoError);
  EXPECT_EQ(log.reset(Index(1)).code(), StatusCode::kIoError);
}

TEST(MemoryLogStoreReset, DropsEveryEntryAndContinuesAfterTheBaseBelowOrBeyondTheOldEnd) {
  MemoryLogStore log;
  ASSERT_TRUE(log.append(entries(1, 10)).is_ok());
  ASSERT_TRUE(log.reset(Index(4)).is_ok());
  EXPECT_EQ(log.first_index(), Index(5));
  EXPECT_EQ(log.last_index(), Index(4));
  EXPECT_TRUE(read_all(log).empty());
  EXPECT_EQ(log.append(entries(4, 4)).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(log.append(entries(5, 6, 2)).is_ok());
  EXPECT_EQ(read_all(log), entries(5, 6, 2));
  ASSERT_TRUE(log.reset(Index(50)).is_ok());
  EXPECT_EQ(log.first_index(), Index(51));
  EXPECT_TRUE(read_all(log).empty());
}

}  // namespace
}  // namespace keel::storage
