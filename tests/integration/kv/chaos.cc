// tests/integration/kv/chaos.cc — keel-kv-chaos: a keel-kv cluster of real
// processes, attacked while clients work, then judged by the linearizability
// checker (docs/kv.md, "Chaos tests").
//
//   keel-kv-chaos --scenario kill-leader [--servers 3] [--seconds 30] [--clients 5]
//                 [--out DIR] [--seed N]
//
// Scenarios (the nemesis): kill-leader (kill -9 the leader, restart it),
// pause-leader (SIGSTOP past the election timeout, SIGCONT), partition
// (iptables: isolate the leader, random halves, one-way), isolate-leader
// (only the first of those), drop (iptables'
// statistic match drops a share of the packets between servers),
// restart-all (kill -9 every server at once, start them again: reads after
// the restart must see every acknowledged write), and mixed (all of them).
//
// It runs as root inside a network namespace of its own (unshare), with
// `lo` up: server i listens on 127.0.0.(10+i) and sends from that address,
// so the iptables rules, which match server addresses, touch nothing outside
// the namespace, and everything vanishes with it. Clients talk HTTP to the
// servers, follow redirects, and record every call as one JSON line
// (docs/kv.md, "History format") with its call and return times and its
// outcome: ok, failed (certainly not done) or unknown. After the run the
// nemesis heals everything; a ready leader must appear within a bound;
// every client reads every key once more; and `keel-sim check-history`
// must find the whole history linearizable.
//
// With --expect-violation true (the canary build's kv_chaos_canary test,
// whose servers serve every read stale: --server-arg --canary-stale-reads),
// the run passes only if the checker finds the history not linearizable.
//
// Exit status: 0 passed; 1 failed (the reason, the history and the server
// logs stay in --out); 2 bad flags; 77 skipped (not root, or no network
// namespaces: ctest reports SKIP).
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "kv/client.h"
#include "kv_harness.h"

namespace {

using namespace keel::kv::testing;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr int kSkip = 77;

struct Options {
  std::string scenario = "mixed";
  std::size_t servers = 3;
  std::size_t clients = 5;
  std::size_t keys = 6;
  std::uint64_t seconds = 30;
  std::uint64_t seed = 1;
  std::string out = "kv-chaos";
  // How long after healing a ready leader must appear.
  std::uint64_t heal_seconds = 30;
  // The least number of acknowledged operations for the run to count (a
  // run where nothing worked proves nothing).
  std::uint64_t min_ok = 100;
  // Canary runs: the servers are broken on purpose (--server-arg), and the
  // run passes only if the checker finds the history not linearizable.
  bool expect_violation = false;
  std::vector<std::string> server_args;
};

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

void say(const std::string& line) {
  static std::mutex mutex;
  std::lock_guard lock(mutex);
  std::cout << "keel-kv-chaos: " << line << std::endl;
}

// --- the history ------------------------------------------------------------

class HistoryFile {
 public:
  explicit HistoryFile(const std::string& path) : out_(path) {}
  void record(const json& line) {
    std::lock_guard lock(mutex_);
    out_ << line.dump() << "\n";
    const std::string outcome = line["outcome"];
    ++counts_[outcome];
  }
  std::map<std::string, std::uint64_t> counts() {
    std::lock_guard lock(mutex_);
    return counts_;
  }
  void close() {
    std::lock_guard lock(mutex_);
    out_.close();
  }

 private:
  std::mutex mutex_;
  std::ofstream out_;
  std::map<std::string, std::uint64_t> counts_;
};

// --- one client call --------------------------------------------------------

struct CallResult {
  std::string outcome;  // ok, failed, unknown
  int status = 0;
  json body;
  std::string raw_body;
  std::string version_header;
  std::string error;
};

// Sends one request to `endpoint`, following redirects (a redirect means
// the first server did nothing). Decides the outcome as docs/kv.md says.
CallResult call(std::string endpoint, const std::string& method, std::string target,
                const std::string& body, bool is_read) {
  CallResult result;
  bool sent_anywhere = false;
  for (int hop = 0; hop < 4; ++hop) {
    HttpReply r = http(endpoint, method, target, body, milliseconds(4000));
    if (!r.answered) {
      sent_anywhere = sent_anywhere || r.connected;
      result.error = endpoint + ": " + r.error;
      result.status = 0;
      // Never sent: certainly not done. Sent without an answer: a read
      // constrains nothing; a write may or may not have happened.
      result.outcome = r.connected ? "unknown" : (sent_anywhere ? "unknown" : "failed");
      return result;
    }
    result.status = r.status;
    result.raw_body = r.body;
    result.version_header = r.header("Keel-Version");
    if (r.status >= 300) {
      result.body = json::parse(r.body, nullptr, false);
      if (result.body.is_object()) result.error = result.body.value("code", "");
    } else if (!is_read) {
      result.body = json::parse(r.body, nullptr, false);
    }
    if (r.status == 307) {
      std::tie(endpoint, target) = keel::kv::split_location(r.header("Location"));
      continue;
    }
    if (r.status == 200) {
      result.outcome = "ok";
    } else if (r.status == 404 && is_read && result.error == "not_found") {
      result.outcome = "ok";
    } else if (r.status == 409 && result.error == "cas_failed") {
      result.outcome = "ok";
    } else if (r.status == 503 || r.status == 429 || r.status == 400) {
      // Refused before anything entered the log (docs/kv.md, "Errors").
      result.outcome = "failed";
    } else {
      result.outcome = "unknown";  // 504 outcome_unknown, or anything unexpected
    }
    return result;
  }
  result.outcome = "failed";
  result.error = "too many redirects";
  return result;
}

// --- clients ------------------------------------------------------------------

class Client {
 public:
  Client(std::uint64_t id, const Options& options, KvCluster& cluster, HistoryFile& history,
         std::uint64_t seed)
      : id_(id), options_(options), cluster_(cluster), history_(history), random_(seed) {}

  void run(const std::atomic<bool>& stop) {
    while (!stop) one_operation();
  }

  // A linearizable read of every key (after healing), each tried until
  // `deadline`.
  std::uint64_t read_all_keys(Clock::time_point deadline) {
    std::uint64_t ok = 0;
    for (std::size_t k = 0; k < options_.keys; ++k) {
      while (Clock::now() < deadline) {
        if (get(key(k), "linearizable") == "ok") {
          ++ok;
          break;
        }
        std::this_thread::sleep_for(milliseconds(200));
      }
    }
    return ok;
  }

  std::uint64_t errors() const { return unexpected_; }

 private:
  std::string key(std::size_t k) const { return "k" + std::to_string(k); }
  std::string endpoint() { return cluster_.http_address(1 + random_() % cluster_.size()); }

  void one_operation() {
    const std::size_t k = random_() % options_.keys;
    const int dice = static_cast<int>(random_() % 100);
    if (dice < 40) {
      put(key(k));
    } else if (dice < 75) {
      get(key(k), dice < 62 ? "linearizable" : dice < 70 ? "lease" : "stale");
    } else if (dice < 93) {
      cas(key(k));
    } else {
      del(key(k));
    }
  }

  json base(const std::string& op, const std::string& key, std::int64_t call_time) const {
    return {{"client", id_}, {"op", op}, {"key", key}, {"call", call_time}};
  }

  void finish(json line, const CallResult& r) {
    line["return"] = now_ns();
    line["outcome"] = r.outcome;
    if (!r.error.empty()) line["error"] = r.error;
    if (r.status != 0) line["status"] = r.status;
    if (r.outcome == "unknown" && r.status != 0 && r.status != 504) ++unexpected_;
    history_.record(line);
  }

  std::string next_value() { return "c" + std::to_string(id_) + "-" + std::to_string(++sequence_); }

  void put(const std::string& key) {
    const std::string value = next_value();
    json line = base("put", key, now_ns());
    line["value"] = value;
    CallResult r = call(endpoint(), "PUT", "/v1/kv/" + key, value, false);
    if (r.outcome == "ok" && r.body.is_object()) {
      line["version"] = r.body.value("version", 0);
      seen_[key] = {value, r.body.value("version", std::uint64_t{0})};
    }
    finish(std::move(line), r);
  }

  std::string get(const std::string& key, const std::string& consistency) {
    json line = base("get", key, now_ns());
    line["consistency"] = consistency;
    CallResult r =
        call(endpoint(), "GET", "/v1/kv/" + key + "?consistency=" + consistency, "", true);
    if (r.outcome == "ok") {
      line["found"] = r.status == 200;
      if (r.status == 200) {
        line["value"] = r.raw_body;
        std::uint64_t version = 0;
        std::from_chars(r.version_header.data(), r.version_header.data() + r.version_header.size(),
                        version);
        line["version"] = version;
        if (consistency != "stale") seen_[key] = {r.raw_body, version};
      } else if (consistency != "stale") {
        seen_.erase(key);
      }
    }
    finish(std::move(line), r);
    return r.outcome;
  }

  void cas(const std::string& key) {
    auto it = seen_.find(key);
    if (it == seen_.end()) return get(key, "linearizable"), void();
    const auto [expected, version] = it->second;
    const std::string value = next_value();
    json line = base("cas", key, now_ns());
    line["expected"] = expected;
    line["value"] = value;
    CallResult r =
        call(endpoint(), "PUT", "/v1/kv/" + key + "?cas=" + std::to_string(version), value, false);
    if (r.outcome == "ok") {
      line["succeeded"] = r.status == 200;
      if (r.status == 200) {
        seen_[key] = {value, r.body.value("version", std::uint64_t{0})};
      } else {
        seen_.erase(key);
      }
    }
    finish(std::move(line), r);
  }

  void del(const std::string& key) {
    json line = base("delete", key, now_ns());
    CallResult r = call(endpoint(), "DELETE", "/v1/kv/" + key, "", false);
    if (r.outcome == "ok") seen_.erase(key);
    finish(std::move(line), r);
  }

  const std::uint64_t id_;
  const Options& options_;
  KvCluster& cluster_;
  HistoryFile& history_;
  std::mt19937_64 random_;
  std::uint64_t sequence_ = 0;
  std::uint64_t unexpected_ = 0;
  // What this client last knew of a key (value, version), for its cas.
  std::map<std::string, std::pair<std::string, std::uint64_t>> seen_;
};

// --- the nemesis -------------------------------------------------------------

class Nemesis {
 public:
  Nemesis(const Options& options, KvCluster& cluster, std::uint64_t seed)
      : options_(options), cluster_(cluster), random_(seed) {}

  void run(const std::atomic<bool>& stop) {
    const std::vector<std::string> all = {"kill-leader", "pause-leader", "partition", "drop",
                                          "restart-all"};
    while (!stop) {
      const std::string fault =
          options_.scenario == "mixed" ? all[random_() % all.size()] : options_.scenario;
      rest(stop, milliseconds(1000 + random_() % 2000));
      if (stop) break;
      if (fault == "isolate-leader") {
        partition(stop, 0);
      } else if (fault == "kill-leader") {
        kill_leader(stop);
      } else if (fault == "pause-leader") {
        pause_leader(stop);
      } else if (fault == "partition") {
        partition(stop, static_cast<int>(random_() % 3));
      } else if (fault == "drop") {
        drop(stop);
      } else if (fault == "restart-all") {
        restart_all(stop);
      }
    }
  }

  // Ends every fault: rules flushed, paused servers resumed, dead ones
  // started again.
  void heal() {
    iptables({"-F", "INPUT"});
    for (std::size_t i = 1; i <= cluster_.size(); ++i) {
      cluster_.signal(i, SIGCONT);
      if (!cluster_.running(i)) {
        event("restart server " + std::to_string(i));
        cluster_.start(i);
      }
    }
  }

  std::uint64_t events() const { return events_; }
  std::uint64_t failures() const { return failures_; }

 private:
  void event(const std::string& what) {
    ++events_;
    say("nemesis: " + what);
  }

  void rest(const std::atomic<bool>& stop, milliseconds duration) {
    const auto until = Clock::now() + duration;
    while (!stop && Clock::now() < until) std::this_thread::sleep_for(milliseconds(20));
  }

  std::size_t leader_or_random() {
    if (auto leader = cluster_.ready_leader()) return *leader;
    return 1 + random_() % cluster_.size();
  }

  void kill_leader(const std::atomic<bool>& stop) {
    const std::size_t victim = leader_or_random();
    event("kill -9 server " + std::to_string(victim));
    cluster_.kill(victim);
    rest(stop, milliseconds(500 + random_() % 2000));
    event("restart server " + std::to_string(victim));
    cluster_.start(victim);
  }

  void pause_leader(const std::atomic<bool>& stop) {
    const std::size_t victim = leader_or_random();
    event("SIGSTOP server " + std::to_string(victim));
    cluster_.signal(victim, SIGSTOP);
    // Past the election timeout (500 ms): the others elect a new leader.
    rest(stop, milliseconds(1200 + random_() % 1500));
    event("SIGCONT server " + std::to_string(victim));
    cluster_.signal(victim, SIGCONT);
  }

  // Drops every packet from `from` to `to`.
  void block(std::size_t from, std::size_t to) {
    iptables({"-A", "INPUT", "-s", cluster_.ip(from), "-d", cluster_.ip(to), "-j", "DROP"});
  }

  // Drops what `from` sends to `to`'s Raft port: the connections `from`
  // dials to `to` (keel sends each message on the sender's own outbound
  // connection), while `to`'s connections to `from`, replies included,
  // still flow. Raft messages then go one way only: `to` -> `from`.
  void block_messages(std::size_t from, std::size_t to) {
    const std::string port = cluster_.raft_address(to).substr(cluster_.ip(to).size() + 1);
    iptables({"-A", "INPUT", "-s", cluster_.ip(from), "-d", cluster_.ip(to), "-p", "tcp", "--dport",
              port, "-j", "DROP"});
  }

  // kind 0: isolate the leader; 1: random halves; 2: one way.
  void partition(const std::atomic<bool>& stop, int kind) {
    const std::size_t n = cluster_.size();
    if (kind == 0) {
      const std::size_t victim = leader_or_random();
      event("partition: isolate server " + std::to_string(victim));
      for (std::size_t i = 1; i <= n; ++i) {
        if (i == victim) continue;
        block(victim, i);
        block(i, victim);
      }
    } else if (kind == 1) {
      std::vector<std::size_t> order;
      for (std::size_t i = 1; i <= n; ++i) order.push_back(i);
      std::shuffle(order.begin(), order.end(), random_);
      const std::size_t cut = 1 + random_() % (n - 1);
      std::string side;
      for (std::size_t a = 0; a < cut; ++a) side += std::to_string(order[a]) + " ";
      event("partition: halves, {" + side + "} against the rest");
      for (std::size_t a = 0; a < cut; ++a) {
        for (std::size_t b = cut; b < n; ++b) {
          block(order[a], order[b]);
          block(order[b], order[a]);
        }
      }
    } else {
      const std::size_t victim = leader_or_random();
      event("partition: one way, server " + std::to_string(victim) + " hears nobody but is heard");
      for (std::size_t i = 1; i <= n; ++i) {
        if (i != victim) block_messages(i, victim);
      }
    }
    rest(stop, milliseconds(2000 + random_() % 3000));
    event("partition healed");
    iptables({"-F", "INPUT"});
  }

  void drop(const std::atomic<bool>& stop) {
    const int percent = 10 + static_cast<int>(random_() % 30);
    event("drop " + std::to_string(percent) + "% of the packets between servers");
    for (std::size_t a = 1; a <= cluster_.size(); ++a) {
      for (std::size_t b = 1; b <= cluster_.size(); ++b) {
        if (a == b) continue;
        iptables({"-A", "INPUT", "-s", cluster_.ip(a), "-d", cluster_.ip(b), "-m", "statistic",
                  "--mode", "random", "--probability",
                  "0." + std::to_string(percent / 10) + std::to_string(percent % 10), "-j",
                  "DROP"});
      }
    }
    rest(stop, milliseconds(3000 + random_() % 3000));
    event("packet drop ended");
    iptables({"-F", "INPUT"});
  }

  void restart_all(const std::atomic<bool>& stop) {
    event("kill -9 every server at once");
    for (std::size_t i = 1; i <= cluster_.size(); ++i) cluster_.kill(i);
    rest(stop, milliseconds(300 + random_() % 700));
    event("start every server");
    for (std::size_t i = 1; i <= cluster_.size(); ++i) cluster_.start(i);
    rest(stop, milliseconds(1000));
  }

  // A rule that fails to apply fails the run: a fault that was never
  // injected must not pass for one that was survived.
  void iptables(std::vector<std::string> args) {
    args.insert(args.begin(), "/usr/sbin/iptables");
    std::string output;
    Exit e = run_command(args, &output, milliseconds(10'000));
    if (e.signalled || e.code != 0) {
      say("iptables failed: " + output);
      ++failures_;
    }
  }

  const Options& options_;
  KvCluster& cluster_;
  std::mt19937_64 random_;
  std::uint64_t events_ = 0;
  std::uint64_t failures_ = 0;
};

// --- the run -------------------------------------------------------------------

bool parse_u64(const char* text, std::uint64_t& out) {
  const char* end = text + std::strlen(text);
  auto [ptr, ec] = std::from_chars(text, end, out);
  return ec == std::errc() && ptr == end;
}

int usage(const std::string& why) {
  std::cerr << "keel-kv-chaos: " << why
            << "\nusage: keel-kv-chaos --scenario kill-leader|pause-leader|partition|"
               "isolate-leader|drop|restart-all|mixed [--servers N] [--clients N] [--seconds N] "
               "[--seed N] [--out DIR] [--server-arg ARG]... [--expect-violation true]\n";
  return 2;
}

// Enters a network namespace of this process's own, with `lo` up. Must run
// before any thread starts (a namespace is per thread until then).
bool enter_network_namespace() {
  if (geteuid() != 0) {
    say("SKIP: needs root (network namespaces and iptables)");
    return false;
  }
  if (unshare(CLONE_NEWNET) != 0) {
    say(std::string("SKIP: cannot create a network namespace: ") + std::strerror(errno));
    return false;
  }
  std::string output;
  Exit e = run_command({"/usr/sbin/ip", "link", "set", "lo", "up"}, &output);
  if (e.signalled || e.code != 0) {
    say("SKIP: cannot bring lo up in the namespace: " + output);
    return false;
  }
  e = run_command({"/usr/sbin/iptables", "-L", "INPUT", "-n"}, &output);
  if (e.signalled || e.code != 0) {
    say("SKIP: iptables does not work here: " + output);
    return false;
  }
  return true;
}

int run(const Options& options) {
  std::filesystem::remove_all(options.out);
  std::filesystem::create_directories(options.out);
  KvClusterOptions cluster_options;
  cluster_options.servers = options.servers;
  cluster_options.distinct_ips = true;
  cluster_options.extra_args = {"--request-timeout-ms=2000", "--snapshot-threshold=2000",
                                "--trailing-log-entries=500", "--log-level=info"};
  cluster_options.extra_args.insert(cluster_options.extra_args.end(), options.server_args.begin(),
                                    options.server_args.end());
  KvCluster cluster(options.out, cluster_options);
  cluster.start_all();
  if (!cluster.wait_for_ready_leader(seconds(30))) {
    say("FAILED: no ready leader within 30 s of the start; logs in " + options.out);
    return 1;
  }
  say("cluster of " + std::to_string(options.servers) + " ready; scenario " + options.scenario +
      " for " + std::to_string(options.seconds) + " s with " + std::to_string(options.clients) +
      " clients");

  const std::string history_path = options.out + "/history.jsonl";
  HistoryFile history(history_path);
  std::vector<std::unique_ptr<Client>> clients;
  for (std::size_t c = 1; c <= options.clients; ++c) {
    clients.push_back(
        std::make_unique<Client>(c, options, cluster, history, options.seed * 1000 + c));
  }
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (auto& client : clients) threads.emplace_back([&client, &stop] { client->run(stop); });
  Nemesis nemesis(options, cluster, options.seed);
  std::thread nemesis_thread([&] { nemesis.run(stop); });

  std::this_thread::sleep_for(seconds(options.seconds));
  stop = true;
  nemesis_thread.join();
  for (auto& t : threads) t.join();

  say("healing");
  nemesis.heal();
  const auto healed = Clock::now();
  auto leader = cluster.wait_for_ready_leader(seconds(options.heal_seconds));
  if (!leader) {
    say("FAILED: no ready leader within " + std::to_string(options.heal_seconds) +
        " s of healing; logs in " + options.out);
    return 1;
  }
  say("ready leader (server " + std::to_string(*leader) + ") " +
      std::to_string(std::chrono::duration_cast<milliseconds>(Clock::now() - healed).count()) +
      " ms after healing");
  cluster.check_exits();
  if (!cluster.unexpected_exits().empty()) {
    for (const std::string& line : cluster.unexpected_exits()) say("FAILED: " + line);
    return 1;
  }
  std::uint64_t final_reads = 0;
  const auto reads_deadline = Clock::now() + seconds(30);
  for (auto& client : clients) final_reads += client->read_all_keys(reads_deadline);
  history.close();
  const auto counts = history.counts();
  std::uint64_t unexpected = 0;
  for (auto& client : clients) unexpected += client->errors();
  auto count = [&](const char* outcome) {
    auto it = counts.find(outcome);
    return it == counts.end() ? std::uint64_t{0} : it->second;
  };
  say("history: " + std::to_string(count("ok")) + " ok, " + std::to_string(count("failed")) +
      " failed, " + std::to_string(count("unknown")) + " unknown; " +
      std::to_string(nemesis.events()) + " nemesis events; " + history_path);
  if (final_reads != options.clients * options.keys) {
    say("FAILED: only " + std::to_string(final_reads) + " of " +
        std::to_string(options.clients * options.keys) + " final reads succeeded after healing");
    return 1;
  }
  if (count("ok") < options.min_ok) {
    say("FAILED: only " + std::to_string(count("ok")) + " operations succeeded (at least " +
        std::to_string(options.min_ok) + " needed for the run to mean anything)");
    return 1;
  }
  if (nemesis.failures() != 0 || nemesis.events() == 0) {
    say("FAILED: the nemesis could not inject its faults (" + std::to_string(nemesis.failures()) +
        " failed commands, " + std::to_string(nemesis.events()) + " events)");
    return 1;
  }
  if (unexpected != 0) {
    say("FAILED: " + std::to_string(unexpected) + " answers outside the documented set");
    return 1;
  }
  std::string verdict;
  Exit e =
      run_command({KEEL_SIM_BIN, "check-history", history_path}, &verdict, milliseconds(60'000));
  std::cout << verdict;
  std::ofstream(options.out + "/verdict.txt") << verdict;
  if (options.expect_violation) {
    cluster.stop_all();
    if (!e.signalled && e.code == 1 && verdict.find("NOT linearizable") != std::string::npos) {
      say("passed: the checker caught the broken servers");
      return 0;
    }
    say("FAILED: the servers were broken on purpose, and the checker did not say so");
    return 1;
  }
  if (e.signalled || e.code != 0) {
    say("FAILED: the history is not linearizable (or could not be checked); see " + options.out);
    return 1;
  }
  cluster.check_exits();
  for (const std::string& line : cluster.unexpected_exits()) say("FAILED: " + line);
  if (!cluster.unexpected_exits().empty()) return 1;
  cluster.stop_all();
  say("passed");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) return usage("missing the value of " + flag);
    const char* value = argv[++i];
    std::uint64_t n = 0;
    if (flag == "--scenario") {
      options.scenario = value;
      static const std::set<std::string> known = {"kill-leader",   "pause-leader", "partition",
                                                  "drop",          "restart-all",  "mixed",
                                                  "isolate-leader"};
      if (known.count(options.scenario) == 0) return usage("unknown scenario " + options.scenario);
    } else if (flag == "--out") {
      options.out = value;
    } else if (flag == "--server-arg") {
      options.server_args.push_back(value);
    } else if (flag == "--expect-violation") {
      if (std::string(value) != "true" && std::string(value) != "false") {
        return usage("--expect-violation takes true or false");
      }
      options.expect_violation = std::string(value) == "true";
    } else if (!parse_u64(value, n)) {
      return usage(flag + " needs a number");
    } else if (flag == "--servers" && n >= 3 && n <= 7) {
      options.servers = n;
    } else if (flag == "--clients" && n >= 1 && n <= 64) {
      options.clients = n;
    } else if (flag == "--seconds" && n >= 1 && n <= 3600) {
      options.seconds = n;
    } else if (flag == "--seed") {
      options.seed = n;
    } else {
      return usage("unknown flag or value out of range: " + flag + " " + value);
    }
  }
  if (!enter_network_namespace()) return kSkip;
  return run(options);
}
