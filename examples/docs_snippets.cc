// examples/docs_snippets.cc — the short code examples of docs/consistency.md
// and docs/transport.md, compiled and run so that they stay true. The
// regions between `doc-snippet` markers are copied into the docs
// (tests/docs/check_snippets.sh keeps them equal).
//
// main() runs the consistency examples against a one-server cluster (it
// elects itself at once) and builds the transport options without opening
// a socket. It exits 1 with the reason on stderr if an example does not do
// what its doc says (ctest example_docs_snippets).
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include <keel/raft.h>
#include <keel/tcp_transport.h>

// The examples, in a named namespace: the build compiles them all, and
// main() runs those that need no network.
namespace snippets {

using namespace std::chrono_literals;

// A map of strings, set by "KEY=VALUE" commands.
class KeyValueFsm final : public keel::Fsm {
 public:
  std::string apply(const keel::LogEntry& entry) override {
    const std::string command = entry.data.str();
    const std::size_t equals = command.find('=');
    if (equals == std::string::npos) return "error: expected KEY=VALUE";
    std::lock_guard lock(mutex_);
    values_[command.substr(0, equals)] = command.substr(equals + 1);
    return "ok";
  }
  keel::Result<std::unique_ptr<keel::FsmSnapshot>> snapshot() override {
    return keel::Status::unavailable("this example takes no snapshots");
  }
  keel::Status restore(const keel::SnapshotMeta&, keel::SnapshotReader&) override {
    return keel::Status::invalid_argument("this example takes no snapshots");
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

// What an application does when its server starts or stops leading.
struct Service {
  keel::Term leading_term;
  keel::ServerId leader_hint;
  std::mutex mutex;

  void start_leading(keel::Term term) {
    std::lock_guard lock(mutex);
    leading_term = term;
  }
  void stop_leading() {
    std::lock_guard lock(mutex);
    leading_term = keel::Term{0};
  }
  void set_leader_hint(keel::ServerId id, const std::string& /*address*/) {
    std::lock_guard lock(mutex);
    leader_hint = id;
  }
};

// doc-snippet: linearizable-get
// The value of `key` as of some moment after this call began.
keel::Result<std::optional<std::string>> get(keel::Raft& raft, const KeyValueFsm& fsm,
                                             const std::string& key) {
  keel::Future<keel::Index> safe =
      raft.read(keel::Consistency::kLinearizable, std::chrono::seconds(1));
  const keel::Result<keel::Index>& applied = safe.get();
  if (!applied.is_ok()) return applied.status();  // see "Outcomes" below
  return fsm.get(key);  // the FSM holds every write committed before read() was called
}
// end-doc-snippet: linearizable-get

// doc-snippet: lease-fallback
keel::Result<keel::Index> wait_readable(keel::Raft& raft) {
  keel::Future<keel::Index> lease =
      raft.read(keel::Consistency::kLease, std::chrono::milliseconds(200));
  if (lease.get().is_ok() || lease.get().status().code() != keel::StatusCode::kUnavailable) {
    return lease.get();
  }
  // No lease right now (just elected, or it lapsed): pay for one quorum round.
  return raft.read(keel::Consistency::kLinearizable, std::chrono::seconds(1)).get();
}
// end-doc-snippet: lease-fallback

// doc-snippet: stale-read
// Whether this server heard from a leader within the last `max_age`.
bool recently_in_touch(const keel::Raft& raft, keel::Env& env, keel::Duration max_age) {
  const keel::Duration contact = raft.last_contact();
  return contact != keel::Duration{0} && env.now() - contact <= max_age;
}

// A stale read, refused when this server has been out of touch too long.
keel::Result<std::optional<std::string>> stale_get(keel::Raft& raft, keel::Env& env,
                                                   const KeyValueFsm& fsm, const std::string& key) {
  if (!recently_in_touch(raft, env, std::chrono::seconds(5))) {
    return keel::Status::unavailable("out of touch with the leader");
  }
  return fsm.get(key);
}
// end-doc-snippet: stale-read

keel::Result<std::uint64_t> serve_on_leader_ready(keel::Raft* raft, Service& service) {
  // doc-snippet: leader-ready
  keel::Result<std::uint64_t> subscription = raft->subscribe([&](const keel::Observation& o) {
    switch (o.kind) {
      case keel::Observation::Kind::kLeaderReady:
        // This server leads o.term, and its FSM has applied every entry
        // committed before the term began (o.index is the term-start entry).
        service.start_leading(o.term);
        break;
      case keel::Observation::Kind::kStateChanged:
        if (o.state != keel::RaftState::kLeader) service.stop_leading();
        break;
      case keel::Observation::Kind::kLeaderChanged:
        service.set_leader_hint(o.leader.id, o.leader.address);
        break;
      default:
        break;
    }
  });
  // end-doc-snippet: leader-ready
  return subscription;
}

keel::Result<std::shared_ptr<keel::TcpTransport>> tcp_transport() {
  // doc-snippet: tcp-options
  keel::TcpTransportOptions options;
  options.id = keel::ServerId{1};
  options.cluster_id = 0x6b65656c;           // the same on every server
  options.listen_address = "10.0.0.1:7001";  // what Server::address says for id 1
  keel::Result<std::shared_ptr<keel::TcpTransport>> transport = keel::make_tcp_transport(options);
  // transport.value() goes into RaftDependencies::transport
  // end-doc-snippet: tcp-options
  return transport;
}

void use_tls(keel::TcpTransportOptions& options) {
  // doc-snippet: tls
  options.tls = keel::TcpTlsOptions{"server1.crt", "server1.key", "ca.crt",
                                    /*verify_peer_names=*/true};
  // end-doc-snippet: tls
}

}  // namespace snippets

namespace {

bool fail(const std::string& why) {
  std::cerr << "docs_snippets FAILED: " << why << "\n";
  return false;
}

using namespace std::chrono_literals;
using snippets::KeyValueFsm;

bool run() {
  std::shared_ptr<keel::Env> env = keel::make_thread_env();
  keel::InMemoryNetwork network(env);
  auto log_store = std::make_shared<keel::MemoryLogStore>();
  auto stable_store = std::make_shared<keel::MemoryStableStore>();
  const keel::ServerId id{1};
  keel::Configuration configuration;
  configuration.servers = {keel::Server{id, "server-1", keel::Suffrage::kVoter}};
  keel::Status bootstrapped = keel::bootstrap_cluster(*log_store, *stable_store, configuration);
  if (!bootstrapped.is_ok()) return fail(bootstrapped.to_string());
  auto fsm = std::make_shared<KeyValueFsm>();
  keel::RaftDependencies deps;
  deps.fsm = fsm;
  deps.log_store = log_store;
  deps.stable_store = stable_store;
  deps.snapshot_store = std::make_shared<keel::MemorySnapshotStore>();
  deps.transport = network.transport(id);
  deps.env = env;
  deps.config.id = id;
  keel::Result<std::unique_ptr<keel::Raft>> opened = keel::Raft::open(std::move(deps));
  if (!opened.is_ok()) return fail(opened.status().to_string());
  std::unique_ptr<keel::Raft> raft = std::move(opened).value();

  snippets::Service service;
  keel::Result<std::uint64_t> subscription = snippets::serve_on_leader_ready(raft.get(), service);
  if (!subscription.is_ok()) return fail(subscription.status().to_string());
  // A single voter elects itself after its first election timeout.
  keel::Result<keel::Index> barrier = keel::Status::timeout("no leader");
  for (int attempt = 0; attempt < 100 && !barrier.is_ok(); ++attempt) {
    barrier = raft->barrier(5s).get();
    if (!barrier.is_ok()) std::this_thread::sleep_for(100ms);
  }
  if (!barrier.is_ok()) return fail("barrier: " + barrier.status().to_string());
  keel::Result<keel::ApplyResult> applied = raft->apply("greeting=hello", 5s).get();
  if (!applied.is_ok()) return fail(applied.status().to_string());

  keel::Result<std::optional<std::string>> value = snippets::get(*raft, *fsm, "greeting");
  if (!value.is_ok() || *value != "hello") return fail("the linearizable get missed the write");
  if (!snippets::wait_readable(*raft).is_ok()) return fail("wait_readable refused on the leader");
  keel::Result<std::optional<std::string>> stale =
      snippets::stale_get(*raft, *env, *fsm, "greeting");
  if (!stale.is_ok() || *stale != "hello") return fail("the leader counts as out of touch");
  {
    std::lock_guard lock(service.mutex);
    if (service.leading_term != raft->term()) return fail("kLeaderReady did not reach Service");
  }
  raft->unsubscribe(*subscription);
  raft->shutdown();

  // The transport's options are checked, but nothing binds 10.0.0.1 here.
  keel::TcpTransportOptions options;
  options.id = id;
  options.cluster_id = 1;
  options.listen_address = "127.0.0.1:0";
  if (!keel::validate(options).is_ok()) return fail("plain options refused");
  snippets::use_tls(options);
  if (!options.tls || !options.tls->verify_peer_names) return fail("use_tls set nothing");
  std::cout << "docs snippets ok\n";
  return true;
}

}  // namespace

int main() { return run() ? EXIT_SUCCESS : EXIT_FAILURE; }
