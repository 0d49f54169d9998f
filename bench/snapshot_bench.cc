// keel-snapshot-bench: what snapshots buy and cost (BENCHMARKS.md,
// "Snapshots").
//
//   open:    Raft::open of one server whose history is N entries on the
//            durable stores (WAL, file stable and snapshot stores, real
//            disk under --dir), without a snapshot (the whole log is read
//            and re-applied) and with one near the end (the snapshot is
//            restored, only the log after it is read); time and entries read.
//   install: a follower far behind a leader whose FSM holds --state-mb of
//            state, over the in-memory network: time from the follower's
//            start until it installed the snapshot, as MB/s, next to a plain
//            copy of the same bytes.
//
// Usage: keel-snapshot-bench [--entries N] [--state-mb M] [--dir DIR]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "keel/file_stores.h"
#include "keel/raft.h"
#include "keel/transport.h"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Counts commands; its state is `state_bytes` of filler plus the count.
class BulkFsm final : public keel::Fsm {
 public:
  explicit BulkFsm(std::size_t state_bytes) : state_(state_bytes, 's') {}
  std::string apply(const keel::LogEntry& /*entry*/) override {
    ++applied_;
    return {};
  }
  bool applies_quickly() const override { return true; }
  keel::Result<std::unique_ptr<keel::FsmSnapshot>> snapshot() override {
    return std::unique_ptr<keel::FsmSnapshot>(
        std::make_unique<keel::CopiedSnapshot>(std::to_string(applied_) + "\n" + state_));
  }
  keel::Status restore(const keel::SnapshotMeta& /*meta*/, keel::SnapshotReader& reader) override {
    keel::Result<std::string> bytes = keel::read_whole_snapshot(reader, 1ULL << 34);
    if (!bytes.is_ok()) return bytes.status();
    applied_ = std::stoull(bytes->substr(0, bytes->find('\n')));
    restored_count_ = applied_;
    state_ = bytes->substr(bytes->find('\n') + 1);
    ++restores_;
    return keel::Status::ok();
  }
  std::uint64_t applied() const { return applied_; }
  std::uint64_t restored_count() const { return restored_count_; }

 private:
  std::string state_;
  std::uint64_t applied_ = 0;
  std::uint64_t restores_ = 0;
  std::uint64_t restored_count_ = 0;  // commands the restored snapshot held
};

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "keel-snapshot-bench: %s\n", what.c_str());
  std::exit(1);
}

template <typename T>
T must(keel::Result<T> result, const char* what) {
  if (!result.is_ok()) die(std::string(what) + ": " + result.status().to_string());
  return std::move(result).value();
}

struct Stores {
  std::shared_ptr<keel::WalLogStore> log;
  std::shared_ptr<keel::FileStableStore> stable;
  std::shared_ptr<keel::FileSnapshotStore> snapshots;
};

Stores open_stores(const std::string& dir) {
  return Stores{must(keel::WalLogStore::open(dir + "/wal", {}), "wal"),
                must(keel::FileStableStore::open(dir + "/stable", {}), "stable"),
                must(keel::FileSnapshotStore::open(dir + "/snapshots", {}), "snapshots")};
}

keel::Config solo_config() {
  keel::Config config;
  config.id = keel::ServerId{1};
  config.heartbeat_interval = 20ms;
  config.election_timeout = 200ms;
  config.lease_timeout = 100ms;
  config.snapshot_threshold_entries = 1'000'000'000;  // only the ones the bench takes
  config.snapshot_threshold_bytes = 1ULL << 40;
  return config;
}

// Writes a history of `entries` commands of 32 bytes straight into the
// stores (as a server would have), and, with `snapshot_at`, takes a snapshot
// at its end through a running server.
void build_history(const std::string& dir, std::uint64_t entries, bool with_snapshot) {
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  keel::Configuration configuration{{keel::Server{keel::ServerId{1}, "solo"}}};
  {
    Stores stores = open_stores(dir);
    if (!keel::bootstrap_cluster(*stores.log, *stores.stable, configuration).is_ok()) die("boot");
    std::vector<keel::LogEntry> batch;
    for (std::uint64_t i = 2; i <= entries + 1; ++i) {
      batch.push_back(keel::LogEntry{keel::Term{1}, keel::Index{i}, keel::EntryType::kCommand,
                                     std::string(32, 'x')});
      if (batch.size() == 10'000 || i == entries + 1) {
        if (!stores.log->append(batch).is_ok()) die("append");
        batch.clear();
      }
    }
  }
  if (!with_snapshot) return;
  auto env = keel::make_thread_env();
  keel::InMemoryNetwork network(env);
  Stores stores = open_stores(dir);
  auto raft = must(keel::Raft::open(keel::RaftDependencies{
                       solo_config(), std::make_shared<BulkFsm>(1 << 20), stores.log, stores.stable,
                       stores.snapshots, network.transport(keel::ServerId{1}), env}),
                   "open");
  const auto deadline = Clock::now() + 120s;
  while (raft->stats().state != keel::RaftState::kLeader && Clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  if (!raft->barrier(120s).get().is_ok()) die("barrier");
  if (!raft->snapshot(120s).get().is_ok()) die("snapshot");
}

void measure_open(const std::string& dir, std::uint64_t entries, bool with_snapshot) {
  build_history(dir, entries, with_snapshot);
  auto env = keel::make_thread_env();
  keel::InMemoryNetwork network(env);
  Stores stores = open_stores(dir);
  auto fsm = std::make_shared<BulkFsm>(0);
  const Clock::time_point start = Clock::now();
  auto raft = must(keel::Raft::open(keel::RaftDependencies{
                       solo_config(), fsm, stores.log, stores.stable, stores.snapshots,
                       network.transport(keel::ServerId{1}), env}),
                   "open");
  const double opened = seconds_since(start);
  // Ready: everything committed is applied (a barrier on the new leader).
  const auto deadline = Clock::now() + 300s;
  while (raft->stats().state != keel::RaftState::kLeader && Clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  if (!raft->barrier(300s).get().is_ok()) die("barrier after open");
  const double ready = seconds_since(start);
  const keel::RaftStats stats = raft->stats();
  std::printf(
      "open %-16s entries=%llu  open=%.3f s  ready=%.3f s  entries_read=%llu  "
      "commands_reapplied=%llu\n",
      with_snapshot ? "with-snapshot" : "without-snapshot",
      static_cast<unsigned long long>(entries), opened, ready,
      static_cast<unsigned long long>(stats.entries_read_at_open),
      static_cast<unsigned long long>(fsm->applied() - fsm->restored_count()));
}

void measure_install(std::size_t state_bytes) {
  auto env = keel::make_thread_env();
  keel::InMemoryNetwork network(env);
  keel::Configuration configuration{{keel::Server{keel::ServerId{1}, "a"},
                                     keel::Server{keel::ServerId{2}, "b"},
                                     keel::Server{keel::ServerId{3}, "c"}}};
  struct Member {
    std::shared_ptr<keel::MemoryLogStore> log = std::make_shared<keel::MemoryLogStore>();
    std::shared_ptr<keel::MemoryStableStore> stable = std::make_shared<keel::MemoryStableStore>();
    std::shared_ptr<keel::MemorySnapshotStore> snapshots =
        std::make_shared<keel::MemorySnapshotStore>();
    std::unique_ptr<keel::Raft> raft;
  };
  std::vector<Member> members(3);
  auto open = [&](std::size_t i) {
    keel::Config config = solo_config();
    config.id = keel::ServerId{i + 1};
    config.trailing_log_entries = 0;
    members[i].raft =
        must(keel::Raft::open(keel::RaftDependencies{
                 config, std::make_shared<BulkFsm>(state_bytes), members[i].log, members[i].stable,
                 members[i].snapshots, network.transport(config.id), env}),
             "open");
  };
  for (auto& m : members) {
    if (!keel::bootstrap_cluster(*m.log, *m.stable, configuration).is_ok()) die("boot");
  }
  open(0);
  open(1);
  keel::Raft* leader = nullptr;
  const auto deadline = Clock::now() + 60s;
  while (leader == nullptr && Clock::now() < deadline) {
    for (std::size_t i = 0; i < 2; ++i) {
      if (members[i].raft->stats().state == keel::RaftState::kLeader)
        leader = members[i].raft.get();
    }
    std::this_thread::sleep_for(5ms);
  }
  if (leader == nullptr) die("no leader");
  for (int i = 0; i < 100; ++i) (void)leader->apply("x", 10s).get();
  if (!leader->snapshot(60s).get().is_ok()) die("snapshot");
  const std::uint64_t snapshot_bytes = leader->stats().last_snapshot.size_bytes;
  const Clock::time_point start = Clock::now();
  open(2);
  while (members[2].raft->stats().snapshots_installed == 0 && Clock::now() < deadline + 120s) {
    std::this_thread::sleep_for(1ms);
  }
  const double took = seconds_since(start);
  if (members[2].raft->stats().snapshots_installed == 0) die("no install");
  // A plain copy of the same bytes, twice (out of the leader's store into a
  // buffer, into the follower's), as the least an install must do.
  std::string source(snapshot_bytes, 'y');
  const Clock::time_point copy_start = Clock::now();
  std::string middle(source);
  std::string target(middle);
  const double copy = seconds_since(copy_start);
  const double mb = static_cast<double>(snapshot_bytes) / (1 << 20);
  std::printf(
      "install %.1f MB: %.3f s = %.0f MB/s (chunks of %llu KiB, %zu in flight); "
      "plain copy twice: %.3f s = %.0f MB/s%s\n",
      mb, took, mb / took,
      static_cast<unsigned long long>(solo_config().max_snapshot_chunk_bytes >> 10),
      solo_config().max_inflight_snapshot_chunks, copy, mb / copy,
      target.size() == source.size() ? "" : "?");
}

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t entries = 1'000'000;
  std::size_t state_mb = 64;
  std::string dir = "/tmp/keel-snapshot-bench";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--entries") {
      entries = std::strtoull(argv[i + 1], nullptr, 10);
    } else if (flag == "--state-mb") {
      state_mb = std::strtoull(argv[i + 1], nullptr, 10);
    } else if (flag == "--dir") {
      dir = argv[i + 1];
    } else {
      die("unknown flag " + flag + " (--entries N, --state-mb M, --dir DIR)");
    }
  }
  if (argc % 2 == 0) die("every flag takes a value (--entries N, --state-mb M, --dir DIR)");
  measure_open(dir, entries, /*with_snapshot=*/false);
  measure_open(dir, entries, /*with_snapshot=*/true);
  std::filesystem::remove_all(dir);
  measure_install(state_mb << 20);
  return 0;
}
