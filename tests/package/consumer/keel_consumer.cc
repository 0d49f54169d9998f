// tests/package/consumer/keel_consumer.cc — a program that uses keel the way
// a user's project does once keel is installed (or added as a
// subdirectory): every public header, keel::keel only, the user's own
// strict warnings. It opens a one-server cluster on memory stores, applies
// a command, and checks that its state machine saw it and that the headers
// and the library it runs with are the version it expects.
//
// Usage: keel-consumer EXPECTED_VERSION. Exits 0 when all of that holds,
// 1 with the reason on stderr otherwise.
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <keel/config.h>
#include <keel/env.h>
#include <keel/file_stores.h>
#include <keel/fsm.h>
#include <keel/future.h>
#include <keel/log_store.h>
#include <keel/logger.h>
#include <keel/metrics.h>
#include <keel/raft.h>
#include <keel/snapshot_store.h>
#include <keel/status.h>
#include <keel/tcp_transport.h>
#include <keel/transport.h>
#include <keel/types.h>
#include <keel/version.h>

namespace {

using namespace std::chrono_literals;

// Keeps every command it is given, in order.
class RecordingFsm final : public keel::Fsm {
 public:
  std::string apply(const keel::LogEntry& entry) override {
    std::lock_guard lock(mutex_);
    commands_.push_back(entry.data.str());
    return "seen " + entry.data.str();
  }
  keel::Result<std::unique_ptr<keel::FsmSnapshot>> snapshot() override {
    return keel::Status::invalid_argument("the consumer takes no snapshots");
  }
  keel::Status restore(const keel::SnapshotMeta&, keel::SnapshotReader&) override {
    return keel::Status::invalid_argument("the consumer restores no snapshots");
  }
  std::vector<std::string> commands() const {
    std::lock_guard lock(mutex_);
    return commands_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> commands_;
};

int fail(const std::string& why) {
  std::cerr << "keel-consumer FAILED: " << why << "\n";
  return EXIT_FAILURE;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) return fail("usage: keel-consumer EXPECTED_VERSION");
  const std::string expected = argv[1];
  if (keel::kVersionString != expected) {
    return fail("headers say " + std::string(keel::kVersionString) + ", expected " + expected);
  }
  if (keel::version() != expected) {
    return fail("the library says " + std::string(keel::version()) + ", expected " + expected);
  }

  std::shared_ptr<keel::Env> env = keel::make_thread_env();
  keel::InMemoryNetwork network(env);  // outlives the server
  keel::Configuration configuration;
  configuration.servers.push_back({keel::ServerId{1}, "solo"});
  auto log = std::make_shared<keel::MemoryLogStore>();
  auto stable = std::make_shared<keel::MemoryStableStore>();
  if (keel::Status s = keel::bootstrap_cluster(*log, *stable, configuration); !s.is_ok()) {
    return fail("bootstrap_cluster: " + s.to_string());
  }
  auto fsm = std::make_shared<RecordingFsm>();
  keel::Promise<bool> ready;
  // Member by member: designated initializers would leave members out, which
  // -Wextra (-Wmissing-field-initializers) reports in a user's build.
  keel::RaftDependencies deps;
  deps.fsm = fsm;
  deps.log_store = log;
  deps.stable_store = stable;
  deps.snapshot_store = std::make_shared<keel::MemorySnapshotStore>();
  deps.transport = network.transport(keel::ServerId{1});
  deps.env = env;
  deps.config.id = keel::ServerId{1};
  deps.observers.push_back([ready](const keel::Observation& o) {
    if (o.kind == keel::Observation::Kind::kLeaderReady) ready.resolve(true);
  });
  keel::Result<std::unique_ptr<keel::Raft>> opened = keel::Raft::open(std::move(deps));
  if (!opened.is_ok()) return fail("Raft::open: " + opened.status().to_string());
  std::unique_ptr<keel::Raft> raft = std::move(opened).value();

  keel::Future<bool> leading = ready.future();
  if (!leading.wait_for(20s)) return fail("the one server did not become a ready leader");
  keel::Future<keel::ApplyResult> applied = raft->apply("hello from a consumer", 10s);
  if (!applied.wait_for(20s)) return fail("apply did not resolve");
  const keel::Result<keel::ApplyResult>& result = applied.get();
  if (!result.is_ok()) return fail("apply: " + result.status().to_string());
  if (result->response != "seen hello from a consumer") {
    return fail("apply answered '" + result->response + "'");
  }
  raft->shutdown();

  const std::vector<std::string> commands = fsm->commands();
  if (commands != std::vector<std::string>{"hello from a consumer"}) {
    return fail("the state machine saw " + std::to_string(commands.size()) + " commands");
  }
  std::cout << "keel " << keel::version() << ": applied at index " << result->index
            << ", the state machine saw it\n";
  return EXIT_SUCCESS;
}
