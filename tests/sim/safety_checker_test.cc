// SafetyChecker: each property, fed what a broken cluster would show, must
// report a violation; fed what a correct one shows, must stay quiet.
#include "sim/safety_checker.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <keel/log_store.h>

#include "core/codec.h"
#include "runtime/log_writer.h"

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

// --- promises a server makes in what it sends ------------------------------------

std::shared_ptr<MemoryStableStore> stable_at(std::uint64_t term, std::uint64_t vote) {
  auto store = std::make_shared<MemoryStableStore>();
  EXPECT_TRUE(store
                  ->set(runtime::kHardStateKey, core::encode_hard_state(core::HardState{
                                                    Term{term}, ServerId{vote}, Index{}}))
                  .is_ok());
  return store;
}

core::Message message(core::MessageType type, ServerId from, ServerId to, std::uint64_t term) {
  return core::Message{.type = type, .from = from, .to = to, .term = Term{term}};
}

TEST_F(SafetyCheckerTest, a_message_of_a_term_not_yet_durable_breaks_persistence_ordering) {
  auto log = store_of({term_start(1, 1)});
  auto stable = stable_at(1, 0);
  const auto append = message(core::MessageType::kAppendRequest, kOne, kTwo, 1);
  checker_.on_send(kOne, append, *log, *stable, {});
  EXPECT_TRUE(violations_.empty());
  // A pre-vote names a term nobody holds yet: fine.
  checker_.on_send(kOne, message(core::MessageType::kPreVoteRequest, kOne, kTwo, 2), *log, *stable,
                   {});
  EXPECT_TRUE(violations_.empty());
  checker_.on_send(kOne, message(core::MessageType::kAppendRequest, kOne, kTwo, 2), *log, *stable,
                   {});
  EXPECT_TRUE(reported("persistence ordering"));
}

TEST_F(SafetyCheckerTest, a_vote_sent_before_it_is_durable_breaks_persistence_ordering) {
  auto log = store_of({term_start(1, 1)});
  auto vote = message(core::MessageType::kVoteResponse, kTwo, kOne, 2);
  checker_.on_send(kTwo, vote, *log, *stable_at(2, 1), {});
  EXPECT_TRUE(violations_.empty());
  vote.to = kThree;
  checker_.on_send(kTwo, vote, *log, *stable_at(2, 1), {});
  EXPECT_TRUE(reported("persistence ordering"));
}

TEST_F(SafetyCheckerTest, an_acknowledgement_of_entries_not_stored_breaks_persistence_ordering) {
  auto log = store_of({term_start(1, 1), command(2, 1, "a")});
  auto ack = message(core::MessageType::kAppendResponse, kTwo, kOne, 1);
  ack.match_index = Index{2};
  checker_.on_send(kTwo, ack, *log, *stable_at(1, 0), {});
  EXPECT_TRUE(violations_.empty());
  ack.match_index = Index{3};
  checker_.on_send(kTwo, ack, *log, *stable_at(1, 0), {});
  EXPECT_TRUE(reported("persistence ordering"));
  // Entries a leader of a newer term replaced since may still be acknowledged.
  violations_.clear();
  checker_.on_send(kTwo, ack, *log, *stable_at(2, 0), {});
  EXPECT_TRUE(violations_.empty());
}

TEST_F(SafetyCheckerTest, a_read_that_misses_an_entry_committed_before_it_breaks_read_freshness) {
  auto log = store_of({term_start(1, 1), command(2, 1, "a")});
  checker_.on_stats(kOne, stats(RaftState::kLeader, 1, 2, 2, 2, 1), *log);
  const SafetyChecker::ReadCall call = checker_.read_call(kTwo, Duration{0});
  checker_.on_read_served(kTwo, Consistency::kLinearizable, call, Index{2}, Duration{0});
  EXPECT_TRUE(violations_.empty());
  checker_.on_read_served(kTwo, Consistency::kLinearizable, call, Index{1}, Duration{0});
  EXPECT_TRUE(reported("read freshness"));
}

class LeaseCheckTest : public SafetyCheckerTest {
 protected:
  using Type = core::MessageType;
  // Leader 1 of term 1 sends round 1 at 0 s, its lease ending at 1 s; a
  // voter acknowledges it.
  void acknowledged_by(ServerId voter) {
    auto heartbeat = message(Type::kHeartbeatRequest, kOne, voter, 1);
    heartbeat.read_round = 1;
    checker_.on_send(kOne, heartbeat, *log_, *stable_, {Duration{0}, std::chrono::seconds(1)});
    auto ack = message(Type::kHeartbeatResponse, voter, kOne, 1);
    ack.read_round = 1;
    checker_.on_send(voter, ack, *log_, *stable_, {std::chrono::milliseconds(10), Duration{0}});
  }
  void vote_request(ServerId from, Duration at) {
    checker_.on_send(from, message(Type::kVoteRequest, from, kOne, 2), *log_,
                     *stable_at(2, from.value), {at, Duration{0}});
  }
  // Server 1 answers a lease read invoked at `at`, at once.
  void served_lease_read(Duration at) {
    checker_.on_read_served(kOne, Consistency::kLease, checker_.read_call(kOne, at), Index{1}, at);
  }
  std::shared_ptr<MemoryLogStore> log_ = store_of({term_start(1, 1)});
  std::shared_ptr<MemoryStableStore> stable_ = stable_at(1, 1);
};

TEST_F(LeaseCheckTest, campaigning_inside_a_lease_one_acknowledged_breaks_the_lease_promise) {
  checker_.set_voters({kOne, kTwo, kThree});
  checker_.on_stats(kOne, stats(RaftState::kLeader, 1, 1, 1, 1, 1), *log_);
  acknowledged_by(kTwo);
  vote_request(kTwo, std::chrono::milliseconds(1500));  // the lease is over
  EXPECT_TRUE(violations_.empty()) << violations_.front();
  vote_request(kTwo, std::chrono::milliseconds(500));
  EXPECT_TRUE(reported("lease promise"));
}

TEST_F(LeaseCheckTest, a_leader_that_stepped_down_has_no_lease_to_break) {
  checker_.set_voters({kOne, kTwo, kThree});
  checker_.on_stats(kOne, stats(RaftState::kLeader, 1, 1, 1, 1, 1), *log_);
  acknowledged_by(kTwo);
  checker_.on_stats(kOne, stats(RaftState::kFollower, 1, 1, 1, 1), *log_);
  vote_request(kTwo, std::chrono::milliseconds(500));
  EXPECT_TRUE(violations_.empty()) << violations_.front();
}

TEST_F(LeaseCheckTest, a_lease_read_without_a_majority_of_live_leases_breaks_lease_reads) {
  checker_.set_voters({kOne, kTwo, kThree});
  checker_.on_stats(kOne, stats(RaftState::kLeader, 1, 1, 1, 1, 1), *log_);
  acknowledged_by(kTwo);
  served_lease_read(std::chrono::milliseconds(900));
  EXPECT_TRUE(violations_.empty()) << violations_.front();
  served_lease_read(std::chrono::milliseconds(1100));
  EXPECT_TRUE(violations_.empty()) << "judged once the server's step is over";
  checker_.settle_reads(kOne, std::chrono::milliseconds(1100));
  EXPECT_TRUE(violations_.empty()) << "still the same instant";
  checker_.settle_reads(kOne, std::chrono::milliseconds(1101));
  EXPECT_TRUE(reported("lease reads"));
}

TEST_F(LeaseCheckTest, a_lease_read_the_configuration_of_its_answer_makes_the_sole_voter_is_fine) {
  // Leader 1 of {1, 2} removes 2 and answers a lease read in the same step:
  // it is the only voter of the configuration it answered under, which the
  // checker learns when the step is over.
  checker_.set_voters({kOne, kTwo});
  checker_.on_stats(kOne, stats(RaftState::kLeader, 1, 1, 1, 1, 1), *log_);
  served_lease_read(std::chrono::milliseconds(1100));
  Configuration alone;
  alone.servers.push_back(Server{kOne, "", Suffrage::kVoter});
  checker_.set_configuration(kOne, alone, std::chrono::milliseconds(1100));
  checker_.settle_reads(kOne, std::chrono::milliseconds(1200));
  EXPECT_TRUE(violations_.empty()) << violations_.front();
  // Under {1, 2}, called and answered, the same read is not confirmed.
  Configuration both = alone;
  both.servers.push_back(Server{kTwo, "", Suffrage::kVoter});
  checker_.set_configuration(kOne, both, std::chrono::milliseconds(1300));
  served_lease_read(std::chrono::milliseconds(1300));
  checker_.settle_reads(kOne, std::chrono::milliseconds(1400));
  EXPECT_TRUE(reported("lease reads"));
}

TEST_F(LeaseCheckTest, a_read_confirmed_only_by_a_round_sent_before_it_breaks_read_confirmation) {
  checker_.set_voters({kOne, kTwo, kThree});
  checker_.on_stats(kOne, stats(RaftState::kLeader, 1, 1, 1, 1, 1), *log_);
  const SafetyChecker::ReadCall before = checker_.read_call(kOne, Duration{0});
  acknowledged_by(kTwo);  // round 1, sent at 0 s: not before a read invoked at 0 s
  checker_.on_read_served(kOne, Consistency::kLinearizable, before, Index{1},
                          std::chrono::milliseconds(10));
  checker_.settle_reads(kOne, std::chrono::milliseconds(20));
  EXPECT_TRUE(violations_.empty()) << violations_.front();
  const SafetyChecker::ReadCall after = checker_.read_call(kOne, std::chrono::milliseconds(5));
  checker_.on_read_served(kOne, Consistency::kLinearizable, after, Index{1},
                          std::chrono::milliseconds(20));
  checker_.settle_reads(kOne, std::chrono::milliseconds(30));
  EXPECT_TRUE(reported("read confirmation"));
}

TEST_F(LeaseCheckTest, a_lease_read_after_a_newer_leader_was_elected_breaks_lease_reads) {
  checker_.set_voters({kOne, kTwo, kThree});
  checker_.on_stats(kOne, stats(RaftState::kLeader, 1, 1, 1, 1, 1), *log_);
  acknowledged_by(kTwo);
  checker_.on_stats(kThree, stats(RaftState::kLeader, 2, 1, 1, 1), *log_);
  served_lease_read(std::chrono::milliseconds(100));
  EXPECT_TRUE(reported("lease reads"));
}

}  // namespace
}  // namespace keel::sim
