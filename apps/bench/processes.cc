// apps/bench/processes.cc — a cluster of processes, measured from outside.
#include "processes.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cluster.h"
#include "data_dir.h"
#include "process_usage.h"
#include "workload.h"

namespace keel_bench {
namespace {

using Clock = std::chrono::steady_clock;

// How long the servers may take to elect a leader.
constexpr std::chrono::seconds kElectionBound{30};
// Beyond warm-up and duration, how long keel-bench waits for the results.
constexpr double kResultsSlackSeconds = 90;
// How long a node may take to stop after SIGTERM before it is killed.
constexpr std::chrono::seconds kStopBound{10};

std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) out.push_back(item);
  return out;
}

// The number after "key": in a JSON line (the first such key).
double json_number(const std::string& line, const std::string& key) {
  const auto at = line.find("\"" + key + "\": ");
  return at == std::string::npos ? 0 : std::strtod(line.c_str() + at + key.size() + 4, nullptr);
}

// A free port on 127.0.0.1 (bound and released: good enough here).
std::uint16_t free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

// Stops every process: SIGTERM, then SIGKILL for any still there after
// kStopBound.
void stop_all(const std::vector<pid_t>& pids) {
  for (pid_t pid : pids) ::kill(pid, SIGTERM);
  const auto deadline = Clock::now() + kStopBound;
  for (pid_t pid : pids) {
    int status = 0;
    while (::waitpid(pid, &status, WNOHANG) == 0 && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (::waitpid(pid, &status, WNOHANG) == 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
    }
  }
}

}  // namespace

int run_node(Options options) {
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);  // before any thread starts
  const std::vector<std::string> addresses = split_commas(options.addresses);
  if (options.node_id < 1 || options.node_id > addresses.size()) {
    std::cerr << "keel-bench node: --id " << options.node_id << " is not one of the "
              << addresses.size() << " --addresses\n";
    return 2;
  }
  keel::Configuration configuration;
  for (std::size_t i = 1; i <= addresses.size(); ++i) {
    configuration.servers.push_back(
        keel::Server{keel::ServerId{i}, addresses[i - 1], keel::Suffrage::kVoter});
  }
  const keel::Server& self = configuration.servers[options.node_id - 1];
  auto transport = tcp_transport_for(options, self.id, self.address);
  if (!transport) return 1;
  std::optional<DataDir> dir;
  if (options.log == "wal") dir.emplace(DataDir::existing(options.dir));
  auto server = open_server(options, self, configuration, transport, dir ? &*dir : nullptr,
                            keel::make_thread_env());
  if (!server) return 1;
  // Wait until this server leads (and is ready) or knows who does.
  const auto deadline = Clock::now() + kElectionBound;
  keel::ServerId leader = keel::kNoServer;
  while (leader == keel::kNoServer && Clock::now() < deadline) {
    const keel::RaftStats stats = server->stats();
    if (stats.state == keel::RaftState::kLeader && stats.ready_term == stats.term) {
      leader = self.id;
    } else if (stats.leader.id != keel::kNoServer && stats.leader.id != self.id) {
      leader = stats.leader.id;
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  if (leader == keel::kNoServer) {
    std::cerr << "keel-bench node " << options.node_id << ": no leader within "
              << kElectionBound.count() << " s\n";
    server->shutdown();
    return 1;
  }
  // The clients' server: the leader, or the follower with the lowest id.
  keel::ServerId target = leader;
  if (options.on == "follower") {
    target = leader.value == 1 ? keel::ServerId{2} : keel::ServerId{1};
  }
  if (target == self.id) {
    options.json = true;
    const Results results = run_clients(options, {server.get()}, *server, [](bool start) {
      std::printf("%s\n", start ? "window-start" : "window-end");
      std::fflush(stdout);
    });
    print_results(options, results);
    std::fflush(stdout);
  }
  const timespec second{1, 0};
  while (sigtimedwait(&stop_signals, nullptr, &second) < 0) {
    if (!options.verbose) continue;
    const keel::RaftStats stats = server->stats();
    std::cerr << "keel-bench node " << options.node_id << ": " << keel::to_string(stats.state)
              << " in term " << stats.term.value << ", last index " << stats.last_index.value
              << ", commit " << stats.commit_index.value << ", leader " << stats.leader.id.value
              << "\n";
  }
  server->shutdown();
  return 0;
}

int run_processes(const Options& options) {
  auto dir = DataDir::make(options.dir);
  if (!dir) return 2;
  std::string addresses;
  for (std::size_t i = 0; i < options.servers; ++i) {
    addresses += (i ? "," : "") + std::string("127.0.0.1:") + std::to_string(free_loopback_port());
  }
  char self[4096] = {};
  if (::readlink("/proc/self/exe", self, sizeof self - 1) <= 0) return 1;
  int pipe_fds[2];
  if (::pipe(pipe_fds) != 0) return 1;
  std::vector<pid_t> pids;
  for (std::size_t id = 1; id <= options.servers; ++id) {
    std::vector<std::string> args = {self,          "node",
                                     "--id",        std::to_string(id),
                                     "--addresses", addresses,
                                     "--log",       options.log,
                                     "--dir",       dir->path().string(),
                                     "--clients",   std::to_string(options.clients),
                                     "--payload",   std::to_string(options.payload),
                                     "--workload",  options.workload,
                                     "--read",      options.consistency,
                                     "--on",        options.on,
                                     "--duration",  std::to_string(options.duration_s),
                                     "--warmup",    std::to_string(options.warmup_s)};
    if (options.verbose) args.push_back("--verbose");
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the benchmark
      ::dup2(pipe_fds[1], 1);              // only the clients' node prints
      ::close(pipe_fds[0]);
      ::close(pipe_fds[1]);
      ::execv(self, argv.data());
      ::_exit(127);
    }
    if (pid > 0) pids.push_back(pid);
  }
  ::close(pipe_fds[1]);
  if (pids.size() != options.servers) {
    std::cerr << "keel-bench: could not start " << options.servers << " processes\n";
    stop_all(pids);
    ::close(pipe_fds[0]);
    return 1;
  }
  std::vector<Usage> before(pids.size());
  std::vector<Usage> after(pids.size());
  std::string result;
  // Lines from the clients' node, until its results, the nodes' end, or a
  // bound.
  const auto deadline =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
                         options.warmup_s + options.duration_s + kResultsSlackSeconds));
  std::string pending;
  while (result.empty() && Clock::now() < deadline) {
    pollfd readable{pipe_fds[0], POLLIN, 0};
    if (::poll(&readable, 1, 200) <= 0) continue;
    char buffer[4096];
    const ssize_t n = ::read(pipe_fds[0], buffer, sizeof buffer);
    if (n <= 0) break;  // every node has exited
    pending.append(buffer, static_cast<std::size_t>(n));
    for (auto end = pending.find('\n'); end != std::string::npos; end = pending.find('\n')) {
      const std::string text = pending.substr(0, end);
      pending.erase(0, end + 1);
      if (text == "window-start") {
        for (std::size_t i = 0; i < pids.size(); ++i) before[i] = usage_of(pids[i]);
      } else if (text == "window-end") {
        for (std::size_t i = 0; i < pids.size(); ++i) after[i] = usage_of(pids[i]);
      } else if (text.rfind("{", 0) == 0) {
        result = text;
      }
    }
  }
  ::close(pipe_fds[0]);
  std::vector<long> rss(pids.size(), 0);
  for (std::size_t i = 0; i < pids.size(); ++i) rss[i] = usage_of(pids[i]).peak_rss_kb;
  stop_all(pids);
  if (result.empty()) {
    std::cerr << "keel-bench: no results from the clients' server (see the lines above)\n";
    return 1;
  }
  const double operations = std::max(1.0, json_number(result, "operations"));
  double cluster_cpu = 0;
  double cluster_disk = 0;
  long max_rss = 0;
  std::string processes = "[";
  std::string text;
  for (std::size_t i = 0; i < pids.size(); ++i) {
    const double cpu_us_per_op = (after[i].cpu_s - before[i].cpu_s) * 1e6 / operations;
    const double disk_per_op =
        static_cast<double>(after[i].disk_write_bytes - before[i].disk_write_bytes) / operations;
    cluster_cpu += cpu_us_per_op;
    cluster_disk += disk_per_op;
    max_rss = std::max(max_rss, rss[i]);
    char item[200];
    std::snprintf(item, sizeof item,
                  "%s{\"server\": %zu, \"cpu_us_per_op\": %.2f, \"disk_bytes_per_op\": %.0f, "
                  "\"peak_rss_kb\": %ld}",
                  i ? ", " : "", i + 1, cpu_us_per_op, disk_per_op, rss[i]);
    processes += item;
    std::snprintf(item, sizeof item,
                  "  server %zu: cpu %.2f us/op, %.0f disk bytes/op, peak rss %ld KiB\n", i + 1,
                  cpu_us_per_op, disk_per_op, rss[i]);
    text += item;
  }
  processes += "]";
  if (options.json) {
    std::printf(
        "%s, \"processes\": %s, \"cluster_cpu_us_per_op\": %.2f, "
        "\"cluster_disk_bytes_per_op\": %.0f, \"max_peak_rss_kb\": %ld}\n",
        result.substr(0, result.size() - 1).c_str(), processes.c_str(), cluster_cpu, cluster_disk,
        max_rss);
  } else {
    std::printf("keel-bench processes, %s log: %zu servers, %zu clients, ", options.log.c_str(),
                options.servers, options.clients);
    if (options.reads()) {
      std::printf("%s reads on the %s, %.1f s\n", options.consistency.c_str(), options.on.c_str(),
                  options.duration_s);
    } else {
      std::printf("%zu-byte commands, %.1f s\n", options.payload, options.duration_s);
    }
    std::printf("  %.0f ops/s (%.0f operations, %.0f failed)\n", json_number(result, "ops_per_sec"),
                json_number(result, "operations"), json_number(result, "failures"));
    std::printf("  latency us: p50 %.1f  p95 %.1f  p99 %.1f  p99.9 %.1f  p99.99 %.1f\n",
                json_number(result, "p50"), json_number(result, "p95"), json_number(result, "p99"),
                json_number(result, "p99_9"), json_number(result, "p99_99"));
    std::printf("  all processes: cpu %.2f us/op, %.0f disk bytes/op\n", cluster_cpu, cluster_disk);
    std::printf("%s", text.c_str());
  }
  return json_number(result, "operations") > 0 ? 0 : 1;
}

}  // namespace keel_bench
