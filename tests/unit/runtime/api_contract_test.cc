// The promises include/keel/raft.h, future.h, config.h and status.h make,
// each tried the way a demanding user (or an adversary) would, and each
// shaped like the defect that once broke it.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "core/codec.h"
#include "runtime/log_writer.h"
#include "test_cluster.h"

namespace keel::testing {
namespace {

// A log store that hands back whatever the test says, as a broken or hostile
// store could.
class ScriptedLogStore final : public LogStore {
 public:
  explicit ScriptedLogStore(std::vector<LogEntry> entries) : entries_(std::move(entries)) {}
  Index first_index() const override {
    return entries_.empty() ? Index{1} : entries_.front().index;
  }
  Index last_index() const override {
    return last_ ? *last_ : (entries_.empty() ? Index{0} : entries_.back().index);
  }
  Result<std::vector<LogEntry>> read(Index, Index) const override { return entries_; }
  Status append(std::span<const LogEntry> entries) override {
    for (const LogEntry& entry : entries) entries_.push_back(entry);
    return Status::ok();
  }
  Status truncate_prefix(Index) override { return Status::ok(); }
  Status reset(Index) override {
    entries_.clear();
    last_.reset();
    return Status::ok();
  }
  void claim_last_index(Index last) { last_ = last; }

 private:
  std::vector<LogEntry> entries_;
  std::optional<Index> last_;
};

LogEntry configuration_entry() {
  Configuration configuration{{Server{ServerId{1}, "solo", Suffrage::kVoter}}};
  return LogEntry{Term{1}, Index{1}, EntryType::kConfiguration,
                  core::encode_configuration(configuration)};
}

LogEntry command(std::uint64_t index, std::uint64_t term) {
  return LogEntry{Term{term}, Index{index}, EntryType::kCommand, "set x " + std::to_string(index)};
}

RaftDependencies deps_with_log(std::shared_ptr<LogStore> log, std::shared_ptr<StableStore> stable,
                               std::shared_ptr<Env> env, InMemoryNetwork& network) {
  Config config;
  config.id = ServerId{1};
  config.heartbeat_interval = 20ms;
  config.election_timeout = 100ms;
  config.lease_timeout = 50ms;
  return RaftDependencies{config,
                          std::make_shared<KvFsm>(),
                          std::move(log),
                          std::move(stable),
                          std::make_shared<MemorySnapshotStore>(),
                          network.transport(ServerId{1}),
                          std::move(env)};
}

std::shared_ptr<MemoryStableStore> stable_at(std::uint64_t term) {
  auto stable = std::make_shared<MemoryStableStore>();
  EXPECT_TRUE(stable
                  ->set(runtime::kHardStateKey,
                        core::encode_hard_state(core::HardState{Term{term}, kNoServer, Index{}}))
                  .is_ok());
  return stable;
}

// --- open ----------------------------------------------------------------------

TEST(ApiContract, OpenRefusesAMalformedLogWithCorruptionInsteadOfAborting) {
  auto env = make_thread_env();
  InMemoryNetwork network(env);
  LogEntry unknown_type = command(2, 1);
  LogEntry huge_term = command(2, 1);
  huge_term.term = kMaxTerm.next();
  unknown_type.type = static_cast<EntryType>(9);
  const std::vector<std::vector<LogEntry>> logs = {
      {configuration_entry(), command(3, 1)},                 // a gap
      {configuration_entry(), command(2, 3), command(3, 2)},  // terms go down
      {configuration_entry(), command(2, 0)},                 // term 0
      {configuration_entry(), unknown_type},                  // an unknown type
      {configuration_entry(), huge_term},                     // a term above kMaxTerm
  };
  for (const auto& log : logs) {
    auto store = std::make_shared<ScriptedLogStore>(log);
    Result<std::unique_ptr<Raft>> raft =
        Raft::open(deps_with_log(store, stable_at(3), env, network));
    ASSERT_FALSE(raft.is_ok());
    EXPECT_EQ(raft.status().code(), StatusCode::kCorruption) << raft.status();
  }
  // read() returns fewer entries than last_index() promised.
  auto short_read = std::make_shared<ScriptedLogStore>(
      std::vector<LogEntry>{configuration_entry(), command(2, 1)});
  short_read->claim_last_index(Index{3});
  Result<std::unique_ptr<Raft>> raft =
      Raft::open(deps_with_log(short_read, stable_at(1), env, network));
  ASSERT_FALSE(raft.is_ok());
  EXPECT_EQ(raft.status().code(), StatusCode::kCorruption) << raft.status();
}

// A server that lost its vote file but kept its log could vote twice in one
// term; only a server with no log may start without a hard state.
TEST(ApiContract, OpenRefusesALogWithoutAHardState) {
  auto env = make_thread_env();
  InMemoryNetwork network(env);
  auto log = std::make_shared<ScriptedLogStore>(
      std::vector<LogEntry>{configuration_entry(), command(2, 3)});
  Result<std::unique_ptr<Raft>> raft =
      Raft::open(deps_with_log(log, std::make_shared<MemoryStableStore>(), env, network));
  ASSERT_FALSE(raft.is_ok());
  EXPECT_EQ(raft.status().code(), StatusCode::kCorruption) << raft.status();
  EXPECT_NE(raft.status().message().find("no hard state"), std::string::npos) << raft.status();
  EXPECT_EQ(log->last_index(), Index{2}) << "nothing is lost";
}

// The hard state is stored before the first entry, so a crash between the
// two leaves a term and an empty log: bootstrapping again completes it.
TEST(ApiContract, AnInterruptedBootstrapIsCompletedByBootstrappingAgain) {
  auto log = std::make_shared<MemoryLogStore>();
  auto stable = std::make_shared<MemoryStableStore>();
  const Configuration configuration{{Server{ServerId{1}, "solo", Suffrage::kVoter}}};
  ASSERT_TRUE(bootstrap_cluster(*log, *stable, configuration).is_ok());
  ASSERT_TRUE(stable->get(runtime::kHardStateKey).is_ok());
  // What a crash after the hard state and before the entry leaves:
  auto empty_log = std::make_shared<MemoryLogStore>();
  EXPECT_FALSE(*has_existing_state(*empty_log, *stable));
  ASSERT_TRUE(bootstrap_cluster(*empty_log, *stable, configuration).is_ok());
  EXPECT_EQ(empty_log->last_index(), Index{1});
  EXPECT_TRUE(*has_existing_state(*empty_log, *stable));
  EXPECT_EQ(bootstrap_cluster(*empty_log, *stable, configuration).code(),
            StatusCode::kInvalidArgument);
  // Completing it with another configuration is refused.
  auto fresh_log = std::make_shared<MemoryLogStore>();
  const Configuration other{{Server{ServerId{2}, "other", Suffrage::kVoter}}};
  EXPECT_EQ(bootstrap_cluster(*fresh_log, *stable, other).code(), StatusCode::kInvalidArgument);
  // A term other than the bootstrap's is state worth keeping, and so is
  // term 1 heard from a leader (no bootstrap began here).
  EXPECT_TRUE(*has_existing_state(MemoryLogStore{}, *stable_at(2)));
  EXPECT_TRUE(*has_existing_state(MemoryLogStore{}, *stable_at(1)));
}

// The log writer stores entries before the hard state, so a crash between
// the two leaves entries of a term the stable store has not heard of: open
// adopts the term (with no vote), stores it, and the server runs.
TEST(ApiContract, OpenAdoptsTheTermOfEntriesNewerThanTheStoredHardState) {
  auto env = make_thread_env();
  InMemoryNetwork network(env);
  auto log = std::make_shared<MemoryLogStore>();
  ASSERT_TRUE(log->append(std::vector<LogEntry>{configuration_entry(), command(2, 5)}).is_ok());
  auto stable = stable_at(3);  // written by a build that stored the entries first
  Result<std::unique_ptr<Raft>> raft = Raft::open(deps_with_log(log, stable, env, network));
  ASSERT_TRUE(raft.is_ok()) << raft.status();
  EXPECT_GE((*raft)->stats().term, Term{5});
  EXPECT_EQ((*raft)->stats().last_index, Index{2}) << "stats reflect the stores at once";
  ASSERT_TRUE(eventually([&] { return (*raft)->stats().ready_term == (*raft)->stats().term; }));
  Result<std::string> stored = stable->get(runtime::kHardStateKey);
  ASSERT_TRUE(stored.is_ok());
  EXPECT_GE(core::decode_hard_state(*stored)->term, Term{5});
  EXPECT_TRUE((*raft)->apply("set y 1", 5s).get().is_ok());
}

TEST(ApiContract, ValueOfAnErrorResultStopsWithTheErrorsText) {
  Config config;  // id 0: invalid
  EXPECT_DEATH((void)Result<int>(config.validate()).value(), "config: id must not be 0");
}

// --- config --------------------------------------------------------------------

TEST(ApiContract, EveryConfigFieldIsRangeCheckedAndTheErrorNamesIt) {
  Config good;
  good.id = ServerId{1};
  ASSERT_TRUE(good.validate().is_ok());
  auto refused = [&](const char* field, auto change) {
    Config config = good;
    change(config);
    Status status = config.validate();
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << field;
    EXPECT_NE(status.message().find(field), std::string::npos) << status;
  };
  refused("clock_drift_percent", [](Config& c) { c.clock_drift_percent = 4'294'967'000U; });
  refused("election_timeout",
          [](Config& c) { c.election_timeout = std::chrono::hours(24 * 5000); });
  refused("election_timeout", [](Config& c) { c.election_timeout = 2 * c.heartbeat_interval; });
  refused("heartbeat_interval", [](Config& c) { c.heartbeat_interval = 0ms; });
  refused("lease_timeout", [](Config& c) { c.lease_timeout = c.heartbeat_interval / 2; });
  refused("lease_timeout", [](Config& c) { c.lease_timeout = c.election_timeout; });
  refused("lease_timeout", [](Config& c) { c.check_quorum = false; });
  refused("max_pending_reads", [](Config& c) { c.max_pending_reads = 0; });
  refused("max_append_entries", [](Config& c) { c.max_append_entries = 0; });
  refused("max_subscriptions", [](Config& c) { c.max_subscriptions = 100'000; });
  refused("observer_shutdown_wait", [](Config& c) { c.observer_shutdown_wait = -1ms; });
  refused("forwarded_read_retry_heartbeats",
          [](Config& c) { c.forwarded_read_retry_heartbeats = 0; });
  refused("commit_notice_delay", [](Config& c) { c.commit_notice_delay = -1us; });
  refused("commit_notice_delay",
          [](Config& c) { c.commit_notice_delay = c.heartbeat_interval + 1us; });
}

// --- deadlines -----------------------------------------------------------------

TEST(ApiContract, AnInfiniteTimeoutMeansNoDeadlineAndANonPositiveOneIsRefusedUpFront) {
  auto env = make_thread_env();
  InMemoryNetwork network(env);
  auto raft = Raft::open(solo_server_deps(env, network)).value();
  ASSERT_TRUE(eventually([&] { return raft->stats().ready_term == raft->stats().term; }));
  EXPECT_TRUE(raft->apply("set a 1", Duration::max()).get().is_ok());
  const Index last = raft->stats().last_index;
  for (Duration timeout : {Duration::zero(), Duration(-5)}) {
    Result<ApplyResult> refused = raft->apply("set a 2", timeout).get();
    EXPECT_EQ(refused.status().code(), StatusCode::kTimeout);
    EXPECT_EQ(raft->barrier(timeout).get().status().code(), StatusCode::kTimeout);
    EXPECT_EQ(raft->read(Consistency::kLinearizable, timeout).get().status().code(),
              StatusCode::kTimeout);
    EXPECT_EQ(raft->verify_leader(timeout).get().status().code(), StatusCode::kTimeout);
  }
  EXPECT_TRUE(raft->barrier(5s).get().is_ok());
  EXPECT_EQ(raft->stats().last_index, last + 1) << "only the last barrier reached the log";
}

// --- futures ---------------------------------------------------------------------

TEST(ApiContract, TheCommonWaysOfTakingAResultAreSafe) {
  auto env = make_thread_env();
  InMemoryNetwork network(env);
  auto raft = Raft::open(solo_server_deps(env, network)).value();
  ASSERT_TRUE(eventually([&] { return raft->stats().ready_term == raft->stats().term; }));
  const auto& by_reference = raft->apply("set a 1", 5s).get();  // the temporary is gone here
  ASSERT_TRUE(by_reference.is_ok());
  for (int i = 0; i < 100; ++i) (void)raft->apply("set b " + std::to_string(i), 5s);
  EXPECT_EQ(by_reference->response, "1");
  auto by_value = raft->apply("set a 2", 5s).get();
  EXPECT_TRUE(by_value.is_ok());
}

TEST(ApiContract, ThenChainsAndCanRunOnTheCallersOwnExecutor) {
  auto env = make_thread_env();
  InMemoryNetwork network(env);
  auto raft = Raft::open(solo_server_deps(env, network)).value();
  ASSERT_TRUE(eventually([&] { return raft->stats().ready_term == raft->stats().term; }));
  auto mine = make_thread_env()->make_executor("mine");
  std::atomic<bool> ran_on_mine{false};
  Future<Index> chained =
      raft->apply("set a 1", 5s)
          .then([](const Result<ApplyResult>& r) -> Result<Index> {
            if (!r.is_ok()) return r.status();
            return r->index;
          })
          .then(mine, [&](const Result<Index>& index) {
            mine->post([&] { ran_on_mine = true; });  // same executor: runs after this task
            return index;
          });
  ASSERT_TRUE(chained.wait_for(5s));
  EXPECT_TRUE(std::move(chained).get().is_ok());
  EXPECT_TRUE(eventually([&] { return ran_on_mine.load(); }));
  Future<Done> done = raft->barrier(5s).then([](const Result<Index>&) {});
  EXPECT_TRUE(done.wait_until(std::chrono::steady_clock::now() + 5s));
  Future<int> invalid;
  EXPECT_FALSE(invalid.valid());
  EXPECT_TRUE(done.valid());
}

// --- observers -------------------------------------------------------------------

// The loop (or applier) ran a then() callback that unsubscribed an observer
// whose callback was blocked on a keel future: unsubscribe() joined the
// observer's thread, which waited for a result only that keel thread could
// produce. The server wedged for good.
TEST(ApiContract, UnsubscribingFromAThenCallbackNeverWaitsForABlockedObserver) {
  auto env = make_thread_env();
  InMemoryNetwork network(env);
  RaftDependencies deps = solo_server_deps(env, network);
  deps.config.election_timeout = 1s;
  deps.config.lease_timeout = 500ms;
  auto raft = Raft::open(std::move(deps)).value();
  std::atomic<std::uint64_t> id{0};
  Promise<bool> observer_done;
  std::atomic<bool> acted{false};
  Result<std::uint64_t> subscribed = raft->subscribe([&](const Observation& observation) {
    if (observation.kind != Observation::Kind::kLeaderReady || acted.exchange(true)) return;
    // Once "a" is applied, the applier's then() callback unsubscribes us...
    raft->apply("set a 1", 5s).then([&](const Result<ApplyResult>&) {
      raft->unsubscribe(id.load());
    });
    // ...while we block on a result only the applier can give.
    observer_done.resolve(raft->apply("set b 1", 5s).get().is_ok());
  });
  ASSERT_TRUE(subscribed.is_ok());
  id = *subscribed;
  ASSERT_TRUE(observer_done.future().wait_for(10s)) << "the server wedged";
  EXPECT_TRUE(observer_done.future().get().value());
  EXPECT_TRUE(raft->apply("set c 1", 2s).get().is_ok());
}

TEST(ApiContract, AKLeaderReadyObserverSeesStatsThatAgreeWithIt) {
  auto env = make_thread_env();
  InMemoryNetwork network(env);
  RaftDependencies base = solo_server_deps(env, network);
  for (int run = 0; run < 12; ++run) {
    RaftDependencies deps = base;
    deps.fsm = std::make_shared<KvFsm>();
    std::shared_ptr<Raft> holder;
    std::mutex mutex;
    std::condition_variable cv;
    std::optional<std::string> problem;
    deps.observers.push_back([&](const Observation& observation) {
      if (observation.kind != Observation::Kind::kLeaderReady) return;
      std::unique_lock lock(mutex);
      cv.wait(lock, [&] { return holder != nullptr; });
      const RaftStats stats = holder->stats();
      std::string seen;
      if (stats.ready_term != observation.term) seen += "ready_term differs; ";
      if (stats.applied_index < observation.index) seen += "applied below the ready index; ";
      problem = seen;
      cv.notify_all();
    });
    auto opened = Raft::open(std::move(deps));
    ASSERT_TRUE(opened.is_ok());
    {
      std::lock_guard lock(mutex);
      holder = std::move(opened).value();
    }
    cv.notify_all();
    std::unique_lock lock(mutex);
    ASSERT_TRUE(cv.wait_for(lock, 10s, [&] { return problem.has_value(); }));
    EXPECT_EQ(*problem, "") << "run " << run;
    lock.unlock();
    (void)holder->apply("set run " + std::to_string(run), 5s).get();
    holder->shutdown();
  }
}

TEST(ApiContract, ShutdownDoesNotWaitLongerThanConfiguredForABlockedObserver) {
  auto env = make_thread_env();
  InMemoryNetwork network(env);
  RaftDependencies deps = solo_server_deps(env, network);
  deps.config.observer_shutdown_wait = 200ms;
  std::mutex mutex;
  std::condition_variable cv;
  bool release = false;
  std::atomic<bool> blocked{false};
  deps.observers.push_back([&](const Observation&) {
    blocked = true;
    std::unique_lock lock(mutex);
    cv.wait(lock, [&] { return release; });  // held until the test lets go
  });
  auto raft = Raft::open(std::move(deps)).value();
  ASSERT_TRUE(eventually([&] { return blocked.load(); }));
  const auto started = std::chrono::steady_clock::now();
  raft->shutdown();
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
  EXPECT_EQ(raft->state(), RaftState::kShutdown);
  EXPECT_TRUE(raft->leader().id.is_zero()) << "a stopped server names no leader";
  {
    std::lock_guard lock(mutex);
    release = true;
  }
  cv.notify_all();
}

TEST(ApiContract, ShutdownFromACallbackReturnsAtOnceAndStoppedResolvesLater) {
  auto env = make_thread_env();
  InMemoryNetwork network(env);
  RaftDependencies deps = solo_server_deps(env, network);
  std::shared_ptr<std::atomic<Raft*>> self = std::make_shared<std::atomic<Raft*>>(nullptr);
  Promise<bool> returned;
  deps.observers.push_back([self, returned](const Observation& observation) {
    if (observation.kind != Observation::Kind::kLeaderReady) return;
    while (self->load() == nullptr) std::this_thread::yield();
    self->load()->shutdown();
    returned.resolve(true);
  });
  auto raft = Raft::open(std::move(deps)).value();
  *self = raft.get();
  ASSERT_TRUE(returned.future().wait_for(10s));
  Future<Index> stopped = raft->stopped();
  ASSERT_TRUE(stopped.wait_for(10s));
  EXPECT_TRUE(std::move(stopped).get().is_ok());
}

TEST(ApiContract, AnObserverThatThrowsIsContainedAndCounted) {
  auto env = make_thread_env();
  InMemoryNetwork network(env);
  RaftDependencies deps = solo_server_deps(env, network);
  deps.observers.push_back([](const Observation&) { throw std::runtime_error("observer bug"); });
  auto raft = Raft::open(std::move(deps)).value();
  ASSERT_TRUE(eventually([&] { return raft->stats().ready_term == raft->stats().term; }));
  EXPECT_TRUE(eventually([&] { return raft->stats().observer_callback_failures > 0; }));
  EXPECT_TRUE(raft->apply("set a 1", 5s).get().is_ok());
}

TEST(ApiContract, SubscriptionsAreBounded) {
  auto env = make_thread_env();
  InMemoryNetwork network(env);
  RaftDependencies deps = solo_server_deps(env, network);
  deps.config.max_subscriptions = 3;
  auto raft = Raft::open(std::move(deps)).value();
  std::vector<std::uint64_t> ids;
  for (int i = 0; i < 3; ++i) {
    Result<std::uint64_t> id = raft->subscribe([](const Observation&) {});
    ASSERT_TRUE(id.is_ok());
    ids.push_back(*id);
  }
  EXPECT_EQ(raft->subscribe([](const Observation&) {}).status().code(),
            StatusCode::kResourceExhausted);
  raft->unsubscribe(ids.front());
  EXPECT_TRUE(raft->subscribe([](const Observation&) {}).is_ok());
}

// --- follower reads ----------------------------------------------------------------

// A transport that loses the first read-index answer it is asked to send.
class LosesOneReadAnswer final : public Transport {
 public:
  explicit LosesOneReadAnswer(std::shared_ptr<Transport> inner) : inner_(std::move(inner)) {}
  Status start(Receiver receiver, std::shared_ptr<Executor> deliver_on) override {
    return inner_->start(std::move(receiver), std::move(deliver_on));
  }
  void stop() override { inner_->stop(); }
  void send(const Server& to, Lane lane, std::string frame) override {
    Result<core::Message> message = core::decode(frame);
    if (message.is_ok() && message->type == core::MessageType::kReadIndexResponse &&
        !lost_.exchange(true)) {
      return;
    }
    inner_->send(to, lane, std::move(frame));
  }

 private:
  std::shared_ptr<Transport> inner_;
  std::atomic<bool> lost_{false};
};

// One lost frame used to cost a follower's read an election timeout.
TEST(ApiContract, AFollowerReadRecoversFromALostAnswerWithinAFewHeartbeats) {
  TestCluster cluster(3, [](Config& c) {
    c.heartbeat_interval = 20ms;
    c.election_timeout = 3s;
    c.lease_timeout = 0ms;
  });
  cluster.wrap_transport = [](ServerId, std::shared_ptr<Transport> inner) {
    return std::make_shared<LosesOneReadAnswer>(std::move(inner));
  };
  cluster.start_all();
  const ServerId leader = cluster.wait_for_leader(20s);
  ASSERT_TRUE(cluster.raft(leader).apply("set a 1", 5s).get().is_ok());
  const ServerId follower = cluster.any_follower(leader);
  ASSERT_TRUE(eventually([&] { return cluster.raft(follower).leader().id == leader; }));
  Result<Index> read = cluster.raft(follower).read(Consistency::kLinearizable, 1s).get();
  EXPECT_TRUE(read.is_ok()) << read.status();
}

// --- under stress --------------------------------------------------------------

// Many threads call everything at once -- writes, reads of every kind,
// barriers, subscriptions and unsubscriptions (some from inside callbacks),
// then() chains -- while servers are shut down at random moments. Every
// future must resolve by its deadline plus a small bound.
TEST(ApiContract, UnderConcurrentCallsAndShutdownsEveryFutureResolvesByItsDeadline) {
  TestCluster cluster(3, [](Config& c) {
    c.heartbeat_interval = 10ms;
    c.election_timeout = 100ms;
    c.lease_timeout = 50ms;
  });
  cluster.start_all();
  ASSERT_FALSE(cluster.wait_for_leader().is_zero());
  constexpr auto kTimeout = 300ms;
  constexpr auto kSlack = 2s;
  std::atomic<int> late{0};
  std::atomic<int> resolved{0};
  std::vector<std::thread> threads;
  std::vector<Raft*> rafts;
  for (ServerId id : cluster.ids()) rafts.push_back(&cluster.raft(id));
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 random(static_cast<std::uint32_t>(t));
      for (int i = 0; i < 150; ++i) {
        Raft& raft = *rafts[random() % rafts.size()];
        const auto called = std::chrono::steady_clock::now();
        auto check = [&](auto&& future) {
          if (!future.wait_for(kTimeout + kSlack)) {
            ++late;
          } else {
            ++resolved;
          }
          (void)called;
        };
        switch (random() % 7) {
          case 0:
            check(raft.apply("set k " + std::to_string(i), kTimeout));
            break;
          case 1:
            check(raft.read(Consistency::kLinearizable, kTimeout));
            break;
          case 2:
            check(raft.read(Consistency::kLease, kTimeout));
            break;
          case 3:
            check(raft.barrier(kTimeout));
            break;
          case 4:
            check(raft.verify_leader(kTimeout));
            break;
          case 5: {
            Result<std::uint64_t> id = raft.subscribe([](const Observation&) {});
            if (id.is_ok()) raft.unsubscribe(*id);
            break;
          }
          case 6:
            check(raft.apply("set c " + std::to_string(i), kTimeout)
                      .then([&raft](const Result<ApplyResult>&) {
                        Result<std::uint64_t> id = raft.subscribe([](const Observation&) {});
                        if (id.is_ok()) raft.unsubscribe(*id);  // from a keel thread
                        return 1;
                      }));
            break;
        }
      }
    });
  }
  // Shut servers down while the calls go on.
  std::thread stopper([&] {
    std::this_thread::sleep_for(150ms);  // the stress itself, not a synchronisation
    rafts[0]->shutdown();
    std::this_thread::sleep_for(150ms);
    rafts[1]->shutdown();
  });
  for (auto& thread : threads) thread.join();
  stopper.join();
  EXPECT_EQ(late.load(), 0) << resolved.load() << " resolved in time";
}

}  // namespace
}  // namespace keel::testing
