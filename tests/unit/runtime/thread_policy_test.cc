// Config::thread_policy: which components share the raft loop's thread, and
// that sharing it changes none of the order they rely on.
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "test_cluster.h"

namespace keel::testing {
namespace {

// A memory log store that remembers which thread appended to it, and that
// can claim to block (as a store with fdatasync would).
class ObservedLogStore final : public LogStore {
 public:
  explicit ObservedLogStore(bool blocks) : blocks_(blocks) {}
  Index first_index() const override { return inner_.first_index(); }
  Index last_index() const override { return inner_.last_index(); }
  Result<std::vector<LogEntry>> read(Index from, Index to) const override {
    return inner_.read(from, to);
  }
  Status append(std::span<const LogEntry> entries) override {
    {
      std::lock_guard lock(mutex_);
      threads_.push_back(std::this_thread::get_id());
    }
    return inner_.append(entries);
  }
  Status truncate_prefix(Index up_to) override { return inner_.truncate_prefix(up_to); }
  Status reset(Index base) override { return inner_.reset(base); }
  bool may_block() const override { return blocks_; }
  std::thread::id last_appender() const {
    std::lock_guard lock(mutex_);
    return threads_.empty() ? std::thread::id() : threads_.back();
  }

 private:
  const bool blocks_;
  MemoryLogStore inner_;
  mutable std::mutex mutex_;
  std::vector<std::thread::id> threads_;
};

// A quick FSM that checks what an applier promises: entries in log order,
// each already in this server's own store, one thread, never re-entered.
class CheckingFsm final : public Fsm {
 public:
  explicit CheckingFsm(std::shared_ptr<ObservedLogStore> store) : store_(std::move(store)) {}
  std::string apply(const LogEntry& entry) override {
    if (inside_.exchange(true)) problems_ += "re-entered; ";
    std::lock_guard lock(mutex_);
    if (!last_.is_zero() && entry.index <= last_) problems_ += "out of order; ";
    if (store_->last_index() < entry.index) problems_ += "applied before stored; ";
    last_ = entry.index;
    thread_ = std::this_thread::get_id();
    inside_ = false;
    return {};
  }
  bool applies_quickly() const override { return true; }
  // Holds no state of its own but the last index, which a snapshot carries.
  Result<std::unique_ptr<FsmSnapshot>> snapshot() override {
    return std::unique_ptr<FsmSnapshot>(std::make_unique<CopiedSnapshot>(std::string()));
  }
  Status restore(const SnapshotMeta& meta, SnapshotReader& /*reader*/) override {
    std::lock_guard lock(mutex_);
    last_ = meta.index;
    return Status::ok();
  }
  std::string problems() const {
    std::lock_guard lock(mutex_);
    return problems_;
  }
  std::thread::id thread() const {
    std::lock_guard lock(mutex_);
    return thread_;
  }

 private:
  std::shared_ptr<ObservedLogStore> store_;
  std::atomic<bool> inside_{false};
  mutable std::mutex mutex_;
  Index last_;
  std::thread::id thread_;
  std::string problems_;
};

struct Solo {
  std::shared_ptr<ObservedLogStore> log;
  std::shared_ptr<CheckingFsm> fsm;
  std::unique_ptr<Raft> raft;
};

Solo open_solo(std::shared_ptr<Env> env, InMemoryNetwork& network, ThreadPolicy policy,
               bool store_blocks) {
  Solo solo;
  solo.log = std::make_shared<ObservedLogStore>(store_blocks);
  auto stable = std::make_shared<MemoryStableStore>();
  Configuration configuration{{Server{ServerId{1}, "solo", Suffrage::kVoter}}};
  EXPECT_TRUE(bootstrap_cluster(*solo.log, *stable, configuration).is_ok());
  solo.fsm = std::make_shared<CheckingFsm>(solo.log);
  Config config;
  config.id = ServerId{1};
  config.heartbeat_interval = 20ms;
  config.election_timeout = 100ms;
  config.lease_timeout = 50ms;
  config.thread_policy = policy;
  auto opened = Raft::open(RaftDependencies{config, solo.fsm, solo.log, stable,
                                            std::make_shared<MemorySnapshotStore>(),
                                            network.transport(ServerId{1}), std::move(env)});
  EXPECT_TRUE(opened.is_ok()) << opened.status();
  if (opened.is_ok()) solo.raft = std::move(opened).value();
  return solo;
}

void write_many(Raft& raft) {
  ASSERT_TRUE(eventually([&] { return raft.stats().ready_term == raft.stats().term; }));
  std::vector<Future<ApplyResult>> writes;
  for (int i = 0; i < 200; ++i) writes.push_back(raft.apply("set k " + std::to_string(i), 5s));
  for (auto& write : writes) ASSERT_TRUE(write.get().is_ok());
}

TEST(ThreadPolicy, ShareWhenSafeRunsAMemoryWriterAndAQuickFsmOnOneThreadInOrder) {
  auto env = make_thread_env();
  InMemoryNetwork network(env);
  Solo solo = open_solo(env, network, ThreadPolicy::kShareWhenSafe, /*store_blocks=*/false);
  write_many(*solo.raft);
  EXPECT_EQ(solo.fsm->problems(), "");
  EXPECT_EQ(solo.fsm->thread(), solo.log->last_appender()) << "writer and applier share a thread";
}

TEST(ThreadPolicy, ABlockingStoreKeepsItsOwnThreadUnderShareWhenSafe) {
  auto env = make_thread_env();
  InMemoryNetwork network(env);
  Solo solo = open_solo(env, network, ThreadPolicy::kShareWhenSafe, /*store_blocks=*/true);
  write_many(*solo.raft);
  EXPECT_EQ(solo.fsm->problems(), "");
  EXPECT_NE(solo.fsm->thread(), solo.log->last_appender());
}

TEST(ThreadPolicy, ThreadPerComponentGivesTheWriterAndTheApplierThreadsOfTheirOwn) {
  auto env = make_thread_env();
  InMemoryNetwork network(env);
  Solo solo = open_solo(env, network, ThreadPolicy::kThreadPerComponent, /*store_blocks=*/false);
  write_many(*solo.raft);
  EXPECT_EQ(solo.fsm->problems(), "");
  EXPECT_NE(solo.fsm->thread(), solo.log->last_appender());
}

// A quick FSM applied on the loop thread may call back into the Raft from
// apply(): the call is queued behind the step that handed out the entry, not
// run inside it.
TEST(ThreadPolicy, AnFsmOnTheLoopThreadMayCallTheRaftFromApply) {
  auto env = make_thread_env();
  InMemoryNetwork network(env);
  RaftDependencies deps = solo_server_deps(env, network);
  struct CallingFsm final : Fsm {
    std::atomic<Raft*> raft{nullptr};
    std::atomic<int> reads{0};
    std::string apply(const LogEntry&) override {
      if (Raft* r = raft.load()) {
        r->read(Consistency::kStale, 5s).then([this](const Result<Index>& index) {
          if (index.is_ok()) ++reads;
        });
      }
      return {};
    }
    Result<std::unique_ptr<FsmSnapshot>> snapshot() override {
      return std::unique_ptr<FsmSnapshot>(std::make_unique<CopiedSnapshot>(std::string()));
    }
    Status restore(const SnapshotMeta&, SnapshotReader&) override { return Status::ok(); }
    bool applies_quickly() const override { return true; }
  };
  auto fsm = std::make_shared<CallingFsm>();
  deps.fsm = fsm;
  auto raft = Raft::open(std::move(deps)).value();
  fsm->raft = raft.get();
  ASSERT_TRUE(eventually([&] { return raft->stats().ready_term == raft->stats().term; }));
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(raft->apply("set a 1", 5s).get().is_ok());
  EXPECT_TRUE(eventually([&] { return fsm->reads.load() == 20; }));
}

}  // namespace
}  // namespace keel::testing
