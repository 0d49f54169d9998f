// examples/operations.cc — the operator's tasks of docs/operations.md, run
// for real on servers in one process (thread Env, in-memory network and
// stores): bootstrap three servers, add a fourth, replace a failed one,
// move leadership, take a backup from a snapshot and restore it, then lose
// the quorum for good and recover the cluster on the one survivor.
//
// The regions between `doc-snippet` markers are copied into
// docs/operations.md (tests/docs/check_snippets.sh keeps them equal). Every
// step is checked and bounded; the program exits 1 with the reason on
// stderr if one does not happen as documented (ctest example_operations).
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <keel/raft.h>

namespace {

using namespace std::chrono_literals;

// A counter: "add N" adds N. Its state is the number, as text.
class Counter final : public keel::Fsm {
 public:
  std::string apply(const keel::LogEntry& entry) override {
    const std::string command = entry.data.str();
    if (command.rfind("add ", 0) != 0) return "error";
    return std::to_string(value_ += std::stoll(command.substr(4)));
  }
  keel::Result<std::unique_ptr<keel::FsmSnapshot>> snapshot() override {
    return std::unique_ptr<keel::FsmSnapshot>(
        std::make_unique<keel::CopiedSnapshot>(std::to_string(value_)));
  }
  keel::Status restore(const keel::SnapshotMeta&, keel::SnapshotReader& reader) override {
    keel::Result<std::string> bytes = keel::read_whole_snapshot(reader, 64);
    if (!bytes.is_ok()) return bytes.status();
    value_ = std::stoll(*bytes);
    return keel::Status::ok();
  }
  std::int64_t value() const { return value_; }

 private:
  std::atomic<std::int64_t> value_{0};
};

// The newest ready leader any server announced (kLeaderReady).
class ReadyLeaders {
 public:
  void observe(const keel::Observation& o) {
    if (o.kind != keel::Observation::Kind::kLeaderReady) return;
    std::lock_guard lock(mutex_);
    if (o.term > term_) {
      term_ = o.term;
      leader_ = o.leader.id;
    }
    changed_.notify_all();
  }
  // The ready leader of a term above `after`, or kNoServer after 20 s.
  keel::ServerId wait(keel::Term after = keel::Term{0}) {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, 20s, [&] { return term_ > after; });
    return term_ > after ? leader_ : keel::kNoServer;
  }
  keel::Term term() {
    std::lock_guard lock(mutex_);
    return term_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  keel::Term term_;
  keel::ServerId leader_;
};

std::string address_of(keel::ServerId id) { return "10.0.0." + std::to_string(id.value) + ":7000"; }

// One server: its stores outlive its Raft, as a disk outlives a process.
struct Server {
  std::shared_ptr<keel::MemoryLogStore> log_store = std::make_shared<keel::MemoryLogStore>();
  std::shared_ptr<keel::MemoryStableStore> stable_store =
      std::make_shared<keel::MemoryStableStore>();
  std::shared_ptr<keel::MemorySnapshotStore> snapshot_store =
      std::make_shared<keel::MemorySnapshotStore>();
  std::shared_ptr<Counter> fsm;
  std::unique_ptr<keel::Raft> raft;
};

class Walkthrough {
 public:
  bool run() {
    return bootstrap() && write(5) && add_server() && replace_failed_server() &&
           move_leadership() && backup_and_restore() && recover_lost_quorum();
  }

 private:
  bool fail(const std::string& why) {
    std::cerr << "operations FAILED: " << why << "\n";
    return false;
  }
  template <typename T>
  bool ok(const keel::Result<T>& result, const std::string& what) {
    return result.is_ok() || fail(what + ": " + result.status().to_string());
  }
  bool ok(const keel::Status& status, const std::string& what) {
    return status.is_ok() || fail(what + ": " + status.to_string());
  }

  // Opens server `id` on its stores (whatever they hold) over `network`.
  bool open(keel::ServerId id, keel::InMemoryNetwork& network) {
    Server& server = servers_[id];
    server.fsm = std::make_shared<Counter>();
    keel::RaftDependencies deps;
    deps.fsm = server.fsm;
    deps.log_store = server.log_store;
    deps.stable_store = server.stable_store;
    deps.snapshot_store = server.snapshot_store;
    deps.transport = network.transport(id);
    deps.env = env_;
    deps.config.id = id;
    deps.observers.push_back([this](const keel::Observation& o) { leaders_.observe(o); });
    keel::Result<std::unique_ptr<keel::Raft>> opened = keel::Raft::open(std::move(deps));
    if (!ok(opened, "open server " + std::to_string(id.value))) return false;
    server.raft = std::move(opened).value();
    return true;
  }

  keel::Raft* leader() {
    const keel::ServerId id = leaders_.wait();
    return id == keel::kNoServer ? nullptr : servers_.at(id).raft.get();
  }

  bool bootstrap() {
    for (std::uint64_t n = 1; n <= 3; ++n) {
      Server& server = servers_[keel::ServerId{n}];
      std::shared_ptr<keel::MemoryLogStore> log_store = server.log_store;
      std::shared_ptr<keel::MemoryStableStore> stable_store = server.stable_store;
      // doc-snippet: bootstrap
      keel::Configuration founders;
      founders.servers = {
          keel::Server{keel::ServerId{1}, "10.0.0.1:7000", keel::Suffrage::kVoter},
          keel::Server{keel::ServerId{2}, "10.0.0.2:7000", keel::Suffrage::kVoter},
          keel::Server{keel::ServerId{3}, "10.0.0.3:7000", keel::Suffrage::kVoter},
      };
      keel::Result<bool> existing = keel::has_existing_state(*log_store, *stable_store);
      if (!existing.is_ok()) return fail(existing.status().to_string());
      if (!*existing) {  // a new server: never bootstrap one that holds state
        keel::Status status = keel::bootstrap_cluster(*log_store, *stable_store, founders);
        if (!status.is_ok()) return fail(status.to_string());
      }
      // end-doc-snippet: bootstrap
      if (!open(keel::ServerId{n}, network_)) return false;
    }
    if (leader() == nullptr) return fail("no leader after bootstrap");
    std::cout << "bootstrapped servers 1-3; server " << leaders_.wait() << " leads\n";
    return true;
  }

  bool write(int times) {
    for (int i = 0; i < times; ++i) {
      keel::Raft* raft = leader();
      if (raft == nullptr) return fail("no leader to write to");
      if (!ok(raft->apply("add 1", 5s).get(), "apply")) return false;
    }
    return true;
  }

  bool add_server() {
    if (!open(keel::ServerId{4}, network_)) return false;  // empty stores, not bootstrapped
    keel::Raft* leader = this->leader();
    if (leader == nullptr) return fail("no leader");
    // doc-snippet: add-voter
    // On the leader: a learner first, promoted to voter once it keeps up.
    keel::ConfigurationState now = leader->configuration();
    keel::Result<keel::Index> added =
        leader->add_voter(keel::ServerId{4}, "10.0.0.4:7000", now.latest_index, 60s).get();
    // end-doc-snippet: add-voter
    if (!ok(added, "add_voter(4)")) return false;
    std::cout << "added server 4 as a voter at index " << *added << "\n";
    return true;
  }

  // A follower fails for good; server 5 takes its place.
  bool replace_failed_server() {
    keel::Raft* leader = this->leader();
    if (leader == nullptr) return fail("no leader");
    keel::ServerId failed{0};
    for (const auto& [id, server] : servers_) {
      if (server.raft && server.raft.get() != leader) failed = id;
    }
    servers_.at(failed).raft->shutdown();
    if (!open(keel::ServerId{5}, network_)) return false;
    // doc-snippet: replace
    // The failed server still counts as a voter: the cluster needs a
    // majority without it, to add the new one first and then remove it.
    const keel::Index latest = leader->configuration().latest_index;
    keel::Result<keel::Index> added =
        leader->add_voter(keel::ServerId{5}, "10.0.0.5:7000", latest, 60s).get();
    if (!added.is_ok()) return fail("add_voter: " + added.status().to_string());
    keel::Result<keel::Index> removed = leader->remove_server(failed, *added, 30s).get();
    if (!removed.is_ok()) return fail("remove_server: " + removed.status().to_string());
    // end-doc-snippet: replace
    servers_.erase(failed);
    std::cout << "replaced server " << failed << " by server 5\n";
    return true;
  }

  bool move_leadership() {
    keel::Raft* raft = leader();
    if (raft == nullptr) return fail("no leader");
    const keel::Term before = leaders_.term();
    // doc-snippet: transfer
    keel::Result<keel::LeaderInfo> moved =
        raft->transfer_leadership(std::nullopt, std::chrono::seconds(5)).get();
    // end-doc-snippet: transfer
    if (!ok(moved, "transfer_leadership")) return false;
    if (leaders_.wait(before) != moved->id) return fail("the new leader never became ready");
    std::cout << "leadership moved to server " << moved->id << "\n";
    return true;
  }

  bool backup_and_restore() {
    keel::Raft* raft = leader();
    if (raft == nullptr) return fail("no leader");
    // doc-snippet: backup
    // Any server: a snapshot now, then its bytes and metadata, kept together.
    keel::Result<keel::SnapshotMeta> taken = raft->snapshot(std::chrono::seconds(30)).get();
    if (!taken.is_ok()) return fail("snapshot: " + taken.status().to_string());
    keel::Result<keel::SnapshotStore::Opened> opened = raft->open_snapshot(taken->id);
    if (!opened.is_ok()) return fail("open_snapshot: " + opened.status().to_string());
    std::string backup;  // in production: a file, next to a copy of the metadata
    std::array<char, 64 * 1024> buffer;
    for (;;) {
      keel::Result<std::size_t> read = opened->reader->read(buffer);
      if (!read.is_ok()) return fail("reading the snapshot: " + read.status().to_string());
      if (*read == 0) break;  // the end: size and checksum were checked again
      backup.append(buffer.data(), *read);
    }
    const keel::SnapshotMeta backup_meta = opened->meta;  // size_bytes and crc32c
    // end-doc-snippet: backup
    const std::int64_t backed_up = std::stoll(backup);
    if (!write(3)) return false;
    raft = leader();
    if (raft == nullptr) return fail("no leader");
    // doc-snippet: restore
    // On the leader: every server's state becomes the backup's, in log order.
    keel::Result<keel::Index> restored =
        raft->restore(backup_meta, std::make_unique<keel::StringSnapshotReader>(backup),
                      std::chrono::seconds(30))
            .get();
    if (!restored.is_ok()) return fail("restore: " + restored.status().to_string());
    // end-doc-snippet: restore
    for (auto& [id, server] : servers_) {
      if (!ok(server.raft->read(keel::Consistency::kLinearizable, 10s).get(), "read")) {
        return false;
      }
      if (server.fsm->value() != backed_up) return fail("a server did not take the backup");
    }
    std::cout << "backed up " << backed_up << ", wrote more, restored " << backed_up
              << " on every server at index " << *restored << "\n";
    return true;
  }

  // Every server stops; all but one are lost for good.
  bool recover_lost_quorum() {
    const std::int64_t expected = servers_.begin()->second.fsm->value();
    for (auto& [id, server] : servers_) server.raft->shutdown();
    // doc-snippet: pick-survivor
    // The survivor whose log is most up to date: the highest last term,
    // then the highest last index (as an election would pick).
    using Position = std::pair<keel::Term, keel::Index>;
    auto last_entry = [](const keel::LogStore& log, const keel::SnapshotStore& snapshots) {
      const keel::Index last = log.last_index();
      if (!last.is_zero() && last >= log.first_index()) {
        keel::Result<std::vector<keel::LogEntry>> entry = log.read(last, last);
        if (entry.is_ok() && !entry->empty()) return Position{entry->front().term, last};
      }
      // A log cut down to nothing ends where the newest snapshot does.
      keel::Result<keel::SnapshotList> list = snapshots.list();
      if (!list.is_ok() || list->snapshots.empty()) return Position{};
      return Position{list->snapshots.front().term, list->snapshots.front().index};
    };
    // end-doc-snippet: pick-survivor
    keel::ServerId survivor;
    Position best;
    for (const auto& [id, server] : servers_) {
      const Position position = last_entry(*server.log_store, *server.snapshot_store);
      if (position > best) {
        best = position;
        survivor = id;
      }
    }
    std::erase_if(servers_, [&](const auto& entry) { return entry.first != survivor; });
    Server& server = servers_.at(survivor);
    std::shared_ptr<keel::MemoryLogStore> log_store = server.log_store;
    std::shared_ptr<keel::MemoryStableStore> stable_store = server.stable_store;
    // doc-snippet: recover
    keel::Configuration survivors;
    survivors.servers = {keel::Server{survivor, address_of(survivor), keel::Suffrage::kVoter}};
    keel::Status status = keel::recover_cluster(*log_store, *stable_store, survivors);
    // end-doc-snippet: recover
    if (!ok(status, "recover_cluster")) return false;
    recovery_network_ = std::make_unique<keel::InMemoryNetwork>(env_);
    const keel::Term before = leaders_.term();
    if (!open(survivor, *recovery_network_)) return false;
    if (leaders_.wait(before) != survivor) return fail("the recovered server did not lead");
    if (!ok(server.raft->read(keel::Consistency::kLinearizable, 10s).get(), "read")) return false;
    if (server.fsm->value() != expected) return fail("the recovered server lost committed state");
    if (!ok(server.raft->apply("add 1", 5s).get(), "apply after recovery")) return false;
    std::cout << "recovered on server " << survivor << " alone, holding " << expected
              << "; writes go on\n";
    server.raft->shutdown();
    return true;
  }

  std::shared_ptr<keel::Env> env_ = keel::make_thread_env();
  keel::InMemoryNetwork network_{env_};
  std::unique_ptr<keel::InMemoryNetwork> recovery_network_;  // after the quorum is lost
  ReadyLeaders leaders_;
  std::map<keel::ServerId, Server> servers_;  // declared last: destroyed first
};

}  // namespace

int main() { return Walkthrough().run() ? EXIT_SUCCESS : EXIT_FAILURE; }
