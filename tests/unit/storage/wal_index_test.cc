// The WAL's offset index: live appends and removals, and replay reaching the
// same state from whatever segments compaction left.
#include "storage/wal_index.h"

#include <gtest/gtest.h>

namespace keel::storage {
namespace {

RecordLocation at(std::uint32_t segment, std::uint32_t offset) { return {segment, offset}; }

TEST(WalIndex, FindsTheRecordHoldingEachEntry) {
  WalIndex index;
  index.append_record(Index(1), 3, at(1, 32));   // 1..3
  index.append_record(Index(4), 2, at(1, 200));  // 4..5
  EXPECT_EQ(index.last(), Index(5));
  EXPECT_EQ(index.find(Index(2)).location.offset, 32u);
  EXPECT_EQ(index.find(Index(2)).run_last, Index(3));
  EXPECT_EQ(index.find(Index(5)).location.offset, 200u);
  EXPECT_EQ(index.find(Index(5)).run_last, Index(5));
}

TEST(WalIndex, ALowerRecordReplacesTheConflictingSuffix) {
  WalIndex index;
  index.append_record(Index(1), 10, at(1, 32));  // 1..10
  index.append_record(Index(4), 2, at(1, 500));  // 4..5 replace 4..10
  EXPECT_EQ(index.last(), Index(5));
  EXPECT_EQ(index.find(Index(3)).run_last, Index(3));
  EXPECT_EQ(index.find(Index(4)).location.offset, 500u);
  EXPECT_EQ(index.run_count(), 2u);
}

TEST(WalIndex, RemovingAPrefixKeepsThePartlyLiveRecord) {
  WalIndex index;
  index.append_record(Index(1), 5, at(1, 32));
  index.append_record(Index(6), 5, at(2, 32));
  index.remove_prefix(Index(7));
  EXPECT_EQ(index.base(), Index(7));
  EXPECT_EQ(index.find(Index(8)).location.segment, 2u);
  EXPECT_EQ(index.oldest_segment(), 2u);
  index.remove_prefix(Index(20));
  EXPECT_TRUE(index.empty());
  EXPECT_EQ(index.base(), Index(20));
  EXPECT_EQ(index.last(), Index(20));
  EXPECT_FALSE(index.oldest_segment());
}

TEST(WalIndex, ReplayIsAnchoredByTheFirstRecordItSees) {
  WalIndex index;  // segments before the one holding entry 101 were removed
  ASSERT_TRUE(index.replay_record(Index(101), 100, at(5, 32)).is_ok());
  ASSERT_TRUE(index.replay_record(Index(50), 21, at(5, 900)).is_ok());  // replaced 50..200
  index.replay_prefix_removed(Index(60));
  index.finish_replay();
  EXPECT_EQ(index.base(), Index(60));
  EXPECT_EQ(index.last(), Index(70));
  EXPECT_EQ(index.find(Index(61)).location.offset, 900u);
}

TEST(WalIndex, AMarkerBeforeAnyRecordOnlyMattersForAnEmptyLog) {
  WalIndex index;
  index.replay_prefix_removed(Index(50));
  ASSERT_TRUE(index.replay_record(Index(101), 10, at(7, 32)).is_ok());
  index.finish_replay();
  EXPECT_EQ(index.base(), Index(100));

  WalIndex empty;
  empty.replay_prefix_removed(Index(50));
  empty.finish_replay();
  EXPECT_EQ(empty.base(), Index(50));
  EXPECT_EQ(empty.last(), Index(50));
}

TEST(WalIndex, AGapInReplayIsCorruption) {
  WalIndex index;
  ASSERT_TRUE(index.replay_record(Index(1), 5, at(1, 32)).is_ok());
  Status gap = index.replay_record(Index(8), 1, at(1, 400));
  EXPECT_EQ(gap.code(), StatusCode::kCorruption);
  EXPECT_NE(gap.message().find("gap"), std::string::npos);
}

}  // namespace
}  // namespace keel::storage
