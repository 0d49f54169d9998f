// ReadRounds (core/read_index.h) on its own: a read joins the round that has
// not been sent yet, a confirmed round releases the reads up to it in order
// and starts the lease at its sending, and a leader that steps down hands
// every waiting read back.
#include <gtest/gtest.h>

#include "core/read_index.h"

namespace keel::core {
namespace {

TEST(ReadRounds, AReadJoinsTheRoundNotYetSent) {
  ReadRounds rounds;
  EXPECT_EQ(rounds.open(), std::make_pair(std::uint64_t{1}, true));
  EXPECT_EQ(rounds.open(), std::make_pair(std::uint64_t{1}, false)) << "still pending: joined";
  EXPECT_TRUE(rounds.round_pending());
  rounds.sent(10);
  EXPECT_FALSE(rounds.round_pending());
  EXPECT_EQ(rounds.oldest_unconfirmed(), std::optional<std::uint64_t>(1));
  EXPECT_EQ(rounds.open(), std::make_pair(std::uint64_t{2}, true)) << "round 1 went out: a new one";
}

TEST(ReadRounds, AConfirmedRoundReleasesItsReadsInOrderAndStartsTheLeaseAtItsSending) {
  ReadRounds rounds;
  rounds.open();
  rounds.wait(PendingRead{1, ServerId{1}, Index{5}, 1});
  rounds.sent(10);
  rounds.open();
  rounds.wait(PendingRead{2, ServerId{2}, Index{6}, 2});
  rounds.wait(PendingRead{3, ServerId{1}, Index{6}, 2});
  rounds.sent(20);
  EXPECT_EQ(rounds.waiting(), 3u);
  EXPECT_TRUE(rounds.is_waiting(ServerId{2}, 2));
  EXPECT_FALSE(rounds.is_waiting(ServerId{1}, 2));
  EXPECT_FALSE(rounds.lease_start_tick().has_value());

  std::vector<PendingRead> first = rounds.confirm(1, 25, false);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].request_id, 1u);
  EXPECT_EQ(rounds.lease_start_tick(), std::optional<std::uint64_t>(10)) << "from the sending";
  EXPECT_TRUE(rounds.confirm(1, 26, false).empty()) << "nothing newer confirmed";

  std::vector<PendingRead> second = rounds.confirm(2, 30, false);
  ASSERT_EQ(second.size(), 2u);
  EXPECT_EQ(second[0].request_id, 2u);
  EXPECT_EQ(second[1].request_id, 3u);
  EXPECT_EQ(rounds.lease_start_tick(), std::optional<std::uint64_t>(20));
  EXPECT_EQ(rounds.waiting(), 0u);
  EXPECT_FALSE(rounds.oldest_unconfirmed().has_value());
}

TEST(ReadRounds, TheLeaseFromTheAcknowledgementIsOnlyTheCanarysRule) {
  ReadRounds rounds;
  rounds.open();
  rounds.sent(10);
  rounds.confirm(1, 17, /*lease_from_ack=*/true);
  EXPECT_EQ(rounds.lease_start_tick(), std::optional<std::uint64_t>(17));
}

TEST(ReadRounds, SteppingDownHandsBackEveryWaitingRead) {
  ReadRounds rounds;
  rounds.open();
  rounds.wait(PendingRead{7, ServerId{1}, Index{3}, 1});
  rounds.wait(PendingRead{8, ServerId{3}, Index{3}, 1});
  std::vector<PendingRead> all = rounds.take_all();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].request_id, 7u);
  EXPECT_EQ(rounds.waiting(), 0u);
}

}  // namespace
}  // namespace keel::core
