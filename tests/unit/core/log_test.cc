// RaftLog: positions, the §5.3 consistency check, truncation, bounded slices,
// the §5.4.1 up-to-date rule and the searches behind rejection hints.
#include "core/log.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace keel::core {
namespace {

using namespace testutil;  // NOLINT(google-build-using-namespace): test vocabulary

// A log that continues after (4, term 2), as after a snapshot at index 4.
RaftLog log_after_base() {
  return RaftLog(I(4), T(2),
                 {LogEntry{T(2), I(5), EntryType::kCommand, "a"},
                  LogEntry{T(3), I(6), EntryType::kCommand, "b"}});
}

TEST(RaftLog, EmptyLogKnowsOnlyPositionZeroWithTermZero) {
  RaftLog log;
  EXPECT_EQ(log.first_index(), I(1));
  EXPECT_EQ(log.last_index(), I(0));
  EXPECT_EQ(log.last_term(), T(0));
  EXPECT_EQ(log.term_at(I(0)), T(0));
  EXPECT_EQ(log.term_at(I(1)), std::nullopt);
  EXPECT_TRUE(log.matches(I(0), T(0)));
}

TEST(RaftLog, TermAtKnowsTheBasePositionAndEveryEntryButNothingOutside) {
  RaftLog log = log_after_base();
  EXPECT_EQ(log.first_index(), I(5));
  EXPECT_EQ(log.last_index(), I(6));
  EXPECT_EQ(log.last_term(), T(3));
  EXPECT_EQ(log.term_at(I(4)), T(2));  // the base position
  EXPECT_EQ(log.term_at(I(5)), T(2));
  EXPECT_EQ(log.term_at(I(6)), T(3));
  EXPECT_EQ(log.term_at(I(3)), std::nullopt);  // compacted away
  EXPECT_EQ(log.term_at(I(7)), std::nullopt);  // not yet written
}

TEST(RaftLog, MatchesRequiresTheSameTermAtTheSameIndex) {
  RaftLog log = log_after_base();
  EXPECT_TRUE(log.matches(I(4), T(2)));
  EXPECT_TRUE(log.matches(I(6), T(3)));
  EXPECT_FALSE(log.matches(I(6), T(2)));
  EXPECT_FALSE(log.matches(I(7), T(3)));
  EXPECT_FALSE(log.matches(I(3), T(2)));
}

TEST(RaftLog, TruncateFromRemovesTheSuffixAndKeepsThePrefix) {
  RaftLog log(I(0), T(0), log_with_terms({1, 1, 2, 2, 3}));
  log.truncate_from(I(3));
  EXPECT_EQ(log.last_index(), I(2));
  EXPECT_EQ(log.last_term(), T(1));
  EXPECT_EQ(log.term_at(I(3)), std::nullopt);
  // The freed position can take an entry of a newer term.
  log.append(LogEntry{T(4), I(3), EntryType::kCommand, "new"});
  EXPECT_EQ(log.at(I(3)).data, "new");
}

TEST(RaftLog, TruncateFromPastTheEndChangesNothing) {
  RaftLog log(I(0), T(0), log_with_terms({1, 1}));
  log.truncate_from(I(3));
  EXPECT_EQ(log.last_index(), I(2));
}

TEST(RaftLog, SliceIsLimitedByEntryCount) {
  RaftLog log(I(0), T(0), log_with_terms({1, 1, 1, 1, 1}));
  std::vector<LogEntry> slice = log.slice(I(2), I(5), 2, UINT64_MAX);
  ASSERT_EQ(slice.size(), 2u);
  EXPECT_EQ(slice.front().index, I(2));
  EXPECT_EQ(slice.back().index, I(3));
}

TEST(RaftLog, SliceIsLimitedByBytes) {
  RaftLog log(I(0), T(0), log_with_terms({1, 1, 1, 1, 1}));
  const std::uint64_t one = entry_size_bytes(log.at(I(1)));
  // Room for two entries and a half: only whole entries are taken.
  EXPECT_EQ(log.slice(I(1), I(5), 100, 2 * one + one / 2).size(), 2u);
  EXPECT_EQ(log.slice(I(1), I(5), 100, 2 * one).size(), 2u);
}

TEST(RaftLog, SliceReturnsOneEntryEvenIfItAloneExceedsTheByteLimit) {
  RaftLog log(I(0), T(0), {LogEntry{T(1), I(1), EntryType::kCommand, std::string(1000, 'x')}});
  std::vector<LogEntry> slice = log.slice(I(1), I(1), 10, 10);
  ASSERT_EQ(slice.size(), 1u);
  EXPECT_EQ(slice.front().index, I(1));
}

TEST(RaftLog, SliceIsClampedToTheLogAndEmptyOutsideIt) {
  RaftLog log = log_after_base();
  EXPECT_EQ(log.slice(I(5), I(100), 100, UINT64_MAX).size(), 2u);
  EXPECT_TRUE(log.slice(I(4), I(6), 100, UINT64_MAX).empty());  // starts before the first entry
  EXPECT_TRUE(log.slice(I(6), I(5), 100, UINT64_MAX).empty());  // empty range
}

TEST(RaftLog, UpToDateRuleLaterLastTermWinsRegardlessOfLength) {
  RaftLog log(I(0), T(0), log_with_terms({1, 1, 2, 2, 2}));
  EXPECT_TRUE(log.is_up_to_date(I(1), T(3)));   // shorter but a later term
  EXPECT_FALSE(log.is_up_to_date(I(9), T(1)));  // longer but an older term
}

TEST(RaftLog, UpToDateRuleEqualLastTermsNeedAtLeastTheSameLength) {
  RaftLog log(I(0), T(0), log_with_terms({1, 1, 2, 2, 2}));
  EXPECT_TRUE(log.is_up_to_date(I(5), T(2)));
  EXPECT_TRUE(log.is_up_to_date(I(6), T(2)));
  EXPECT_FALSE(log.is_up_to_date(I(4), T(2)));
}

TEST(RaftLog, FirstIndexOfTermAtFindsTheStartOfTheRunHoldingTheIndex) {
  RaftLog log(I(0), T(0), log_with_terms({1, 1, 4, 4, 4, 5}));
  EXPECT_EQ(log.first_index_of_term_at(I(5)), I(3));
  EXPECT_EQ(log.first_index_of_term_at(I(3)), I(3));
  EXPECT_EQ(log.first_index_of_term_at(I(2)), I(1));
  EXPECT_EQ(log.first_index_of_term_at(I(6)), I(6));
  EXPECT_EQ(log.first_index_of_term_at(I(0)), I(0));
}

TEST(RaftLog, LastIndexOfTermFindsTheEndOfThatTermOrNothing) {
  RaftLog log(I(0), T(0), log_with_terms({1, 1, 4, 4, 5}));
  EXPECT_EQ(log.last_index_of_term(T(1)), I(2));
  EXPECT_EQ(log.last_index_of_term(T(4)), I(4));
  EXPECT_EQ(log.last_index_of_term(T(5)), I(5));
  EXPECT_EQ(log.last_index_of_term(T(2)), std::nullopt);  // a term the log skipped
  EXPECT_EQ(log.last_index_of_term(T(6)), std::nullopt);  // a term after the log
  EXPECT_EQ(log.last_index_of_term(T(0)), std::nullopt);
}

TEST(RaftLog, CompactMovesTheBaseAndRemembersItsTerm) {
  RaftLog log(I(0), T(0), log_with_terms({1, 1, 2, 2, 3}));
  log.compact(I(3));
  EXPECT_EQ(log.base_index(), I(3));
  EXPECT_EQ(log.base_term(), T(2));
  EXPECT_EQ(log.first_index(), I(4));
  EXPECT_EQ(log.last_index(), I(5));
  EXPECT_EQ(log.term_at(I(3)), T(2));
  EXPECT_EQ(log.term_at(I(2)), std::nullopt);
  EXPECT_EQ(log.at(I(4)).data, "4/2");
  // Compacting to the base changes nothing; compacting everything leaves an
  // empty log that still knows where it continues.
  log.compact(I(3));
  EXPECT_EQ(log.first_index(), I(4));
  log.compact(I(5));
  EXPECT_TRUE(log.empty());
  EXPECT_EQ(log.last_index(), I(5));
  EXPECT_EQ(log.last_term(), T(3));
  EXPECT_TRUE(log.matches(I(5), T(3)));
  log.append(LogEntry{T(3), I(6), EntryType::kCommand, "next"});
  EXPECT_EQ(log.at(I(6)).data, "next");
}

TEST(RaftLog, ResetDropsEveryEntryAndContinuesAfterTheNewBase) {
  RaftLog log(I(0), T(0), log_with_terms({1, 1, 2, 2, 3}));
  log.reset(I(9), T(4));
  EXPECT_TRUE(log.empty());
  EXPECT_EQ(log.first_index(), I(10));
  EXPECT_EQ(log.last_term(), T(4));
  EXPECT_EQ(log.term_at(I(5)), std::nullopt);
  EXPECT_TRUE(log.matches(I(9), T(4)));
  // Below the old end too: nothing of the old log survives.
  log.reset(I(2), T(4));
  EXPECT_EQ(log.last_index(), I(2));
  EXPECT_EQ(log.term_at(I(1)), std::nullopt);
}

TEST(RaftLog, CompactingPastTheEndIsAProgrammingError) {
  RaftLog log(I(0), T(0), log_with_terms({1, 1}));
  EXPECT_DEATH(log.compact(I(3)), "compaction stays within the log");
}

TEST(RaftLog, LastIndexOfTermCountsTheBasePosition) {
  RaftLog log(I(4), T(2), {LogEntry{T(3), I(5), EntryType::kCommand, "a"}});
  EXPECT_EQ(log.last_index_of_term(T(2)), I(4));
  EXPECT_EQ(log.last_index_of_term(T(3)), I(5));
  EXPECT_EQ(log.last_index_of_term(T(1)), std::nullopt);
}

}  // namespace
}  // namespace keel::core
