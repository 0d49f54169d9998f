// tests/integration/kv/kv_server_test.cc — keel-kv as real processes: what
// `keel-kv serve` refuses to start with, its HTTP API on a 3-server cluster
// (reads at each consistency, redirects, cas, limits, blocking reads,
// errors), restarts after SIGTERM and kill -9, a cluster without a leader,
// membership changes, metrics, and the client binary.
//
// Every test starts its own servers on free ports in its own temporary
// folder, bounds every wait with a deadline, and stops what it started (the
// harness's destructors kill whatever is left).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "gtest/gtest.h"
#include "kv_harness.h"

namespace {

namespace fs = std::filesystem;
using keel::kv::testing::Exit;
using keel::kv::testing::free_port;
using keel::kv::testing::http;
using keel::kv::testing::HttpReply;
using keel::kv::testing::keel_kv_binary;
using keel::kv::testing::KvCluster;
using keel::kv::testing::KvClusterOptions;
using keel::kv::testing::Process;
using keel::kv::testing::run_command;
using keel::kv::testing::TempDir;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using namespace std::chrono_literals;

// Liveness bounds: generous, so that a loaded machine (ctest -j2 beside a
// build) does not fail a test that is right; a wrong answer fails at once.
constexpr milliseconds kLeaderBound = 30s;  // a cluster elects a ready leader
constexpr milliseconds kExitBound = 15s;    // a process ends after SIGTERM / an error
constexpr milliseconds kPromptExit = 5s;    // "promptly": SIGTERM to exit

json parse(const std::string& text) { return json::parse(text, nullptr, false); }

// The servers a /v1/cluster/members answer lists (committed), by value:
// a range-for over parse(...)["servers"] would outlive its temporary.
std::vector<json> listed_servers(const HttpReply& r) {
  const json body = parse(r.body);
  if (!body.is_object() || !body.contains("servers") || !body["servers"].is_array()) return {};
  return body["servers"].get<std::vector<json>>();
}

std::string trim(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
    text.pop_back();
  }
  return text;
}

std::string address(std::uint16_t port) { return "127.0.0.1:" + std::to_string(port); }

// Polls `condition` every `step` until it holds or `bound` passes.
bool eventually(const std::function<bool()>& condition, milliseconds bound,
                milliseconds step = 50ms) {
  const auto deadline = Clock::now() + bound;
  while (true) {
    if (condition()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(step);
  }
}

std::string describe(const HttpReply& r) {
  if (!r.answered) return "no answer (" + r.error + ")";
  return std::to_string(r.status) + " " + trim(r.body);
}

// An error answer as docs/kv.md promises it: the status, and a JSON body
// with a human "error" and a machine "code".
::testing::AssertionResult IsError(const HttpReply& r, int status, const std::string& code) {
  if (!r.answered) return ::testing::AssertionFailure() << "no answer: " << r.error;
  if (r.status != status) {
    return ::testing::AssertionFailure()
           << "status " << r.status << ", wanted " << status << ": " << r.body;
  }
  const json body = parse(r.body);
  if (!body.is_object() || !body.contains("error") || !body["error"].is_string() ||
      !body.contains("code") || !body["code"].is_string()) {
    return ::testing::AssertionFailure() << "not a JSON error body: " << r.body;
  }
  if (body["code"] != code) {
    return ::testing::AssertionFailure()
           << "code " << body["code"] << ", wanted " << code << ": " << r.body;
  }
  return ::testing::AssertionSuccess();
}

// A 200 answer to a write; its version (the index that wrote), 0 if not.
std::uint64_t written_version(const HttpReply& r) {
  if (!r.answered || r.status != 200) return 0;
  const json body = parse(r.body);
  if (!body.is_object() || !body.contains("version") || !body["version"].is_number_unsigned()) {
    return 0;
  }
  return body["version"].get<std::uint64_t>();
}

std::uint64_t version_header(const HttpReply& r) {
  const std::string text = r.header("Keel-Version");
  return text.empty() ? 0 : std::stoull(text);
}

std::vector<std::string> http_addresses(const KvCluster& cluster) {
  std::vector<std::string> out;
  for (std::size_t i = 1; i <= cluster.size(); ++i) out.push_back(cluster.http_address(i));
  return out;
}

// The address (of `servers`) that says it is the ready leader, or "". Uses
// no KvCluster, so that a thread of its own may call it.
std::string find_ready_leader(const std::vector<std::string>& servers) {
  for (const std::string& server : servers) {
    HttpReply r = http(server, "GET", "/v1/status", "", 1000ms);
    if (!r.answered || r.status != 200) continue;
    const json status = parse(r.body);
    if (status.is_object() && status.value("state", "") == "leader" &&
        status.value("ready", false)) {
      return server;
    }
  }
  return "";
}

bool retryable(const HttpReply& r) {
  if (!r.connected) return true;  // nothing was sent
  if (!r.answered) return false;  // it may have happened: the caller must know
  if (r.status == 307) return true;
  if (r.status != 503) return false;
  const std::string code = parse(r.body).value("code", "");
  return code == "no_leader" || code == "shutting_down" || code == "not_ready" ||
         code == "transfer_in_progress" || code == "timeout";
}

// Sends a request to whichever server is the ready leader, again while the
// answer says it certainly did nothing (no leader yet, a redirect during an
// election), for at most `bound`. Any other answer is returned as it is.
HttpReply to_leader(const std::vector<std::string>& servers, const std::string& method,
                    const std::string& target, const std::string& body = "",
                    milliseconds bound = kLeaderBound) {
  const auto deadline = Clock::now() + bound;
  HttpReply last;
  last.error = "no ready leader within the bound";
  while (Clock::now() < deadline) {
    const std::string leader = find_ready_leader(servers);
    if (!leader.empty()) {
      last = http(leader, method, target, body);
      if (!retryable(last)) return last;
    }
    std::this_thread::sleep_for(50ms);
  }
  return last;
}

// A linearizable GET on `server`, again while the server cannot serve it
// yet (just restarted, no leader known). A 200 or a 404 is returned at once.
HttpReply read_when_ready(const std::string& server, const std::string& key,
                          milliseconds bound = kLeaderBound) {
  const auto deadline = Clock::now() + bound;
  HttpReply r;
  while (Clock::now() < deadline) {
    r = http(server, "GET", "/v1/kv/" + key + "?consistency=linearizable");
    if (r.answered && r.status != 503 && r.status != 307) return r;
    std::this_thread::sleep_for(50ms);
  }
  return r;
}

bool healthy(const std::string& server) {
  HttpReply r = http(server, "GET", "/healthz", "", 1000ms);
  return r.answered && r.status == 200;
}

std::size_t other_than(std::size_t leader, std::size_t servers) { return leader % servers + 1; }

// Waits until `server` follows `leader` (it may have missed the election's
// first messages when the leader is just ready).
::testing::AssertionResult knows_leader(const std::string& server, std::size_t leader) {
  std::string status;
  if (eventually(
          [&] {
            HttpReply r = http(server, "GET", "/v1/status", "", 1000ms);
            status = r.body;
            const json body = parse(r.body);
            return body.is_object() && body["leader"].is_object() &&
                   body["leader"].value("id", 0u) == leader;
          },
          kLeaderBound)) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << server << " does not follow " << leader << ": " << status;
}

// The flags of a one-server cluster (it elects itself): `data_dir` empty
// means --in-memory.
std::vector<std::string> solo_args(std::uint64_t id, std::uint64_t cluster_id,
                                   const std::string& data_dir, const std::string& raft,
                                   const std::string& http_address) {
  std::vector<std::string> argv = {keel_kv_binary(),
                                   "serve",
                                   "--id=" + std::to_string(id),
                                   "--cluster-id=" + std::to_string(cluster_id),
                                   data_dir.empty() ? "--in-memory" : "--data-dir=" + data_dir,
                                   "--raft-addr=" + raft,
                                   "--http-addr=" + http_address,
                                   "--members=" + std::to_string(id) + "=" + raft,
                                   "--heartbeat-ms=50",
                                   "--election-timeout-ms=500"};
  return argv;
}

struct CommandResult {
  Exit exit;
  std::string output;
  milliseconds took{0};
};

CommandResult run(const std::vector<std::string>& argv, milliseconds bound = kExitBound) {
  CommandResult r;
  const auto begin = Clock::now();
  r.exit = run_command(argv, &r.output, bound);
  r.took = std::chrono::duration_cast<milliseconds>(Clock::now() - begin);
  return r;
}

// Exit status 2, not a signal; the failure explains what happened instead.
::testing::AssertionResult ExitedWith2(const CommandResult& r) {
  if (r.exit.signalled) {
    return ::testing::AssertionFailure()
           << "killed by signal " << r.exit.code << " (did it start anyway?): " << r.output;
  }
  if (r.exit.code != 2) {
    return ::testing::AssertionFailure() << "exit " << r.exit.code << ", wanted 2: " << r.output;
  }
  return ::testing::AssertionSuccess();
}

// keel-kv refused its flags: exit 2, and one line that names `flag`.
::testing::AssertionResult IsUsageError(const CommandResult& r, const std::string& flag) {
  if (auto exited = ExitedWith2(r); !exited) return exited;
  const std::string text = trim(r.output);
  if (text.empty() || text.find('\n') != std::string::npos) {
    return ::testing::AssertionFailure() << "not one line: '" << r.output << "'";
  }
  if (text.find(flag) == std::string::npos) {
    return ::testing::AssertionFailure() << "does not name " << flag << ": " << text;
  }
  return ::testing::AssertionSuccess();
}

// A server that could not start: exit 2, and its last line (the error;
// the log may hold lines before it) names `what`.
::testing::AssertionResult IsStartupError(const CommandResult& r, const std::string& what) {
  if (auto exited = ExitedWith2(r); !exited) return exited;
  const std::string text = trim(r.output);
  const auto newline = text.rfind('\n');
  const std::string last = newline == std::string::npos ? text : text.substr(newline + 1);
  if (last.rfind("keel-kv serve: ", 0) != 0 || last.find(what) == std::string::npos) {
    return ::testing::AssertionFailure()
           << "the last line does not name " << what << ": " << r.output;
  }
  return ::testing::AssertionSuccess();
}

// A listening TCP socket the test holds (a port in use by someone else).
class HeldPort {
 public:
  HeldPort() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    if (bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(fd_, 4) != 0) {
      throw std::runtime_error("HeldPort: bind/listen failed");
    }
    socklen_t len = sizeof addr;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~HeldPort() { close(fd_); }
  HeldPort(const HeldPort&) = delete;
  HeldPort& operator=(const HeldPort&) = delete;
  std::uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
};

// ---------------------------------------------------------------------------
// 1. Flags

TEST(KvServer, bad_flags_exit_2_with_one_line_naming_the_flag) {
  const std::string raft = address(free_port());
  const std::string http_address = address(free_port());
  TempDir dir("kv-flags");
  const std::string bin = keel_kv_binary();
  auto base = [&](std::vector<std::string> except, std::vector<std::string> extra) {
    std::vector<std::string> argv = {bin, "serve"};
    const std::vector<std::pair<std::string, std::string>> flags = {
        {"--id", "1"},
        {"--cluster-id", "7"},
        {"--in-memory", ""},
        {"--raft-addr", raft},
        {"--http-addr", http_address},
        {"--members", "1=" + raft},
        {"--heartbeat-ms", "50"},
        {"--election-timeout-ms", "500"}};
    for (const auto& [flag, value] : flags) {
      if (std::find(except.begin(), except.end(), flag) != except.end()) continue;
      argv.push_back(value.empty() ? flag : flag + "=" + value);
    }
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
  };
  EXPECT_TRUE(IsUsageError(run(base({}, {"--no-such-flag"})), "--no-such-flag"));
  EXPECT_TRUE(IsUsageError(run(base({}, {"--no-such-flag=3"})), "--no-such-flag"));
  EXPECT_TRUE(IsUsageError(run(base({"--id"}, {"--id=0"})), "--id: "));
  EXPECT_TRUE(IsUsageError(run(base({"--id"}, {"--id=-1"})), "--id: "));
  EXPECT_TRUE(IsUsageError(run(base({"--id"}, {"--id=one"})), "--id"));
  EXPECT_TRUE(IsUsageError(run(base({"--raft-addr"}, {})), "--raft-addr"));
  EXPECT_TRUE(IsUsageError(run(base({"--raft-addr"}, {"--raft-addr=nowhere"})), "--raft-addr"));
  EXPECT_TRUE(IsUsageError(run(base({"--members"}, {"--members=1=nowhere"})), "--members"));
  EXPECT_TRUE(IsUsageError(run(base({"--members"}, {"--members=one=" + raft})), "--members"));
  EXPECT_TRUE(IsUsageError(run(base({"--members"}, {"--members=2=" + raft})), "--members"));
  EXPECT_TRUE(
      IsUsageError(run(base({}, {"--data-dir=" + (dir.path() / "data").string()})), "--data-dir"));
  EXPECT_FALSE(fs::exists(dir.path() / "data")) << "a refused server created its data directory";
  EXPECT_TRUE(IsUsageError(run(base({"--in-memory"}, {})), "--data-dir"));
  EXPECT_TRUE(IsUsageError(run(base({}, {"--log-level=loud"})), "--log-level"));
  EXPECT_TRUE(IsUsageError(run(base({}, {"--max-waiters=-1"})), "--max-waiters"));

  // The client's subcommands refuse bad flags the same way.
  EXPECT_TRUE(IsUsageError(run({bin, "put", "k", "v", "--no-such-flag"}), "--no-such-flag"));
  EXPECT_TRUE(IsUsageError(run({bin, "get", "k", "--timeout-ms=soon"}), "--timeout-ms"));
  EXPECT_TRUE(IsUsageError(run({bin, "put", "k", "v", "--cas=-1"}), "--cas"));
  EXPECT_TRUE(IsUsageError(run({bin, "get", "k", "--endpoints="}), "--endpoints"));
}

// ---------------------------------------------------------------------------
// 2. Ports in use

TEST(KvServer, a_port_in_use_exits_2_naming_the_flag_and_address) {
  const std::string raft = address(free_port());
  const std::string http_address = address(free_port());
  {
    HeldPort held;
    EXPECT_TRUE(IsStartupError(run(solo_args(1, 7, "", raft, address(held.port()))),
                               "--http-addr " + address(held.port())));
    EXPECT_TRUE(IsStartupError(run(solo_args(1, 7, "", address(held.port()), http_address)),
                               "--raft-addr " + address(held.port())));
  }

  // A refused start leaves its data directory without a cluster: started
  // again on a free --raft-addr, with --members that say so, the server
  // bootstraps with those (not the address that was in use).
  TempDir dir("kv-ports");
  const std::string data = (dir.path() / "data").string();
  {
    HeldPort held;
    EXPECT_TRUE(IsStartupError(run(solo_args(1, 7, data, address(held.port()), http_address)),
                               "--raft-addr " + address(held.port())));
  }
  {
    Process retry = Process::spawn(solo_args(1, 7, data, raft, http_address),
                                   (dir.path() / "retry.log").string());
    std::string members;
    EXPECT_TRUE(eventually(
        [&] {
          HttpReply r = http(http_address, "GET", "/v1/cluster/members");
          members = r.body;
          const std::vector<json> servers = listed_servers(r);
          return servers.size() == 1 && servers[0]["raft_address"] == raft;
        },
        kLeaderBound))
        << members << keel::kv::testing::read_file(dir.path() / "retry.log");
  }

  // Another keel-kv holds them: a second one must not share its ports.
  Process first =
      Process::spawn(solo_args(1, 7, "", raft, http_address), (dir.path() / "first.log").string());
  ASSERT_TRUE(eventually([&] { return healthy(http_address); }, kLeaderBound))
      << keel::kv::testing::read_file(dir.path() / "first.log");
  // (Server 2 of another cluster: were a port shared, some answers would
  // come from it.)
  EXPECT_TRUE(IsStartupError(run(solo_args(2, 8, "", address(free_port()), http_address)),
                             "--http-addr " + http_address));
  EXPECT_TRUE(
      IsStartupError(run(solo_args(2, 8, "", raft, address(free_port()))), "--raft-addr " + raft));
  // The first one was not disturbed, and answers every request itself.
  EXPECT_TRUE(first.running());
  for (int i = 0; i < 20; ++i) {
    HttpReply r = http(http_address, "GET", "/v1/status");
    ASSERT_TRUE(r.answered) << r.error;
    EXPECT_EQ(parse(r.body).value("id", 0u), 1u);
  }
}

// ---------------------------------------------------------------------------
// 3. Data directories

TEST(KvServer, a_data_directory_of_another_cluster_or_server_is_refused) {
  TempDir dir("kv-datadir");
  const std::string data = (dir.path() / "data").string();
  const std::string raft = address(free_port());
  const std::string http_address = address(free_port());
  {
    Process server = Process::spawn(solo_args(1, 42, data, raft, http_address),
                                    (dir.path() / "server.log").string());
    ASSERT_TRUE(
        eventually([&] { return !find_ready_leader({http_address}).empty(); }, kLeaderBound))
        << keel::kv::testing::read_file(dir.path() / "server.log");
    ASSERT_GT(written_version(http(http_address, "PUT", "/v1/kv/kept", "here")), 0u);
    server.signal(SIGTERM);
    auto exit = server.wait_for(kExitBound);
    ASSERT_TRUE(exit.has_value());
    EXPECT_FALSE(exit->signalled);
    EXPECT_EQ(exit->code, 0);
  }
  EXPECT_TRUE(IsStartupError(run(solo_args(1, 43, data, raft, http_address)), data));
  EXPECT_TRUE(IsStartupError(run(solo_args(2, 42, data, raft, http_address)), data));

  // Refusing did not damage it: its own server still starts on it, with
  // what it held.
  Process again = Process::spawn(solo_args(1, 42, data, raft, http_address),
                                 (dir.path() / "again.log").string());
  HttpReply kept = read_when_ready(http_address, "kept");
  EXPECT_EQ(kept.status, 200) << describe(kept)
                              << keel::kv::testing::read_file(dir.path() / "again.log");
  EXPECT_EQ(kept.body, "here");
  again.signal(SIGTERM);
  auto exit = again.wait_for(kExitBound);
  ASSERT_TRUE(exit.has_value());
  EXPECT_EQ(exit->code, 0);
}

TEST(KvServer, an_unusable_or_empty_data_directory_is_refused) {
  TempDir dir("kv-datadir");
  const std::string raft = address(free_port());
  const std::string http_address = address(free_port());
  // Not a directory one can create: a path under a regular file.
  const fs::path file = dir.path() / "a-file";
  std::ofstream(file) << "not a directory\n";
  const std::string under_file = (file / "data").string();
  EXPECT_TRUE(IsStartupError(run(solo_args(1, 42, under_file, raft, http_address)), under_file));

  // An empty data directory, and neither --members nor --join: nothing to
  // start from.
  const std::string empty = (dir.path() / "empty").string();
  std::vector<std::string> argv = solo_args(1, 42, empty, raft, http_address);
  std::erase_if(argv, [](const std::string& a) { return a.rfind("--members=", 0) == 0; });
  const CommandResult r = run(argv);
  EXPECT_TRUE(IsStartupError(r, "--members"));
  EXPECT_NE(r.output.find("--join"), std::string::npos) << r.output;
}

// ---------------------------------------------------------------------------
// 4. The API on a 3-server cluster

TEST(KvServer, reads_writes_redirects_cas_deletes_and_listing_over_http) {
  TempDir dir("kv-api");
  KvCluster cluster(dir.path(), {});
  cluster.start_all();
  const auto leader = cluster.wait_for_ready_leader(kLeaderBound);
  ASSERT_TRUE(leader.has_value());
  const std::string L = cluster.http_address(*leader);
  const std::string F = cluster.http_address(other_than(*leader, 3));
  ASSERT_TRUE(knows_leader(F, *leader));
  std::vector<HttpReply> errors;  // every error answer, checked for shape at the end
  auto error = [&](HttpReply r) {
    errors.push_back(r);
    return r;
  };

  // PUT, then linearizable GETs on the leader and on a follower (served
  // there: 200, not a redirect).
  HttpReply put = http(L, "PUT", "/v1/kv/alpha", "one");
  const std::uint64_t v1 = written_version(put);
  ASSERT_GT(v1, 0u) << describe(put);
  for (const std::string& server : {L, F}) {
    HttpReply get = http(server, "GET", "/v1/kv/alpha?consistency=linearizable");
    ASSERT_EQ(get.status, 200) << server << ": " << describe(get);
    EXPECT_EQ(get.body, "one");
    EXPECT_EQ(version_header(get), v1);
    EXPECT_GE(std::stoull(get.header("Keel-Index")), v1);
  }
  HttpReply plain = http(F, "GET", "/v1/kv/alpha");  // linearizable is the default
  EXPECT_EQ(plain.status, 200) << describe(plain);
  EXPECT_EQ(plain.body, "one");
  // The follower has applied v1 (its linearizable read waited for it), so
  // its stale read sees it; a lease read is the leader's.
  HttpReply stale = http(F, "GET", "/v1/kv/alpha?consistency=stale");
  EXPECT_EQ(stale.status, 200) << describe(stale);
  EXPECT_EQ(stale.body, "one");
  EXPECT_EQ(version_header(stale), v1);
  HttpReply lease = http(L, "GET", "/v1/kv/alpha?consistency=lease");
  EXPECT_EQ(lease.status, 200) << describe(lease);
  EXPECT_EQ(lease.body, "one");
  EXPECT_EQ(version_header(lease), v1);
  HttpReply follower_lease = error(http(F, "GET", "/v1/kv/alpha?consistency=lease"));
  EXPECT_TRUE(IsError(follower_lease, 307, "not_leader"));
  EXPECT_EQ(follower_lease.header("Location"), "http://" + L + "/v1/kv/alpha?consistency=lease");

  // A write sent to a follower: 307 to the leader's HTTP address, same
  // path and query; nothing written.
  HttpReply redirected = error(http(F, "PUT", "/v1/kv/beta?cas=0", "b"));
  EXPECT_TRUE(IsError(redirected, 307, "not_leader"));
  EXPECT_EQ(redirected.header("Location"), "http://" + L + "/v1/kv/beta?cas=0");
  EXPECT_EQ(parse(redirected.body).value("leader_http_address", ""), L);
  HttpReply redirected_delete = error(http(F, "DELETE", "/v1/kv/alpha"));
  EXPECT_TRUE(IsError(redirected_delete, 307, "not_leader"));
  EXPECT_EQ(redirected_delete.header("Location"), "http://" + L + "/v1/kv/alpha");
  EXPECT_TRUE(IsError(error(http(L, "GET", "/v1/kv/beta")), 404, "not_found"));
  EXPECT_EQ(http(L, "GET", "/v1/kv/alpha").body, "one");

  // cas: the right version writes; a wrong one is 409 with the version now;
  // cas=0 writes only an absent key.
  HttpReply cas_right = http(L, "PUT", "/v1/kv/alpha?cas=" + std::to_string(v1), "two");
  const std::uint64_t v2 = written_version(cas_right);
  ASSERT_GT(v2, v1) << describe(cas_right);
  HttpReply cas_wrong = error(http(L, "PUT", "/v1/kv/alpha?cas=" + std::to_string(v1), "three"));
  EXPECT_TRUE(IsError(cas_wrong, 409, "cas_failed"));
  EXPECT_EQ(parse(cas_wrong.body).value("version", 0u), v2);
  HttpReply cas_absent_on_present = error(http(L, "PUT", "/v1/kv/alpha?cas=0", "four"));
  EXPECT_TRUE(IsError(cas_absent_on_present, 409, "cas_failed"));
  EXPECT_EQ(parse(cas_absent_on_present.body).value("version", 0u), v2);
  HttpReply cas_absent = http(L, "PUT", "/v1/kv/gamma?cas=0", "g");
  const std::uint64_t vg = written_version(cas_absent);
  EXPECT_GT(vg, v2) << describe(cas_absent);
  HttpReply after_cas = http(L, "GET", "/v1/kv/alpha");
  EXPECT_EQ(after_cas.body, "two");
  EXPECT_EQ(version_header(after_cas), v2);

  // DELETE, with and without cas.
  HttpReply delete_wrong = error(http(L, "DELETE", "/v1/kv/alpha?cas=" + std::to_string(v1)));
  EXPECT_TRUE(IsError(delete_wrong, 409, "cas_failed"));
  EXPECT_EQ(parse(delete_wrong.body).value("version", 0u), v2);
  EXPECT_EQ(http(L, "GET", "/v1/kv/alpha").body, "two");
  HttpReply delete_right = http(L, "DELETE", "/v1/kv/alpha?cas=" + std::to_string(v2));
  EXPECT_GT(written_version(delete_right), v2) << describe(delete_right);
  EXPECT_TRUE(IsError(error(http(L, "GET", "/v1/kv/alpha")), 404, "not_found"));
  EXPECT_TRUE(IsError(error(http(F, "GET", "/v1/kv/alpha")), 404, "not_found"));
  HttpReply delete_plain = http(L, "DELETE", "/v1/kv/gamma");
  EXPECT_GT(written_version(delete_plain), 0u) << describe(delete_plain);
  EXPECT_TRUE(IsError(error(http(L, "GET", "/v1/kv/gamma")), 404, "not_found"));
  // Absent again: cas=0 writes it anew.
  EXPECT_GT(written_version(http(L, "PUT", "/v1/kv/alpha?cas=0", "five")), 0u);

  // Listing a prefix in pages.
  for (const char* key : {"list/c", "list/a", "list/e", "list/b", "list/d", "lisz", "lis"}) {
    ASSERT_GT(written_version(http(L, "PUT", std::string("/v1/kv/") + key, key)), 0u) << key;
  }
  std::vector<std::string> listed;
  std::string after;
  std::vector<std::size_t> page_sizes;
  for (int page = 0; page < 10; ++page) {
    HttpReply r =
        http(F, "GET", "/v1/kv?prefix=list/&limit=2" + (after.empty() ? "" : "&after=" + after));
    ASSERT_EQ(r.status, 200) << describe(r);
    const json body = parse(r.body);
    ASSERT_TRUE(body.is_object() && body["keys"].is_array()) << r.body;
    page_sizes.push_back(body["keys"].size());
    for (const json& k : body["keys"]) {
      listed.push_back(k["key"].get<std::string>());
      EXPECT_GT(k["version"].get<std::uint64_t>(), 0u);
    }
    if (body["next_after"].is_null()) break;
    after = body["next_after"].get<std::string>();
    EXPECT_EQ(after, listed.back());
  }
  EXPECT_EQ(listed, (std::vector<std::string>{"list/a", "list/b", "list/c", "list/d", "list/e"}));
  EXPECT_EQ(page_sizes, (std::vector<std::size_t>{2, 2, 1}));
  HttpReply none = http(L, "GET", "/v1/kv?prefix=nothing-here");
  EXPECT_EQ(none.status, 200);
  EXPECT_TRUE(parse(none.body)["keys"].empty()) << none.body;
  EXPECT_TRUE(parse(none.body)["next_after"].is_null()) << none.body;

  EXPECT_TRUE(IsError(error(http(L, "GET", "/v1/no-such-route")), 404, "no_route"));
  for (const HttpReply& r : errors) {
    const json body = parse(r.body);
    EXPECT_TRUE(body.is_object() && body.contains("error") && body.contains("code")) << r.body;
    EXPECT_NE(r.header("Content-Type").find("application/json"), std::string::npos) << r.body;
  }
}

// ---------------------------------------------------------------------------
// 5. Limits

TEST(KvServer, requests_past_a_limit_are_refused_and_write_nothing) {
  TempDir dir("kv-limits");
  KvClusterOptions options;
  options.extra_args = {"--max-key-bytes=16", "--max-value-bytes=100", "--max-body-bytes=1024",
                        "--max-list-limit=5"};
  KvCluster cluster(dir.path(), options);
  cluster.start_all();
  const auto leader = cluster.wait_for_ready_leader(kLeaderBound);
  ASSERT_TRUE(leader.has_value());
  const std::string L = cluster.http_address(*leader);
  auto absent = [&](const std::string& key) {
    return IsError(http(L, "GET", "/v1/kv/" + key), 404, "not_found");
  };

  // At the bounds: accepted.
  EXPECT_GT(written_version(http(L, "PUT", "/v1/kv/" + std::string(16, 'k'), "v")), 0u);
  EXPECT_GT(written_version(http(L, "PUT", "/v1/kv/full", std::string(100, 'v'))), 0u);

  // One past them: refused, and nothing written.
  const std::string long_key(17, 'k');
  EXPECT_TRUE(IsError(http(L, "PUT", "/v1/kv/" + long_key, "v"), 400, "key_too_large"));
  HttpReply listed = http(L, "GET", "/v1/kv?prefix=" + long_key);
  EXPECT_EQ(listed.status, 200);
  EXPECT_TRUE(parse(listed.body)["keys"].empty()) << listed.body;
  EXPECT_TRUE(
      IsError(http(L, "PUT", "/v1/kv/big-value", std::string(101, 'v')), 413, "value_too_large"));
  EXPECT_TRUE(absent("big-value"));
  EXPECT_TRUE(
      IsError(http(L, "PUT", "/v1/kv/big-body", std::string(2000, 'v')), 413, "body_too_large"));
  EXPECT_TRUE(absent("big-body"));
  EXPECT_TRUE(IsError(http(L, "PUT", "/v1/kv/bad-cas?cas=abc", "v"), 400, "bad_request"));
  EXPECT_TRUE(IsError(http(L, "PUT", "/v1/kv/bad-cas?cas=-1", "v"), 400, "bad_request"));
  EXPECT_TRUE(absent("bad-cas"));
  EXPECT_TRUE(IsError(http(L, "DELETE", "/v1/kv/full?cas=abc"), 400, "bad_request"));
  EXPECT_EQ(http(L, "GET", "/v1/kv/full").status, 200) << "a refused DELETE deleted";
  EXPECT_TRUE(IsError(http(L, "GET", "/v1/kv?limit=6"), 400, "bad_request"));
  EXPECT_TRUE(IsError(http(L, "GET", "/v1/kv?limit=0"), 400, "bad_request"));
  EXPECT_TRUE(IsError(http(L, "GET", "/v1/kv?limit=many"), 400, "bad_request"));
  HttpReply at_limit = http(L, "GET", "/v1/kv?limit=5");
  EXPECT_EQ(at_limit.status, 200) << describe(at_limit);
  EXPECT_TRUE(IsError(http(L, "GET", "/v1/kv/full?consistency=eventual"), 400, "bad_request"));
  EXPECT_TRUE(IsError(http(L, "GET", "/v1/kv?consistency=eventual"), 400, "bad_request"));
  EXPECT_TRUE(IsError(http(L, "GET", "/v1/kv/full?wait_index=x"), 400, "bad_request"));
  EXPECT_TRUE(IsError(http(L, "GET", "/v1/kv/full?wait_index=1&wait=soon"), 400, "bad_request"));

  // Only the two writes at the bounds are there.
  HttpReply all = http(L, "GET", "/v1/kv?limit=5");
  ASSERT_EQ(all.status, 200);
  EXPECT_EQ(parse(all.body)["keys"].size(), 2u) << all.body;
}

// ---------------------------------------------------------------------------
// 6. Blocking reads

// Blocks until a blocking read is waiting on `server`. With --max-waiters 1
// a probe that would wait is then refused with 429. The probe itself waits
// for no time (wait=0ms, a stale read): it holds the one slot only for an
// instant, and a waiter that meets it there asks again (blocking_get).
::testing::AssertionResult a_waiter_waits(const std::string& server) {
  HttpReply last;
  const bool waiting = eventually(
      [&] {
        last = http(server, "GET", "/v1/kv/probe?consistency=stale&wait_index=1000000&wait=0ms");
        return last.answered && last.status != 404;
      },
      10s, 10ms);
  if (!waiting) return ::testing::AssertionFailure() << "no waiter: " << describe(last);
  return IsError(last, 429, "too_many_waiters");
}

// A blocking GET (see a_waiter_waits), and when it answered.
std::pair<HttpReply, Clock::time_point> blocking_get(const std::string& server,
                                                     const std::string& target) {
  HttpReply r;
  const auto deadline = Clock::now() + 10s;
  do {
    r = http(server, "GET", target, "", 20s);
  } while (r.answered && r.status == 429 && Clock::now() < deadline);
  return {r, Clock::now()};
}

TEST(KvServer, a_blocking_read_returns_on_a_change_at_its_bound_or_at_shutdown) {
  TempDir dir("kv-wait");
  KvClusterOptions options;
  options.extra_args = {"--max-waiters=1"};
  KvCluster cluster(dir.path(), options);
  cluster.start_all();
  const auto leader = cluster.wait_for_ready_leader(kLeaderBound);
  ASSERT_TRUE(leader.has_value());
  const std::string L = cluster.http_address(*leader);
  const std::uint64_t v1 = written_version(http(L, "PUT", "/v1/kv/watched", "old"));
  ASSERT_GT(v1, 0u);

  // A change releases the waiter at once, with the new value.
  const auto begin = Clock::now();
  auto waiter = std::async(std::launch::async, [&] {
    return blocking_get(L, "/v1/kv/watched?wait_index=" + std::to_string(v1) + "&wait=10s");
  });
  ASSERT_TRUE(a_waiter_waits(L));
  const std::uint64_t v2 = written_version(http(L, "PUT", "/v1/kv/watched", "new"));
  ASSERT_GT(v2, v1);
  const auto written = Clock::now();
  auto [changed, returned] = waiter.get();
  EXPECT_EQ(changed.status, 200) << describe(changed);
  EXPECT_EQ(changed.body, "new");
  EXPECT_EQ(version_header(changed), v2);
  EXPECT_LT(returned - written, 2s) << "the waiter did not return as the key changed";
  EXPECT_LT(returned - begin, 9s);

  // Nothing changes: it answers at its bound, with the value as it is.
  auto bounded_begin = Clock::now();
  HttpReply bounded =
      http(L, "GET", "/v1/kv/watched?wait_index=" + std::to_string(v2) + "&wait=300ms");
  auto waited = Clock::now() - bounded_begin;
  EXPECT_EQ(bounded.status, 200) << describe(bounded);
  EXPECT_EQ(bounded.body, "new");
  EXPECT_EQ(version_header(bounded), v2);
  EXPECT_GE(waited, 300ms);
  EXPECT_LT(waited, 5s);
  // An absent key waits the same way, then is not found.
  bounded_begin = Clock::now();
  EXPECT_TRUE(IsError(http(L, "GET", "/v1/kv/never?wait_index=0&wait=300ms"), 404, "not_found"));
  waited = Clock::now() - bounded_begin;
  EXPECT_GE(waited, 300ms);
  EXPECT_LT(waited, 5s);
  // A key already past wait_index answers at once.
  const auto past_begin = Clock::now();
  HttpReply past = http(L, "GET", "/v1/kv/watched?wait_index=" + std::to_string(v1) + "&wait=10s");
  EXPECT_EQ(past.body, "new");
  EXPECT_LT(Clock::now() - past_begin, 5s);

  // A waiter on a follower is released by SIGTERM: answered, and the
  // server exits 0.
  const std::size_t follower = other_than(*leader, 3);
  const std::string F = cluster.http_address(follower);
  ASSERT_TRUE(knows_leader(F, *leader));
  auto follower_waiter = std::async(std::launch::async, [&] {
    return blocking_get(F, "/v1/kv/watched?wait_index=" + std::to_string(v2) + "&wait=10s");
  });
  ASSERT_TRUE(a_waiter_waits(F));
  const auto signalled = Clock::now();
  cluster.signal(follower, SIGTERM);
  auto [released, answered_at] = follower_waiter.get();
  EXPECT_TRUE(released.answered) << released.error;
  EXPECT_LT(answered_at - signalled, kPromptExit);
  if (released.status == 200) {
    EXPECT_EQ(released.body, "new");
  } else {
    EXPECT_TRUE(IsError(released, 503, "shutting_down"));
  }
  auto exit = cluster.stop(follower, kExitBound);
  ASSERT_TRUE(exit.has_value());
  EXPECT_FALSE(exit->signalled);
  EXPECT_EQ(exit->code, 0);
}

// ---------------------------------------------------------------------------
// 7. SIGTERM, kill -9 and restarts

TEST(KvServer, sigterm_stops_a_follower_a_leader_and_a_lone_server_with_exit_0) {
  TempDir dir("kv-sigterm");
  KvCluster cluster(dir.path(), {});
  cluster.start_all();
  const auto leader = cluster.wait_for_ready_leader(kLeaderBound);
  ASSERT_TRUE(leader.has_value());
  ASSERT_GT(written_version(http(cluster.http_address(*leader), "PUT", "/v1/kv/k", "v")), 0u);
  const std::size_t follower = other_than(*leader, 3);
  const std::size_t last = 6 - follower - *leader;  // servers 1, 2 and 3
  for (std::size_t i : {follower, *leader, last}) {
    const auto begin = Clock::now();
    auto exit = cluster.stop(i, kExitBound);
    ASSERT_TRUE(exit.has_value()) << "server " << i << " did not stop";
    EXPECT_FALSE(exit->signalled) << "server " << i;
    EXPECT_EQ(exit->code, 0) << "server " << i;
    EXPECT_LT(Clock::now() - begin, kPromptExit) << "server " << i;
  }
}

struct Acknowledged {
  std::string key;
  std::string value;
  std::uint64_t version = 0;
};

// Every acknowledged write reads back (linearizable) from every server.
void expect_all_readable(KvCluster& cluster, const std::vector<Acknowledged>& writes) {
  for (std::size_t i = 1; i <= cluster.size(); ++i) {
    for (const Acknowledged& w : writes) {
      HttpReply r = read_when_ready(cluster.http_address(i), w.key);
      EXPECT_EQ(r.status, 200) << "server " << i << ", " << w.key << ": " << describe(r);
      EXPECT_EQ(r.body, w.value) << "server " << i << ", " << w.key;
      EXPECT_EQ(version_header(r), w.version) << "server " << i << ", " << w.key;
    }
  }
}

TEST(KvServer, acknowledged_writes_survive_kill_9_of_the_leader_and_a_whole_cluster_restart) {
  TempDir dir("kv-restart");
  KvCluster cluster(dir.path(), {});
  cluster.start_all();
  const auto leader = cluster.wait_for_ready_leader(kLeaderBound);
  ASSERT_TRUE(leader.has_value());

  // A writer writes fresh keys to whoever leads; only 200s count.
  const std::vector<std::string> servers = http_addresses(cluster);
  std::mutex mutex;
  std::vector<Acknowledged> acknowledged;
  std::atomic<std::size_t> acknowledged_count{0};
  std::atomic<bool> writer_stop{false};
  std::thread writer([&] {
    const auto deadline = Clock::now() + 60s;
    for (int attempt = 0; !writer_stop && Clock::now() < deadline; ++attempt) {
      const std::string key = "ack-" + std::to_string(attempt);
      const std::string value = "value-" + std::to_string(attempt);
      HttpReply r = to_leader(servers, "PUT", "/v1/kv/" + key, value, 10s);
      if (const std::uint64_t version = written_version(r)) {
        std::lock_guard lock(mutex);
        acknowledged.push_back({key, value, version});
        ++acknowledged_count;
      }
    }
  });
  const bool started = eventually([&] { return acknowledged_count >= 4; }, 20s, 5ms);
  cluster.kill(*leader);  // under the writer's load
  const std::size_t at_kill = acknowledged_count;
  const bool continued = eventually([&] { return acknowledged_count >= at_kill + 4; }, 40s);
  writer_stop = true;
  writer.join();
  ASSERT_TRUE(started);
  ASSERT_TRUE(continued) << "no writes acknowledged after the leader died";

  cluster.start(*leader);
  expect_all_readable(cluster, acknowledged);

  // The whole cluster at once: every server exits 0, then all start again.
  for (std::size_t i = 1; i <= 3; ++i) cluster.signal(i, SIGTERM);
  for (std::size_t i = 1; i <= 3; ++i) {
    auto exit = cluster.stop(i, kExitBound);
    ASSERT_TRUE(exit.has_value());
    EXPECT_EQ(exit->code, 0) << "server " << i;
  }
  cluster.start_all();
  ASSERT_TRUE(cluster.wait_for_ready_leader(kLeaderBound).has_value());
  expect_all_readable(cluster, acknowledged);
}

// ---------------------------------------------------------------------------
// 8. No leader

TEST(KvServer, without_a_quorum_writes_fail_and_readyz_says_so) {
  TempDir dir("kv-noleader");
  KvClusterOptions options;
  options.extra_args = {"--request-timeout-ms=2000"};  // how long a read waits for a leader
  KvCluster cluster(dir.path(), options);
  cluster.start(1);  // 1 of 3: never a leader
  const std::string S = cluster.http_address(1);
  ASSERT_TRUE(eventually([&] { return healthy(S); }, kLeaderBound));
  HttpReply put = http(S, "PUT", "/v1/kv/k", "v", 15s);
  ASSERT_TRUE(put.answered) << put.error;
  EXPECT_NE(put.status, 200);
  if (put.status == 503) {
    const std::string code = parse(put.body).value("code", "");
    EXPECT_TRUE(code == "no_leader" || code == "timeout") << put.body;
  } else {
    EXPECT_EQ(put.status, 504) << describe(put);
  }
  HttpReply get = http(S, "GET", "/v1/kv/k", "", 15s);
  EXPECT_TRUE(get.answered && (get.status == 503 || get.status == 504)) << describe(get);
  EXPECT_TRUE(IsError(http(S, "GET", "/readyz"), 503, "no_leader"));
  EXPECT_EQ(http(S, "GET", "/healthz").status, 200);

  // The client gives up: never a success, never a version.
  const CommandResult client =
      run({keel_kv_binary(), "put", "k", "v", "--endpoints=" + S, "--timeout-ms=1500"});
  EXPECT_FALSE(client.exit.signalled);
  EXPECT_NE(client.exit.code, 0) << client.output;
  EXPECT_EQ(client.output.find("\"version\""), std::string::npos) << client.output;
  EXPECT_LT(client.took, 10s);
  // Still nothing there once a quorum exists.
  cluster.start(2);
  HttpReply later = to_leader(http_addresses(cluster), "GET", "/v1/kv/k");
  EXPECT_TRUE(IsError(later, 404, "not_found")) << "a failed write took effect";
}

// ---------------------------------------------------------------------------
// 9. Membership

TEST(KvServer, a_server_joins_serves_is_removed_and_leadership_moves) {
  TempDir dir("kv-members");
  KvCluster cluster(dir.path(), {});
  cluster.start_all();
  const auto leader = cluster.wait_for_ready_leader(kLeaderBound);
  ASSERT_TRUE(leader.has_value());
  const std::vector<std::string> servers = http_addresses(cluster);
  const std::uint64_t before =
      written_version(to_leader(servers, "PUT", "/v1/kv/before-join", "early"));
  ASSERT_GT(before, 0u);

  // A fourth server joins through the leader's HTTP address.
  const std::string raft4 = address(free_port());
  const std::string http4 = address(free_port());
  const fs::path log4 = dir.path() / "server4.log";
  Process fourth =
      Process::spawn({keel_kv_binary(), "serve", "--id=4", "--cluster-id=42",
                      "--data-dir=" + (dir.path() / "server4").string(), "--raft-addr=" + raft4,
                      "--http-addr=" + http4, "--join=" + cluster.http_address(*leader),
                      "--heartbeat-ms=50", "--election-timeout-ms=500"},
                     log4.string());
  std::string members_seen;
  auto lists_four = [&](const std::string& as) {
    HttpReply r = http(cluster.http_address(*leader), "GET", "/v1/cluster/members");
    members_seen = r.body;
    if (r.status != 200) return false;
    for (const json& s : listed_servers(r)) {
      if (s["id"] == 4 && s["suffrage"] == as && s["raft_address"] == raft4) return true;
    }
    return false;
  };
  ASSERT_TRUE(eventually([&] { return lists_four("voter"); }, kLeaderBound))
      << members_seen << "\n"
      << keel::kv::testing::read_file(log4);
  HttpReply early = read_when_ready(http4, "before-join");
  EXPECT_EQ(early.status, 200) << describe(early);
  EXPECT_EQ(early.body, "early");
  EXPECT_EQ(version_header(early), before);
  EXPECT_TRUE(eventually(
      [&] {
        HttpReply r = http(cluster.http_address(*leader), "GET", "/v1/cluster/members");
        for (const json& s : listed_servers(r)) {
          if (s["id"] == 4) return s["http_address"] == http4;
        }
        return false;
      },
      10s))
      << "the joined server's HTTP address was not recorded";

  // Removed: gone from the configuration, and the process ends itself.
  HttpReply removed = to_leader(servers, "DELETE", "/v1/cluster/members/4");
  ASSERT_EQ(removed.status, 200) << describe(removed);
  EXPECT_GT(parse(removed.body).value("index", 0u), before);
  HttpReply members = to_leader(servers, "GET", "/v1/cluster/members");
  ASSERT_EQ(members.status, 200) << describe(members);
  EXPECT_EQ(listed_servers(members).size(), 3u) << members.body;
  for (const json& s : listed_servers(members)) EXPECT_NE(s["id"], 4) << members.body;
  auto exit = fourth.wait_for(20s);
  ASSERT_TRUE(exit.has_value()) << "a removed server kept running";
  EXPECT_FALSE(exit->signalled);
  EXPECT_EQ(exit->code, 0) << keel::kv::testing::read_file(log4);

  // Leadership moves to another server, which becomes a ready leader.
  const std::string old_leader = find_ready_leader(servers);
  ASSERT_FALSE(old_leader.empty());
  HttpReply transfer = http(old_leader, "POST", "/v1/cluster/transfer-leadership", "{}");
  ASSERT_EQ(transfer.status, 200) << describe(transfer);
  const json moved = parse(transfer.body);
  EXPECT_NE(moved["leader"]["http_address"], old_leader) << transfer.body;
  std::string new_leader;
  EXPECT_TRUE(eventually(
      [&] {
        new_leader = find_ready_leader(servers);
        return !new_leader.empty() && new_leader != old_leader;
      },
      kLeaderBound));
  EXPECT_EQ(moved["leader"]["http_address"], new_leader);
  // The cluster of three still takes writes.
  EXPECT_GT(written_version(to_leader(servers, "PUT", "/v1/kv/after-transfer", "x")), before);

  // A snapshot on demand answers with the index it covers.
  HttpReply snapshot = http(new_leader, "POST", "/v1/snapshot", "");
  ASSERT_EQ(snapshot.status, 200) << describe(snapshot);
  EXPECT_GE(parse(snapshot.body).value("index", 0u), before);
  HttpReply status = http(new_leader, "GET", "/v1/status");
  EXPECT_GE(parse(status.body).value("snapshot_index", 0u), before);
}

// ---------------------------------------------------------------------------
// 10. Metrics and status

TEST(KvServer, metrics_and_status_report_the_raft_and_the_requests) {
  TempDir dir("kv-metrics");
  KvClusterOptions options;
  options.servers = 1;
  KvCluster cluster(dir.path(), options);
  cluster.start_all();
  ASSERT_TRUE(cluster.wait_for_ready_leader(kLeaderBound).has_value());
  const std::string S = cluster.http_address(1);
  ASSERT_GT(written_version(http(S, "PUT", "/v1/kv/k", "v")), 0u);
  ASSERT_EQ(http(S, "GET", "/v1/kv/k").status, 200);

  HttpReply metrics = http(S, "GET", "/metrics");
  ASSERT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.header("Content-Type").find("text/plain"), std::string::npos);
  const std::string& text = metrics.body;
  for (const char* line : {"# TYPE keel_term gauge\n", "# TYPE keel_commit_index gauge\n",
                           "# TYPE keel_kv_requests_total counter\n"}) {
    EXPECT_NE(text.find(line), std::string::npos) << line << " missing in\n" << text;
  }
  EXPECT_NE(text.find("\nkeel_kv_requests_total{route=\"put\",status=\"200\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("\nkeel_kv_requests_total{route=\"get\",status=\"200\"} 1\n"),
            std::string::npos)
      << text;
  // Every sample has a # TYPE line for its family above it.
  std::istringstream lines(text);
  std::set<std::string> typed;
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("# TYPE ", 0) == 0) {
      typed.insert(line.substr(7, line.find(' ', 7) - 7));
      continue;
    }
    std::string name = line.substr(0, line.find_first_of("{ "));
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      if (!typed.count(name) && name.size() > std::strlen(suffix) && name.ends_with(suffix)) {
        name.resize(name.size() - std::strlen(suffix));
      }
    }
    EXPECT_TRUE(typed.count(name)) << "no # TYPE for " << line;
  }

  HttpReply status_reply = http(S, "GET", "/v1/status");
  ASSERT_EQ(status_reply.status, 200);
  const json status = parse(status_reply.body);
  ASSERT_TRUE(status.is_object()) << status_reply.body;
  EXPECT_EQ(status.value("id", 0u), 1u);
  EXPECT_EQ(status.value("state", ""), "leader");
  EXPECT_GE(status.value("term", 0u), 1u);
  ASSERT_TRUE(status.contains("leader") && status["leader"].is_object()) << status_reply.body;
  EXPECT_EQ(status["leader"].value("id", 0u), 1u);
  EXPECT_EQ(status["leader"].value("http_address", ""), S);
  for (const char* field : {"commit_index", "applied_index", "last_index", "snapshot_index"}) {
    EXPECT_TRUE(status.contains(field) && status[field].is_number_unsigned()) << field;
  }
  EXPECT_GE(status.value("commit_index", 0u), 2u);
  EXPECT_GE(status.value("last_index", 0u), status.value("commit_index", 0u));
  EXPECT_GE(status.value("commit_index", 0u), status.value("applied_index", 0u));
  ASSERT_TRUE(status.contains("configuration") && status["configuration"].is_object());
  const json& servers = status["configuration"]["servers"];
  ASSERT_EQ(servers.size(), 1u) << status_reply.body;
  EXPECT_EQ(servers[0]["id"], 1);
  EXPECT_EQ(servers[0]["raft_address"], cluster.raft_address(1));
  EXPECT_EQ(servers[0]["suffrage"], "voter");
}

// The cluster page (GET /) and what it reads: the page itself, with a
// policy that lets it load nothing from elsewhere; /v1/status with the
// leader's view of each member's lag; and the routes the page calls on
// other members readable from any origin, while keys stay unreadable to
// other origins' scripts. (The page in a browser: cluster_page_test.cc.)
TEST(KvServer, serves_the_cluster_page_and_lets_it_read_every_members_status) {
  TempDir dir("kv-page-http");
  KvCluster cluster(dir.path(), KvClusterOptions{});
  cluster.start_all();
  const std::optional<std::size_t> leader = cluster.wait_for_ready_leader(kLeaderBound);
  ASSERT_TRUE(leader.has_value());
  const std::size_t follower = *leader == 1 ? 2 : 1;
  const std::string L = cluster.http_address(*leader);
  const std::string F = cluster.http_address(follower);

  HttpReply page = http(F, "GET", "/");
  ASSERT_EQ(page.status, 200) << describe(page);
  EXPECT_EQ(page.header("Content-Type"), "text/html; charset=utf-8");
  EXPECT_NE(page.header("Content-Security-Policy").find("default-src 'none'"), std::string::npos)
      << page.header("Content-Security-Policy");
  EXPECT_NE(page.body.find("<title>keel-kv cluster</title>"), std::string::npos);
  for (const char* external : {"src=", "href=", "@import", "url("}) {
    EXPECT_EQ(page.body.find(external), std::string::npos) << external << " in the page";
  }

  // The leader reports every other member's lag once its first heartbeat
  // interval has passed; a follower reports none.
  json status;
  EXPECT_TRUE(eventually(
      [&] {
        status = parse(http(L, "GET", "/v1/status").body);
        if (!status.is_object() || !status["replication"].is_array()) return false;
        std::set<std::uint64_t> ids;
        for (const json& r : status["replication"]) {
          if (r["lag_entries"].is_number_unsigned()) ids.insert(r["id"].get<std::uint64_t>());
        }
        return ids.size() == 2 && !ids.count(*leader);
      },
      kLeaderBound))
      << status.dump();
  const json follower_status = parse(http(F, "GET", "/v1/status").body);
  ASSERT_TRUE(follower_status.is_object());
  EXPECT_EQ(follower_status["replication"], json::array());

  for (const auto& [address, method, target] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {F, "GET", "/v1/status"}, {F, "POST", "/v1/snapshot"}}) {
    HttpReply r = http(address, method, target);
    EXPECT_EQ(r.status, 200) << method << " " << target << ": " << describe(r);
    EXPECT_EQ(r.header("Access-Control-Allow-Origin"), "*") << method << " " << target;
  }
  // A transfer sent to a follower: the redirect to the leader is readable
  // too, so that a browser follows it.
  HttpReply redirect = http(F, "POST", "/v1/cluster/transfer-leadership", "{}");
  EXPECT_EQ(redirect.status, 307) << describe(redirect);
  EXPECT_EQ(redirect.header("Access-Control-Allow-Origin"), "*");
  HttpReply put = http(L, "PUT", "/v1/kv/secret", "value");
  ASSERT_EQ(put.status, 200) << describe(put);
  EXPECT_EQ(put.header("Access-Control-Allow-Origin"), "");
  HttpReply get = http(L, "GET", "/v1/kv/secret");
  ASSERT_EQ(get.status, 200) << describe(get);
  EXPECT_EQ(get.header("Access-Control-Allow-Origin"), "");
}

// ---------------------------------------------------------------------------
// 11. The client binary

TEST(KvServer, the_client_writes_reads_follows_redirects_and_gives_up_in_time) {
  TempDir dir("kv-client");
  KvCluster cluster(dir.path(), {});
  cluster.start_all();
  const auto leader = cluster.wait_for_ready_leader(kLeaderBound);
  ASSERT_TRUE(leader.has_value());
  const std::string bin = keel_kv_binary();
  const std::string endpoints = "--endpoints=" + cluster.endpoints();

  const CommandResult put = run({bin, "put", "greeting", "hello", endpoints});
  ASSERT_EQ(put.exit.code, 0) << put.output;
  const json printed = parse(put.output);
  ASSERT_TRUE(printed.is_object() && printed["version"].is_number_unsigned()) << put.output;
  const std::uint64_t version = printed["version"].get<std::uint64_t>();
  EXPECT_GT(version, 0u);
  HttpReply check = http(cluster.http_address(*leader), "GET", "/v1/kv/greeting");
  EXPECT_EQ(check.body, "hello");
  EXPECT_EQ(version_header(check), version);

  const CommandResult get = run({bin, "get", "greeting", endpoints});
  EXPECT_EQ(get.exit.code, 0) << get.output;
  EXPECT_NE(get.output.find("hello"), std::string::npos) << get.output;

  const CommandResult missing = run({bin, "get", "no-such-key", endpoints});
  EXPECT_FALSE(missing.exit.signalled);
  EXPECT_EQ(missing.exit.code, 1) << missing.output;
  EXPECT_NE(missing.output.find("not_found"), std::string::npos) << missing.output;

  const CommandResult cas_failed = run({bin, "put", "greeting", "bye", "--cas=0", endpoints});
  EXPECT_EQ(cas_failed.exit.code, 1) << cas_failed.output;
  EXPECT_NE(cas_failed.output.find("cas_failed"), std::string::npos) << cas_failed.output;

  // Only a follower given: the client follows its redirect to the leader.
  const std::string F = cluster.http_address(other_than(*leader, 3));
  const CommandResult via_follower = run({bin, "put", "redirected", "yes", "--endpoints=" + F});
  EXPECT_EQ(via_follower.exit.code, 0) << via_follower.output;
  HttpReply redirected = http(cluster.http_address(*leader), "GET", "/v1/kv/redirected");
  EXPECT_EQ(redirected.body, "yes");
  EXPECT_EQ(version_header(redirected), parse(via_follower.output).value("version", 0u));

  // Nobody listens: exit 1 (unreachable) within about the timeout.
  const std::string nobody = address(free_port()) + "," + address(free_port());
  const CommandResult unreachable =
      run({bin, "put", "k", "v", "--endpoints=" + nobody, "--timeout-ms=1000"});
  EXPECT_FALSE(unreachable.exit.signalled);
  EXPECT_EQ(unreachable.exit.code, 1) << unreachable.output;
  EXPECT_NE(unreachable.output.find("unreachable"), std::string::npos) << unreachable.output;
  EXPECT_GE(unreachable.took, 900ms);
  EXPECT_LT(unreachable.took, 4s);
  const CommandResult unreachable_get =
      run({bin, "get", "k", "--endpoints=" + nobody, "--timeout-ms=1000"});
  EXPECT_EQ(unreachable_get.exit.code, 1) << unreachable_get.output;
  EXPECT_LT(unreachable_get.took, 4s);

  // A blocking get waits its --wait even past --timeout-ms, and answers
  // with the value as it is.
  const CommandResult blocking =
      run({bin, "get", "greeting", "--wait-index=" + std::to_string(version), "--wait=2s",
           "--timeout-ms=500", endpoints});
  EXPECT_EQ(blocking.exit.code, 0) << blocking.output;
  EXPECT_NE(blocking.output.find("hello"), std::string::npos) << blocking.output;
  EXPECT_GE(blocking.took, 1900ms);
  const CommandResult bad_wait = run({bin, "get", "greeting", "--wait-index=1", "--wait=soon"});
  EXPECT_TRUE(IsUsageError(bad_wait, "--wait"));
}

// add_voter adds a learner, then promotes it once it has caught up: a
// server that never catches up (nobody listens at its address) stays a
// learner when the join timeout passes, and the answer says the change was
// only partly made (504 outcome_unknown), never that nothing happened.
TEST(KvServer, an_add_that_times_out_halfway_is_reported_as_unknown) {
  TempDir dir("kv-partial-add");
  KvClusterOptions options;
  options.extra_args = {"--join-timeout-ms=1500"};
  KvCluster cluster(dir.path(), options);
  cluster.start_all();
  const auto leader = cluster.wait_for_ready_leader(kLeaderBound);
  ASSERT_TRUE(leader.has_value());
  const std::string nowhere = address(free_port());
  // Through the client, with --endpoints on the subcommand.
  const CommandResult add = run({keel_kv_binary(), "members", "add", "9", nowhere,
                                 "--endpoints=" + cluster.endpoints(), "--timeout-ms=20000"});
  EXPECT_FALSE(add.exit.signalled);
  EXPECT_EQ(add.exit.code, 3) << add.output;
  EXPECT_NE(add.output.find("outcome_unknown"), std::string::npos) << add.output;
  HttpReply members = http(cluster.http_address(*leader), "GET", "/v1/cluster/members");
  ASSERT_EQ(members.status, 200) << describe(members);
  bool learner = false;
  for (const json& server : listed_servers(members)) {
    if (server.value("id", 0u) == 9u) learner = server.value("suffrage", "") == "learner";
  }
  EXPECT_TRUE(learner) << members.body;
  const CommandResult remove =
      run({keel_kv_binary(), "members", "remove", "9", "--endpoints=" + cluster.endpoints()});
  EXPECT_EQ(remove.exit.code, 0) << remove.output;
}

}  // namespace
