// The quorum module (core/quorum.h): majorities and joint majorities for
// commits, elections and "a majority agrees".
#include "core/quorum.h"

#include <map>

#include <gtest/gtest.h>

namespace keel::core {
namespace {

std::vector<ServerId> ids(std::initializer_list<std::uint64_t> values) {
  std::vector<ServerId> out;
  for (auto v : values) out.push_back(ServerId{v});
  return out;
}

// Looks values up in a map; servers not in it have reached 0.
auto from(const std::map<std::uint64_t, std::uint64_t>& values) {
  return [values](ServerId id) {
    auto it = values.find(id.value);
    return it == values.end() ? 0 : it->second;
  };
}

TEST(Quorum, MajoritySizes) {
  EXPECT_EQ(MajorityConfig(ids({1})).quorum(), 1u);
  EXPECT_EQ(MajorityConfig(ids({1, 2})).quorum(), 2u);
  EXPECT_EQ(MajorityConfig(ids({1, 2, 3})).quorum(), 2u);
  EXPECT_EQ(MajorityConfig(ids({1, 2, 3, 4})).quorum(), 3u);
  EXPECT_EQ(MajorityConfig(ids({1, 2, 3, 4, 5})).quorum(), 3u);
  EXPECT_EQ(MajorityConfig(ids({3, 1, 3, 2})).voters(), ids({1, 2, 3}))
      << "sorted, duplicates dropped";
  EXPECT_EQ(MajorityConfig().quorum(), 0u);
}

TEST(Quorum, CommittedIsWhatAMajorityReached) {
  std::vector<std::uint64_t> scratch;
  const MajorityConfig three(ids({1, 2, 3}));
  EXPECT_EQ(three.committed(from({{1, 10}, {2, 7}, {3, 4}}), scratch), 7u);
  EXPECT_EQ(three.committed(from({{1, 10}}), scratch), 0u) << "one of three is no majority";
  EXPECT_EQ(three.committed(from({{1, 10}, {2, 10}, {9, 99}}), scratch), 10u)
      << "non-voters do not count";
  const MajorityConfig four(ids({1, 2, 3, 4}));
  EXPECT_EQ(four.committed(from({{1, 10}, {2, 9}, {3, 8}, {4, 1}}), scratch), 8u);
  EXPECT_EQ(MajorityConfig(ids({5})).committed(from({{5, 3}}), scratch), 3u);
  EXPECT_EQ(MajorityConfig().committed(from({}), scratch),
            std::numeric_limits<std::uint64_t>::max());
}

TEST(Quorum, VotesWinLoseOrWait) {
  const MajorityConfig three(ids({1, 2, 3}));
  EXPECT_EQ(three.vote_result({{ServerId{1}, true}}), VoteResult::kPending);
  EXPECT_EQ(three.vote_result({{ServerId{1}, true}, {ServerId{2}, true}}), VoteResult::kWon);
  EXPECT_EQ(three.vote_result({{ServerId{1}, true}, {ServerId{2}, false}}), VoteResult::kPending);
  EXPECT_EQ(three.vote_result({{ServerId{2}, false}, {ServerId{3}, false}}), VoteResult::kLost);
  // Answers from non-voters are ignored.
  EXPECT_EQ(three.vote_result({{ServerId{1}, true}, {ServerId{7}, true}}), VoteResult::kPending);
  EXPECT_EQ(MajorityConfig(ids({1})).vote_result({{ServerId{1}, true}}), VoteResult::kWon);
}

TEST(Quorum, AgreesCountsVotersThatSayYes) {
  const MajorityConfig five(ids({1, 2, 3, 4, 5}));
  EXPECT_TRUE(five.agrees([](ServerId id) { return id.value <= 3; }));
  EXPECT_FALSE(five.agrees([](ServerId id) { return id.value <= 2; }));
  EXPECT_TRUE(MajorityConfig().agrees([](ServerId) { return false; }));
}

TEST(Quorum, JointNeedsBothMajorities) {
  std::vector<std::uint64_t> scratch;
  // Old {1,2,3}, new {3,4,5}.
  const JointConfig joint(MajorityConfig(ids({3, 4, 5})), MajorityConfig(ids({1, 2, 3})));
  ASSERT_TRUE(joint.joint());
  // The old majority reached 10, the new one only 5: 5 is committed.
  EXPECT_EQ(joint.committed(from({{1, 10}, {2, 10}, {3, 5}, {4, 5}}), scratch), 5u);
  // A majority of the new alone commits nothing.
  EXPECT_EQ(joint.committed(from({{3, 9}, {4, 9}, {5, 9}}), scratch), 0u);
  EXPECT_EQ(joint.vote_result({{ServerId{4}, true}, {ServerId{5}, true}}), VoteResult::kPending)
      << "a majority of one half is not enough";
  EXPECT_EQ(
      joint.vote_result(
          {{ServerId{1}, true}, {ServerId{2}, true}, {ServerId{4}, true}, {ServerId{5}, true}}),
      VoteResult::kWon);
  EXPECT_EQ(
      joint.vote_result(
          {{ServerId{1}, false}, {ServerId{2}, false}, {ServerId{4}, true}, {ServerId{5}, true}}),
      VoteResult::kLost)
      << "losing either half loses";
  EXPECT_FALSE(joint.agrees([](ServerId id) { return id.value >= 3; }));
  EXPECT_TRUE(joint.agrees([](ServerId id) { return id.value != 5; }));
  EXPECT_TRUE(joint.contains(ServerId{1}) && joint.contains(ServerId{5}));
}

TEST(Quorum, JointWithoutOutgoingIsAPlainMajority) {
  std::vector<std::uint64_t> scratch;
  const JointConfig plain(MajorityConfig(ids({1, 2, 3})));
  EXPECT_FALSE(plain.joint());
  EXPECT_EQ(plain.committed(from({{1, 4}, {2, 6}}), scratch), 4u);
  EXPECT_EQ(plain.vote_result({{ServerId{1}, true}, {ServerId{3}, true}}), VoteResult::kWon);
}

}  // namespace
}  // namespace keel::core
