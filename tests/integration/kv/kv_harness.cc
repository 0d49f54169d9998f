// tests/integration/kv/kv_harness.cc — see kv_harness.h.
#include "kv_harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

namespace keel::kv::testing {

std::string keel_kv_binary() {
  if (const char* env = std::getenv("KEEL_KV_BIN")) return env;
  return KEEL_KV_BIN;
}

namespace {

Exit decode(int status) {
  Exit e;
  if (WIFSIGNALED(status)) {
    e.signalled = true;
    e.code = WTERMSIG(status);
  } else {
    e.code = WEXITSTATUS(status);
  }
  return e;
}

}  // namespace

namespace {

// Forks every child from one thread that lives as long as the process:
// PR_SET_PDEATHSIG fires when the thread that forked the child ends, not
// the process, so a child forked by a short-lived thread (a nemesis, a
// test's helper thread) would be killed with it.
class Spawner {
 public:
  static Spawner& instance() {
    static Spawner* spawner = new Spawner();  // never destroyed: its thread runs to the end
    return *spawner;
  }

  pid_t spawn(const std::vector<std::string>& argv, const std::string& log_path) {
    std::unique_lock lock(mutex_);
    const std::uint64_t ticket = next_ticket_++;
    requests_.push_back(Request{ticket, argv, log_path});
    cv_.notify_all();
    cv_.wait(lock, [&] { return results_.count(ticket) != 0; });
    const pid_t pid = results_[ticket];
    results_.erase(ticket);
    return pid;
  }

 private:
  struct Request {
    std::uint64_t ticket;
    std::vector<std::string> argv;
    std::string log_path;
  };

  Spawner() {
    std::thread([this] { loop(); }).detach();
  }

  void loop() {
    std::unique_lock lock(mutex_);
    while (true) {
      cv_.wait(lock, [&] { return !requests_.empty(); });
      Request request = std::move(requests_.front());
      requests_.pop_front();
      results_[request.ticket] = fork_exec(request.argv, request.log_path);
      cv_.notify_all();
    }
  }

  static pid_t fork_exec(const std::vector<std::string>& argv, const std::string& log_path) {
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    const pid_t parent = getpid();
    const pid_t pid = fork();
    if (pid != 0) return pid;  // the parent (or -1)
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);  // the parent died before prctl
    // The test may block signals (a server blocks SIGTERM itself).
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    const int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    execv(args[0], args.data());
    _exit(127);
  }

  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Request> requests_;
  std::map<std::uint64_t, pid_t> results_;
  std::uint64_t next_ticket_ = 0;
};

}  // namespace

Process Process::spawn(const std::vector<std::string>& argv, const std::string& log_path) {
  const pid_t pid = Spawner::instance().spawn(argv, log_path);
  if (pid < 0) throw std::runtime_error("fork failed: cannot start " + argv.front());
  Process p;
  p.pid_ = pid;
  return p;
}

Process::Process(Process&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)), exit_(std::move(other.exit_)) {}

Process& Process::operator=(Process&& other) noexcept {
  if (this != &other) {
    kill_and_reap();
    pid_ = std::exchange(other.pid_, -1);
    exit_ = std::move(other.exit_);
  }
  return *this;
}

Process::~Process() { kill_and_reap(); }

bool Process::running() {
  if (pid_ < 0 || exit_) return false;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_) {
    exit_ = decode(status);
    return false;
  }
  return true;
}

void Process::signal(int sig) {
  if (running()) ::kill(pid_, sig);
}

std::optional<Exit> Process::wait_for(milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (running()) {
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(milliseconds(10));
  }
  return exit_;
}

void Process::kill_and_reap() {
  if (pid_ < 0) return;
  if (!exit_) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    if (waitpid(pid_, &status, 0) == pid_) exit_ = decode(status);
  }
  pid_ = -1;
}

Exit run_command(const std::vector<std::string>& argv, std::string* output, milliseconds timeout) {
  static std::atomic<int> counter{0};
  const std::filesystem::path log =
      std::filesystem::temp_directory_path() /
      ("keel-kv-cmd-" + std::to_string(getpid()) + "-" + std::to_string(counter++) + ".log");
  Process p = Process::spawn(argv, log.string());
  std::optional<Exit> e = p.wait_for(timeout);
  if (!e) {
    p.kill_and_reap();
    e = Exit{true, SIGKILL};
  }
  if (output != nullptr) *output = read_file(log);
  std::filesystem::remove(log);
  return *e;
}

std::string HttpReply::header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? std::string() : it->second;
}

HttpReply http(const std::string& address, const std::string& method, const std::string& target,
               const std::string& body, milliseconds timeout) {
  httplib::Client client("http://" + address);
  client.set_connection_timeout(timeout);
  client.set_read_timeout(timeout);
  client.set_write_timeout(timeout);
  client.set_keep_alive(false);
  httplib::Result res = method == "GET"    ? client.Get(target)
                        : method == "PUT"  ? client.Put(target, body, "application/octet-stream")
                        : method == "POST" ? client.Post(target, body, "application/json")
                                           : client.Delete(target);
  HttpReply reply;
  if (!res) {
    const auto error = res.error();
    reply.connected =
        error != httplib::Error::Connection && error != httplib::Error::ConnectionTimeout;
    reply.error = httplib::to_string(error);
    return reply;
  }
  reply.connected = true;
  reply.answered = true;
  reply.status = res->status;
  reply.body = res->body;
  for (const auto& [name, value] : res->headers) reply.headers[name] = value;
  return reply;
}

// Ports in [20000, 27000): below the kernel's ephemeral range (32768 and
// up here) and apart from make run's smoke test (27100 and up), drawn at
// random and checked: a port the kernel handed out and took back is soon
// the source port of some outgoing connection (the servers of a parallel
// test dial many), and a server would then find its port in use.
std::uint16_t free_port(const std::string& ip) {
  static std::mutex mutex;
  static std::mt19937 random(std::random_device{}());
  static std::set<std::uint16_t> given;  // never the same port twice in one process
  std::lock_guard lock(mutex);
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const auto port = static_cast<std::uint16_t>(20000 + random() % 7000);
    if (given.count(port) != 0) continue;
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    const int yes = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    inet_pton(AF_INET, ip.c_str(), &addr.sin_addr);
    const bool free = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    close(fd);
    if (free) {
      given.insert(port);
      return port;
    }
  }
  throw std::runtime_error("free_port: no free port in [20000, 27000)");
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TempDir::TempDir(const std::string& prefix) {
  std::random_device random;
  path_ = std::filesystem::temp_directory_path() /
          (prefix + "-" + std::to_string(getpid()) + "-" + std::to_string(random()));
  std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

KvCluster::KvCluster(const std::filesystem::path& dir, KvClusterOptions options)
    : dir_(dir), options_(std::move(options)) {
  processes_.resize(options_.servers);
  expected_end_.assign(options_.servers, false);
  for (std::size_t i = 1; i <= options_.servers; ++i) {
    raft_ports_.push_back(options_.distinct_ips ? 7000 : free_port());
    http_ports_.push_back(options_.distinct_ips ? 8000 : free_port());
  }
}

KvCluster::~KvCluster() { stop_all(); }

std::string KvCluster::ip(std::size_t i) const {
  return options_.distinct_ips ? "127.0.0." + std::to_string(10 + i) : "127.0.0.1";
}
std::string KvCluster::raft_address(std::size_t i) const {
  return ip(i) + ":" + std::to_string(raft_ports_[i - 1]);
}
std::string KvCluster::http_address(std::size_t i) const {
  return ip(i) + ":" + std::to_string(http_ports_[i - 1]);
}
std::filesystem::path KvCluster::data_dir(std::size_t i) const {
  return dir_ / ("server" + std::to_string(i));
}
std::filesystem::path KvCluster::log_path(std::size_t i) const {
  return dir_ / ("server" + std::to_string(i) + ".log");
}

std::string KvCluster::endpoints() const {
  std::string out;
  for (std::size_t i = 1; i <= size(); ++i) out += (i > 1 ? "," : "") + http_address(i);
  return out;
}

std::vector<std::string> KvCluster::args(std::size_t i) const {
  std::string members;
  std::string http_members;
  for (std::size_t j = 1; j <= size(); ++j) {
    members += (j > 1 ? "," : "") + std::to_string(j) + "=" + raft_address(j);
    http_members += (j > 1 ? "," : "") + std::to_string(j) + "=" + http_address(j);
  }
  std::vector<std::string> argv = {
      keel_kv_binary(),
      "serve",
      "--id=" + std::to_string(i),
      "--cluster-id=" + std::to_string(options_.cluster_id),
      "--data-dir=" + data_dir(i).string(),
      "--raft-addr=" + raft_address(i),
      "--http-addr=" + http_address(i),
      "--members=" + members,
      "--http-members=" + http_members,
      "--heartbeat-ms=" + std::to_string(options_.heartbeat_ms),
      "--election-timeout-ms=" + std::to_string(options_.election_timeout_ms)};
  argv.insert(argv.end(), options_.extra_args.begin(), options_.extra_args.end());
  return argv;
}

void KvCluster::start_all() {
  for (std::size_t i = 1; i <= size(); ++i) start(i);
}

void KvCluster::start(std::size_t i) {
  check_exits();
  processes_[i - 1] = Process::spawn(args(i), log_path(i).string());
  expected_end_[i - 1] = false;
}

void KvCluster::check_exits() {
  for (std::size_t i = 1; i <= size(); ++i) {
    Process& p = processes_[i - 1];
    if (p.pid() < 0 || p.running() || expected_end_[i - 1]) continue;
    const std::optional<Exit> e = p.exit_status();
    if (!e) continue;
    unexpected_exits_.push_back("server " + std::to_string(i) + " (pid " + std::to_string(p.pid()) +
                                ") " + (e->signalled ? "died of signal " : "exited with status ") +
                                std::to_string(e->code) + "; see " + log_path(i).string());
    expected_end_[i - 1] = true;  // noted once
  }
}

bool KvCluster::running(std::size_t i) { return processes_[i - 1].running(); }
void KvCluster::signal(std::size_t i, int sig) { processes_[i - 1].signal(sig); }
void KvCluster::kill(std::size_t i) {
  check_exits();
  expected_end_[i - 1] = true;
  processes_[i - 1].kill_and_reap();
}
pid_t KvCluster::pid(std::size_t i) const { return processes_[i - 1].pid(); }

std::optional<Exit> KvCluster::stop(std::size_t i, milliseconds timeout) {
  check_exits();
  expected_end_[i - 1] = true;
  Process& p = processes_[i - 1];
  p.signal(SIGCONT);  // a paused server cannot stop
  p.signal(SIGTERM);
  return p.wait_for(timeout);
}

void KvCluster::stop_all() {
  check_exits();
  for (std::size_t i = 1; i <= size(); ++i) {
    expected_end_[i - 1] = true;
    processes_[i - 1].signal(SIGCONT);
    processes_[i - 1].signal(SIGTERM);
  }
  for (std::size_t i = 1; i <= size(); ++i) {
    if (!processes_[i - 1].wait_for(milliseconds(10'000))) processes_[i - 1].kill_and_reap();
  }
}

std::optional<std::size_t> KvCluster::ready_leader() {
  for (std::size_t i = 1; i <= size(); ++i) {
    if (!running(i)) continue;
    HttpReply r = http(http_address(i), "GET", "/v1/status", "", milliseconds(1000));
    if (!r.answered || r.status != 200) continue;
    auto status = nlohmann::json::parse(r.body, nullptr, false);
    if (status.is_object() && status.value("state", "") == "leader" &&
        status.value("ready", false)) {
      return i;
    }
  }
  return std::nullopt;
}

std::optional<std::size_t> KvCluster::wait_for_ready_leader(milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (auto leader = ready_leader()) return leader;
    std::this_thread::sleep_for(milliseconds(50));
  }
  // Say why: each server's state and the end of its log.
  for (std::size_t i = 1; i <= size(); ++i) {
    std::string log = read_file(log_path(i));
    if (log.size() > 2000) log = "..." + log.substr(log.size() - 2000);
    std::fprintf(stderr, "no ready leader: server %zu is %s; its log ends with:\n%s\n", i,
                 running(i) ? "running" : "not running", log.c_str());
  }
  return std::nullopt;
}

}  // namespace keel::kv::testing
