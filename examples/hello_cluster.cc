// examples/hello_cluster.cc — three keel servers in one process, talking over
// an in-memory network: wait until a leader is ready, write a few keys
// through it, read one back on a follower with a linearizable read, shut down.
//
// It uses the public API only (include/keel/), the way an application would.
// Every call is checked and every wait is bounded: the program exits 1, with
// the reason on stderr, if anything does not happen as it should, so it
// doubles as a smoke test (ctest example_hello_cluster).
//
// See docs/consistency.md for why the read is done the way it is.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <keel/env.h>
#include <keel/log_store.h>
#include <keel/raft.h>
#include <keel/transport.h>

namespace {

using namespace std::chrono_literals;

// The deadline handed to every keel call; keel resolves each future by then.
constexpr auto kOperationTimeout = 10s;
// How long we wait for a future: a little more than its deadline, so a
// future that never resolves is reported instead of hanging the program.
constexpr auto kWaitBound = kOperationTimeout + 5s;

// The replicated state machine: a map of strings. Commands are
// "set KEY VALUE" (VALUE may contain spaces). keel calls apply() from its
// applier thread; get() is called from ours, hence the mutex.
class KeyValueFsm final : public keel::Fsm {
 public:
  std::string apply(const keel::LogEntry& entry) override {
    std::istringstream command(entry.data.str());
    std::string operation;
    std::string key;
    std::string value;
    command >> operation >> key >> std::ws;
    std::getline(command, value);
    if (operation != "set" || key.empty()) return "error: expected 'set KEY VALUE'";
    std::lock_guard lock(mutex_);
    values_[key] = value;
    return "ok";
  }

  // A copy of the map, taken between two applies; keel writes it out on a
  // thread of its own. Each key and value: its length, a space, its bytes.
  keel::Result<std::unique_ptr<keel::FsmSnapshot>> snapshot() override {
    std::lock_guard lock(mutex_);
    std::string state;
    for (const auto& [key, value] : values_) {
      for (const std::string* part : {&key, &value})
        state += std::to_string(part->size()) + " " + *part;
    }
    return std::unique_ptr<keel::FsmSnapshot>(std::make_unique<keel::CopiedSnapshot>(state));
  }

  keel::Status restore(const keel::SnapshotMeta& /*meta*/, keel::SnapshotReader& reader) override {
    keel::Result<std::string> state = keel::read_whole_snapshot(reader, 1ULL << 30);
    if (!state.is_ok()) return state.status();
    std::map<std::string, std::string> values;
    std::istringstream in(*state);
    std::size_t key_size = 0;
    while (in >> key_size) {
      std::string key(key_size, '\0');
      std::size_t value_size = 0;
      if (!in.ignore(1).read(key.data(), static_cast<std::streamsize>(key_size)) ||
          !(in >> value_size)) {
        return keel::Status::corruption("KeyValueFsm: malformed snapshot");
      }
      std::string value(value_size, '\0');
      if (!in.ignore(1).read(value.data(), static_cast<std::streamsize>(value_size))) {
        return keel::Status::corruption("KeyValueFsm: malformed snapshot");
      }
      values[std::move(key)] = std::move(value);
    }
    std::lock_guard lock(mutex_);
    values_ = std::move(values);
    return keel::Status::ok();
  }

  std::optional<std::string> get(const std::string& key) const {
    std::lock_guard lock(mutex_);
    auto it = values_.find(key);
    if (it == values_.end()) return std::nullopt;
    return it->second;
  }

 private:
  mutable std::mutex mutex_;
  std::map<std::string, std::string> values_;
};

// Remembers the first kLeaderReady observation any server sends. Observers
// run on their own thread, so handing the news over needs a mutex.
class LeaderReadyLatch {
 public:
  void observe(const keel::Observation& observation) {
    if (observation.kind != keel::Observation::Kind::kLeaderReady) return;
    {
      std::lock_guard lock(mutex_);
      if (!leader_) leader_ = std::make_pair(observation.leader.id, observation.term);
    }
    ready_cv_.notify_all();
  }

  // The ready leader and its term, or nothing if none within `bound`.
  std::optional<std::pair<keel::ServerId, keel::Term>> wait(std::chrono::seconds bound) {
    std::unique_lock lock(mutex_);
    ready_cv_.wait_for(lock, bound, [&] { return leader_.has_value(); });
    return leader_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable ready_cv_;
  std::optional<std::pair<keel::ServerId, keel::Term>> leader_;
};

struct Member {
  std::shared_ptr<KeyValueFsm> fsm;
  std::unique_ptr<keel::Raft> raft;
  std::uint64_t subscription = 0;
};

[[nodiscard]] bool fail(const std::string& why) {
  std::cerr << "hello_cluster FAILED: " << why << "\n";
  return false;
}

// Waits (bounded) for `future` and reports a failure with its status.
template <typename T>
[[nodiscard]] bool settled_ok(const keel::Future<T>& future, const std::string& what) {
  if (!future.wait_for(kWaitBound)) return fail(what + ": no outcome within its deadline");
  const keel::Result<T>& result = future.get();
  if (!result.is_ok()) return fail(what + ": " + result.status().to_string());
  return true;
}

bool run() {
  std::shared_ptr<keel::Env> env = keel::make_thread_env();
  // Declared before the servers, so it outlives them.
  keel::InMemoryNetwork network(env);

  keel::Configuration configuration;
  for (std::uint64_t id = 1; id <= 3; ++id) {
    configuration.servers.push_back(
        keel::Server{keel::ServerId{id}, "server-" + std::to_string(id), keel::Suffrage::kVoter});
  }

  LeaderReadyLatch latch;
  std::map<keel::ServerId, Member> members;
  for (const keel::Server& server : configuration.servers) {
    auto log_store = std::make_shared<keel::MemoryLogStore>();
    auto stable_store = std::make_shared<keel::MemoryStableStore>();
    // Every founding server gets the same first configuration.
    if (keel::Status status = keel::bootstrap_cluster(*log_store, *stable_store, configuration);
        !status.is_ok()) {
      return fail("bootstrap_cluster: " + status.to_string());
    }
    keel::Config config;  // defaults: heartbeats every 100 ms, elections after 1-2 s
    config.id = server.id;

    Member& member = members[server.id];
    member.fsm = std::make_shared<KeyValueFsm>();
    keel::Result<std::unique_ptr<keel::Raft>> opened = keel::Raft::open(keel::RaftDependencies{
        config, member.fsm, log_store, stable_store, std::make_shared<keel::MemorySnapshotStore>(),
        network.transport(server.id), env});
    if (!opened.is_ok()) return fail("Raft::open: " + opened.status().to_string());
    member.raft = std::move(opened).value();
    // Subscribed right after open: no election can finish before the first
    // election timeout (1 s here), so the leader's kLeaderReady is not missed.
    keel::Result<std::uint64_t> subscribed =
        member.raft->subscribe([&latch](const keel::Observation& o) { latch.observe(o); });
    if (!subscribed.is_ok()) return fail("subscribe: " + subscribed.status().to_string());
    member.subscription = *subscribed;
  }
  std::cout << "started 3 servers\n";

  // kLeaderReady: the leader's term-start entry is committed and applied on
  // the leader, so its FSM holds everything committed before its term.
  auto ready = latch.wait(kOperationTimeout);
  if (!ready) return fail("no leader became ready");
  const auto [leader_id, leader_term] = *ready;
  if (!members.contains(leader_id)) return fail("kLeaderReady names an unknown server");
  std::cout << "server " << leader_id << " leads term " << leader_term << "\n";
  keel::Raft& leader = *members.at(leader_id).raft;

  const std::vector<std::string> commands = {"set greeting hello, world", "set answer 42",
                                             "set language C++20"};
  for (const std::string& command : commands) {
    keel::Future<keel::ApplyResult> applied = leader.apply(command, kOperationTimeout);
    if (!settled_ok(applied, "apply '" + command + "'")) return false;
    const keel::ApplyResult& result = applied.get().value();
    if (result.response != "ok") return fail("'" + command + "' answered " + result.response);
    std::cout << "applied '" << command << "' at index " << result.index << "\n";
  }

  // A follower may not have applied the writes yet. A linearizable read asks
  // the leader for its commit index (one quorum round) and resolves once this
  // follower's FSM has applied up to it: only then is reading the FSM safe.
  keel::ServerId follower_id;
  for (const auto& [id, member] : members) {
    if (id != leader_id) follower_id = id;
  }
  keel::Future<keel::Index> read =
      members.at(follower_id).raft->read(keel::Consistency::kLinearizable, kOperationTimeout);
  if (!settled_ok(read, "linearizable read on server " + std::to_string(follower_id.value))) {
    return false;
  }
  const std::optional<std::string> answer = members.at(follower_id).fsm->get("answer");
  std::cout << "server " << follower_id
            << " (a follower) reads answer = " << answer.value_or("<missing>")
            << " (applied through index " << read.get().value() << ")\n";
  if (answer != "42") return fail("the follower's linearizable read missed a committed write");

  for (auto& [id, member] : members) {
    member.raft->unsubscribe(member.subscription);
    member.raft->shutdown();
    if (member.raft->state() != keel::RaftState::kShutdown) {
      return fail("server " + std::to_string(id.value) + " did not shut down");
    }
  }
  std::cout << "shut down\n";
  return true;
}

}  // namespace

int main() { return run() ? EXIT_SUCCESS : EXIT_FAILURE; }
