// keel-tcp-test-server: one keel::Raft server in its own process, over the
// TCP transport, on durable file stores, driven line by line on stdin by
// tcp_process_test.cc. Not a product: keel-kv is the server users run.
//
//   keel-tcp-test-server --id N --listen HOST:PORT --data-dir DIR --cluster-id C
//
// It listens, prints "listening HOST:PORT", then reads "members
// 1=ADDR,2=ADDR,..." and bootstraps from it if its stores are empty. Then,
// one answer line per command line:
//   apply KEY VALUE -> "ok INDEX" | "err STATUS"
//   state           -> "state ROLE TERM COMMIT APPLIED"
//   get KEY         -> "value VALUE" (its own state machine)
// End of input closes the server and exits 0.
#include <cstdio>
#include <iostream>
#include <sstream>
#include <string>

#include "../runtime/test_cluster.h"
#include "keel/file_stores.h"
#include "keel/raft.h"
#include "keel/tcp_transport.h"

using namespace keel;
using namespace std::chrono_literals;

namespace {

int fail(const std::string& why) {
  std::fprintf(stderr, "keel-tcp-test-server: %s\n", why.c_str());
  return 2;
}

void answer(const std::string& line) {
  std::cout << line << std::endl;  // flushed: the test waits for it
}

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::string> flags;
  for (int i = 1; i + 1 < argc; i += 2) flags[argv[i]] = argv[i + 1];
  for (const char* required : {"--id", "--listen", "--data-dir", "--cluster-id"}) {
    if (!flags.count(required)) return fail(std::string("missing ") + required);
  }
  const ServerId id{std::stoull(flags["--id"])};
  const std::string dir = flags["--data-dir"];

  TcpTransportOptions options;
  options.id = id;
  options.cluster_id = std::stoull(flags["--cluster-id"]);
  options.listen_address = flags["--listen"];
  options.backoff_initial = 10ms;
  options.backoff_max = 200ms;
  auto transport = make_tcp_transport(options);
  if (!transport.is_ok()) return fail(transport.status().to_string());
  answer("listening " + (*transport)->listen_address());

  std::string line;
  if (!std::getline(std::cin, line) || line.rfind("members ", 0) != 0)
    return fail("expected 'members ...'");
  Configuration configuration;
  std::stringstream members(line.substr(8));
  for (std::string member; std::getline(members, member, ',');) {
    const auto eq = member.find('=');
    configuration.servers.push_back(Server{ServerId{std::stoull(member.substr(0, eq))},
                                           member.substr(eq + 1), Suffrage::kVoter});
  }

  auto log = WalLogStore::open(dir + "/wal");
  if (!log.is_ok()) return fail(log.status().to_string());
  auto stable = FileStableStore::open(dir + "/stable");
  if (!stable.is_ok()) return fail(stable.status().to_string());
  auto snapshots = FileSnapshotStore::open(dir + "/snapshots", {});
  if (!snapshots.is_ok()) return fail(snapshots.status().to_string());
  Result<bool> existing = has_existing_state(**log, **stable);
  if (!existing.is_ok()) return fail(existing.status().to_string());
  if (!*existing) {
    Status bootstrapped = bootstrap_cluster(**log, **stable, configuration);
    if (!bootstrapped.is_ok()) return fail(bootstrapped.to_string());
  }

  Config config;
  config.id = id;
  config.heartbeat_interval = 30ms;
  config.election_timeout = 600ms;
  config.lease_timeout = 300ms;
  config.snapshot_threshold_entries = 100;
  config.trailing_log_entries = 10;
  auto fsm = std::make_shared<testing::KvFsm>();
  auto raft = Raft::open(
      RaftDependencies{config, fsm, *log, *stable, *snapshots, *transport, make_thread_env()});
  if (!raft.is_ok()) return fail(raft.status().to_string());

  while (std::getline(std::cin, line)) {
    std::stringstream words(line);
    std::string command;
    words >> command;
    if (command == "apply") {
      std::string key, value;
      words >> key >> value;
      Result<ApplyResult> applied = (*raft)->apply("set " + key + " " + value, 5s).get();
      answer(applied.is_ok() ? "ok " + std::to_string(applied->index.value)
                             : "err " + applied.status().to_string());
    } else if (command == "state") {
      const RaftStats s = (*raft)->stats();
      answer(std::string("state ") + to_string(s.state) + " " + std::to_string(s.term.value) + " " +
             std::to_string(s.commit_index.value) + " " + std::to_string(s.applied_index.value));
    } else if (command == "get") {
      std::string key;
      words >> key;
      answer("value " + fsm->get(key));
    } else {
      answer("err unknown command");
    }
  }
  raft->reset();
  return 0;
}
