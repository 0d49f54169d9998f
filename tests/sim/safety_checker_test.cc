// SafetyChecker: each property, fed what a broken cluster would show, must
// report a violation; fed what a correct one shows, must stay quiet.
#include "sim/safety_checker.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <keel/log_store.h>

namespace keel::sim {
namespace {

LogEntry command(std::uint64_t index, std::uint64_t term, std::string data) {
  return LogEntry{Term{term}, Index{index}, EntryType::kCommand, std::move(data)};
}

LogEntry term_start(std::uint64_t index, std::uint64_t term) {
  return LogEntry{Term{term}, Index{index}, EntryType::kTermStart, {}};
}

std::shared_ptr<MemoryLogStore> store_of(const std::vector<LogEntry>& entries) {
  auto store = std::make_shared<MemoryLogStore>();
  EXPECT_TRUE(store->append(entries).is_ok());
  return store;
}

RaftStats stats(RaftState state, std::uint64_t term, std::uint64_t commit, std::uint64_t applied,
                std::uint64_t last, std::uint64_t ready_term = 0) {
  RaftStats s;
  s.state = state;
  s.term = Term{term};
  s.commit_index = Index{commit};
  s.applied_index = Index{applied};
  s.last_index = Index{last};
  s.ready_term = Term{ready_term};
  return s;
}

class SafetyCheckerTest : public ::testing::Test {
 protected:
  SafetyChecker checker_{[this](const std::string& v) { violations_.push_back(v); }};
  std::vector<std::string> violations_;

  bool reported(const std::string& property) const {
    for (const std::string& v : violations_) {
      if (v.rfind(property, 0) == 0) return true;
    }
    return false;
  }
};

const ServerId kOne{1};
const ServerId kTwo{2};
const ServerId kThree{3};

TEST_F(SafetyCheckerTest, servers_applying_the_same_entries_are_fine) {
  auto log = store_of({term_start(1, 1), command(2, 1, "a"), command(3, 1, "b")});
  for (ServerId id : {kOne, kTwo}) {
    checker_.on_start(id);
    checker_.on_apply(id, command(2, 1, "a"), *log);
    checker_.on_apply(id, command(3, 1, "b"), *log);
  }
  EXPECT_TRUE(violations_.empty()) << violations_.front();
  EXPECT_EQ(checker_.committed_entries(), 3U);
  EXPECT_EQ(checker_.applied(kOne), checker_.applied(kTwo));
}

TEST_F(SafetyCheckerTest, two_entries_applied_at_one_index_break_state_machine_safety) {
  auto first = store_of({term_start(1, 1), command(2, 1, "a")});
  auto second = store_of({term_start(1, 1), command(2, 2, "b")});
  checker_.on_apply(kOne, command(2, 1, "a"), *first);
  checker_.on_apply(kTwo, command(2, 2, "b"), *second);
  EXPECT_TRUE(reported("state-machine safety"));
}

TEST_F(SafetyCheckerTest, a_restarted_server_reapplying_its_log_is_fine_but_out_of_order_is_not) {
  auto log = store_of({term_start(1, 1), command(2, 1, "a"), command(3, 1, "b")});
  checker_.on_apply(kOne, command(2, 1, "a"), *log);
  checker_.on_start(kOne);  // restart: applies from 1 again
  checker_.on_apply(kOne, command(2, 1, "a"), *log);
  EXPECT_TRUE(violations_.empty());
  checker_.on_apply(kOne, command(2, 1, "a"), *log);
  EXPECT_TRUE(reported("contiguous apply"));
}

TEST_F(SafetyCheckerTest, skipping_a_command_breaks_contiguity) {
  auto log = store_of({term_start(1, 1), command(2, 1, "a"), command(3, 1, "b")});
  checker_.on_apply(kOne, command(3, 1, "b"), *log);
  EXPECT_TRUE(reported("contiguous apply"));
}

TEST_F(SafetyCheckerTest, applying_an_entry_the_store_does_not_hold_is_caught) {
  auto log = store_of({term_start(1, 1), command(2, 1, "a")});
  checker_.on_apply(kOne, command(2, 1, "not what is stored"), *log);
  EXPECT_TRUE(reported("state-machine safety"));
}

TEST_F(SafetyCheckerTest, two_leaders_in_one_term_break_election_safety) {
  auto log = store_of({term_start(1, 1)});
  checker_.on_stats(kOne, stats(RaftState::kLeader, 3, 0, 0, 1), *log);
  checker_.on_stats(kOne, stats(RaftState::kLeader, 3, 0, 0, 1), *log);
  EXPECT_TRUE(violations_.empty());
  Observation observation;
  observation.kind = Observation::Kind::kLeaderChanged;
  observation.term = Term{3};
  observation.leader = LeaderInfo{kTwo, "n2"};
  checker_.on_observation(kThree, observation);
  EXPECT_TRUE(reported("election safety"));
}

TEST_F(SafetyCheckerTest, commit_or_apply_going_back_or_apply_past_commit_is_caught) {
  auto log = store_of({term_start(1, 1), command(2, 1, "a")});
  checker_.on_stats(kOne, stats(RaftState::kFollower, 2, 2, 1, 2), *log);
  EXPECT_TRUE(violations_.empty());
  checker_.on_stats(kOne, stats(RaftState::kFollower, 2, 1, 1, 2), *log);
  EXPECT_TRUE(reported("monotonic commit"));
  checker_.on_stats(kTwo, stats(RaftState::kFollower, 2, 1, 2, 2), *log);
  EXPECT_TRUE(reported("applied <= committed"));
  checker_.on_stats(kTwo, stats(RaftState::kFollower, 1, 1, 1, 2), *log);
  EXPECT_TRUE(reported("monotonic term"));
}

TEST_F(SafetyCheckerTest, a_ready_leader_without_an_earlier_committed_entry_is_caught) {
  auto full = store_of({term_start(1, 1), command(2, 1, "a")});
  // Someone applies entry 2 while the highest term seen is 1 ...
  checker_.on_stats(kOne, stats(RaftState::kLeader, 1, 2, 2, 2, 1), *full);
  checker_.on_apply(kOne, command(2, 1, "a"), *full);
  // ... so a ready leader of term 2 must hold it.
  auto missing = store_of({term_start(1, 1), term_start(2, 2)});
  checker_.on_stats(kTwo, stats(RaftState::kLeader, 2, 2, 2, 2, 2), *missing);
  EXPECT_TRUE(reported("leader completeness"));
}

TEST_F(SafetyCheckerTest, a_leader_of_the_committing_term_is_not_held_to_it) {
  auto log = store_of({term_start(1, 1)});
  checker_.on_stats(kOne, stats(RaftState::kFollower, 2, 1, 1, 1), *log);
  auto applied = store_of({term_start(1, 1), command(2, 2, "a")});
  checker_.on_apply(kThree, command(2, 2, "a"), *applied);
  // A leader of term 2 may be a stale one that never had the entry.
  checker_.on_stats(kTwo, stats(RaftState::kLeader, 2, 1, 1, 1, 2), *log);
  EXPECT_TRUE(violations_.empty()) << violations_.front();
}

TEST_F(SafetyCheckerTest, logs_that_share_an_entry_but_differ_below_it_break_log_matching) {
  auto a = store_of({term_start(1, 1), command(2, 1, "x"), command(3, 2, "y")});
  auto b = store_of({term_start(1, 1), command(2, 1, "other"), command(3, 2, "y")});
  auto c = store_of({term_start(1, 1), command(2, 1, "x"), command(3, 3, "z")});
  checker_.check_logs({{kOne, a.get()}, {kThree, c.get()}}, {});
  EXPECT_TRUE(violations_.empty()) << "diverging after a common prefix is allowed";
  checker_.check_logs({{kOne, a.get()}, {kTwo, b.get()}}, {});
  EXPECT_TRUE(reported("log matching"));
}

}  // namespace
}  // namespace keel::sim
