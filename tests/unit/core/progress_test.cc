// Progress and Inflights: the leader's per-follower flow control (probe sends
// one append at a time; replicate streams within a count and byte window).
#include "core/progress.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace keel::core {
namespace {

using namespace testutil;  // NOLINT(google-build-using-namespace): test vocabulary

TEST(Inflights, FullOnceTheCountReachesTheBound) {
  Inflights inflights(3, 1'000'000);
  inflights.add(I(1), 10);
  inflights.add(I(2), 10);
  EXPECT_FALSE(inflights.full());
  inflights.add(I(3), 10);
  EXPECT_TRUE(inflights.full());
  EXPECT_EQ(inflights.count(), 3u);
}

TEST(Inflights, FullOnceTheBytesReachTheBound) {
  Inflights inflights(100, 250);
  inflights.add(I(1), 100);
  inflights.add(I(2), 100);
  EXPECT_FALSE(inflights.full());  // 200 < 250
  inflights.add(I(3), 100);
  EXPECT_TRUE(inflights.full());  // 300 >= 250
  EXPECT_EQ(inflights.bytes(), 300u);
}

TEST(Inflights, FreeUpToForgetsAcknowledgedAppendsAndTheirBytes) {
  Inflights inflights(3, 1000);
  inflights.add(I(2), 10);
  inflights.add(I(4), 20);
  inflights.add(I(6), 30);
  inflights.free_up_to(I(4));
  EXPECT_EQ(inflights.count(), 1u);
  EXPECT_EQ(inflights.bytes(), 30u);
  inflights.free_up_to(I(5));  // inside the remaining append: nothing freed
  EXPECT_EQ(inflights.count(), 1u);
  inflights.clear();
  EXPECT_EQ(inflights.count(), 0u);
  EXPECT_EQ(inflights.bytes(), 0u);
}

TEST(Progress, ProbeStateAllowsOneOutstandingAppendWithoutMovingNext) {
  Progress progress(I(5), 8, 1000);
  EXPECT_EQ(progress.state, ProgressState::kProbe);
  EXPECT_TRUE(progress.can_send());
  progress.sent(I(7), 100, /*had_entries=*/true);
  EXPECT_FALSE(progress.can_send());
  EXPECT_EQ(progress.next_index, I(5));
  EXPECT_EQ(progress.inflights.count(), 0u);
}

TEST(Progress, AcknowledgementMovesMatchAndNextAndEndsTheProbeWait) {
  Progress progress(I(5), 8, 1000);
  progress.sent(I(7), 100, true);
  EXPECT_TRUE(progress.acknowledge(I(7)));
  EXPECT_EQ(progress.match_index, I(7));
  EXPECT_EQ(progress.next_index, I(8));
  EXPECT_TRUE(progress.can_send());
}

TEST(Progress, StaleAcknowledgementIsReportedAndChangesNoMatch) {
  Progress progress(I(1), 8, 1000);
  ASSERT_TRUE(progress.acknowledge(I(5)));
  EXPECT_FALSE(progress.acknowledge(I(3)));
  EXPECT_FALSE(progress.acknowledge(I(5)));
  EXPECT_EQ(progress.match_index, I(5));
  EXPECT_EQ(progress.next_index, I(6));
}

TEST(Progress, ReplicateStateStreamsUntilTheWindowIsFull) {
  Progress progress(I(1), 2, 1000);
  ASSERT_TRUE(progress.acknowledge(I(3)));
  progress.become_replicate();
  EXPECT_EQ(progress.next_index, I(4));
  progress.sent(I(5), 10, true);
  EXPECT_EQ(progress.next_index, I(6));  // optimistic: does not wait for the answer
  EXPECT_TRUE(progress.can_send());
  progress.sent(I(6), 10, true);
  EXPECT_FALSE(progress.can_send());
  progress.acknowledge(I(5));
  EXPECT_TRUE(progress.can_send());
  EXPECT_EQ(progress.inflights.count(), 1u);
}

TEST(Progress, AppendWithoutEntriesTakesNoRoomInTheWindow) {
  Progress progress(I(1), 1, 1000);
  progress.become_replicate();
  progress.sent(I(0), 0, /*had_entries=*/false);
  EXPECT_TRUE(progress.can_send());
  EXPECT_EQ(progress.next_index, I(1));
}

TEST(Progress, BecomeProbeRewindsToMatchAndEmptiesTheWindow) {
  Progress progress(I(1), 8, 1000);
  ASSERT_TRUE(progress.acknowledge(I(2)));
  progress.become_replicate();
  progress.sent(I(5), 10, true);
  progress.sent(I(9), 10, true);
  progress.become_probe();
  EXPECT_EQ(progress.state, ProgressState::kProbe);
  EXPECT_EQ(progress.next_index, I(3));
  EXPECT_EQ(progress.inflights.count(), 0u);
  EXPECT_TRUE(progress.can_send());
}

}  // namespace
}  // namespace keel::core
