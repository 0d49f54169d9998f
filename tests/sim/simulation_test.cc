// The simulator as a whole: runs replay bit for bit from their seed, a user's
// own Fsm runs in a SimCluster, faults do what they say, and a cluster that
// breaks a rule is caught.
#include "sim/simulation.h"

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "sim/kv_fsm.h"
#include "sim/nemesis.h"
#include "sim/node_storage.h"
#include "sim/sim_cluster.h"

namespace keel::sim {
namespace {

using namespace std::chrono_literals;

SimulationOptions swarm(std::uint64_t seed, std::size_t nodes) {
  SimulationOptions options;
  options.seed = seed;
  options.nodes = nodes;
  options.ops = 150;
  for (Fault fault : all_faults()) options.faults.insert(fault);
  return options;
}

TEST(Determinism, the_same_seed_gives_the_same_run_bit_for_bit) {
  for (std::uint64_t seed : {1, 2, 3, 17, 99}) {
    for (std::size_t nodes : {3, 5}) {
      const SimulationResult first = Simulation(swarm(seed, nodes)).run();
      const SimulationResult second = Simulation(swarm(seed, nodes)).run();
      EXPECT_TRUE(first.ok) << "seed " << seed << ": " << first.violations.front();
      EXPECT_EQ(first.hash, second.hash) << "seed " << seed << " nodes " << nodes;
      EXPECT_EQ(first.tasks, second.tasks) << "seed " << seed << " nodes " << nodes;
      EXPECT_EQ(first.virtual_time, second.virtual_time);
      EXPECT_EQ(first.outcomes, second.outcomes);
    }
  }
}

// The schedule a seed produces, pinned: a change to keel that the simulator
// notices (another task, another order) fails this test, and whoever makes
// it says here why the hashes moved. Changes to how production maps work onto
// threads must not move them: the simulator runs every interleaving anyway.
//
// Why they last moved:
//  - 2026-12: snapshots. Every server takes them (small thresholds drawn
//    per seed), cuts its log, and sends them to followers behind; two more
//    executors per server (snapshot persist, transfer I/O) take part in the
//    schedule, and a persist takes 1 to 30 ms of virtual time.
//  - 2026-12: a proposal's deadline is no longer a timer of its own; one
//    timer is armed for the earliest deadline (fewer tasks per command).
//    The thread policy, delivery into the loop's executor and shared
//    payloads left every hash as it was.
//  - 2026-12: restores. 2 % of the clients' operations (0.5 to 5 % in the
//    swarm) are a Raft::restore of a fresh state, a run of entries of about
//    a chunk each that every server stages and applies. Then 1 % more are
//    on-demand snapshots and 1 % leadership transfers (0 to 3 % each in the
//    swarm); a restore's FSM is restored before its snapshot is stored, and
//    the log is cut through it; a follower that lost a partial snapshot is
//    sent it again at once.
//  - 2026-12: observations about peers (contact lost and resumed, vote
//    requests): more observations reach the simulator's subscribers. The
//    read state's move to core/read_index left every hash as it was.
//  - 2026-12: membership. Every append, heartbeat and their answers carry
//    the follower's progress epoch (more bytes per frame), and a snapshot is
//    persisted after one more hop through the loop, which names the
//    configuration in force at its index; a leader announces its address
//    to followers it has not heard from lately.
//  - 2026-12: membership in the simulator. Candidates announce their
//    address on every vote request (longer frames), the simulator reads each
//    server's published configuration (one more call per step, no draw);
//    seeds without the membership fault draw the same plans.
//  - 2026-12: a voter that an uncommitted change removes campaigns until it
//    commits; a leader's first messages to a follower in each term carry
//    where the follower's membership began (a server that started empty
//    votes only past it: longer frames); the simulator reads every
//    server's configuration after each of its steps, and judges reads and
//    vote answers once the step that made them is over.
//  - 2026-12: membership churn in the default swarm (drawn apart, so these
//    seeds, which run every fault, keep their plans).
//  - 2026-12: split changes (a partition around a membership change as it
//    starts, and the 2015 schedule played on four voters) take a share of
//    the membership calls, and no other nemesis action runs while one is
//    in force. A leader also watches the servers added during its term
//    (kPeerContactLost and kPeerContactResumed for them in the trace).
//  - 2026-12: Config::snapshot_retain is drawn (1 or 2), and keel::Raft, not
//    the store, removes old snapshots; a follower keeps a stalled partial
//    snapshot for twice the idle timeout. Partition ids are never reused
//    (a stale heal timer healed a later partition early).
//  - 2026-12: the snapshot-crash fault (drawn apart: the seeds without it
//    keep their plans) crashes a server as it writes a snapshot.
//  - 2026-12: keel's log lines (RaftDependencies::logger) go into the trace
//    instead of stderr: every seed's hash moved, no schedule did.
//  - 2026-12: reads share one deadline timer (one for the earliest, not one
//    per read): fewer timer tasks in the loop, so every schedule moved.
//  - 2026-12: Config::commit_notice_delay (drawn: at once, 1 ms, or one
//    heartbeat interval; seed 6 drew "at once" and kept its hash). A leader
//    sends a commit notice only after the delay, from a timer, and none if
//    an append carried the commit meanwhile. The raft loop's move onto the
//    TCP transport's I/O thread left every hash as it was.
//  - 2026-12: a refused probe that teaches the leader nothing (a wiped
//    server under its old id refuses what it once acknowledged) waits for
//    the next heartbeat's answer instead of going out again at once: seeds
//    1, 5, 6 and 8 meet such a server (membership churn) and moved.
TEST(Determinism, the_schedule_of_a_seed_changes_only_when_this_test_says_why) {
  const std::pair<std::uint64_t, std::uint64_t> pinned[] = {
      {1, 0x1893d6485b7cab3c}, {2, 0xd4ad0af02aca561d}, {3, 0x9e16eb39143e1d7a},
      {4, 0xcfe6fdb7abd06b3c}, {5, 0x6d766c39aa1974dd}, {6, 0xfeeacd36656c87cb},
      {7, 0x801bf9048d6eab34}, {8, 0x795cafe2909ef668},
  };
  for (const auto& [seed, hash] : pinned) {
    SimulationOptions options;
    options.seed = seed;
    options.ops = 300;
    for (Fault fault : all_faults()) options.faults.insert(fault);
    const SimulationResult result = Simulation(options).run();
    EXPECT_TRUE(result.ok) << "seed " << seed;
    EXPECT_EQ(result.hash, hash) << "seed " << seed << " now hashes to " << std::hex << result.hash;
  }
}

TEST(Determinism, different_seeds_give_different_runs) {
  EXPECT_NE(Simulation(swarm(1, 3)).run().hash, Simulation(swarm(2, 3)).run().hash);
}

// A user's state machine: counts the commands it applied.
class CountingFsm final : public Fsm {
 public:
  std::string apply(const LogEntry& entry) override {
    ++applied;
    return entry.data.str() + "!";
  }
  Result<std::unique_ptr<FsmSnapshot>> snapshot() override {
    return std::unique_ptr<FsmSnapshot>(std::make_unique<CopiedSnapshot>(std::to_string(applied)));
  }
  Status restore(const SnapshotMeta& /*meta*/, SnapshotReader& reader) override {
    Result<std::string> bytes = read_whole_snapshot(reader, 64);
    if (!bytes.is_ok()) return bytes.status();
    applied = std::stoi(*bytes);
    return Status::ok();
  }
  int applied = 0;
};

SimClusterOptions counting_cluster(std::uint64_t seed) {
  SimClusterOptions options;
  options.nodes = 3;
  options.seed = seed;
  options.fsm_factory = [](ServerId) { return std::make_shared<CountingFsm>(); };
  return options;
}

TEST(SimCluster, runs_a_users_fsm_and_answers_through_futures) {
  SimCluster cluster(counting_cluster(5));
  ASSERT_TRUE(cluster.run_until([&] { return cluster.ready_leader().has_value(); }, 5s));
  const ServerId leader = *cluster.ready_leader();
  std::string response;
  cluster.raft(leader)->apply("hello", 1s).then([&](const Result<ApplyResult>& result) {
    if (result.is_ok()) response = result->response;
  });
  ASSERT_TRUE(cluster.run_until([&] { return !response.empty(); }, 2s));
  EXPECT_EQ(response, "hello!");
  cluster.run_for(1s);
  for (ServerId id : cluster.ids()) {
    EXPECT_EQ(std::static_pointer_cast<CountingFsm>(cluster.fsm(id))->applied, 1);
  }
  EXPECT_FALSE(cluster.failed());
}

class CrashRestart : public ::testing::TestWithParam<bool> {};

TEST_P(CrashRestart, a_crashed_server_restarts_from_its_stores_and_catches_up) {
  SimClusterOptions options = counting_cluster(6);
  if (GetParam()) options.storage_factory = make_disk_storage;
  SimCluster cluster(options);
  ASSERT_TRUE(cluster.run_until([&] { return cluster.ready_leader().has_value(); }, 5s));
  const ServerId leader = *cluster.ready_leader();
  int acknowledged = 0;
  for (int i = 0; i < 10; ++i) {
    cluster.raft(leader)
        ->apply("w" + std::to_string(i), 1s)
        .then([&](const Result<ApplyResult>& result) { acknowledged += result.is_ok() ? 1 : 0; });
  }
  ASSERT_TRUE(cluster.run_until([&] { return acknowledged == 10; }, 2s));
  cluster.crash(leader);
  EXPECT_FALSE(cluster.is_up(leader));
  EXPECT_EQ(cluster.raft(leader), nullptr);
  ASSERT_TRUE(cluster.run_until(
      [&] { return cluster.ready_leader().has_value() && *cluster.ready_leader() != leader; }, 5s));
  cluster.restart(leader);
  ASSERT_TRUE(cluster.run_until(
      [&] { return std::static_pointer_cast<CountingFsm>(cluster.fsm(leader))->applied == 10; },
      5s));
  cluster.check_logs();
  EXPECT_FALSE(cluster.failed()) << cluster.violations().front();
}

INSTANTIATE_TEST_SUITE_P(MemoryAndDisk, CrashRestart, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& param) {
                           return param.param ? "disk" : "memory";
                         });

// The disk-error fault: the leader's next log write fails, it stops itself
// and loses nothing it acknowledged; crashed and restarted, it catches up.
TEST(SimCluster, a_failed_disk_write_stops_the_server_until_it_is_restarted) {
  SimClusterOptions options = counting_cluster(11);
  options.storage_factory = make_disk_storage;
  SimCluster cluster(options);
  ASSERT_TRUE(cluster.run_until([&] { return cluster.ready_leader().has_value(); }, 5s));
  const ServerId leader = *cluster.ready_leader();
  EXPECT_FALSE(SimCluster(counting_cluster(12)).inject_io_error(leader, 0))
      << "memory stores cannot fail";
  ASSERT_TRUE(cluster.inject_io_error(leader, /*draw: write of the log, no skip=*/0));
  int acknowledged = 0;
  int failed = 0;
  for (int i = 0; i < 5; ++i) {
    cluster.raft(leader)
        ->apply("w" + std::to_string(i), 1s)
        .then(
            [&](const Result<ApplyResult>& result) { ++(result.is_ok() ? acknowledged : failed); });
  }
  ASSERT_TRUE(cluster.run_until([&] { return acknowledged + failed == 5; }, 3s));
  EXPECT_EQ(acknowledged, 0) << "a leader whose write failed acknowledged it";
  EXPECT_EQ(cluster.stats(leader)->state, RaftState::kShutdown);
  ASSERT_TRUE(cluster.run_until(
      [&] { return cluster.ready_leader().has_value() && *cluster.ready_leader() != leader; }, 5s));
  const ServerId next = *cluster.ready_leader();
  bool written = false;
  cluster.raft(next)->apply("after", 1s).then([&](const Result<ApplyResult>& r) {
    written = r.is_ok();
  });
  ASSERT_TRUE(cluster.run_until([&] { return written; }, 2s));
  cluster.crash(leader);
  cluster.restart(leader);
  ASSERT_TRUE(cluster.run_until(
      [&] { return std::static_pointer_cast<CountingFsm>(cluster.fsm(leader))->applied >= 1; },
      5s));
  cluster.check_logs();
  EXPECT_FALSE(cluster.failed()) << cluster.violations().front();
}

TEST(SimCluster, a_paused_leader_is_replaced_and_steps_down_when_resumed) {
  SimCluster cluster(counting_cluster(7));
  ASSERT_TRUE(cluster.run_until([&] { return cluster.ready_leader().has_value(); }, 5s));
  const ServerId old_leader = *cluster.ready_leader();
  const Term old_term = cluster.stats(old_leader)->term;
  cluster.pause(old_leader);
  EXPECT_TRUE(cluster.is_paused(old_leader));
  ASSERT_TRUE(cluster.run_until(
      [&] {
        auto leader = cluster.ready_leader();
        return leader && *leader != old_leader;
      },
      5s));
  EXPECT_EQ(cluster.stats(old_leader)->term, old_term) << "a paused server does nothing";
  cluster.resume(old_leader);
  ASSERT_TRUE(cluster.run_until(
      [&] { return cluster.stats(old_leader)->state == RaftState::kFollower; }, 5s));
  EXPECT_FALSE(cluster.failed());
}

TEST(SimCluster, a_one_way_cut_loses_frames_in_one_direction_only) {
  SimCluster cluster(counting_cluster(8));
  ASSERT_TRUE(cluster.run_until([&] { return cluster.ready_leader().has_value(); }, 5s));
  const ServerId leader = *cluster.ready_leader();
  // The leader hears nobody: check-quorum makes it step down, and the others
  // (who still hear its heartbeats until it does) elect a new leader.
  for (ServerId id : cluster.ids()) cluster.cut_link(id, leader);
  const ServerId other = leader == ServerId{1} ? ServerId{2} : ServerId{1};
  EXPECT_FALSE(cluster.link_up(other, leader));
  EXPECT_TRUE(cluster.link_up(leader, other));
  ASSERT_TRUE(cluster.run_until(
      [&] {
        auto current = cluster.ready_leader();
        return current && *current != leader;
      },
      10s));
  EXPECT_FALSE(cluster.failed());
}

TEST(SimCluster, a_violation_stops_the_run) {
  // A correct cluster never applies two entries at one index, so forge one:
  // a server "applies", at the index of a real command, one of a term that
  // never existed.
  SimCluster cluster(counting_cluster(9));
  ASSERT_TRUE(cluster.run_until([&] { return cluster.ready_leader().has_value(); }, 5s));
  std::optional<Index> index;
  cluster.raft(*cluster.ready_leader())
      ->apply("real", 1s)
      .then([&](const Result<ApplyResult>& result) {
        if (result.is_ok()) index = result->index;
      });
  ASSERT_TRUE(cluster.run_until([&] { return index.has_value(); }, 2s));
  EXPECT_FALSE(cluster.failed());
  const LogEntry forged{Term{99}, *index, EntryType::kCommand, "forged"};
  Result<std::vector<LogEntry>> entries =
      cluster.log_store(*cluster.ready_leader())->read(Index{1}, *index);
  ASSERT_TRUE(entries.is_ok());
  entries->back() = forged;
  MemoryLogStore wrong;
  ASSERT_TRUE(wrong.append(*entries).is_ok());
  cluster.checker().on_start(ServerId{3});
  cluster.checker().on_apply(ServerId{3}, forged, wrong);
  ASSERT_TRUE(cluster.failed());
  EXPECT_EQ(cluster.violations().front().rfind("state-machine safety", 0), 0U)
      << cluster.violations().front();
  EXPECT_FALSE(cluster.run_until([] { return false; }, 1s)) << "a failed cluster stops at once";
}

// Term churn: with nothing faulty as far as the nemesis knows, a follower that
// stops hearing its leader (here its heartbeats are silently dropped, as a
// broken election timer would behave) campaigns and the highest term rises:
// reported. The same cluster left alone stays quiet.
std::vector<std::string> quiet_cluster_run(bool lose_heartbeats_to_3) {
  SimClusterOptions options = counting_cluster(13);
  options.tune_config = [](Config& c) {
    c.pre_vote = false;
    c.lease_timeout = std::chrono::milliseconds(0);
  };
  SimCluster cluster(options);
  Nemesis nemesis(cluster, plan_faults(1, {}, false, false, 3, cluster.config(ServerId{1})), 1);
  nemesis.start();
  EXPECT_TRUE(cluster.run_until([&] { return cluster.ready_leader().has_value(); }, 5s));
  cluster.run_for(2s);
  if (lose_heartbeats_to_3) {
    cluster.set_frame_rule([](ServerId, ServerId to, const core::Message& m) {
      const bool lost = to == ServerId{3} && (m.type == core::MessageType::kHeartbeatRequest ||
                                              m.type == core::MessageType::kAppendRequest);
      return FrameFate{lost ? FrameFate::Kind::kDrop : FrameFate::Kind::kPass};
    });
  }
  cluster.run_for(5s);
  return cluster.violations();
}

TEST(Nemesis, a_term_that_rises_with_nothing_faulty_is_term_churn) {
  EXPECT_TRUE(quiet_cluster_run(false).empty()) << quiet_cluster_run(false).front();
  const std::vector<std::string> violations = quiet_cluster_run(true);
  ASSERT_FALSE(violations.empty());
  EXPECT_EQ(violations.front().rfind("term churn", 0), 0U) << violations.front();
}

}  // namespace
}  // namespace keel::sim

namespace keel::sim {
namespace {

LogEntry command(std::uint64_t index, std::string data) {
  return LogEntry{Term{1}, Index{index}, EntryType::kCommand, std::move(data)};
}

TEST(KvFsm, commands_follow_the_register_model_of_the_checker) {
  KvFsm fsm;
  EXPECT_EQ(fsm.apply(command(1, KvFsm::cas_command("k", "none", "a"))), "unchanged")
      << "a cas on an absent key never swaps";
  EXPECT_EQ(fsm.get("k"), std::nullopt);
  EXPECT_EQ(fsm.apply(command(2, KvFsm::put_command("k", "v1"))), "ok");
  EXPECT_EQ(fsm.apply(command(3, KvFsm::cas_command("k", "v0", "v2"))), "unchanged");
  EXPECT_EQ(fsm.get("k"), "v1");
  EXPECT_EQ(fsm.apply(command(4, KvFsm::cas_command("k", "v1", "v2"))), "swapped");
  EXPECT_EQ(fsm.get("k"), "v2");
  EXPECT_EQ(fsm.apply(command(5, KvFsm::delete_command("k"))), "ok");
  EXPECT_EQ(fsm.get("k"), std::nullopt);
  EXPECT_EQ(fsm.apply(command(6, "put only-two-words")), "error");
  EXPECT_TRUE(fsm.data().empty());
}

}  // namespace
}  // namespace keel::sim
